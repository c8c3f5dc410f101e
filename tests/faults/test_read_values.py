"""Values read back as they were written, on every store: a float result 1.0 stays a float
(SQLite's NUMERIC affinity made it the integer 1), ints stay ints, in the result and in info;
and ``scan_history(keys=[...])`` yields only the rows holding every key, as wandb's does."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labbook import Api
from labbook.stores import open_store
from tests.api.conftest import STORE_KINDS, server_databases  # noqa: F401 (a fixture)
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
RESULTS = [1.0, 1, -2.0, 0.0, 2.5, 10 ** 15, 1e20, True, "1.0", None, [1.0, 2], {"a": 1.0}]
INFO = {"f": 1.0, "i": 1, "neg": -3.0, "zero": 0.0, "list": [1.0, 2, 3.5], "flag": False,
        "nested": {"f": 2.0, "i": 2}}


@pytest.fixture(params=sorted(STORE_KINDS))
def store_url(request, tmp_path):
    return STORE_KINDS[request.param](request, tmp_path)


def _typed(value):
    """``value`` with the type of every number spelled out (1 == 1.0 == True in Python)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def test_results_and_info_keep_int_and_float(store_url):
    store = open_store(store_url)
    ids = []
    for result in RESULTS:
        run_id = store.create_run({
            "experiment": {"name": "values"}, "command": "main", "host": {}, "meta": {},
            "config": {"lr": 1.0, "n": 1}, "status": "RUNNING", "start_time": T0,
            "resources": [], "artifacts": [], "captured_out": "", "info": {},
            "heartbeat": None, "result": None})
        store.heartbeat(run_id, INFO, "", T0, None)
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0, "result": result})
        ids.append(run_id)
    store.close()
    api = Api(store_url)
    for run_id, result in zip(ids, RESULTS):
        view = api.run(run_id)
        assert _typed(view.result) == _typed(result), (store_url, result)
        assert _typed(view.info) == _typed(INFO)
        assert _typed(view.config) == _typed({"lr": 1.0, "n": 1})
    # filters on the result still find them (the SQL stores narrow in the database)
    # 1.0 == 1 == True as in Python and MongoDB; a list matches when an element does
    assert sorted(v.id for v in api.runs({"result": 1.0})) == sorted(
        [ids[0], ids[1], ids[7], ids[10]])
    assert [v.id for v in api.runs({"result": {"$gt": 5, "$lt": 1e16}})] == [ids[5]]
    assert [v.id for v in api.runs({"result": {"$lt": -1}})] == [ids[2]]
    by_listing = {v.id: v.result for v in api.runs(order="_id")}
    assert _typed([by_listing[i] for i in ids]) == _typed(RESULTS)
    api.close()


def test_scan_history_with_keys_yields_only_complete_rows(tmp_path):
    store = open_store(f"file://{tmp_path / 'runs'}")
    run_id = store.create_run({
        "experiment": {"name": "scan"}, "command": "main", "host": {}, "meta": {},
        "config": {}, "status": "RUNNING", "start_time": T0, "resources": [], "artifacts": [],
        "captured_out": "", "info": {}, "heartbeat": None, "result": None})
    store.append_metrics(run_id, {
        "loss": {"steps": [0, 1, 2, 3], "values": [4.0, 3.0, 2.0, 1.0], "timestamps": [T0] * 4},
        "acc": {"steps": [0, 2], "values": [0.1, 0.5], "timestamps": [T0] * 2}})
    store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0})
    run = Api(store).run(run_id)
    assert list(run.scan_history(keys=["loss", "acc"])) == [
        {"_step": 0, "loss": 4.0, "acc": 0.1}, {"_step": 2, "loss": 2.0, "acc": 0.5}]
    assert [r["_step"] for r in run.scan_history(keys=["loss"])] == [0, 1, 2, 3]
    assert list(run.scan_history(keys=["acc"], page_size=1)) == [
        {"_step": 0, "acc": 0.1}, {"_step": 2, "acc": 0.5}]
    assert list(run.scan_history(keys=["loss", "nothing"])) == []
    # without keys: every row, None where a metric has no value
    assert list(run.scan_history()) == [
        {"_step": 0, "acc": 0.1, "loss": 4.0}, {"_step": 1, "acc": None, "loss": 3.0},
        {"_step": 2, "acc": 0.5, "loss": 2.0}, {"_step": 3, "acc": None, "loss": 1.0}]
    # history keeps every row of the keys (documented): NaN / None where one is missing
    assert [r["acc"] for r in run.history(["loss", "acc"], samples=None, pandas=False)] == [
        0.1, None, 0.5, None]


_series = st.lists(st.tuples(st.integers(0, 6), st.floats(-5, 5)), max_size=12).map(
    lambda points: sorted(points, key=lambda point: point[0]))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series=st.lists(_series, min_size=1, max_size=3), page_size=st.integers(1, 5))
def test_scan_history_merges_pages_into_the_rows_history_gives(tmp_path, series, page_size):
    # scan_history merges the metrics a window of pages at a time (it was a heap merge
    # of every point): whatever the page size, its rows are history()'s rows, repeated
    # steps keeping their last value, a metric's gaps None
    store = open_store(f"file://{tmp_path / 'runs'}")
    run_id = store.create_run({
        "experiment": {"name": "scan"}, "command": "main", "host": {}, "meta": {},
        "config": {}, "status": "RUNNING", "start_time": T0, "resources": [], "artifacts": [],
        "captured_out": "", "info": {}, "heartbeat": None, "result": None})
    metrics = {f"m{i}": {"steps": [s for s, _ in points], "values": [v for _, v in points],
                         "timestamps": [T0] * len(points)}
               for i, points in enumerate(series) if points}
    if metrics:
        store.append_metrics(run_id, metrics)
    run = Api(store).run(run_id)
    expected = run.history(samples=None, pandas=False)
    assert list(run.scan_history(page_size=page_size)) == expected
    if len(metrics) > 1:
        both = list(metrics)[:2]
        complete = [row for row in run.history(both, samples=None, pandas=False)
                    if all(row[name] is not None for name in both)]
        assert list(run.scan_history(keys=both, page_size=page_size)) == complete
