"""Sacred 0.8.7 compatibility, checked against stores written by Sacred itself.

``tests/fixtures/sacred_0_8_7`` holds a file store and a MongoDB export written by Sacred 0.8.7
(see its README). The same experiment (``tests/fixtures/sacred_experiment``) is recorded here
with labbook and compared file by file with Sacred's, and labbook's read API and CLI read the
Sacred stores. Sacred is not needed to run these tests.

Where labbook writes more than Sacred, the extra names are listed below, so the difference
cannot grow unnoticed; docs/sacred_compatibility.md explains each one.
"""
from __future__ import annotations

import builtins
import datetime as _dt
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

import labbook
from labbook.cli.main import main as cli_main
from labbook.observers import FileStorageObserver
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401 (fixtures)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SACRED = FIXTURES / "sacred_0_8_7"
SACRED_FILES = SACRED / "file_store"
SACRED_MONGO = SACRED / "mongo"
RUN_IDS = ("1", "2", "3")
STATUSES = {1: "COMPLETED", 2: "FAILED", 3: "INTERRUPTED"}

#: files labbook writes into a run directory that Sacred does not (the appended metrics log)
LABBOOK_EXTRA_RUN_FILES = {"metrics.jsonl"}
#: labbook's own directory at the top of a store (its index), which Sacred ignores
LABBOOK_STORE_DIR = ".labbook/"
#: labbook's own host_info entries
LABBOOK_EXTRA_HOST_KEYS = {"cpu_count", "labbook_version"}
#: host entries both write only on some machines (the fixtures were made without a GPU)
MACHINE_HOST_KEYS = {"gpus"}
#: labbook's own meta entries (beat_interval: readers report DIED after 3 missed beats)
LABBOOK_EXTRA_META_KEYS = {"tags", "beat_interval"}
#: meta entries Sacred writes and labbook's Experiment does not (none: labbook records
#: ``named_configs`` and ``config_updates`` too; labbook/experiment.py builds ``meta``)
SACRED_ONLY_META_KEYS: set[str] = set()
#: run options only labbook has (Sacred's --gcs too: the Sacred that wrote the fixtures had
#: no Google Cloud Storage package, so its option was not registered)
LABBOOK_EXTRA_OPTIONS = {"--capture_env", "--no_system_metrics", "--notes", "--queued",
                         "--store", "--tag", "--gcs", "--group", "--resume"}
#: run options only Sacred has (none: labbook has -t/--tiny_db and -S/--s3 too)
SACRED_ONLY_OPTIONS: set[str] = set()
#: option keys spelt differently (none: both write ``--beat-interval`` and ``--print-config``)
OPTION_SPELLING: dict[str, str] = {}
#: metrics labbook logs by itself (system metrics, on unless --no-system-metrics)
SYSTEM_METRIC = re.compile(r"^system\.(cpu_percent|memory_percent|proc_rss_mb|proc_cpu_percent"
                           r"|gpu\.\d+\.(utilization|memory_percent))$")
#: the log lines labbook's captured output includes (its run logger writes to the captured
#: stream; Sacred's handler keeps the original stderr)
LOG_LINE = re.compile(r"^(INFO|WARNING|ERROR) - fixture - .*\n", re.M)
#: how Sacred writes times: datetime.isoformat() of a naive UTC time
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$")
RUN_TIMES = ("start_time", "stop_time", "heartbeat")


def _generator():
    name = "make_sacred_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    """labbook's file store of the fixture experiment: the same three runs as Sacred's."""
    base = tmp_path_factory.mktemp("labbook-twin") / "file_store"
    _generator().record_runs(labbook, FileStorageObserver(str(base)))
    return base


def _files(base: Path) -> set[str]:
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _sacred_text(value) -> str:
    """JSON text as Sacred's FileStorageObserver writes it (json.dump, sort_keys, indent 2)."""
    return json.dumps(value, sort_keys=True, indent=2)


