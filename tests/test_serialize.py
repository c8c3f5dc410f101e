"""The one serializer: Sacred's JSON layout written fast, and Mongo key escaping."""
from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from labbook import serialize

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=True, allow_infinity=True))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=6)),
    max_leaves=40)


def sacred_json(value) -> str:
    # how Sacred's FileStorageObserver writes its JSON files
    return json.dumps(value, default=serialize.flatten, indent=2, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_dumps_pretty_writes_exactly_what_sacred_writes(value):
    assert serialize.dumps_pretty(value) == sacred_json(value)


def test_dumps_pretty_of_a_metrics_file_and_odd_values():
    stamps = [dt.datetime(2026, 1, 2, 3, 4, 5, i) for i in range(3)]
    metrics = {"loss": {"steps": [0, 1, 2], "timestamps": stamps,
                        "values": [0.5, math.nan, -math.inf]},
               "acc": {"steps": [], "timestamps": [], "values": []}}
    assert serialize.dumps_pretty(metrics) == sacred_json(metrics)
    odd = {"tuple": (1, (2, 3)), "ünï": "çødé ☃", "mixed": [1, {"a": [dt.datetime(2020, 1, 1)]}],
           "int_keys": {1: "a", 2: "b"}, "nested_empty": [[], {}, [[]]]}
    assert serialize.dumps_pretty(odd) == sacred_json(odd)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", ".", "$", "\\", "u", "0", "2", "4", "e"]),
               max_size=12))
def test_mongo_key_escaping_round_trips_and_is_storable(key):
    escaped = serialize.escape_key(key)
    assert "." not in escaped and not escaped.startswith("$")
    assert serialize.unescape_key(escaped) == key


def test_an_escaped_backslash_before_a_literal_escape_sequence_survives():
    for key in ["a\\u002e", "\\u0024x", "x\\\\.y", "$.\\"]:
        assert serialize.unescape_key(serialize.escape_key(key)) == key
