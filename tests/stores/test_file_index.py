"""The file store's index (DIR/.labbook/index.jsonl) answers like a store without one."""
import datetime as dt
import json
import multiprocessing
import os
import shutil

import pytest


from labbook import Api, clock
from labbook.stores import file_index, file_series
from labbook.stores.file import FileStore

T0 = dt.datetime(2026, 1, 1)


@pytest.fixture(autouse=True)
def index_on(monkeypatch):
    monkeypatch.delenv("LABBOOK_FILE_INDEX", raising=False)  # the default: on


def write_run(store, i, status="COMPLETED", points=3, run_id=None):
    doc = {"experiment": {"name": "idx", "sources": []}, "command": "main", "host": {},
           "start_time": T0 + dt.timedelta(seconds=i), "heartbeat": T0,
           "config": {"lr": i / 10, "name": f"r{i}", "nested": {"depth": i % 3}},
           "meta": {"tags": ["even"] if i % 2 == 0 else []}, "status": "RUNNING",
           "resources": [], "artifacts": [], "captured_out": f"out {i}\n", "info": {}}
    run_id = store.create_run(doc, run_id)
    if points:
        steps = list(range(points))
        store.append_metrics(run_id, {"loss": {"steps": steps,
                                               "values": [i + 1.0 / (s + 1) for s in steps],
                                               "timestamps": [T0] * points}})
    if status != "RUNNING":
        store.update_run(run_id, {"status": status, "stop_time": T0 + dt.timedelta(hours=1)})
    return run_id


QUERIES = [
    (None, None, None),
    ({"config.lr": {"$gt": 0.25}}, "-start_time", None),
    ({"config.nested.depth": 1}, "config.lr", 2),
    ({"status": "RUNNING"}, None, None),
    ({"meta.tags": "even"}, "-_id", 3),
    ({"captured_out": {"$regex": "out 1"}}, None, None),
]


def same_answers(base):
    """The indexed store answers every query like a store reading every run."""
    indexed, plain = FileStore(base), FileStore(base, index=False)
    for flt, order, limit in QUERIES:
        assert indexed.find(flt, order, limit) == plain.find(flt, order, limit), (flt, order)
    ids = plain.run_ids()
    assert indexed.last_values(ids) == logged_last_values(plain, ids)
    return indexed


def logged_last_values(store, ids):
    return {i: {n: s["values"][-1] for n, s in store.history(i).items() if s["values"]}
            for i in ids}


def index_lines(base):
    path = base / ".labbook" / "index.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_index_written_by_the_writer_and_used(tmp_path):
    store = FileStore(tmp_path)
    for i in range(6):
        write_run(store, i, status="RUNNING" if i == 5 else "COMPLETED")
    # one line per ended run, written when it ended
    assert len(index_lines(tmp_path)) == 5
    same_answers(tmp_path)
    # the index does not look like a run to the store (or to Sacred: not an integer)
    assert FileStore(tmp_path).run_ids() == [1, 2, 3, 4, 5, 6]


def test_find_returns_copies(tmp_path):
    store = FileStore(tmp_path)
    write_run(store, 1)
    doc = store.find()[0]
    doc["config"]["lr"] = 99
    assert store.find()[0]["config"]["lr"] == 0.1


def test_changes_by_other_processes_are_seen(tmp_path):
    writer = FileStore(tmp_path)
    for i in range(4):
        write_run(writer, i, status="RUNNING")
    reader = same_answers(tmp_path)
    # another writer (another FileStore object: another process for all it knows)
    other = FileStore(tmp_path)
    other.append_metrics(2, {"loss": {"steps": [10], "values": [-5.0], "timestamps": [T0]}})
    other.update_run(2, {"status": "COMPLETED"})
    other.update_run(3, {"config": {"lr": 42}})
    write_run(other, 9)
    assert reader.last_values([2])[2] == {"loss": -5.0}
    assert [r["_id"] for r in reader.find({"config.lr": 42})] == [3]
    same_answers(tmp_path)


