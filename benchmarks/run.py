#!/usr/bin/env python3
"""Compare labbook with Sacred 0.8.7: import time, process time, logging, runs and configs.

    python benchmarks/run.py                  # full run (creates benchmarks/.venv-sacred once)
    python benchmarks/run.py --quick          # smaller N, a smoke test
    python benchmarks/run.py --quick --only-labbook   # no Sacred, no network

labbook runs in this interpreter (from this checkout, via PYTHONPATH) unless ``--labbook-python``
or ``$LABBOOK_BENCH_PYTHON`` names another one; Sacred runs in ``benchmarks/.venv-sacred``,
created on first use with ``python3.11 -m venv`` and ``pip install sacred==0.8.7
'setuptools<81' numpy``. Sacred is never a labbook dependency. MLflow, the baseline of one
DataFrame row, runs in ``benchmarks/.venv-mlflow``, created on first use the same way
(``mlflow-skinny`` with SQLAlchemy, Alembic and pandas); without it that row says why.

Every workload under ``benchmarks/workloads/`` is user-level code that runs unchanged against
either package: it takes the package name as its first argument and imports ``Experiment``
(and observers) from it. Prints a table and writes ``benchmarks/results/latest.json`` and
a Markdown report (``benchmarks/RESULTS.md`` after a full run of every benchmark, else
``benchmarks/results/RESULTS.md``; ``--results-md`` chooses).
See docs/benchmarks.md for how to read the figures.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads"
SACRED_VENV = HERE / ".venv-sacred"
SACRED_VERSION = "0.8.7"
SACRED_REQUIREMENTS = ["sacred==" + SACRED_VERSION, "setuptools<81", "numpy"]
EXAMPLE = REPO / "examples" / "hello_config_scope.py"
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_REQUIREMENTS = ["mlflow-skinny==3.18.0", "sqlalchemy", "alembic", "pandas"]
PACKAGES = ("labbook", "sacred")
BENCHMARKS = ("import", "process", "log_scalar", "points", "store_points", "empty_run",
              "first_run", "config", "readback", "dataframe", "sync", "scan_history",
              "peak_rss", "worker", "launchers", "ui")

# Sizes: full run / --quick.
SIZES = {
    False: {"import_reps": 15, "process_reps": 9, "log_scalar_n": 100_000, "log_scalar_reps": 5,
            "points": [10_000, 100_000, 1_000_000], "points_reps": 3, "empty_runs": 100,
            "empty_run_procs": 3, "empty_run_prefill": 10_000, "config_reps": 15,
            "store_points": [10_000, 100_000, 1_000_000], "store_points_reps": 3,
            "store_beats": 100, "store_per_beat": 10_000,
            "readback_runs": 10_000, "readback_points": 1_000_000, "readback_mongo_runs": 10_000,
            "first_run_procs": 7, "first_run_warm": 20,
            "dataframe_runs": [2_000, 10_000], "dataframe_reps": 3, "mlflow_runs": 2_000,
            "sync_points": 1_000_000, "sync_reps": 3, "scan_points": 1_000_000, "scan_reps": 2,
            "rss_points": [1_000_000, 10_000_000], "rss_sacred_max": 1_000_000,
            "worker_runs": 40, "worker_count": 4, "worker_reps": 5,
            "worker_stores": ["sqlite", "postgresql"],
            "launcher_runs": 10, "launcher_reps": 5,
            "launcher_specs": ["local:1", "dask:1", "ray:1", "submitit:local"],
            "ui_runs": 10_000, "ui_points": 1_000_000, "ui_stores": ["sqlite", "postgresql"]},
    True: {"import_reps": 3, "process_reps": 3, "log_scalar_n": 10_000, "log_scalar_reps": 3,
           "points": [1_000, 10_000, 100_000], "points_reps": 3, "empty_runs": 20,
           "empty_run_procs": 1, "empty_run_prefill": 1_000, "config_reps": 3,
           "store_points": [1_000, 10_000], "store_points_reps": 1,
           "store_beats": 20, "store_per_beat": 1_000,
           "readback_runs": 100, "readback_points": 10_000, "readback_mongo_runs": 10,
           "first_run_procs": 2, "first_run_warm": 5,
           "dataframe_runs": [100], "dataframe_reps": 2, "mlflow_runs": 100,
           "sync_points": 10_000, "sync_reps": 1, "scan_points": 10_000, "scan_reps": 1,
           "rss_points": [10_000], "rss_sacred_max": 10_000,
           "worker_runs": 4, "worker_count": 2, "worker_reps": 1, "worker_stores": ["sqlite"],
           "launcher_runs": 2, "launcher_reps": 1, "launcher_specs": ["local:1"],
           "ui_runs": 100, "ui_points": 10_000, "ui_stores": ["sqlite"]},
}

RATIO_TARGETS = {"import": 8, "process": 8, "empty_run": 8, "config": 4}
#: one ``log_scalar`` call in the loop, absolute (labbook alone)
LOG_SCALAR_TARGET_NS = 120
#: 10^5 points, the whole ``ex.run()`` with the file store: at most 1/5 of Sacred's
STORE_POINTS_RUN_TARGET = (100_000, 5)
#: the first ``ex.run()`` of a process: at most this much above a warm run
FIRST_RUN_TARGET_MS = 15
#: ``to_dataframe()`` of 2,000 runs of the file store: at most 1/2 of the plain json loop
DATAFRAME_TARGET = (2_000, 2)
#: ``labbook sync`` of a run of 10^6 points, and ``scan_history`` of 10^6 points on SQLite
SYNC_TARGET = (1_000_000, 2.0)
SCAN_TARGET = (1_000_000, 2.0, "sqlite")
SCAN_STORES = ("file", "sqlite", "postgresql", "mysql", "mongo")
RSS_KINDS = ("file", "sqlite")
#: labbook ui (server time, at 10,000 runs and a 10^6-point series): the table's first page,
#: the chart data of the long run (KB), and the run page plus its chart data
UI_TARGETS = {"runs": 10_000, "first_page": 0.2, "points": 1_000_000, "series_kb": 200,
              "first_chart": 1.0}
POINTS_TARGET_SECONDS = 1.0
POINTS_TARGET_N = 1_000_000
#: 10^6 points into the file and SQLite stores: at most this much extra, and linear in N
STORE_POINTS_TARGET_SECONDS = 3.0
STORE_POINTS_KINDS = ("file", "sqlite")
#: what store_points.py says when Sacred's run left no metrics.json
NO_METRICS = "no metrics.json"
#: heartbeats late in a run may cost at most this many times the early ones
BEAT_GROWTH_TARGET = 1.5
# read-back targets (absolute, labbook only; meant for the full sizes): the first page is
# 0.2 s on SQLite and MongoDB, 1 s on the file store
READBACK_TARGETS = {"first_page": 0.2, "dataframe": 2.0, "history": 0.5}
READBACK_FIRST_PAGE = {"file": 1.0}
READBACK_STORES = ("file", "sqlite", "mongo")


# Where observers write and workloads run: a tmpfs when there is one, so that the kernel's
# writeback of earlier benchmarks' files does not add noise (see docs/benchmarks.md).
SCRATCH = Path(tempfile.gettempdir())
#: MLflow's interpreter (None when it is not measured) and what became of it; set by main()
MLFLOW = {"python": None, "status": "not used"}


class BenchError(RuntimeError):
    pass


def default_scratch() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def scratch_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix, dir=SCRATCH)


# -- interpreters --------------------------------------------------------------------------------
def clean_env(package: str) -> dict:
    """Environment of a benchmarked process: labbook from this checkout, nothing else leaking."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("LABBOOK_") or k.startswith("LABBOOK_BENCH_"))
           and k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE",
                         "PYTHONPROFILEIMPORTTIME", "PYTHONPYCACHEPREFIX",
                         "LABBOOK_BENCH_PYTHON")}
    if package == "labbook":
        env["PYTHONPATH"] = str(REPO)
    env["TMPDIR"] = str(SCRATCH)
    return env


