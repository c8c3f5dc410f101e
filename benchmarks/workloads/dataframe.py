"""A DataFrame of every run of a file store: labbook's API against a plain ``json.load`` loop.

labbook only (the plain loop is the baseline)::

    python dataframe.py labbook N1,N2,... SCRATCH REPS

Writes runs (10 config entries, 5 metrics of 10 points each) into a file store through the
store's write API, the way an observer does (``create_run``, ``append_metrics``, then
``update_run`` to COMPLETED, which also writes Sacred's ``metrics.json``), growing the store
to each N in turn. For each N it times, best of REPS:

- ``labbook``: ``labbook.Api(dir).runs().to_dataframe()`` on a fresh ``Api``;
- ``plain``: the loop a user writes without labbook: for each run directory of Sacred's
  layout, ``json.load`` of ``run.json``, ``config.json`` and ``metrics.json``, one row of
  id, name, status, start time, duration, the flattened config and the last value of each
  metric, and ``pandas.DataFrame`` of the rows.

Both frames must have N rows and the same ``config.*`` and ``summary.*`` columns, else the
workload fails. Prints one ``@@RESULT`` JSON line.
"""
import datetime as dt
import json
import math
import os
import random
import sys
import time

pkg, sizes, scratch, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sizes = sorted(int(float(x)) for x in sizes.split(","))
if pkg != "labbook":
    raise SystemExit("the DataFrame benchmark measures labbook (the baseline is plain json)")

import pandas as pd  # noqa: E402

from labbook import Api  # noqa: E402
from labbook.stores import open_store  # noqa: E402

N_CONFIG, N_METRICS, N_POINTS = 10, 5, 10
T0 = dt.datetime(2026, 1, 1)
ROOT = os.path.join(scratch, "runs")


def write_runs(store, first, last, rng):
    steps = list(range(N_POINTS))
    stamps = [T0 + dt.timedelta(seconds=s) for s in steps]
    for i in range(first, last):
        config = {"lr": round(10 ** rng.uniform(-4, 0), 6), "seed": i,
                  "optimizer": rng.choice(["sgd", "adam"]),
                  "net": {"depth": rng.choice([2, 4, 8]), "width": rng.choice([64, 128])}}
        for j in range(N_CONFIG - 5):
            config[f"p{j}"] = rng.random()
        start = T0 + dt.timedelta(seconds=i)
        run_id = store.create_run({
            "experiment": {"name": "frame", "base_dir": "/bench", "sources": [],
                           "dependencies": ["labbook"], "mainfile": "bench.py"},
            "command": "main", "host": {"hostname": "bench"}, "start_time": start,
            "heartbeat": start, "config": config, "meta": {"command": "main", "options": {}},
            "status": "RUNNING", "resources": [], "artifacts": [], "captured_out": "",
            "info": {}})
        scale = rng.random()
        store.append_metrics(run_id, {
            f"m{k}": {"steps": steps, "values": [scale * math.exp(-s / 3) + k for s in steps],
                      "timestamps": stamps} for k in range(N_METRICS)})
        stop = start + dt.timedelta(seconds=60)
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": stop, "heartbeat": stop,
                                  "result": scale})


def flatten(prefix, value, out):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = value


def plain_loop(root):
    rows = []
    for name in os.listdir(root):
        directory = os.path.join(root, name)
        if not name.isdigit() or not os.path.isdir(directory):
            continue
        with open(os.path.join(directory, "run.json"), encoding="utf-8") as fh:
            run = json.load(fh)
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        try:
            with open(os.path.join(directory, "metrics.json"), encoding="utf-8") as fh:
                metrics = json.load(fh)
        except FileNotFoundError:
            metrics = {}
        start = dt.datetime.fromisoformat(run["start_time"]) if run.get("start_time") else None
        stop = dt.datetime.fromisoformat(run["stop_time"]) if run.get("stop_time") else None
        row = {"id": int(name), "name": run["experiment"]["name"], "status": run["status"],
               "start_time": start,
               "duration": (stop - start).total_seconds() if start and stop else None}
        for key, value in config.items():
            flatten(f"config.{key}", value, row)
        for metric, series in metrics.items():
            values = series.get("values") or []
            row[f"summary.{metric}"] = values[-1] if values else None
        rows.append(row)
    return pd.DataFrame(rows)


def labbook_frame(root):
    with Api(root) as api:
        return api.runs().to_dataframe()


def timed(fn, n):
    samples, frame = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        frame = fn(ROOT)
        samples.append(time.perf_counter() - t0)
    if len(frame) != n:
        raise SystemExit(f"{fn.__name__}: {len(frame)} rows, not {n}")
    columns = sorted(c for c in frame.columns if c.startswith(("config.", "summary.")))
    return {"first_s": samples[0], "best_s": min(samples), "samples_s": samples}, columns


rng = random.Random(11)
result = {"sizes": {}, "reps": reps}
store = open_store("file://" + ROOT)
written = 0
for n in sizes:
    t0 = time.perf_counter()
    write_runs(store, written, n, rng)
    write_s = time.perf_counter() - t0
    written = n
    lab, lab_columns = timed(labbook_frame, n)
    plain, plain_columns = timed(plain_loop, n)
    if lab_columns != plain_columns:
        raise SystemExit(f"columns differ: labbook {lab_columns} plain {plain_columns}")
    result["sizes"][str(n)] = {"labbook": lab, "plain": plain, "write_s": write_s,
                               "columns": len(lab_columns)}
    print(f"  dataframe {n} runs: labbook {lab['best_s']:.3f} s, plain {plain['best_s']:.3f} s",
          file=sys.stderr, flush=True)
store.close()
print("@@RESULT " + json.dumps(result))
