"""The file store: Sacred 0.8's FileStorageObserver layout, atomic ids, readable back."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from labbook import Experiment
from labbook.observers import FileStorageObserver
from labbook.stores import UnknownStoreError, file_series, open_store
from labbook.stores.file import FileStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(basedir, body=None):
    ex = Experiment("filestore")
    ex.add_config(lr=0.1, layers=[1, 2], nested={"a": 1})
    ex.observers.append(FileStorageObserver(basedir))

    @ex.main
    def main(lr, _run):
        if body:
            return body(_run)
        return lr * 2

    return ex


def test_layout_of_a_completed_run(tmp_path):
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(bytes(range(256)) * 10)
    resource = tmp_path / "data.csv"
    resource.write_text("a,b\n1,2\n")

    def body(_run):
        print("hello from the run")
        for i in range(5):
            _run.log_scalar("loss", 1.0 / (i + 1))
        _run.log_scalar("nan", float("nan"))
        _run.add_artifact(str(artifact))
        _run.add_artifact(str(artifact), name="sub/dir/copy.bin")
        _run.open_resource(str(resource)).close()
        _run.info["note"] = "kept"
        return {"acc": 0.5}

    base = tmp_path / "runs"
    run = make(base, body).run(options={"--capture": "sys"})
    assert run._id == 1
    d = base / "1"
    assert sorted(os.listdir(d)) == ["config.json", "cout.txt", "info.json", "metrics.json",
                                     "metrics.jsonl", "run.json", "sub", "weights.bin"]
    doc = json.loads((d / "run.json").read_text())
    assert doc["status"] == "COMPLETED" and doc["command"] == "main"
    assert doc["result"] == {"acc": 0.5}
    assert doc["artifacts"] == ["weights.bin", "sub/dir/copy.bin"]
    assert doc["experiment"]["name"] == "filestore"
    assert any(src[0].endswith("test_file_store.py") and src[1].startswith("_sources/")
               for src in doc["experiment"]["sources"])
    assert doc["resources"][0][0] == str(resource)
    assert (base / doc["resources"][0][1]).read_text() == "a,b\n1,2\n"
    assert "start_time" in doc and "stop_time" in doc and "heartbeat" in doc
    assert json.loads((d / "config.json").read_text())["lr"] == 0.1
    assert json.loads((d / "info.json").read_text())["note"] == "kept"
    assert "hello from the run" in (d / "cout.txt").read_text()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["loss"]["steps"] == [0, 1, 2, 3, 4]
    assert metrics["loss"]["values"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert len(metrics["loss"]["timestamps"]) == 5
    assert metrics["nan"]["values"][0] != metrics["nan"]["values"][0]
    assert (d / "sub" / "dir" / "copy.bin").read_bytes() == artifact.read_bytes()


def test_read_back_through_the_store(tmp_path):
    base = tmp_path / "runs"
    ex = make(base, lambda r: r.log_scalar("x", 3) or 7)
    ex.run()
    ex.run(config_updates={"lr": 0.5})
    store = open_store(f"file://{base}")
    assert isinstance(store, FileStore)
    run = store.get(1)
    assert run["_id"] == 1 and run["status"] == "COMPLETED" and run["result"] == 7
    assert run["config"]["lr"] == 0.1
    assert store.history(1)["x"]["values"] == [3]
    assert [r["_id"] for r in store.find({"config.lr": {"$gt": 0.2}})] == [2]
    assert [r["_id"] for r in store.find(order="-config.lr")] == [2, 1]
    assert store.get(99) is None
    assert open_store(str(base)).get(2)["config"]["lr"] == 0.5


def test_failed_run_keeps_the_trace(tmp_path):
    def body(_run):
        print("before the crash")
        raise RuntimeError("exploded")

    with pytest.raises(RuntimeError):
        make(tmp_path, body).run(options={"--capture": "sys"})
    doc = json.loads((tmp_path / "1" / "run.json").read_text())
    assert doc["status"] == "FAILED"
    assert "RuntimeError: exploded" in "".join(doc["fail_trace"])
    assert "before the crash" in (tmp_path / "1" / "cout.txt").read_text()


def test_parallel_processes_get_distinct_ids(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from labbook import Experiment\n"
        "ex = Experiment('parallel')\n"
        "@ex.automain\n"
        "def main():\n"
        "    return 1\n")
    base = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, str(script), "-F", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ids = sorted(int(n) for n in os.listdir(base) if n.isdigit())
    assert ids == list(range(1, 9))
    for i in ids:
        assert json.loads((base / str(i) / "run.json").read_text())["status"] == "COMPLETED"


def test_processes_running_many_runs_each_get_distinct_ids(tmp_path):
    # each process keeps its next id between runs (no listing while the directory is
    # unchanged); the others' runs change it, and the id is then looked up again
    script = tmp_path / "exp.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from labbook import Experiment\n"
        "from labbook.observers import FileStorageObserver\n"
        "ex = Experiment('parallel_many')\n"
        "ex.observers.append(FileStorageObserver(sys.argv[1]))\n"
        "@ex.main\n"
        "def main(_run):\n"
        "    return _run._id\n"
        "print([ex.run().result for _ in range(6)])\n")
    base = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, str(script), str(base)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    seen = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids = json.loads(out.strip().splitlines()[-1])
        assert ids == sorted(ids)  # a process's runs get increasing ids
        seen += ids
    assert sorted(seen) == list(range(1, 25))
    assert sorted(int(n) for n in os.listdir(base) if n.isdigit()) == list(range(1, 25))


def test_next_id_is_one_past_the_highest_whatever_changed_the_directory(tmp_path, monkeypatch):
    base = tmp_path / "runs"
    store = FileStore(str(base))
    doc = {"status": "RUNNING", "config": {}}
    listed = []
    listdir = store.fs.listdir
    monkeypatch.setattr(store.fs, "listdir", lambda path: listed.append(path) or listdir(path))
    assert [store.create_run(dict(doc)) for _ in range(3)] == [1, 2, 3]
    assert len(listed) == 1  # the first run lists the directory, the next ones need not
    other = FileStore(str(base))  # another writer
    assert other.create_run(dict(doc)) == 4
    assert store.create_run(dict(doc)) == 5
    other.create_run(dict(doc), run_id=41)  # a chosen id
    assert store.create_run(dict(doc)) == 42
    os.mkdir(base / "100")  # a directory made by hand, as Sacred's next free id counts it
    assert store.create_run(dict(doc)) == 101
    for name in os.listdir(base):  # the store emptied: ids start again at 1
        if name.isdigit():
            shutil.rmtree(base / name)
    assert store.create_run(dict(doc)) == 1


def test_a_process_running_many_runs_keeps_none_of_their_output_or_documents(tmp_path):
    # a sweep of thousands of runs in one process: what a run wrote leaves memory at its end
    import gc
    import tracemalloc

    ex = Experiment("many_runs")
    observer = FileStorageObserver(str(tmp_path / "runs"))
    ex.observers.append(observer)

    @ex.main
    def main(_run):
        print("x" * 200_000)  # 200 kB of output per run
        for i in range(50):
            _run.log_scalar("loss", 1 / (i + 1), i)

    tracemalloc.start()
    try:
        for _ in range(5):
            ex.run()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            ex.run()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, f"{grown} bytes more after 20 runs of 200 kB output each"
    runs = FileStore(str(tmp_path / "runs"))  # everything is in the store all the same
    assert [len(runs.get(i)["captured_out"]) >= 200_000 for i in range(1, 26)] == [True] * 25
    assert len(runs.history(25)["loss"]["values"]) == 50


def test_store_option_and_environment(tmp_path, monkeypatch):
    ex = Experiment("envstore")

    @ex.main
    def main():
        return 1

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    ex.run()
    assert os.listdir(tmp_path) == []  # no observer, nothing written
    ex.run(options={"--store": f"file://{tmp_path / 'a'}"})
    assert (tmp_path / "a" / "1" / "run.json").exists()
    monkeypatch.setenv("LABBOOK_STORE", str(tmp_path / "b"))
    run = ex.run()
    assert run._id == 1 and (tmp_path / "b" / "1" / "run.json").exists()


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(UnknownStoreError) as info:
        open_store("ftp://user:secret@host/x")
    assert "ftp" in str(info.value) and "secret" not in str(info.value)
    assert "Known schemes: file, gcs, gs, mariadb, memory, mongodb" in str(info.value)


# -- Sacred's FileStorageObserver options --------------------------------------------------------

def test_file_storage_observer_takes_sacreds_options(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    output = tmp_path / "model.bin"
    output.write_bytes(b"\x00weights")
    (tmp_path / "runs").mkdir()
    template = tmp_path / "runs" / "template.html"
    template.write_text("<h1>${run['experiment']['name']}: ${run['status']}</h1>"
                        "<p>lr=${config['lr']} note=${info['note']}</p><pre>${cout}</pre>"
                        "<i>${type(run['stop_time']).__name__}</i>")
    observer = FileStorageObserver(tmp_path / "runs", resource_dir=tmp_path / "res",
                                   source_dir=tmp_path / "src", copy_artifacts=False)
    assert observer.template == str(template)  # basedir/template.html is found by itself
    ex = Experiment("options")
    ex.add_config(lr=0.5)
    ex.observers.append(observer)

    @ex.main
    def main(_run):
        print("hello report")
        _run.info["note"] = "kept"
        _run.open_resource(str(data)).close()
        _run.add_artifact(str(output), name="model.bin")

    run = ex.run(options={"--no_system_metrics": True, "--loglevel": "WARNING"})
    run_dir = tmp_path / "runs" / str(run._id)
    stored = json.loads((run_dir / "run.json").read_text())
    # resources and sources went to the directories given, named <name>_<md5>.<ext>
    (resource,) = stored["resources"]
    assert resource[0] == str(data) and resource[1].startswith(str(tmp_path / "res")) \
        and os.path.isfile(resource[1])
    assert stored["experiment"]["sources"]
    assert {os.path.dirname(os.path.normpath(os.path.join(tmp_path / "runs", s[1])))
            for s in stored["experiment"]["sources"]} == {str(tmp_path / "src")}
    # copy_artifacts=False: the artifact is listed, not copied
    assert stored["artifacts"] == ["model.bin"] and not (run_dir / "model.bin").exists()
    report = (run_dir / "report.html").read_text()
    assert report == ("<h1>options: COMPLETED</h1><p>lr=0.5 note=kept</p>"
                      "<pre>hello report\n</pre><i>str</i>")  # times as in run.json


def test_copy_sources_false_records_where_the_sources_are(tmp_path):
    with pytest.raises(FileNotFoundError, match="template .*missing.html does not exist"):
        FileStorageObserver(tmp_path / "runs", template=tmp_path / "missing.html")
    observer = FileStorageObserver(tmp_path / "runs", copy_sources=False)
    ex = Experiment("no_copies")
    ex.observers.append(observer)
    ex.main(lambda: None)
    run = ex.run(options={"--no_system_metrics": True, "--loglevel": "WARNING"})
    stored = json.loads((tmp_path / "runs" / str(run._id) / "run.json").read_text())
    assert stored["experiment"]["sources"]
    assert not (tmp_path / "runs" / "_sources").exists()
    for name, where in stored["experiment"]["sources"]:
        original = os.path.normpath(os.path.join(tmp_path / "runs", where))
        assert original == os.path.join(stored["experiment"]["base_dir"], name)


def _points_run(store, lines, foreign=None):
    """A run of ``lines`` of points appended through ``store``; ``foreign``: a line another
    writer appends to metrics.jsonl after the first one. Returns the run's directory."""
    import datetime

    run_id = store.create_run({"status": "RUNNING", "start_time": datetime.datetime(2024, 1, 1),
                               "experiment": {}, "config": {}, "meta": {}, "host": {},
                               "info": {}})
    directory = os.path.join(store.basedir, str(run_id))
    for i, line in enumerate(lines):
        store.append_metrics(run_id, line)
        if i == 0 and foreign is not None:
            with open(os.path.join(directory, "metrics.jsonl"), "a", encoding="utf-8") as fh:
                fh.write(json.dumps(foreign) + "\n")
    minimum = file_series.WRITER_MIN_POINTS
    file_series.WRITER_MIN_POINTS = 3
    try:
        store.update_run(run_id, {"status": "COMPLETED"})
    finally:
        file_series.WRITER_MIN_POINTS = minimum
    return directory


