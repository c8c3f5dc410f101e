"""wandb's field spellings are aliases with wandb's meaning on every store; a field no run has
gives a warning with close matches (the answer is still given)."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import labbook
from labbook import Experiment
from labbook.errors import LabbookWarning
from labbook.stores import open_store
from labbook.stores.query import canonical_order, canonical_path
from tests.stores.conftest import backend_url, mysql_database, postgresql_database  # noqa: F401
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTIONS = {"--no-system-metrics": True, "--capture": "sys", "--loglevel": "ERROR"}


@pytest.fixture(params=["file", "sqlite", "postgresql", "mysql", "mongo"])
def url(request, tmp_path):
    if request.param == "file":
        return f"file://{tmp_path / 'runs'}"
    if request.param == "mongo":
        return request.getfixturevalue("mongo_url")
    return backend_url(request, request.param, tmp_path)


def _record(url):
    """Run 1: lr 0.1, loss 0.1, COMPLETED; run 2: lr 0.5, loss 0.5, COMPLETED; run 3 FAILED."""
    ex = Experiment("aliases")
    ex.add_config(lr=0.1, opt={"momentum": 0.9})

    @ex.main
    def main(_run, lr):
        _run.log_scalar("train.loss", lr)
        if lr > 1:
            raise RuntimeError("diverged")
        return lr

    for lr in (0.1, 0.5, 2.0):
        try:
            ex.run(config_updates={"lr": lr}, options={"--store": url, **OPTIONS})
        except RuntimeError:
            pass


def _ids(runs):
    return [int(r.id) for r in runs]


def test_wandb_spellings_mean_what_they_mean_in_wandb_on_every_store(url):
    _record(url)
    api = labbook.Api(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabbookWarning)  # aliases never warn
        assert _ids(api.runs({"state": "finished"}, order="created_at")) == [1, 2]
        assert _ids(api.runs({"state": {"$in": ["failed", "crashed"]}})) == [3]
        assert _ids(api.runs({"state": {"$ne": "finished"}})) == [3]
        assert _ids(api.runs({"config.lr.value": {"$gt": 0.2}}, order="created_at")) == [2, 3]
        assert _ids(api.runs({"summary_metrics.train.loss": {"$lt": 0.2}})) == [1]
        assert _ids(api.runs({"created_at": {"$gte": "2000-01-01"}}, order="-created_at")) == \
            [3, 2, 1]
        assert _ids(api.runs(order="-summary_metrics.train.loss")) == [3, 2, 1]
        assert _ids(api.runs(order="+config.lr.value")) == [1, 2, 3]
        # the text query language reads them too
        assert _ids(api.runs("state = 'finished' and config.lr.value < 0.3")) == [1]
        assert _ids(api.runs("summary_metrics.train.loss >= 0.5", order="created_at")) == [2, 3]
        # and so does every store's own find
        store = open_store(url)
        try:
            assert [int(d["_id"]) for d in store.find({"state": "failed"})] == [3]
            assert [int(d["_id"]) for d in store.find(None, order="-created_at")] == [3, 2, 1]
        finally:
            store.close()


def test_a_field_no_run_has_warns_with_close_matches_on_every_store(url, tmp_path):
    _record(url)
    api = labbook.Api(url)
    with pytest.warns(LabbookWarning) as record:
        assert _ids(api.runs({"config.lrr": {"$gt": 0.2}})) == []
    assert [str(w.message) for w in record] == [
        "No run has the field 'config.lrr'; it is treated as missing in every run. Did you "
        "mean one of 'config.lr', 'config.opt', 'config.seed'?"]
    with pytest.warns(LabbookWarning) as record:
        assert _ids(api.runs(order="summary.train.los")) == [1, 2, 3]  # all missing: by id
    assert str(record[0].message) == ("No run has the field 'summary.train.los'; it is treated "
                                      "as missing in every run. Did you mean "
                                      "'summary.train.loss'?")
    with pytest.warns(LabbookWarning, match="'config.opt.momentun'.*'config.opt.momentum'"):
        assert _ids(api.runs("config.opt.momentun = 0.9")) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabbookWarning)
        assert _ids(api.runs({"config.opt.momentum": 0.9}, order="_id")) == [1, 2, 3]
        assert _ids(api.runs({"status": "COMPLETED", "name": "aliases"}, order="_id")) == [1, 2]
        (tmp_path / "empty").mkdir()  # an empty store (a missing one is an error)
        assert list(labbook.Api(f"file://{tmp_path / 'empty'}").runs({"config.x": 1})) == []


def test_labbook_ls_prints_the_warning_as_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _record(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    proc = subprocess.run([sys.executable, "-m", "labbook.cli.main", "ls", url, "--filter",
                           "config.lrr > 0.2 or state = 'finished'"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("Warning: No run has the field 'config.lrr'; it is treated as missing "
                           "in every run. Did you mean one of 'config.lr', 'config.opt', "
                           "'config.seed'?\n")
    assert [line.split()[0] for line in proc.stdout.splitlines()[1:]] == ["2", "1"]


@pytest.mark.parametrize("path, canonical", [
    ("summary_metrics.loss", "summary.loss"),
    ("summary_metrics", "summary_metrics"),
    ("created_at", "start_time"),
    ("state", "status"),
    ("config.lr.value", "config.lr"),
    ("config.value", "config.value"),
    ("config.a.b.value", "config.a.b"),
    ("info.x.value", "info.x.value"),
])
def test_canonical_paths(path, canonical):
    assert canonical_path(path) == canonical
    assert canonical_order("-" + path) == "-" + canonical
