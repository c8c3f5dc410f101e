"""The store contract: one suite, every store (file, SQLite, PostgreSQL, MariaDB/MySQL, MongoDB,
and the file store over fsspec on ``memory://``, except where other processes must reach it).

Runs go through the public Experiment API with ``--store URL``; what they recorded is then read
back through the store's read side (get, find, history, history_sampled, history_many,
last_values, open_artifact, sources and resources) and through ``labbook.Api``. Every store
promises the same: values exactly as logged (NaN and +-inf included), every metric point,
every artifact byte, times as naive UTC datetimes (MongoDB keeps milliseconds). The parallel
test starts 32 processes at once into one store (contract_worker.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import subprocess
import sys
import threading

import pytest

import labbook
from labbook import Experiment, LabbookInterrupt, TimeoutInterrupt
from labbook import serialize
from labbook.api import RunNotFoundError
from labbook.observers import RunObserver
from labbook.stores import open_store
from labbook.stores.base import RUN_FIELDS, sample_positions
from tests.stores import contract_worker
from tests.stores.conftest import backend_url
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
THIS_FILE = os.path.abspath(__file__)
WORKER = os.path.join(HERE, "contract_worker.py")
ROOT = os.path.dirname(os.path.dirname(HERE))

STORES = ("file", "sqlite", "postgresql", "mysql", "mongo", "memory")
#: stores other processes can reach (``memory://`` lives in one process)
SHARED_STORES = tuple(k for k in STORES if k != "memory")
BIG_SIZE = 50 * 1024 * 1024
POINTS = 100_000
CHUNKS = 4
PARALLEL = 32
PARALLEL_POINTS = 400

CONFIG = {
    "lr": 0.001,
    "name": "ünïcødé ☃ 実験",
    "ключ": "значение",
    "nested": {"deep": {"list": [1, 2.5, "x", None, True, [3, "ß"]], "empty": {}},
               "ratio": 1 / 3, "big": 2 ** 53 + 1, "small": 1e-300, "neg": -7},
    "not_a_number": math.nan,
    "infinite": math.inf,
    "minus_infinite": -math.inf,
}
SPECIAL_STEPS = [10, 20, 30, 40, 50, 60]
SPECIAL_VALUES = [math.nan, math.inf, -math.inf, 0.0, -1.5, 1e308]


# -- helpers ---------------------------------------------------------------------------------------

def same(a, b) -> bool:
    """Deep equality in which NaN equals NaN (and tuples equal lists, as after JSON)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def md5_of(fh) -> str:
    digest = hashlib.md5()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def precision(kind: str) -> dt.timedelta:
    """How much of a time a store may drop: MongoDB keeps milliseconds."""
    return dt.timedelta(milliseconds=1) if kind == "mongo" else dt.timedelta(0)


def assert_time(stored, expected: dt.datetime, kind: str) -> None:
    assert isinstance(stored, dt.datetime) and stored.tzinfo is None, stored
    assert dt.timedelta(0) <= expected - stored <= precision(kind) and \
        (kind == "mongo" or stored == expected), (stored, expected)


def artifact_names(doc: dict) -> list[str]:
    # file and SQL stores list names, the Mongo store {"name", "file_id"} entries
    return [a["name"] if isinstance(a, dict) else a for a in doc.get("artifacts") or []]


def options(url: str, **extra) -> dict:
    opts = {"--store": url, "--beat_interval": 0.05, "--capture": "sys",
            "--no_system_metrics": True, "--loglevel": "WARNING"}
    opts.update({f"--{k}": v for k, v in extra.items()})
    return opts


class BeatCounter(RunObserver):
    """Counts the metric batches the heartbeats deliver (called after the store's observer)."""

    priority = -100

    def __init__(self):
        self.batches: list[dict[str, int]] = []
        self.beat = threading.Event()

    def log_metrics(self, metrics_by_name, info):
        self.batches.append({name: len(s["steps"]) for name, s in metrics_by_name.items()})
        self.beat.set()


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(params=STORES)
def kind(request) -> str:
    return request.param


