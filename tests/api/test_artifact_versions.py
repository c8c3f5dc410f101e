"""Versioned artifacts with lineage (``log_artifact`` / ``use_artifact``) on every store kind:
numbering, content addressing, aliases, directories, lineage, concurrency and errors."""
from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

import labbook
from labbook import Api
from labbook.errors import (ArgumentError, ArtifactNameError, ArtifactNotFoundError,
                            MissingFileError, StoreUnsupportedError)
from labbook.stores import open_store
from labbook.stores.versions import collect_files, digest_of


@pytest.fixture(autouse=True)
def _no_leftover_run():
    yield
    from labbook import imperative
    for run in list(imperative._started):
        run.finish()


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _run(url, name):
    return labbook.start_run(name, store=url, capture="no")


def test_round_trip_with_lineage(empty_url, tmp_path):
    model = tmp_path / "model.txt"
    model.write_text("weights 1")
    with _run(empty_url, "train") as a:
        v0 = a.log_artifact(model, name="model", type="model", aliases=["best"],
                            metadata={"acc": 0.7})
        model.write_text("weights 2")
        v1 = labbook.log_artifact(model, name="model", type="model")
    assert (v0.version, v1.version) == ("v0", "v1")
    assert v0.aliases == ["latest", "best"] and v1.aliases == ["latest"]
    assert v0.files == [{"path": "model.txt", "sha256": v0.files[0]["sha256"], "size": 9}]
    assert v0.type == "model" and v0.metadata == {"acc": 0.7}
    with _run(empty_url, "evaluate") as b:
        used = labbook.use_artifact("model:best")
        path = used.download(tmp_path / "got")
    assert used.version == "v0"
    assert (tmp_path / "got" / "model.txt").read_text() == "weights 1"
    assert path == str(tmp_path / "got")

    api = Api(empty_url)
    best = api.artifact("model:best")
    assert best.version == "v0" and best.digest == v0.digest
    assert [r.id for r in best.used_by()] == [b._id]
    assert [r.id for r in best.logged_by()] == [a._id]
    assert [v.version for v in best.versions()] == ["v0", "v1"]
    assert api.artifact("model").version == "v1" == api.artifact("model:latest").version
    assert api.artifact("model:v1").aliases == ["latest"]
    assert api.artifacts() == ["model"] and api.artifacts(type="model") == ["model"]
    assert api.artifacts(type="dataset") == []
    assert [v.ref for v in api.run(a._id).logged_artifacts()] == ["model:v0", "model:v1"]
    assert [v.ref for v in api.run(b._id).used_artifacts()] == ["model:v0"]
    assert api.run(b._id).logged_artifacts() == []
    with best.open("model.txt") as fh:
        assert fh.read() == b"weights 1"


def test_directories_are_stored_whole_and_downloaded_by_default_under_artifacts(
        empty_url, tmp_path, monkeypatch):
    data = tmp_path / "data"
    _write(str(data / "train.csv"), "a,b\n1,2\n")
    _write(str(data / "nested" / "deep" / "labels.txt"), "cat\n")
    _write(str(data / "empty.bin"), "")
    with _run(empty_url, "prepare"):
        version = labbook.log_artifact(data, type="dataset")
    assert version.name == "data"
    assert [f["path"] for f in version.files] == ["empty.bin", "nested/deep/labels.txt",
                                                  "train.csv"]
    monkeypatch.chdir(tmp_path)
    with _run(empty_url, "train"):
        root = labbook.use_artifact("data").download()
    assert root == str(tmp_path / "artifacts" / "data-v0")
    assert (tmp_path / "artifacts" / "data-v0" / "nested" / "deep" / "labels.txt"
            ).read_text() == "cat\n"
    assert (tmp_path / "artifacts" / "data-v0" / "empty.bin").read_bytes() == b""


