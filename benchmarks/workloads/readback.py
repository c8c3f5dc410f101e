"""Read-back: queries, DataFrames and long histories on the file, SQLite and Mongo stores.

labbook only (Sacred has no read API to compare with)::

    python readback.py labbook RUNS POINTS SCRATCH [STORES [MONGO_RUNS]]

Writes RUNS runs (20 config entries, 10 metrics x 100 points each) straight through each
store's write API, plus one run with a metric of POINTS points, then times on a fresh
``Api``:

- ``first_page``: the first page (50 runs) of ``runs("config.lr > 0.05 and summary.loss <
  0.5")``, newest first; the store answers both conditions (the summary from the last values
  it keeps for every run);
- ``first_page_config``: the same with the config condition only;
- ``dataframe``: ``runs().to_dataframe()`` of every run (SQLite and MongoDB);
- ``history``: ``run.history("loss")`` of the long metric with the default 500 samples.

STORES is a comma-separated subset of ``file,sqlite,mongo`` (default: all three). Mongo uses
``$LABBOOK_BENCH_MONGO_URL``, else a mongoeco server started from ``.venv-mongoeco`` (see
tests/stores/mongo_server.py); without either it is reported as skipped with the reason.
MONGO_RUNS (default RUNS) is the number of runs written to Mongo. mongoeco, a pure-Python
server, takes about half a second per run written through the store, so there the first run is
written through the store and the others are copies of its documents (run and metrics, new
ids and values) inserted in bulk: the documents are exactly what the store writes, and reading
them is what is measured.
Prints one ``@@RESULT`` JSON line.
"""
import datetime as dt
import json
import math
import os
import random
import sys
import time

pkg, runs, points, scratch = sys.argv[1], int(sys.argv[2]), int(float(sys.argv[3])), sys.argv[4]
stores = (sys.argv[5] if len(sys.argv) > 5 else "file,sqlite,mongo").split(",")
mongo_runs = int(sys.argv[6]) if len(sys.argv) > 6 else runs
if pkg != "labbook":
    raise SystemExit("the read-back benchmark measures labbook only")

from labbook import Api  # noqa: E402
from labbook.stores import open_store  # noqa: E402

N_CONFIG, N_METRICS, N_POINTS = 20, 10, 100
QUERY = "config.lr > 0.05 and summary.loss < 0.5"
CONFIG_QUERY = "config.lr > 0.05"
T0 = dt.datetime(2026, 1, 1)
WRITE_BATCH = 1000  # metric points per append_metrics call of the long run


def run_doc(i: int, rng: random.Random) -> dict:
    config = {"lr": round(10 ** rng.uniform(-4, 0), 6), "batch_size": rng.choice([16, 32, 64]),
              "seed": i, "optimizer": rng.choice(["sgd", "adam"])}
    for j in range(N_CONFIG - len(config)):
        config[f"p{j:02d}"] = rng.random()
    start = T0 + dt.timedelta(seconds=i)
    return {"experiment": {"name": "readback", "base_dir": "/bench", "sources": [],
                           "dependencies": ["labbook"], "mainfile": "bench.py"},
            "command": "main", "host": {"hostname": "bench", "os": ["Linux", "x"]},
            "start_time": start, "heartbeat": start, "config": config,
            "meta": {"command": "main", "options": {}}, "status": "RUNNING",
            "resources": [], "artifacts": [], "captured_out": "", "info": {}}


def write_runs(store, n: int) -> None:
    rng = random.Random(7)
    steps = list(range(N_POINTS))
    stamps = [T0 + dt.timedelta(seconds=s) for s in steps]
    for i in range(n):
        doc = run_doc(i, rng)
        run_id = store.create_run(doc)
        scale = rng.random()
        metrics = {f"m{k}": {"steps": steps,
                             "values": [scale * math.exp(-s / 30) + k for s in steps],
                             "timestamps": stamps}
                   for k in range(1, N_METRICS)}
        metrics["loss"] = {"steps": steps, "values": [scale * math.exp(-s / 30) for s in steps],
                           "timestamps": stamps}
        store.append_metrics(run_id, metrics)
        stop = doc["start_time"] + dt.timedelta(seconds=60)
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": stop, "heartbeat": stop,
                                  "result": scale})