@pytest.fixture
def store_url(request, kind, tmp_path) -> str:
    """An empty store of each kind in turn."""
    if kind == "file":
        return f"file://{tmp_path / 'runs'}"
    if kind == "memory":  # the file store over fsspec (labbook.stores.remote), in memory
        return f"memory://labbook-contract-{os.getpid()}-{tmp_path.name}/runs"
    if kind == "mongo":
        return request.getfixturevalue("mongo_url")
    return backend_url(request, kind, tmp_path)


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def big_file(tmp_path_factory) -> tuple[str, str]:
    """50 MB of random bytes, made once per session, and their md5."""
    path = tmp_path_factory.mktemp("contract_big") / "big.bin"
    digest = hashlib.md5()
    with open(path, "wb") as fh:
        for _ in range(BIG_SIZE // (1 << 22)):
            chunk = os.urandom(1 << 22)
            digest.update(chunk)
            fh.write(chunk)
    return str(path), digest.hexdigest()


# -- a full run ------------------------------------------------------------------------------------

def test_full_run_is_stored_exactly_and_readable(kind, store_url, store, big_file, tmp_path):
    big_path, big_md5 = big_file
    files = tmp_path / "files"
    files.mkdir()
    notes = files / "notes.txt"
    notes.write_text("notes — ünïcode\n", encoding="utf-8")
    weights = files / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 64)
    first = files / "model_v1.txt"
    first.write_text("first version")
    second = files / "model_v2.txt"
    second.write_text("second version, longer than the first")
    deep = files / "deep.bin"
    deep.write_bytes(b"\x00\xff" * 1000)
    table = files / "table.csv"
    table.write_text("a,b\n1,2\n")
    vocab = files / "vocab.txt"
    vocab.write_text("ä ö ü\n", encoding="utf-8")
    counter = BeatCounter()

    ex = Experiment("contract_full")
    ex.add_config(CONFIG)
    ex.add_source_file(WORKER)
    ex.observers.append(counter)

    @ex.main
    def main(_run, lr, nested):
        assert nested["ratio"] == 1 / 3
        print("hello ünïcode ☃")
        with ex.open_resource(str(table)) as fh:
            assert fh.read() == "a,b\n1,2\n"
        with _run.open_resource(str(vocab)) as fh:
            assert fh.read() == "ä ö ü\n"
        per_chunk = POINTS // CHUNKS
        for chunk in range(CHUNKS):
            counter.beat.clear()
            for i in range(chunk * per_chunk, (chunk + 1) * per_chunk):
                _run.log_scalar("loss", i / 7)
            assert counter.beat.wait(60), "no heartbeat sent the metrics"
        for step, value in zip(SPECIAL_STEPS, SPECIAL_VALUES):
            _run.log_scalar("special", value, step)
        _run.info["note"] = "kept ✓"
        _run.info["nested"] = {"a": [1, 2], "dotted.key": 1, "$dollar": 2}
        _run.add_artifact(str(notes))
        _run.add_artifact(str(weights), metadata={"epoch": 3})
        _run.add_artifact(big_path, name="big.bin")
        _run.add_artifact(str(first), name="model.txt")
        _run.add_artifact(str(deep), name="sub/dir/deep.bin")
        _run.add_artifact(str(second), name="model.txt")  # replaces the first by name
        print("bye")
        return {"acc": 0.5, "label": "fertig ✓", "curve": [1, 0.5, math.inf]}

    run = ex.run(options=options(store_url))
    rid = run._id
    assert run.status == "COMPLETED" and rid is not None
    loss_batches = [b["loss"] for b in counter.batches if "loss" in b]
    assert len(loss_batches) >= CHUNKS and sum(loss_batches) == POINTS

    # -- get: every field -------------------------------------------------------------------------
    doc = store.get(rid)
    assert doc is not None and doc["_id"] == rid
    assert set(RUN_FIELDS) - {"queue_time", "fail_trace"} <= set(doc)
    assert doc["status"] == "COMPLETED"
    assert doc["command"] == "main"
    assert same(doc["config"], serialize.flatten(run.config))
    config = doc["config"]
    assert config["name"] == CONFIG["name"] and config["ключ"] == "значение"
    assert config["nested"]["ratio"] == 1 / 3 and config["nested"]["big"] == 2 ** 53 + 1
    assert config["nested"]["small"] == 1e-300
    assert config["nested"]["deep"] == {"list": [1, 2.5, "x", None, True, [3, "ß"]],
                                        "empty": {}}
    assert math.isnan(config["not_a_number"])
    assert config["infinite"] == math.inf and config["minus_infinite"] == -math.inf
    assert doc["host"] == serialize.flatten(run.host_info)
    assert doc["meta"] == serialize.flatten(run.meta_info)
    assert doc["info"] == serialize.flatten(run.info)
    assert doc["info"]["nested"] == {"a": [1, 2], "dotted.key": 1, "$dollar": 2}
    assert same(doc["result"], {"acc": 0.5, "label": "fertig ✓", "curve": [1, 0.5, math.inf]})
    assert doc["captured_out"] == run.captured_out
    assert "hello ünïcode ☃\n" in doc["captured_out"] and "bye\n" in doc["captured_out"]
    assert_time(doc["start_time"], run.start_time, kind)
    assert_time(doc["stop_time"], run.stop_time, kind)
    assert isinstance(doc["heartbeat"], dt.datetime)
    # the final beat follows stop_time (Sacred's order: its output has "Completed after")
    assert doc["start_time"] <= doc["heartbeat"]
    assert doc.get("queue_time") is None and doc.get("fail_trace") is None
    assert artifact_names(doc) == ["notes.txt", "weights.bin", "big.bin", "model.txt",
                                   "sub/dir/deep.bin"]
    assert [r[0] for r in doc["resources"]] == [str(table), str(vocab)]
    experiment = doc["experiment"]
    assert experiment["name"] == "contract_full"
    assert experiment["base_dir"] == HERE
    source_names = [s[0] for s in experiment["sources"]]
    assert "test_contract.py" in source_names and "contract_worker.py" in source_names

    # -- find --------------------------------------------------------------------------------------
    found = store.find({"config.name": CONFIG["name"], "status": "COMPLETED"})
    assert [d["_id"] for d in found] == [rid]
    assert same(found[0]["config"], doc["config"])
    assert [d["_id"] for d in store.find({"config.nested.ratio": {"$gt": 0.3}})] == [rid]
    assert store.find({"config.lr": {"$gt": 0.01}}) == []
    assert store.find({"status": "FAILED"}) == []

    # -- history: every point ----------------------------------------------------------------------
    history = store.history(rid)
    assert sorted(history) == ["loss", "special"]
    loss = history["loss"]
    assert loss["steps"] == list(range(POINTS))
    assert loss["values"] == [i / 7 for i in range(POINTS)]
    stamps = loss["timestamps"]
    assert len(stamps) == POINTS
    assert all(isinstance(t, dt.datetime) and t.tzinfo is None for t in stamps[::997])
    assert all(a <= b for a, b in zip(stamps, stamps[1:]))
    tolerance = dt.timedelta(milliseconds=1)
    assert doc["start_time"] - tolerance <= stamps[0] and stamps[-1] <= doc["stop_time"] + \
        tolerance
    special = history["special"]
    assert special["steps"] == SPECIAL_STEPS
    assert same(special["values"], SPECIAL_VALUES)
    assert len(special["timestamps"]) == len(SPECIAL_STEPS)
    only = store.history(rid, ["special"])
    assert list(only) == ["special"] and same(only["special"]["values"], SPECIAL_VALUES)
    assert store.history(rid, ["nothing"]) == {}

    sampled = store.history_sampled(rid, ["loss"], samples=500)
    picks = sample_positions(POINTS, 500)
    assert list(sampled) == ["loss"]
    assert sampled["loss"]["steps"] == [loss["steps"][i] for i in picks]
    assert sampled["loss"]["values"] == [loss["values"][i] for i in picks]
    assert sampled["loss"]["steps"][0] == 0 and sampled["loss"]["steps"][-1] == POINTS - 1
    assert len(sampled["loss"]["timestamps"]) == 500
    everything = store.history_sampled(rid, samples=None)
    assert everything["loss"]["values"] == loss["values"]
    assert same(everything["special"]["values"], SPECIAL_VALUES)

    many = store.history_many([rid], ["special"])
    assert list(many) == [rid] and same(many[rid]["special"]["values"], SPECIAL_VALUES)
    assert store.last_values([rid]) == {rid: {"loss": (POINTS - 1) / 7, "special": 1e308}}
    assert store.metric_counts([rid, "nothing"]) == {
        rid: {"loss": POINTS, "special": len(SPECIAL_STEPS)}, "nothing": {}}

    # -- artifacts ---------------------------------------------------------------------------------
    with store.open_artifact(rid, "big.bin") as fh:
        assert md5_of(fh) == big_md5
    with store.open_artifact(rid, "model.txt") as fh:
        assert fh.read() == second.read_bytes()
    with store.open_artifact(rid, "sub/dir/deep.bin") as fh:
        assert fh.read() == deep.read_bytes()
    with store.open_artifact(rid, "weights.bin") as fh:
        assert fh.read() == weights.read_bytes()
    with pytest.raises(FileNotFoundError):
        store.open_artifact(rid, "no-such-artifact")

    # -- labbook.Api ------------------------------------------------------------------------------
    with labbook.Api(store_url) as api:
        view = api.run(rid)
        assert view.id == rid and view.status == "COMPLETED"
        assert view.config.nested.deep.list == [1, 2.5, "x", None, True, [3, "ß"]]
        assert view.config["ключ"] == "значение" and math.isnan(view.config.not_a_number)
        assert view.command == "main" and view.name == "contract_full"
        assert view.info["note"] == "kept ✓"
        assert view.captured_out == doc["captured_out"]
        assert view.fail_trace is None
        assert view.duration is not None and view.duration >= 0
        assert view.metrics == ["loss", "special"]
        assert view.summary == {"loss": (POINTS - 1) / 7, "special": 1e308}
        rows = view.history(keys="loss", samples=None, pandas=False)
        assert len(rows) == POINTS
        assert rows[0] == {"_step": 0, "loss": 0.0}
        assert rows[-1] == {"_step": POINTS - 1, "loss": (POINTS - 1) / 7}
        assert len(view.history(samples=100, pandas=False)) == 100
        # every point streamed a page at a time, aligned as history() aligns them
        scanned = list(view.scan_history(page_size=7_000))
        assert same(scanned, view.history(samples=None, pandas=False))
        assert len(scanned) == POINTS
        assert scanned[10] == {"_step": 10, "loss": 10 / 7, "special": scanned[10]["special"]}
        assert same(list(view.scan_history(["special"], page_size=4)),
                    [{"_step": s, "special": v} for s, v in zip(SPECIAL_STEPS, SPECIAL_VALUES)])
        assert view.artifacts == artifact_names(doc)
        assert [f.name for f in view.files()] == artifact_names(doc)
        downloaded = view.file("big.bin").download(tmp_path / "download")
        with open(downloaded, "rb") as fh:
            assert md5_of(fh) == big_md5
        assert view.file("model.txt").read_bytes() == second.read_bytes()
        sources = {s.name: s for s in view.sources}
        with open(THIS_FILE, "rb") as fh:
            assert sources["test_contract.py"].read_bytes() == fh.read()
        with open(WORKER, "rb") as fh:
            assert sources["contract_worker.py"].read_bytes() == fh.read()
        resources = {r.name: r for r in view.resources}
        assert resources[str(table)].read_text() == "a,b\n1,2\n"
        assert resources[str(vocab)].read_text() == "ä ö ü\n"
        assert [v.id for v in api.runs({"config.lr": 0.001})] == [rid]
        assert [v.id for v in api.runs("status = 'COMPLETED'")] == [rid]


