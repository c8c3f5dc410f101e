"""Property tests: what a run records reads back as it was, on every store.

Generated configs, results, info values and metric values (nested dicts and lists, unicode,
dotted and ``$`` keys, NaN and +-inf, big integers, numpy scalars) go through ``ex.run`` into
each store (file, SQLite, PostgreSQL, MariaDB, MongoDB via mongoeco) and are read back with
``labbook.Api``: the identity, or a clear LabbookError before the run starts. Plus 10 MB of
captured output and a config of 100,000 entries, stored intact everywhere.
"""
from __future__ import annotations

import math
import os
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labbook
from labbook import Experiment
from labbook.errors import LabbookError
from tests.stores.conftest import empty_database, mysql_database, postgresql_database  # noqa: F401
from tests.stores.mongo_server import mongo_server  # noqa: F401

STORES = ("file", "sqlite", "postgresql", "mysql", "mongo")
OPTIONS = {"--no-system-metrics": True, "--capture": "sys", "--loglevel": "ERROR",
           "--beat-interval": 60}
EXAMPLES = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module", params=STORES)
def store_url(request, tmp_path_factory):
    """One store of each kind for the module (examples add runs to it)."""
    kind = request.param
    if kind == "file":
        yield f"file://{tmp_path_factory.mktemp('props') / 'runs'}"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('props') / 'labbook.db'}"
    elif kind == "mongo":
        server = request.getfixturevalue("mongo_server")
        name = f"labbook_props_{uuid.uuid4().hex[:8]}"
        yield server.url(name)
        client = server.client()
        try:
            client.drop_database(name)
        finally:
            client.close()
    else:
        url = request.getfixturevalue(f"{kind}_database")
        empty_database(url)
        yield url


# -- values ----------------------------------------------------------------------------------------

keys = st.one_of(st.text(min_size=1, max_size=8),
                 st.sampled_from(["a.b", "$x", "x$", ".", "..", "a..b", "$", "\\", "\\int",
                                  "\\u002e", "py/object", "$float", "ключ", "実験", "", " "]))
numpy_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.integers(-(2 ** 63), 2 ** 63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
    st.floats(width=32, allow_nan=False).map(np.float32))
leaves = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20),
    st.integers(-(2 ** 53), 2 ** 53),
    st.integers(-(2 ** 200), 2 ** 200),                  # beyond 64 bits
    st.sampled_from([2 ** 63 - 1, -(2 ** 63), 2 ** 63, 2 ** 64, -(2 ** 64) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]),
    numpy_scalars)
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
documents = st.dictionaries(keys, values, max_size=5)
metric_values = st.lists(st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2 ** 53), 2 ** 53),
    st.booleans(), st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.integers(-(2 ** 53), 2 ** 53).map(np.int64), st.booleans().map(np.bool_),
    st.floats(width=32, allow_nan=False).map(np.float32)), min_size=1, max_size=6)


def plain(value):
    """What a store gives back for ``value``: numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def same(a, b) -> bool:
    """Equality in which NaN equals NaN, types of numbers count (1 is not True, 1.0 is not 1
    when one of them is a bool) and dict key sets must match exactly."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and a == 0 == b:
        return math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b if isinstance(a, str) or isinstance(b, str) else a == b


def record(url, config=None, result=None, info=None, points=()):
    ex = Experiment("props")
    ex.add_config(c=config if config is not None else {})

    @ex.main
    def main(_run):
        if info is not None:
            _run.info["generated"] = info
        for value in points:
            _run.log_scalar("m", value)
        return result

    return ex.run(options={"--store": url, **OPTIONS})


def stored(url, run):
    return labbook.Api(url).run(run._id)


# -- the properties ------------------------------------------------------------------------------

@EXAMPLES
@given(config=documents)
def test_config_round_trip(store_url, config):
    try:
        run = record(store_url, config=config)
    except LabbookError as exc:
        # refused before the run: only keys no store can hold ('.' inside, leading '$')
        assert "Invalid config key" in str(exc), exc
        assert any("." in k or k.startswith("$") for k in _all_keys(config)), exc
        return
    assert run.status == "COMPLETED"
    back = stored(store_url, run).config["c"]
    assert same(back, plain(config)), (back, config)


def _all_keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_keys(item)


@EXAMPLES
@given(result=values, info=documents)
def test_result_and_info_round_trip(store_url, result, info):
    run = record(store_url, result=result, info=info)
    assert run.status == "COMPLETED"
    view = stored(store_url, run)
    assert same(view.result, plain(result)), (view.result, result)
    assert same(view.info["generated"], plain(info)), (view.info["generated"], info)


def test_metric_integers_beyond_2_53_are_refused_at_the_call(store_url):
    with pytest.raises(LabbookError, match="beyond 2\\*\\*53"):
        record(store_url, points=[2 ** 53 + 1])


@EXAMPLES
@given(points=metric_values)
def test_metric_values_round_trip(store_url, points):
    run = record(store_url, points=points)
    assert run.status == "COMPLETED"
    rows = stored(store_url, run).history("m", samples=None, pandas=False)
    back = [row["m"] for row in rows]
    expected = [float(v) if isinstance(v, float | np.floating) else int(v) for v in points]
    assert [row["_step"] for row in rows] == list(range(len(points)))
    assert all(same(float(b), float(e)) and (b == e or b != b) for b, e in zip(back, expected)) \
        and len(back) == len(expected), (back, expected)


# -- sizes -------------------------------------------------------------------------------------

def test_10_mb_of_captured_output_is_stored_intact(store_url):
    line = "0123456789abcdefghijklmnopqrstuvwxyzäöü€ " * 25 + "\n"
    text = line * (10 * 1024 * 1024 // len(line.encode("utf-8")) + 1)
    assert len(text.encode("utf-8")) >= 10 * 1024 * 1024
    ex = Experiment("output")

    @ex.main
    def main():
        import sys

        sys.stdout.write(text)
        return 1

    run = ex.run(options={"--store": store_url, **OPTIONS})
    assert run.status == "COMPLETED"
    out = stored(store_url, run).doc["captured_out"]
    assert len(out) == len(text) and out == text


def test_100k_entry_config_is_stored_intact(store_url):
    config = {f"k{i:06d}": (i if i % 3 else f"v{i}") for i in range(100_000)}
    ex = Experiment("wide")
    ex.add_config(wide=config)
    ex.main(lambda: 1)
    run = ex.run(options={"--store": store_url, **OPTIONS})
    assert run.status == "COMPLETED"
    back = stored(store_url, run).config["wide"]
    assert len(back) == 100_000 and back == config


def test_this_file_runs_in_any_checkout():  # the module imports nothing by absolute path
    assert os.path.isfile(__file__)
