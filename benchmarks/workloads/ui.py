"""``labbook ui``: server time of the runs table and of a run page with a long series.

labbook only::

    python ui.py labbook RUNS POINTS SCRATCH [STORES]

Writes RUNS runs (8 config entries, 2 metrics x 20 points each) straight through each store's
write API, plus one run with a metric of POINTS points, then times requests to the dashboard
app (``labbook.ui.app.create_app``, through Starlette's in-process test client, so the figures
are the server's time without a network):

- ``first_page``: ``GET /``, the first page (50 runs) newest first, on a fresh app (``cold``)
  and the best of three after it;
- ``filtered_page``: ``GET /table?q=config.lr > 0.05 and summary.loss < 0.5``;
- ``run_page``: ``GET /run/ID`` of the long run (the HTML; its charts come next);
- ``quick_series``: ``GET /run/ID/series?quick=1``, what the page asks first: a long series
  as the store's native even sample; ``run_page`` + ``quick_series`` is the server's share of
  the time to the first chart;
- ``series``: ``GET /run/ID/series``, what the page asks next: the min/max decimation, read
  from the whole series (its first request; the later ones reuse it), time and bytes;
- ``csv``: ``GET /run/ID/metric/loss.csv``, the full series.

STORES is a comma-separated subset of ``sqlite,postgresql`` (default: both); PostgreSQL uses
``$LABBOOK_BENCH_POSTGRES_URL`` (see _servers.py) and is reported as skipped without it.
Prints one ``@@RESULT`` JSON line.
"""
import datetime as dt
import json
import math
import os
import random
import sys
import time
import warnings

pkg, runs, points, scratch = sys.argv[1], int(sys.argv[2]), int(float(sys.argv[3])), sys.argv[4]
stores = (sys.argv[5] if len(sys.argv) > 5 else "sqlite,postgresql").split(",")
if pkg != "labbook":
    raise SystemExit("the ui benchmark measures labbook only")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _servers import server_store  # noqa: E402

from labbook.stores import open_store  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from labbook.ui.app import create_app  # noqa: E402

T0 = dt.datetime(2026, 1, 1)
FILTER = "config.lr > 0.05 and summary.loss < 0.5"


def write_runs(store, n: int) -> None:
    rng = random.Random(3)
    steps = list(range(20))
    stamps = [T0 + dt.timedelta(seconds=s) for s in steps]
    for i in range(n):
        start = T0 + dt.timedelta(seconds=i)
        config = {"lr": round(10 ** rng.uniform(-4, 0), 6), "batch": rng.choice([16, 32, 64]),
                  "seed": i, "optimizer": rng.choice(["sgd", "adam"]),
                  "layers": [64, 64], "dropout": rng.random(), "warmup": i % 2 == 0,
                  "name": f"trial-{i}"}
        run_id = store.create_run({
            "experiment": {"name": "ui_bench", "base_dir": "/bench", "sources": [],
                           "dependencies": ["labbook"], "mainfile": "bench.py"},
            "command": "main", "host": {"hostname": "bench"}, "start_time": start,
            "heartbeat": start, "config": config, "meta": {"command": "main", "options": {}},
            "status": "RUNNING", "resources": [], "artifacts": [], "captured_out": "",
            "info": {}})
        scale = rng.random()
        store.append_metrics(run_id, {
            "loss": {"steps": steps, "values": [scale * math.exp(-s / 8) for s in steps],
                     "timestamps": stamps},
            "acc": {"steps": steps, "values": [1 - scale * math.exp(-s / 8) for s in steps],
                    "timestamps": stamps}})
        stop = start + dt.timedelta(seconds=60)
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": stop, "heartbeat": stop})


def write_long_run(store, n: int):
    run_id = store.create_run({"experiment": {"name": "ui_bench_long"}, "command": "main",
                               "host": {"hostname": "bench"}, "start_time": T0,
                               "heartbeat": T0, "config": {"lr": 0.1},
                               "meta": {"command": "main"}, "status": "RUNNING",
                               "artifacts": [], "captured_out": "", "info": {}})
    for first in range(0, n, 100_000):
        steps = list(range(first, min(n, first + 100_000)))
        store.append_metrics(run_id, {"loss": {
            "steps": steps, "values": [1.0 / (s + 1) + 0.1 * math.sin(s / 300) for s in steps],
            "timestamps": [T0 + dt.timedelta(milliseconds=s) for s in steps]}})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0})
    return run_id


def timed_get(client, path, params=None, reps=3) -> dict:
    samples, size = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        samples.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: "
                             f"{response.text[:300]}")
        size = len(response.content)
    return {"first_s": samples[0], "best_s": min(samples), "samples_s": samples,
            "bytes": size}


def measure(url: str) -> dict:
    out: dict = {"runs": runs, "points": points}
    store = open_store(url)
    t0 = time.perf_counter()
    write_runs(store, runs)
    out["write_runs_s"] = time.perf_counter() - t0
    long_id = write_long_run(store, points)
    store.close()
    with TestClient(create_app(url)) as client:  # a fresh app: the first request is cold
        t0 = time.perf_counter()
        page = client.get("/")
        out["first_page_cold_s"] = time.perf_counter() - t0
        out["first_page_rows"] = page.text.count("<tr data-run=")
        out["first_page"] = timed_get(client, "/")
        out["filtered_page"] = timed_get(client, "/table", {"q": FILTER})
        out["run_page"] = timed_get(client, f"/run/{long_id}")
        out["quick_series"] = timed_get(client, f"/run/{long_id}/series", {"quick": "1"},
                                        reps=1)
        out["series"] = timed_get(client, f"/run/{long_id}/series")
        series = client.get(f"/run/{long_id}/series").json()["metrics"]["loss"]
        out["series_points"] = len(series["step"])
        out["csv"] = timed_get(client, f"/run/{long_id}/metric/loss.csv", reps=1)
    return out


result = {"runs": runs, "points": points, "stores": {}}
for kind in stores:
    if kind == "sqlite":
        result["stores"][kind] = measure("sqlite:///" + os.path.join(scratch, "ui.db"))
        continue
    url, cleanup, reason = server_store(kind)
    if url is None:
        result["stores"][kind] = {"skipped": reason}
        continue
    try:
        result["stores"][kind] = measure(url)
    finally:
        cleanup()
print("@@RESULT " + json.dumps(result))
