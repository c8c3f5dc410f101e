"""``labbook sync`` of one run of N points from a file store to SQLite and to another file store.

labbook only (Sacred has no sync)::

    python sync_points.py labbook N SCRATCH REPS

Records one run of N ``log_scalar`` points with a ``FileStorageObserver`` (as a user's run
does), then, REPS times for each destination (a new, empty store each time), times
``labbook.sync.sync(SRC_URL, DST_URL)`` (what ``labbook sync SRC DST`` calls) and, once, the
whole ``labbook sync SRC DST`` command as a process. Every copy is checked: one run created,
N points read back from the destination (a page at a time). Prints one ``@@RESULT`` JSON line.
"""
import json
import os
import shutil
import subprocess
import sys
import time

pkg, n, scratch, reps = sys.argv[1], int(float(sys.argv[2])), sys.argv[3], int(sys.argv[4])
if pkg != "labbook":
    raise SystemExit("the sync benchmark measures labbook only")

from labbook import Experiment  # noqa: E402
from labbook.observers import FileStorageObserver  # noqa: E402
from labbook.stores import open_store  # noqa: E402
from labbook.sync import sync  # noqa: E402

SRC = os.path.join(scratch, "src")
ex = Experiment("bench_sync")
ex.observers.append(FileStorageObserver(SRC))


@ex.main
def main(_run):
    for i in range(n):
        _run.log_scalar("loss", i * 0.1, i)


t0 = time.perf_counter()
ex.run(options={"--loglevel": "ERROR"})
record_s = time.perf_counter() - t0


def destination(kind, tag):
    where = os.path.join(scratch, f"dst_{kind}_{tag}")
    shutil.rmtree(where, ignore_errors=True)
    if kind == "file":
        return where, "file://" + where
    os.makedirs(where)
    return where, "sqlite:///" + os.path.join(where, "runs.db")


def check(url):
    store = open_store(url)
    try:
        runs = store.find()
        if len(runs) != 1:
            raise SystemExit(f"{url}: {len(runs)} runs after sync, not 1")
        got = sum(len(page["values"])
                  for page in store.iter_series(runs[0]["_id"], "loss", 100_000))
    finally:
        store.close()
    if got != n:
        raise SystemExit(f"{url}: {got} points after sync, not {n}")


result = {"points": n, "record_s": record_s, "kinds": {}}
for kind in ("sqlite", "file"):
    samples = []
    for rep in range(reps):
        where, url = destination(kind, rep)
        t0 = time.perf_counter()
        outcome = sync("file://" + SRC, url)
        samples.append(time.perf_counter() - t0)
        if len(outcome.created) != 1:
            raise SystemExit(f"sync to {kind}: {outcome.summary()}")
        check(url)
        shutil.rmtree(where, ignore_errors=True)
    where, url = destination(kind, "cli")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "labbook.cli.main", "sync", SRC, url],
                          capture_output=True, text=True)
    cli_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"labbook sync failed: {proc.stderr.strip()[-2000:]}")
    check(url)
    shutil.rmtree(where, ignore_errors=True)
    result["kinds"][kind] = {"best_s": min(samples), "samples_s": samples, "cli_s": cli_s}
    print(f"  sync {n:.0e} points -> {kind}: {min(samples):.3f} s, command {cli_s:.3f} s",
          file=sys.stderr, flush=True)
print("@@RESULT " + json.dumps(result))
