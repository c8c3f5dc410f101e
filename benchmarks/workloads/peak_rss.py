"""Peak resident memory of a process logging N points into a store.

User-level code, the same for labbook and Sacred::

    python peak_rss.py labbook|sacred file|sqlite N SCRATCH

One ``ex.run()`` of a loop of N ``log_scalar("loss", i * 0.1, i)`` calls with a
``FileStorageObserver`` or an ``SqlObserver("sqlite:///...")``; N = 0 gives the baseline of the
same process logging nothing. The peak is the process's high-water mark (``VmHWM`` in
``/proc/self/status``, else ``ru_maxrss``) read right after ``ex.run()`` returns, before the
points are counted back from the store (labbook: through ``iter_series``, a page at a time, so
the check does not raise the peak it follows; Sacred: its ``metrics.json``).
Prints one ``@@RESULT`` JSON line.
"""
import importlib
import json
import os
import resource
import sys
import time

pkg, kind, n, scratch = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), sys.argv[4]
Experiment = importlib.import_module(pkg).Experiment
observers = importlib.import_module(pkg + ".observers")


def peak_mb():
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM"
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (kb / 1024 / 1024 if sys.platform == "darwin" else kb / 1024), "ru_maxrss"


if kind == "file":
    where = os.path.join(scratch, "runs")
    observer = observers.FileStorageObserver(where)
else:
    os.makedirs(scratch, exist_ok=True)
    where = "sqlite:///" + os.path.join(scratch, "runs.db")
    observer = observers.SqlObserver(where)
ex = Experiment("bench_peak_rss")
ex.observers.append(observer)


@ex.main
def main(_run):
    for i in range(n):
        _run.log_scalar("loss", i * 0.1, i)


t0 = time.perf_counter()
run = ex.run(options={"--loglevel": "ERROR"})
seconds = time.perf_counter() - t0
peak, source = peak_mb()

stored = None
if n:
    if pkg == "labbook":
        from labbook.stores import open_store

        store = open_store(where)
        try:
            stored = sum(len(page["values"])
                         for page in store.iter_series(run._id, "loss", 100_000))
        finally:
            store.close()
    else:
        try:
            with open(os.path.join(where, str(run._id), "metrics.json"), encoding="utf-8") as fh:
                stored = len(json.load(fh)["loss"]["values"])
        except FileNotFoundError:
            stored = "no metrics.json: the run's points were not stored"
        except ValueError as exc:
            stored = f"unreadable metrics.json: {exc}"
print("@@RESULT " + json.dumps({"n": n, "kind": kind, "peak_mb": peak, "source": source,
                                "run_s": seconds, "stored": stored}))