# -- terminal statuses -------------------------------------------------------------------------

class Diverged(LabbookInterrupt):
    STATUS = "DIVERGED"


OUTCOMES = {
    "COMPLETED": None,
    "FAILED": ValueError("bad value ✗"),
    "INTERRUPTED": KeyboardInterrupt(),
    "TIMEOUT": TimeoutInterrupt(),
    "DIVERGED": Diverged(),
}


@pytest.mark.parametrize("status", list(OUTCOMES))
def test_terminal_status_is_stored(kind, store_url, store, status):
    exc = OUTCOMES[status]
    ex = Experiment("contract_status")
    ex.add_config(expected=status)

    @ex.main
    def main(_run, expected):
        _run.log_scalar("x", 1.5)
        _run.log_scalar("x", math.nan)
        print("before the end")
        _run.info["reached"] = True
        if exc is not None:
            raise exc
        return expected

    if exc is None:
        ex.run(options=options(store_url))
    else:
        with pytest.raises(type(exc)):
            ex.run(options=options(store_url))
    runner = ex.current_run
    rid = runner._id
    assert runner.status == status

    doc = store.get(rid)
    assert doc["status"] == status
    assert doc["config"]["expected"] == status
    assert_time(doc["stop_time"], runner.stop_time, kind)
    assert doc["start_time"] <= doc["stop_time"]
    assert doc["info"] == {"reached": True}
    assert "before the end" in doc["captured_out"]
    assert doc["result"] == (status if exc is None else None)
    history = store.history(rid)
    assert history["x"]["steps"] == [0, 1] and same(history["x"]["values"], [1.5, math.nan])
    if status == "FAILED":
        trace = "".join(doc["fail_trace"])
        assert "ValueError: bad value ✗" in trace and "in main" in trace
    else:
        assert doc.get("fail_trace") is None
    assert [d["_id"] for d in store.find({"status": status})] == [rid]

    with labbook.Api(store_url) as api:
        view = api.run(rid)
        assert view.status == status and view.stored_status == status
        assert view.stop_time is not None and view.duration >= 0
        assert view.summary["x"] != view.summary["x"]  # the NaN logged last
        if status == "FAILED":
            assert "ValueError: bad value ✗" in view.fail_trace
        else:
            assert view.fail_trace is None


