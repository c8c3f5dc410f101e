"""``labbook ui``: a store worth looking at, then the dashboard over it.

Records five runs of a toy training loop into a new SQLite store in a temporary directory (one
of them fails; one logs a series of 200,000 points), each with a PNG, an HTML page, a JSON file
and a text log as artifacts. Then it starts the dashboard on a free port of 127.0.0.1, reads
the runs table and a run's chart data from it as a browser would, and stops. Needs the ``[ui]``
extra (``pip install 'labbook[ui]'``)::

    python examples/ui_demo.py            # fill, check, stop
    python examples/ui_demo.py --serve    # fill, then serve until Ctrl-C (open the address)

The store stays for ``labbook ui sqlite:///.../demo.db`` later; its path is printed.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

from labbook import Experiment

ex = Experiment("ui_demo")


@ex.config
def config():
    lr = 0.05  # learning rate of the toy "training"
    steps = 300
    optimizer = {"name": "sgd", "momentum": 0.9}
    long_series = 0  # points of an extra, long metric
    diverge = False


def png(width: int, height: int, pixel) -> bytes:
    """A PNG written by hand (no imaging library): ``pixel(x, y)`` gives (r, g, b)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@ex.main
def train(lr, steps, long_series, diverge, _run):
    loss = 1.0
    for step in range(steps):
        loss = loss * (1 - lr) + 0.02 * math.sin(step / 7) * loss
        if diverge and step > 20:
            loss *= 1.5
        _run.log_scalar("loss", loss, step)
        _run.log_scalar("accuracy", 1 - loss / 2, step)
        if step % 50 == 0:
            print(f"step {step}: loss {loss:.4f}")
        if diverge and loss > 5:
            raise RuntimeError(f"diverged at step {step}")
    for i in range(long_series):
        _run.log_scalar("grad_norm", 1 + math.sin(i / 5000) + (3 if i == 123_456 else 0), i)
    files = {
        "curve.png": png(48, 32, lambda x, y: (255 - 5 * x, 60 + 5 * y, int(200 * lr * 3) % 256)),
        "report.html": f"<h1>Run report</h1><p>lr = {lr}, final loss {loss:.4f}</p>".encode(),
        "result.json": json.dumps({"final_loss": loss, "lr": lr}).encode(),
        "train.log": "".join(f"step {s}\n" for s in range(0, steps, 50)).encode(),
    }
    with tempfile.TemporaryDirectory() as workdir:  # the store keeps its own copies
        for name, data in files.items():
            path = os.path.join(workdir, name)
            with open(path, "wb") as fh:
                fh.write(data)
            _run.add_artifact(path)
    return round(1 - loss / 2, 4)


def fill(url: str) -> None:
    options = {"--store": url, "--no-system-metrics": True, "--capture": "sys"}
    for lr, tag in ((0.01, "baseline"), (0.05, "tuned"), (0.1, "tuned")):
        ex.run(config_updates={"lr": lr}, options={**options, "--tag": [tag]})
    ex.run(config_updates={"lr": 0.03, "long_series": 200_000},
           options={**options, "--name": "long", "--notes": "a 200,000-point grad_norm"})
    try:
        ex.run(config_updates={"lr": 0.2, "diverge": True, "optimizer": {"name": "adam"}},
               options=options)
    except RuntimeError:
        pass  # recorded as FAILED, with its trace


def serve(url: str, forever: bool) -> None:
    import uvicorn

    from labbook.cli.ui import bind
    from labbook.ui.app import LOOPBACK_HOSTS, create_app

    sock = bind("127.0.0.1", 0)
    address = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(url, allowed_hosts=LOOPBACK_HOSTS)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    if forever:
        print(f"labbook ui at {address}/ (Ctrl-C stops it)")
        server.run(sockets=[sock])
        return
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with urllib.request.urlopen(f"{address}/?order=_id") as response:
            page = response.read().decode()
        statuses = re.findall(r'<td class="status status-\w+">(\w+)</td>', page)
        print(f"runs table: {len(statuses)} runs, {statuses.count('FAILED')} failed")
        with urllib.request.urlopen(f"{address}/run/4/series?name=grad_norm") as response:
            series = json.load(response)["metrics"]["grad_norm"]
        print(f"run 4 grad_norm: {len(series['step'])} of {series['total']} points sent, "
              f"the spike kept: {max(series['value']) > 3}")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


if __name__ == "__main__":
    directory = tempfile.mkdtemp(prefix="labbook-ui-demo-")
    print(f"working in {directory}")
    store = f"sqlite:///{os.path.join(directory, 'demo.db')}"
    fill(store)
    serve(store, forever="--serve" in sys.argv[1:])
    print(f"the store stays: labbook ui {store}")
