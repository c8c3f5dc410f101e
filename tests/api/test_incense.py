"""incense (0.0.15), the notebook reader Sacred users use, reads what labbook records.

incense depends on ``sacred`` and ``jupyterlab``, so it is not a test dependency: it runs in a
side venv, ``.venv-incense`` at the repository root (or ``$LABBOOK_INCENSE_VENV``), made on
first use with ``pip install --no-deps incense==0.0.15`` and the packages it imports
(``sacred==0.8.7``, pandas, pymongo, jsonpickle, pyrsistent, IPython). Without a package
registry the tests skip and say why (they fail with ``LABBOOK_TEST_REQUIRE_SERVERS=1``).

labbook records runs into a MongoDB database (the mongoeco test server) and a file store; a
script in the side venv reads them with ``ExperimentLoader`` and ``FileSystemExperimentLoader``
and prints what incense gives as JSON, which the tests compare with what was recorded, and
with what incense gives for the same experiment recorded by Sacred 0.8.7 itself.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from labbook import Experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.environ.get("LABBOOK_INCENSE_VENV") or os.path.join(ROOT, ".venv-incense")
PACKAGES = ["sacred==0.8.7", "setuptools<81", "numpy", "pandas", "pymongo", "jsonpickle",
            "pyrsistent", "ipython"]
CSV = "epoch,loss\n1,0.5\n2,0.25\n"

# Runs in the side venv: argv[1] is a JSON job; prints what incense read, as JSON.
READER = r"""
import json, sys, tempfile, os
job = json.loads(sys.argv[1])
from pyrsistent import thaw


def series(s):
    return {"name": s.name, "index_name": s.index.name, "steps": [int(i) for i in s.index],
            "values": [float(v) for v in s.values]}


def describe(exp, artifacts):
    out = {"id": exp.id, "name": exp.experiment.name, "status": exp.status,
           "config": thaw(exp.config), "info": thaw(exp.info),
           "captured_out": exp.captured_out,
           "metrics": {k: series(v) for k, v in exp.metrics.items()}}
    if artifacts:
        out["artifacts"] = {}
        for name, a in exp.artifacts.items():
            out["artifacts"][name] = {"type": type(a).__name__, "content_type": a.content_type,
                                      "bytes": len(a.content)}
            a.file.seek(0)  # incense reads .content and render() from the same stream
    return out


result = {}
if job.get("mongo"):
    from incense import ExperimentLoader
    loader = ExperimentLoader(mongo_uri=job["mongo"], db_name=job["db"])
    first = loader.find_by_id(job["ids"][0])
    result["mongo"] = describe(first, True)
    result["result"] = first.result
    arts = first.artifacts
    result["csv"] = arts["table.csv"].render().to_dict(orient="list")
    result["pickle"] = arts["model.pkl"].as_type(
        __import__("incense.artifact", fromlist=["PickleArtifact"]).PickleArtifact).render()
    target = tempfile.mkdtemp()
    arts["curve.png"].save(to_dir=target)
    result["saved"] = sorted(os.listdir(target))
    result["by_lr"] = [e.id for e in loader.find_by_config_key("lr", 0.2)]
    result["by_optimizer"] = sorted(e.id for e in loader.find_by_config_key("optimizer", "ad"))
    result["by_nested"] = sorted(e.id for e in loader.find_by_config_key("layers.n", 2))
    result["by_name"] = sorted(e.id for e in loader.find_by_name("incense_"))
    result["all"] = sorted(e.id for e in loader.find_all())
    result["latest"] = loader.find_latest().id
    result["found"] = [e.id for e in loader.find({"status": "COMPLETED", "config.lr": 0.1})]
    frame = loader.find_all().project(on=["config.lr", "config.optimizer",
                                          {"metrics.loss": min}, "result"])
    frame = frame.reset_index()
    result["project"] = {str(k): json.loads(frame[k].to_json(orient="values")) for k in frame}
if job.get("file_dir"):
    from incense import FileSystemExperimentLoader
    floader = FileSystemExperimentLoader(job["file_dir"])
    exp = floader.find_by_id(job["file_id"])
    result["file"] = describe(exp, False)
    result["file"]["artifact_names"] = sorted(exp.artifacts)
    result["file"]["result"] = exp.result
