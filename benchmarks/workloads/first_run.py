"""The first ``ex.run()`` of a process against the warm runs after it, with a file observer.

User-level code, the same for labbook and Sacred::

    python first_run.py labbook|sacred WARM_RUNS DIR

Imports the package (not timed: the import benchmark measures it), defines an experiment with
a ``FileStorageObserver(DIR)``, times its first ``ex.run()`` and then WARM_RUNS more runs of
it. The first run pays for whatever the package imports or builds lazily on a first run. The
runner makes sure bytecode caches exist before (see docs/benchmarks.md), and this script
reports whether the package's own ``__init__`` had a cached bytecode file when it started,
and which modules got a bytecode file written during this process (each one was compiled
here), so that a figure never silently includes compiling. Prints one ``@@RESULT`` JSON line.
"""
import importlib
import importlib.util
import json
import os
import sys
import time

started = time.time()
pkg = sys.argv[1]
warm_runs = int(sys.argv[2])
basedir = sys.argv[3]

origin = importlib.util.find_spec(pkg).origin
cached = os.path.exists(importlib.util.cache_from_source(origin))
Experiment = importlib.import_module(pkg).Experiment
FileStorageObserver = importlib.import_module(pkg + ".observers").FileStorageObserver

ex = Experiment("bench_first_run")
ex.observers.append(FileStorageObserver(basedir))


@ex.main
def main():
    pass


t0 = time.perf_counter()
ex.run()
first = time.perf_counter() - t0
warm = []
for _ in range(warm_runs):
    t0 = time.perf_counter()
    ex.run()
    warm.append(time.perf_counter() - t0)
compiled = sorted(name for name, module in list(sys.modules.items())
                  if isinstance(getattr(module, "__cached__", None), str)
                  and os.path.exists(module.__cached__)
                  and os.stat(module.__cached__).st_mtime >= started)
print("@@RESULT " + json.dumps({"first": first, "warm": warm, "bytecode_cached": cached,
                                "compiled": compiled,
                                "dont_write_bytecode": sys.dont_write_bytecode,
                                "pycache_prefix": sys.pycache_prefix}))