# -- writing: labbook's file store against Sacred's ------------------------------------------------
def test_fixture_is_what_sacred_wrote():
    versions = _json(SACRED / "versions.json")
    assert versions["sacred"] == "0.8.7"
    assert sorted(_files(SACRED_FILES)) == sorted(
        [f"{i}/{n}" for i in RUN_IDS for n in ("config.json", "cout.txt", "info.json",
                                               "metrics.json", "run.json")]
        + ["1/model_weights.bin", "1/notes.txt",
           "_resources/vocab_6c7831c26f0d0a5f807006854aa682f4.txt",
           next(f for f in _files(SACRED_FILES) if f.startswith("_sources/"))])
    total = sum(p.stat().st_size for p in SACRED.rglob("*") if p.is_file())
    assert total < 300_000


def test_layout_and_file_names(twin):
    sacred, ours = _files(SACRED_FILES), _files(twin)
    extra = {f for f in ours - sacred if not f.startswith(LABBOOK_STORE_DIR)}
    assert extra == {f"{i}/{name}" for i in RUN_IDS for name in LABBOOK_EXTRA_RUN_FILES}
    assert sacred <= ours
    source = next(f for f in sacred if f.startswith("_sources/"))
    # one file, named <name>_<md5 of its content>.<ext>, in both stores
    assert re.fullmatch(r"_sources/fixture_experiment_[0-9a-f]{32}\.py", source)
    content = (SACRED_FILES / source).read_bytes()
    assert source == f"_sources/fixture_experiment_{hashlib.md5(content).hexdigest()}.py"
    assert {f for f in ours if f.startswith(("_sources/", "_resources/"))} == {
        f for f in sacred if f.startswith(("_sources/", "_resources/"))}, (
        "the experiment file changed since the fixtures were written: regenerate them "
        "(tests/fixtures/sacred_0_8_7/README.md)")


def test_stored_files_are_byte_identical(twin):
    copies = [name for name in _files(SACRED_FILES)
              if name.startswith(("_sources/", "_resources/"))
              or name in ("1/notes.txt", "1/model_weights.bin")]
    assert len(copies) == 4
    for name in copies:
        assert (twin / name).read_bytes() == (SACRED_FILES / name).read_bytes(), name
    gen = _generator().load_experiment_module()
    assert (twin / "1" / "model_weights.bin").read_bytes() == gen.BINARY_ARTIFACT
    assert (twin / "1" / "notes.txt").read_text(encoding="utf-8") == gen.TEXT_ARTIFACT


@pytest.mark.parametrize("run_id", RUN_IDS)
@pytest.mark.parametrize("name", ["config.json", "info.json"])
def test_config_and_info_are_byte_identical(twin, run_id, name):
    sacred = (SACRED_FILES / run_id / name).read_bytes()
    assert (twin / run_id / name).read_bytes() == sacred
    # the properties that make them identical: sorted keys, indent 2, \u escapes, no newline
    assert b"\\u00e9" in (SACRED_FILES / run_id / "config.json").read_bytes()
    assert not sacred.endswith(b"\n")


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_metrics_json(twin, run_id):
    sacred_text = (SACRED_FILES / run_id / "metrics.json").read_text(encoding="utf-8")
    ours_text = (twin / run_id / "metrics.json").read_text(encoding="utf-8")
    sacred, ours = json.loads(sacred_text), json.loads(ours_text)
    assert ours_text == _sacred_text(ours) and sacred_text == _sacred_text(sacred)
    extra = set(ours) - set(sacred)
    assert all(SYSTEM_METRIC.match(name) for name in extra), extra
    assert set(sacred) <= set(ours) == set(sacred) | extra
    for name, series in sacred.items():
        assert list(ours[name]) == list(series) == ["steps", "timestamps", "values"]
        assert ours[name]["steps"] == series["steps"]
        assert ours[name]["values"] == series["values"]
        assert len(ours[name]["timestamps"]) == len(series["timestamps"])
        for stamp in ours[name]["timestamps"] + series["timestamps"]:
            assert ISO_TIME.match(stamp), stamp
    # the same JSON text once the run-specific times and labbook's system metrics are gone
    stripped = {name: dict(s, timestamps=sacred[name]["timestamps"])
                for name, s in ours.items() if name in sacred}
    assert _sacred_text(stripped) == sacred_text


def test_metric_values_are_the_experiments():
    sacred = _json(SACRED_FILES / "1" / "metrics.json")
    assert sacred["train.loss"]["steps"] == list(range(20))
    assert sacred["accuracy"]["steps"] == list(range(20))
    assert sacred["train.loss"]["values"][-1] == 0.3780412354
    assert len(_json(SACRED_FILES / "2" / "metrics.json")["accuracy"]["steps"]) == 7


