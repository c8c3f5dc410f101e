"""labbook.Api: runs recorded through the public API, read back from every store kind."""
from __future__ import annotations

import datetime as dt
import os

import pytest

import labbook
from labbook import Api, Experiment
from labbook.api import RunNotFoundError, Runs, RunView, downsample, flatten_dict
from labbook.stores import open_store
from labbook.stores.base import Store
from labbook.stores.file import FileStore
from labbook.stores.query import QueryError
from labbook.stores.query_text import parse_text

#: quick, quiet runs: no system metrics, output captured
OPTS = {"--no-system-metrics": True, "--capture": "sys"}


def ids(runs) -> list:
    return [run.id for run in runs]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# -- the package exposes the API lazily --------------------------------------------------------
def test_public_names_are_lazy_attributes_of_the_package():
    import labbook.api
    import labbook.report
    import labbook.stores

    assert labbook.Api is labbook.api.Api
    assert labbook.open_store is labbook.stores.open_store
    assert labbook.compare_runs is labbook.report.compare_runs
    assert labbook.get_metrics_for_all_jobs is labbook.api.get_metrics_for_all_jobs
    for name in ("Api", "open_store", "compare_runs", "get_metrics_for_all_jobs"):
        assert name in labbook.__all__


def test_api_defaults_to_the_environment_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBOOK_STORE", f"file://{tmp_path}")
    api = Api()
    assert isinstance(api.store, FileStore) and api.store.basedir == str(tmp_path)
    assert len(api.runs()) == 0 and not api.runs()
    store = FileStore(tmp_path)
    assert Api(store).store is store


# -- filters -----------------------------------------------------------------------------------
QUERIES = [
    ("config.lr > 0.01", [3, 4, 5]),
    ("config.lr >= 0.01", [2, 3, 4, 5]),
    ("config.lr < 0.01", [1]),
    ("config.lr <= 0.01", [1, 2]),
    ("config.lr = 0.05", [4]),
    ("config.lr != 0.05", [1, 2, 3, 5]),
    ("status = 'COMPLETED'", [1, 2, 4, 5]),
    ("status = 'FAILED'", [3]),
    ("status != 'COMPLETED'", [3]),
    ("status in ['FAILED', 'INTERRUPTED']", [3]),
    ("status not in ['FAILED']", [1, 2, 4, 5]),
    ("tags contains 'best'", [2]),  # set while running: in info.tags and meta.tags
    ("tags contains 'tuned'", [2, 4]),
    ("not tags contains 'tuned'", [1, 3, 5]),
    ("tags not contains 'tuned'", [1, 3, 5]),
    ("meta.tags contains 'best'", [2]),  # set_tag during the run joins meta.tags too
    ("config.optimizer.name = 'adam'", [2, 3]),
    ("config.optimizer.name matches '^s'", [1, 4]),
    ("config.optimizer.momentum > 0", [1, 4]),
    ("config.warmup exists", [1, 2, 3, 4]),
    ("config.depth exists", [5]),
    ("config.depth not exists", [1, 2, 3, 4]),
    ("config.depth = null", [1, 2, 3, 4, 5]),
    ("config.warmup = true", [4]),
    ("config.warmup = false", [1, 2, 3]),
    ("config.lr > 0.01 and (status = 'COMPLETED' or tags contains 'best')", [4, 5]),
    ("config.lr > 0.01 and status = 'COMPLETED' or tags contains 'best'", [2, 4, 5]),
    ("config.batch in [32, 128]", [1, 4, 5]),
    ("config.batch not in [32, 128]", [2, 3]),
    ("`config.drop out` > 0.1", [5]),
    ("config.\"drop out\" = 0.2", [5]),
    ("experiment = 'other'", [5]),
    ("experiment.name = 'train' and config.batch = 32", [1]),
    ("config.layers contains 64", [1, 2]),
    ("config.layers = [128]", [3, 4]),
    ("name = 'lucky'", [2]),
    ("name = 'train'", [1, 3, 4]),
    ("notes matches 'wide'", [4]),
    ("result >= 0.8", [2, 4]),
    ("result = null", [3]),
    ("id in [1, 3]", [1, 3]),
    ("not (config.lr > 0.01 or status = 'FAILED')", [1, 2]),
    ("summary.acc > 0.75", [2, 4]),
    ("summary.loss exists", [1, 2, 3, 4]),
    ("summary.acc < 0.65 and status = 'COMPLETED'", [5]),
    ("config.missing exists", []),
]


