"""The SQL store on real SQLite, PostgreSQL and MariaDB databases (see conftest.py).

Everything a run records through ``SqlObserver`` is read back exactly; ``find`` gives the same
answers as the file store; parallel processes get distinct runs; failures are clear and never
take a run down.
"""
import datetime as dt
import hashlib
import logging
import math
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

import labbook

from labbook import Experiment, serialize
from labbook.errors import LabbookError
from labbook.observers import SqlObserver, observers_from_options
from labbook.stores import open_store
from labbook.stores.file import FileStore
from labbook.stores.base import Store, sample_positions
from labbook.errors import SqlConnectionError, SqlSchemaError, SqlStoreError
from labbook.stores.sql import SCHEMA_VERSION, SqlStore, engine_url
from labbook.stores.sql.schema import artifacts, blob_chunks, blobs, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THIS_FILE = os.path.abspath(__file__)
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)


def md5_of(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def make_experiment(url, body, name="sqlstore"):
    ex = Experiment(name)
    ex.add_config(lr=0.1, layers=[1, 2], nested={"a": {"b": "c"}})
    observer = SqlObserver(url)
    ex.observers.append(observer)

    @ex.main
    def main(lr, _run):
        return body(_run)

    return ex, observer


def same_floats(a, b) -> bool:
    """Equal, NaN equal to NaN, and -0.0 told apart from 0.0."""
    return [repr(float(x)) for x in a] == [repr(float(x)) for x in b]


# -- a whole run through the public API ----------------------------------------------------------
@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "INTERRUPTED"])
def test_a_run_reads_back_exactly(sql_url, status, tmp_path):
    small = tmp_path / "weights.bin"
    small.write_bytes(bytes(range(256)) * 40)
    big = tmp_path / "big.bin"
    big_bytes = os.urandom(5 * 1024 * 1024)
    big.write_bytes(big_bytes)
    resource = tmp_path / "data.csv"
    resource.write_text("a,b\n1,2\n")
    values = [1.0, 0.5, math.nan, math.inf, -math.inf, 0.25, 1e308, 1e-300]

    def body(_run):
        print("hello from the run")
        for i, value in enumerate(values):
            _run.log_scalar("loss", value)
            _run.log_scalar("acc", i, step=10 * i)
            time.sleep(0.05)  # the points spread over several beats of 0.1 s
        _run.add_artifact(str(small))
        _run.add_artifact(str(big), name="models/big.bin", metadata={"epoch": 3})
        _run.open_resource(str(resource)).close()
        _run.info["note"] = "kept"
        _run.info["odd"] = [math.nan, math.inf, -math.inf]
        print("bye")
        if status == "FAILED":
            raise RuntimeError("exploded")
        if status == "INTERRUPTED":
            raise KeyboardInterrupt
        return {"acc": 0.5}

    ex, observer = make_experiment(sql_url, body)
    batches = []
    append = observer.store.append_metrics

    def counting(run_id, metrics_by_name):
        batches.append(sorted(metrics_by_name))
        append(run_id, metrics_by_name)

    observer.store.append_metrics = counting
    options = {"--beat-interval": 0.1, "--capture": "sys"}
    if status == "COMPLETED":
        run = ex.run(options=options)
    else:
        with pytest.raises(RuntimeError if status == "FAILED" else KeyboardInterrupt):
            ex.run(options=options)
        run = ex.current_run
    assert len([b for b in batches if "loss" in b]) >= 2  # metrics arrived over several beats

    store = SqlStore(sql_url)  # a fresh connection: what another process would read
    doc = store.get(run._id)
    assert doc["_id"] == run._id
    assert doc["status"] == status and doc["command"] == "main"
    assert doc["config"] == serialize.flatten(dict(run.config))
    assert doc["config"]["nested"] == {"a": {"b": "c"}}
    assert doc["host"] == serialize.flatten(run.host_info)
    assert doc["meta"]["command"] == "main"
    assert doc["experiment"]["name"] == "sqlstore"
    assert doc["info"]["note"] == "kept"
    assert same_floats(doc["info"]["odd"], [math.nan, math.inf, -math.inf])
    assert doc["captured_out"] == run.captured_out
    assert "hello from the run" in doc["captured_out"] and "bye" in doc["captured_out"]
    assert doc["start_time"] == run.start_time and doc["stop_time"] == run.stop_time
    assert isinstance(doc["heartbeat"], dt.datetime) and doc["heartbeat"] >= run.start_time
    if status == "COMPLETED":
        assert doc["result"] == {"acc": 0.5} and "fail_trace" not in doc
    elif status == "FAILED":
        assert "RuntimeError: exploded" in "".join(doc["fail_trace"])
    else:
        assert "fail_trace" not in doc

    assert doc["artifacts"] == ["weights.bin", "models/big.bin"]
    assert store.open_artifact(run._id, "weights.bin").read() == small.read_bytes()
    assert store.open_artifact(run._id, "models/big.bin").read() == big_bytes
    with pytest.raises(FileNotFoundError):
        store.open_artifact(run._id, "nope.bin")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(artifacts.c.name, artifacts.c.content_type,
                                      artifacts.c["metadata"])
                            .where(artifacts.c.run_id == run._id)
                            .order_by(artifacts.c.id)).all()
    assert rows[1][0] == "models/big.bin" and rows[1][2] == {"epoch": 3}

    assert doc["resources"] == [[str(resource), md5_of(resource)]]
    assert store.open_blob(md5_of(resource)).read() == resource.read_bytes()
    sources = dict(doc["experiment"]["sources"])
    mine = [rel for rel in sources if rel.endswith("test_sql_store.py")]
    assert mine and sources[mine[0]] == md5_of(THIS_FILE)
    assert store.open_blob(sources[mine[0]]).read() == open(THIS_FILE, "rb").read()

    history = store.history(run._id, ["loss", "acc"])
    assert sorted(history) == ["acc", "loss"]
    assert history["loss"]["steps"] == list(range(len(values)))
    assert same_floats(history["loss"]["values"], values)
    assert history["acc"]["steps"] == [10 * i for i in range(len(values))]
    assert history["acc"]["values"] == list(range(len(values)))
    stamps = history["loss"]["timestamps"]
    assert all(isinstance(t, dt.datetime) and t.tzinfo is None for t in stamps)
    assert stamps == sorted(stamps) and run.start_time <= stamps[0] <= run.stop_time
    assert "loss" in store.history(run._id)  # all names, system metrics included

    assert [r["_id"] for r in store.find({"status": status})] == [run._id]
    assert store.find({"config.lr": 0.1, "experiment.name": "sqlstore"})[0]["_id"] == run._id
    store.close()


