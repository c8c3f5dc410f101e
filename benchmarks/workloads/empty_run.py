"""Empty ``ex.run()`` with a FileStorageObserver, many runs in one process.

User-level code, the same for labbook and Sacred::

    python empty_run.py labbook|sacred RUNS DIR

Times every run (including the first: the figure is amortised over all of them) and prints
one ``@@RESULT`` JSON line.
"""
import importlib
import json
import sys
import time

pkg = sys.argv[1]
runs = int(sys.argv[2])
basedir = sys.argv[3]
Experiment = importlib.import_module(pkg).Experiment
FileStorageObserver = importlib.import_module(pkg + ".observers").FileStorageObserver

ex = Experiment("bench_empty_run")
ex.observers.append(FileStorageObserver(basedir))


@ex.main
def main():
    pass


per_run = []
t_start = time.perf_counter()
for _ in range(runs):
    t0 = time.perf_counter()
    ex.run()
    per_run.append(time.perf_counter() - t0)
total = time.perf_counter() - t_start
print("@@RESULT " + json.dumps({"runs": runs, "total": total, "per_run": per_run}))