def _shape(value):
    """The types and nesting of a JSON value (dict keys kept, list items merged)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in value:
            if _shape(item) not in shapes:
                shapes.append(_shape(item))
        return shapes
    return type(value).__name__


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_run_json(twin, run_id):
    sacred_text = (SACRED_FILES / run_id / "run.json").read_text(encoding="utf-8")
    ours_text = (twin / run_id / "run.json").read_text(encoding="utf-8")
    sacred, ours = json.loads(sacred_text), json.loads(ours_text)
    assert ours_text == _sacred_text(ours) and sacred_text == _sacred_text(sacred)
    assert list(ours) == list(sacred)  # the same keys (sorted in both files)
    assert ours["status"] == sacred["status"] == STATUSES[int(run_id)]
    assert ours["command"] == sacred["command"] == "main"
    assert ours["result"] == sacred["result"]
    assert ours["artifacts"] == sacred["artifacts"]
    for key in RUN_TIMES:
        if sacred[key] is None:
            assert ours[key] is None
        else:
            assert ISO_TIME.match(sacred[key]) and ISO_TIME.match(ours[key]), key

    # experiment: identical but for where it ran and what was imported
    s_exp, o_exp = sacred["experiment"], ours["experiment"]
    assert list(o_exp) == list(s_exp) == ["base_dir", "dependencies", "mainfile", "name",
                                          "repositories", "sources"]
    assert o_exp["name"] == s_exp["name"] == "fixture"
    assert o_exp["mainfile"] == s_exp["mainfile"] == "fixture_experiment.py"
    assert o_exp["sources"] == s_exp["sources"]
    assert Path(o_exp["base_dir"]).name == Path(s_exp["base_dir"]).name == "sacred_experiment"
    for dep in o_exp["dependencies"] + s_exp["dependencies"]:
        assert re.fullmatch(r"[\w.-]+==\S+", dep), dep
    assert o_exp["dependencies"] == sorted(o_exp["dependencies"])
    assert [sorted(r) for r in o_exp["repositories"]] == [
        sorted(r) for r in s_exp["repositories"]] == [["commit", "dirty", "url"]]

    # host: Sacred's entries, plus labbook's documented ones
    assert set(ours["host"]) - set(sacred["host"]) - MACHINE_HOST_KEYS == LABBOOK_EXTRA_HOST_KEYS
    common = set(sacred["host"]) - MACHINE_HOST_KEYS
    assert common <= set(ours["host"])
    assert {k: _shape(ours["host"][k]) for k in common} == {
        k: _shape(sacred["host"][k]) for k in common}

    # meta: the command and the options; the known differences are listed above
    s_meta, o_meta = sacred["meta"], ours["meta"]
    assert o_meta["command"] == s_meta["command"] == "main"
    assert set(o_meta) - set(s_meta) == LABBOOK_EXTRA_META_KEYS
    assert set(s_meta) - set(o_meta) == SACRED_ONLY_META_KEYS
    s_options = {OPTION_SPELLING.get(k, k): v for k, v in s_meta["options"].items()}
    assert set(o_meta["options"]) - set(s_options) == LABBOOK_EXTRA_OPTIONS
    assert set(s_options) - set(o_meta["options"]) == SACRED_ONLY_OPTIONS
    for key in set(s_options) & set(o_meta["options"]):
        assert o_meta["options"][key] == s_options[key], key

    # resources: [the file read, DIR/_resources/<name>_<md5>.<ext>]
    assert len(ours["resources"]) == len(sacred["resources"]) == 1
    (s_name, s_stored), (o_name, o_stored) = sacred["resources"][0], ours["resources"][0]
    # the file read, where each experiment ran (the fixture was written in another checkout)
    assert os.path.relpath(o_name, o_exp["base_dir"]) == \
        os.path.relpath(s_name, s_exp["base_dir"]) == "vocab.txt"
    assert os.path.isabs(s_stored) and os.path.isabs(o_stored)
    assert os.path.relpath(o_stored, twin) == "_resources/" + Path(s_stored).name
    assert Path(s_stored).parent.name == "_resources"

    if "fail_trace" in sacred:
        # labbook leaves its own frames out of the trace; Sacred shows one of its own
        s_trace, o_trace = sacred["fail_trace"], ours["fail_trace"]
        assert o_trace[0] == s_trace[0] == "Traceback (most recent call last):\n"
        assert o_trace[-1] == s_trace[-1] == "RuntimeError: diverged at step 7\n"
        assert o_trace[-2] == s_trace[-2].replace(s_exp["base_dir"], o_exp["base_dir"])
    # the whole document has the same types and nesting once the lists that differ above
    # (dependencies, trace frames) and labbook's extra entries are set aside
    for doc in (ours, sacred):
        doc["experiment"]["dependencies"] = []
        for repository in doc["experiment"]["repositories"]:
            repository["url"] = None  # Sacred: "git:/<dir>" without a remote, labbook: null
        doc.pop("fail_trace", None)
        for key in LABBOOK_EXTRA_HOST_KEYS | MACHINE_HOST_KEYS:
            doc["host"].pop(key, None)
        doc["meta"] = {"command": doc["meta"]["command"]}
    assert _shape(ours) == _shape(sacred)


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_captured_output(twin, run_id):
    sacred = (SACRED_FILES / run_id / "cout.txt").read_text(encoding="utf-8")
    ours = (twin / run_id / "cout.txt").read_text(encoding="utf-8")
    printed = LOG_LINE.sub("", ours)
    if run_id == "1":
        assert printed == sacred
        assert sacred.startswith("vocabulary: alpha beta gamma\n") and sacred.endswith("done\n")
    else:
        # Sacred (capture "sys") loses the output of a run that does not complete
        assert sacred == ""
        assert printed.startswith("vocabulary: alpha beta gamma\n")


# -- reading a file store written by Sacred --------------------------------------------------------
def _snapshot(base: Path) -> dict[str, tuple]:
    return {p.relative_to(base).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in base.rglob("*")}


def _refuse_writes(monkeypatch, base: Path) -> None:
    """Make every write under ``base`` fail with PermissionError, as on a read-only mount
    (chmod alone does not stop root, who may be running the tests)."""
    root = str(base) + os.sep

    def inside(path) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root)
        except TypeError:  # a file descriptor
            return False

    def refuse(path):
        raise PermissionError(13, "Read-only file system (test)", os.fsdecode(path))

    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    real_os_open = os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def guarded_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & writing:
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name in ("mkdir", "replace", "rename", "unlink", "remove", "rmdir", "utime"):
        real = getattr(os, name)

        def guarded(path, *args, _real=real, **kwargs):
            if inside(path):
                refuse(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)


@pytest.fixture
def sacred_store(tmp_path, monkeypatch):
    """A read-only copy of Sacred's file store: reading must not need to write anything."""
    base = tmp_path / "sacred_runs"
    shutil.copytree(SACRED_FILES, base)
    paths = [base, *base.rglob("*")]
    for path in paths:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(base)
    _refuse_writes(monkeypatch, base)
    yield base
    monkeypatch.undo()
    assert _snapshot(base) == before, "reading wrote into the store"
    for path in paths:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _check_read_api(api: labbook.Api, tmp_path: Path) -> None:
    runs = api.runs()
    assert [r.id for r in runs] == [3, 2, 1]  # newest first
    assert {r.id: r.status for r in runs} == STATUSES
    assert api.experiments() == ["fixture"]
    run = api.run(1)
    assert run.config["lr"] == 0.1 and run.config["label"] == "café"
    assert run.config["optimizer"]["schedule"] == {"decay": 0.5, "every": 5}
    assert run.config["pretrained"] is None and run.config["tiny"] == 1e-08
    assert run.result == 0.621959
    assert run.info["phase"] == {"name": "train", "flags": [True, None, 1.5]}
    assert run.meta["named_configs"] == ["fast"]
    assert isinstance(run.start_time, _dt.datetime) and run.start_time <= run.stop_time
    assert run.experiment["name"] == "fixture"

    # filters, Mongo-style and as text
    assert [r.id for r in api.runs({"config.lr": {"$gt": 0.05}})] == [1]
    assert [r.id for r in api.runs("config.lr > 0.05")] == [1]
    assert [r.id for r in api.runs("status = 'FAILED'")] == [2]
    assert [r.id for r in api.runs({"config.optimizer.name": "sgd"}, order="_id")] == [1, 2, 3]

    # metrics
    sacred_metrics = _json(SACRED_FILES / "1" / "metrics.json")
    assert run.metrics == ["accuracy", "train.loss"]
    rows = run.history(samples=None, pandas=False)
    assert [r["_step"] for r in rows] == list(range(20))
    assert [r["train.loss"] for r in rows] == sacred_metrics["train.loss"]["values"]
    assert [r["accuracy"] for r in rows] == sacred_metrics["accuracy"]["values"]
    assert run.summary == {"accuracy": sacred_metrics["accuracy"]["values"][-1],
                           "train.loss": 0.3780412354}
    assert len(api.run(2).history(samples=None, pandas=False)) == 7
    assert len(api.run(3).history(samples=None, pandas=False)) == 3

    # artifacts and sources
    gen = _generator().load_experiment_module()
    assert [f.name for f in run.files()] == ["notes.txt", "model_weights.bin"]
    target = run.file("model_weights.bin").download(tmp_path / "download")
    assert Path(target).read_bytes() == gen.BINARY_ARTIFACT
    assert run.file("notes.txt").read_bytes() == gen.TEXT_ARTIFACT.encode("utf-8")
    assert api.run(2).files() == []
    (source,) = run.sources
    assert source.name == "fixture_experiment.py"
    assert "def build(framework):" in source.read_text()
    assert "RuntimeError: diverged at step 7" in api.run(2).fail_trace

    # one table of all runs
    frame = api.runs(order="_id").to_dataframe()
    assert frame["id"].tolist() == [1, 2, 3]
    assert frame["status"].tolist() == ["COMPLETED", "FAILED", "INTERRUPTED"]
    assert frame["config.lr"].tolist() == [0.1, 0.01, 0.01]
    assert frame["summary.train.loss"].tolist()[0] == 0.3780412354