def test_sources_and_resources_are_stored_once(sql_url, tmp_path):
    resource = tmp_path / "data.csv"
    resource.write_text("shared resource\n")

    def body(_run):
        _run.open_resource(str(resource)).close()
        _run.add_artifact(str(resource), name="copy.csv")

    ex, _ = make_experiment(sql_url, body)
    first, second = ex.run(), ex.run()
    store = SqlStore(sql_url)
    doc1, doc2 = store.get(first._id), store.get(second._id)
    assert first._id != second._id
    assert doc1["experiment"]["sources"] == doc2["experiment"]["sources"]
    md5s = {md5 for _, md5 in doc1["experiment"]["sources"]} | {md5_of(resource)}
    with store.engine.connect() as conn:
        counts = dict(conn.execute(sa.select(blobs.c.md5, sa.func.count())
                                   .group_by(blobs.c.md5)).all())
        sizes = dict(conn.execute(sa.select(blobs.c.md5, blobs.c.size)).all())
    assert md5s <= set(counts) and all(counts[m] == 1 for m in md5s)
    assert sizes[md5_of(resource)] == resource.stat().st_size
    assert store.open_artifact(second._id, "copy.csv").read() == resource.read_bytes()
    store.close()


# -- find: the same answers as the file store ----------------------------------------------------
def _docs():
    hour = dt.timedelta(hours=1)
    base = {"command": "main", "host": {"hostname": "h"}, "meta": {"tags": []},
            "resources": [], "artifacts": [], "captured_out": "", "info": {},
            "heartbeat": T0, "result": None}
    specs = [
        ("alpha", "COMPLETED", {"x": 1, "tags": ["a", "b"]}, {"acc": 0.4}, 0, True),
        ("alpha", "FAILED", {"x": 2, "tags": ["b"]}, None, 1, True),
        ("beta", "COMPLETED", {"x": 3, "tags": []}, {"acc": 0.9}, 2, True),
        ("beta", "RUNNING", {"x": 2}, None, 3, False),
        ("gamma", "INTERRUPTED", {"x": 1.5, "lr": "high"}, None, 4, True),
        ("alpha", "completed", {"x": None}, {"acc": 0.6}, 5, True),
    ]
    docs = []
    for i, (name, status, config, result, offset, stopped) in enumerate(specs):
        doc = dict(base, experiment={"name": name, "sources": []}, status=status,
                   config=config, result=result, start_time=T0 + offset * hour,
                   meta={"tags": ["x"] if i % 2 else []})
        if stopped:
            doc["stop_time"] = T0 + offset * hour + dt.timedelta(minutes=5 + i)
        if status == "FAILED":
            doc["fail_trace"] = ["Traceback", "RuntimeError: no"]
        if i == 3:
            doc["heartbeat"] = None
        docs.append(doc)
    return docs


FILTERS = [
    None, {}, {"status": "COMPLETED"}, {"status": "completed"}, {"status": "COMPLETED "},
    {"status": {"$ne": "COMPLETED"}}, {"status": {"$in": ["FAILED", "INTERRUPTED"]}},
    {"status": {"$nin": ["FAILED", "RUNNING"]}}, {"status": {"$gt": "D"}},
    {"status": {"$regex": "ED$"}}, {"status": {"$not": {"$in": ["COMPLETED"]}}},
    {"status": {"$exists": True}}, {"status": None}, {"status": 3},
    {"config.x": 2}, {"config.x": {"$gte": 2}}, {"config.x": None}, {"config.x": {"$in": [1, 3]}},
    {"config.tags": "b"}, {"config.tags": {"$size": 2}}, {"config.lr": {"$exists": True}},
    {"$or": [{"status": "FAILED"}, {"config.x": {"$lt": 2}}]},
    {"$or": [{"_id": 1}, {"config.missing": {"$exists": True}}]},
    {"$and": [{"experiment.name": "alpha"}, {"status": {"$ne": "FAILED"}}]},
    {"$nor": [{"status": "COMPLETED"}, {"_id": {"$lte": 2}}]},
    {"$nor": [{"config.x": 1}]},
    {"_id": {"$gt": 2}}, {"_id": {"$in": [1, 3, 99]}}, {"_id": True}, {"_id": "1"},
    {"_id": {"$lt": 2.5}}, {"_id": {"$nin": [2]}},
    {"start_time": {"$gte": T0 + dt.timedelta(hours=2)}}, {"start_time": {"$lt": "2030"}},
    {"start_time": T0}, {"stop_time": {"$exists": False}}, {"stop_time": None},
    {"stop_time": {"$in": [None]}}, {"stop_time": {"$ne": None}},
    {"heartbeat": None}, {"heartbeat": {"$in": [None]}}, {"heartbeat": {"$exists": True}},
    {"heartbeat": {"$ne": None}},
    {"experiment.name": "alpha"}, {"experiment.name": {"$in": ["beta", "gamma"]}},
    {"experiment.name": {"$regex": "^al"}}, {"experiment.name": None},
    {"command": "main"}, {"command": {"$ne": "main"}},
    {"result": None}, {"result.acc": {"$gt": 0.5}}, {"meta.tags": {"$all": ["x"]}},
    {"fail_trace": {"$exists": True}}, {"captured_out": ""},
]
ORDERS = [None, "_id", "-_id", "config.x", "-config.x", "start_time", "-stop_time", "+status",
          "-heartbeat", "experiment.name"]


