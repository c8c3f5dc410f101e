"""MLflow's ``search_runs`` to a DataFrame, the counterpart of the DataFrame benchmark.

Runs in the benchmark-only MLflow venv (``benchmarks/.venv-mlflow``)::

    python mlflow_search.py N SCRATCH REPS

Records N runs into a local SQLite tracking store (``sqlite:///SCRATCH/mlflow.db``, the
backend MLflow recommends; its file store refuses to open by default since MLflow 3) with
the shape of the DataFrame benchmark's runs: 10 params and 5 metrics of 10 steps each, one
``log_batch`` per run. Then times ``mlflow.search_runs(experiment_ids=[...])`` (a pandas
DataFrame of params and last metric values), best of REPS, and checks that it has N rows.
Prints one ``@@RESULT`` JSON line.
"""
import json
import logging
import math
import os
import random
import sys
import time
import warnings

n, scratch, reps = int(float(sys.argv[1])), sys.argv[2], int(sys.argv[3])
warnings.simplefilter("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

N_CONFIG, N_METRICS, N_POINTS = 10, 5, 10
uri = "sqlite:///" + os.path.join(scratch, "mlflow.db")
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
experiment_id = client.create_experiment("frame")
rng = random.Random(11)
t0 = time.perf_counter()
for i in range(n):
    run = client.create_run(experiment_id)
    params = {"lr": round(10 ** rng.uniform(-4, 0), 6), "seed": i,
              "optimizer": rng.choice(["sgd", "adam"]), "net.depth": rng.choice([2, 4, 8]),
              "net.width": rng.choice([64, 128])}
    for j in range(N_CONFIG - 5):
        params[f"p{j}"] = rng.random()
    scale = rng.random()
    stamp = int(time.time() * 1000)
    metrics = [Metric(f"m{k}", scale * math.exp(-s / 3) + k, stamp, s)
               for k in range(N_METRICS) for s in range(N_POINTS)]
    client.log_batch(run.info.run_id, metrics=metrics,
                     params=[Param(key, str(value)) for key, value in params.items()])
    client.set_terminated(run.info.run_id)
write_s = time.perf_counter() - t0

samples, frame = [], None
for _ in range(reps):
    t0 = time.perf_counter()
    frame = mlflow.search_runs(experiment_ids=[experiment_id], max_results=max(n, 1000))
    samples.append(time.perf_counter() - t0)
if len(frame) != n:
    raise SystemExit(f"search_runs gave {len(frame)} rows, not {n}")
print("@@RESULT " + json.dumps({"runs": n, "write_s": write_s, "first_s": samples[0],
                                "best_s": min(samples), "samples_s": samples,
                                "columns": len(frame.columns), "mlflow": mlflow.__version__}))