def test_read_api_on_sacred_file_store(sacred_store, tmp_path):
    with pytest.raises(PermissionError):  # the store really is read-only here
        (sacred_store / "probe.txt").write_text("x")
    api = labbook.Api(str(sacred_store))
    _check_read_api(api, tmp_path)
    (resource,) = api.run(1).resources
    assert resource.name.endswith("vocab.txt") and resource.read_text() == "alpha\nbeta\ngamma\n"
    # Sacred recorded the copy under the directory it wrote to; the copy here still reads
    assert str(SACRED_FILES) not in (resource.location or "")
    for view in api.runs():
        assert [r.read_text() for r in view.resources] == ["alpha\nbeta\ngamma\n"]
    assert api.run(1).captured_out == (SACRED_FILES / "1" / "cout.txt").read_text()
    api.close()


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_cli(capsys, store: str) -> None:
    code, out, err = _cli(capsys, "ls", "--store", store)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "START", "DURATION", "RESULT"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["3", "fixture", "INTERRUPTED"], ["2", "fixture", "FAILED"], ["1", "fixture", "COMPLETED"]]
    assert lines[3].split()[-1] == "0.621959"
    code, out, err = _cli(capsys, "ls", "--store", store, "--filter", "config.lr > 0.05")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1"]
    code, out, err = _cli(capsys, "show", "2", "--store", store)
    assert (code, err) == (0, "")
    assert out.startswith("Run 2 of fixture (main): FAILED\n")
    for expected in ("    lr = 0.01\n", "    label = 'café'\n", "    fail_at = 7\n",
                     "    train.loss = 0.9415039242  (7 points)\n",
                     "    RuntimeError: diverged at step 7\n"):
        assert expected in out