def write_runs_mongo(store, n: int) -> None:
    """``write_runs`` for MongoDB: one run through the store, the rest copies of its run
    document (new id, config, times and summary) inserted in bulk. The copies carry their
    summaries (``labbook_last``, what the queries and the DataFrame read) but no metric
    documents: mongoeco's inserts into the indexed metrics collection slow down with its size
    (hours for 10^5 documents), and no figure here reads another run's series."""
    write_runs(store, 1)
    template = store.runs.find_one({"experiment.name": "readback"})
    names = sorted(template["labbook_last"])
    rng = random.Random(7)
    batch = []
    for i in range(1, n):
        run_id = template["_id"] + i
        doc = dict(template, _id=run_id, config=run_doc(i, rng)["config"])
        scale = rng.random()
        doc["start_time"] = doc["heartbeat"] = T0 + dt.timedelta(seconds=i)
        doc["stop_time"] = doc["start_time"] + dt.timedelta(seconds=60)
        doc["result"] = scale
        doc["labbook_last"] = {name: scale * math.exp(-(N_POINTS - 1) / 30)
                               + (0 if name == "loss" else int(name[1:])) for name in names}
        # Sacred's references to the metric documents point at the template's: dropped
        doc["info"] = {k: v for k, v in (doc.get("info") or {}).items() if k != "metrics"}
        batch.append(doc)
        if len(batch) >= 20:  # small batches: mongoeco slows down with the size of a batch
            store.runs.insert_many(batch)
            batch = []
    if batch:
        store.runs.insert_many(batch)


def write_long_run(store, n: int):
    doc = run_doc(10 ** 9, random.Random(1))
    doc["experiment"]["name"] = "readback_long"
    run_id = store.create_run(doc)
    for first in range(0, n, WRITE_BATCH * 100):
        steps = list(range(first, min(n, first + WRITE_BATCH * 100)))
        store.append_metrics(run_id, {"loss": {
            "steps": steps, "values": [1.0 / (s + 1) for s in steps],
            "timestamps": [T0 + dt.timedelta(milliseconds=s) for s in steps]}})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0})
    return run_id


def timed(fn, reps: int = 3) -> dict:
    samples, value = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        value = fn()
        samples.append(time.perf_counter() - t0)
    return {"first_s": samples[0], "best_s": min(samples), "samples_s": samples,
            "value": value}


def first_page(url: str, query: str) -> int:
    with Api(url) as api:  # a fresh Api (and store) each time: no warm caches of our own
        return len(api.runs(query, per_page=50)[:50])


def measure(kind: str, url: str, n_runs: int) -> dict:
    out: dict = {"url": url.split("?")[0], "runs": n_runs}
    store = open_store(url)
    t0 = time.perf_counter()
    (write_runs_mongo if kind == "mongo" else write_runs)(store, n_runs)
    out["write_runs_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    long_id = write_long_run(store, points)
    out["write_long_s"] = time.perf_counter() - t0
    store.close()
    out["first_page"] = timed(lambda: first_page(url, QUERY))
    out["first_page_config"] = timed(lambda: first_page(url, CONFIG_QUERY))
    if kind in ("sqlite", "mongo"):
        def frame():
            with Api(url) as api:
                return len(api.runs(experiment="readback").to_dataframe())
        out["dataframe"] = timed(frame, reps=2)

    def history():
        with Api(url) as api:
            return len(api.run(long_id).history("loss"))
    out["history"] = timed(history)
    return out


def mongo_url():
    given = os.environ.get("LABBOOK_BENCH_MONGO_URL")
    if given:
        return given.rstrip("/") + "/labbook_readback_bench", None, None
    try:
        import pymongo  # noqa: F401

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        from tests.stores.mongo_server import start_mongoeco
    except ImportError as exc:
        return None, None, f"no MongoDB ({exc})"
    try:
        server = start_mongoeco()
    except RuntimeError as exc:
        return None, None, f"no MongoDB: {exc}"
    return server.url("labbook_readback_bench"), server, None


result = {"runs": runs, "points": points, "query": QUERY, "stores": {}}
for kind in stores:
    if kind == "file":
        result["stores"][kind] = measure(kind, "file://" + os.path.join(scratch, "file_runs"),
                                         runs)
    elif kind == "sqlite":
        result["stores"][kind] = measure(
            kind, "sqlite:///" + os.path.join(scratch, "readback.db"), runs)
    elif kind == "mongo":
        url, server, reason = mongo_url()
        if url is None:
            result["stores"][kind] = {"skipped": reason}
            continue
        try:
            result["stores"][kind] = measure(kind, url, mongo_runs)
        except Exception as exc:  # the server gave up: the other stores' figures stand
            import traceback

            traceback.print_exc()
            result["stores"][kind] = {"skipped": f"failed: {type(exc).__name__}: {exc}"}
        finally:
            if server is not None:
                server.stop()
    brief = {k: (v["best_s"] if isinstance(v, dict) and "best_s" in v else v)
             for k, v in result["stores"][kind].items()}
    print(f"  {kind}: {json.dumps(brief, default=str)}", file=sys.stderr, flush=True)
print("@@RESULT " + json.dumps(result, default=str))
