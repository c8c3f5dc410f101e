"""Per-call cost of ``_run.log_scalar`` inside a loop in the main function.

User-level code: the same file runs against labbook or Sacred, only the package name differs::

    python log_scalar.py labbook|sacred N REPS

For each observer setting (none, FileStorageObserver) and each repetition, three runs of one
experiment: a bare loop (``i * 0.1``), ``log_scalar("loss", i * 0.1, i)`` and
``log_scalar("loss", i * 0.1)``. The loop is timed inside main; the whole ``ex.run()`` is timed
around it (so the end-to-end figure includes handing the points to the observer at the end).
A first round of the three runs is not counted (warm-up). Prints one JSON line prefixed
with ``@@RESULT``.
"""
import importlib
import json
import shutil
import sys
import tempfile
import time

pkg = sys.argv[1]
n = int(sys.argv[2])
reps = int(sys.argv[3])
Experiment = importlib.import_module(pkg).Experiment
FileStorageObserver = importlib.import_module(pkg + ".observers").FileStorageObserver

MODES = ("bare", "step", "nostep")
state = {"mode": "bare", "loop": 0.0}


def make_experiment(observer_dir):
    ex = Experiment("bench_log_scalar")
    if observer_dir is not None:
        ex.observers.append(FileStorageObserver(observer_dir))

    @ex.main
    def main(_run):
        mode = state["mode"]
        t0 = time.perf_counter()
        if mode == "step":
            for i in range(n):
                _run.log_scalar("loss", i * 0.1, i)
        elif mode == "nostep":
            for i in range(n):
                _run.log_scalar("loss", i * 0.1)
        else:
            for i in range(n):
                i * 0.1
        state["loop"] = time.perf_counter() - t0

    return ex


def measure(observer_dir):
    ex = make_experiment(observer_dir)
    samples = {mode: {"loop": [], "total": []} for mode in MODES}
    for rep in range(reps + 1):  # round 0 warms up (first-run imports, memory arenas)
        for mode in MODES:
            state["mode"] = mode
            t0 = time.perf_counter()
            ex.run()
            total = time.perf_counter() - t0
            if rep:
                samples[mode]["loop"].append(state["loop"])
                samples[mode]["total"].append(total)
    return samples


tmp = tempfile.mkdtemp(prefix="bench_log_scalar_")
try:
    result = {"n": n, "reps": reps,
              "no_observer": measure(None),
              "file_observer": measure(tmp)}
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print("@@RESULT " + json.dumps(result))
