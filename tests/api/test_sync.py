"""``labbook sync SRC DST``: store-to-store copies, incremental and idempotent."""
import datetime as dt

import pytest

from labbook import Api, clock
from labbook.cli.main import main
from labbook.stores import open_store
from labbook.sync import SYNC_KEY, SyncError, sync


@pytest.fixture
def standard_src(tmp_path, make_png):
    """A file store with the standard runs (sources, resources, artifacts, failures)."""
    from tests.api.conftest import record_standard_runs

    url = f"file://{tmp_path / 'src'}"
    files = tmp_path / "files"
    files.mkdir()
    record_standard_runs(url, files)
    store = open_store(url)
    resource = files / "data.csv"
    resource.write_text("a,b\n1,2\n")
    store.put_resource(4, str(resource))
    return url


def _url(kind, request, tmp_path, name="dst"):
    if kind == "file":
        return f"file://{tmp_path / name}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.db')}"
    return request.getfixturevalue("server_databases").new(kind, request)


def _by_origin(url):
    """{source id: RunView} of a destination."""
    return {r.meta[SYNC_KEY]["id"]: r for r in Api(url).runs(order="_id")}


def _ms(t):
    """MongoDB keeps milliseconds."""
    return None if t is None else t.replace(microsecond=t.microsecond // 1000 * 1000)


def assert_same_runs(src_url, dst_url):
    src = {r.id: r for r in Api(src_url).runs(order="_id")}
    dst = _by_origin(dst_url)
    assert sorted(dst) == sorted(src)
    for run_id, a in src.items():
        b = dst[run_id]
        assert dict(b.config) == dict(a.config)
        assert (b.stored_status, b.result, b.captured_out, b.fail_trace) == \
            (a.stored_status, a.result, a.captured_out, a.fail_trace)
        assert (b.name, b.tags, b.notes, _ms(b.start_time), _ms(b.stop_time)) == \
            (a.name, a.tags, a.notes, _ms(a.start_time), _ms(a.stop_time))
        assert b.info == a.info
        assert b.history(samples=None, pandas=False) == a.history(samples=None, pandas=False)
        assert b.artifacts == a.artifacts
        for name in a.artifacts:
            assert b.file(name).read_bytes() == a.file(name).read_bytes()
        assert [(s.name, s.read_bytes()) for s in b.sources] == \
            [(s.name, s.read_bytes()) for s in a.sources]
        assert [(s.name, s.read_bytes()) for s in b.resources] == \
            [(s.name, s.read_bytes()) for s in a.resources]
        assert {k: v for k, v in b.meta.items() if k != SYNC_KEY} == \
            {k: v for k, v in a.meta.items() if k != SYNC_KEY}


@pytest.mark.parametrize("kind", ["sqlite", "mongo", "file"])
def test_file_store_copied_whole_and_idempotently(standard_src, kind, request, tmp_path):
    dst = _url(kind, request, tmp_path)
    first = sync(standard_src, dst)
    assert len(first.created) == 5 and first.points > 0 and first.files >= 3
    assert_same_runs(standard_src, dst)
    again = sync(standard_src, dst)
    assert (again.created, again.updated, again.points, again.files) == ([], [], 0, 0)
    assert len(again.unchanged) == 5
    assert len(Api(dst).runs()) == 5


def test_sqlite_to_postgresql(standard_src, request, tmp_path):
    sqlite = _url("sqlite", request, tmp_path, "laptop")
    sync(standard_src, sqlite)
    team = _url("postgresql", request, tmp_path)
    result = sync(sqlite, team)
    assert len(result.created) == 5
    assert_same_runs(sqlite, team)
    assert sync(sqlite, team).created == []
    # the mapping names the source (absolute, no password) and its ids
    origin = Api(team).runs(order="_id")[0].meta[SYNC_KEY]
    assert origin["store"] == sqlite and origin["id"] == 1


def _running_run(url):
    store = open_store(url)
    t0 = dt.datetime(2026, 3, 1)
    run_id = store.create_run({"experiment": {"name": "live"}, "command": "main", "host": {},
                               "start_time": t0, "heartbeat": t0, "config": {"lr": 1},
                               "meta": {}, "status": "RUNNING", "resources": [],
                               "artifacts": [], "captured_out": "", "info": {}})
    store.append_metrics(run_id, {"loss": {"steps": [0, 1], "values": [1.0, 0.5],
                                           "timestamps": [t0, t0]}})
    return store, run_id, t0


@pytest.mark.parametrize("kind", ["sqlite", "mongo", "file"])
def test_changed_run_is_brought_up_to_date(tmp_path, request, kind):
    src_url = f"file://{tmp_path / 'src'}"
    store, run_id, t0 = _running_run(src_url)
    dst = _url(kind, request, tmp_path)
    assert len(sync(src_url, dst).created) == 1
    # the run goes on: more points, a heartbeat, an artifact, then it completes
    store.append_metrics(run_id, {"loss": {"steps": [2, 3], "values": [0.25, 0.125],
                                           "timestamps": [t0, t0]},
                                  "acc": {"steps": [3], "values": [0.9], "timestamps": [t0]}})
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"\x00\x01" * 50)
    store.put_artifact(run_id, "model.bin", str(artifact))
    store.update_run(run_id, {"status": "COMPLETED", "result": 0.9,
                              "stop_time": t0 + dt.timedelta(minutes=5)})
    result = sync(src_url, dst)
    assert result.created == [] and len(result.updated) == 1 and result.points == 3
    assert_same_runs(src_url, dst)
    copy = _by_origin(dst)[run_id]
    assert copy.stored_status == "COMPLETED" and copy.summary == {"loss": 0.125, "acc": 0.9}
    assert len(copy.history("loss", pandas=False)) == 4  # nothing appended twice
    assert sync(src_url, dst).updated == []