def test_find_gives_the_same_answers_as_the_file_store(sql_store, tmp_path):
    file_store = FileStore(tmp_path / "files")
    for doc in _docs():
        assert sql_store.create_run(doc) == file_store.create_run(doc)
    assert sql_store.find() == file_store.find()  # whole documents, not just ids
    for flt in FILTERS:
        for order in ORDERS:
            for limit in (None, 2):
                got = [r["_id"] for r in sql_store.find(flt, order, limit)]
                want = [r["_id"] for r in file_store.find(flt, order, limit)]
                assert got == want, (flt, order, limit)


def test_find_by_status_config_in_or_order_and_limit(sql_store):
    for doc in _docs():
        sql_store.create_run(doc)

    def ids(*args, **kwargs):
        return [r["_id"] for r in sql_store.find(*args, **kwargs)]

    assert ids({"status": "COMPLETED"}) == [1, 3]
    assert ids({"config.x": 2}) == [2, 4]
    assert ids({"status": {"$in": ["FAILED", "RUNNING"]}}) == [2]
    # run 4 is stored RUNNING but its heartbeat stopped long ago: it is reported DIED
    assert ids({"status": "DIED"}) == [4] and sql_store.get(4)["status"] == "RUNNING"
    assert ids({"$or": [{"status": "FAILED"}, {"config.x": 3}]}) == [2, 3]
    assert ids(order="-start_time") == [6, 5, 4, 3, 2, 1]
    assert ids(order="-stop_time", limit=2) == [6, 5]  # run 4 has no stop_time: last
    assert ids({"experiment.name": "alpha"}, order="-_id", limit=2) == [6, 2]
    assert ids({"status": "nothing"}) == [] and ids(limit=0) == []


# -- metrics -------------------------------------------------------------------------------------
def test_metric_values_round_trip_exactly(sql_store):
    run_id = sql_store.create_run({"status": "RUNNING", "config": {}})
    values = [0.0, 1.5, -2.25, math.nan, math.inf, -math.inf, 1e308, 2.2250738585072014e-308,
              3, 1 / 3]
    stamps = [T0 + dt.timedelta(microseconds=i) for i in range(len(values))]
    sql_store.append_metrics(run_id, {"m": {"steps": list(range(len(values))), "values": values,
                                            "timestamps": stamps}})
    sql_store.append_metrics(run_id, {"m": {"steps": [2**40], "values": [7.0],
                                            "timestamps": [T0]},
                                      "Other": {"steps": [0], "values": [math.nan],
                                                "timestamps": [T0]}})
    history = sql_store.history(run_id)
    assert sorted(history) == ["Other", "m"]
    assert history["m"]["steps"] == list(range(len(values))) + [2**40]
    assert same_floats(history["m"]["values"], values + [7.0])
    assert history["m"]["timestamps"] == stamps + [T0]
    assert same_floats(sql_store.history(run_id, ["Other"])["Other"]["values"], [math.nan])
    assert sql_store.history(run_id, ["other"]) == {}  # names are case-sensitive
    assert sql_store.history(run_id, []) == {} and sql_store.history(999) == {}
    with sql_store.engine.connect() as conn:
        raw = conn.execute(sa.select(metrics.c.value, metrics.c.special)
                           .where(metrics.c.name == "m").order_by(metrics.c.id)).all()
    assert raw[3:6] == [(None, "nan"), (None, "inf"), (None, "-inf")]
    assert raw[1] == (1.5, None)
    with pytest.raises(SqlStoreError, match="steps must be integers"):
        sql_store.append_metrics(run_id, {"m": {"steps": [0.5], "values": [1],
                                                "timestamps": [T0]}})


def test_append_many_points(sql_store, sql_backend):
    """1e5 points in one call (one batch insert); the time is printed, not asserted."""
    run_id = sql_store.create_run({"status": "RUNNING", "config": {}})
    n = 100_000
    now = dt.datetime(2024, 1, 1)
    batch = {"loss": {"steps": list(range(n)), "values": [i * 0.5 for i in range(n)],
                      "timestamps": [now] * n}}
    start = time.perf_counter()
    sql_store.append_metrics(run_id, batch)
    elapsed = time.perf_counter() - start
    print(f"\n[{sql_backend}] append_metrics of {n} points: {elapsed:.2f} s")
    history = sql_store.history(run_id)["loss"]
    assert history["steps"] == list(range(n)) and history["values"][-1] == (n - 1) * 0.5


