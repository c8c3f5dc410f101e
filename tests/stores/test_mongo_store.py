"""The MongoDB store and observer, through the real pymongo driver.

Against a server speaking MongoDB's wire protocol (mongoeco from a side venv, or a real MongoDB
from ``LABBOOK_TEST_MONGO_URL``; see mongo_server.py) and, for failures, mockupdb servers whose
every reply the test scripts.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time

import pytest

pymongo = pytest.importorskip("pymongo", reason="pymongo is not installed (pip install pymongo)")

import bson  # noqa: E402
import gridfs  # noqa: E402

from labbook import Experiment, LabbookInterrupt, TimeoutInterrupt  # noqa: E402
from labbook.errors import MongoConnectionError, ObserverError, StoreUnusableError  # noqa: E402
from labbook.observers import (DurableObserver, MongoObserver,  # noqa: E402
                               observers_from_options)
from labbook.stores import open_store  # noqa: E402
from labbook.stores.file import FileStore  # noqa: E402
from labbook.stores.mongo import (METRICS_BUCKET_SIZE, MongoStore, main,  # noqa: E402
                                  parse_mongo_db_arg, split_url, upload_failed_runs)
from labbook.stores.query import matches, sort_runs  # noqa: E402
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: E402,F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THIS_FILE = os.path.abspath(__file__)


def ms(t: dt.datetime) -> dt.datetime:
    """MongoDB keeps milliseconds."""
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def raw_db(url: str):
    parts = split_url(url)
    client = pymongo.MongoClient(parts.client_url, serverSelectionTimeoutMS=5000)
    return client, client[parts.database]


def experiment(url: str, name: str = "mongo_ex", **observer_kwargs) -> Experiment:
    ex = Experiment(name)
    ex.add_config(lr=0.1, layers=[32, 64], nested={"depth": 3, "name": "v1.2"})
    db_name = split_url(url).database
    ex.observers.append(MongoObserver(url=url, db_name=db_name, **observer_kwargs))
    return ex


# --- a run through the public API ----------------------------------------------------------------

def test_full_run_is_readable_exactly(mongo_url, tmp_path):
    small = tmp_path / "weights.bin"
    small.write_bytes(bytes(range(256)) * 40)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024))
    resource = tmp_path / "data.csv"
    resource.write_text("a,b\n1,2\n")
    logged: list[tuple[str, float]] = []

    ex = experiment(mongo_url)

    @ex.main
    def main_fn(_run, lr):
        print("hello from the run")
        for beat in range(4):
            for i in range(5):
                value = 1.0 / (beat * 5 + i + 1)
                _run.log_scalar("loss", value)
                logged.append(("loss", value))
            time.sleep(0.25)  # several heartbeats carry the points
        _run.log_scalar("odd", float("nan"))
        _run.log_scalar("odd", float("inf"))
        _run.log_scalar("odd", float("-inf"))
        _run.add_artifact(str(small))
        _run.add_artifact(str(big), name="models/big.bin", content_type="application/x-bin",
                          metadata={"epoch.last": 3})
        _run.open_resource(str(resource)).close()
        _run.info["metrics.best"] = {"$max": 0.9, "plain": [1, {"a.b": 2}]}
        return {"acc.top1": 0.5, "$score": lr * 2}

    run = ex.run(options={"--beat-interval": 0.1, "--capture": "sys",
                          "--no-system-metrics": True})
    store = open_store(mongo_url)
    doc = store.get(run._id)
    assert isinstance(run._id, int)
    assert doc["_id"] == run._id and doc["status"] == "COMPLETED"
    assert doc["format"] == "MongoObserver-0.7.0"
    assert doc["command"] == "main_fn"
    assert doc["config"] == {"lr": 0.1, "layers": [32, 64], "nested": {"depth": 3,
                                                                       "name": "v1.2"},
                             "seed": run.config["seed"]}
    assert doc["info"] == {"metrics.best": {"$max": 0.9, "plain": [1, {"a.b": 2}]}}
    assert doc["result"] == {"acc.top1": 0.5, "$score": 0.2}
    assert doc["host"]["hostname"] == run.host_info["hostname"]
    assert doc["experiment"]["name"] == "mongo_ex"
    assert doc["start_time"] == ms(run.start_time) and doc["stop_time"] == ms(run.stop_time)
    assert doc["heartbeat"] >= doc["start_time"]
    assert "hello from the run" in doc["captured_out"]
    assert [a["name"] for a in doc["artifacts"]] == ["weights.bin", "models/big.bin"]
    assert store.open_artifact(run._id, "weights.bin").read() == small.read_bytes()
    with store.open_artifact(run._id, "models/big.bin") as fh:
        assert fh.read() == big.read_bytes()
        assert fh.metadata == {"epoch\\u002elast": 3}  # GridFS metadata keys are escaped too
    with pytest.raises(FileNotFoundError, match="weights.bin"):
        store.open_artifact(run._id, "missing.bin")
    md5 = hashlib.md5(resource.read_bytes()).hexdigest()
    assert doc["resources"] == [[str(resource), md5]]

    history = store.history(run._id)
    assert history["loss"]["values"] == [v for _, v in logged]
    assert history["loss"]["steps"] == list(range(20))
    assert all(isinstance(t, dt.datetime) for t in history["loss"]["timestamps"])
    odd = history["odd"]["values"]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf]
    assert store.history(run._id, names=["odd"]).keys() == {"odd"}

    client, db = raw_db(mongo_url)
    try:
        raw = db.runs.find_one({"_id": run._id})
        # escaped on the server, where '.' and '$' in keys are not allowed
        assert "metrics\\u002ebest" in raw["info"]
        assert "\\u0024max" in raw["info"]["metrics\\u002ebest"]
        assert "\\u0024score" in raw["result"]
        assert all(isinstance(a["file_id"], bson.ObjectId) for a in raw["artifacts"])
        fs = gridfs.GridFS(db)
        rel, file_id = next(s for s in raw["experiment"]["sources"]
                            if s[0].endswith("test_mongo_store.py"))
        with open(THIS_FILE, "rb") as fh:
            assert fs.get(file_id).read() == fh.read()
        assert fs.find_one({"md5": md5}).read() == resource.read_bytes()
        big_id = raw["artifacts"][1]["file_id"]
        assert db["fs.files"].find_one({"_id": big_id})["contentType"] == "application/x-bin"
        metric_docs = list(db.metrics.find({"run_id": run._id, "name": "loss"}))
        assert len(metric_docs) == 1 and metric_docs[0]["values"] == history["loss"]["values"]
    finally:
        client.close()

    assert [r["_id"] for r in store.find({"status": "COMPLETED"})] == [run._id]
    assert store.find({"info.metrics.best": {"$exists": True}}) == []  # a path cannot hold '.'


def test_sources_are_stored_once_per_content(mongo_url):
    ex = experiment(mongo_url)
    ex.main(lambda: 1)
    first = ex.run(options={"--no-system-metrics": True})
    second = ex.run(options={"--no-system-metrics": True})
    store = open_store(mongo_url)
    sources = [dict(store.get(r._id)["experiment"]["sources"]) for r in (first, second)]
    assert sources[0] == sources[1] and sources[0]
    client, db = raw_db(mongo_url)
    try:
        with open(THIS_FILE, "rb") as fh:
            md5 = hashlib.md5(fh.read()).hexdigest()
        assert db["fs.files"].count_documents({"md5": md5}) == 1
    finally:
        client.close()


class Diverged(LabbookInterrupt):
    STATUS = "DIVERGED"


@pytest.mark.parametrize("ending, status", [
    (None, "COMPLETED"), (RuntimeError("exploded"), "FAILED"),
    (KeyboardInterrupt(), "INTERRUPTED"), (TimeoutInterrupt(), "TIMEOUT"),
    (Diverged(), "DIVERGED")])
def test_each_terminal_status_is_stored(mongo_url, ending, status):
    ex = experiment(mongo_url)

    @ex.main
    def main_fn(_run):
        _run.log_scalar("x", 1)
        print("before the end")
        if ending is not None:
            raise ending
        return 7

    if ending is None:
        run = ex.run(options={"--capture": "sys", "--no-system-metrics": True})
        run_id = run._id
    else:
        with pytest.raises(type(ending)):
            ex.run(options={"--capture": "sys", "--no-system-metrics": True})
        run_id = 1
    store = open_store(mongo_url)
    doc = store.get(run_id)
    assert doc["status"] == status
    assert doc["stop_time"] is not None
    assert "before the end" in doc["captured_out"]
    assert store.history(run_id)["x"]["values"] == [1]
    if status == "COMPLETED":
        assert doc["result"] == 7
    if status == "FAILED":
        assert "RuntimeError: exploded" in "".join(doc["fail_trace"])
    assert [r["_id"] for r in store.find({"status": status})] == [run_id]


def test_queued_run(mongo_url):
    ex = experiment(mongo_url)
    ex.main(lambda: 1)
    ex.run(options={"--queue": True})
    doc = open_store(mongo_url).get(1)
    assert doc["status"] == "QUEUED" and isinstance(doc["queue_time"], dt.datetime)
    assert "start_time" not in doc


# --- the store's own guarantees -------------------------------------------------------------------

def new_doc(**fields) -> dict:
    doc = {"experiment": {"name": "x", "sources": []}, "command": "main", "host": {},
           "start_time": dt.datetime(2024, 1, 2, 3, 4, 5, 6000), "config": {}, "meta": {},
           "status": "RUNNING", "resources": [], "artifacts": [], "captured_out": "",
           "info": {}, "heartbeat": None, "result": None}
    doc.update(fields)
    return doc


def test_config_with_dotted_and_dollar_keys_round_trips(mongo_url):
    store = open_store(mongo_url)
    config = {"a.b": 1, "$x": {"y.z": [1, {"$w": 2, "back\\slash": 3}]}, "plain": "v.1"}
    run_id = store.create_run(new_doc(config=config))
    assert store.get(run_id)["config"] == config
    assert store.get(str(run_id))["config"] == config  # ids from the command line are text
    assert [r["_id"] for r in store.find({"config.$x": {"$exists": True}})] == [run_id]
    assert [r["_id"] for r in store.find({"config.plain": {"$regex": r"^v\.1$"}})] == [run_id]


def test_numpy_values_are_coerced(mongo_url):
    np = pytest.importorskip("numpy")
    store = open_store(mongo_url)
    run_id = store.create_run(new_doc(config={"n": np.int64(3), "f": np.float32(0.5),
                                              "arr": np.arange(3)}))
    store.append_metrics(run_id, {"m": {"steps": [np.int64(0)], "values": [np.float64(1.5)],
                                        "timestamps": [dt.datetime(2024, 1, 1)]}})
    assert store.get(run_id)["config"] == {"n": 3, "f": 0.5, "arr": [0, 1, 2]}
    assert store.history(run_id)["m"]["values"] == [1.5]


def test_artifact_added_again_replaces_the_file_in_place(mongo_url, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("first")
    second.write_text("second")
    store = open_store(mongo_url)
    run_id = store.create_run(new_doc())
    store.put_artifact(run_id, "model.txt", str(first))
    store.put_artifact(run_id, "log.txt", str(first))
    store.put_artifact(run_id, "model.txt", str(second))
    # a worker process (another store, no memory of this run) does the same
    worker = MongoStore(mongo_url)
    worker.put_artifact(run_id, "log.txt", str(second))
    worker.put_artifact(run_id, "rank1/extra.txt", str(first))
    doc = store.get(run_id)
    assert [a["name"] for a in doc["artifacts"]] == ["model.txt", "log.txt", "rank1/extra.txt"]
    assert store.open_artifact(run_id, "model.txt").read() == b"second"
    assert store.open_artifact(str(run_id), "log.txt").read() == b"second"
    client, db = raw_db(mongo_url)
    try:
        assert db["fs.files"].count_documents({}) == 3  # replaced files are deleted
    finally:
        client.close()


def test_large_captured_output_moves_to_gridfs(mongo_url):
    store = open_store(mongo_url)
    run_id = store.create_run(new_doc())
    line = "0123456789abcdef" * 7 + "\n"
    text = line * (17 * 1024 * 1024 // len(line) + 1)  # 17 MB, above MongoDB's 16 MB
    store.update_run(run_id, {"captured_out": text, "heartbeat": dt.datetime(2024, 1, 1)})
    client, db = raw_db(mongo_url)
    try:
        raw = db.runs.find_one({"_id": run_id})
        assert len(bson.encode(raw)) < 16 * 1024 * 1024
        assert raw["captured_out"].startswith("[labbook: the captured output")
        assert raw["captured_out"].endswith(text[-100:])
        first_file = raw["labbook_spill"]["captured_out"]
        assert store.get(run_id)["captured_out"] == text
        assert [r["_id"] for r in store.find({"captured_out": {"$regex": "^0123"}})] == [run_id]

        longer = text + "one more line\n"
        store.update_run(run_id, {"captured_out": longer})
        assert store.get(run_id)["captured_out"] == longer
        fs = gridfs.GridFS(db)
        assert not fs.exists(first_file)  # the replaced copy is deleted

        # another process (no memory of what was written) leaves the output where it is...
        other = MongoStore(mongo_url)
        other.update_run(run_id, {"status": "COMPLETED", "captured_out": "[labbook: the"})
        assert other.get(run_id)["captured_out"] == "[labbook: the"
        other.update_run(run_id, {"captured_out": longer})
        assert open_store(mongo_url).get(run_id)["captured_out"] == longer
        # ...and a short output goes back into the run document
        MongoStore(mongo_url).update_run(run_id, {"captured_out": "short again"})
        raw = db.runs.find_one({"_id": run_id})
        assert raw["captured_out"] == "short again" and not raw.get("labbook_spill")
        assert open_store(mongo_url).get(run_id)["captured_out"] == "short again"
    finally:
        client.close()


def test_large_info_moves_to_gridfs(mongo_url):
    store = MongoStore(mongo_url)
    store.max_document_bytes = 64 * 1024  # the same mechanism, at a size quick to test
    run_id = store.create_run(new_doc())
    info = {"rows": [{"$i": i, "v.w": "x" * 50} for i in range(2000)], "best": 0.5}
    store.update_run(run_id, {"info": info, "captured_out": "small"})
    client, db = raw_db(mongo_url)
    try:
        raw = db.runs.find_one({"_id": run_id})
        assert raw["info"] == {} and "info" in raw["labbook_spill"]
        assert raw["captured_out"] == "small"
    finally:
        client.close()
    fresh = open_store(mongo_url)
    assert fresh.get(run_id)["info"] == info
    # queries see the spilled value, not the stand-in
    assert [r["_id"] for r in fresh.find({"info.rows": {"$size": 2000}})] == [run_id]
    assert [r["_id"] for r in fresh.find({"info.best": {"$gt": 0.1}})] == [run_id]
    assert fresh.find({"info.best": {"$exists": False}}) == []


def test_metric_series_continue_past_the_document_omniboard_reads(mongo_url):
    # the first 10 points whole in the series' one metrics document, the rest in overflow
    # documents of 7 (in production about 82,000 and 50,000)
    store = MongoStore(mongo_url, bucket_size=7, series_points=10)
    run_id = store.create_run(new_doc())
    t0 = dt.datetime(2024, 1, 1)
    points = []

    def batch(start, n):
        steps = list(range(start, start + n))
        stamps = [t0 + dt.timedelta(seconds=s) for s in steps]
        points.extend(float(s) / 2 for s in steps)
        return {"loss": {"steps": steps, "values": [s / 2 for s in steps], "timestamps": stamps}}

    store.append_metrics(run_id, batch(0, 5))
    store.append_metrics(run_id, batch(5, 10))
    # a store in another process continues where this one stopped
    other = MongoStore(mongo_url, bucket_size=7, series_points=10)
    other.append_metrics(run_id, batch(15, 1))
    client, db = raw_db(mongo_url)
    try:
        (first,) = db.metrics.find({"run_id": run_id})
        assert first["labbook_n"] == 10 and first["steps"][:10] == list(range(10))
        # after the whole points: the summary of each overflow document (min, max, last)
        assert first["steps"][10:] == [10, 15, 15]
        assert first["values"][-1] == points[-1] and max(first["values"]) == max(points)
        docs = sorted(db.metrics_overflow.find({"run_id": run_id}), key=lambda d: d["bucket"])
        assert [(d["bucket"], len(d["steps"])) for d in docs] == [(1, 6)]
    finally:
        client.close()
    history = store.history(run_id)["loss"]
    assert history["steps"] == list(range(16)) and history["values"] == points
    assert history["timestamps"][-1] == t0 + dt.timedelta(seconds=15)

    # repeating an append whose reply was lost (same starting point) stores nothing twice
    store = other
    before = dict(store._positions)
    store.append_metrics(run_id, batch(16, 9))
    store._positions.clear()
    store._positions.update(before)
    points[-9:] = []
    store.append_metrics(run_id, batch(16, 9))
    assert store.history(run_id)["loss"]["steps"] == list(range(25))
    client, db = raw_db(mongo_url)
    try:
        first = db.metrics.find_one({"run_id": run_id})
        # documents 1 (steps 10-16), 2 (17-23) and 3 (24): three summary points each
        assert first["steps"][10:] == [10, 16, 16, 17, 23, 23, 24, 24, 24]
    finally:
        client.close()


def test_the_document_omniboard_reads_has_the_exact_last_max_and_min(mongo_url):
    """Past the whole points, the first document keeps every overflow document's minimum,
    maximum and last point: the whole range, and the last value, maximum and minimum of
    the whole series, whatever the batches."""
    import random

    rng = random.Random(3)
    store = MongoStore(mongo_url, bucket_size=5, series_points=8)
    run_id = store.create_run(new_doc())
    t0 = dt.datetime(2024, 1, 1)
    values, step = [], 0
    for turn in range(30):
        n = rng.randint(1, 11)
        batch = [rng.choice([rng.uniform(-50, 50), float(rng.randint(-3, 3))]) for _ in range(n)]
        values += batch
        store.append_metrics(run_id, {"acc": {"steps": list(range(step, step + n)),
                                              "values": batch, "timestamps": [t0] * n}})
        step += n
        if turn % 7 == 6:
            # another process, with other sizes: it goes on from what the documents say
            store = MongoStore(mongo_url, bucket_size=rng.choice([3, 5, 9]),
                               series_points=rng.choice([6, 8, 12]))
        first = store.metrics.find_one({"run_id": run_id, "name": "acc"})
        assert first["values"][-1] == values[-1]
        assert max(first["values"]) == max(values) and min(first["values"]) == min(values)
        assert first["steps"][0] == 0 and first["steps"][-1] == step - 1
        assert first["steps"] == sorted(first["steps"])  # a line from left to right
        assert None not in first["values"]
    reader = MongoStore(mongo_url)
    assert reader.history(run_id)["acc"]["values"] == values
    pages = list(reader.iter_series(run_id, "acc", page_size=4))
    assert [v for page in pages for v in page["values"]] == values
    assert reader.last_values([run_id]) == {run_id: {"acc": values[-1]}}
    assert reader.metric_counts([run_id]) == {run_id: {"acc": len(values)}}
    from labbook.stores.base import Store
    for samples in (2, 9, 50, 1000):
        assert reader.history_sampled(run_id, None, samples) == Store.history_sampled(
            reader, run_id, None, samples)


def test_a_batch_sent_again_after_its_summary_was_lost_is_stored_once(mongo_url):
    """The points reached the server, the summary write did not: sending the batch again
    stores no point twice and writes the summary of all of them."""
    store = MongoStore(mongo_url, bucket_size=4, series_points=5)
    run_id = store.create_run(new_doc())
    t0 = dt.datetime(2024, 1, 1)

    def batch(start, values):
        return {"m": {"steps": list(range(start, start + len(values))), "values": values,
                      "timestamps": [t0] * len(values)}}

    store.append_metrics(run_id, batch(0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    real_bulk, calls = store._bulk, []

    def losing(collection, ops):
        calls.append(collection.name)
        if calls == ["metrics_overflow", "metrics"]:  # the points are in; the summary is not
            raise pymongo.errors.AutoReconnect("connection lost")
        return real_bulk(collection, ops)

    store._bulk = losing
    with pytest.raises(MongoConnectionError):
        store.append_metrics(run_id, batch(6, [9.0, -7.0, 0.5]))
    assert calls == ["metrics_overflow", "metrics"]
    store.append_metrics(run_id, batch(6, [9.0, -7.0, 0.5]))
    assert store.history(run_id)["m"]["values"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0, -7.0, 0.5]
    first = store.metrics.find_one({"run_id": run_id})
    assert first["values"][-1] == 0.5 and max(first["values"]) == 9.0
    assert min(first["values"]) == -7.0 and first["labbook_n"] == 5


def test_long_series_stays_below_the_document_limit(mongo_url):
    from labbook.stores.mongo.schema import MAX_BSON_BYTES, POINT_BYTES, SERIES_DOC_POINTS

    n = 60_000
    store = open_store(mongo_url)
    run_id = store.create_run(new_doc())
    t0 = dt.datetime(2024, 1, 1)
    stamps = [t0 + dt.timedelta(milliseconds=i) for i in range(n)]
    store.append_metrics(run_id, {"m": {"steps": list(range(n)),
                                        "values": [i * 0.5 for i in range(n)],
                                        "timestamps": stamps}})
    client, db = raw_db(mongo_url)
    try:
        # one document, as Sacred writes it and Omniboard reads it whole
        sizes = [len(bson.encode(d)) for d in db.metrics.find({"run_id": run_id})]
        assert db.metrics_overflow.count_documents({}) == 0
    finally:
        client.close()
    assert len(sizes) == 1 and sizes[0] < n * POINT_BYTES
    # the whole points a document keeps take at most a quarter of the 16 MB limit
    assert SERIES_DOC_POINTS * POINT_BYTES <= MAX_BSON_BYTES // 4 and SERIES_DOC_POINTS > n
    history = store.history(run_id)["m"]
    assert history["steps"] == list(range(n)) and history["timestamps"][-1] == stamps[-1]
    assert METRICS_BUCKET_SIZE * POINT_BYTES < 4 * 1024 * 1024  # an overflow document


def test_series_written_in_buckets_by_earlier_labbook_read_and_continue(mongo_url):
    """Stores written before the overflow layout (buckets 0, 1, 2... in the metrics
    collection) read whole, and their series continue in buckets."""
    client, db = raw_db(mongo_url)
    t0 = dt.datetime(2024, 1, 1)
    try:
        db.runs.insert_one(new_doc(_id=5))
        for bucket, steps in enumerate([[0, 1, 2], [3, 4, 5], [6]]):
            db.metrics.insert_one({"run_id": 5, "name": "loss", "bucket": bucket,
                                   "steps": steps, "values": [s * 1.0 for s in steps],
                                   "timestamps": [t0] * len(steps), "labbook_n": len(steps),
                                   "labbook_counted": True, "labbook_batch": "x"})
        store = MongoStore(mongo_url, bucket_size=3)
        assert store.history(5)["loss"]["steps"] == list(range(7))
        store.append_metrics(5, {"loss": {"steps": [7, 8, 9], "values": [7.0, 8.0, 9.0],
                                          "timestamps": [t0] * 3}})
        assert store.history(5)["loss"]["steps"] == list(range(10))
        assert sorted(d["bucket"] for d in db.metrics.find({"run_id": 5})) == [0, 1, 2, 3]
        assert db.metrics_overflow.count_documents({}) == 0
        assert store.metric_counts([5]) == {5: {"loss": 10}}
    finally:
        client.close()


def test_system_metrics_are_stored_apart_from_omniboards_metrics(mongo_url):
    ex = experiment(mongo_url)

    @ex.main
    def main_fn(_run):
        for i in range(3):
            _run.log_scalar("loss", 1.0 / (i + 1))
        time.sleep(0.5)

    run = ex.run(options={"--beat-interval": 0.1})
    client, db = raw_db(mongo_url)
    try:
        assert [d["name"] for d in db.metrics.find({"run_id": run._id})] == ["loss"]
        system = sorted(d["name"] for d in db.system_metrics.find({"run_id": run._id}))
        assert system and all(name.startswith("system.") for name in system)
        raw = db.runs.find_one({"_id": run._id})
        assert [r["name"] for r in raw["info"]["metrics"]] == ["loss"]
    finally:
        client.close()
    store = open_store(mongo_url)
    history = store.history(run._id)
    assert sorted(history) == sorted(["loss", *system])
    assert store.history(run._id, ["system.cpu_percent"])["system.cpu_percent"]["values"]
    assert set(store.metric_counts([run._id])[run._id]) == {"loss", *system}
    store.delete_run(run._id)
    client, db = raw_db(mongo_url)
    try:
        assert db.system_metrics.count_documents({"run_id": run._id}) == 0
    finally:
        client.close()


def test_updates_do_not_clobber_fields_other_tools_write(mongo_url):
    client, db = raw_db(mongo_url)
    ex = experiment(mongo_url)

    @ex.main
    def main_fn(_run):
        time.sleep(0.3)
        # Omniboard stores tags and notes in the run document while the run goes on
        db.runs.update_one({"_id": _run._id}, {"$set": {"omniboard": {"tags": ["good"],
                                                                      "notes": "kept"},
                                                        "meta.comment": "by hand"}})
        _run.info["after"] = 1
        time.sleep(0.3)
        return 1

    try:
        run = ex.run(options={"--beat-interval": 0.1, "--no-system-metrics": True})
        doc = open_store(mongo_url).get(run._id)
        assert doc["omniboard"] == {"tags": ["good"], "notes": "kept"}
        assert doc["meta"]["comment"] == "by hand"
        assert doc["info"] == {"after": 1} and doc["status"] == "COMPLETED"
    finally:
        client.close()


def test_overwrite_replaces_a_run_but_keeps_other_tools_fields(mongo_url):
    ex = experiment(mongo_url)

    @ex.main
    def main_fn(_run, lr):
        _run.log_scalar("lr", lr)
        return lr

    first = ex.run(options={"--no-system-metrics": True})
    client, db = raw_db(mongo_url)
    try:
        db.runs.update_one({"_id": first._id}, {"$set": {"omniboard": {"tags": ["keep"]}}})
    finally:
        client.close()
    ex.observers[:] = [MongoObserver(url=mongo_url, db_name=split_url(mongo_url).database,
                                     overwrite=first._id)]
    second = ex.run(config_updates={"lr": 0.5}, options={"--no-system-metrics": True})
    assert second._id == first._id
    store = open_store(mongo_url)
    doc = store.get(first._id)
    assert doc["config"]["lr"] == 0.5 and doc["result"] == 0.5
    assert doc["omniboard"] == {"tags": ["keep"]}
    assert store.history(first._id)["lr"]["values"] == [0.5]  # the old series is gone
    assert len(store.find()) == 1


def test_ids_continue_after_runs_written_without_the_counter(mongo_url):
    client, db = raw_db(mongo_url)
    try:
        # runs Sacred wrote: no counter document
        db.runs.insert_many([{"_id": i, "status": "COMPLETED"} for i in (1, 2, 3)]
                            + [{"_id": "named", "status": "COMPLETED"}])
        store = open_store(mongo_url)
        assert store.create_run(new_doc()) == 4
        assert store.create_run(new_doc()) == 5
        db.runs.insert_many([{"_id": 6}, {"_id": 9}])  # written meanwhile by Sacred
        assert store.create_run(new_doc()) == 10
    finally:
        client.close()


def test_given_id_that_exists_is_refused(mongo_url):
    store = open_store(mongo_url)
    run_id = store.create_run(new_doc())
    with pytest.raises(ObserverError, match="overwrite="):
        store.create_run(new_doc(), run_id)


def test_parallel_processes_get_distinct_ids(mongo_url, tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from labbook import Experiment\n"
        "from labbook.observers import MongoObserver\n"
        "ex = Experiment('parallel')\n"
        f"ex.observers.append(MongoObserver(url={mongo_url!r}))\n"
        "@ex.main\n"
        "def main(_run):\n"
        "    _run.log_scalar('pid', 1)\n"
        "    return _run._id\n"
        "if __name__ == '__main__':\n"
        "    time.sleep(max(0, float(sys.argv[1]) - time.time()))  # start together\n"
        "    ex.run(options={'--no-system-metrics': True})\n")
    start_at = time.time() + 2
    procs = [subprocess.Popen([sys.executable, str(script), str(start_at)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
             for _ in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = open_store(mongo_url)
    runs = store.find()
    assert sorted(r["_id"] for r in runs) == list(range(1, 9))
    assert all(r["status"] == "COMPLETED" and r["result"] == r["_id"] for r in runs)
    assert all(store.history(r["_id"])["pid"]["values"] == [1] for r in runs)


# --- find: the same answer as the Python evaluator -----------------------------------------------

RUNS = [
    {"status": "COMPLETED", "config": {"lr": 0.1, "opt": "adam", "layers": [32, 64],
                                       "flag": True, "nested": {"d": 1}}},
    {"status": "FAILED", "config": {"lr": 0.01, "opt": "sgd", "layers": [64], "flag": False,
                                    "nested": {"d": 2}}},
    {"status": "COMPLETED", "config": {"lr": 1, "opt": "Adam-W", "layers": [], "flag": 1,
                                       "nested": {"d": [1, 2]}}},
    {"status": "INTERRUPTED", "config": {"lr": None, "opt": "rmsprop.v2", "flag": 0}},
    {"status": "RUNNING", "config": {"opt": "adamax", "layers": [32], "note": "x.y",
                                     "nested": [{"d": 1}]}},
    {"status": "COMPLETED", "config": {"lr": 0.5, "opt": None, "layers": [[1, 2]],
                                       "flag": "yes", "nested": {"d": None}}},
    {"status": "QUEUED", "config": {"lr": float("nan"), "opt": "", "layers": [1, True]}},
    {"status": "COMPLETED", "config": {"lr": 2.5, "opt": "ADAM", "tags": ["a", "b"],
                                       "nested": {"d": 3, "e": {"f": 1}}}},
]

FILTERS = [
    {},
    {"status": "COMPLETED"},
    {"status": {"$in": ["FAILED", "INTERRUPTED"]}},
    {"status": {"$nin": ["COMPLETED"]}},
    {"config.opt": {"$in": ["adam", "sgd", None]}},
    {"config.opt": {"$regex": "^adam"}},
    {"config.opt": {"$regex": "^adam", "$options": "i"}},
    {"config.opt": {"$regex": r"\.v2$"}},
    {"config.opt": {"$regex": r"\w+-\w"}},
    {"config.opt": {"$not": {"$regex": "^a"}}},
    {"config.lr": {"$exists": True}},
    {"config.lr": {"$exists": False}},
    {"config.lr": None},
    {"config.lr": {"$ne": None}},
    {"config.lr": {"$gt": 0.05}},
    {"config.lr": {"$lte": 0.5}},
    {"config.lr": {"$not": {"$lt": 1}}},
    {"config.lr": {"$in": [1, 0.01]}},
    {"config.lr": float("nan")},
    {"config.lr": {"$ne": float("nan")}},
    {"config.flag": True},
    {"config.flag": 1},
    {"config.flag": {"$ne": False}},
    {"config.flag": {"$gt": 0}},
    {"config.flag": {"$in": [0, "yes"]}},
    {"config.layers": 32},
    {"config.layers": [32, 64]},
    {"config.layers": {"$size": 1}},
    {"config.layers": {"$all": [32]}},
    {"config.layers": {"$all": []}},
    {"config.layers": True},
    {"config.layers.0": 32},
    {"config.nested.d": 1},
    {"config.nested.d": None},
    {"config.nested.d": {"$exists": False}},
    {"config.nested.d": {"$ne": 1}},
    {"config.nested.e.f": 1},
    {"config.nested": {"d": 1}},
    {"config.tags": "a"},
    {"$or": [{"status": "FAILED"}, {"config.lr": {"$gte": 1}}]},
    {"$or": [{"config.opt": {"$regex": "^adam"}}, {"config.flag": {"$exists": False}}]},
    {"$and": [{"status": "COMPLETED"}, {"config.layers": {"$exists": True}}]},
    {"$nor": [{"status": "COMPLETED"}, {"config.lr": None}]},
    {"status": "COMPLETED", "config.lr": {"$lt": 1}},
    {"start_time": {"$gt": dt.datetime(2024, 1, 1, 12, 0, 0, 500)}},
    {"start_time": {"$lt": dt.datetime(2024, 1, 1, 12, 0, 0, 1500)}},
    {"_id": {"$in": [2, 4, 6]}},
]


@pytest.fixture
def twin_stores(mongo_url, tmp_path):
    """The same runs in MongoDB and in a file store."""
    mongo = open_store(mongo_url)
    files = FileStore(tmp_path / "runs")
    for i, fields in enumerate(RUNS, start=1):
        doc = new_doc(start_time=dt.datetime(2024, 1, 1, 12, 0, 0, 1000 * (i % 3)), **fields)
        assert mongo.create_run(doc, i) == i
        files.create_run(doc, i)
    return mongo, files


@pytest.mark.parametrize("query", FILTERS, ids=[json.dumps(f, default=str) for f in FILTERS])
def test_find_equals_the_file_store(twin_stores, query):
    mongo, files = twin_stores
    expected = [r["_id"] for r in files.find(query)]
    assert [r["_id"] for r in mongo.find(query)] == expected
    # and the evaluator itself, on the documents MongoDB returns
    assert expected == [r["_id"] for r in mongo.find() if matches(query, r)]


@pytest.mark.parametrize("order", ["config.lr", "-config.lr", "status", "-config.opt",
                                   "config.nested.d"])
def test_find_order_and_limit_equal_the_file_store(twin_stores, order):
    mongo, files = twin_stores
    for limit in (None, 1, 3):
        expected = [r["_id"] for r in files.find({"status": {"$ne": "QUEUED"}}, order, limit)]
        got = [r["_id"] for r in mongo.find({"status": {"$ne": "QUEUED"}}, order, limit)]
        assert got == expected, (order, limit)
    assert [r["_id"] for r in mongo.find(limit=2)] == [1, 2]
    assert mongo.find({"config.lr": float("nan")}) == []


def test_native_filters_are_pushed_to_the_server(twin_stores):
    from labbook.stores.mongo import native_filter
    from labbook.stores.query import parse

    assert native_filter(parse({"status": {"$in": ["A", "B"]}})) == {
        "status": {"$in": ["A", "B"]}}
    assert native_filter(parse({"config.$x": 1})) == {"config.\\u0024x": {"$in": [1, True]}}
    assert native_filter(parse({"$or": [{"status": "A"}, {"config.opt": {"$regex": "^a"}}]})) \
        == {"$or": [{"status": "A"}, {"config.opt": {"$regex": "^a"}}]}


# --- URLs and options ----------------------------------------------------------------------------

def test_urls_and_the_m_option(mongo_server, mongo_db):
    url = mongo_server.url(mongo_db)
    store = open_store(url + ("&" if "?" in url else "?") + "collection_prefix=exp")
    assert isinstance(store, MongoStore)
    assert store.db_name == mongo_db and store.runs.name == "exp_runs"
    assert store.metrics.name == "exp_metrics"
    assert "collection_prefix=exp" in store.url  # workers reopen the same collections
    reopened = open_store(store.url)
    assert reopened.runs.full_name == store.runs.full_name

    default = MongoStore("mongodb://localhost:1")
    assert default.db_name == "sacred" and default.runs.name == "runs"
    secret = MongoStore("mongodb://user:s3cret@localhost:1/admin", db_name="exps")
    assert secret.db_name == "exps" and "authSource=admin" in secret.url
    assert "s3cret" not in repr(secret)

    assert parse_mongo_db_arg("mydb") == {"db_name": "mydb"}
    assert parse_mongo_db_arg("mydb.pre") == {"db_name": "mydb", "collection_prefix": "pre"}
    assert parse_mongo_db_arg("h:27017:db.pre") == {"url": "h:27017", "db_name": "db",
                                                    "collection_prefix": "pre"}
    assert parse_mongo_db_arg("h:27017") == {"url": "h:27017", "db_name": "sacred"}
    assert parse_mongo_db_arg("mongodb://h/db") == {"url": "mongodb://h/db"}
    with pytest.raises(ObserverError, match="host:port"):
        parse_mongo_db_arg("a:b:c:d")

    observers = observers_from_options({"mongo_db": url})
    assert observers[0].store.db_name == mongo_db
    observers = observers_from_options({"mongo_db": "localhost:1:other.pre"})
    assert observers[0].store.runs.full_name == "other.pre_runs"
    assert isinstance(observers[0], MongoObserver)

    ex = Experiment("dash_m")
    ex.main(lambda: 3)
    run = ex.run(options={"--mongo_db": url, "--no-system-metrics": True})
    assert open_store(url).get(run._id)["result"] == 3


def test_collection_is_the_old_spelling_of_the_prefix():
    observer = MongoObserver(url="mongodb://localhost:1", collection="old")
    assert observer.runs.name == "old_runs"
    with pytest.raises(ObserverError):
        MongoObserver(url="mongodb://localhost:1", collection="a", collection_prefix="b")
    assert MongoObserver.create(url="mongodb://localhost:1", db_name="x").store.db_name == "x"


def test_unreachable_server_is_a_clear_error(caplog, tmp_path):
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"mongodb://alice:pa55word@127.0.0.1:{port}/exps?serverSelectionTimeoutMS=300"
    store = open_store(url)
    started = time.monotonic()
    with pytest.raises(MongoConnectionError) as info:
        store.get(1)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "pa55word" not in message and "alice:****@127.0.0.1" in message
    assert "Check that the server is running" in message
    with pytest.raises(MongoConnectionError, match="Invalid MongoDB URL"):
        open_store("mongodb://host:notaport/db")

    # an observer without failure_dir: found before the run starts, which then never runs
    ex = Experiment("down")
    ex.observers.append(MongoObserver(url=url))
    ran = []
    ex.main(lambda: ran.append(5))
    with pytest.raises(StoreUnusableError) as info:
        ex.run(options={"--no-system-metrics": True})
    assert "pa55word" not in str(info.value) and "Cannot reach MongoDB" in str(info.value)
    assert ran == []

    # an observer of that server: the run goes on, its events are journaled (no password)
    ex = Experiment("down")
    ex.observers.append(DurableObserver(MongoObserver(url=url, failure_dir=tmp_path / "failed"),
                                        max_wait=0.3, backoff=0.01))
    ex.main(lambda: 5)
    with caplog.at_level(logging.WARNING):
        assert ex.run(options={"--no-system-metrics": True}).result == 5
    assert "pa55word" not in caplog.text and "Cannot reach MongoDB" in caplog.text
    assert f"labbook sync {tmp_path / 'failed'} --store mongodb://alice@127.0.0.1:{port}/exps" \
        in caplog.text
    assert "pa55word" not in "".join(p.read_text() for p in (tmp_path / "failed").rglob("*.json*"))


# --- failures scripted with mockupdb --------------------------------------------------------------

def test_refused_login_is_a_clear_error():
    mockupdb = pytest.importorskip("mockupdb", reason="mockupdb is not installed")
    server = mockupdb.MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0,
                                              "maxWireVersion": 17})
    server.autoresponds(lambda r: r.command_name == "find"
                        and r.command_err(code=18, errmsg="Authentication failed."))
    server.run()
    try:
        store = MongoStore(f"mongodb://127.0.0.1:{server.port}/auth")
        with pytest.raises(MongoConnectionError, match="refused the login"):
            store.get(1)
    finally:
        server.stop()


class FakeMongo:
    """A mockupdb server answering like an empty MongoDB, with switches for failures."""

    def __init__(self):
        mockupdb = pytest.importorskip("mockupdb", reason="mockupdb is not installed")
        self.server = mockupdb.MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0,
                                                       "maxWireVersion": 17})
        self.requests: list[dict] = []
        self.hang_up = None  # predicate(request doc) -> drop the connection instead
        self.seq = 0
        self.lock = threading.Lock()
        self.server.autoresponds(self.handle)
        self.server.run()
        self.url = f"mongodb://127.0.0.1:{self.server.port}/fake"

    def handle(self, request) -> bool:
        doc = dict(request.doc)
        name = request.command_name
        if name in ("ismaster", "isMaster", "hello"):
            return False
        with self.lock:
            self.requests.append(doc)
            if self.hang_up is not None and self.hang_up(doc):
                return request.hangup()
            if name == "findAndModify":
                self.seq += 1
                return request.ok(value={"_id": doc["findAndModify"], "seq": self.seq})
            if name == "insert":
                return request.ok(n=len(doc.get("documents", [])))
            if name == "update":
                return request.ok(n=len(doc.get("updates", [])),
                                  nModified=len(doc.get("updates", [])))
            if name in ("find", "listIndexes", "aggregate"):
                return request.ok(cursor={"id": 0, "ns": f"fake.{doc[name]}",
                                          "firstBatch": []})
            return request.ok()

    def writes(self, collection: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests
                    if r.get("update") == collection or r.get("insert") == collection]

    def stop(self):
        self.server.stop()


@pytest.fixture
def fake_mongo():
    fake = FakeMongo()
    yield fake
    fake.stop()


def test_server_down_at_start_journals_the_run_for_labbook_sync(tmp_path, caplog, mongo_url):
    mockupdb = pytest.importorskip("mockupdb", reason="mockupdb is not installed")
    server = mockupdb.MockupDB()
    server.autoresponds(lambda request: request.hangup())  # down: drops every connection
    server.run()
    down_url = f"mongodb://bob:hunter2@127.0.0.1:{server.port}/lab"
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"\x00\x01" * 1000)
    failure_dir = tmp_path / "failed"
    ex = Experiment("offline")
    ex.add_config(lr=0.3)
    ex.observers.append(DurableObserver(
        MongoObserver(url=down_url, failure_dir=failure_dir, serverSelectionTimeoutMS=300),
        max_wait=0.3, backoff=0.01))

    @ex.main
    def main_fn(_run, lr):
        print("offline output")
        for i in range(3):
            _run.log_scalar("loss", i / 2)
        _run.add_artifact(str(artifact))
        return lr

    try:
        with caplog.at_level(logging.WARNING):
            run = ex.run(options={"--capture": "sys", "--no-system-metrics": True})
    finally:
        server.stop()
    assert run.result == 0.3 and run.status == "COMPLETED"
    warning = caplog.text
    assert "could not reach mongodb://bob:****@127.0.0.1" in warning
    assert f"labbook sync {failure_dir} --store mongodb://bob@127.0.0.1:{server.port}/lab" \
        in warning
    assert "hunter2" not in warning
    assert "hunter2" not in "".join(p.read_text() for p in failure_dir.rglob("*.json*"))
    artifact_bytes = artifact.read_bytes()
    artifact.unlink()  # the journal has its copy

    # later, with the server back: labbook sync
    from labbook.cli.main import main as labbook_main
    assert labbook_main(["sync", str(failure_dir), "--store", mongo_url]) == 0
    store = open_store(mongo_url)
    (doc,) = store.find()
    assert doc["status"] == "COMPLETED" and doc["config"]["lr"] == 0.3 and doc["result"] == 0.3
    assert "offline output" in doc["captured_out"]
    assert store.history(doc["_id"])["loss"]["values"] == [0.0, 0.5, 1.0]
    assert store.open_artifact(doc["_id"], "model.bin").read() == artifact_bytes
    assert any(s[0].endswith("test_mongo_store.py") for s in doc["experiment"]["sources"])
    assert labbook_main(["sync", str(failure_dir), "--store", mongo_url]) == 0  # once only
    assert len(store.find()) == 1


def test_runs_saved_by_earlier_versions_are_still_uploaded(tmp_path, mongo_url):
    failure_dir = tmp_path / "failed"
    files = FileStore(failure_dir)
    run_id = files.create_run({**new_doc(), "status": "COMPLETED", "result": 2})
    files.append_metrics(run_id, {"loss": {"steps": [0, 1], "values": [1.0, 0.5],
                                           "timestamps": [None, None]}})
    open_store(mongo_url).write_upload_note(str(failure_dir / str(run_id)),
                                            RuntimeError("unreachable"), None)
    assert main(["upload", str(failure_dir), mongo_url]) == 0
    store = open_store(mongo_url)
    (doc,) = store.find()
    assert doc["status"] == "COMPLETED" and doc["result"] == 2
    assert store.history(doc["_id"])["loss"]["values"] == [1.0, 0.5]
    assert upload_failed_runs(failure_dir, mongo_url) == {}  # done once only


def test_server_lost_before_the_end_journals_the_rest(tmp_path, caplog, fake_mongo):
    failure_dir = tmp_path / "failed"
    observer = MongoObserver(url=fake_mongo.url, failure_dir=failure_dir,
                             serverSelectionTimeoutMS=300)
    ex = Experiment("lost")
    ex.observers.append(DurableObserver(observer, max_wait=0.5, backoff=0.01, max_backoff=0.05))

    temp = tmp_path / "temp.bin"
    data = tmp_path / "data.txt"
    data.write_text("input")

    @ex.main
    def main_fn(_run):
        _run.log_scalar("before", 1)
        time.sleep(0.3)
        fake_mongo.hang_up = lambda doc: True  # the server goes away
        _run.log_scalar("after", 2)
        temp.write_bytes(b"made by the run")
        _run.add_artifact(str(temp))
        temp.unlink()  # the run cleans up before the server is back
        _run.open_resource(str(data)).close()
        return 4

    with caplog.at_level(logging.WARNING):
        run = ex.run(options={"--beat-interval": 0.1, "--no-system-metrics": True})
    assert run.result == 4 and run._id == 1
    journal = failure_dir / "run_1"
    records = [json.loads(line) for line in (journal / "events.jsonl").read_text().splitlines()]
    events = [r["event"] for r in records]
    assert "completed_event" in events and "artifact_event" in events
    assert "resource_event" in events
    metrics = [r["kwargs"]["metrics_by_name"] for r in records if r["event"] == "log_metrics"]
    assert "after" in {name for batch in metrics for name in batch}
    [copy] = [p for p in (journal / "files").iterdir() if p.name.endswith("temp.bin")]
    assert copy.read_bytes() == b"made by the run"  # the run deleted the file meanwhile
    assert f"could not reach mongodb://127.0.0.1:{fake_mongo.server.port}/fake; they wait in " \
        f"{journal}" in caplog.text


def test_duplicate_key_during_id_allocation_retries_with_a_new_id():
    mockupdb = pytest.importorskip("mockupdb", reason="mockupdb is not installed")
    server = mockupdb.MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0,
                                              "maxWireVersion": 17})
    server.autoresponds(lambda r: r.command_name == "createIndexes" and r.ok())
    server.run()
    try:
        store = MongoStore(f"mongodb://127.0.0.1:{server.port}/ids",
                           serverSelectionTimeoutMS=2000)
        future = mockupdb.go(store.create_run, new_doc())

        def next_request(name):
            request = server.receives()
            assert request.command_name == name, request
            return request

        # the counter's first upsert loses a race with another process's
        next_request("findAndModify").command_err(code=11000, errmsg="E11000 duplicate key")
        next_request("findAndModify").ok(value={"_id": "runs", "seq": 1})
        # another program (Sacred) already inserted run 1
        next_request("insert").ok(n=0, writeErrors=[{"index": 0, "code": 11000,
                                                     "errmsg": "E11000 duplicate key"}])
        catch_up = next_request("find")
        assert catch_up["sort"] == {"_id": -1}
        catch_up.ok(cursor={"id": 0, "ns": "ids.runs", "firstBatch": [{"_id": 1}]})
        bump = next_request("update")
        assert bump["updates"][0]["u"] == {"$max": {"seq": 1}}
        bump.ok(n=1, nModified=0)
        next_request("findAndModify").ok(value={"_id": "runs", "seq": 2})
        insert = next_request("insert")
        assert insert["documents"][0]["_id"] == 2
        insert.ok(n=1)
        assert future() == 2
    finally:
        server.stop()


def test_lost_connection_at_a_heartbeat_is_survived(caplog, fake_mongo):
    observer = MongoObserver(url=fake_mongo.url, serverSelectionTimeoutMS=500)
    ex = Experiment("flaky")
    ex.observers.append(DurableObserver(observer, backoff=0.01))
    dropped = []

    def first_heartbeat(doc):
        if dropped or doc.get("update") != "runs":
            return False
        if "heartbeat" in doc["updates"][0]["u"].get("$set", {}):
            dropped.append(doc)
            return True
        return False

    fake_mongo.hang_up = first_heartbeat

    @ex.main
    def main_fn(_run):
        for i in range(6):
            _run.log_scalar("loss", float(i))
            time.sleep(0.1)
        return "done"

    with caplog.at_level(logging.WARNING):
        run = ex.run(options={"--beat-interval": 0.05, "--no-system-metrics": True})
    assert run.result == "done" and run.status == "COMPLETED"
    assert dropped, "the scripted failure did not happen"
    assert "Lost the connection to MongoDB" in caplog.text and "answers again" in caplog.text
    assert "failed in" not in caplog.text  # the observer was never disabled
    run_updates = [u["u"].get("$set", {}) for r in fake_mongo.writes("runs")
                   for u in r.get("updates", [])]
    assert run_updates[-1]["status"] == "COMPLETED"
    assert sum("heartbeat" in s for s in run_updates) >= 2
    pushed = [v for r in fake_mongo.writes("metrics") for u in r["updates"]
              for v in u["u"]["$push"]["values"]["$each"]]
    assert pushed == [float(i) for i in range(6)]  # every point, once


def test_delete_run_removes_its_documents_and_files(mongo_url, tmp_path):
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    store = open_store(mongo_url)
    first, second = store.create_run(new_doc()), store.create_run(new_doc())
    for run_id in (first, second):
        store.put_artifact(run_id, "model.bin", str(artifact))
        store.append_metrics(run_id, {"loss": {"steps": [0, 1], "values": [1.0, 0.5],
                                               "timestamps": [None, None]}})
    store.delete_run(first)
    assert store.get(first) is None and store.history(first) == {}
    assert [d["_id"] for d in store.find()] == [second]
    assert store.open_artifact(second, "model.bin").read() == b"weights"
    client, db = raw_db(mongo_url)
    try:
        assert db["fs.files"].count_documents({}) == 1
        assert db["metrics"].count_documents({"run_id": first}) == 0
    finally:
        client.close()
    with pytest.raises(KeyError, match="No run with id"):
        store.delete_run(first)


def test_long_series_of_an_ended_run_are_sampled_from_the_stored_sample(mongo_url, monkeypatch):
    import labbook.stores.mongo.metrics as mongo_module
    from labbook.stores.base import Store

    monkeypatch.setattr(mongo_module, "SAMPLE_CACHE_POINTS", 1_000)
    store = MongoStore(mongo_url, bucket_size=300)  # several buckets, as 10^6 points make
    run_id = store.create_run(new_doc())
    stamp = dt.datetime(2024, 1, 1)
    for first in range(0, 1_500, 250):
        steps = list(range(first, first + 250))
        store.append_metrics(run_id, {
            "loss": {"steps": steps, "values": [1 / (s + 1) for s in steps],
                     "timestamps": [stamp + dt.timedelta(milliseconds=s) for s in steps]},
            "short": {"steps": [first], "values": [float(first)], "timestamps": [stamp]}})
    generic = Store.history_sampled(store, run_id, None, 500)
    assert store.history_sampled(run_id, None, 500) == generic  # from the buckets
    assert store.samples.count_documents({"run_id": run_id}) == 0  # not while running
    store.update_run(run_id, {"status": "COMPLETED"})
    (cached,) = store.samples.find({"run_id": run_id})
    assert cached["name"] == "loss" and cached["n"] == 1_500 and len(cached["steps"]) == 500
    # the next reader takes the stored sample: it equals what the buckets give
    reader = MongoStore(mongo_url)
    assert reader.history_sampled(run_id, None, 500) == generic
    assert reader.history_sampled(run_id, ["loss"], 500)["loss"]["steps"] == cached["steps"]
    assert reader.history_sampled(run_id, ["loss"], 7) == Store.history_sampled(
        reader, run_id, ["loss"], 7)  # other sample sizes: from the buckets
    assert reader.metric_counts([run_id]) == {run_id: {"loss": 1_500, "short": 6}}
    # points added after the end make the stored sample stale: it is not used
    reader.append_metrics(run_id, {"loss": {"steps": [1_500], "values": [0.0],
                                            "timestamps": [stamp]}})
    assert reader.history_sampled(run_id, ["loss"], 500) == Store.history_sampled(
        reader, run_id, ["loss"], 500)
    reader.delete_run(run_id)
    assert reader.samples.count_documents({"run_id": run_id}) == 0