def test_the_same_content_makes_no_new_version(empty_url, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        _write(str(directory / "x.txt"), "same")
    with _run(empty_url, "one") as a:
        v0 = labbook.log_artifact(first, name="cfg")
    with _run(empty_url, "two") as b:
        again = labbook.log_artifact(second, name="cfg", aliases="prod")
    assert again.version == "v0" and again.digest == v0.digest
    assert again.aliases == ["latest", "prod"]
    with _run(empty_url, "one again") as c:
        labbook.log_artifact(first, name="cfg")
        labbook.log_artifact(second, name="cfg")  # the same run twice: recorded once
    store = open_store(empty_url)
    versions = store.artifact_versions("cfg")
    assert len(versions) == 1 and versions[0]["logged_by"] == [a._id, b._id, c._id]
    # a renamed file is other content
    os.rename(second / "x.txt", second / "y.txt")
    with _run(empty_url, "three"):
        assert labbook.log_artifact(second, name="cfg").version == "v1"


def test_an_alias_points_at_one_version_and_moves(empty_url, tmp_path):
    f = tmp_path / "m.bin"
    with _run(empty_url, "train"):
        for i in range(3):
            f.write_bytes(bytes([i]))
            labbook.log_artifact(f, name="m", aliases=["best"] if i != 1 else ["best", "prod"])
    api = Api(empty_url)
    assert api.artifact("m:best").version == "v2"
    assert api.artifact("m:prod").version == "v1"
    assert [v.aliases for v in api.artifact("m").versions()] == [[], ["prod"],
                                                                 ["latest", "best"]]


def test_clear_errors(empty_url, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"1")
    with _run(empty_url, "train"):
        labbook.log_artifact(f, name="model", type="model", aliases="best")
        with pytest.raises(MissingFileError):
            labbook.log_artifact(tmp_path / "nope", name="model")
        for bad in ("../up", "a:b", "/abs", ""):
            with pytest.raises(ArtifactNameError):
                labbook.log_artifact(f, name=bad)
        with pytest.raises(ArgumentError, match="has type 'model'"):
            labbook.log_artifact(f, name="model", type="dataset")
        with pytest.raises(ArgumentError):
            labbook.log_artifact(f, name="model", aliases=["v3"])
        (tmp_path / "empty").mkdir()
        with pytest.raises(ArgumentError, match="holds no files"):
            labbook.log_artifact(tmp_path / "empty", name="nothing")
        with pytest.raises(ArtifactNotFoundError, match="'model'") as unknown:
            labbook.use_artifact("modle:best")
        assert "No artifact named 'modle'" in str(unknown.value)
        with pytest.raises(ArtifactNotFoundError, match="best, latest, v0"):
            labbook.use_artifact("model:v7")
    with pytest.raises(ArtifactNotFoundError, match="no version or alias 'prod'"):
        Api(empty_url).artifact("model:prod")


def _log_one(url, name, worker, barrier, queue):
    try:
        store = open_store(url)
        directory = f"{os.environ['LB_TMP']}/w{worker}"
        _write(f"{directory}/payload.txt", f"content of worker {worker}")
        files = collect_files(directory)
        barrier.wait(30)
        version = store.log_artifact_version(1000 + worker, name, files)
        queue.put((worker, version["version"], version["digest"]))
    except BaseException as exc:  # reported to the parent
        queue.put((worker, "error", repr(exc)))


def test_processes_logging_at_once_get_distinct_consecutive_versions(
        shared_url, tmp_path, monkeypatch):
    # memory:// lives in one process: the threads test covers its claims
    empty_url = shared_url
    monkeypatch.setenv("LB_TMP", str(tmp_path))
    open_store(empty_url).artifact_versions("shared")  # the tables/directory exist first
    count = 6
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=_log_one, args=(empty_url, "shared", i, barrier, queue))
             for i in range(count)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in range(count)]
    for proc in procs:
        proc.join(60)
    assert not [r for r in results if r[1] == "error"], results
    assert sorted(int(r[1][1:]) for r in results) == list(range(count))
    stored = open_store(empty_url).artifact_versions("shared")
    assert [v["version"] for v in stored] == [f"v{i}" for i in range(count)]
    assert sorted(v["digest"] for v in stored) == sorted(r[2] for r in results)
    assert sorted(v["logged_by"][0] for v in stored) == [1000 + i for i in range(count)]