print(json.dumps(result))
"""


# The same experiment for Sacred and labbook: argv[1] is a JSON job naming the package, the
# MongoDB server and database, and the folder of the artifact files.
RECORDER = r"""
import importlib, json, sys
job = json.loads(sys.argv[1])
package = importlib.import_module(job["package"])
Experiment = package.Experiment
# Sacred's fd capture reads its tee process's file after waiting at most a second, which a
# busy machine exceeds; sys capture holds every printed line in both frameworks
package.SETTINGS.CAPTURE_MODE = "sys"
MongoObserver = importlib.import_module(job["package"] + ".observers").MongoObserver
ex = Experiment("incense_exp")
ex.observers.append(MongoObserver(url=job["url"], db_name=job["db"]))
ex.add_config(lr=0.1, optimizer="adam", layers={"n": 2, "act": "relu"})


@ex.main
def main(lr, _run):
    for step in range(3):
        _run.log_scalar("loss", lr / (step + 1), step * 10)
    _run.log_scalar("accuracy", 0.75)
    _run.info["best"] = {"epoch": 2, "loss": lr / 3}
    for name in ("table.csv", "model.pkl", "curve.png"):
        _run.add_artifact(job["files"] + "/" + name)
    print(f"training with lr={lr}")
    return lr * 10


ex.run()
ex.run(config_updates={"lr": 0.2, "optimizer": "sgd"})
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def incense_python() -> str:
    """The side venv's interpreter, made on first use."""
    python = os.path.join(VENV, "bin", "python")
    check = [python, "-c", "import incense, sacred, pandas, IPython"]
    if os.path.exists(python) and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    steps = [[sys.executable, "-m", "venv", VENV],
             [python, "-m", "pip", "install", "-q", "--no-deps", "incense==0.0.15"],
             [python, "-m", "pip", "install", "-q", *PACKAGES]]
    for step in steps:
        try:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"cannot make the incense venv {VENV}: {exc}")
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            _unavailable(f"cannot make the incense venv {VENV} ({' '.join(step[2:4])}): {last}")
    return python


def _write_files(files_dir, make_png) -> tuple:
    table = files_dir / "table.csv"
    table.write_text(CSV)
    model = files_dir / "model.pkl"
    model.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    png = files_dir / "curve.png"
    png.write_bytes(make_png())
    return table, model, png


def _record(url: str, files_dir, make_png) -> list[int]:
    """Two runs: config with a nested dict, metrics, info, printed output, three artifacts."""
    ex = Experiment("incense_exp")
    ex.add_config(lr=0.1, optimizer="adam", layers={"n": 2, "act": "relu"})
    table, model, png = _write_files(files_dir, make_png)

    @ex.main
    def main(lr, _run):
        for step in range(3):
            _run.log_scalar("loss", lr / (step + 1), step * 10)
        _run.log_scalar("accuracy", 0.75)
        _run.info["best"] = {"epoch": 2, "loss": lr / 3}
        for path in (table, model, png):
            _run.add_artifact(str(path))
        print(f"training with lr={lr}")
        return lr * 10

    first = ex.run(options={"--store": url})
    second = ex.run(config_updates={"lr": 0.2, "optimizer": "sgd"}, options={"--store": url})
    return [first._id, second._id]


