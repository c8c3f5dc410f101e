"""The human filter language: what each form parses to, and errors that point at the text."""
from __future__ import annotations

import pytest

from labbook.stores.query import QueryError, matches, parse
from labbook.stores.query_text import parse_text

CASES = [
    ("config.lr > 0.01", {"config.lr": {"$gt": 0.01}}),
    ("config.lr >= 1", {"config.lr": {"$gte": 1}}),
    ("config.lr < -2.5e-3", {"config.lr": {"$lt": -0.0025}}),
    ("config.lr <= 3.", {"config.lr": {"$lte": 3.0}}),
    ("status = 'COMPLETED'", {"status": "COMPLETED"}),
    ("status == \"COMPLETED\"", {"status": "COMPLETED"}),
    ("status != 'FAILED'", {"status": {"$ne": "FAILED"}}),
    ("config.flag = true", {"config.flag": True}),
    ("config.flag = FALSE", {"config.flag": False}),
    ("config.depth = null", {"config.depth": None}),
    ("config.layers = [64, 32]", {"config.layers": [64, 32]}),
    ("config.batch in [32, 64]", {"config.batch": {"$in": [32, 64]}}),
    ("config.batch not in [32]", {"config.batch": {"$nin": [32]}}),
    ("config.batch in []", {"config.batch": {"$in": []}}),
    ("tags contains 'best'", {"tags": "best"}),
    ("tags not contains 'best'", {"$nor": [{"tags": "best"}]}),
    ("config.name matches '^res'", {"config.name": {"$regex": "^res"}}),
    ("config.name not matches 'net$'", {"config.name": {"$not": {"$regex": "net$"}}}),
    ("config.x exists", {"config.x": {"$exists": True}}),
    ("config.x not exists", {"config.x": {"$exists": False}}),
    ("not config.x exists", {"$nor": [{"config.x": {"$exists": True}}]}),
    ("`config.learning rate` > 0", {"config.learning rate": {"$gt": 0}}),
    ("config.\"learning rate\" > 0", {"config.learning rate": {"$gt": 0}}),
    ("config.`drop out` = 0.2", {"config.drop out": 0.2}),
    ("meta.tags.0 = 'a'", {"meta.tags.0": "a"}),
    ("id in [1, 3]", {"_id": {"$in": [1, 3]}}),
    ("experiment = 'train'", {"experiment.name": "train"}),
    ("config.my-key = 'x'", {"config.my-key": "x"}),
    ("config.s = 'it\\'s'", {"config.s": "it's"}),
    ("a = 1 and b = 2 and c = 3", {"$and": [{"a": 1}, {"b": 2}, {"c": 3}]}),
    ("a = 1 or b = 2 and c = 3", {"$or": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}]}),
    ("(a = 1 or b = 2) and c = 3", {"$and": [{"$or": [{"a": 1}, {"b": 2}]}, {"c": 3}]}),
    ("(a = 1 and b = 2) and c = 3", {"$and": [{"a": 1}, {"b": 2}, {"c": 3}]}),
    ("not (a = 1 or b = 2)", {"$nor": [{"$or": [{"a": 1}, {"b": 2}]}]}),
    ("A = 1 AND b = 2 Or c = 3", {"$or": [{"$and": [{"A": 1}, {"b": 2}]}, {"c": 3}]}),
    ("  ", {}),
    ("config.layers contains all [32, 64]", {"config.layers": {"$all": [32, 64]}}),
    ("tags not contains all ['a']", {"$nor": [{"tags": {"$all": ["a"]}}]}),
    ("config.all contains 1", {"config.all": 1}),  # 'all' and 'size' stay usable as names
    ("config.layers size 2", {"config.layers": {"$size": 2}}),
    ("config.size size 0", {"config.size": {"$size": 0}}),
    ("tags not size 0", {"$nor": [{"tags": {"$size": 0}}]}),
    ("start_time >= '2024-03-01'", {"start_time": {"$gte": "2024-03-01"}}),
    ("config.lr > 0.01 and (status = 'COMPLETED' or tags contains 'best')",
     {"$and": [{"config.lr": {"$gt": 0.01}},
               {"$or": [{"status": "COMPLETED"}, {"tags": "best"}]}]}),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_parses_to_the_filter_dict(text, expected):
    result = parse_text(text)
    assert result == expected
    parse(result)  # and the dict is a valid filter


