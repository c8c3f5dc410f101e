"""Values a store cannot hold are refused at the call that made them, naming the value and the
limit, or stored faithfully; an observer is never disabled by them mid-run."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import labbook
from labbook import Experiment
from labbook.errors import (ArtifactNameError, InvalidConfigKeyError, MetricNameError,
                            MetricValueError, UnserializableConfigError)
from tests.api.conftest import STORE_KINDS, server_databases  # noqa: F401 (a fixture)
from tests.stores.conftest import mysql_database, postgresql_database  # noqa: F401
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTIONS = {"--no-system-metrics": True, "--capture": "sys", "--loglevel": "ERROR"}


@pytest.fixture(params=["file", "sqlite"])
def url(request, tmp_path):
    if request.param == "file":
        return f"file://{tmp_path / 'runs'}"
    return f"sqlite:///{tmp_path / 'labbook.db'}"


def _run_calling(url, tmp_path, call):
    """A run that logs a metric, then makes ``call(_run, path)``; returns (error, stored run)."""
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    ex = Experiment("limits")

    @ex.main
    def main(_run):
        _run.log_scalar("before", 1.5)
        call(_run, str(artifact))
        return 42

    with pytest.raises(Exception) as info:
        ex.run(options={"--store": url, **OPTIONS})
    (stored,) = list(labbook.Api(url).runs())
    return info.value, stored


@pytest.mark.parametrize("name, message", [
    (".", "Artifact name '.' has an empty or '.' path component (a trailing '/', '//' or '/./'); "
          "name a file, e.g. 'plots/loss.png'."),
    ("trailing/", "Artifact name 'trailing/' has an empty or '.' path component (a trailing "
                  "'/', '//' or '/./'); name a file, e.g. 'plots/loss.png'."),
    ("a//b", "Artifact name 'a//b' has an empty or '.' path component"),
    ("x/./y", "Artifact name 'x/./y' has an empty or '.' path component"),
    ("", "Artifact name must be a non-empty string, got ''."),
    ("../up", "Artifact name '../up' contains '..'"),
    ("é" * 128, "has a path component of 256 bytes; the file store keeps at most 255 bytes "
                "per file or directory name."),
    ("d/" * 512 + "f", "is 1025 characters long; the SQL stores keep names of at most 1024 "
                       "characters."),
    ("bad\udcffname", "Artifact name 'bad\\udcffname' is not valid Unicode text (character 3 "
                      "is a lone surrogate"),
    # the file store's own files: an artifact of that name used to overwrite the config
    ("config.json", "Artifact name 'config.json' is the name of a file the file store keeps "
                    "for the run itself (config.json, cout.txt, info.json, metrics.json, "
                    "metrics.jsonl, run.json); choose another name, e.g. "
                    "'outputs/config.json'."),
    ("Run.JSON", "Artifact name 'Run.JSON' is the name of a file the file store keeps"),
])
def test_artifact_names_no_store_can_hold_fail_at_the_call(url, tmp_path, name, message):
    error, stored = _run_calling(url, tmp_path, lambda run, path: run.add_artifact(path, name))
    assert isinstance(error, ArtifactNameError)
    assert message in str(error)
    # the run ends FAILED with the error, the store saw everything before it: nothing RUNNING
    assert stored.status == "FAILED"
    assert message.splitlines()[0] in stored.fail_trace
    assert stored.history("before", samples=None)["before"].tolist() == [1.5]
    assert stored.artifacts == []


def test_artifact_names_within_the_limits_are_stored(url, tmp_path):
    names = ["é" * 127 + "a", "a/" * 400 + "f", "sub/dir/file.txt"]
    ex = Experiment("limits")
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")

    @ex.main
    def main(_run):
        for name in names:
            _run.add_artifact(str(artifact), name)
        return 1

    assert ex.run(options={"--store": url, **OPTIONS}).status == "COMPLETED"
    (stored,) = list(labbook.Api(url).runs())
    assert sorted(stored.artifacts) == sorted(names)
    for name in names:
        with stored.file(name).open() as fh:
            assert fh.read() == b"weights"


@pytest.mark.parametrize("name, error, message", [
    ("m" * 256, MetricNameError, "Metric name 'mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm'... is "
                                 "256 characters long; the SQL stores keep metric names of at "
                                 "most 255 characters."),
    ("", MetricNameError, "Metric names must be non-empty strings, got ''."),
    (3, MetricNameError, "Metric names must be non-empty strings, got 3."),
    ("a\x00b", MetricNameError, "Metric name 'a\\x00b' contains a NUL character, which "
                                "PostgreSQL cannot store."),
    ("\udcff", MetricNameError, "Metric name '\\udcff' is not valid Unicode text"),
])
def test_metric_names_no_store_can_hold_fail_at_the_call(url, tmp_path, name, error, message):
    err, stored = _run_calling(url, tmp_path, lambda run, path: run.log_scalar(name, 1.0))
    assert isinstance(err, error)
    assert str(err).startswith(message)
    assert stored.status == "FAILED"
    assert stored.history("before", samples=None)["before"].tolist() == [1.5]


@pytest.mark.parametrize("call, message", [
    (lambda run, path: run.log_scalar("big", 2 ** 53 + 1), "Metric 'big' got the integer "
     "9007199254740993, beyond 2**53: the SQL stores keep metric values as 64-bit floats "
     "(DOUBLE), which cannot hold it exactly. Log float(value) if an approximation is meant."),
    (lambda run, path: run.log({"big": -2 ** 70}), "Metric 'big' got the integer "
     "-1180591620717411303424, beyond 2**53"),
    (lambda run, path: run.log_scalar("big", np.int64(2 ** 62)), "Metric 'big' got the "
     "integer 4611686018427387904, beyond 2**53"),
    (lambda run, path: run.log_scalar("m", 1.0, 2 ** 64), "The step of metric 'm' is 65 bits "
     "long; stores keep 64-bit steps."),
    (lambda run, path: run.log_scalar("m", 1.0, 1.5), "The step of metric 'm' must be an "
     "integer, got float: 1.5."),
])
def test_metric_ints_beyond_2_53_and_steps_beyond_64_bits_fail_at_the_call(
        url, tmp_path, call, message):
    err, stored = _run_calling(url, tmp_path, call)
    assert isinstance(err, MetricValueError)
    assert str(err).startswith(message)
    assert stored.status == "FAILED"
    assert stored.history("before", samples=None)["before"].tolist() == [1.5]


def test_resource_whose_stored_copy_name_is_too_long_fails_at_the_call(url, tmp_path):
    resource = tmp_path / ("r" * 230 + ".txt")
    resource.write_text("data")
    err, stored = _run_calling(url, tmp_path, lambda run, path: run.open_resource(resource))
    assert isinstance(err, ArtifactNameError)
    assert str(err).startswith(f"Resource file name '{'r' * 40}'... makes a stored copy name "
                               "of 267 bytes (the name plus '_' and its md5); the file store "
                               "keeps at most 255 bytes per file name.")
    assert stored.status == "FAILED"


@pytest.mark.parametrize("config, error, message", [
    ({"name": "bad\udcff"}, UnserializableConfigError,
     "Config entry 'name' has a value of type builtins.str that cannot be stored as JSON: "
     "character 3 of the text is a lone surrogate"),
    ({"n": 1 << 20000}, UnserializableConfigError,
     "Config entry 'n' has a value of type builtins.int that cannot be stored as JSON: an "
     "integer of 20001 bits is beyond Python's limit for integers as text"),
    ({"bad\udcffkey": 1}, InvalidConfigKeyError,
     "Invalid config key 'bad\\udcffkey': character 3 is a lone surrogate"),
])
def test_config_values_no_store_can_hold_fail_before_the_run(url, tmp_path, config, error,
                                                             message):
    ex = Experiment("limits")
    ex.add_config({"name": 0, "n": 0})
    ex.main(lambda: 1)
    with pytest.raises(error) as info:  # given as updates: refused before the run starts
        ex.run(config_updates=config, options={"--store": url, **OPTIONS})
    assert str(info.value).startswith(message)
    with pytest.raises(error):  # given to add_config: refused at once
        ex.add_config(config)
    assert not os.path.exists(str(tmp_path / "runs" / "1"))
    assert not os.path.exists(str(tmp_path / "labbook.db"))


@pytest.mark.parametrize("kind", ["file", "sqlite", "postgresql", "mysql", "mongo"])
def test_argv_that_is_not_utf8_is_stored_with_backslash_escapes(kind, request, tmp_path):
    url = STORE_KINDS[kind](request, tmp_path)
    script = tmp_path / "exp.py"
    script.write_text("from labbook import Experiment\n"
                      "ex = Experiment('argv')\n\n"
                      "@ex.config\ndef cfg():\n    name = 'x'\n\n"
                      "@ex.automain\ndef main(name, _run):\n"
                      "    _run.log_scalar('after', 1)\n    return name\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    args = [sys.executable, os.fsencode(script), b"with", b"name=caf\xe9", b"-c", b"\xff note",
            b"--store", os.fsencode(url), b"--no-system-metrics"]
    proc = subprocess.run(args, capture_output=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"failed" not in proc.stderr, proc.stderr.decode(errors="replace")
    (stored,) = list(labbook.Api(url).runs())
    assert stored.status == "COMPLETED"
    assert stored.config["name"] == "caf\\xe9"
    assert stored.result == "caf\\xe9"
    assert stored.doc["meta"]["comment"] == "\\xff note"
    assert stored.history("after", samples=None)["after"].tolist() == [1]


def test_mongo_keeps_integers_beyond_64_bits_exactly(mongo_url):  # noqa: F811
    big = {"pos": 2 ** 64, "neg": -2 ** 100 - 1, "edge": 2 ** 63 - 1, "list": [2 ** 70, 1],
           "\\int": 5}
    ex = Experiment("bigints")
    ex.add_config(cfg=big)

    @ex.main
    def main(_run, cfg):
        _run.info["big"] = 3 ** 90
        _run.log_scalar("m", 2 ** 53)
        return {"r": -(3 ** 80)}

    run = ex.run(options={"--store": mongo_url, **OPTIONS})
    assert run.status == "COMPLETED"
    api = labbook.Api(mongo_url)
    (stored,) = list(api.runs())
    assert stored.config["cfg"] == big
    assert type(stored.config["cfg"]["pos"]) is int
    assert stored.info["big"] == 3 ** 90
    assert stored.result == {"r": -(3 ** 80)}
    assert stored.history("m", samples=None, pandas=False)[0]["m"] == 2 ** 53
    # filters still find the run by its big values (the store narrows, Python decides)
    assert [r.id for r in api.runs({"config.cfg.pos": {"$gt": 5}})] == [stored.id]
    assert [r.id for r in api.runs({"config.cfg.neg": {"$lt": 0}})] == [stored.id]
    assert [r.id for r in api.runs({"config.cfg.pos": 2 ** 64})] == [stored.id]
    assert list(api.runs({"config.cfg.pos": {"$lt": 5}})) == []


def test_limits_agree_with_the_sql_schema():
    from labbook.metrics import METRIC_NAME_CHARS
    from labbook.run import NAME_CHARS
    from labbook.stores.sql import schema

    assert schema.artifacts.c.name.type.length == NAME_CHARS
    assert schema.run_resources.c.name.type.length == NAME_CHARS
    assert schema.metrics.c.name.type.length == METRIC_NAME_CHARS


TAG_LOOKALIKES = {"$float": "NaN", "t": {"$time": "2020-01-01T00:00:00"}, "e": {"$esc": ["a", 1]},
                  "l": [{"$float": []}], "n": float("nan")}


@pytest.mark.parametrize("kind", ["sqlite", "mongo"])
def test_user_dicts_shaped_like_codec_tags_read_back_as_themselves(kind, tmp_path, request):
    # the strict JSON of the SQL stores tags NaN as {"$float": "NaN"}: a user's dict of that
    # shape used to come back as NaN, and {"$float": []} made every read of the run fail
    url = f"sqlite:///{tmp_path / 'l.db'}" if kind == "sqlite" else \
        request.getfixturevalue("mongo_url")
    ex = Experiment("tags")

    @ex.main
    def main(_run):
        _run.info["odd"] = TAG_LOOKALIKES
        _run.info["\x00key"] = 1  # BSON keys cannot hold NUL: escaped on Mongo
        return {"$float": "Infinity"}

    run = ex.run(options={"--store": url, **OPTIONS})
    stored = labbook.Api(url).run(run._id)
    odd = stored.info["odd"]
    assert {k: v for k, v in odd.items() if k != "n"} == \
        {k: v for k, v in TAG_LOOKALIKES.items() if k != "n"}
    assert odd["n"] != odd["n"]  # a real NaN is still NaN
    assert stored.info["\x00key"] == 1
    assert stored.result == {"$float": "Infinity"}


def test_strict_json_codec_escapes_tag_shaped_dicts():
    from labbook import serialize

    for value in [{"$float": "NaN"}, {"$time": "2020-01-01"}, {"$esc": [1, 2]},
                  {"$esc": ["$float", "NaN"]}, {"a": [{"$float": []}]}]:
        for times in (False, True):
            assert serialize.loads_strict(serialize.dumps_strict(value, times=times)) == value
    assert serialize.unescape_key(serialize.escape_key("a\x00.b$")) == "a\x00.b$"
    assert "\x00" not in serialize.escape_key("a\x00b")


@pytest.mark.parametrize("kind", ["file", "sqlite", "postgresql", "mongo"])
def test_results_and_info_with_lone_surrogates_are_stored_with_escapes(kind, tmp_path, request):
    # text decoded from bytes that are not UTF-8 (os.listdir, os.environ) used to make the SQL
    # and Mongo observers fail at the heartbeat: the run stayed RUNNING, its result lost
    url = STORE_KINDS[kind](request, tmp_path)
    ex = Experiment("surrogates")

    @ex.main
    def main(_run):
        _run.info["bad\udcffkey"] = ["val\udcff", "ok"]
        _run.log_scalar("after", 1)
        return "res\udc80"

    run = ex.run(options={"--store": url, **OPTIONS})
    stored = labbook.Api(url).run(run._id)
    assert stored.status == "COMPLETED"
    assert stored.history("after", samples=None, pandas=False)[0]["after"] == 1
    if kind == "file":  # JSON files keep the lone surrogates themselves (\udcff escapes)
        assert stored.result == "res\udc80"
        assert stored.info["bad\udcffkey"] == ["val\udcff", "ok"]
    else:  # UTF-8 databases: each lone surrogate as the text of its escape
        assert stored.result == "res\\udc80"
        assert stored.info["bad\\udcffkey"] == ["val\\udcff", "ok"]


@pytest.mark.parametrize("kind", ["file", "sqlite", "postgresql", "mysql", "mongo"])
def test_filters_on_integers_beyond_64_bits_answer_exactly(kind, tmp_path, request):
    # a filter with such an operand used to end in an OverflowError traceback on SQLite
    url = STORE_KINDS[kind](request, tmp_path)
    ex = Experiment("bigfilters")
    ex.add_config(n=2 ** 70 + 1, m=-(2 ** 64) - 3, s=2 ** 53 + 1)
    ex.main(lambda: 1)
    ex.run(options={"--store": url, **OPTIONS})
    api = labbook.Api(url)
    hits = [{"config.n": 2 ** 70 + 1}, {"config.n": {"$gte": 2 ** 70 + 1}},
            {"config.n": {"$gt": 2 ** 70}}, {"config.m": -(2 ** 64) - 3},
            {"config.m": {"$lt": -(2 ** 64) - 2}}, {"config.s": 2 ** 53 + 1},
            {"config.s": {"$gt": 2 ** 53}}, {"config.n": {"$in": [2 ** 70 + 1, 3]}},
            {"_id": {"$lt": 2 ** 70}}]
    misses = [{"config.n": 2 ** 70}, {"config.n": {"$gt": 2 ** 70 + 1}},
              {"config.s": 2 ** 53}, {"config.m": {"$gt": -(2 ** 64) - 3}}, {"_id": 2 ** 70}]
    assert [len(api.runs(f)) for f in hits] == [1] * len(hits)
    assert [len(api.runs(f)) for f in misses] == [0] * len(misses)


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_negative_zero_metric_keeps_its_sign_on_sql_stores(kind, tmp_path, request):
    # SQLite and MariaDB store -0.0 as 0: found by the property tests
    from tests.stores.conftest import backend_url

    url = backend_url(request, kind, tmp_path)
    ex = Experiment("zero")

    @ex.main
    def main(_run):
        for value in (-0.0, 0.0, -0.0, 1.5):
            _run.log_scalar("m", value)

    run = ex.run(options={"--store": url, **OPTIONS})
    rows = labbook.Api(url).run(run._id).history("m", samples=None, pandas=False)
    back = [row["m"] for row in rows]
    assert back == [0.0, 0.0, 0.0, 1.5]
    assert [str(v) for v in back] == ["-0.0", "0.0", "-0.0", "1.5"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_numpy_nan_in_result_and_info_is_stored(kind, tmp_path, request):
    # numpy 2 writes repr(np.float64('nan')) as 'np.float64(nan)': the strict JSON codec failed
    # on it and the SQL observer never stored the run (found by the property tests)
    from tests.stores.conftest import backend_url

    url = backend_url(request, kind, tmp_path)
    ex = Experiment("npnan")

    @ex.main
    def main(_run):
        _run.info["x"] = {"nan": np.float64("nan"), "inf": -np.float64("inf")}
        return np.float64("inf")

    run = ex.run(options={"--store": url, **OPTIONS})
    stored = labbook.Api(url).run(run._id)
    assert stored.status == "COMPLETED"
    assert stored.result == float("inf")
    assert stored.info["x"]["nan"] != stored.info["x"]["nan"]
    assert stored.info["x"]["inf"] == -float("inf")


@pytest.mark.parametrize("value", [{"$int": "5"}, {"$float": "1.0"}, {"$float": "Infinity"},
                                   1.0, -0.0, 2 ** 70, float("inf"), "1.0", {"$esc": ["a", 1]}])
def test_sqlite_json_columns_keep_top_level_values_apart_from_their_tags(value):
    # SQLite's JSON columns tag whole-number floats and >64-bit ints; a user's dict of the
    # tags' shape must not be read back as the number
    from labbook.stores.sql.values import dumps_sqlite_json, loads_sqlite_json

    back = loads_sqlite_json(dumps_sqlite_json(value))
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize("value", [np.float64(0.0), np.float32(3.0), np.float64(-2.0)])
def test_sqlite_json_columns_read_numpy_whole_floats_back_as_floats(value):
    # numpy 2's repr of a float64 names its type ('np.float64(0.0)'): the SQLite tag held that
    # text and a run returning np.float64(0.0) came back as {"$float": "np.float64(0.0)"}
    from labbook.stores.sql.values import dumps_sqlite_json, loads_sqlite_json

    back = loads_sqlite_json(dumps_sqlite_json(value))
    assert back == float(value) and type(back) is float
