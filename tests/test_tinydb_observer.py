"""TinyDbObserver and TinyDbReader: runs recorded in Sacred's TinyDB layout and read back, the
store Sacred 0.8.7 wrote (tests/fixtures/sacred_0_8_7/tinydb) read by labbook, and the
documents of both compared field by field."""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from tinydb import Query

import labbook
from labbook.errors import (ArgumentError, MissingExtraError, MissingFileError, ObserverError,
                            RunExistsError)
from labbook.observers import TinyDbObserver, TinyDbReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SACRED_STORE = os.path.join(FIXTURES, "sacred_0_8_7", "tinydb")
FILE_TAG = re.compile(r'^\{TinyFile\}:"([0-9a-f]{32})"$')
DATE_TAG = re.compile(r"^\{TinyDate\}:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


def _experiment(observer, main, base_dir=None):
    ex = labbook.Experiment("tiny", interactive=True, base_dir=base_dir)

    @ex.config
    def cfg():
        lr = 0.5  # noqa: F841
        layers = [4, 2]  # noqa: F841

    ex.main(main)
    ex.observers.append(observer)
    return ex


def _run(ex, **kwargs):
    return ex.run(options={"--no_system_metrics": True}, **kwargs)


def _raw(path):
    with open(os.path.join(path, "metadata.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _hashfs_path(root, file_id):
    return os.path.join(root, "hashfs", file_id[:2], file_id[2:4], file_id[4:6], file_id[6:])


def test_a_completed_run_is_recorded_and_read_back_whole(tmp_path):
    resource = tmp_path / "vocab.txt"
    resource.write_text("alpha beta\n")
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(b"\x00\x01\xff")
    source = tmp_path / "helper.py"
    source.write_text("X = 1\n")

    def main(_run, lr):
        _run.open_resource(str(resource)).close()
        _run.add_artifact(str(artifact), name="model.bin")
        for step in range(3):
            _run.log_scalar("loss", 1.0 / (step + 1))
        _run.log_scalar("acc", 0.75, 10)
        _run.info["phase"] = {"name": "train", "flags": [True, None]}
        print("training")
        return lr * 2

    observer = TinyDbObserver(tmp_path / "runs_db")
    ex = _experiment(observer, main, base_dir=tmp_path)
    ex.add_source_file(str(source))
    run = _run(ex)

    reader = TinyDbReader(tmp_path / "runs_db")
    (doc,) = reader.fetch_metadata("tiny")
    assert doc["_id"] == run._id and len(run._id) == 32
    assert doc["status"] == "COMPLETED" and doc["result"] == 1.0
    assert doc["config"]["lr"] == 0.5 and doc["config"]["layers"] == [4, 2]
    assert doc["info"]["phase"] == {"name": "train", "flags": [True, None]}
    assert "training" in doc["captured_out"]
    assert isinstance(doc["start_time"], datetime.datetime)
    assert doc["stop_time"] >= doc["start_time"]
    assert doc["command"] == "main" and doc["format"].startswith("TinyDbObserver-")

    (files,) = reader.fetch_files(indices=0)
    assert (files["exp_name"], files["exp_id"]) == ("tiny", run._id)
    assert files["date"] == doc["start_time"]
    with files["artifacts"]["model.bin"] as fh:
        assert fh.read() == b"\x00\x01\xff"
    assert files["resources"][str(resource)].read() == b"alpha beta\n"
    files["resources"][str(resource)].close()
    with files["sources"]["helper.py"] as fh:
        assert fh.read() == b"X = 1\n"

    metrics = reader.fetch_metrics(run._id)
    assert metrics["loss"]["steps"] == [0, 1, 2]
    assert metrics["loss"]["values"] == [1.0, 0.5, 1.0 / 3]
    assert all(isinstance(t, datetime.datetime) for t in metrics["loss"]["timestamps"])
    assert metrics["acc"] == {"steps": [10], "values": [0.75],
                              "timestamps": metrics["acc"]["timestamps"]}

    (report,) = reader.fetch_report(indices=[0])
    assert "Experiment: tiny" in report and f"ID: {run._id}" in report
    assert "    lr: 0.5" in report and "Result:\n    1.0" in report
    assert f"Resources:\n    {resource}" in report and "Outputs:\n    model.bin" in report
    assert re.search(r"Duration: \d\d:\d\d:\d\d\.\d\n", report)


def test_the_stored_json_uses_sacreds_tags_and_hashfs_layout(tmp_path):
    artifact = tmp_path / "notes.txt"
    artifact.write_text("notes\n")

    def main(_run):
        _run.add_artifact(str(artifact))

    run = _run(_experiment(TinyDbObserver(tmp_path / "db"), main))
    doc = _raw(tmp_path / "db")["runs"]["1"]
    assert doc["_id"] == run._id
    for key in ("start_time", "stop_time", "heartbeat"):
        assert DATE_TAG.match(doc[key]), doc[key]
    name, filename, file_id, tagged = doc["artifacts"][0]
    assert (name, filename) == ("notes.txt", str(artifact))
    assert FILE_TAG.match(tagged).group(1) == file_id
    with open(_hashfs_path(tmp_path / "db", file_id), encoding="utf-8") as fh:
        assert fh.read() == "notes\n"
    for source in doc["experiment"]["sources"]:
        assert FILE_TAG.match(source[2]).group(1) == source[1]
        assert os.path.isfile(_hashfs_path(tmp_path / "db", source[1]))


def test_a_failed_and_an_interrupted_run_keep_their_status(tmp_path):
    observer = TinyDbObserver(tmp_path / "db")

    def fails():
        raise RuntimeError("diverged")

    def interrupted():
        raise KeyboardInterrupt()

    with pytest.raises(RuntimeError):
        _run(_experiment(observer, fails))
    with pytest.raises(KeyboardInterrupt):
        _run(_experiment(observer, interrupted))
    reader = TinyDbReader(tmp_path / "db")
    failed, stopped = reader.fetch_metadata(indices=[0, 1])
    assert failed["status"] == "FAILED"
    assert failed["fail_trace"][-1] == "RuntimeError: diverged\n"
    assert isinstance(failed["stop_time"], datetime.datetime)
    assert stopped["status"] == "INTERRUPTED" and "fail_trace" not in stopped
    assert [d["status"] for d in reader.search(Query().status == "FAILED")] == ["FAILED"]
    assert "Result:\n    None" in reader.fetch_report(indices=0)[0]


def test_a_taken_id_is_refused_and_overwrite_replaces_a_run(tmp_path):
    root = tmp_path / "db"
    first = _run(_experiment(TinyDbObserver(root), lambda: 1))
    with pytest.raises(RunExistsError, match=f"A run with id '{first._id}' exists already"):
        TinyDbObserver(root).started_event({"name": "x", "sources": []}, "main", {},
                                           datetime.datetime(2024, 1, 1), {}, {}, first._id)
    second = _run(_experiment(TinyDbObserver(root, overwrite=first._id), lambda: 2))
    reader = TinyDbReader(root)
    (doc,) = reader.fetch_metadata(indices=[0])
    assert len(reader.runs) == 1 and doc["result"] == 2 and doc["_id"] == second._id
    assert second._id == first._id
    with pytest.raises(ObserverError, match="no run 'nope' to overwrite"):
        TinyDbObserver(root, overwrite="nope").started_event(
            {"name": "x", "sources": []}, "main", {}, datetime.datetime(2024, 1, 1), {}, {},
            None)


def test_runs_recorded_by_several_processes_at_once_are_all_kept(tmp_path):
    script = (
        "import sys, labbook\n"
        "from labbook.observers import TinyDbObserver\n"
        "ex = labbook.Experiment('proc' + sys.argv[2], interactive=True)\n"
        "@ex.main\n"
        "def main(_run):\n"
        "    for i in range(5):\n"
        "        _run.log_scalar('x', i)\n"
        "ex.observers.append(TinyDbObserver(sys.argv[1]))\n"
        "for _ in range(4):\n"
        "    ex.run(options={'--no_system_metrics': True, '--loglevel': 'ERROR'})\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "db"), str(n)],
                              env=env, stderr=subprocess.PIPE, text=True) for n in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        proc.stderr.close()
    reader = TinyDbReader(tmp_path / "db")
    docs = reader.runs.all()
    assert sorted(d["experiment"]["name"] for d in docs) == ["proc0"] * 4 + ["proc1"] * 4 + \
        ["proc2"] * 4
    assert {d["status"] for d in docs} == {"COMPLETED"}
    assert len({d["_id"] for d in docs}) == 12
    for doc in docs:
        assert reader.fetch_metrics(doc["_id"])["x"]["values"] == [0, 1, 2, 3, 4]


def test_the_reader_reads_the_store_sacred_wrote():
    reader = TinyDbReader(SACRED_STORE)
    docs = reader.fetch_metadata("fixture")
    assert [d["status"] for d in docs] == ["RUNNING", "FAILED", "INTERRUPTED"]
    failed = docs[1]
    assert failed["config"]["fail_at"] == 7 and failed["format"] == "TinyDbObserver-0.8.7"
    assert failed["fail_trace"][-1] == "RuntimeError: diverged at step 7\n"
    assert isinstance(failed["stop_time"], datetime.datetime)
    files = reader.fetch_files(query=Query().config.fail_at == 7)
    assert [f["exp_id"] for f in files] == [failed["_id"]]
    with files[0]["sources"]["fixture_experiment.py"] as fh:
        with open(os.path.join(FIXTURES, "sacred_experiment", "fixture_experiment.py"),
                  "rb") as original:
            assert fh.read() == original.read()
    with files[0]["resources"][failed["resources"][0][0]] as fh:
        assert fh.read().split() == [b"alpha", b"beta", b"gamma"]
    (first,) = reader.fetch_files(indices=0)
    with first["artifacts"]["model_weights.bin"] as fh:
        assert fh.read() == bytes(range(256)) + b"\x00\xff" * 8
    assert "not finished" in reader.fetch_report(indices=0)[0]
    assert "Duration: 00:00:00." in reader.fetch_report(indices=1)[0]
    assert reader.fetch_metrics(failed["_id"]) == {}  # Sacred's observer keeps no metrics


def test_labbooks_documents_have_the_shape_of_sacreds(tmp_path):
    sys.path.insert(0, FIXTURES)
    try:
        from make_sacred_fixtures import record_runs
    finally:
        sys.path.remove(FIXTURES)
    record_runs(labbook, TinyDbObserver(tmp_path / "db"))
    ours = _raw(tmp_path / "db")["runs"]
    sacreds = _raw(SACRED_STORE)["runs"]
    assert sorted(ours) == sorted(sacreds) == ["1", "2", "3"]
    for key in ("2", "3"):  # Sacred's run 1 broke off (see the fixtures' README)
        assert set(ours[key]) == set(sacreds[key])
    assert set(sacreds["1"]) <= set(ours["1"])
    assert ours["1"]["status"] == "COMPLETED"
    for key in ("1", "2", "3"):
        mine, theirs = ours[key], sacreds[key]
        assert set(mine["experiment"]) == set(theirs["experiment"])
        for field in ("start_time", "stop_time", "heartbeat"):
            if theirs.get(field) is not None:
                assert DATE_TAG.match(mine[field]) and DATE_TAG.match(theirs[field])
        for entries in (mine["experiment"]["sources"], theirs["experiment"]["sources"],
                        mine["resources"], theirs["resources"]):
            assert [len(e) for e in entries] == [3] * len(entries)
            assert all(FILE_TAG.match(e[2]).group(1) == e[1] for e in entries)
        assert [a[0] for a in mine["artifacts"]] == [a[0] for a in theirs["artifacts"]]
        assert all(len(a) == 4 and FILE_TAG.match(a[3]).group(1) == a[2]
                   for a in mine["artifacts"] + theirs["artifacts"])
        # the same files give the same digests
        assert [e[1] for e in mine["resources"]] == [e[1] for e in theirs["resources"]]
        assert [a[2] for a in mine["artifacts"]] == [a[2] for a in theirs["artifacts"]]
        assert mine["config"] == theirs["config"]
    assert ours["2"]["fail_trace"][-1] == sacreds["2"]["fail_trace"][-1]
    assert ours["1"]["info"] == {"vocabulary_size": 3, "final_loss": 0.3780412354,
                                 "phase": {"name": "train", "flags": [True, None, 1.5]}}


def test_recording_into_sacreds_store_leaves_its_runs_as_they_were(tmp_path):
    store = tmp_path / "db"
    shutil.copytree(SACRED_STORE, store)
    before = _raw(store)["runs"]
    run = _run(_experiment(TinyDbObserver(store), lambda: 3))
    after = _raw(store)["runs"]
    assert {k: after[k] for k in before} == before
    assert after["4"]["_id"] == run._id
    assert [d["status"] for d in TinyDbReader(store).runs.all()][-1] == "COMPLETED"


def test_the_reader_refuses_what_it_cannot_answer(tmp_path):
    with pytest.raises(MissingFileError, match="TinyDbReader: .*missing does not exist"):
        TinyDbReader(tmp_path / "missing")
    reader = TinyDbReader(SACRED_STORE)
    with pytest.raises(ArgumentError, match="give an experiment name, indices or a query"):
        reader.fetch_metadata()
    with pytest.raises(ArgumentError, match="index 3 is out of range: the store holds 3 runs"):
        reader.fetch_files(indices=[0, 3])


def test_a_text_that_only_looks_like_a_tag_is_read_as_text(tmp_path):
    texts = ["{TinyDate}:yesterday", "{TinyFile}:not json", "{TinyArray}:[1,", "{Tiny}"]
    _run(_experiment(TinyDbObserver(tmp_path / "db"), lambda: texts))
    (doc,) = TinyDbReader(tmp_path / "db").fetch_metadata(indices=0)
    assert doc["result"] == texts


def test_sacreds_numpy_and_pandas_tags_are_read_back_as_such(tmp_path):
    import numpy
    import pandas

    frame = pandas.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    series = pandas.Series([3, 4], name="s")
    (tmp_path / "db").mkdir()
    doc = {"_id": "x", "experiment": {"name": "tags", "sources": []},
           "info": {"array": "{TinyArray}:" + json.dumps([[1, 2], [3, 4]]),
                    "frame": "{TinyDataFrame}:" + frame.to_json(),
                    "series": "{TinySeries}:" + series.to_json()}}
    (tmp_path / "db" / "metadata.json").write_text(json.dumps({"runs": {"1": doc}}))
    (read,) = TinyDbReader(tmp_path / "db").fetch_metadata(indices=0)
    assert isinstance(read["info"]["array"], numpy.ndarray)
    assert read["info"]["array"].tolist() == [[1, 2], [3, 4]]
    pandas.testing.assert_frame_equal(read["info"]["frame"], frame)
    assert read["info"]["series"].tolist() == [3, 4]


def test_queued_runs_are_refused_in_one_line(tmp_path):
    with pytest.raises(ObserverError, match="cannot record queued runs"):
        TinyDbObserver(tmp_path / "db").queued_event({}, "main", {}, None, {}, {}, None)


def test_create_is_sacreds_deprecated_spelling(tmp_path):
    with pytest.warns(DeprecationWarning, match="use TinyDbObserver"):
        observer = TinyDbObserver.create(tmp_path / "db")
    assert observer == TinyDbObserver(tmp_path / "db")
    assert observer.root == str(tmp_path / "db")


@pytest.mark.parametrize("module", ["tinydb", "hashfs"])
def test_without_the_extra_the_error_says_what_to_install(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError) as info:
        TinyDbObserver(tmp_path / "db")
    assert str(info.value) == ("TinyDbObserver needs the packages tinydb and hashfs: "
                               "pip install 'labbook[tinydb]'")
    with pytest.raises(MissingExtraError, match=r"^TinyDbReader needs"):
        TinyDbReader(tmp_path)


def test_sacreds_t_flag_records_into_a_tinydb_store(tmp_path):
    # python exp.py -t DIR, as with Sacred (-t was once labbook's --tag: a Sacred command line
    # recording into TinyDB would have tagged the run and recorded nothing)
    ex = labbook.Experiment("tiny_flag", interactive=True)

    @ex.main
    def main(_run):
        _run.log_scalar("loss", 0.25)
        return 3

    path = str(tmp_path / "runs_db")
    run = ex.run_commandline(["exp", "-t", path, "-l", "WARNING", "--no-system-metrics"])
    assert run.status == "COMPLETED" and run.meta_info["tags"] == []
    (entry,) = TinyDbReader(path).fetch_metadata(exp_name="tiny_flag")
    assert entry["result"] == 3 and entry["meta"]["options"]["--tiny_db"] == path
    assert TinyDbReader(path).fetch_metrics(run._id)["loss"]["values"] == [0.25]