@pytest.mark.parametrize("text, expected", QUERIES, ids=[q[0] for q in QUERIES])
def test_text_and_dict_filters_select_the_same_runs(standard_url, text, expected):
    api = Api(standard_url)
    assert ids(api.runs(text, order="_id")) == expected
    assert ids(api.runs(parse_text(text), order="_id")) == expected


def test_default_order_is_newest_first_and_experiment_narrows(standard_url):
    api = Api(standard_url)
    assert ids(api.runs()) == [5, 4, 3, 2, 1]
    assert ids(api.runs(experiment="train")) == [4, 3, 2, 1]
    assert ids(api.runs("config.batch = 32", experiment="train")) == [1]
    assert ids(api.runs(order="-config.lr")) == [5, 3, 4, 2, 1]
    assert ids(api.runs(order="-summary.acc")) == [2, 4, 1, 5, 3]
    assert ids(api.runs("status = 'COMPLETED'", order="summary.loss")) == [2, 4, 1, 5]
    assert api.experiments() == ["other", "train"]


def test_bad_filters_are_query_errors(standard_url):
    api = Api(standard_url)
    with pytest.raises(QueryError, match="at column 12"):
        api.runs("config.lr >")
    with pytest.raises(QueryError, match="Unknown operator '\\$almost'"):
        api.runs({"config.lr": {"$almost": 1}})
    with pytest.raises(QueryError, match="got int"):
        api.runs(3)