def test_metric_names_with_quotes_backslashes_and_unicode(sql_store):
    run_id = sql_store.create_run({"status": "RUNNING"})
    names = ["it's", 'say "hi"', "back\\slash\\", "ünï 🧪", "a'); DROP TABLE runs; --", "%s %(x)s ?"]
    sql_store.append_metrics(run_id, {name: {"steps": [0, 1], "values": [i, math.inf],
                                             "timestamps": [T0, T0]}
                                      for i, name in enumerate(names)})
    sql_store.append_metrics(run_id, {name: {"steps": [2], "values": [0.5]} for name in names})
    history = sql_store.history(run_id)
    assert list(history) == names
    for i, name in enumerate(names):
        assert _same(history[name]["values"], [float(i), math.inf, 0.5])
        assert history[name]["steps"] == [0, 1, 2]
    assert sql_store.get(run_id)["status"] == "RUNNING"


# -- the run document ----------------------------------------------------------------------------
def test_update_run_is_partial_and_ids_are_integers(sql_store):
    run_id = sql_store.create_run({"status": "RUNNING", "config": {"a": 1}, "info": {"i": 1},
                                   "start_time": T0})
    sql_store.update_run(run_id, {"status": "COMPLETED"})
    sql_store.update_run(run_id, {"custom": {"k": [1, 2]}})
    sql_store.update_run(run_id, {"other": "x", "stop_time": T0 + dt.timedelta(seconds=1)})
    doc = sql_store.get(run_id)
    assert doc["status"] == "COMPLETED" and doc["config"] == {"a": 1} and doc["info"] == {"i": 1}
    assert doc["custom"] == {"k": [1, 2]} and doc["other"] == "x"
    assert doc["start_time"] == T0 and doc["stop_time"] == T0 + dt.timedelta(seconds=1)
    assert sql_store.find({"custom.k": 2})[0]["_id"] == run_id
    with pytest.raises(SqlStoreError, match="no run"):
        sql_store.update_run(999, {"status": "FAILED"})

    assert sql_store.create_run({"status": "QUEUED"}, run_id=50) == 50
    assert sql_store.create_run({"status": "RUNNING"}) == 51  # the sequence moved past 50
    assert sql_store.create_run({"status": "RUNNING", "config": {"b": 2}}, run_id="50") == 50
    assert sql_store.get(50)["config"] == {"b": 2} and sql_store.get("50")["status"] == "RUNNING"
    with pytest.raises(SqlStoreError, match="integers"):
        sql_store.create_run({}, run_id="first")
    assert sql_store.get("first") is None and sql_store.get(12345) is None


def test_a_queued_run(sql_url):
    ex, _ = make_experiment(sql_url, lambda _run: None)
    run = ex.run(options={"--queue": True})
    doc = SqlStore(sql_url).get(run._id)
    assert doc["status"] == "QUEUED" and isinstance(doc["queue_time"], dt.datetime)
    assert "start_time" not in doc


# -- processes -----------------------------------------------------------------------------------
PARALLEL_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from labbook import Experiment
ex = Experiment('parallel')

@ex.config
def cfg():
    worker = 0

@ex.automain
def main(_run, worker):
    for i in range(40):
        _run.log_scalar('x', i)
        time.sleep(0.005)
    _run.add_artifact(__file__, name='script.py')
    _run.info['worker'] = worker
    return worker