def test_external_edits_and_deletes(tmp_path):
    store = FileStore(tmp_path)
    for i in range(5):
        write_run(store, i)
    same_answers(tmp_path)
    # a hand edit, as another tool would make it
    run_json = tmp_path / "2" / "run.json"
    data = json.loads(run_json.read_text())
    data["status"] = "CANCELED"
    run_json.write_text(json.dumps(data))
    st = os.stat(run_json)
    os.utime(run_json, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    shutil.rmtree(tmp_path / "4")
    reader = same_answers(tmp_path)
    assert [r["_id"] for r in reader.find({"status": "CANCELED"})] == [2]
    assert 4 not in [r["_id"] for r in reader.find()]
    FileStore(tmp_path).delete_run(1)
    assert [r["_id"] for r in reader.find()] == [2, 3, 5]


def test_sacred_style_directory_without_index(tmp_path):
    # what Sacred's FileStorageObserver leaves: run.json, config.json, metrics.json, no jsonl
    run = tmp_path / "1"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "status": "COMPLETED", "start_time": "2026-01-01T00:00:00.000001", "command": "main",
        "experiment": {"name": "sacred"}, "meta": {}, "host": {}, "artifacts": [],
        "resources": [], "heartbeat": None}))
    (run / "config.json").write_text(json.dumps({"lr": 0.5}))
    (run / "metrics.json").write_text(json.dumps({"acc": {
        "steps": [0, 1], "values": [0.1, 0.9],
        "timestamps": ["2026-01-01T00:00:00", "2026-01-01T00:00:01"]}}))
    (tmp_path / "_sources").mkdir()
    store = same_answers(tmp_path)
    assert store.last_values([1]) == {1: {"acc": 0.9}}
    runs = Api(store).runs("summary.acc > 0.5 and config.lr = 0.5")
    assert [r.id for r in runs] == [1]


def test_damaged_index_is_rebuilt(tmp_path):
    store = FileStore(tmp_path)
    for i in range(4):
        write_run(store, i)
    path = tmp_path / ".labbook" / "index.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # a torn line, garbage, a wrong-version line and a line for a run that lies
    lie = json.loads(lines[0])
    lie["doc"]["config"]["lr"] = 1000
    lie["sig"] = [[1, 1]] * len(file_index.SIGNATURE_FILES)
    path.write_bytes(lines[0][:40] + b"\n" + b"\x00\xffgarbage\n" + lines[1]
                     + json.dumps({"v": 99, "id": "3"}).encode() + b"\n"
                     + json.dumps(lie).encode() + b"\n" + b'{"v": 1, "id": "4"')
    same_answers(tmp_path)
    assert FileStore(tmp_path).find({"config.lr": 1000}) == []
    # an index that is not even a file
    path.unlink()
    path.mkdir()
    same_answers(tmp_path)


def test_read_only_index_keeps_working_in_memory(tmp_path, monkeypatch):
    # a read-only directory (tests run as root here, so refusals are simulated)
    store = FileStore(tmp_path)
    for i in range(3):
        write_run(store, i)
    shutil.rmtree(tmp_path / ".labbook")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(file_index.os, "makedirs", refuse)
    monkeypatch.setattr(file_index, "RACY_SECONDS", 0.0)  # entries a reader would save
    reader = same_answers(tmp_path)
    assert not (tmp_path / ".labbook").exists()
    assert reader.index.writable is False