# -- the lazy collection -----------------------------------------------------------------------
class CountingStore(Store):
    """Any store, recording the limit of every find()."""

    def __init__(self, inner: Store):
        self.inner = inner
        self.url = inner.url
        self.limits: list = []

    def find(self, filter=None, order=None, limit=None):
        self.limits.append(limit)
        return self.inner.find(filter, order, limit)

    def __getattribute__(self, name):
        # everything but find() and our own attributes goes to the real store
        if name in ("find", "inner", "limits", "url", "__class__", "__dict__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    create_run = update_run = append_metrics = put_artifact = put_resource = None
    get = history = open_artifact = None


def test_pages_are_fetched_as_needed_with_growing_limits(standard_url):
    store = CountingStore(open_store(standard_url))
    runs = Api(store).runs(order="_id", per_page=2)
    assert isinstance(runs, Runs) and store.limits == []  # nothing read yet
    assert runs[0].id == 1 and store.limits == [2]
    assert ids(runs[:2]) == [1, 2] and store.limits == [2]
    assert runs[2].id == 3 and store.limits == [2, 4]
    assert ids(runs) == [1, 2, 3, 4, 5] and store.limits == [2, 4, 8]
    assert len(runs) == 5 and store.limits == [2, 4, 8]
    assert runs[-1].id == 5 and ids(runs[::2]) == [1, 3, 5] and ids(runs[3:]) == [4, 5]
    store.limits.clear()
    assert len(Api(store).runs(per_page=2)) == 5 and store.limits == [None]
    store.limits.clear()
    # derived fields (summary, tags, DIED) are answered by the store, page by page
    assert ids(Api(store).runs("summary.acc > 0.75", per_page=1)) == [4, 2]
    assert store.limits == [1, 2, 4]
    with pytest.raises(IndexError):
        runs[7]
    with pytest.raises(TypeError):
        runs["a"]
    with pytest.raises(ValueError):
        Api(store).runs(per_page=0)


def test_iteration_survives_runs_added_between_pages(tmp_path):
    ex = Experiment("grow")

    @ex.main
    def main():
        return 1

    url = f"file://{tmp_path}"
    for _ in range(3):
        ex.run(options={**OPTS, "--store": url})
    runs = Api(url).runs(order="-_id", per_page=2)
    seen = []
    for run in runs:
        seen.append(run.id)
        if len(seen) == 2:
            ex.run(options={**OPTS, "--store": url})  # run 4 shifts every page by one
    # every run at most once, none of those there at the start missed (the new one may show)
    assert len(seen) == len(set(seen)) and {1, 2, 3} <= set(seen)
    assert seen[:2] == [3, 2]


# -- one run -----------------------------------------------------------------------------------
def test_run_fields(standard_url):
    api = Api(standard_url)
    run = api.run(1)
    assert isinstance(run, RunView) and api.run("1") == run
    assert run.name == "train" and run.status == "COMPLETED" and run.command == "main"
    assert run.config.optimizer.name == "sgd" and run.config["lr"] == 0.001
    assert run.config.layers == [64, 32]
    assert run.tags == ["baseline"] and run.notes is None
    assert run.experiment["name"] == "train" and run.host["hostname"]
    assert run.meta["command"] == "main"
    assert run.start_time <= run.stop_time and run.heartbeat is not None
    assert run.duration == (run.stop_time - run.start_time).total_seconds()
    assert run.result == 0.7 and run.fail_trace is None
    assert "training with acc target 0.7" in run.captured_out
    assert run.metrics == ["acc", "loss"]
    assert run.summary == {"acc": 0.7, "loss": 0.3}
    assert run.artifacts == ["curve.png", "notes.txt"]
    assert [f.name for f in run.files()] == run.artifacts
    sources = {s.name: s for s in run.sources}
    conftest = next(s for name, s in sources.items() if name.endswith("conftest.py"))
    assert "def record_standard_runs" in conftest.read_text()

    lucky = api.run(2)
    assert lucky.name == "lucky" and lucky.tags == ["tuned", "best"]
    assert lucky.info["tags"] == {"best": None}
    failed = api.run(3)
    assert failed.status == "FAILED" and failed.result is None
    assert "RuntimeError: diverged" in failed.fail_trace
    assert failed.summary == {"acc": 0.3, "loss": 0.7}
    assert api.run(4).notes == "try wide"
    assert repr(lucky) == "<RunView 2 'lucky' COMPLETED>"


def test_unknown_run_is_a_clear_error(standard_url):
    with pytest.raises(RunNotFoundError, match="No run with id 99 in"):
        Api(standard_url).run(99)


def test_a_stale_heartbeat_reports_died(empty_url):
    ex = Experiment("died")

    @ex.main
    def main():
        return 1

    ex.run(options={**OPTS, "--store": empty_url})
    ex.run(options={**OPTS, "--store": empty_url, "--beat_interval": 100})
    api = Api(empty_url)
    store = api.store
    # the default interval (10 s), recorded in meta: silent for more than 3 x 10 s is DIED
    assert store.get(1)["meta"]["beat_interval"] == 10.0
    store.update_run(1, {"status": "RUNNING", "heartbeat": now() - dt.timedelta(seconds=90)})
    # --beat_interval 100: silent for more than 3 x 100 s is DIED
    store.update_run(2, {"status": "RUNNING", "heartbeat": now() - dt.timedelta(seconds=90)})
    assert api.run(1).status == "DIED" and api.run(1).stored_status == "RUNNING"
    assert api.run(2).status == "RUNNING" and api.run(2).beat_interval == 100
    assert ids(api.runs("status = 'DIED'")) == [1]
    assert ids(api.runs("status = 'RUNNING'")) == [2]
    assert ids(api.runs("status != 'RUNNING'", order="_id")) == [1]
    store.update_run(2, {"heartbeat": now() - dt.timedelta(seconds=400)})
    store.update_run(1, {"heartbeat": now() - dt.timedelta(seconds=20)})
    assert api.run(1).status == "RUNNING" and api.run(2).status == "DIED"
    assert Api(empty_url).runs(order="_id").to_dataframe()["status"].tolist() == \
        ["RUNNING", "DIED"]


@pytest.fixture
def long_run_url(empty_url):
    ex = Experiment("long")

    @ex.main
    def main(_run):
        for i in range(1000):
            _run.log_scalar("loss", 1 / (i + 1), i)
            if i % 10 == 0:
                _run.log_scalar("acc", i / 1000, i)

    ex.run(options={**OPTS, "--store": empty_url})
    return empty_url


def test_history_is_aligned_and_downsampled_keeping_first_and_last(long_run_url):
    run = Api(long_run_url).run(1)
    frame = run.history(samples=100)
    assert list(frame.columns) == ["_step", "acc", "loss"]
    assert len(frame) == 100
    steps = frame["_step"].tolist()
    assert steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)
    assert frame["loss"].iloc[-1] == 1 / 1000
    # one metric: its points evenly spread by position, exactly as sample_positions says
    loss = run.history("loss", samples=100, pandas=False)
    steps = [row["_step"] for row in loss]
    assert steps == [round(i * 999 / 99) for i in range(100)]
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    assert max(gaps) - min(gaps) <= 1  # evenly spread
    full = run.history(samples=None)
    assert len(full) == 1000 and full["acc"].isna().sum() == 900
    assert len(run.history(samples=5000)) == 1000

    rows = run.history("acc", samples=10, pandas=False)
    assert len(rows) == 10 and rows[0] == {"_step": 0, "acc": 0.0}
    assert rows[-1] == {"_step": 990, "acc": 0.99}  # acc's own last step

    by_acc = run.history(["loss"], samples=None, x_axis="acc", pandas=False)
    assert len(by_acc) == 100 and list(by_acc[1]) == ["_step", "acc", "loss"]
    assert by_acc[1] == {"_step": 10, "acc": 0.01, "loss": 1 / 11}
    with pytest.raises(ValueError, match="at least 2"):
        run.history(samples=1)
    assert run.history(["nothing"], pandas=False) == []