def _sample_lines():
    import datetime

    t = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)
    return [
        {"loss": {"steps": [0, 1, 2], "values": [0.5, float("nan"), float("inf")],
                  "timestamps": [t, t, t]},
         "acc": {"steps": [0], "values": [1], "timestamps": [t]}},
        {"acc": {"steps": [1, 2, 3], "values": [2, 3, 4],
                 "timestamps": [t + datetime.timedelta(seconds=i) for i in range(3)]},
         "ünï, \"q\"": {"steps": [7], "values": [-0.0], "timestamps": [None]},
         "loss": {"steps": [3], "values": [7], "timestamps": [t]}},
    ]


def _files(directory):
    out = {}
    for name in ("metrics.json", "metrics.jsonl", file_series.NAME):
        with open(os.path.join(directory, name), "rb") as fh:
            data = fh.read()
        if name == file_series.NAME:  # the header holds the files' mtimes: compare the rest
            header, rest = data.split(b"\n", 1)
            header = json.loads(header)
            header.pop("sig")
            data = (header, rest)
        out[name] = data
    return out


def test_metrics_json_from_the_pieces_kept_while_running_is_what_metrics_jsonl_gives(tmp_path):
    # the writer keeps metrics.json's pieces as points arrive, instead of reading
    # metrics.jsonl back at the end: the files must be the same bytes either way
    kept = FileStore(str(tmp_path / "kept"))
    read = FileStore(str(tmp_path / "read"))
    read._pieces_for = lambda run_id, path: None  # the way without pieces
    a = _points_run(kept, _sample_lines())
    b = _points_run(read, _sample_lines())
    assert _files(a) == _files(b)
    assert not [n for n in os.listdir(a) if n.startswith(".labbook-metrics-")]  # cleaned up
    history = kept.history(os.path.basename(a))
    assert history["loss"]["steps"] == [0, 1, 2, 3] and history["acc"]["values"] == [1, 2, 3, 4]
    idx_kept = kept.index.lookup([os.path.basename(a)])[os.path.basename(a)]
    assert idx_kept["n"] == {"loss": 4, "acc": 4, "ünï, \"q\"": 1}
    assert idx_kept["last"]["loss"] == 7


def test_a_line_another_writer_appends_sends_metrics_json_back_to_metrics_jsonl(tmp_path):
    foreign = {"other": {"steps": [5], "values": [1.5], "timestamps": ["2024-01-01T00:00:00"]}}
    store = FileStore(str(tmp_path / "runs"))
    directory = _points_run(store, _sample_lines(), foreign=foreign)
    with open(os.path.join(directory, "metrics.json"), encoding="utf-8") as fh:
        written = json.load(fh)
    assert written["other"]["values"] == [1.5] and written["loss"]["steps"] == [0, 1, 2, 3]
    assert not [n for n in os.listdir(directory) if n.startswith(".labbook-metrics-")]