def test_filter_and_dry_run(standard_src, tmp_path):
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    planned = sync(standard_src, dst, "experiment.name = 'train'", dry_run=True)
    assert [s for s, _ in planned.created] == [1, 2, 3, 4] and planned.dry_run
    assert len(Api(dst).runs()) == 0
    done = sync(standard_src, dst, {"experiment.name": "train"})
    assert [s for s, _ in done.created] == [1, 2, 3, 4]
    rest = sync(standard_src, dst)
    assert [s for s, _ in rest.created] == [5] and len(rest.unchanged) == 4
    # the whole filter language: tags and summaries too
    other = f"sqlite:///{tmp_path / 'other.db'}"
    picked = sync(standard_src, other, "tags = 'tuned' and summary.acc > 0.85")
    assert [s for s, _ in picked.created] == [2]


def test_unreachable_destination_loses_nothing(standard_src, tmp_path):
    before = [(r.id, r.stored_status) for r in Api(standard_src).runs()]
    with pytest.raises(SyncError, match="Cannot reach the destination postgresql://.*127.0.0.1"):
        sync(standard_src, "postgresql://nobody:secret@127.0.0.1:9/nowhere")
    assert [(r.id, r.stored_status) for r in Api(standard_src).runs()] == before
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    assert len(sync(standard_src, dst).created) == 5


def test_interrupted_copy_is_finished_next_time(standard_src, tmp_path, monkeypatch):
    from labbook.stores.sql import SqlStore

    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    real = SqlStore.put_artifact
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise ConnectionError("network down")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqlStore, "put_artifact", flaky)
    with pytest.raises(SyncError, match="Run 1 could not be copied.*network down"):
        sync(standard_src, dst)
    monkeypatch.setattr(SqlStore, "put_artifact", real)
    result = sync(standard_src, dst)
    assert [s for s, _ in result.updated] == [1] and len(result.created) == 4
    assert_same_runs(standard_src, dst)


