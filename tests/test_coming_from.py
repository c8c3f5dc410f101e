"""Each call that docs/coming_from.md maps, written in the style of the tool it comes from."""
from __future__ import annotations

import io
import json
import os

import pytest

import labbook
from labbook import Api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def no_leftover_run():
    yield
    from labbook import imperative

    for run in list(imperative._started):
        run.finish()


def values(got, key):
    frame = got.history(key, samples=None)
    return list(frame["_step"]), list(frame[key])


def test_the_coming_from_page_lists_only_calls_that_exist():
    with open(os.path.join(ROOT, "docs", "coming_from.md"), encoding="utf-8") as fh:
        page = fh.read()
    import re

    for name in set(re.findall(r"`labbook\.(\w+)", page)):
        assert hasattr(labbook, name), f"docs/coming_from.md names labbook.{name}"


def test_wandb_style(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("lr: 0.01\nbatch: 64\n")
    store = str(tmp_path / "runs")
    with labbook.init(project="mnist", config=str(config_file), name="run-a",
                      tags=["baseline"], notes="first", group="cv", job_type="train",
                      id=101, store=store) as run:
        assert labbook.current_run() is run
        assert run.config["lr"] == 0.01 and run.config["batch"] == 64
        for step in range(3):
            labbook.log({"loss": 1.0 / (step + 1)}, step=step, commit=False)
            run.log({"acc": step / 10})
        run.summary["best_acc"] = 0.2
    second = labbook.init(project="mnist", store=store, reinit=True)
    labbook.finish(exit_code=1)
    assert second.status == "FAILED"
    runs = {r.id: r for r in Api(store).runs()}
    got = runs[101]
    assert got.status == "COMPLETED" and got.experiment["name"] == "mnist"
    assert got.name == "run-a" and got.tags == ["baseline"] and got.notes == "first"
    assert got.meta["group"] == "cv" and got.meta["job_type"] == "train"
    assert values(got, "loss") == ([0, 1, 2], [1.0, 0.5, 1 / 3])
    assert values(got, "acc") == ([0, 1, 2], [0.0, 0.1, 0.2])
    assert got.summary["best_acc"] == 0.2
    assert Api(store).runs(filters={"state": "failed"})[0].id == second._id


def test_wandb_style_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "runs")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("1")
    with labbook.init(project="mnist", store=store) as run:
        logged = run.log_artifact("model", name="model", type="model", aliases=["best"])
        (tmp_path / "model" / "weights.txt").write_text("2")
        labbook.log_artifact("model", name="model", type="model")
    with labbook.init(project="mnist", job_type="eval", store=store, reinit=True) as user:
        path = labbook.use_artifact("model:best").download()
    assert open(os.path.join(path, "weights.txt")).read() == "1"
    best = Api(store).artifact("model:v0")
    assert best.aliases == ["best"] and best.digest == logged.digest
    assert [r.id for r in best.logged_by()] == [run._id]
    assert [r.id for r in best.used_by()] == [user._id]


def test_mlflow_style(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = str(tmp_path / "runs")
    model = tmp_path / "model.txt"
    model.write_text("weights")
    run = labbook.start_run(name="mlflow-like", tags=["sweep"], store=store)
    labbook.log_param("alpha", 0.5)
    labbook.log_params({"l1": 0.1, "solver": "saga"})
    labbook.log_metric("rmse", 0.8, step=10)
    labbook.log_metrics({"rmse": 0.7, "mae": 0.5}, step=20)
    labbook.set_tag("stage", "dev")
    labbook.set_tags({"team": "vision", "gpu": "none"})
    labbook.save_artifact(str(model))
    labbook.log_text("free text", "notes.txt")
    labbook.log_dict({"k": 1}, "d.json")  # MLflow's order
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    labbook.log_figure(fig, "f.png")
    plt.close(fig)
    labbook.log_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "i.png")
    assert labbook.current_run() is run
    labbook.end_run(status="FINISHED")
    killed = labbook.start_run(store=store)
    labbook.end_run(status="KILLED")
    failed = labbook.start_run(store=store)
    with pytest.raises(labbook.LabbookError, match=r"end_run status must be FINISHED, FAILED "
                                                   r"or KILLED, not 'DONE'"):
        labbook.end_run(status="DONE")
    labbook.end_run(status="FAILED")
    assert (killed.status, failed.status) == ("INTERRUPTED", "FAILED")
    got = Api(store).run(run._id)
    assert got.status == "COMPLETED"
    assert got.info["params"] == {"alpha": 0.5, "l1": 0.1, "solver": "saga"}
    assert values(got, "rmse") == ([10, 20], [0.8, 0.7])
    assert values(got, "mae") == ([20], [0.5])
    assert got.info["tags"] == {"stage": "dev", "team": "vision", "gpu": "none"}
    assert sorted(got.artifacts) == ["d.json", "f.png", "i.png", "model.txt", "notes.txt"]
    assert json.loads(got.file("d.json").read_bytes()) == {"k": 1}
    assert [r.id for r in Api(store).runs("info.params.solver = 'saga'")] == [run._id]