def test_cli_on_sacred_file_store(sacred_store, capsys):
    _check_cli(capsys, str(sacred_store))


# -- reading a MongoDB database written by Sacred --------------------------------------------------
@pytest.fixture
def sacred_mongo(mongo_server, mongo_db, mongo_url):  # noqa: F811 (fixtures)
    """Sacred's exported collections loaded into a fresh database; its URL."""
    from bson import json_util

    client = mongo_server.client()
    try:
        for path in sorted(SACRED_MONGO.glob("*.json")):
            docs = json_util.loads(path.read_text(encoding="utf-8"))
            client[mongo_db][path.stem].insert_many(docs)
    finally:
        client.close()
    return mongo_url


def test_mongo_fixture_collections():
    from bson import json_util

    names = sorted(p.stem for p in SACRED_MONGO.glob("*.json"))
    assert names == ["fs.chunks", "fs.files", "metrics", "runs"]
    runs = json_util.loads((SACRED_MONGO / "runs.json").read_text(encoding="utf-8"))
    assert [r["_id"] for r in runs] == [1, 2, 3]
    assert {r["format"] for r in runs} == {"MongoObserver-0.7.0"}
    assert [r["status"] for r in runs] == ["COMPLETED", "FAILED", "INTERRUPTED"]
    assert [a["name"] for a in runs[0]["artifacts"]] == ["notes.txt", "model_weights.bin"]