def test_parsed_filters_evaluate_like_their_meaning():
    doc = {"config": {"lr": 0.05, "learning rate": 1, "layers": [64, 32], "name": "resnet"},
           "status": "COMPLETED", "meta": {"tags": ["best", "x"]}, "tags": ["best", "x"]}
    yes = ["config.lr > 0.01", "config.layers contains 64", "tags contains 'best'",
           "config.name matches '^res'", "`config.learning rate` = 1",
           "not config.missing exists", "config.lr > 1 or status = 'COMPLETED'",
           "config.layers = [64, 32]", "config.missing = null"]
    no = ["config.lr > 0.1", "config.layers contains 7", "tags not contains 'best'",
          "config.name not matches 'net$'", "config.lr > 0.01 and status = 'FAILED'"]
    for text in yes:
        assert matches(parse_text(text), doc), text
    for text in no:
        assert not matches(parse_text(text), doc), text


ERRORS = [
    ("config.lr >", 12, "Expected a value, found the end of the filter"),
    ("status = COMPLETED", 10, "strings need quotes"),
    ("(a = 1", 7, "Expected ')'"),
    ("a = 1 b = 2", 7, "Expected 'and', 'or' or the end of the filter, found 'b'"),
    ("a ~ 1", 3, "Unexpected character '~'"),
    ("a = 'open", 5, "Unterminated quoted text"),
    ("a in 3", 6, "'in' takes a list"),
    ("and = 1", 1, "Expected a field name, found 'and'"),
    ("a not = 1", 7, "Expected 'in', 'contains', 'matches', 'size' or 'exists' after 'not'"),
    ("a size 'two'", 8, "'size' takes a whole number"),
    ("a size -1", 8, "'size' takes a whole number"),
    ("a contains all 3", 12, "Expected a value (strings need quotes"),
    ("a = [1, 2", 10, "Expected ',' or ']'"),
    ("a matches '('", 11, "Invalid pattern"),
    ("a matches 3", 11, "'matches' takes a quoted pattern"),
    ("a", 2, "Expected an operator"),
    ("`` = 1", 1, "Empty field name"),
    # SQL's doubled quote is not an escape here: two strings in a row
    ("config.my-key = 'it''s'", 21, "Expected 'and', 'or' or the end of the filter"),
]


@pytest.mark.parametrize("text, column, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_syntax_errors_name_the_column(text, column, message):
    with pytest.raises(QueryError) as info:
        parse_text(text)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert f"at column {column}:" in text_of_error
    assert info.value.position == column - 1
    # the caret sits under the offending character
    lines = text_of_error.splitlines()
    assert lines[1] == "  " + text and lines[2] == "  " + " " * (column - 1) + "^"


def test_times_compare_as_times():
    import datetime as dt

    doc = {"start_time": dt.datetime(2024, 3, 1, 9, 30), "heartbeat": None}
    for text in ("start_time >= '2024-03-01'", "start_time = '2024-03-01T09:30:00'",
                 "start_time < '2024-03-01 10:30+00:59'", "start_time in ['2024-03-01 09:30']",
                 "start_time > '2024-03-01T08:30Z'", "heartbeat = null"):
        assert matches(parse_text(text), doc), text
    for text in ("start_time > '2024-03-01 09:30'", "start_time < '2024-03-01T10:30+01:00'",
                 "start_time != '2024-03-01 09:30:00.000'"):
        assert not matches(parse_text(text), doc), text
    assert parse({"stop_time": {"$lt": "2030"}}).value == dt.datetime(2030, 1, 1)
    listed = parse({"queue_time": {"$in": ["2024-02", None]}}).value
    assert listed == [dt.datetime(2024, 2, 1), None]
    with pytest.raises(QueryError, match="'start_time' holds times: 'yesterday' is not"):
        parse({"start_time": {"$gt": "yesterday"}})
    with pytest.raises(QueryError, match="'heartbeat' holds times"):
        parse({"heartbeat": "soon"})


def test_non_string_is_refused():
    with pytest.raises(QueryError, match="must be a string"):
        parse_text({"a": 1})
