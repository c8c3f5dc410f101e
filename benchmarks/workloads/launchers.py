"""Per-run overhead of each launcher (labbook run-queue / sweep --launcher) for trivial runs.

labbook only::

    python launchers.py labbook N SCRATCH REPS LAUNCHERS

On a SQLite store: REPS times a bare ``python exp.py --store URL`` (the process a placed job
runs, without the launcher); then, for each launcher spec (``local:1``, ``dask:1``, ``ray:1``,
``submitit:local``; an engine that is not installed is reported, not measured), the time to
start it, and N queued runs executed one at a time through it (``run_queue(...,
parallel=1)``): the time per run minus the bare run is the launcher's overhead per run (the
engine's hand-over, the claim, the process start, the reap). Every run is checked COMPLETED.
Prints one ``@@RESULT`` JSON line.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

from labbook import Experiment
from labbook.launchers import parse_launcher, run_queue
from labbook.stores import open_store

SCRIPT = '''
from labbook import Experiment
ex = Experiment("bench_launch")
ex.add_config(x=0)


@ex.automain
def main(x):
    return x
'''
OPTIONS = {"--no-system-metrics": True, "--loglevel": "WARNING", "--capture": "sys"}
MODULES = {"local": None, "dask": "distributed", "ray": "ray", "submitit": "submitit"}


def queue(url, count):
    ex = Experiment("bench_launch")
    ex.add_config(x=0)

    @ex.main
    def main(x):  # the script's command, by name
        return x

    options = dict(OPTIONS, **{"--store": url, "--queue": True})
    return [ex.run(config_updates={"x": i}, options=options)._id for i in range(count)]


def check(url, ids):
    store = open_store(url)
    try:
        bad = [i for i in ids if (store.get(i) or {}).get("status") != "COMPLETED"]
    finally:
        store.close()
    if bad:
        raise SystemExit(f"runs not COMPLETED in {url}: {bad[:5]}")


def main():
    pkg, n, scratch = sys.argv[1], int(float(sys.argv[2])), sys.argv[3]
    reps, specs = int(sys.argv[4]), sys.argv[5].split(",")
    if pkg != "labbook":
        raise SystemExit("the launcher benchmark measures labbook only")
    # under a main guard: Dask's worker processes start by importing this module
    where = os.path.join(scratch, "launchers")
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(where)
    os.chdir(where)
    script = os.path.join(where, "exp.py")
    with open(script, "w") as fh:
        fh.write(SCRIPT)
    url = f"sqlite:///{os.path.join(where, 'q.db')}"
    bare = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, script, "--store", url, "--no-system-metrics", "-l",
                        "WARNING"], check=True, cwd=where, capture_output=True)
        bare.append(time.perf_counter() - t0)
    results = {"bare_ms": min(bare) * 1000, "runs": n, "launchers": {}}
    for spec in specs:
        module = MODULES[spec.partition(":")[0]]
        if module is not None and importlib.util.find_spec(module) is None:
            results["launchers"][spec] = {"skipped": f"{module} is not installed"}
            continue
        t0 = time.perf_counter()
        launcher = parse_launcher(spec)
        started = time.perf_counter() - t0
        try:
            ids = queue(url, n)
            t0 = time.perf_counter()
            run_queue(script, url, launcher, "bench_launch", parallel=1, progress=False)
            per_run = (time.perf_counter() - t0) / n
        finally:
            launcher.close()
        check(url, ids)
        results["launchers"][spec] = {"start_s": started, "ms_per_run": per_run * 1000,
                                      "overhead_ms_per_run": per_run * 1000 - min(bare) * 1000}
    return results


if __name__ == "__main__":
    print("@@RESULT " + json.dumps(main()))