def test_read_api_on_sacred_mongo(sacred_mongo, tmp_path):
    api = labbook.Api(sacred_mongo)
    try:
        _check_read_api(api, tmp_path)
        run = api.run(1)
        # Sacred's MongoObserver stores the output in the run document
        assert run.captured_out.startswith("vocabulary: alpha beta gamma\n")
        # resources are recorded as [path, md5]: Sacred 0.8.7 with pymongo 4 keeps no copy
        (resource,) = run.resources
        assert resource.stored == "6c7831c26f0d0a5f807006854aa682f4"
    finally:
        api.close()


def test_cli_on_sacred_mongo(sacred_mongo, capsys):
    _check_cli(capsys, sacred_mongo)


# -- writing: labbook's MongoDB documents against Sacred's -----------------------------------------
#: keys of labbook's metric documents that Sacred's do not have (the document's number in the
#: series, its count of points and the token that makes a repeated append harmless)
LABBOOK_EXTRA_METRIC_KEYS = {"bucket", "labbook_batch", "labbook_n", "labbook_counted"}
#: what labbook keeps in a run document besides Sacred's fields: each metric's last value
LABBOOK_EXTRA_RUN_KEYS = {"labbook_last"}
#: labbook records the md5 of sources and resources in GridFS to store each content once
LABBOOK_EXTRA_FILE_KEYS = {"md5"}
#: lines Sacred's MongoObserver prints into the captured output itself
SACRED_CONTENT_TYPE_LINE = re.compile(r"^Added \S+ as content-type of artifact .*\n", re.M)


