"""Sacred's observer constructors and methods: ``create_from``, ``save_file``, the queue
observers. Each records a real run, read back through labbook's read API."""
import os

import pytest

import labbook
from labbook.errors import ArgumentError, ArtifactNameError, ObserverError
from tests.stores.mongo_server import mongo_db, mongo_server  # noqa: F401 (fixtures)


def _experiment(observer, main=None):
    ex = labbook.Experiment("observed", interactive=True)

    @ex.config
    def cfg():
        lr = 0.5  # noqa: F841

    ex.main(main or (lambda lr: lr * 2))
    ex.observers.append(observer)
    return ex


def _run(ex):
    return ex.run(options={"--no_system_metrics": True})


# --- FileStorageObserver.save_file ---------------------------------------------------------

def test_save_file_puts_the_file_into_the_runs_directory(tmp_path):
    from labbook.observers import FileStorageObserver

    data = tmp_path / "weights.bin"
    data.write_bytes(b"\x00\x01weights")
    observer = FileStorageObserver(tmp_path / "runs")

    def main():
        observer.save_file(str(data))
        observer.save_file(str(data), target_name="copies/w.bin")
        return observer.dir

    run = _run(_experiment(observer, main))
    run_dir = run.result
    assert run_dir == os.path.join(observer.basedir, str(run._id))
    assert (tmp_path / "runs" / str(run._id) / "weights.bin").read_bytes() == b"\x00\x01weights"
    assert (tmp_path / "runs" / str(run._id) / "copies" / "w.bin").is_file()
    stored = labbook.Api(str(tmp_path / "runs")).run(run._id)
    assert sorted(f.name for f in stored.files()) == ["copies/w.bin", "weights.bin"]
    assert stored.config["lr"] == 0.5 and stored.status == "COMPLETED"


def test_save_file_refuses_the_stores_own_files_and_keeps_them(tmp_path):
    from labbook.observers import FileStorageObserver

    fake = tmp_path / "run.json"
    fake.write_text("{}")
    observer = FileStorageObserver(tmp_path / "runs")
    seen = {}

    def main():
        for target in ("run.json", "../x", "/abs"):
            with pytest.raises(ArtifactNameError) as info:
                observer.save_file(str(fake), target_name=target)
            seen[target] = str(info.value)

    run = _run(_experiment(observer, main))
    assert seen["run.json"].startswith("FileStorageObserver.save_file: 'run.json' is a file "
                                       "the store keeps for the run itself")
    assert "must be a relative path" in seen["../x"] and "must be a relative path" in seen["/abs"]
    stored = labbook.Api(str(tmp_path / "runs")).run(run._id)
    assert stored.status == "COMPLETED" and list(stored.files()) == []


def test_save_file_outside_a_run_says_so(tmp_path):
    from labbook.observers import FileStorageObserver

    observer = FileStorageObserver(tmp_path / "runs")
    with pytest.raises(ObserverError, match="save_file needs a started run"):
        observer.save_file(__file__)


def test_file_store_files_are_the_names_artifacts_may_not_take():
    from labbook.run import RESERVED_NAMES
    from labbook.stores import store_class

    assert store_class("file").RUN_FILES == RESERVED_NAMES


# --- SqlObserver.create_from -----------------------------------------------------------------

def test_sql_create_from_records_into_the_engines_database(tmp_path):
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    from labbook.observers import SqlObserver

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    engine = sa.create_engine(url)
    observer = SqlObserver.create_from(engine, Session(bind=engine))
    run = _run(_experiment(observer))
    stored = labbook.Api(url).run(run._id)
    assert (stored.status, stored.result, stored.config["lr"]) == ("COMPLETED", 1.0, 0.5)
    engine.dispose()


def test_sql_create_from_refuses_what_cannot_apply(tmp_path):
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    from labbook.observers import SqlObserver

    with pytest.raises(ObserverError, match="cannot record into an in-memory SQLite engine"):
        SqlObserver.create_from(sa.create_engine("sqlite://"))
    one = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    other = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with pytest.raises(ObserverError, match="the session is bound to another database"):
        SqlObserver.create_from(one, Session(bind=other))
    with pytest.raises(ObserverError, match="needs an SQLAlchemy Engine, got str"):
        SqlObserver.create_from("sqlite:///x.db")
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


# --- queue observers ---------------------------------------------------------------------------

def test_queue_observer_wraps_an_observer(tmp_path):
    from labbook.observers import FileStorageObserver, QueuedObserver, QueueObserver

    inner = FileStorageObserver(tmp_path / "runs")
    observer = QueueObserver(inner, interval=1.0, retry_interval=2.0)
    assert isinstance(observer, QueuedObserver) and observer.covered_observer is inner
    assert observer.max_backoff == 2.0
    run = _run(_experiment(observer))
    stored = labbook.Api(str(tmp_path / "runs")).run(run._id)
    assert (stored.status, stored.result) == ("COMPLETED", 1.0)


def test_queue_observer_refuses_a_bad_interval(tmp_path):
    from labbook.observers import FileStorageObserver, QueueObserver

    with pytest.raises(ArgumentError, match="retry_interval must be a positive number"):
        QueueObserver(FileStorageObserver(tmp_path / "runs"), retry_interval=0)


# --- MongoDB -------------------------------------------------------------------------------------

def test_mongo_create_from_and_queued_mongo_observer(mongo_server, mongo_db):  # noqa: F811
    import gridfs

    from labbook.observers import MongoObserver, QueuedMongoObserver

    client = mongo_server.client()
    try:
        database = client[mongo_db]
        observer = MongoObserver.create_from(database["runs"], gridfs.GridFS(database))
        first = _run(_experiment(observer))
        with pytest.raises(ObserverError, match="the runs collection is named 'experiments'"):
            MongoObserver.create_from(database["experiments"])
        with pytest.raises(ObserverError, match=r"the metrics collection must be \S+\.metrics"):
            MongoObserver.create_from(database["runs"], metrics_collection=database["m"])
        queued = QueuedMongoObserver(url=mongo_server.url(mongo_db), retry_interval=1.0)
        second = _run(_experiment(queued))
        # Sacred's older spelling
        old_style = QueuedMongoObserver.create(url=mongo_server.url(mongo_db))
        assert isinstance(old_style, QueuedMongoObserver)
        third = _run(_experiment(old_style))
        api = labbook.Api(mongo_server.url(mongo_db))
        assert sorted((r.id, r.status, r.result) for r in api.runs()) == [
            (first._id, "COMPLETED", 1.0), (second._id, "COMPLETED", 1.0),
            (third._id, "COMPLETED", 1.0)]
    finally:
        client.close()