def test_racy_entries_are_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setattr(file_index, "RACY_SECONDS", 3600.0)
    store = FileStore(tmp_path)
    write_run(store, 1, status="RUNNING")
    reader = FileStore(tmp_path)
    assert reader.find()[0]["status"] == "RUNNING"
    assert index_lines(tmp_path) == []  # built by a reader just after a change: not saved
    # a same-size rewrite in the same mtime tick: the signature cannot tell, the rule can
    run_json = tmp_path / "1" / "run.json"
    st = os.stat(run_json)
    run_json.write_text(run_json.read_text().replace('"RUNNING"', '"STOPPED"'))
    os.utime(run_json, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert reader.find()[0]["status"] == "STOPPED"


def test_compaction(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    write_run(store, 1)
    for i in range(250):  # the same run ends again and again: one line each
        store.update_run(1, {"status": "COMPLETED", "result": i})
    assert len(index_lines(tmp_path)) == 251
    reader = FileStore(tmp_path)
    assert reader.find()[0]["result"] == 249
    assert len(index_lines(tmp_path)) == 1
    same_answers(tmp_path)


def test_api_summary_filter_matches_without_index(tmp_path):
    store = FileStore(tmp_path)
    for i in range(8):
        write_run(store, i, status="RUNNING" if i == 3 else "COMPLETED")
    query = "config.lr > 0.2 and summary.loss < 6"
    with_index = [r.id for r in Api(FileStore(tmp_path)).runs(query)]
    without = [r.id for r in Api(FileStore(tmp_path, index=False)).runs(query)]
    assert with_index == without == [6, 5, 4]


def _writer(base, worker, count):
    store = FileStore(base)
    for i in range(count):
        write_run(store, worker * 1000 + i)
        store.find({"config.lr": {"$gt": 0}}, limit=3)  # readers append entries too


def test_concurrent_writers_never_corrupt_it(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = same_answers(tmp_path)
    assert len(store.find()) == 60
    for line in index_lines(tmp_path):
        json.loads(line)  # whole lines only


# -- the binary copy of long series (.labbook-series) for sampled reads ------------------------
def _long_run(store, n, ints=False):
    run_id = write_run(store, 1, status="RUNNING", points=0)
    steps = list(range(n))
    store.append_metrics(run_id, {
        "loss": {"steps": steps, "values": [s if ints else 1.0 / (s + 1) for s in steps],
                 "timestamps": [T0 + dt.timedelta(microseconds=7 * s) for s in steps]},
        "short": {"steps": [0, 1], "values": [1.0, 2.0], "timestamps": [None, T0]}})
    return run_id


def reference_sampled(base, run_id, names, samples):
    from labbook.stores.base import Store

    return Store.history_sampled(FileStore(base, index=False), run_id, names, samples)


@pytest.mark.parametrize("ints", [False, True])
def test_sampled_reads_from_the_binary_copy_equal_the_json(tmp_path, ints):
    store = FileStore(tmp_path)
    run_id = _long_run(store, 30_000, ints)
    series = tmp_path / "1" / file_series.NAME
    # a running run: read from the JSON, no copy made (it still changes)
    expected = reference_sampled(tmp_path, 1, ["loss"], 500)
    assert store.history_sampled(run_id, ["loss"]) == expected
    assert not series.exists()
    store.update_run(run_id, {"status": "COMPLETED"})
    assert not series.exists()  # shorter than what the writer copies
    for names, samples in ((["loss"], 500), (None, 500), (["short", "loss"], 77),
                           (["nope"], 500), (["loss"], None)):
        expected = reference_sampled(tmp_path, 1, names, samples)
        assert FileStore(tmp_path).history_sampled(run_id, names, samples) == expected
        assert series.exists()  # made by the first sampled read
    header = json.loads(series.read_bytes().partition(b"\n")[0])
    # once a series is long enough for a copy, the short ones are in it too
    assert set(header["series"]) == {"loss", "short"} and header["all"] == ["loss", "short"]


def _json_history(base, run_id, names=None):
    """The run's history as metrics.jsonl gives it (the binary copy set aside)."""
    directory = os.path.join(str(base), str(run_id))
    aside = os.path.join(str(base), "copy-aside")
    os.replace(os.path.join(directory, file_series.NAME), aside)
    try:
        return FileStore(base, index=False).history(run_id, names)
    finally:
        os.replace(aside, os.path.join(directory, file_series.NAME))


def _typed(history):
    """Values with their types (7 and 7.0 differ), NaN comparable."""
    return {name: {k: [(type(v).__name__, repr(v)) for v in s[k]] for k in s}
            for name, s in history.items()}


@pytest.mark.parametrize("ints", [False, True])
def test_whole_reads_of_an_ended_run_come_from_the_binary_copy_and_equal_the_json(
        tmp_path, monkeypatch, ints):
    monkeypatch.setattr(file_series, "WRITER_MIN_POINTS", 20_000)
    store = FileStore(tmp_path)
    run_id = _long_run(store, 25_000, ints)
    store.append_metrics(run_id, {"odd": {"steps": [0, 1, 2],
                                          "values": [float("nan"), float("-inf"), -0.0],
                                          "timestamps": [T0, None, T0]}})
    store.update_run(run_id, {"status": "COMPLETED"})
    expected = {names: _json_history(tmp_path, run_id, names)
                for names in (None, ("short", "loss"), ("odd",), ("nope",))}

    def no_json(*args, **kwargs):
        raise AssertionError("parsed metrics.jsonl")

    monkeypatch.setattr(FileStore, "_jsonl_series", no_json)
    for names, want in expected.items():
        got = FileStore(tmp_path).history(run_id, names)
        assert _typed(got) == _typed(want)
        assert list(got) == list(want)  # the order the metrics were first logged in
    copied = FileStore(tmp_path).history_for_copy(run_id)
    assert isinstance(copied["loss"]["timestamps"], clock.Micros)
    assert clock.from_microseconds(copied["short"]["timestamps"]) == [None, T0]


def test_a_series_of_ints_and_floats_is_read_whole_from_the_json(tmp_path, monkeypatch):
    # the copy holds such a series as floats; a whole read must give back 7, not 7.0
    monkeypatch.setattr(file_series, "WRITER_MIN_POINTS", 20_000)
    store = FileStore(tmp_path)
    run_id = _long_run(store, 25_000)
    store.append_metrics(run_id, {"loss": {"steps": [25_000], "values": [7],
                                           "timestamps": [T0]}})
    store.update_run(run_id, {"status": "COMPLETED"})
    header = json.loads((tmp_path / "1" / file_series.NAME).read_bytes().partition(b"\n")[0])
    assert header["series"]["loss"]["mixed"] is True
    got = FileStore(tmp_path).history(run_id)
    assert got["loss"]["values"][-1] == 7 and type(got["loss"]["values"][-1]) is int
    assert _typed(got) == _typed(_json_history(tmp_path, run_id))


def test_sampled_read_of_a_copied_series_parses_no_json(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    run_id = _long_run(store, 20_000)
    store.update_run(run_id, {"status": "COMPLETED"})
    expected = FileStore(tmp_path).history_sampled(run_id, ["loss"])  # makes the copy

    def no_json(*args, **kwargs):
        raise AssertionError("read the JSON")

    monkeypatch.setattr(FileStore, "history", no_json)
    assert FileStore(tmp_path).history_sampled(run_id, ["loss"]) == expected


def test_writer_copies_long_series_and_stale_copies_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(file_series, "WRITER_MIN_POINTS", 20_000)
    store = FileStore(tmp_path)
    run_id = _long_run(store, 25_000)
    store.update_run(run_id, {"status": "COMPLETED"})
    assert (tmp_path / "1" / file_series.NAME).exists()
    expected = reference_sampled(tmp_path, 1, ["loss"], 500)
    assert FileStore(tmp_path).history_sampled(run_id, ["loss"]) == expected
    # more points after the end (another process): the copy no longer matches its sources
    store.append_metrics(run_id, {"loss": {"steps": [10 ** 6], "values": [-1.0],
                                           "timestamps": [T0]}})
    fresh = FileStore(tmp_path).history_sampled(run_id, ["loss"])
    assert fresh == reference_sampled(tmp_path, 1, ["loss"], 500)
    assert fresh["loss"]["values"][-1] == -1.0
    assert file_series.is_current(str(tmp_path / "1"))  # the reader made a new copy
    # a damaged copy is ignored too
    (tmp_path / "1" / file_series.NAME).write_bytes(b'{"v": 1, "sig": [null, null]}\n\x00')
    assert FileStore(tmp_path).history_sampled(run_id, ["loss"])["loss"]["values"][-1] == -1.0


def test_odd_series_stay_in_json(tmp_path):
    store = FileStore(tmp_path)
    run_id = write_run(store, 1, status="RUNNING", points=0)
    n = 12_000
    aware = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store.append_metrics(run_id, {"loss": {"steps": list(range(n)), "values": [0.5] * n,
                                           "timestamps": [aware] * n}})
    store.update_run(run_id, {"status": "COMPLETED"})
    got = FileStore(tmp_path).history_sampled(run_id, ["loss"])
    assert got == reference_sampled(tmp_path, 1, ["loss"], 500)
    assert got["loss"]["timestamps"][0] == aware