def _bson_shape(value):
    """Like :func:`_shape`, for BSON values (datetimes and ObjectIds keep their type)."""
    if isinstance(value, dict):
        return {k: _bson_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in value:
            if _bson_shape(item) not in shapes:
                shapes.append(_bson_shape(item))
        return shapes
    return type(value).__name__


def _sacred_collection(name: str) -> list[dict]:
    from bson import json_util

    return json_util.loads((SACRED_MONGO / f"{name}.json").read_text(encoding="utf-8"))


def test_mongo_documents_match_sacreds(mongo_server, mongo_db, mongo_url):  # noqa: F811
    import gridfs

    from labbook.observers.mongo import MongoObserver

    _generator().record_runs(labbook, MongoObserver(url=mongo_url))
    client = mongo_server.client()
    try:
        db = client[mongo_db]
        ours = list(db["runs"].find().sort("_id", 1))
        metrics = list(db["metrics"].find())
        files = {f["_id"]: f for f in db["fs.files"].find()}
        fs = gridfs.GridFS(db)
        contents = {file_id: fs.get(file_id).read() for file_id in files}
    finally:
        client.close()
    sacred = _sacred_collection("runs")
    s_metrics = _sacred_collection("metrics")
    s_files = {f["_id"]: f for f in _sacred_collection("fs.files")}
    gen = _generator().load_experiment_module()

    assert [r["_id"] for r in ours] == [r["_id"] for r in sacred] == [1, 2, 3]
    for o_run, s_run in zip(ours, sacred):
        # Sacred's fields in Sacred's order; labbook adds only its summary of the run
        assert [k for k in o_run if k not in LABBOOK_EXTRA_RUN_KEYS] == list(s_run)
        assert set(o_run) - set(s_run) <= LABBOOK_EXTRA_RUN_KEYS
        assert o_run["format"] == s_run["format"] == "MongoObserver-0.7.0"
        assert o_run["status"] == s_run["status"] and o_run["result"] == s_run["result"]
        assert o_run["config"] == s_run["config"]
        assert o_run["experiment"]["sources"][0][0] == s_run["experiment"]["sources"][0][0]
        # [path read, md5]; the path where each experiment ran
        assert [[os.path.relpath(name, o_run["experiment"]["base_dir"]), md5]
                for name, md5 in o_run["resources"]] == \
            [[os.path.relpath(name, s_run["experiment"]["base_dir"]), md5]
             for name, md5 in s_run["resources"]]
        assert [a["name"] for a in o_run["artifacts"]] == [a["name"] for a in s_run["artifacts"]]

        # info.metrics links each series to its document, as Omniboard expects
        o_refs, s_refs = o_run["info"]["metrics"], s_run["info"]["metrics"]
        o_names = [r["name"] for r in o_refs]
        assert [n for n in o_names if not SYSTEM_METRIC.match(n)] == [r["name"] for r in s_refs]
        by_id = {str(m["_id"]): m for m in metrics}
        for ref in o_refs:
            assert by_id[ref["id"]]["run_id"] == o_run["_id"]
            assert by_id[ref["id"]]["name"] == ref["name"]
        for s_metric in (m for m in s_metrics if m["run_id"] == s_run["_id"]):
            (o_metric,) = [m for m in metrics if m["run_id"] == s_run["_id"]
                           and m["name"] == s_metric["name"]]
            assert set(o_metric) - set(s_metric) == LABBOOK_EXTRA_METRIC_KEYS
            assert o_metric["steps"] == s_metric["steps"]
            assert o_metric["values"] == s_metric["values"]
            assert {type(t) for t in o_metric["timestamps"] + s_metric["timestamps"]} == {
                _dt.datetime}

        # artifacts: the same GridFS file names, content types, metadata and bytes
        for o_art, s_art in zip(o_run["artifacts"], s_run["artifacts"]):
            o_file, s_file = files[o_art["file_id"]], s_files[s_art["file_id"]]
            assert o_file["filename"] == s_file["filename"] == (
                f"artifact://runs/{o_run['_id']}/{o_art['name']}")
            for key in ("contentType", "metadata", "length", "chunkSize"):
                assert o_file[key] == s_file[key], key
        o_source = files[o_run["experiment"]["sources"][0][1]]
        s_source = s_files[s_run["experiment"]["sources"][0][1]]
        assert set(o_source) - set(s_source) == LABBOOK_EXTRA_FILE_KEYS
        assert Path(o_source["filename"]).name == Path(s_source["filename"]).name
        assert o_source["length"] == s_source["length"]

        # the rest: the same types and nesting once the known differences are set aside
        for run in (o_run, s_run):
            run["experiment"]["dependencies"] = []
            for repository in run["experiment"]["repositories"]:
                repository["url"] = None
            run.pop("fail_trace", None)
            for key in LABBOOK_EXTRA_RUN_KEYS:
                run.pop(key, None)
            for key in LABBOOK_EXTRA_HOST_KEYS | MACHINE_HOST_KEYS:
                run["host"].pop(key, None)
            run["meta"] = {"command": run["meta"]["command"]}
            run["info"]["metrics"] = run["info"]["metrics"][:1]
        assert _bson_shape(o_run) == _bson_shape(s_run)

    # output: what the run printed, without either framework's own lines
    printed = LOG_LINE.sub("", ours[0]["captured_out"])
    assert printed == SACRED_CONTENT_TYPE_LINE.sub("", sacred[0]["captured_out"])
    assert printed.startswith("vocabulary: alpha beta gamma\n")
    artifact_bytes = [contents[a["file_id"]] for a in ours[0]["artifacts"]]
    assert artifact_bytes == [gen.TEXT_ARTIFACT.encode("utf-8"), gen.BINARY_ARTIFACT]
    # labbook keeps the resource's content (Sacred 0.8.7 with pymongo 4 records only its md5)
    (resource,) = [f for f in files.values() if f["filename"].endswith("vocab.txt")]
    assert contents[resource["_id"]] == b"alpha\nbeta\ngamma\n"
    assert not [f for f in s_files.values() if f["filename"].endswith("vocab.txt")]