# -- a queued run ------------------------------------------------------------------------------

def test_queued_run_is_stored(kind, store_url, store):
    ex = Experiment("contract_queue")
    ex.add_config(batch=64, name="wartend ⏳")
    ran = []

    @ex.main
    def main(batch):
        ran.append(batch)

    run = ex.run(options=options(store_url, queue=True))
    assert ran == [] and run.status == "QUEUED" and run._id is not None
    doc = store.get(run._id)
    assert doc["status"] == "QUEUED"
    assert doc["config"] == {"batch": 64, "name": "wartend ⏳", "seed": run.config["seed"]}
    assert isinstance(doc["queue_time"], dt.datetime)
    assert doc.get("start_time") is None and doc.get("stop_time") is None
    assert doc["command"] == "main" and doc["experiment"]["name"] == "contract_queue"
    assert doc["host"] == serialize.flatten(run.host_info)
    assert store.history(run._id) == {}
    assert [d["_id"] for d in store.find({"status": "QUEUED"})] == [run._id]
    with labbook.Api(store_url) as api:
        view = api.run(run._id)
        assert view.status == "QUEUED" and view.config.name == "wartend ⏳"
        assert view.start_time is None and view.duration is None


# -- many processes at once --------------------------------------------------------------------

@pytest.mark.parametrize("kind", SHARED_STORES)
def test_parallel_processes_get_distinct_complete_runs(kind, store_url, tmp_path):
    # the store is opened only afterwards: the 32 processes create its tables or directory
    workdir = tmp_path / "workers"
    workdir.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(
        [sys.executable, WORKER, store_url, str(PARALLEL), str(PARALLEL_POINTS), str(workdir)],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"children": PARALLEL,
                                                                "failed": 0}
    results = []
    for worker in range(PARALLEL):
        with open(workdir / f"result-{worker}.json", encoding="utf-8") as fh:
            results.append(json.load(fh))
    ids = [r["id"] for r in results]
    assert None not in ids and len(set(ids)) == PARALLEL
    assert all(r["status"] == "COMPLETED" for r in results)

    store = open_store(store_url)
    try:
        check_parallel_runs(store, results)
    finally:
        store.close()