"""


def test_parallel_processes_get_distinct_complete_runs(sql_url, tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(PARALLEL_SCRIPT.format(root=ROOT))
    procs = [subprocess.Popen([sys.executable, str(script), "-s", sql_url, "-b", "0.05",
                               "with", f"worker={i}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
             for i in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        assert b"failed" not in err.lower(), err.decode()
    store = SqlStore(sql_url)
    runs = store.find({"experiment.name": "parallel"})
    assert len(runs) == 8 and len({r["_id"] for r in runs}) == 8
    assert sorted(r["result"] for r in runs) == list(range(8))
    for run in runs:
        assert run["status"] == "COMPLETED" and run["info"]["worker"] == run["result"]
        assert run["config"]["worker"] == run["result"]
        assert store.history(run["_id"], ["x"])["x"]["steps"] == list(range(40))
        assert store.open_artifact(run["_id"], "script.py").read() == script.read_bytes()
    store.close()


# -- failures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, where", [
    ("postgresql://alice:s3cret@127.0.0.1:1/x", "127.0.0.1:1"),
    ("mysql://alice:s3cret@127.0.0.1:1/x", "127.0.0.1:1"),
])
def test_an_unreachable_database_is_a_clear_error(url, where):
    with pytest.raises(SqlConnectionError) as info:
        SqlObserver(url)
    message = str(info.value)
    assert isinstance(info.value, LabbookError)
    assert "s3cret" not in message and "alice:****@127.0.0.1:1/x" in message
    assert f"reachable at {where}" in message and "password" in message
    store = open_store(url)  # opening is lazy; the first use fails the same way
    with pytest.raises(SqlConnectionError, match="Check that the database server"):
        store.find()


def test_an_unopenable_sqlite_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SqlConnectionError) as info:
        SqlObserver(f"sqlite:///{blocker}/runs.db")
    assert str(blocker) in str(info.value) and "writable" in str(info.value)


def test_a_run_survives_its_failing_sql_observer(sql_url, sql_backend, tmp_path, caplog,
                                                 monkeypatch):
    unreachable = {"sqlite": f"sqlite:///{tmp_path / 'gone.txt'}/x.db",
                   "postgresql": "postgresql://postgres@127.0.0.1:1/x",
                   "mysql": "mysql://root@127.0.0.1:1/x"}[sql_backend]
    (tmp_path / "gone.txt").write_text("a file where a directory should be")

    def body(_run):
        for i in range(5):
            _run.log_scalar("x", i)
        time.sleep(0.4)  # several beats: the points and the heartbeat are stored
        store = observer.store
        with store._lock:  # the database goes away in the middle of the run
            store._engine.dispose()
            store._engine = store._reader = sa.create_engine(engine_url(unreachable))
        for i in range(5, 10):
            _run.log_scalar("x", i)
        time.sleep(0.3)
        return 42

    ex, observer = make_experiment(sql_url, body)
    failure_dir = tmp_path / "failed"
    monkeypatch.setenv("LABBOOK_FAILURE_DIR", str(failure_dir))
    monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], "MAX_WAIT", 0.3)
    monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], "BACKOFF", 0.01)
    with caplog.at_level(logging.WARNING):
        run = ex.run(options={"--beat-interval": 0.1})
    assert run.status == "COMPLETED" and run.result == 42
    assert "failed in" not in caplog.text  # an outage never disables the observer
    assert f"could not reach {observer.store.redacted_url}; they wait in " \
        f"{failure_dir / f'run_{run._id}'}" in caplog.text
    store = SqlStore(sql_url)
    doc = store.get(run._id)
    assert doc["status"] == "RUNNING"  # the end never reached the database...
    assert doc["config"]["lr"] == 0.1 and doc["heartbeat"] is not None
    assert store.history(run._id, ["x"])["x"]["steps"] == [0, 1, 2, 3, 4]
    from labbook.observers.queued import replay

    replay(failure_dir, sql_url)  # ...until the journal is uploaded
    doc = store.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 42
    assert store.history(run._id, ["x"])["x"]["steps"] == list(range(10))
    store.close()


def test_schema_versions_and_foreign_tables(sql_url, tmp_path):
    store = SqlStore(sql_url)
    store.check()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE labbook_schema SET version = {SCHEMA_VERSION + 98}")
    store.close()
    with pytest.raises(SqlSchemaError, match=f"schema version {SCHEMA_VERSION + 98}"):
        SqlObserver(sql_url)
    with pytest.raises(SqlSchemaError, match="Upgrade labbook"):
        SqlStore(sql_url).find()

    other = tmp_path / "mlflow.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (run_uuid TEXT)")
    engine.dispose()
    with pytest.raises(SqlSchemaError, match="did not create"):
        SqlStore(f"sqlite:///{other}").check()


# -- URLs, options, SQLite settings --------------------------------------------------------------
def test_urls_pick_the_default_drivers(tmp_path, monkeypatch):
    assert engine_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    assert engine_url("mysql://root@h/db").drivername == "mysql+pymysql"
    assert engine_url("mariadb://root@h/db").drivername == "mariadb+pymysql"
    monkeypatch.chdir(tmp_path)
    assert engine_url("sqlite:///rel.db").database == str(tmp_path / "rel.db")
    store = open_store("sqlite:///sub/dir/rel.db")  # nothing is created before first use
    assert isinstance(store, SqlStore) and not (tmp_path / "sub").exists()
    assert store.find() == [] and (tmp_path / "sub" / "dir" / "rel.db").exists()
    assert "secret" not in repr(SqlStore("postgresql://u:secret@h/db"))


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'w.db'}")
    store.check()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    store.close()


def test_observer_constructors_and_options(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    observer = SqlObserver(url)
    assert observer.priority == 40 and observer.url == url
    assert SqlObserver.create(url, priority=5).priority == 5
    assert isinstance(observer.engine, sa.engine.Engine)
    made = observers_from_options({"sql": url})
    assert len(made) == 1 and isinstance(made[0], SqlObserver)
    assert observers_from_options({}) == []


def test_text_and_json_keep_unicode_and_control_characters(sql_store, sql_backend):
    run_id = sql_store.create_run({"status": "RUNNING", "experiment": {"name": "ünï 🧪"},
                                   "config": {"emoji": "🧪", "nul": "a\x00b", "big": 2**70,
                                              "ctl": "\x1b[31mred\r\n"}})
    sql_store.update_run(run_id, {"captured_out": "naïve 🧪\r\nline\x00end"})
    doc = sql_store.get(run_id)
    assert doc["config"] == {"emoji": "🧪", "nul": "a\x00b", "big": 2**70,
                             "ctl": "\x1b[31mred\r\n"}
    assert doc["experiment"]["name"] == "ünï 🧪"
    assert [r["_id"] for r in sql_store.find({"experiment.name": "ünï 🧪"})] == [run_id]
    # PostgreSQL text cannot hold NUL: it becomes U+FFFD there, and only there
    nul = "\ufffd" if sql_backend == "postgresql" else "\x00"
    assert doc["captured_out"] == f"naïve 🧪\r\nline{nul}end"


def test_delete_run_removes_its_rows_and_unshared_blobs(sql_store, tmp_path):
    shared, own = tmp_path / "shared.bin", tmp_path / "own.bin"
    shared.write_bytes(b"shared by two runs")
    own.write_bytes(b"only the first run has this")
    first = sql_store.create_run({"status": "COMPLETED", "config": {"a": 1}})
    second = sql_store.create_run({"status": "COMPLETED", "config": {"a": 2}})
    for run_id in (first, second):
        sql_store.put_artifact(run_id, "shared.bin", str(shared))
        sql_store.append_metrics(run_id, {"loss": {"steps": [0, 1], "values": [1.0, 0.5],
                                                   "timestamps": [None, None]}})
    sql_store.put_artifact(first, "own.bin", str(own))

    sql_store.delete_run(first)

    assert sql_store.get(first) is None
    assert [d["_id"] for d in sql_store.find()] == [second]
    assert sql_store.history(first) == {}
    assert sql_store.open_artifact(second, "shared.bin").read() == b"shared by two runs"
    with sql_store.engine.connect() as conn:
        md5s = set(conn.execute(sa.text("SELECT md5 FROM blobs")).scalars())
        points = conn.execute(sa.text("SELECT COUNT(*) FROM metrics")).scalar()
    assert md5s == {md5_of(shared)} and points == 2
    with pytest.raises(KeyError, match="No run with id"):
        sql_store.delete_run(first)
    with pytest.raises(KeyError):
        sql_store.delete_run("not-an-id")


# -- files of any size ---------------------------------------------------------------------------
def test_a_50_mb_artifact_round_trips_in_chunks(sql_store, sql_backend, tmp_path):
    """Larger than MariaDB's max_allowed_packet: stored as chunks, read back as a stream."""
    big = tmp_path / "big.bin"
    digest = hashlib.md5()
    with open(big, "wb") as fh:
        for _ in range(50):
            piece = os.urandom(1024 * 1024)
            digest.update(piece)
            fh.write(piece)
        fh.write(b"tail")
        digest.update(b"tail")
    size = 50 * 1024 * 1024 + 4
    first = sql_store.create_run({"status": "RUNNING"})
    second = sql_store.create_run({"status": "RUNNING"})
    sql_store.put_artifact(first, "big.bin", str(big))
    sql_store.put_artifact(second, "same.bin", str(big))  # the same bytes are stored once

    with sql_store.open_artifact(first, "big.bin") as fh:
        streamed = hashlib.md5()
        for piece in iter(lambda: fh.read(3 * 1024 * 1024 + 7), b""):
            streamed.update(piece)
        assert fh.tell() == size
        fh.seek(size - 10)
        assert fh.read() == big.read_bytes()[-10:]
        fh.seek(1024 * 1024 - 2)
        assert fh.read(4) == big.read_bytes()[1024 * 1024 - 2:1024 * 1024 + 2]
    assert streamed.hexdigest() == digest.hexdigest()
    assert hashlib.md5(sql_store.open_artifact(second, "same.bin").read()).hexdigest() == \
        digest.hexdigest()
    with sql_store.engine.connect() as conn:
        chunks = conn.execute(sa.select(blob_chunks.c.seq, sa.func.length(blob_chunks.c.data))
                              .order_by(blob_chunks.c.seq)).all()
        assert conn.execute(sa.select(blobs.c.size)).scalars().all() == [size]
    assert [seq for seq, _ in chunks] == list(range(len(chunks))) and len(chunks) >= 51
    assert sum(length for _, length in chunks) == size
    assert max(length for _, length in chunks) <= 1024 * 1024

    sql_store.delete_run(first)  # still used by the second run
    assert sql_store.open_artifact(second, "same.bin").read(4) == big.read_bytes()[:4]
    sql_store.delete_run(second)
    with sql_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(blob_chunks)).scalar() == 0