def test_foundations_style(tmp_path):
    store = str(tmp_path / "runs")
    plot = tmp_path / "train_val_loss.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    with labbook.start_run("atlas-project", config={"learning_rate": 0.125, "layers": [5, 6]},
                           store=store):
        params = labbook.load_parameters()
        assert params["learning_rate"] == 0.125 and params["layers"] == [5, 6]
        labbook.log_param("learning rate", 0.001)
        labbook.log_params({"batch_size": 32, "epochs": 75})
        labbook.log_metric("accuracy", 0.90)
        labbook.log_metric("accuracy", 0.93)
        labbook.set_tag("model", "cnn")
        labbook.save_artifact(str(plot), "Loss_Curve")
        with pytest.raises(TypeError, match=r"Parameter 'f' has a value of type function"):
            labbook.log_param("f", lambda: 0)
    got = Api(store).runs()[0]
    assert values(got, "accuracy") == ([0, 1], [0.90, 0.93])
    assert got.info["params"] == {"learning rate": 0.001, "batch_size": 32, "epochs": 75}
    assert got.artifacts == ["Loss_Curve.png"]
    frame = labbook.get_metrics_for_all_jobs("atlas-project", store=store)
    assert list(frame["accuracy"]) == [0.93]


def test_experiment_results_manager_style(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = "memory://erm-registry-" + os.urandom(4).hex()
    pytest.importorskip("fsspec")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    runs = []
    for variant, rmse in (("main", "0.9"), ("bigger", "0.7")):
        with labbook.start_run("my_experiment", variant=variant, store=store) as run:
            labbook.log_param("objective", "rmse")
            labbook.log_params({"depth": 3})
            labbook.log_metric("rmse", rmse)
            labbook.log_metrics({"mae": 0.4})
            labbook.log_figure(fig, "ROC Curve")
            labbook.log_image(io.BytesIO(b"GIF89a" + bytes(10)).getvalue(), "img")
            labbook.log_text("lorem ipsum...", "text")
            labbook.log_dict("d", {"a": 1})
        runs.append(run)
    plt.close(fig)
    api = Api(store)
    back = api.runs(order="start_time")
    assert [r.meta["variant"] for r in back] == ["main", "bigger"]
    # the registry view: experiments, variants, the latest run of each
    assert api.experiments() == ["my_experiment"]
    assert api.variants("my_experiment") == ["bigger", "main"]
    assert api.latest("my_experiment", variant="main").id == runs[0]._id
    assert api.latest("my_experiment").id == runs[1]._id
    assert [r.id for r in api.runs({"variant": "bigger"})] == [runs[1]._id]
    with pytest.raises(labbook.LabbookError, match=r"No run of experiment 'my_experiment', "
                                                   r"variant 'small' in memory://"):
        api.latest("my_experiment", variant="small")
    assert values(back[1], "rmse") == ([0], [0.7])
    assert sorted(back[0].artifacts) == ["ROC Curve.png", "d.json", "img.gif", "text.txt"]
    html = labbook.compare_runs(back)
    assert "<html" in html.lower() and "bigger" in html


def test_wandb_config_update_before_training(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.init(project="p", config={"lr": 0.1}, store=store) as run:
        run.config.update({"batch": 32})
        run.config["lr"] = 0.2
        labbook.log({"loss": 1.0})
    got = Api(store).runs()[0]
    assert (got.config["lr"], got.config["batch"]) == (0.2, 32)


def test_wandb_save_restore_and_foundations_syncable_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "runs")
    (tmp_path / "weights.h5").write_bytes(b"w")
    with labbook.init(project="p", store=store) as run:
        labbook.save("*.h5", policy="now")
        directory = labbook.create_syncable_directory("sync", "sync/path")
        (tmp_path / "sync" / "path" / "hello.csv").write_text("1,2,3")
    with labbook.init(project="p", store=store):
        path = labbook.restore("weights.h5", run_path=f"me/p/{run._id}", root="restored")
        labbook.create_syncable_directory("sync", "again", str(run._id))
    assert open(path, "rb").read() == b"w"
    assert (tmp_path / "again" / "hello.csv").read_text() == "1,2,3"
    assert directory.key == "sync"


def test_wandb_resume(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.init(project="p", id=12, store=store, resume="allow"):
        labbook.log({"loss": 1.0})
    with labbook.init(project="p", id=12, store=store, resume="must"):
        labbook.log({"loss": 0.5})
    got = Api(store).run(12)
    assert values(got, "loss") == ([0, 1], [1.0, 0.5])


def test_experiment_results_manager_log_artifact_of_bytes(tmp_path):
    import pickle

    store = str(tmp_path / "runs")
    model = {"weights": [1, 2, 3]}
    with labbook.start_run("erm", store=store):
        version = labbook.log_artifact(pickle.dumps(model), artifact_id="model",
                                       filename="model.pickle")
        assert (version.name, version.version) == ("model", "v0")
        with pytest.raises(TypeError, match=r"log_artifact of bytes needs a name"):
            labbook.log_artifact(b"data")
        with pytest.raises(TypeError, match=r"must be a file name, not a path"):
            labbook.log_artifact(b"data", artifact_id="x", filename="a/b.bin")
    back = Api(store).artifact("model:latest")
    folder = back.download(root=str(tmp_path / "dl"))
    with open(os.path.join(folder, "model.pickle"), "rb") as fh:
        assert pickle.loads(fh.read()) == model