def check_parallel_runs(store, results: list[dict]) -> None:
    ids = [r["id"] for r in results]
    docs = store.find({"experiment.name": contract_worker.EXPERIMENT})
    assert sorted(d["_id"] for d in docs) == sorted(ids)
    by_id = {d["_id"]: d for d in docs}
    histories = store.history_many(ids)
    for result in results:
        worker, rid = result["worker"], result["id"]
        doc = by_id[rid]
        assert doc["status"] == "COMPLETED"
        assert doc["config"]["worker"] == worker and doc["config"]["label"] == f"wörker {worker}"
        assert doc["result"] == worker
        series = histories[rid]["value"]
        assert series["steps"] == list(range(PARALLEL_POINTS))
        assert series["values"] == [contract_worker.value(worker, s)
                                    for s in range(PARALLEL_POINTS)]
        assert len(series["timestamps"]) == PARALLEL_POINTS
        assert artifact_names(doc) == ["payload.bin"]
        with store.open_artifact(rid, "payload.bin") as fh:
            assert fh.read() == contract_worker.payload(worker)
    assert store.metric_counts(ids) == {rid: {"value": PARALLEL_POINTS} for rid in ids}
    last = store.last_values(ids)
    assert last == {r["id"]: {"value": contract_worker.value(r["worker"], PARALLEL_POINTS - 1)}
                    for r in results}