def python_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def labbook_python(args) -> str:
    python = args.labbook_python or os.environ.get("LABBOOK_BENCH_PYTHON") or sys.executable
    check = subprocess.run([python, "-c", "import labbook, labbook.observers"],
                           env=clean_env("labbook"), capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(
            f"labbook does not import in {python}:\n{check.stderr.strip()}\n"
            "Run with an interpreter that has labbook's dependencies (e.g. the project's venv), "
            "or pass --labbook-python / set LABBOOK_BENCH_PYTHON.")
    return python


def sacred_python(args) -> tuple[str | None, str]:
    """The Sacred interpreter, creating the benchmark-only venv on first use."""
    if args.only_labbook:
        return None, "skipped (--only-labbook)"
    if args.sacred_python:
        return args.sacred_python, "given"
    python = SACRED_VENV / "bin" / "python"
    probe = [str(python), "-c", "import sacred; print(sacred.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, env=clean_env("sacred"))
        if found.returncode == 0 and found.stdout.strip() == SACRED_VERSION:
            return str(python), "existing venv"
    base = shutil.which("python3.11") or sys.executable
    print(f"Creating {SACRED_VENV.relative_to(REPO)} with {base} and installing "
          f"{' '.join(SACRED_REQUIREMENTS)} (first use only)...", file=sys.stderr)
    try:
        subprocess.run([base, "-m", "venv", str(SACRED_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *SACRED_REQUIREMENTS],
                       check=True, env=clean_env("sacred"))
        found = subprocess.run(probe, capture_output=True, text=True, check=True,
                               env=clean_env("sacred"))
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"Could not set up Sacred ({exc}); its column shows n/a.", file=sys.stderr)
        return None, f"unavailable ({exc})"
    if found.stdout.strip() != SACRED_VERSION:
        return None, f"wrong version {found.stdout.strip()}"
    return str(python), "created venv"


def mlflow_python(args) -> tuple[str | None, str]:
    """MLflow's interpreter, creating the benchmark-only venv on first use."""
    if args.only_labbook:
        return None, "skipped (--only-labbook)"
    if args.mlflow_python:
        return args.mlflow_python, "given"
    python = MLFLOW_VENV / "bin" / "python"
    probe = [str(python), "-c", "import mlflow, sqlalchemy, alembic, pandas; "
                                "print(mlflow.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, env=clean_env("mlflow"))
        if found.returncode == 0:
            return str(python), f"existing venv, MLflow {found.stdout.strip()}"
    base = shutil.which("python3.11") or sys.executable
    print(f"Creating {MLFLOW_VENV.relative_to(REPO)} with {base} and installing "
          f"{' '.join(MLFLOW_REQUIREMENTS)} (first use only)...", file=sys.stderr)
    try:
        subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *MLFLOW_REQUIREMENTS],
                       check=True, env=clean_env("mlflow"))
        found = subprocess.run(probe, capture_output=True, text=True, check=True,
                               env=clean_env("mlflow"))
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"Could not set up MLflow ({exc}); its row says skipped.", file=sys.stderr)
        return None, f"unavailable ({exc})"
    return str(python), f"created venv, MLflow {found.stdout.strip()}"


# -- measuring helpers ---------------------------------------------------------------------------
def wall(cmd: list[str], env: dict, cwd: Path | str = REPO) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def workload(python: str, package: str | None, script: str, *args: object, cwd=None,
             env: dict | None = None) -> dict:
    """Run a workload script, return the JSON it prints after ``@@RESULT``. ``package`` is
    its first argument (None: a script of a third package, e.g. MLflow's, without it)."""
    cmd = [python, str(WORKLOADS / script), *([package] if package else []), *map(str, args)]
    proc = subprocess.run(cmd, env=env or clean_env(package or "other"), cwd=cwd or SCRATCH,
                          capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])
    raise BenchError(f"{' '.join(cmd)} gave no result (exit {proc.returncode}):\n"
                     f"{proc.stderr[-3000:]}")


def median(values):
    return statistics.median(values)


IMPORTTIME_LINE = re.compile(r"^import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)\s*$")