def _read(python: str, job: dict) -> dict:
    proc = subprocess.run([python, "-c", READER, json.dumps(job)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _check_run(seen: dict, run_id: int) -> None:
    assert seen["id"] == run_id and seen["name"] == "incense_exp"
    assert seen["status"] == "COMPLETED"
    assert seen["config"] == {"lr": 0.1, "optimizer": "adam", "layers": {"n": 2, "act": "relu"},
                              "seed": seen["config"]["seed"]}
    assert isinstance(seen["config"]["seed"], int)
    info = dict(seen["info"])
    links = info.pop("metrics", None)  # MongoDB: Sacred's links to the metric documents
    assert info == {"best": {"epoch": 2, "loss": 0.1 / 3}}
    if links is not None:
        assert {link["name"] for link in links} == set(seen["metrics"])
    # the user's metrics, and labbook's sampled system.* metrics (--no-system-metrics: none)
    assert {"loss", "accuracy"} <= set(seen["metrics"])
    assert all(name.startswith("system.") for name in set(seen["metrics"]) - {"loss", "accuracy"})
    assert "training with lr=0.1" in seen["captured_out"]
    # metrics: one pandas Series per name, indexed by step
    loss = seen["metrics"]["loss"]
    assert loss == {"name": "loss", "index_name": "step", "steps": [0, 10, 20],
                    "values": [0.1, 0.05, 0.1 / 3]}
    assert seen["metrics"]["accuracy"]["steps"] == [0]
    assert seen["metrics"]["accuracy"]["values"] == [0.75]


def _server_and_db(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}/" + (f"?{parts.query}" if parts.query else "")
    return base, parts.path.strip("/")


def _read_mongo(python: str, url: str, ids: list[int]) -> dict:
    base, db = _server_and_db(url)
    return _read(python, {"mongo": base, "db": db, "ids": ids})


def test_incense_reads_a_labbook_mongodb_store(incense_python, request, tmp_path, make_png):
    url = request.getfixturevalue("server_databases").new("mongo", request)
    ids = _record(url, tmp_path, make_png)
    seen = _read_mongo(incense_python, url, ids)

    run = seen["mongo"]
    _check_run(run, ids[0])
    assert seen["result"] == 1.0
    # artifacts come out of GridFS with Sacred's content types, as incense's classes
    assert run["artifacts"] == {
        "table.csv": {"type": "CSVArtifact", "content_type": "text/csv", "bytes": len(CSV)},
        "model.pkl": {"type": "Artifact", "content_type": None, "bytes": len(
            pickle.dumps({"weights": [1, 2, 3]}))},
        "curve.png": {"type": "ImageArtifact", "content_type": "image/png",
                      "bytes": len(make_png())},
    }
    assert seen["csv"] == {"epoch": [1, 2], "loss": [0.5, 0.25]}
    assert seen["pickle"] == {"weights": [1, 2, 3]}
    assert seen["saved"] == [f"{ids[0]}_curve.png"]  # incense names it from the GridFS name
    # the finders query the run documents as Sacred writes them
    assert seen["by_lr"] == [ids[1]]
    assert seen["by_optimizer"] == [ids[0]]
    assert seen["by_nested"] == ids
    assert seen["by_name"] == ids and seen["all"] == ids
    assert seen["latest"] == ids[1]
    assert seen["found"] == [ids[0]]
    project = seen["project"]
    assert project["exp_id"] == ids
    assert project["lr"] == [0.1, 0.2] and project["optimizer"] == ["adam", "sgd"]
    assert project["loss_min"] == pytest.approx([0.1 / 3, 0.2 / 3])  # JSON: 10 digits
    assert project["result"] == [1.0, 2.0]


def test_incense_reads_a_labbook_file_store(incense_python, tmp_path, make_png):
    runs = tmp_path / "runs"
    ids = _record(f"file://{runs}", tmp_path, make_png)
    seen = _read(incense_python, {"file_dir": str(runs), "file_id": ids[0]})["file"]
    _check_run(seen, ids[0])
    assert seen["result"] == 1.0
    # incense lists every plain file of the run directory that is not one of Sacred's own
    # records; labbook's metrics.jsonl (the points as they arrived) is one of them
    assert seen["artifact_names"] == ["curve.png", "info.json", "metrics.jsonl", "model.pkl",
                                      "table.csv"]


def _comparable(seen: dict) -> dict:
    """What incense read, without what differs from run to run (seeds, metric document ids)
    and labbook's sampled system.* metrics."""
    out = json.loads(json.dumps(seen))
    run = out["mongo"]
    run["config"].pop("seed")
    run["info"]["metrics"] = sorted(link["name"] for link in run["info"]["metrics"]
                                    if not link["name"].startswith("system."))
    run["metrics"] = {k: v for k, v in run["metrics"].items() if not k.startswith("system.")}
    assert "training with lr=0.1" in run.pop("captured_out")  # labbook's has its log lines too
    return out


def test_incense_reads_labbook_runs_as_it_reads_sacreds(incense_python, request, tmp_path,
                                                        make_png):
    """The same experiment recorded by Sacred 0.8.7 (in the incense venv) and by labbook, into
    two databases: incense gives the same answers for both."""
    _write_files(tmp_path, make_png)
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    seen = {}
    for package, python in (("sacred", incense_python), ("labbook", sys.executable)):
        url = request.getfixturevalue("server_databases").new("mongo", request)
        base, db = _server_and_db(url)
        job = {"package": package, "url": base, "db": db, "files": str(tmp_path)}
        env = dict(os.environ, PYTHONPATH=ROOT)
        env.pop("LABBOOK_STORE", None)
        proc = subprocess.run([python, str(script), json.dumps(job)], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        seen[package] = _comparable(_read_mongo(incense_python, url, [1, 2]))
    assert seen["labbook"] == seen["sacred"]
    assert seen["sacred"]["by_lr"] == [2] and seen["sacred"]["csv"]["epoch"] == [1, 2]