# -- deleting a run ----------------------------------------------------------------------------

def test_deleted_run_is_gone_and_shared_files_stay(kind, store_url, store, tmp_path):
    shared = tmp_path / "shared.csv"
    shared.write_text("x\n1\n")
    output = tmp_path / "out.bin"
    output.write_bytes(b"\x01\x02 output")
    ex = Experiment("contract_delete")
    ex.add_config(n=0)

    @ex.main
    def main(_run, n):
        _run.open_resource(str(shared)).close()
        _run.add_artifact(str(output), name="out.bin")
        _run.log_scalar("m", n)

    first = ex.run(config_updates={"n": 1}, options=options(store_url))._id
    second = ex.run(config_updates={"n": 2}, options=options(store_url))._id
    assert first != second
    store.delete_run(first)
    assert store.get(first) is None
    assert store.history(first) == {}
    with pytest.raises(FileNotFoundError):
        store.open_artifact(first, "out.bin")
    assert [d["_id"] for d in store.find({"experiment.name": "contract_delete"})] == [second]
    with pytest.raises(KeyError):
        store.delete_run(first)
    assert store.last_values([second]) == {second: {"m": 2}}
    with labbook.Api(store_url) as api:
        with pytest.raises(RunNotFoundError):
            api.run(first)
        view = api.run(str(second))  # an id typed on a command line
        assert view.id == second and view.config.n == 2
        assert [r.read_text() for r in view.resources] == ["x\n1\n"]
        assert view.file("out.bin").read_bytes() == output.read_bytes()


# -- ids chosen by the user, queued runs taken by workers ---------------------------------------

def test_a_taken_id_is_refused_and_the_stored_run_stays(kind, store_url, store):
    ex = Experiment("contract_ids")
    ex.add_config(n=0)

    @ex.main
    def main(_run, n):
        _run.log_scalar("m", n)
        return n

    first = ex.run(config_updates={"n": 1}, options=options(store_url))._id
    with pytest.raises(labbook.RunExistsError, match=f"A run with id {first} already exists"):
        ex.run(config_updates={"n": 2}, options=options(store_url, id=first))
    assert ex.current_run.status == "FAILED"
    doc = store.get(first)
    assert doc["status"] == "COMPLETED" and doc["config"]["n"] == 1 and doc["result"] == 1
    assert store.history(first)["m"]["values"] == [1]
    assert len(store.find({"experiment.name": "contract_ids"})) == 1


