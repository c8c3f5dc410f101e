"""``RunView.scan_history`` of one metric of N points, on every store.

labbook only (Sacred has no read API)::

    python scan_history.py labbook N SCRATCH STORES REPS

STORES is a comma-separated subset of ``file,sqlite,postgresql,mysql,mongo``. For each, one
run with a metric ``loss`` of N points is written through the store's write API (batches of
10^5 points, as heartbeats hand them over), then ``list(api.run(id).scan_history("loss"))``
is timed on a fresh ``Api``, best of REPS, and the rows are counted (N, else the workload
fails). The servers come from ``_servers.py``; a store that cannot be had is reported as
skipped with the reason. Prints one ``@@RESULT`` JSON line.
"""
import datetime as dt
import json
import os
import sys
import time

pkg, n, scratch = sys.argv[1], int(float(sys.argv[2])), sys.argv[3]
kinds, reps = sys.argv[4].split(","), int(sys.argv[5])
if pkg != "labbook":
    raise SystemExit("the scan_history benchmark measures labbook only")

from _servers import server_store  # noqa: E402

from labbook import Api  # noqa: E402
from labbook.stores import open_store  # noqa: E402

T0 = dt.datetime(2026, 1, 1)
BATCH = 100_000


def write_run(url):
    store = open_store(url)
    try:
        run_id = store.create_run({
            "experiment": {"name": "scan", "base_dir": "/bench", "sources": [],
                           "dependencies": ["labbook"], "mainfile": "bench.py"},
            "command": "main", "host": {"hostname": "bench"}, "start_time": T0,
            "heartbeat": T0, "config": {"seed": 1}, "meta": {"command": "main", "options": {}},
            "status": "RUNNING", "resources": [], "artifacts": [], "captured_out": "",
            "info": {}})
        for first in range(0, n, BATCH):
            steps = list(range(first, min(n, first + BATCH)))
            store.append_metrics(run_id, {"loss": {
                "steps": steps, "values": [1.0 / (s + 1) for s in steps],
                "timestamps": [T0 + dt.timedelta(milliseconds=s) for s in steps]}})
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0})
    finally:
        store.close()
    return run_id


def scan(url, run_id):
    with Api(url) as api:
        return len(list(api.run(run_id).scan_history("loss")))


def measure(url):
    t0 = time.perf_counter()
    run_id = write_run(url)
    out = {"write_s": time.perf_counter() - t0}
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        rows = scan(url, run_id)
        samples.append(time.perf_counter() - t0)
        if rows != n:
            raise SystemExit(f"{url.split('?')[0]}: scan_history gave {rows} rows, not {n}")
    out.update(best_s=min(samples), first_s=samples[0], samples_s=samples)
    return out


result = {"points": n, "stores": {}}
for kind in kinds:
    if kind == "file":
        out = measure("file://" + os.path.join(scratch, "scan_file"))
    elif kind == "sqlite":
        out = measure("sqlite:///" + os.path.join(scratch, "scan.db"))
    else:
        url, cleanup, reason = server_store(kind)
        if url is None:
            out = {"skipped": reason}
        else:
            try:
                out = measure(url)
            except Exception as exc:  # the server gave up: the other stores' figures stand
                out = {"skipped": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
            finally:
                cleanup()
    result["stores"][kind] = out
    brief = {k: v for k, v in out.items() if k != "samples_s"}
    print(f"  scan_history {kind}: {json.dumps(brief)}", file=sys.stderr, flush=True)
print("@@RESULT " + json.dumps(result))