def test_cli_sync_stores_and_journals(standard_src, tmp_path, capsys):
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    assert main(["sync", standard_src, dst, "--dry-run"]) == 0
    assert "would copy 5 new run(s)" in capsys.readouterr().out
    assert main(["sync", standard_src, dst, "--filter", "config.lr < 0.02"]) == 0
    out = capsys.readouterr().out
    assert "copied 2 new run(s)" in out and "new: run 1 -> 1" in out
    assert main(["sync", standard_src, dst]) == 0
    assert "copied 3 new run(s), updated 0, 2 unchanged" in capsys.readouterr().out
    assert main(["sync", standard_src, "postgresql://u:pw@127.0.0.1:9/x"]) == 1
    err = capsys.readouterr().err
    assert "Cannot reach the destination" in err and "pw" not in err
    assert main(["sync", str(tmp_path / "nowhere"), dst]) == 2
    assert main(["sync", f"sqlite:///{tmp_path / 'nowhere.db'}", dst]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()


def test_round_trip_and_same_store(standard_src, tmp_path):
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    sync(standard_src, dst)
    # back the other way: the copies came from there, nothing is duplicated
    back = sync(dst, standard_src)
    assert back.created == [] and len(Api(standard_src).runs()) == 5
    with pytest.raises(SyncError, match="the same store"):
        sync(standard_src, standard_src)


def test_mongo_back_into_a_directory(standard_src, request, tmp_path):
    mongo = _url("mongo", request, tmp_path)
    sync(standard_src, mongo)
    back = f"file://{tmp_path / 'from_mongo'}"
    assert len(sync(mongo, back).created) == 5
    assert_same_runs(mongo, back)
    assert sync(mongo, back).created == []


def test_cli_sync_replays_a_failure_directory_given_as_src(tmp_path, capsys):
    from labbook import Experiment
    from labbook.observers import QueuedObserver, RunObserver

    class Down(RunObserver):
        def started_event(self, *args, **kwargs):
            raise ConnectionError("store is down")

    ex = Experiment("offline")
    ex.observers.append(QueuedObserver(Down(), failure_dir=tmp_path / "failed", max_wait=0.2,
                                       backoff=0.01))

    @ex.main
    def train(_run):
        _run.log_scalar("loss", 0.5)
        return 3

    ex.run(options={"--no-system-metrics": True})
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    assert main(["sync", str(tmp_path / "failed"), dst]) == 0
    assert "delivered to run 1" in capsys.readouterr().out
    run = Api(dst).run(1)
    assert run.result == 3 and run.summary == {"loss": 0.5}
    assert main(["sync", str(tmp_path / "failed"), dst, "--dry-run"]) == 2


def _points(history):
    """A history comparable across stores: each point as (step, repr of the float value,
    time); SQL keeps values as floats, so 7 and 7.0 are the same point here."""
    return {name: [(step, repr(float(value)), stamp) for step, value, stamp in
                   zip(s["steps"], s["values"], s["timestamps"])]
            for name, s in history.items()}


@pytest.mark.parametrize("kind", ["sqlite", "file", "mongo"])
def test_a_run_with_a_binary_series_copy_is_synced_point_for_point(tmp_path, request,
                                                                   monkeypatch, kind):
    # the source's ended run has a binary copy of its series (file_series): the sync reads
    # that, with the times as microseconds, and gives SQL and file stores them as they are
    from labbook.stores import file_series

    monkeypatch.setattr(file_series, "WRITER_MIN_POINTS", 50)
    src_url = f"file://{tmp_path / 'src'}"
    store = open_store(src_url)
    t0 = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000)  # whole milliseconds: Mongo keeps those
    run_id = store.create_run({"experiment": {"name": "long"}, "command": "main", "host": {},
                               "start_time": t0, "heartbeat": t0, "config": {}, "meta": {},
                               "status": "RUNNING", "resources": [], "artifacts": [],
                               "captured_out": "", "info": {}})
    for beat in range(3):
        steps = list(range(beat * 40, beat * 40 + 40))
        store.append_metrics(run_id, {
            "loss": {"steps": steps, "values": [1.0 / (s + 1) for s in steps],
                     "timestamps": [t0 + dt.timedelta(milliseconds=3 * s) for s in steps]},
            "count": {"steps": steps, "values": steps,
                      "timestamps": [t0 + dt.timedelta(seconds=s) for s in steps]},
            "rare": {"steps": [beat], "values": [-0.0 if beat else 2.5],
                     "timestamps": [None if beat == 1 else t0]}})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": t0})
    assert (tmp_path / "src" / str(run_id) / file_series.NAME).exists()
    assert isinstance(store.history_for_copy(run_id)["loss"]["timestamps"], clock.Micros)
    dst = _url(kind, request, tmp_path)
    result = sync(src_url, dst)
    assert len(result.created) == 1 and result.points == 3 * 40 * 2 + 3
    want = _points(store.history(run_id))
    copy = _by_origin(dst)[run_id]
    assert _points(open_store(dst).history(copy.id)) == want
    if kind == "sqlite":  # and back out of SQL (microseconds again) into a directory
        again = f"file://{tmp_path / 'back'}"
        sync(dst, again)
        back = _by_origin(again)[copy.id]
        assert _points(open_store(again).history(back.id)) == want