def test_an_empty_artifact_and_a_missing_one(sql_store, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    run_id = sql_store.create_run({"status": "RUNNING"})
    sql_store.put_artifact(run_id, "empty.bin", str(empty))
    assert sql_store.open_artifact(run_id, "empty.bin").read() == b""
    with pytest.raises(FileNotFoundError, match="no artifact"):
        sql_store.open_artifact(run_id, "missing.bin")
    with pytest.raises(FileNotFoundError, match="No file with md5"):
        sql_store.open_blob("0" * 32)


def test_a_file_changed_while_being_stored_is_not_stored(sql_store, tmp_path, monkeypatch):
    changing = tmp_path / "changing.bin"
    changing.write_bytes(b"the bytes at the time the md5 was taken")
    run_id = sql_store.create_run({"status": "RUNNING", "artifacts": []})
    # the md5 names other bytes than those read afterwards, as when a file is rewritten
    monkeypatch.setattr("labbook.stores.sql.files.file_md5", lambda path: "0" * 32)
    with pytest.raises(SqlStoreError, match="changed while it was being stored"):
        sql_store.put_artifact(run_id, "changing.bin", str(changing))
    with sql_store.engine.connect() as conn:
        for table in (blobs, blob_chunks, artifacts):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    assert sql_store.get(run_id)["artifacts"] == []


# -- the fast read paths equal the generic ones --------------------------------------------------
def _fill_runs(store) -> list:
    """Runs with interleaved names, NaN/inf, duplicate and non-monotonic steps, no times."""
    ids = [store.create_run({"status": "RUNNING"}) for _ in range(4)]
    specials = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
    for batch in range(3):
        for k, run_id in enumerate(ids[:3]):
            n = 40 * (k + 1)
            steps = list(range(batch * n, (batch + 1) * n))
            steps[3] = steps[2]  # a duplicate step
            values = [((i * 7919) % 101) / 7 for i in range(n)]
            values[batch] = specials[(batch + k) % len(specials)]
            values[-1] = specials[(batch + k + 3) % len(specials)]
            stamps = [T0 + dt.timedelta(seconds=batch, microseconds=i) for i in range(n)]
            store.append_metrics(run_id, {
                "loss": {"steps": steps, "values": values, "timestamps": stamps},
                f"m{k}": {"steps": steps[: 5 + batch], "values": values[: 5 + batch],
                          "timestamps": [None] * (5 + batch)},
                "back": {"steps": [100 - batch, 50 - batch], "values": [batch, -batch],
                         "timestamps": stamps[:2]}})
    return ids


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN and -0.0 told apart from 0.0 (repr of floats)."""
    return repr(a) == repr(b)


def test_history_sampled_equals_the_generic_version(sql_store):
    ids = _fill_runs(sql_store)
    for run_id in ids + [999, "x"]:
        for names in (None, ["loss"], ["m1", "back", "nothing"], []):
            for samples in (None, 2, 3, 7, 40, 119, 120, 121, 500):
                want = Store.history_sampled(sql_store, run_id, names, samples)
                got = sql_store.history_sampled(run_id, names, samples)
                assert _same(got, want), (run_id, names, samples)
                assert list(got) == list(want)
    long = sql_store.history_sampled(ids[2], ["loss"], samples=9)["loss"]
    full = sql_store.history(ids[2], ["loss"])["loss"]
    picks = sample_positions(len(full["steps"]), 9)
    assert long["steps"] == [full["steps"][i] for i in picks] and len(long["steps"]) == 9
    assert long["timestamps"] == [full["timestamps"][i] for i in picks]
    with pytest.raises(ValueError, match="at least 2"):
        sql_store.history_sampled(ids[0], samples=1)


def test_history_sampled_of_a_metric_logged_alone_reads_no_ids(sql_store, monkeypatch):
    """A metric whose rows hold every id from its first to its last (logged alone) is sampled
    by arithmetic on its ids; the points are those of the generic version (steps repeated and
    out of order included), and a metric interleaved with another still numbers its ids."""
    alone = sql_store.create_run({"status": "RUNNING"})
    for batch in range(3):
        steps = list(range(batch * 50, (batch + 1) * 50))
        steps[7], steps[20] = steps[6], 3  # a repeated step, a step back
        sql_store.append_metrics(alone, {"loss": {
            "steps": steps, "values": [s / 3 for s in steps],
            "timestamps": [T0 + dt.timedelta(seconds=s) for s in steps]}})
    mixed = sql_store.create_run({"status": "RUNNING"})
    for batch in range(3):
        sql_store.append_metrics(mixed, {name: {
            "steps": list(range(batch * 30, (batch + 1) * 30)), "values": [float(k)] * 30,
            "timestamps": [None] * 30} for k, name in enumerate(("a", "b"))})
    numbered = []
    real = type(sql_store)._sampled_rows
    monkeypatch.setattr(type(sql_store), "_sampled_rows",
                        lambda self, conn, rid, name, positions:
                        numbered.append(name) or real(self, conn, rid, name, positions))
    for samples in (2, 9, 149, 150, 151):
        want = Store.history_sampled(sql_store, alone, None, samples)
        assert _same(sql_store.history_sampled(alone, None, samples), want), samples
    assert numbered == []
    for samples in (2, 9, 89):
        want = Store.history_sampled(sql_store, mixed, None, samples)
        assert _same(sql_store.history_sampled(mixed, None, samples), want), samples
    assert set(numbered) == {"a", "b"}


def test_history_many_and_last_values_equal_the_generic_versions(sql_store, monkeypatch):
    ids = _fill_runs(sql_store)
    asked = ids + [999, "x", str(ids[0]), ids[0]]
    for names in (None, ["loss", "back"], ["nothing"], []):
        want = Store.history_many(sql_store, asked, names)
        got = sql_store.history_many(asked, names)
        assert _same(got, want) and list(got) == list(want)
    want = Store.last_values(sql_store, asked)
    got = sql_store.last_values(asked)
    assert _same(got, want) and list(got) == list(want)
    assert got[ids[0]]["back"] == -2  # the last point written, not the one at the top step
    assert sql_store.history_many([]) == {} and sql_store.last_values([]) == {}

    # very many ids: the IN list is cut into pieces
    monkeypatch.setattr("labbook.stores.sql.values._IN_CHUNK", 2)
    assert _same(sql_store.history_many(asked), Store.history_many(sql_store, asked))
    assert _same(sql_store.last_values(asked), Store.last_values(sql_store, asked))
    monkeypatch.setattr("labbook.stores.sql.values._IN_CHUNK", 3)
    assert _same(sql_store.history_sampled(ids[2], samples=17),
                 Store.history_sampled(sql_store, ids[2], None, 17))


def test_metric_times_of_every_kind(sql_store):
    run_id = sql_store.create_run({"status": "RUNNING"})
    aware = dt.datetime(2024, 5, 1, 14, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    sql_store.append_metrics(run_id, {"t": {
        "steps": [0, 1, 2, 3, 4],
        "values": [1, 2, 3, 4, 5],
        "timestamps": [T0, None, aware, "2024-05-01T12:00:00.000002", 1714564800.5]}})
    sql_store.append_metrics(run_id, {"t": {"steps": [5], "values": [6]}})
    stamps = sql_store.history(run_id)["t"]["timestamps"]
    assert stamps == [T0, None, dt.datetime(2024, 5, 1, 12, 0, 0, 1),
                      dt.datetime(2024, 5, 1, 12, 0, 0, 2),
                      dt.datetime(2024, 5, 1, 12, 0, 0, 500000), None]
    assert sql_store.history(run_id)["t"]["values"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    sql_store.append_metrics(run_id, {"a": {"steps": [0], "values": [1.0]},
                                      "b": {"steps": [0, 1], "values": [2.0, math.nan]},
                                      "c": {"steps": [0], "values": [3.0]}})
    assert list(sql_store.history(run_id)) == ["t", "a", "b", "c"]  # in the order written
    assert _same(sql_store.history(run_id, ["b"])["b"]["values"], [2.0, math.nan])
    with pytest.raises(SqlStoreError, match="2 steps but 1 values"):
        sql_store.append_metrics(run_id, {"t": {"steps": [0, 1], "values": [1]}})


@pytest.mark.parametrize("backend", ["mysql", "postgresql"])
def test_a_write_chosen_as_a_deadlock_victim_is_made_again(request, backend, tmp_path, caplog):
    # Another connection holds a shared lock on the run's row while the store adds a point
    # (its foreign-key check shares that row, then it updates the row's summary), and then
    # asks for the row itself: a lock cycle, which the server breaks by rolling one back.
    # The store's transaction is made the victim (MariaDB: the lighter one; PostgreSQL: the
    # one waiting longest), so the write must be made again, not lost or raised.
    import threading

    from tests.stores.conftest import backend_url

    store = SqlStore(backend_url(request, backend, tmp_path))
    other_run = store.create_run({"status": "RUNNING", "start_time": T0})
    run_id = store.create_run({"status": "RUNNING", "start_time": T0})
    holder = sa.create_engine(engine_url(store.url))
    caplog.set_level(logging.DEBUG, logger="labbook.stores.sql.engine")
    errors: list = []

    def add_point():
        try:
            store.append_metrics(run_id, {"loss": {"steps": [0], "values": [0.5],
                                                   "timestamps": [T0]}})
        except Exception as exc:  # the test's assertion reports it
            errors.append(exc)

    try:
        with holder.connect() as conn:
            tx = conn.begin()
            if backend == "mysql":  # heavier than the store's transaction: 200 rows written
                conn.execute(metrics.insert(), [{"run_id": other_run, "name": "w", "step": i,
                                                 "value": 1.0} for i in range(200)])
                conn.exec_driver_sql(f"SELECT id FROM runs WHERE id = {run_id} "
                                     "LOCK IN SHARE MODE").all()
            else:
                conn.exec_driver_sql(f"SELECT id FROM runs WHERE id = {run_id} FOR SHARE").all()
            writer = threading.Thread(target=add_point)
            writer.start()
            time.sleep(1.0)  # the store now waits for the shared lock
            assert writer.is_alive()
            lock = ("UPDATE runs SET status = 'RUNNING' WHERE id = {}" if backend == "mysql"
                    else "SELECT id FROM runs WHERE id = {} FOR UPDATE")
            conn.exec_driver_sql(lock.format(run_id)).close()  # the cycle
            tx.commit()
            writer.join(60)
    finally:
        holder.dispose()
    try:
        assert not writer.is_alive() and errors == []
        assert any("deadlock in append_metrics" in r.getMessage() for r in caplog.records)
        assert store.history(run_id)["loss"]["values"] == [0.5]
        assert store.last_values([run_id])[run_id] == {"loss": 0.5}
    finally:
        store.close()


def test_a_failed_transaction_leaves_no_tags_believed_written(sql_store, monkeypatch):
    # the store remembers which info tags it wrote, to skip them at the next heartbeat; a
    # transaction that fails after writing them must not leave that memory behind
    run_id = sql_store.create_run({"status": "RUNNING", "start_time": T0})
    import labbook.stores.sql.runs as sql_runs

    real = sql_runs.file_rows

    def broken(*args):
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection lost"))

    monkeypatch.setattr(sql_runs, "file_rows", broken)
    info = {"tags": {"best": 1}}
    with pytest.raises(SqlStoreError):
        sql_store.update_run(run_id, {"info": info, "resources": [["data.csv", "abc"]]})
    monkeypatch.setattr(sql_runs, "file_rows", real)
    sql_store.update_run(run_id, {"info": info})
    assert sql_store.find({"tags": "best"})[0]["_id"] == run_id


def test_a_deadlock_that_keeps_coming_reaches_the_caller_and_other_errors_at_once(monkeypatch):
    from labbook.stores.sql import engine

    waits: list = []
    monkeypatch.setattr(engine.time, "sleep", waits.append)
    calls: list = []

    def failing(code):
        @engine.retry_deadlocks
        def write(store):
            calls.append(code)
            cause = sa.exc.OperationalError("UPDATE runs", {}, Exception(code, "from the server"))
            raise SqlStoreError("The SQL database refused an operation") from cause
        return write

    with pytest.raises(SqlStoreError):
        failing(1213)(None)
    assert len(calls) == engine.DEADLOCK_RETRIES + 1 and len(waits) == engine.DEADLOCK_RETRIES
    # each wait at random within a window that doubles with each try
    assert all(0.005 * 2 ** k <= w <= 0.02 * 2 ** k for k, w in enumerate(waits))
    calls.clear()
    with pytest.raises(SqlStoreError):
        failing(1062)(None)  # a duplicate key is no deadlock: not made again
    assert calls == [1062]