def importtime_us(python: str, package: str) -> int:
    """Cumulative µs of the top-level package in ``python -X importtime -c 'import pkg'``."""
    proc = subprocess.run([python, "-X", "importtime", "-c", f"import {package}"],
                          env=clean_env(package), cwd=SCRATCH,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(proc.stderr[-3000:])
    for line in proc.stderr.splitlines():
        m = IMPORTTIME_LINE.match(line)
        if m and m.group(4) == package and len(m.group(3)) <= 1:
            return int(m.group(2))
    raise BenchError(f"no importtime line for {package}")


# -- the benchmarks ------------------------------------------------------------------------------
def bench_import(pythons: dict, size: dict) -> dict:
    out = {}
    reps = size["import_reps"]
    for package, python in pythons.items():
        env = clean_env(package)
        tmp = SCRATCH
        importtime_us(python, package)  # warm-up: byte-compile, fill the OS file cache
        cumulative, imp, empty = [], [], []
        for _ in range(reps):  # interleaved, so that drift hits both sides alike
            cumulative.append(importtime_us(python, package))
            imp.append(wall([python, "-c", f"import {package}"], env, tmp))
            empty.append(wall([python, "-c", "pass"], env, tmp))
        out[package] = {
            "importtime_cumulative_ms": median(cumulative) / 1000,
            "wall_ms": (median(imp) - median(empty)) * 1000,
            "samples": {"importtime_us": cumulative, "import_s": imp, "pass_s": empty},
        }
    return out


def bench_process(pythons: dict, size: dict) -> dict:
    """``python hello_config_scope.py with recipient=Bob -F DIR`` minus ``python -c pass``.

    labbook runs ``examples/hello_config_scope.py`` inside this git checkout (so it also
    records git info); Sacred runs a copy, with its import changed, in a temp dir (no git
    repo). For a like-for-like figure labbook also runs the same copy in that temp dir.
    """
    out = {}
    tmp = Path(scratch_dir("process_"))
    try:
        source = EXAMPLE.read_text()
        copies = {}
        for package in PACKAGES:
            copy = tmp / package / "hello_config_scope.py"
            copy.parent.mkdir()
            copy.write_text(source.replace("from labbook import", f"from {package} import"))
            copies[package] = copy
        variants = {"labbook": {"ms": EXAMPLE, "tmp_copy_ms": copies["labbook"]},
                    "sacred": {"ms": copies["sacred"]}}
        for package, python in pythons.items():
            env = clean_env(package)
            cmds = {key: [python, str(script), "with", "recipient=Bob", "-F",
                          str(tmp / f"runs_{package}_{key}")]
                    for key, script in variants[package].items()}
            samples = {key: [] for key in cmds}
            samples["pass"] = []
            for cmd in cmds.values():
                wall(cmd, env)  # warm-up: byte-compile, fill the OS file cache
            for _ in range(size["process_reps"]):
                for key, cmd in cmds.items():
                    samples[key].append(wall(cmd, env))
                samples["pass"].append(wall([python, "-c", "pass"], env))
            empty = median(samples["pass"])
            out[package] = {key: (median(samples[key]) - empty) * 1000 for key in cmds}
            out[package]["samples_s"] = samples
        if "sacred" in out:
            out["sacred"]["tmp_copy_ms"] = out["sacred"]["ms"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_log_scalar(pythons: dict, size: dict) -> dict:
    out = {}
    n = size["log_scalar_n"]
    for package, python in pythons.items():
        res = workload(python, package, "log_scalar.py", n, size["log_scalar_reps"])
        figures = {}
        for obs in ("no_observer", "file_observer"):
            modes = res[obs]
            bare_loop = median(modes["bare"]["loop"])
            bare_total = median(modes["bare"]["total"])
            for mode in ("step", "nostep"):
                figures[f"{obs}_{mode}_loop_ns"] = \
                    (median(modes[mode]["loop"]) - bare_loop) / n * 1e9
                figures[f"{obs}_{mode}_e2e_ns"] = \
                    (median(modes[mode]["total"]) - bare_total) / n * 1e9
        out[package] = {**figures, "raw": res}
    return out


def bench_points(pythons: dict, size: dict) -> dict:
    out = {}
    sizes = size["points"]
    for package, python in pythons.items():
        res = workload(python, package, "metric_points.py", ",".join(map(str, sizes)),
                       size["points_reps"])
        figures = {}
        for n in sizes:
            entry = res["sizes"][str(n)]
            logged = [t for t, got in zip(entry["logged"], entry["received"]) if got == n]
            if len(logged) < len(entry["logged"]):
                if package == "labbook":  # a lost point of ours is never a figure
                    raise BenchError(f"{package}: observer got {entry['received']} points, "
                                     f"not {n}")
                # Sacred's: reported, and the runs that lost points are not timed
                out.setdefault("notes", []).append(
                    f"{package} {n:.0e}: observer got {entry['received']} points, not {n}; "
                    f"timed {len(logged)} of {len(entry['logged'])} runs")
                print(f"  {out['notes'][-1]}", file=sys.stderr)
            if not logged:
                figures[str(n)] = {"extra_s": None, "ns_per_point": None}
                continue
            extra = median(logged) - median(entry["bare"])
            figures[str(n)] = {"extra_s": extra, "ns_per_point": extra / n * 1e9}
        out[package] = {"sizes": figures, "raw": res}
    return out


def bench_store_points(pythons: dict, size: dict) -> dict:
    """N points end to end into the file and SQLite stores, and heartbeat cost over a run.
    Sacred is measured on its file store only (its SqlObserver stores no metrics)."""
    out: dict = {}
    sizes = size["store_points"]
    for package, python in pythons.items():
        for kind in STORE_POINTS_KINDS:
            if package == "sacred" and kind != "file":
                continue
            tmp = scratch_dir(f"store_points_{kind}_")
            try:
                res = workload(python, package, "store_points.py", kind,
                               ",".join(map(str, sizes)), size["store_points_reps"],
                               size["store_beats"], size["store_per_beat"], tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            figures = {}
            for n in sizes:
                entry = res["sizes"][str(n)]
                broken = [s for s in entry["stored"] if isinstance(s, str)]
                if broken and package == "labbook":
                    raise BenchError(f"labbook {kind} {n:.0e} points: {broken[0]}")
                if broken:  # Sacred's file it cannot read back, or none: reported, not fatal
                    print(f"  {package} {kind} {n:.0e} points: {broken[0]}", file=sys.stderr)
                    out.setdefault("notes", []).append(f"{package} {kind} {n:.0e}: "
                                                       f"{len(broken)} of {len(entry['stored'])}"
                                                       f" runs: {broken[0]}")
                if any(stored != n for stored in entry["stored"] if not isinstance(stored, str)):
                    raise BenchError(f"{package} {kind}: stored {entry['stored']} points, "
                                     f"not {n}")
                # a run whose observer wrote no metrics file at all did not store its points:
                # not timed (one whose file is there but unreadable is)
                logged = [t for t, stored in zip(entry["logged"], entry["stored"])
                          if not (isinstance(stored, str) and stored.startswith(NO_METRICS))]
                if not logged:
                    figures[str(n)] = {"extra_s": None, "ns_per_point": None, "run_s": None}
                    continue
                extra = median(logged) - median(entry["bare"])
                figures[str(n)] = {"extra_s": extra, "ns_per_point": extra / n * 1e9,
                                   "run_s": median(logged)}
            beats = res["beats"]["seconds"]
            tenth = max(1, len(beats) // 10)
            first, last = median(beats[:tenth]), median(beats[-tenth:])
            out.setdefault(kind, {})[package] = {
                "sizes": figures, "first_beats_ms": first * 1000, "last_beats_ms": last * 1000,
                "beat_growth": last / first if first > 0 else None, "raw": res}
    return out


def bench_empty_run(pythons: dict, size: dict) -> dict:
    """Amortised ms per empty run; the median over a few processes, labbook's and Sacred's
    alternating (file-system timings drift). Then the same in a store already holding
    ``empty_run_prefill`` runs, where each new run has to find the next free id."""
    samples = {package: {"amortised": [], "median": [], "first": [], "prefilled": []}
               for package in pythons}
    for _ in range(size["empty_run_procs"]):
        for prefill in (0, size["empty_run_prefill"]):
            for package, python in pythons.items():
                tmp = scratch_dir("empty_run_")
                try:
                    res = workload(python, package, "empty_run.py", size["empty_runs"], tmp,
                                   prefill)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                amortised = res["total"] / res["runs"] * 1000
                if prefill:
                    samples[package]["prefilled"].append(amortised)
                    continue
                samples[package]["amortised"].append(amortised)
                samples[package]["median"].append(median(res["per_run"]) * 1000)
                samples[package]["first"].append(res["per_run"][0] * 1000)
    return {package: {"ms_per_run": median(s["amortised"]),
                      "median_run_ms": median(s["median"]),
                      "first_run_ms": median(s["first"]),
                      "prefilled_ms_per_run": median(s["prefilled"]),
                      "amortised_ms_per_process": s["amortised"]}
            for package, s in samples.items()}


def bench_config(pythons: dict, size: dict) -> dict:
    out = {}
    for package, python in pythons.items():
        tmp = scratch_dir("config_")
        try:
            res = workload(python, package, "big_config.py", size["config_reps"], tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if res["entries"] != 1000:
            raise BenchError(f"{package}: resolved {res['entries']} entries, not 1000")
        out[package] = {"ms": (median(res["big"]) - median(res["empty"])) * 1000,
                        "define_run_ms": median(res["big"]) * 1000,
                        "empty_ms": median(res["empty"]) * 1000, "raw": res}
    return out


def bench_readback(pythons: dict, size: dict) -> dict:
    """labbook only: queries, DataFrames and long histories read back from each store."""
    tmp = scratch_dir("readback_")
    try:
        res = workload(pythons["labbook"], "labbook", "readback.py", size["readback_runs"],
                       size["readback_points"], tmp, ",".join(READBACK_STORES),
                       size["readback_mongo_runs"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"labbook": res}


def bench_first_run(pythons: dict, size: dict) -> dict:
    """The first ``ex.run()`` of a fresh process against warm runs in it, with a file observer.

    The benchmarked processes write their bytecode to a scratch ``PYTHONPYCACHEPREFIX``
    (``PYTHONDONTWRITEBYTECODE`` is dropped by ``clean_env``), and one uncounted process runs
    first to fill it; every counted process must report that it compiled nothing."""
    out = {}
    for package, python in pythons.items():
        env = clean_env(package)
        env["PYTHONPYCACHEPREFIX"] = str(SCRATCH / f"pycache_{package}")
        first, warm = [], []
        for proc in range(size["first_run_procs"] + 1):  # process 0 fills the caches
            tmp = scratch_dir("first_run_")
            try:
                res = workload(python, package, "first_run.py", size["first_run_warm"], tmp,
                               env=env)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if not proc:
                continue
            if not res["bytecode_cached"] or res["compiled"]:
                raise BenchError(f"{package}: the first-run process compiled "
                                 f"{', '.join(res['compiled'][:5]) or package} although its "
                                 f"bytecode cache was filled first: the figure would include "
                                 f"compiling")
            first.append(res["first"])
            warm.append(median(res["warm"]))
        out[package] = {"first_ms": median(first) * 1000, "warm_ms": median(warm) * 1000,
                        "extra_ms": (median(first) - median(warm)) * 1000,
                        "first_s": first, "warm_median_s": warm}
    return out


def bench_dataframe(pythons: dict, size: dict) -> dict:
    """labbook's ``to_dataframe()`` of a file store against a plain json loop, and MLflow's
    ``search_runs`` (in its own venv) over as many runs."""
    out: dict = {}
    tmp = scratch_dir("dataframe_")
    try:
        out["labbook"] = workload(pythons["labbook"], "labbook", "dataframe.py",
                                  ",".join(map(str, size["dataframe_runs"])), tmp,
                                  size["dataframe_reps"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if MLFLOW["python"] is None:
        out["mlflow"] = {"skipped": MLFLOW["status"]}
        return out
    tmp = scratch_dir("mlflow_")
    try:
        out["mlflow"] = workload(MLFLOW["python"], None, "mlflow_search.py", size["mlflow_runs"],
                                 tmp, size["dataframe_reps"])
    except BenchError as exc:  # MLflow is a baseline: its failure costs its row, not the run
        print(f"  MLflow failed: {exc}", file=sys.stderr)
        out["mlflow"] = {"skipped": f"failed: {str(exc).splitlines()[-1][:120]}"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_sync(pythons: dict, size: dict) -> dict:
    """labbook only: ``sync`` of a run of N points from a file store to SQLite and to files."""
    tmp = scratch_dir("sync_")
    try:
        return {"labbook": workload(pythons["labbook"], "labbook", "sync_points.py",
                                    size["sync_points"], tmp, size["sync_reps"])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_scan_history(pythons: dict, size: dict) -> dict:
    """labbook only: ``scan_history`` of N points on each store (servers when reachable)."""
    tmp = scratch_dir("scan_")
    try:
        return {"labbook": workload(pythons["labbook"], "labbook", "scan_history.py",
                                    size["scan_points"], tmp, ",".join(SCAN_STORES),
                                    size["scan_reps"])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_peak_rss(pythons: dict, size: dict) -> dict:
    """Peak RSS of a process logging N points into the file and SQLite stores (Sacred: its
    file store, up to ``rss_sacred_max`` points), and of the same process logging none."""
    out: dict = {}
    for kind in RSS_KINDS:
        for package, python in pythons.items():
            if package == "sacred" and kind != "file":
                continue  # Sacred's SqlObserver stores no metrics
            entry: dict = {"sizes": {}}
            for n in [0] + list(size["rss_points"]):
                if package == "sacred" and n > size["rss_sacred_max"]:
                    continue
                tmp = scratch_dir("rss_")
                try:
                    res = workload(python, package, "peak_rss.py", kind, n, tmp)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                if not n:
                    entry["baseline_mb"] = res["peak_mb"]
                    continue
                if isinstance(res["stored"], str):
                    if package == "labbook":
                        raise BenchError(f"labbook {kind} {n:.0e} points: {res['stored']}")
                    out.setdefault("notes", []).append(f"{package} {kind} {n:.0e}: "
                                                       f"{res['stored']}")
                    if res["stored"].startswith(NO_METRICS):
                        continue  # a run that stored nothing: its peak is not the figure
                elif res["stored"] != n:
                    raise BenchError(f"{package} {kind}: stored {res['stored']} points, not {n}")
                entry["sizes"][str(n)] = res
                print(f"  peak RSS {package} {kind} {n:.0e} points: {res['peak_mb']:.0f} MB",
                      file=sys.stderr, flush=True)
            out.setdefault(kind, {})[package] = entry
    return out


def bench_worker(pythons: dict, size: dict) -> dict:
    """labbook only: queued trivial runs executed by ``labbook worker`` processes."""
    tmp = scratch_dir("worker_")
    try:
        return {"labbook": workload(pythons["labbook"], "labbook", "worker_queue.py",
                                    size["worker_runs"], tmp, ",".join(size["worker_stores"]),
                                    size["worker_count"], size["worker_reps"])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_launchers(pythons: dict, size: dict) -> dict:
    """labbook only: queued trivial runs executed one at a time through each launcher."""
    tmp = scratch_dir("launchers_")
    try:
        return {"labbook": workload(pythons["labbook"], "labbook", "launchers.py",
                                    size["launcher_runs"], tmp, size["launcher_reps"],
                                    ",".join(size["launcher_specs"]), cwd=tmp)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_ui(pythons: dict, size: dict) -> dict:
    """labbook only: the dashboard's server time for the runs table and a long run's page."""
    tmp = scratch_dir("ui_")
    try:
        return {"labbook": workload(pythons["labbook"], "labbook", "ui.py", size["ui_runs"],
                                    size["ui_points"], tmp, ",".join(size["ui_stores"]))}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


RUNNERS = {"import": bench_import, "process": bench_process, "log_scalar": bench_log_scalar,
           "points": bench_points, "store_points": bench_store_points,
           "empty_run": bench_empty_run, "first_run": bench_first_run, "config": bench_config,
           "readback": bench_readback, "dataframe": bench_dataframe, "sync": bench_sync,
           "scan_history": bench_scan_history, "peak_rss": bench_peak_rss,
           "worker": bench_worker, "launchers": bench_launchers, "ui": bench_ui}


# -- the table -----------------------------------------------------------------------------------
def rows_from(results: dict, sizes: dict) -> list[dict]:
    rows = []

    def add(group, label, unit, getter, target_ratio=None, target_abs=None):
        values = {}
        for package in PACKAGES:
            data = results.get(group, {}).get(package)
            values[package] = getter(data) if data is not None else None
        lab, sac = values["labbook"], values["sacred"]
        ratio = lab / sac if lab is not None and sac and sac > 0 else None
        if target_abs is not None:
            target = f"<= {target_abs:g} {unit}"
            met = None if lab is None else lab <= target_abs
        elif target_ratio is not None:
            target = f"<= 1/{target_ratio}"
            met = None if ratio is None else ratio <= 1 / target_ratio
        else:
            target, met = "-", None
        rows.append({"group": group, "benchmark": label, "unit": unit, "labbook": lab,
                     "sacred": sac, "ratio": ratio, "target": target, "met": met,
                     "has_target": target != "-"})

    if "import" in results:
        add("import", "import: -X importtime cumulative", "ms",
            lambda d: d["importtime_cumulative_ms"], RATIO_TARGETS["import"])
        add("import", "import: wall - `python -c pass`", "ms",
            lambda d: d["wall_ms"], RATIO_TARGETS["import"])
    if "process" in results:
        add("process", "whole process hello_config_scope -F", "ms", lambda d: d["ms"],
            RATIO_TARGETS["process"])
        add("process", "  same, labbook's copy also in temp dir", "ms",
            lambda d: d["tmp_copy_ms"], RATIO_TARGETS["process"])
    if "log_scalar" in results:
        n = sizes["log_scalar_n"]
        for obs, obs_label in (("no_observer", "no observer"), ("file_observer", "file obs.")):
            for mode, mode_label in (("step", "step"), ("nostep", "no step")):
                add("log_scalar", f"log_scalar x{n:.0e}, {mode_label}, {obs_label}", "ns/call",
                    lambda d, k=f"{obs}_{mode}_loop_ns": d[k], target_abs=LOG_SCALAR_TARGET_NS)
        add("log_scalar", "  same, step, file obs., end-to-end", "ns/call",
            lambda d: d["file_observer_step_e2e_ns"])
    if "points" in results:
        rows += [make_row("points", f"note: {note[:90]}", "s", None)
                 for note in results["points"].get("notes") or []]
        for n in sizes["points"]:
            is_target = n == POINTS_TARGET_N
            add("points", f"{n:.0e} points -> observer, extra", "s",
                lambda d, n=n: d["sizes"][str(n)]["extra_s"],
                target_abs=POINTS_TARGET_SECONDS if is_target else None)
        if POINTS_TARGET_N not in sizes["points"]:
            largest = max(sizes["points"])
            add("points", f"1e+06 points (extrapolated from {largest:.0e})", "s",
                lambda d: None if d["sizes"][str(largest)]["ns_per_point"] is None else
                d["sizes"][str(largest)]["ns_per_point"] * POINTS_TARGET_N / 1e9,
                target_abs=POINTS_TARGET_SECONDS)
    if "store_points" in results:
        rows += store_points_rows(results["store_points"], sizes)
    if "empty_run" in results:
        add("empty_run", f"empty ex.run() x{sizes['empty_runs']}, file obs.", "ms/run",
            lambda d: d["ms_per_run"], RATIO_TARGETS["empty_run"])
        add("empty_run", f"  same, in a store of {sizes['empty_run_prefill']:,} runs", "ms/run",
            lambda d: d.get("prefilled_ms_per_run"))
    if "first_run" in results:
        add("first_run", "first ex.run() of a process, file obs.", "ms",
            lambda d: d["first_ms"])
        add("first_run", "  warm ex.run() in the same process", "ms", lambda d: d["warm_ms"])
        add("first_run", "  first - warm", "ms", lambda d: d["extra_ms"],
            target_abs=FIRST_RUN_TARGET_MS)
    if "config" in results:
        add("config", "1,000-entry config, 5 ingredients", "ms", lambda d: d["ms"],
            RATIO_TARGETS["config"])
    if "readback" in results:
        rows += readback_rows(results["readback"].get("labbook") or {}, sizes)
    if "dataframe" in results:
        rows += dataframe_rows(results["dataframe"], sizes)
    if "sync" in results:
        rows += sync_rows(results["sync"].get("labbook") or {})
    if "scan_history" in results:
        rows += scan_rows(results["scan_history"].get("labbook") or {})
    if "peak_rss" in results:
        rows += rss_rows(results["peak_rss"], sizes)
    if "worker" in results:
        rows += worker_rows(results["worker"].get("labbook") or {})
    if "launchers" in results:
        rows += launcher_rows(results["launchers"].get("labbook") or {})
    if "ui" in results:
        rows += ui_rows(results["ui"].get("labbook") or {})
    return rows


def make_row(group: str, label: str, unit: str, lab, other=None, *, target_ratio=None,
             target_abs=None, note=None) -> dict:
    """A table row: labbook's figure, the other column's (Sacred's, or the baseline the label
    names), and a target that is either a ratio to the other column or absolute."""
    ratio = lab / other if lab is not None and other else None
    if target_abs is not None:
        target = f"<= {target_abs:g} {unit}"
        met = None if lab is None else lab <= target_abs
    elif target_ratio is not None:
        target = f"<= 1/{target_ratio:g}"
        met = None if ratio is None else ratio <= 1 / target_ratio
    else:
        target, met = "-", None
    row = {"group": group, "benchmark": label, "unit": unit, "labbook": lab, "sacred": other,
           "ratio": ratio, "target": target, "met": met, "has_target": target != "-"}
    if note:
        row["note"] = note
    return row


def skipped_row(group: str, label: str, reason: str) -> dict:
    short = reason if len(reason) < 70 else reason[:67] + "..."
    return make_row(group, f"{label}: skipped ({short})", "s", None, note=reason)


def dataframe_rows(data: dict, sizes: dict) -> list[dict]:
    rows = []
    frames = (data.get("labbook") or {}).get("sizes") or {}
    for n in sizes["dataframe_runs"]:
        entry = frames.get(str(n))
        if entry is None:
            continue
        at_target = n == DATAFRAME_TARGET[0]
        rows.append(make_row("dataframe", f"file: {n} runs: to_dataframe() [vs plain json loop]",
                             "s", entry["labbook"]["best_s"], entry["plain"]["best_s"],
                             target_ratio=DATAFRAME_TARGET[1] if at_target else None))
    mlflow = data.get("mlflow") or {}
    n = sizes["mlflow_runs"]
    if "skipped" in mlflow:
        reason = mlflow["skipped"]
        if reason.startswith("skipped (") and reason.endswith(")"):
            reason = reason[len("skipped ("):-1]
        rows.append(skipped_row("dataframe", f"MLflow search_runs of {n} runs", reason))
    elif mlflow:
        lab = (frames.get(str(n)) or {}).get("labbook", {}).get("best_s")
        rows.append(make_row("dataframe", f"{n} runs to a DataFrame [vs MLflow "
                             f"{mlflow.get('mlflow', '')} search_runs, SQLite]", "s",
                             lab, mlflow["best_s"]))
    return rows


def sync_rows(data: dict) -> list[dict]:
    rows = []
    n = data.get("points")
    for kind, entry in (data.get("kinds") or {}).items():
        limit = SYNC_TARGET[1] if n == SYNC_TARGET[0] else None
        rows.append(make_row("sync", f"sync() of {n:.0e} points, file -> {kind}", "s",
                             entry["best_s"], target_abs=limit))
        rows.append(make_row("sync", "  same, whole `labbook sync SRC DST` process", "s",
                             entry["cli_s"]))
    return rows


def worker_rows(data: dict) -> list[dict]:
    rows = []
    for kind, entry in data.items():
        if "skipped" in entry:
            rows.append(skipped_row("worker", f"{kind}: labbook worker", entry["skipped"]))
            continue
        rows.append(make_row("worker", f"{kind}: {entry['runs']} trivial queued runs, "
                             f"{entry['workers']} workers", "runs/s", entry["runs_per_s"]))
        rows.append(make_row("worker", "  one worker: ms per run [vs bare `python exp.py`]",
                             "ms", entry["one_worker_ms_per_run"], entry["bare_ms"]))
    return rows


def launcher_rows(data: dict) -> list[dict]:
    rows = []
    for spec, entry in (data.get("launchers") or {}).items():
        if "skipped" in entry:
            rows.append(skipped_row("launchers", f"launcher {spec}", entry["skipped"]))
            continue
        rows.append(make_row("launchers", f"launcher {spec}: ms per trivial run, one at a time "
                             "[vs bare `python exp.py`]", "ms", entry["ms_per_run"],
                             data.get("bare_ms")))
        rows.append(make_row("launchers", f"  launcher {spec}: start", "s", entry["start_s"]))
    return rows


def ui_rows(data: dict) -> list[dict]:
    """labbook ui: the table's first page and a long run's page, server time (in-process)."""
    rows = []
    for kind, entry in (data.get("stores") or {}).items():
        if "skipped" in entry:
            rows.append(skipped_row("ui", f"{kind}: labbook ui", entry["skipped"]))
            continue
        n, points = entry["runs"], entry["points"]
        full = n >= UI_TARGETS["runs"]
        rows.append(make_row("ui", f"{kind}: ui, {n} runs: 1st page (GET /), cold app", "s",
                             entry["first_page_cold_s"]))
        rows.append(make_row("ui", "  same, warm", "s", entry["first_page"]["best_s"],
                             target_abs=UI_TARGETS["first_page"] if full else None))
        rows.append(make_row("ui", "  1st page, config + summary filter", "s",
                             entry["filtered_page"]["best_s"]))
        at_size = points >= UI_TARGETS["points"]
        # the first requests of the long run: nothing of it read before
        first_chart = entry["run_page"]["first_s"] + entry["quick_series"]["first_s"]
        rows.append(make_row("ui", f"{kind}: ui, run page of a {points:.0e}-point series", "s",
                             entry["run_page"]["first_s"]))
        rows.append(make_row("ui", "  server time to the first chart (page + sample)", "s",
                             first_chart,
                             target_abs=UI_TARGETS["first_chart"] if at_size else None))
        rows.append(make_row("ui", f"  min/max chart data, {entry['series_points']} points",
                             "s", entry["series"]["first_s"]))
        rows.append(make_row("ui", "  same, payload", "KB", entry["series"]["bytes"] / 1024,
                             target_abs=UI_TARGETS["series_kb"] if at_size else None))
        rows.append(make_row("ui", "  full series as CSV", "s", entry["csv"]["best_s"]))
    return rows


def scan_rows(data: dict) -> list[dict]:
    rows = []
    n = data.get("points")
    for kind, entry in (data.get("stores") or {}).items():
        if "skipped" in entry:
            rows.append(skipped_row("scan_history", f"{kind}: scan_history", entry["skipped"]))
            continue
        limit = SCAN_TARGET[1] if n == SCAN_TARGET[0] and kind == SCAN_TARGET[2] else None
        rows.append(make_row("scan_history", f"{kind}: scan_history of {n:.0e} points", "s",
                             entry["best_s"], target_abs=limit))
    return rows


def rss_rows(data: dict, sizes: dict) -> list[dict]:
    rows = [make_row("peak_rss", f"note: {note[:90]}", "MB", None)
            for note in data.get("notes") or []]
    for kind in RSS_KINDS:
        by_package = data.get(kind) or {}

        def figure(package, getter):
            entry = by_package.get(package)
            try:
                return getter(entry) if entry is not None else None
            except KeyError:
                return None

        rows.append(make_row("peak_rss", f"{kind}: peak RSS, run logging no points", "MB",
                             figure("labbook", lambda e: e["baseline_mb"]),
                             figure("sacred", lambda e: e["baseline_mb"])))
        for n in sizes["rss_points"]:
            rows.append(make_row(
                "peak_rss", f"{kind}: peak RSS, run logging {n:.0e} points", "MB",
                figure("labbook", lambda e, n=n: e["sizes"][str(n)]["peak_mb"]),
                figure("sacred", lambda e, n=n: e["sizes"][str(n)]["peak_mb"])))
    return rows


def store_points_rows(results: dict, sizes: dict) -> list[dict]:
    """Rows for metric points into real stores; labbook's targets are absolute."""
    rows = []
    per_beat = sizes["store_per_beat"]
    for note in results.get("notes") or []:
        rows.append({"group": "store_points", "benchmark": f"note: {note[:90]}", "unit": "s",
                     "labbook": None, "sacred": None, "ratio": None, "target": "-",
                     "met": None, "has_target": False})
    for kind in STORE_POINTS_KINDS:
        data = results.get(kind) or {}

        def row(label, unit, getter, target=None, target_text=None):
            lab = getter(data["labbook"]) if "labbook" in data else None
            sac = getter(data["sacred"]) if "sacred" in data else None
            ratio = lab / sac if lab is not None and sac else None
            rows.append({"group": "store_points", "benchmark": f"{kind}: {label}", "unit": unit,
                         "labbook": lab, "sacred": sac, "ratio": ratio,
                         "target": target_text or (f"<= {target:g} {unit}" if target else "-"),
                         "met": None if target is None or lab is None else lab <= target,
                         "has_target": target is not None})

        for n in sizes["store_points"]:
            is_target = n == POINTS_TARGET_N
            row(f"{n:.0e} points -> store, extra", "s",
                lambda d, n=n: d["sizes"][str(n)]["extra_s"],
                STORE_POINTS_TARGET_SECONDS if is_target else None)
        for n in sizes["store_points"]:
            whole = make_row("store_points", f"{kind}: {n:.0e} points, whole ex.run()", "s",
                             *[data[p]["sizes"][str(n)].get("run_s") if p in data else None
                               for p in PACKAGES],
                             target_ratio=STORE_POINTS_RUN_TARGET[1]
                             if kind == "file" and n == STORE_POINTS_RUN_TARGET[0] else None)
            rows.append(whole)
        row(f"heartbeat of {per_beat:.0e} points, first beats", "ms",
            lambda d: d["first_beats_ms"])
        row(f"heartbeat of {per_beat:.0e} points, last beats", "ms",
            lambda d: d["last_beats_ms"])
        row("  last / first (flat = independent of history)", "x",
            lambda d: d["beat_growth"], BEAT_GROWTH_TARGET, f"<= {BEAT_GROWTH_TARGET:g}")
    return rows


def readback_rows(data: dict, sizes: dict) -> list[dict]:
    """Rows of the read-back table: best of the repetitions, absolute targets."""
    rows = []
    points = sizes["readback_points"]
    for kind in READBACK_STORES:
        store = (data.get("stores") or {}).get(kind)
        if store is None:
            continue
        n = store.get("runs", sizes["readback_runs"])
        full = n >= 10_000  # the run-count targets are for 10,000 runs
        labels = {"first_page": f"{n} runs: 1st page, config + summary filter",
                  "first_page_config": f"{n} runs: 1st page, config filter",
                  "dataframe": f"{n} runs: to_dataframe()",
                  "history": f"history() of {points:.0e} points, 500 samples"}
        if "skipped" in store:
            reason = store["skipped"] if len(store["skipped"]) < 60 else \
                store["skipped"][:57] + "..."
            rows.append({"group": "readback", "benchmark": f"{kind}: skipped ({reason})",
                         "unit": "s", "labbook": None, "sacred": None, "ratio": None,
                         "target": "-", "met": None, "has_target": False,
                         "note": store["skipped"]})
            continue
        for key, label in labels.items():
            if key not in store:
                continue
            value = store[key]["best_s"]
            at_size = points >= 1_000_000 if key == "history" else full
            limit = READBACK_TARGETS.get(key) if at_size else None
            if key == "first_page" and limit is not None:
                limit = READBACK_FIRST_PAGE.get(kind, limit)
            if key == "dataframe" and kind != "sqlite":
                limit = None  # the DataFrame target is SQLite's
            rows.append({"group": "readback", "benchmark": f"{kind}: {label}", "unit": "s",
                         "labbook": value, "sacred": None, "ratio": None,
                         "target": f"<= {limit:g} s" if limit else "-",
                         "met": None if limit is None else value <= limit,
                         "has_target": limit is not None})
    return rows


def fmt_value(value, unit):
    if value is None:
        return "n/a"
    if unit == "s":
        text = f"{value:.3f}"
    elif unit == "x":
        return f"{value:.2f}x"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def fmt_ratio(ratio):
    if ratio is None:
        return "n/a"
    if ratio <= 0:
        return f"{ratio:.3f}"
    return f"{ratio:.3f} (1/{1 / ratio:.1f})"


def table(rows: list[dict]) -> str:
    header = ["benchmark", "labbook", "sacred / [vs]", "ratio", "target", "status"]
    body = []
    for r in rows:
        status = "-" if not r["has_target"] else (
            "n/a" if r["met"] is None else ("met" if r["met"] else "MISSED"))
        body.append([r["benchmark"], fmt_value(r["labbook"], r["unit"]),
                     fmt_value(r["sacred"], r["unit"]), fmt_ratio(r["ratio"]), r["target"],
                     status])
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def fmt_ns(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def linearity(results: dict, sizes: dict) -> str:
    lines = []
    if "points" in results:
        lines.append("points -> observer, ns per point (flat = linear):")
        for package in PACKAGES:
            data = results["points"].get(package)
            if data is None:
                continue
            cells = ", ".join(f"{n:.0e}: {fmt_ns(data['sizes'][str(n)]['ns_per_point'])}"
                              for n in sizes["points"])
            lines.append(f"  {package:8s} {cells}")
    for kind, by_package in (results.get("store_points") or {}).items():
        if kind not in STORE_POINTS_KINDS:
            continue
        lines.append(f"points -> {kind} store, ns per point (flat = linear):")
        for package in PACKAGES:
            data = by_package.get(package)
            if data is None:
                continue
            cells = ", ".join(f"{n:.0e}: {fmt_ns(data['sizes'][str(n)]['ns_per_point'])}"
                              for n in sizes["store_points"])
            lines.append(f"  {package:8s} {cells}")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def results_markdown(report: dict, text_table: str, lin: str, missed: list[str]) -> str:
    """benchmarks/RESULTS.md: where and how the figures were measured, then the table."""
    machine, interp = report["machine"], report["interpreters"]
    versions = [f"labbook {report['labbook'].get('version', '?')} (commit "
                f"`{(report['labbook'].get('commit') or '?')[:9]}`"
                f"{', labbook/ modified' if report['labbook'].get('labbook_dirty') else ''})"]
    versions += [f"{name} interpreter: CPython {info['version']}" for name, info in interp.items()]
    versions.append(f"Sacred {SACRED_VERSION if 'sacred' in interp else 'not measured'} "
                    f"({report['sacred']})")
    versions.append(f"MLflow: {report['mlflow']}")
    mode = "quick (`--quick`, smaller N)" if report["quick"] else "full"
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py`; docs/benchmarks.md says what each row measures "
        "and how to read it. Ratio = labbook / the other column (Sacred, or the baseline a row "
        "names in brackets). Lower is better.",
        "",
        f"- Date: {report['created']}",
        f"- Mode: {mode}; benchmarks: {', '.join(report['benchmarks'])}; took "
        f"{report['seconds'] / 60:.1f} min",
        f"- Machine: {machine['platform']}, {machine['cpus']} CPUs ({machine['cpu_model']})",
        f"- Load average (1/5/15 min) at the start: {report['load_start']}, at the end: "
        f"{report['load_end']}",
        f"- Scratch directory: {report['scratch']}",
    ]
    lines += [f"- {v}" for v in versions]
    if report.get("note"):
        lines += ["", report["note"]]
    lines += ["", "```", text_table, "```", ""]
    if lin:
        lines += ["```", lin, "```", ""]
    lines.append(f"Targets missed: {', '.join(missed) if missed else 'none'}.")
    if report.get("failed"):
        lines.append(f"Benchmarks that FAILED (no figures): {', '.join(report['failed'])}.")
    return "\n".join(lines) + "\n"


def git_state() -> dict:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "labbook"],
                                    cwd=REPO, capture_output=True, text=True).stdout.strip())
    except OSError:
        return {}
    return {"commit": head, "labbook_dirty": dirty}


def labbook_version() -> str:
    text = (REPO / "labbook" / "_version.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    return found.group(1) if found else "?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N (smoke test)")
    parser.add_argument("--only-labbook", action="store_true",
                        help="measure labbook only; the sacred column shows n/a")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--labbook-python", help="interpreter for labbook (default: this one)")
    parser.add_argument("--sacred-python", help="interpreter with sacred installed "
                                                "(default: benchmarks/.venv-sacred)")
    parser.add_argument("--mlflow-python", help="interpreter with mlflow, sqlalchemy, alembic "
                                                "and pandas (default: benchmarks/.venv-mlflow)")
    parser.add_argument("--results-md", help="where to write the Markdown report (default: "
                                             "benchmarks/RESULTS.md after a full run of every "
                                             "benchmark, else benchmarks/results/RESULTS.md)")
    parser.add_argument("--note", help="a paragraph for the Markdown report, e.g. what else "
                                       "the machine was doing")
    parser.add_argument("--scratch", help="directory for observer output and temp files "
                                          "(default: /dev/shm when writable, else $TMPDIR)")
    parser.add_argument("--output", default=str(HERE / "results" / "latest.json"),
                        help="where to write the JSON results")
    args = parser.parse_args(argv)
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")

    try:
        pythons = {"labbook": labbook_python(args)}
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    sac, sacred_status = sacred_python(args)
    if sac is not None:
        pythons["sacred"] = sac
    size = SIZES[args.quick]
    if "dataframe" in selected:
        MLFLOW["python"], MLFLOW["status"] = mlflow_python(args)

    global SCRATCH
    base = Path(args.scratch) if args.scratch else default_scratch()
    SCRATCH = Path(tempfile.mkdtemp(prefix="labbook-bench-", dir=base))
    started = time.perf_counter()
    load_start = load_average()
    results = {}
    failed: dict[str, str] = {}
    try:
        for name in selected:
            t0 = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                results[name] = RUNNERS[name](pythons, size)
            except BenchError as exc:  # the others still run; the table and exit status say so
                print(f"benchmark {name} failed: {exc}", file=sys.stderr, flush=True)
                # the last line: a workload's error (its first lines name the command)
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                failed[name] = lines[-1] if lines else type(exc).__name__
                continue
            print(f"  {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr,
                  flush=True)
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)

    rows = rows_from(results, size)
    rows += [make_row(name, f"{name}: FAILED ({reason[:80]})", "s", None, note=reason)
             for name, reason in failed.items()]
    text_table = table(rows)
    print(text_table)
    lin = linearity(results, size)
    if lin:
        print()
        print(lin)
    missed = [r["benchmark"] for r in rows if r["met"] is False]
    print()
    print(f"targets missed: {', '.join(missed) if missed else 'none'}"
          f"   (ratio = labbook / sacred; sacred: {sacred_status})")
    if failed:
        print(f"benchmarks FAILED: {', '.join(failed)} (see stderr)")

    report = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": size,
        "seconds": time.perf_counter() - started,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "cpu_model": cpu_model()},
        "load_start": load_start,
        "load_end": load_average(),
        "benchmarks": selected,
        "note": args.note,
        "interpreters": {p: {"path": py, "version": python_version(py)}
                         for p, py in pythons.items()},
        "sacred": sacred_status,
        "mlflow": MLFLOW["status"],
        "scratch": str(base),
        "labbook": {**git_state(), "version": labbook_version()},
        "rows": rows,
        "failed": failed,
        "results": results,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"results written to {out}", file=sys.stderr)
    if args.results_md:
        md = Path(args.results_md)
    elif not args.quick and set(selected) == set(BENCHMARKS):
        md = HERE / "RESULTS.md"
    else:
        md = HERE / "results" / "RESULTS.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(results_markdown(report, text_table, lin, missed))
    print(f"report written to {md}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