def test_threads_logging_the_same_new_content_share_one_version(empty_url, tmp_path):
    _write(str(tmp_path / "same" / "f.txt"), "identical")
    files = collect_files(tmp_path / "same")
    store = open_store(empty_url)
    store.artifact_versions("twin")
    got, barrier = [], threading.Barrier(4)

    def log(worker):
        own = open_store(empty_url)
        barrier.wait(30)
        got.append(own.log_artifact_version(worker + 1, "twin", files)["version"])

    threads = [threading.Thread(target=log, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got == ["v0"] * 4
    versions = store.artifact_versions("twin")
    assert [v["version"] for v in versions] == ["v0"]
    assert versions[0]["digest"] == digest_of(files)
    assert sorted(versions[0]["logged_by"]) == [1, 2, 3, 4]


def test_a_run_without_a_store_that_keeps_versions_says_so(tmp_path):
    from labbook.observers.tinydb import TinyDbObserver

    pytest.importorskip("tinydb")
    ex = labbook.Experiment("tiny")
    ex.observers.append(TinyDbObserver(str(tmp_path / "tiny")))
    seen = {}

    @ex.main
    def main(_run):
        f = tmp_path / "f.txt"
        f.write_text("x")
        with pytest.raises(StoreUnsupportedError, match="TinyDbObserver") as err:
            _run.log_artifact(f, name="model")
        seen["message"] = str(err.value)

    ex.run(options={"--capture": "no", "--no-system-metrics": True})
    assert "keeps versioned artifacts" in seen["message"]


class _AwayStore:
    """A file store that can be taken away: every call refuses while ``down``."""

    def __init__(self, path):
        from labbook.stores.file import FileStore

        self.inner = FileStore(path)
        self.url = f"file://{path}"
        self.down = False

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            from labbook.errors import StoreConnectionError

            if self.down:
                raise StoreConnectionError("the store is away")
            return attr(*args, **kwargs)
        return call


def test_a_version_logged_during_an_outage_is_journaled_with_its_files_and_synced(
        tmp_path, monkeypatch, caplog):
    import logging

    from labbook.observers.queued import replay
    from labbook.observers.store_observer import StoreObserver

    for key, value in (("BACKOFF", 0.01), ("MAX_BACKOFF", 0.05), ("MAX_WAIT", 0.5),
                       ("FAILURE_DIR", str(tmp_path / "journal"))):
        monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], key, value)
    store = _AwayStore(tmp_path / "runs")
    ex = labbook.Experiment("durable")
    ex.observers.append(StoreObserver(store))
    got = {}

    @ex.main
    def main(_run):
        directory = tmp_path / "model"
        _write(str(directory / "w.bin"), "weights")
        store.down = True
        got["version"] = _run.log_artifact(directory, name="model", aliases="best")
        import shutil
        shutil.rmtree(directory)  # the run deletes its files right away

    with caplog.at_level(logging.WARNING):
        run = ex.run(options={"--capture": "no", "--no-system-metrics": True})
    assert got["version"].version is None and "waits for its store" in caplog.text
    assert "labbook sync" in caplog.text  # the end says loudly where it waits
    store.down = False
    assert store.inner.artifact_versions("model") == []
    replay(tmp_path / "journal", store.url)
    (version,) = store.inner.artifact_versions("model")
    assert version["version"] == "v0" and version["aliases"] == ["latest", "best"]
    assert version["logged_by"] == [run._id]
    out = open_store(store.url)
    root = Api(out).artifact("model:best").download(tmp_path / "back")
    assert open(os.path.join(root, "w.bin")).read() == "weights"
    replay(tmp_path / "journal", store.url)  # again: nothing doubled
    assert len(store.inner.artifact_versions("model")) == 1


def test_show_lists_what_a_run_logged_and_used(empty_url, tmp_path, capsys):
    from labbook.cli.main import main

    f = tmp_path / "w.bin"
    f.write_bytes(b"1")
    with _run(empty_url, "train") as a:
        labbook.log_artifact(f, name="model")
    with _run(empty_url, "evaluate") as b:
        labbook.use_artifact("model")
    assert main(["show", str(a._id), "--store", empty_url]) == 0
    assert "logged versions: model:v0" in capsys.readouterr().out
    assert main(["show", str(b._id), "--store", empty_url]) == 0
    out = capsys.readouterr().out
    assert "used versions: model:v0" in out and "logged versions" not in out


def test_sync_copies_versions_with_their_lineage(tmp_path):
    from labbook.sync import sync

    src, dst = f"file://{tmp_path / 'src'}", f"sqlite:///{tmp_path / 'dst.db'}"
    f = tmp_path / "w.bin"
    with _run(src, "train") as a:
        f.write_bytes(b"1")
        labbook.log_artifact(f, name="model", aliases="best")
        f.write_bytes(b"2")
        labbook.log_artifact(f, name="model")
    with _run(src, "evaluate"):
        labbook.use_artifact("model:best")
    result = sync(src, dst)
    assert result.versions == 2 and "2 new artifact version(s)" in result.summary()
    api = Api(dst)
    best = api.artifact("model:best")
    assert best.version == "v0" and open(best.download(tmp_path / "got") + "/w.bin").read() == "1"
    copied = {r.doc["meta"]["synced_from"]["id"]: r.id for r in api.runs()}
    assert [r.id for r in best.logged_by()] == [copied[a._id]]
    assert [r.id for r in best.used_by()] == [copied[a._id + 1]]
    assert sync(src, dst).versions == 0  # again: nothing new
    assert [v.version for v in best.versions()] == ["v0", "v1"]


def test_a_decorated_experiment_logs_and_uses_versions_through_run(tmp_path):
    url = f"file://{tmp_path / 'runs'}"
    ex = labbook.Experiment("decorated")
    got = {}

    @ex.main
    def main(_run):
        f = tmp_path / "table.csv"
        f.write_text("a,b\n")
        got["logged"] = _run.log_artifact(f, type="dataset")
        got["used"] = _run.use_artifact("table.csv:v0")
        with pytest.raises(ArtifactNotFoundError, match="has no file 'x'; it has 'table.csv'"):
            got["used"].open("x")

    run = ex.run(options={"--store": url, "--capture": "no", "--no-system-metrics": True})
    assert got["logged"] == got["used"] and got["used"].ref == "table.csv:v0"
    version = Api(url).artifact("table.csv")
    assert [r.id for r in version.logged_by()] == [run._id] == [r.id for r in version.used_by()]
