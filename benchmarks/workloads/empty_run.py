"""Empty ``ex.run()`` with a FileStorageObserver, many runs in one process.

User-level code, the same for labbook and Sacred::

    python empty_run.py labbook|sacred RUNS DIR [PREFILL]

PREFILL (default 0): that many numbered run directories are made in DIR first, as a store that
has been in use holds them; both observers then find the next free id among them.

Times every run (including the first: the figure is amortised over all of them) and prints
one ``@@RESULT`` JSON line.
"""
import importlib
import json
import os
import sys
import time

pkg = sys.argv[1]
runs = int(sys.argv[2])
basedir = sys.argv[3]
prefill = int(sys.argv[4]) if len(sys.argv) > 4 else 0
for number in range(1, prefill + 1):
    os.makedirs(os.path.join(basedir, str(number)))
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