def test_a_queued_run_is_started_under_its_id(kind, store_url, store):
    ex = Experiment("contract_start_queued")
    ex.add_config(n=0)

    @ex.main
    def main(_run, n):
        _run.log_scalar("m", n)
        return n

    queued = ex.run(config_updates={"n": 7}, options=options(store_url, queue=True))._id
    started = ex.run(config_updates={"n": 7}, options=options(store_url, id=queued))
    assert started._id == queued
    doc = store.get(queued)
    assert doc["status"] == "COMPLETED" and doc["result"] == 7
    assert store.history(queued)["m"]["values"] == [7]
    assert [d["_id"] for d in store.find({"experiment.name": "contract_start_queued"})] == \
        [queued]


CLAIMER = """
import json, sys
from labbook.stores import open_store
store = open_store(sys.argv[1])
claimed = []
while True:
    doc = store.claim_queued(sys.argv[2], experiment="contract_claim")
    if doc is None:
        break
    assert doc["status"] == "RUNNING" and doc["meta"]["worker"] == sys.argv[2], doc
    claimed.append(doc["_id"])
print(json.dumps(claimed))
"""


@pytest.mark.parametrize("kind", SHARED_STORES)
def test_workers_claim_each_queued_run_once(kind, store_url, store, tmp_path):
    ex = Experiment("contract_claim")
    ex.add_config(n=0)
    ex.main(lambda n: n)
    queued = [ex.run(config_updates={"n": i}, options=options(store_url, queue=True,
                                                              priority=1 if i == 5 else 0))._id
              for i in range(24)]
    other = Experiment("contract_not_claimed")
    other.main(lambda: None)
    untouched = other.run(options=options(store_url, queue=True))._id
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    workers = [subprocess.Popen([sys.executable, "-c", CLAIMER, store_url, f"worker-{w}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=str(tmp_path), env=env) for w in range(4)]
    claimed = []
    for proc in workers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        claimed.append(json.loads(out.strip().splitlines()[-1]))
    everything = [rid for ids in claimed for rid in ids]
    assert sorted(everything) == sorted(queued)  # each run once, none twice, none left
    for worker, ids in enumerate(claimed):
        for rid in ids:
            doc = store.get(rid)
            assert doc["status"] == "RUNNING" and doc["meta"]["worker"] == f"worker-{worker}"
            assert isinstance(doc["heartbeat"], dt.datetime)
    assert store.get(untouched)["status"] == "QUEUED"
    assert store.claim_queued("late", experiment="contract_claim") is None
    # the highest priority goes first; the rest by age
    again = Experiment("contract_claim")
    again.main(lambda: None)
    low = again.run(options=options(store_url, queue=True))._id
    high = again.run(options=options(store_url, queue=True, priority=3))._id
    assert store.claim_queued("solo", experiment="contract_claim")["_id"] == high
    assert store.claim_queued("solo", experiment="contract_claim")["_id"] == low
    # a claimed run is started under its id by the worker that took it
    started = again.run(options=options(store_url, id=low))
    assert started._id == low and store.get(low)["status"] == "COMPLETED"


CAS_RACER = """
import json, sys
from labbook.stores import open_store, query
store = open_store(sys.argv[1])
run_id = json.loads(sys.argv[2])
doc = store.get(run_id)
won = store.update_if(run_id, {"status": "RUNNING", "heartbeat": doc["heartbeat"]},
                      {"status": "QUEUED", "heartbeat": None,
                       "meta": dict(doc["meta"], requeues=1, by=sys.argv[3])})
print(json.dumps(won))
"""


@pytest.mark.parametrize("kind", SHARED_STORES)
def test_update_if_is_compare_and_set(kind, store_url, store, tmp_path):
    # what workers re-queue a dead run with: of several processes that saw the run in one
    # state, exactly one changes it
    ex = Experiment("contract_cas")
    ex.main(lambda: None)
    run_id = ex.run(options=options(store_url, queue=True))._id
    claimed = store.claim_queued("gone", experiment="contract_cas")
    assert claimed["_id"] == run_id
    assert not store.update_if(run_id, {"status": "QUEUED"}, {"status": "FAILED"})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    racers = [subprocess.Popen([sys.executable, "-c", CAS_RACER, store_url,
                                json.dumps(run_id), f"racer-{n}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=env)
              for n in range(4)]
    won = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        won.append(json.loads(out.strip().splitlines()[-1]))
    assert won.count(True) == 1, won
    doc = store.get(run_id)
    assert doc["status"] == "QUEUED" and doc["meta"]["requeues"] == 1
    assert doc["meta"]["by"] == f"racer-{won.index(True)}"
    # queued again, it can be claimed again (the file store's claim marker is gone)
    assert store.claim_queued("next", experiment="contract_cas")["_id"] == run_id
    beat = store.get(run_id)["heartbeat"]
    assert store.update_if(run_id, {"status": "RUNNING", "start_time": None, "heartbeat": beat},
                           {"heartbeat": None})
    assert store.get(run_id)["heartbeat"] is None


CLAIM_RACER = """
import json, sys
from labbook.stores import open_store
store = open_store(sys.argv[1])
run_id = json.loads(sys.argv[2])
if sys.argv[3].endswith("0"):  # one racer takes the next queued run instead of this one
    doc = store.claim_queued(sys.argv[3], experiment="contract_claim_run")
else:
    doc = store.claim_run(run_id, sys.argv[3])
print(json.dumps(doc is not None and doc["_id"] == run_id))
"""


@pytest.mark.parametrize("kind", SHARED_STORES)
def test_claim_run_takes_that_run_once(kind, store_url, store, tmp_path):
    # what a launcher's job claims its run with: of processes claiming one run (by id or as
    # the next queued one), exactly one gets it
    ex = Experiment("contract_claim_run")
    ex.main(lambda: None)
    run_id = ex.run(options=options(store_url, queue=True))._id
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    racers = [subprocess.Popen([sys.executable, "-c", CLAIM_RACER, store_url,
                                json.dumps(run_id), f"racer-{n}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=env)
              for n in range(4)]
    won = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        won.append(json.loads(out.strip().splitlines()[-1]))
    assert won.count(True) == 1, won
    doc = store.get(run_id)
    assert doc["status"] == "RUNNING" and doc["meta"]["worker"] == f"racer-{won.index(True)}"
    assert isinstance(doc["heartbeat"], dt.datetime) and not doc.get("start_time")
    assert store.claim_run(run_id, "late") is None
    # queued again, it can be claimed by id again (the file store's claim marker is gone)
    assert store.update_if(run_id, {"status": "RUNNING", "heartbeat": doc["heartbeat"]},
                           {"status": "QUEUED", "heartbeat": None,
                            "meta": dict(doc["meta"], worker=None)})
    assert store.claim_run(run_id, "again")["meta"]["worker"] == "again"
    assert store.claim_queued("none left", experiment="contract_claim_run") is None


def test_observers_create_picks_the_store_by_url(kind, store_url, store):
    from labbook.observers import create

    observer = create(store_url)
    named = {"file": "FileStorageObserver", "mongo": "MongoObserver"}
    expected = named.get(kind, "StoreObserver")
    assert type(observer).__name__ == expected
    ex = Experiment("contract_create")
    ex.observers.append(observer)
    ex.main(lambda: 42)
    run = ex.run(options={"--no_system_metrics": True, "--loglevel": "WARNING"})
    assert store.get(run._id)["result"] == 42


def test_last_steps_are_each_metrics_highest_step(kind, store_url, store):
    # what a resumed run continues after: the highest step, not the one logged last
    ex = Experiment("contract_steps")

    @ex.main
    def main(_run):
        for step in (0, 5, 3):
            _run.log_scalar("loss", 1.0 / (step + 1), step)
        _run.log_scalar("acc", 0.5)          # numbered from 0
        _run.log_scalar("acc", 0.7)

    run_id = ex.run(options=options(store_url))._id
    assert store.last_steps(run_id) == {"loss": 5, "acc": 1}
    assert store.last_steps(run_id) == {
        name: max(series["steps"]) for name, series in store.history(run_id).items()}