def test_scan_history_streams_every_row(long_run_url):
    run = Api(long_run_url).run(1)
    rows = run.scan_history()
    assert not isinstance(rows, list)
    rows = list(rows)
    assert len(rows) == 1000
    assert rows[0] == {"_step": 0, "acc": 0.0, "loss": 1.0}
    assert rows[1] == {"_step": 1, "acc": None, "loss": 0.5}
    assert [r["_step"] for r in run.scan_history(keys=["acc"])][:3] == [0, 10, 20]
    with pytest.raises(ValueError):
        list(run.scan_history(page_size=0))


def test_downsample_helper():
    assert downsample(range(10), None) == list(range(10))
    assert downsample(range(10), 20) == list(range(10))
    assert downsample(range(10), 2) == [0, 9]
    assert downsample(range(11), 3) == [0, 5, 10]
    picked = downsample(range(1001), 7)
    assert picked[0] == 0 and picked[-1] == 1000 and len(set(picked)) == 7


def test_flatten_dict_helper():
    assert flatten_dict({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == \
        {"a.b": 1, "a.c.d": [1], "e": {}}
    assert flatten_dict({"x": 1}, "config.") == {"config.x": 1}


# -- tables ------------------------------------------------------------------------------------
def test_to_dataframe_columns_and_values(standard_url):
    frame = Api(standard_url).runs(order="_id", experiment="train").to_dataframe()
    assert list(frame.columns) == [
        "id", "name", "status", "start_time", "duration",
        "config.acc", "config.batch", "config.crash", "config.layers", "config.lr",
        "config.optimizer.momentum", "config.optimizer.name", "config.seed", "config.warmup",
        "summary.acc", "summary.loss"]
    assert frame["id"].tolist() == [1, 2, 3, 4]
    assert frame["name"].tolist() == ["train", "lucky", "train", "train"]
    assert frame["status"].tolist() == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]
    assert frame["config.layers"].tolist() == [[64, 32], [64, 32], [128], [128]]
    assert frame["summary.loss"].tolist() == [0.3, 0.1, 0.7, 0.2]
    assert (frame["duration"] >= 0).all()
    assert str(frame["start_time"].dtype).startswith("datetime64")

    everything = Api(standard_url).runs(order="_id").to_dataframe(info=True)
    assert "config.drop out" in everything.columns and "info.tags.best" in everything.columns
    assert everything["summary.loss"].isna().tolist() == [False] * 4 + [True]
    bare = Api(standard_url).runs(order="_id").to_dataframe(config=False, summary=False)
    assert list(bare.columns) == ["id", "name", "status", "start_time", "duration"]


def test_to_dataframe_of_unloaded_runs_equals_that_of_loaded_ones(standard_url):
    """Runs not yet loaded give their table straight from the documents (no RunView each, on
    the file store from the index without copies); loaded runs give it from their views,
    edits included. Both tables are the same, and the stored documents are untouched."""
    import pandas as pd

    api = Api(standard_url)
    before = [run.doc for run in api.runs(order="_id")]
    for options in ({}, {"info": True}, {"config": False, "summary": False}):
        straight = api.runs(order="_id").to_dataframe(**options)
        loaded = api.runs(order="_id")
        assert len(loaded) == len(straight)
        pd.testing.assert_frame_equal(straight, loaded.to_dataframe(**options))
    assert [run.doc for run in api.runs(order="_id")] == before

    edited = api.runs(order="_id")
    edited[0].name = "renamed"
    edited[0].summary = {"loss": -1.0}
    frame = edited.to_dataframe()
    assert frame["name"].tolist()[0] == "renamed"
    assert frame["summary.loss"].tolist()[0] == -1.0
    assert Api(standard_url).runs(order="_id").to_dataframe()["name"].tolist()[0] != "renamed"


def test_series_pages_without_times_hold_the_same_points(standard_url):
    """``iter_series(..., times=False)`` (what scan_history reads) gives the pages of
    ``iter_series`` without their ``timestamps``: the same steps and values, page by page."""
    api = Api(standard_url)
    checked = 0
    for run in api.runs(order="_id"):
        for name in run.metrics:
            timed = list(api.store.iter_series(run.id, name, 3))
            bare = list(api.store.iter_series(run.id, name, 3, times=False))
            assert all(set(page) == {"steps", "values"} for page in bare)
            assert repr(bare) == repr([{"steps": p["steps"], "values": p["values"]}
                                       for p in timed])
            checked += 1
    assert checked


def test_histories_of_many_runs(standard_url):
    frame = Api(standard_url).runs("experiment = 'train'", order="_id").histories(["acc"])
    assert list(frame.columns) == ["run_id", "_step", "acc"]
    assert frame["run_id"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert frame["acc"].tolist() == [0.35, 0.7, 0.45, 0.9, 0.15, 0.3, 0.4, 0.8]


def test_get_metrics_for_all_jobs(standard_url):
    frame = labbook.get_metrics_for_all_jobs("train", store=standard_url)
    assert list(frame.columns) == ["job_id", "status", "start_time", "completed_time", "acc",
                                   "loss"]
    assert frame["job_id"].tolist() == [1, 2, 3, 4]
    assert frame["acc"].tolist() == [0.7, 0.9, 0.3, 0.8]
    with_params = labbook.get_metrics_for_all_jobs("train", include_input_params=True,
                                                   store=open_store(standard_url))
    # the config key "acc" meets the metric "acc": the parameter gets the prefix
    assert with_params.columns.tolist()[:6] == list(frame.columns)
    assert {"config.acc", "lr", "batch", "optimizer.name", "layers"} <= set(with_params.columns)
    assert with_params["lr"].tolist() == [0.001, 0.01, 0.1, 0.05]
    assert with_params["config.acc"].tolist() == [0.7, 0.9, 0.3, 0.8]
    with pytest.raises(ValueError, match="Experiment 'no such thing' has no runs"):
        labbook.get_metrics_for_all_jobs("no such thing", store=standard_url)


# -- files -------------------------------------------------------------------------------------
def test_download_and_replace(standard_url, tmp_path, make_png):
    run = Api(standard_url).run(1)
    png = run.file("curve.png")
    path = png.download(tmp_path)
    assert path == str(tmp_path / "curve.png")
    with open(path, "rb") as fh:
        assert fh.read() == make_png()
    with open(path, "wb") as fh:
        fh.write(b"changed")
    with pytest.raises(ValueError, match="exists; pass replace=True"):
        png.download(tmp_path)
    with open(path, "rb") as fh:
        assert fh.read() == b"changed"  # untouched
    assert png.download(tmp_path, replace=True) == path
    with open(path, "rb") as fh:
        assert fh.read() == make_png()
    assert run.file("notes.txt").read_bytes() == b"artifact text\n"
    nested = run.file("notes.txt").download(tmp_path / "a" / "b")
    assert os.path.exists(nested)
    assert sorted(os.listdir(tmp_path)) == ["a", "curve.png"]  # no temporary left over
    with pytest.raises(FileNotFoundError, match="has no artifact 'nope.bin'"):
        run.file("nope.bin")
    if standard_url.startswith("file://"):
        assert png.location == os.path.join(standard_url[7:], "1", "curve.png")
        assert png.size == len(make_png())
    else:
        assert png.location is None


# -- editing -----------------------------------------------------------------------------------
def test_update_persists_tags_notes_name_and_summary(empty_url):
    ex = Experiment("edit")

    @ex.main
    def main(_run):
        _run.log_scalar("loss", 0.5)
        _run.set_tag("keep", 1)
        _run.set_tag("drop")

    ex.run(options={**OPTS, "--store": empty_url, "--tag": ["first"]})
    run = Api(empty_url).run(1)
    assert run.tags == ["first", "drop", "keep"]  # meta.tags, then info.tags sorted
    run.update()  # nothing edited: nothing written
    run.tags.remove("drop")
    run.tags.append("new")
    run.notes = "looked at it"
    run.name = "renamed"
    run.summary["loss"] = 0.25
    run.summary["best_epoch"] = 3
    run.update()

    again = Api(empty_url).run(1)
    assert again.tags == ["first", "keep", "new"]
    assert again.info["tags"] == {"keep": 1}
    assert again.notes == "looked at it" and again.name == "renamed"
    assert again.meta["notes"] == "looked at it" and again.meta["name"] == "renamed"
    assert again.summary == {"loss": 0.25, "best_epoch": 3}
    assert again.info["summary"] == {"loss": 0.25, "best_epoch": 3}
    assert ids(Api(empty_url).runs("tags contains 'new' and summary.best_epoch = 3")) == [1]

    again.summary["loss"] = 0.5  # back to the logged value: no override needed
    del again.summary["best_epoch"]
    again.update()
    final = Api(empty_url).run(1)
    assert final.summary == {"loss": 0.5} and "summary" not in final.info


# -- deleting ----------------------------------------------------------------------------------
def test_file_store_delete_run(tmp_path):
    ex = Experiment("rm")

    @ex.main
    def main():
        return 1

    url = f"file://{tmp_path}"
    ex.run(options={**OPTS, "--store": url})
    ex.run(options={**OPTS, "--store": url})
    store = FileStore(tmp_path)
    store.delete_run(1)
    assert not (tmp_path / "1").exists() and store.get(1) is None
    assert (tmp_path / "_sources").is_dir()  # shared with run 2
    assert [r["_id"] for r in store.find()] == [2]
    # nothing half-deleted left behind (.labbook is the file store's index)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".") and n != ".labbook"] == []
    with pytest.raises(KeyError):
        store.delete_run(1)
    with pytest.raises(KeyError):
        store.delete_run("../" + tmp_path.name)


def test_stores_without_delete_say_so():
    class Minimal(Store):
        create_run = update_run = append_metrics = put_artifact = put_resource = None
        get = find = history = open_artifact = None

    with pytest.raises(NotImplementedError, match="Minimal cannot delete runs"):
        Minimal().delete_run(1)
