"""Queue throughput of ``labbook worker`` for trivial runs, per store.

labbook only (Sacred has no workers)::

    python worker_queue.py labbook N SCRATCH KINDS WORKERS REPS

For each store kind (``sqlite``, ``postgresql``; a server that cannot be reached is reported,
not measured): REPS times a bare ``python exp.py --store URL`` (the run a worker's child
executes, without the worker), then N runs queued and executed by one worker (the time per
run minus the bare run is the worker's overhead per run: claim, child start, reap), then N
runs queued and executed by WORKERS workers started together (runs per second, from the
workers' start until the last one exits on an empty queue). Every run is checked COMPLETED.
Prints one ``@@RESULT`` JSON line.
"""
import json
import os
import shutil
import subprocess
import sys
import time

pkg, n, scratch, kinds = sys.argv[1], int(float(sys.argv[2])), sys.argv[3], sys.argv[4]
workers, reps = int(sys.argv[5]), int(sys.argv[6])
if pkg != "labbook":
    raise SystemExit("the worker benchmark measures labbook only")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import server_store  # noqa: E402

from labbook import Experiment  # noqa: E402
from labbook.stores import open_store  # noqa: E402

SCRIPT = '''
from labbook import Experiment
ex = Experiment("bench_worker")
ex.add_config(x=0)


@ex.automain
def main(x):
    return x
'''
OPTIONS = {"--no-system-metrics": True, "--loglevel": "WARNING", "--capture": "sys"}
WORKER = [sys.executable, "-c", "import sys; from labbook.cli.main import main; sys.exit(main())",
          "worker"]


def queue(url, count):
    ex = Experiment("bench_worker")
    ex.add_config(x=0)

    @ex.main
    def main(x):  # the script's command, by name
        return x

    options = dict(OPTIONS, **{"--store": url, "--queue": True})
    return [ex.run(config_updates={"x": i}, options=options)._id for i in range(count)]


def run_workers(script, url, count, where):
    procs = [subprocess.Popen(WORKER + [script, "--store", url, "--idle-exit", "0",
                                        "--poll", "0.1", "--name", f"w{k}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=where)
             for k in range(count)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed: {err.decode(errors='replace')[-2000:]}")


def check(url, ids):
    store = open_store(url)
    try:
        bad = [i for i in ids if (store.get(i) or {}).get("status") != "COMPLETED"]
    finally:
        store.close()
    if bad:
        raise SystemExit(f"runs not COMPLETED in {url}: {bad[:5]}")


def measure(kind, url_for):
    where = os.path.join(scratch, f"worker_{kind}")
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(where)
    script = os.path.join(where, "exp.py")
    with open(script, "w") as fh:
        fh.write(SCRIPT)
    url = url_for(where)
    bare = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, script, "--store", url, "--no-system-metrics", "-l",
                        "WARNING"], check=True, cwd=where, capture_output=True)
        bare.append(time.perf_counter() - t0)
    ids = queue(url, n)
    t0 = time.perf_counter()
    run_workers(script, url, 1, where)
    one = time.perf_counter() - t0
    check(url, ids)
    ids = queue(url, n)
    t0 = time.perf_counter()
    run_workers(script, url, workers, where)
    many = time.perf_counter() - t0
    check(url, ids)
    return {"bare_ms": min(bare) * 1000, "one_worker_ms_per_run": one / n * 1000,
            "overhead_ms_per_run": (one / n - min(bare)) * 1000,
            "runs_per_s": n / many, "workers": workers, "runs": n}


results = {}
for kind in kinds.split(","):
    if kind == "sqlite":
        results[kind] = measure(kind, lambda where: f"sqlite:///{os.path.join(where, 'q.db')}")
        continue
    url, cleanup, reason = server_store(kind)
    if url is None:
        results[kind] = {"skipped": reason}
        continue
    try:
        results[kind] = measure(kind, lambda where: url)
    finally:
        cleanup()
print("@@RESULT " + json.dumps(results))
