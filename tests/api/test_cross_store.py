"""The same queries against every store kind: identical answers, equal to the Python evaluator.

Every store in ``STORE_KINDS`` (file, SQLite, PostgreSQL, MariaDB, MongoDB) gets the same
varied runs, written through the store interface: missing keys, None values, lists, nested
dicts, numbers written as text, booleans next to 0/1, unicode, tags in ``meta.tags`` and in
``info.tags``, an edited summary, a stale heartbeat (reported as DIED) and a fresh one. The
reference answer of each query comes from :class:`MemoryStore`, which keeps the documents in
memory and answers ``find`` with :mod:`labbook.stores.query`'s evaluator alone.
"""
from __future__ import annotations

import copy
import datetime as dt
import re

import pytest

from labbook import Api
from labbook.stores import open_store
from labbook.stores.base import Store
from labbook.stores.query import QueryError, evaluate, parse, query_view, sort_runs
from labbook.stores.query_text import parse_text

from tests.api.conftest import STORE_KINDS

T0 = dt.datetime(2024, 3, 1, 9, 0, 0, 125000)  # whole milliseconds: what MongoDB keeps
MINUTE = dt.timedelta(minutes=1)
#: a heartbeat far in the future is never stale, however long the tests take
FUTURE = dt.datetime(2100, 1, 1, 0, 0, 0, 500000)


def _doc(experiment: str, status: str, offset: int | None, config: dict, meta: dict | None = None,
         info: dict | None = None, host: dict | None = None, **fields) -> dict:
    doc = {"experiment": {"name": experiment, "sources": []}, "command": "main",
           "host": host or {"hostname": "alpha", "cpu": "x86", "gpus": {"count": 0}},
           "config": config, "meta": meta if meta is not None else {"command": "main"},
           "status": status, "resources": [], "artifacts": [], "captured_out": "out\n",
           "info": info or {}, "heartbeat": None, "result": None}
    if offset is not None:
        doc["start_time"] = T0 + offset * MINUTE
        doc["heartbeat"] = T0 + (offset + 5) * MINUTE
    doc.update(fields)
    return doc


def _series(values: list, first_step: int = 0) -> dict:
    return {"steps": list(range(first_step, first_step + len(values))), "values": list(values),
            "timestamps": [T0 + i * MINUTE for i in range(len(values))]}


#: (document, metrics) of runs 1..12, in the order they are created
RUNS = [
    (_doc("train", "COMPLETED", 0,
          {"lr": 0.001, "batch": 32, "optimizer": {"name": "sgd", "momentum": 0.9},
           "layers": [64, 32], "flag": True, "label": "résumé-α", "seed": 1},
          meta={"command": "main", "tags": ["baseline"]},
          stop_time=T0 + 3 * MINUTE, result=0.7),
     {"acc": _series([0.35, 0.7]), "loss": _series([1.0, 0.3])}),
    (_doc("train", "COMPLETED", 1,
          {"lr": 0.01, "batch": 64, "optimizer": {"name": "adam", "momentum": 0.0},
           "layers": [64, 32], "flag": False, "label": "plain", "seed": 2},
          meta={"command": "main", "tags": ["tuned"], "name": "lucky"},
          info={"tags": {"best": None}}, stop_time=T0 + 4 * MINUTE, result=0.9),
     {"acc": _series([0.45, 0.9]), "loss": _series([1.0, 0.1])}),
    (_doc("train", "FAILED", 2,
          {"lr": 0.1, "batch": "64", "optimizer": {"name": "Adam", "momentum": 0.5},
           "layers": [128], "flag": 1, "label": "", "seed": 3},
          stop_time=T0 + 5 * MINUTE, fail_trace=["Traceback", "RuntimeError: diverged"]),
     {"acc": _series([0.15, 0.3]), "loss": _series([1.0, 0.7])}),
    (_doc("train", "COMPLETED", 3,
          {"lr": 0.05, "batch": 128, "optimizer": {"name": "sgd", "momentum": 0.9},
           "layers": [], "flag": 0, "nested": {"a": {"b": {"c": 3}}}, "seed": 4},
          meta={"command": "main", "tags": ["tuned", "wide"], "notes": "try wide"},
          info={"tags": {"wide": 1}, "summary": {"acc": 0.99}},
          stop_time=T0 + 9 * MINUTE, result=0.8),
     {"acc": _series([0.4, 0.8]), "loss": _series([1.0, 0.2])}),
    (_doc("other", "COMPLETED", 4, {"lr": 0.5, "batch": 32, "drop out": 0.2, "depth": None},
          host={"hostname": "beta", "cpu": "arm"}, stop_time=T0 + 6 * MINUTE, result=0.6),
     {"acc": _series([0.6])}),
    (_doc("train", "RUNNING", 5, {"lr": None, "batch": 16, "layers": [8, 8, 8], "flag": None},
          meta={"command": "main", "tags": ["baseline"], "options": {"--beat_interval": 5}}),
     {"loss": _series([2.0, 1.5, 1.2])}),  # heartbeat in 2024: DIED
    (_doc("train", "RUNNING", 6, {"batch": 16, "label": "日本語"},
          meta={"command": "main", "tags": []}, heartbeat=FUTURE),
     {"loss": _series([3.0])}),
    (_doc("other", "INTERRUPTED", 7,
          {"lr": 2, "batch": 256, "layers": [[1, 2], [3]], "flag": True, "label": "Ünïcode",
           "optimizer": {"name": "adamw", "betas": [0.9, 0.999]}},
          meta={"command": "main", "tags": ["ünï", "baseline"]},
          host={"hostname": "beta", "cpu": "arm"}, stop_time=T0 + 8 * MINUTE),
     {"acc": _series([0.5, 0.55, 0.52], first_step=10)}),
    (_doc("queue", "QUEUED", None, {"lr": "0.3", "batch": 8, "tags": ["config", "tags"]},
          queue_time=T0 + 10 * MINUTE),
     {}),
    (_doc("ünïcode exp", "COMPLETED", 9,
          {"lr": 0.0001, "batch": 32, "optimizer": {"name": "SGD"}, "flag": True,
           "label": "résumé-β", "seed": 10},
          info={"tags": {"best": 2, "late": "yes"}}, stop_time=T0 + 12 * MINUTE, result=0.95),
     {"acc": _series([0.2, 0.6, 0.95]), "loss": _series([0.9, 0.5, 0.05])}),
    (_doc("train", "COMPLETED", 10,
          {"lr": 0.01, "batch": 64, "optimizer": {"name": "adam", "momentum": 0.0},
           "layers": [64, 32], "flag": False, "seed": 11},
          meta={"command": "main", "tags": ["tuned", "best"]},
          stop_time=T0 + 11 * MINUTE, result=0.9),
     {"acc": _series([0.3, 0.9]), "loss": _series([1.1, 0.15])}),
    (_doc("train", "FAILED", 11, {"lr": 0.1, "batch": 64, "layers": [128, 64]},
          meta={"command": "main", "tags": ["wide"]}, heartbeat=None,
          stop_time=T0 + 13 * MINUTE, fail_trace=["Traceback", "KeyError: 'x'"]),
     {"acc": _series([0.1])}),
]


def record_varied_runs(store: Store) -> None:
    for doc, metrics in RUNS:
        run_id = store.create_run(copy.deepcopy(doc))
        if metrics:
            store.append_metrics(run_id, copy.deepcopy(metrics))


class MemoryStore(Store):
    """Documents in memory; ``find`` is the Python evaluator alone: the reference."""

    def __init__(self):
        self.runs: dict[int, dict] = {}
        self.metrics: dict[int, dict] = {}
        self.url = "memory://"

    def create_run(self, doc, run_id=None):
        run_id = run_id or len(self.runs) + 1
        self.runs[run_id] = dict(copy.deepcopy(doc), _id=run_id)
        return run_id

    def update_run(self, run_id, fields):
        self.runs[run_id].update(copy.deepcopy(fields))

    def append_metrics(self, run_id, metrics_by_name):
        mine = self.metrics.setdefault(run_id, {})
        for name, series in metrics_by_name.items():
            target = mine.setdefault(name, {"steps": [], "values": [], "timestamps": []})
            for key in target:
                target[key].extend(series[key])

    def put_artifact(self, *args, **kwargs):
        raise NotImplementedError

    put_resource = open_artifact = put_artifact

    def get(self, run_id):
        doc = self.runs.get(run_id)
        return copy.deepcopy(doc)

    def find(self, filter=None, order=None, limit=None):
        node = parse(filter)
        views = [(d, query_view(d, self.last(run_id))) for run_id, d in sorted(self.runs.items())]
        views = [(d, v) for d, v in views if evaluate(node, v)]
        if order:
            views = sort_runs(views, order, view=lambda item: item[1])
        found = [copy.deepcopy(d) for d, _ in views]
        return found[:limit] if limit is not None else found

    def last(self, run_id):
        return {name: s["values"][-1] for name, s in self.metrics.get(run_id, {}).items()
                if s["values"]}

    def history(self, run_id, names=None):
        series = copy.deepcopy(self.metrics.get(run_id, {}))
        return series if names is None else {n: s for n, s in series.items() if n in names}


@pytest.fixture(scope="module")
def reference() -> Api:
    store = MemoryStore()
    record_varied_runs(store)
    return Api(store)


@pytest.fixture(scope="module", params=sorted(STORE_KINDS))
def varied(request, tmp_path_factory) -> Api:
    """An Api over each store kind holding the varied runs (built once per kind)."""
    tmp = tmp_path_factory.mktemp(f"varied-{request.param}")
    url = STORE_KINDS[request.param](request, tmp)
    store = open_store(url)
    record_varied_runs(store)
    api = Api(store)
    yield api
    api.close()


def ids(runs) -> list:
    return [run.id for run in runs]


def _no_differences(wrong: list) -> None:
    """Fail listing every query answered differently (not only the first)."""
    if wrong:
        pytest.fail(f"{len(wrong)} answers differ (query..., got, expected):\n"
                    + "\n".join(repr(w) for w in wrong), pytrace=False)


def _when(offset: int) -> dt.datetime:
    return T0 + offset * MINUTE


#: (text form or None, the filter dict, the expected ids in order of _id)
QUERIES = [
    ("config.lr = 0.01", {"config.lr": 0.01}, [2, 11]),
    ("config.lr = 2", {"config.lr": {"$eq": 2}}, [8]),
    ("config.lr = '0.3'", {"config.lr": "0.3"}, [9]),
    ("config.lr = null", {"config.lr": None}, [6, 7]),
    ("config.lr != 0.1", {"config.lr": {"$ne": 0.1}}, [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]),
    ("config.lr > 0.05", {"config.lr": {"$gt": 0.05}}, [3, 5, 8, 12]),
    ("config.lr >= 0.05", {"config.lr": {"$gte": 0.05}}, [3, 4, 5, 8, 12]),
    ("config.lr < 0.01", {"config.lr": {"$lt": 0.01}}, [1, 10]),
    ("config.lr <= 0.01", {"config.lr": {"$lte": 0.01}}, [1, 2, 10, 11]),
    ("config.lr > '0.1'", {"config.lr": {"$gt": "0.1"}}, [9]),
    ("config.batch = 64", {"config.batch": 64}, [2, 11, 12]),
    ("config.batch = '64'", {"config.batch": "64"}, [3]),
    ("config.batch in [32, '64', 8]", {"config.batch": {"$in": [32, "64", 8]}},
     [1, 3, 5, 9, 10]),
    ("config.batch not in [16, 32, 64]", {"config.batch": {"$nin": [16, 32, 64]}},
     [3, 4, 8, 9]),
    ("config.flag = true", {"config.flag": True}, [1, 3, 8, 10]),
    ("config.flag = false", {"config.flag": False}, [2, 4, 11]),
    ("config.flag = 0", {"config.flag": 0}, [2, 4, 11]),
    ("config.flag exists", {"config.flag": {"$exists": True}}, [1, 2, 3, 4, 6, 8, 10, 11]),
    ("config.flag not exists", {"config.flag": {"$exists": False}}, [5, 7, 9, 12]),
    ("config.depth exists", {"config.depth": {"$exists": 1}}, [5]),
    ("config.layers contains 64", {"config.layers": 64}, [1, 2, 11, 12]),
    ("config.layers = [64, 32]", {"config.layers": [64, 32]}, [1, 2, 11]),
    ("config.layers = []", {"config.layers": []}, [4]),
    ("config.layers contains [3]", {"config.layers": [3]}, [8]),
    ("config.layers size 2", {"config.layers": {"$size": 2}}, [1, 2, 8, 11, 12]),
    ("config.layers size 0", {"config.layers": {"$size": 0}}, [4]),
    ("config.layers contains all [32, 64]", {"config.layers": {"$all": [32, 64]}},
     [1, 2, 11]),
    ("config.layers contains all [128]", {"config.layers": {"$all": [128]}}, [3, 12]),
    ("config.layers.0 = 128", {"config.layers.0": 128}, [3, 12]),
    ("config.layers > 100", {"config.layers": {"$gt": 100}}, [3, 12]),
    ("config.optimizer.name = 'sgd'", {"config.optimizer.name": "sgd"}, [1, 4]),
    ("config.optimizer.name matches '^adam'", {"config.optimizer.name": {"$regex": "^adam"}},
     [2, 8, 11]),
    ("config.optimizer.name matches '(?i)^adam'",
     {"config.optimizer.name": {"$regex": "^adam", "$options": "i"}}, [2, 3, 8, 11]),
    ("config.optimizer.name not matches '^s'",
     {"config.optimizer.name": {"$not": {"$regex": "^s"}}}, [2, 3, 5, 6, 7, 8, 9, 10, 11, 12]),
    ("config.optimizer.momentum >= 0.5", {"config.optimizer.momentum": {"$gte": 0.5}},
     [1, 3, 4]),
    ("config.optimizer.betas contains 0.999", {"config.optimizer.betas": 0.999}, [8]),
    ("config.optimizer exists", {"config.optimizer": {"$exists": True}},
     [1, 2, 3, 4, 8, 10, 11]),
    ("config.nested.a.b.c = 3", {"config.nested.a.b.c": 3}, [4]),
    ("config.label matches 'résumé'", {"config.label": {"$regex": "résumé"}}, [1, 10]),
    ("config.label = '日本語'", {"config.label": "日本語"}, [7]),
    ("config.label = ''", {"config.label": ""}, [3]),
    ("config.label > 'p'", {"config.label": {"$gt": "p"}}, [1, 2, 7, 8, 10]),
    ("`config.drop out` > 0.1", {"config.drop out": {"$gt": 0.1}}, [5]),
    ("config.tags contains 'tags'", {"config.tags": "tags"}, [9]),
    ("status = 'COMPLETED'", {"status": "COMPLETED"}, [1, 2, 4, 5, 10, 11]),
    ("status = 'DIED'", {"status": "DIED"}, [6]),
    ("status = 'RUNNING'", {"status": "RUNNING"}, [7]),
    ("status in ['RUNNING', 'QUEUED']", {"status": {"$in": ["RUNNING", "QUEUED"]}}, [7, 9]),
    ("status != 'COMPLETED'", {"status": {"$ne": "COMPLETED"}}, [3, 6, 7, 8, 9, 12]),
    ("status not in ['COMPLETED', 'FAILED']", {"status": {"$nin": ["COMPLETED", "FAILED"]}},
     [6, 7, 8, 9]),
    ("status matches 'ED$'", {"status": {"$regex": "ED$"}}, [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]),
    ("experiment = 'other'", {"experiment.name": "other"}, [5, 8]),
    ("experiment.name matches '^ü'", {"experiment.name": {"$regex": "^ü"}}, [10]),
    ("experiment.name in ['queue', 'other']", {"experiment.name": {"$in": ["queue", "other"]}},
     [5, 8, 9]),
    ("host.hostname = 'beta'", {"host.hostname": "beta"}, [5, 8]),
    ("host.gpus.count = 0", {"host.gpus.count": 0}, [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]),
    ("host.gpus exists", {"host.gpus": {"$exists": True}}, [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]),
    ("tags contains 'baseline'", {"tags": "baseline"}, [1, 6, 8]),
    ("tags contains 'best'", {"tags": "best"}, [2, 10, 11]),
    ("tags contains 'ünï'", {"tags": "ünï"}, [8]),
    ("tags not contains 'tuned'", {"$nor": [{"tags": "tuned"}]}, [1, 3, 5, 6, 7, 8, 9, 10, 12]),
    ("tags in ['wide', 'late']", {"tags": {"$in": ["wide", "late"]}}, [4, 10, 12]),
    ("tags contains all ['tuned', 'best']", {"tags": {"$all": ["tuned", "best"]}}, [2, 11]),
    ("tags size 0", {"tags": {"$size": 0}}, [3, 5, 7, 9]),
    ("meta.tags contains 'best'", {"meta.tags": "best"}, [11]),
    ("meta.tags exists", {"meta.tags": {"$exists": True}}, [1, 2, 4, 6, 7, 8, 11, 12]),
    ("info.tags.best exists", {"info.tags.best": {"$exists": True}}, [2, 10]),
    ("info.tags.best = null", {"info.tags.best": None}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]),
    ("info.tags.late = 'yes'", {"info.tags.late": "yes"}, [10]),
    ("meta.notes matches 'wide'", {"meta.notes": {"$regex": "wide"}}, [4]),
    ("name = 'lucky'", {"name": "lucky"}, [2]),
    ("notes exists", {"notes": {"$exists": True}}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ("summary.acc > 0.85", {"summary.acc": {"$gt": 0.85}}, [2, 4, 10, 11]),
    ("summary.loss not exists", {"summary.loss": {"$exists": False}}, [5, 8, 9, 12]),
    ("summary.loss < 0.2 and status = 'COMPLETED'",
     {"$and": [{"summary.loss": {"$lt": 0.2}}, {"status": "COMPLETED"}]}, [2, 10, 11]),
    ("result >= 0.8", {"result": {"$gte": 0.8}}, [2, 4, 10, 11]),
    ("result = null", {"result": None}, [3, 6, 7, 8, 9, 12]),
    ("id in [3, 1, 99]", {"_id": {"$in": [3, 1, 99]}}, [1, 3]),
    ("id > 10", {"_id": {"$gt": 10}}, [11, 12]),
    ("start_time >= '2024-03-01 09:09:00.125'", {"start_time": {"$gte": _when(9)}},
     [10, 11, 12]),
    ("start_time < '2024-03-01T10:02:00.125+01:00'", {"start_time": {"$lt": _when(2)}},
     [1, 2]),
    ("start_time = '2024-03-01 09:04:00.125'", {"start_time": _when(4)}, [5]),
    ("start_time not exists", {"start_time": {"$exists": False}}, [9]),
    ("heartbeat > '2024-03-01 09:15:00.125'", {"heartbeat": {"$gt": _when(15)}}, [7]),
    ("heartbeat = null", {"heartbeat": None}, [9, 12]),
    ("stop_time <= '2024-03-01 09:05:00.125Z'", {"stop_time": {"$lte": _when(5)}},
     [1, 2, 3]),
    ("config.lr > 0.01 and (status = 'COMPLETED' or tags contains 'best')",
     {"$and": [{"config.lr": {"$gt": 0.01}},
               {"$or": [{"status": "COMPLETED"}, {"tags": "best"}]}]}, [4, 5]),
    ("not (config.lr > 0.01 or status = 'FAILED')",
     {"$nor": [{"$or": [{"config.lr": {"$gt": 0.01}}, {"status": "FAILED"}]}]},
     [1, 2, 6, 7, 9, 10, 11]),
    ("config.batch = 64 or experiment = 'other' and result > 0.5",
     {"$or": [{"config.batch": 64},
              {"$and": [{"experiment.name": "other"}, {"result": {"$gt": 0.5}}]}]},
     [2, 5, 11, 12]),
    ("not config.lr > 0.01", {"config.lr": {"$not": {"$gt": 0.01}}}, [1, 2, 6, 7, 9, 10, 11]),
    ("config.batch >= 32 and config.batch < 128", {"config.batch": {"$gte": 32, "$lt": 128}},
     [1, 2, 5, 10, 11, 12]),
    ("config.missing exists", {"config.missing": {"$exists": True}}, []),
    ("", {}, list(range(1, 13))),
]


@pytest.mark.parametrize("text, flt, expected", QUERIES,
                         ids=[q[0] or repr(q[1]) for q in QUERIES])
def test_the_reference_answers(reference, text, flt, expected):
    """The evaluator's answers, checked by hand once: the rest compare stores to them."""
    assert ids(reference.runs(flt, order="_id")) == expected
    if text is not None:
        assert parse_text(text) == flt or ids(reference.runs(text, order="_id")) == expected


def test_every_store_answers_every_query_like_the_reference(varied, reference):
    wrong = []
    for text, flt, expected in QUERIES:
        forms = [flt] if text is None else [flt, text]
        for form in forms:
            got = ids(varied.runs(form, order="_id"))
            if got != expected:
                wrong.append((form, got, expected))
            # the store's own find, without the API (for filters it can evaluate alone)
    _no_differences(wrong)


def test_stores_find_like_the_reference(varied, reference):
    """``Store.find`` itself, derived fields (tags, summary, DIED...) included."""
    wrong = []
    for _, flt, _ in QUERIES:
        for order, limit in ((None, None), ("-_id", 3), ("config.lr", None),
                             ("-summary.acc", 4), ("tags", None), ("status", 5)):
            want = [d["_id"] for d in reference.store.find(flt, order, limit)]
            got = [d["_id"] for d in varied.store.find(flt, order, limit)]
            if got != want:
                wrong.append((flt, order, limit, got, want))
    _no_differences(wrong)


ORDERS = ["_id", "-_id", "start_time", "-start_time", "config.lr", "-config.lr",
          "config.batch", "-config.batch", "+config.optimizer.name", "status", "-status",
          "experiment.name", "-host.hostname", "heartbeat", "-stop_time", "result",
          "-summary.acc", "summary.loss", "name", "-tags", "config.layers", "config.label"]


def test_orders_limits_and_pages_are_the_same_everywhere(varied, reference):
    wrong = []
    for order in ORDERS:
        for flt in (None, {"config.batch": {"$gte": 32}}, "tags contains 'baseline' or "
                    "status != 'COMPLETED'"):
            want = ids(reference.runs(flt, order=order))
            checks = {
                "all": ids(varied.runs(flt, order=order)),
                "len": len(varied.runs(flt, order=order, per_page=2)),
                "[:3]": ids(varied.runs(flt, order=order, per_page=2)[:3]),
                "[2:5]": ids(varied.runs(flt, order=order, per_page=1)[2:5]),
                "[-2:]": ids(varied.runs(flt, order=order, per_page=4)[-2:]),
                "iter": ids(iter(varied.runs(flt, order=order, per_page=3))),
            }
            expected = {"all": want, "len": len(want), "[:3]": want[:3], "[2:5]": want[2:5],
                        "[-2:]": want[-2:], "iter": want}
            for key, got in checks.items():
                if got != expected[key]:
                    wrong.append((order, flt, key, got, expected[key]))
    _no_differences(wrong)


def test_reference_orders_by_hand(reference):
    assert ids(reference.runs(order="-start_time")) == [12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1, 9]
    assert ids(reference.runs(order="config.lr")) == [10, 1, 2, 11, 4, 3, 12, 5, 8, 9, 6, 7]
    assert ids(reference.runs(order="-summary.acc"))[:4] == [4, 10, 2, 11]
    assert ids(reference.runs(order="status"))[:3] == [1, 2, 4]


BAD_FILTERS = [
    ({"config.lr": {"$almost": 1}}, r"Unknown operator '\$almost' on 'config.lr'"),
    ({"config.batch": {"$in": 32}}, r"\$in on 'config.batch' takes a list"),
    ({"config.batch": {"$nin": "32"}}, r"\$nin on 'config.batch' takes a list"),
    ({"config.layers": {"$all": 64}}, r"\$all on 'config.layers' takes a list"),
    ({"config.layers": {"$size": "2"}}, r"\$size on 'config.layers' takes an integer"),
    ({"config.layers": {"$size": True}}, r"\$size on 'config.layers' takes an integer"),
    ({"config.layers": {"$size": -1}}, r"\$size on 'config.layers' takes an integer"),
    ({"config.label": {"$regex": "("}}, r"Invalid \$regex on 'config.label'"),
    ({"config.label": {"$regex": 5}}, r"\$regex on 'config.label' takes a string"),
    ({"config.label": {"$regex": "a", "$options": "q"}},
     r"\$options on 'config.label'.*'q'"),
    ({"config.label": {"$options": "i"}}, r"\$options on 'config.label' needs a \$regex"),
    ({"config.label": {"$not": 5}}, r"\$not on 'config.label' takes"),
    ({"config.label": {"$not": {}}}, r"\$not on 'config.label' takes"),
    ({"config.label": {"$not": "("}}, r"Invalid \$regex on 'config.label'"),
    ({"config.lr": {"$exists": "yes"}}, r"\$exists on 'config.lr' takes true or false"),
    ({"config.lr": {"$gt": 1, "lr": 2}}, r"'config.lr' mixes operators .* and field names"),
    ({"$where": "1"}, r"Unknown top-level operator '\$where'"),
    ({"$and": {"a": 1}}, r"\$and takes a non-empty list"),
    ({"$or": []}, r"\$or takes a non-empty list"),
    ({"$nor": [3]}, r"A filter must be a dict"),
    ({"": 1}, r"Invalid field path ''"),
    ({"config..lr": 1}, r"Invalid field path 'config..lr'"),
    ({"tags": {"$sizes": 1}}, r"Unknown operator '\$sizes' on 'tags'"),
]


@pytest.mark.parametrize("flt, message", BAD_FILTERS, ids=[m for _, m in BAD_FILTERS])
def test_invalid_filters_are_the_same_error_everywhere(varied, reference, flt, message):
    with pytest.raises(QueryError, match=message) as expected:
        reference.runs(flt)
    with pytest.raises(QueryError) as api_error:
        varied.runs(flt)
    assert str(api_error.value) == str(expected.value)
    with pytest.raises(QueryError) as store_error:
        varied.store.find(flt)
    assert str(store_error.value) == str(expected.value)


def test_text_filters_that_are_invalid_point_at_the_column(varied):
    for text, column in (("config.lr >", 12), ("config.lr in 3", 14),
                         ("config.label matches '('", 22), ("(status = 'A'", 14)):
        with pytest.raises(QueryError, match=f"at column {column}"):
            varied.runs(text)


def test_documents_read_back_equal_everywhere(varied, reference):
    """The fields the queries look at come back the same from every store."""
    for want, got in zip(reference.runs(order="_id"), varied.runs(order="_id")):
        assert got.id == want.id
        for field in ("config", "meta", "host", "status", "result", "start_time",
                      "heartbeat", "stop_time", "queue_time"):
            assert got.doc.get(field) == want.doc.get(field), (got.id, field)
        assert got.info == want.info, got.id
        assert got.tags == want.tags and got.status == want.status
        assert got.name == want.name and got.notes == want.notes
        assert got.summary == want.summary, got.id
        assert re.sub(r"\s", "", got.captured_out) == "out"


# -- batched metric reads -------------------------------------------------------------------------
class CountingStore(Store):
    """Any store, recording every read call the API makes: ``(method, argument)``."""

    READS = ("find", "get", "history", "history_sampled", "history_many", "last_values")

    def __init__(self, inner: Store):
        self.inner = inner
        self.url = inner.url
        self.calls: list[tuple] = []

    def __getattribute__(self, name):
        if name in ("inner", "calls", "url", "READS", "__class__", "__dict__", "counts"):
            return object.__getattribute__(self, name)
        attr = getattr(object.__getattribute__(self, "inner"), name)
        if name not in CountingStore.READS:
            return attr
        calls = object.__getattribute__(self, "calls")

        def recorded(*args, **kwargs):
            first = args[0] if args else None
            if name in ("history_many", "last_values"):
                args = (list(first),) + args[1:]
                first = len(args[0])
            calls.append((name, first))
            return attr(*args, **kwargs)
        return recorded

    def counts(self) -> dict:
        out: dict = {}
        for name, _ in object.__getattribute__(self, "calls"):
            out[name] = out.get(name, 0) + 1
        out.pop("find", None)
        out.pop("get", None)
        return out

    create_run = update_run = append_metrics = put_artifact = put_resource = None
    get = find = history = open_artifact = None


def _columns_of(frame) -> dict:
    # NaN (no value) never equals itself: None stands for it here
    return {c: frame[c].astype(object).where(frame[c].notna(), None).tolist()
            for c in frame.columns if c.startswith(("id", "summary."))}


def test_summaries_of_many_runs_take_one_last_values_call_per_page(varied, reference):
    store = CountingStore(varied.store)
    api = Api(store)
    frame = api.runs(order="_id", per_page=5).to_dataframe()
    assert store.counts() == {"last_values": 3}  # 12 runs, pages of 5: never a history
    assert [n for name, n in store.calls if name == "last_values"] == [5, 5, 2]
    want = reference.runs(order="_id").to_dataframe()
    assert _columns_of(frame) == _columns_of(want)

    store.calls.clear()
    assert ids(api.runs("summary.acc > 0.85", order="_id")) == [2, 4, 10, 11]
    assert ids(api.runs(order="-summary.loss", per_page=4)) == \
        ids(reference.runs(order="-summary.loss"))
    # the store filters and orders by summary itself: the API reads no summaries for it
    assert store.counts() == {}

    # summaries read one run at a time still load a page of them at once
    store.calls.clear()
    summaries = [run.summary for run in api.runs(order="_id", per_page=4)]
    assert summaries == [run.summary for run in reference.runs(order="_id")]
    assert store.counts() == {"last_values": 3}
    assert [run.metrics for run in api.runs(order="_id", per_page=12)] == \
        [run.metrics for run in reference.runs(order="_id")]


def test_histories_of_many_runs_take_one_history_many_call_per_page(varied, reference):
    store = CountingStore(varied.store)
    runs = Api(store).runs(order="_id", per_page=5)
    for keys, samples in ((["acc"], 500), (None, 2), (["loss", "acc"], None), ("acc", 2)):
        store.calls.clear()
        got = runs.histories(keys, samples=samples, pandas=False)
        want = reference.runs(order="_id").histories(keys, samples=samples, pandas=False)
        assert got == want
        assert store.counts() == {"history_many": 3}, keys
    store.calls.clear()
    by_acc = runs.histories(["loss"], samples=None, x_axis="acc", pandas=False)
    assert by_acc == reference.runs(order="_id").histories(["loss"], samples=None,
                                                           x_axis="acc", pandas=False)
    assert store.counts() == {"history_many": 3}


def test_history_of_one_run_is_sampled_by_the_store(varied, reference):
    store = CountingStore(varied.store)
    run = Api(store).run(10)
    for keys in (None, ["acc"], "loss", ["nothing"]):
        for samples in (2, 3, 500):
            store.calls.clear()
            got = run.history(keys, samples=samples, pandas=False)
            assert got == reference.run(10).history(keys, samples=samples, pandas=False)
            assert store.counts() == {"history_sampled": 1}, (keys, samples)
    store.calls.clear()
    assert run.history(samples=None, pandas=False) == \
        reference.run(10).history(samples=None, pandas=False)
    assert store.counts() == {"history": 1}


def test_native_metric_reads_equal_the_generic_defaults(varied, reference):
    store = varied.store
    everything = list(range(1, 13)) + [99]
    assert store.history_many(everything) == Store.history_many(store, everything)
    assert store.history_many(everything) == reference.store.history_many(everything)
    assert store.history_many([3, "2", 99], ["acc"]) == Store.history_many(store, [3, "2", 99],
                                                                           ["acc"])
    assert store.history_many([1, 2], []) == Store.history_many(store, [1, 2], [])
    assert store.history_many([]) == {}
    assert store.last_values(everything) == Store.last_values(store, everything)
    assert store.last_values(everything) == reference.store.last_values(everything)
    assert store.last_values(["4", 9]) == Store.last_values(store, ["4", 9])
    for run_id in (1, 6, 8, 9, 10, "10"):
        for names in (None, ["acc"], ["acc", "loss", "nope"], []):
            for samples in (None, 2, 3, 100):
                assert store.history_sampled(run_id, names, samples) == \
                    Store.history_sampled(store, run_id, names, samples), (run_id, names)


class _CountingCollection:
    """A pymongo collection recording the queries sent through it."""

    def __init__(self, inner):
        self.inner = inner
        self.queries: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("find", "find_one", "aggregate", "count_documents"):
            def counted(*args, **kwargs):
                self.queries.append(name)
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.fixture
def bucketed_mongo(request, server_databases):
    """A MongoDB store with tiny metric buckets: series spread over many documents, one of
    them written the way Sacred writes (no bucket number)."""
    pytest.importorskip("pymongo")
    from labbook.stores.mongo import MongoStore

    store = MongoStore(server_databases.new("mongo", request), bucket_size=7, series_points=10)
    for run in range(1, 5):
        store.create_run(copy.deepcopy(RUNS[0][0]))
    store.metrics.insert_one({"run_id": 2, "name": "loss", "steps": [-2, -1],
                              "values": [9.0, 8.0], "timestamps": [T0, T0]})
    store.append_metrics(1, {"loss": _series([1 / (i + 1) for i in range(100)]),
                             "acc": _series([i / 50 for i in range(50)])})
    store.append_metrics(2, {"loss": _series([0.5, 0.25, 0.125])})
    for batch in range(4):  # appended in pieces that straddle bucket borders
        store.append_metrics(3, {"loss": _series([batch + i / 10 for i in range(5)],
                                                 first_step=5 * batch)})
    yield store
    store.close()


def test_mongo_native_metric_reads_over_buckets(bucketed_mongo):
    store = bucketed_mongo
    counting = _CountingCollection(store.metrics)
    store.metrics = counting
    try:
        run_ids = [1, 2, 3, 4, "3", 77]
        many = store.history_many(run_ids)
        assert counting.queries == ["find"]  # one query for every run
        assert many == Store.history_many(store, run_ids)
        assert len(many[1]["loss"]["values"]) == 100 and many[4] == {} and many[77] == {}
        assert many[2]["loss"]["steps"] == [-2, -1, 0, 1, 2]  # Sacred's document first
        assert many[3]["loss"]["steps"] == list(range(20))
        # counted on the server: labbook's documents by their count, not their summary points
        assert store.metric_counts(run_ids) == Store.metric_counts(store, run_ids)
        assert store.metric_counts([1, 2])[2] == {"loss": 5}

        counting.queries.clear()
        last = store.last_values(run_ids)
        assert counting.queries == ["find"]
        assert last == Store.last_values(store, run_ids)
        assert last[1] == {"acc": 49 / 50, "loss": 1 / 100} and last[2] == {"loss": 0.125}
        assert last[3] == {"loss": 3.4} and last[4] == {}

        for run_id in (1, 2, 3, "3", 4):
            for names in (None, ["loss"], ["acc", "nope"]):
                for samples in (None, 2, 3, 7, 8, 13, 49, 50, 51, 1000):
                    counting.queries.clear()
                    got = store.history_sampled(run_id, names, samples)
                    # the lengths (labbook's buckets carry them; documents Sacred wrote
                    # are measured with $size), then the chosen points
                    assert len(counting.queries) <= 3
                    assert got == Store.history_sampled(store, run_id, names, samples), \
                        (run_id, names, samples)
        sampled = store.history_sampled(1, ["loss"], 5)["loss"]
        assert sampled["steps"] == [0, 25, 50, 74, 99]
        assert sampled["values"] == [1 / (i + 1) for i in (0, 25, 50, 74, 99)]
        with pytest.raises(ValueError, match="at least 2"):
            store.history_sampled(1, None, 1)
    finally:
        store.metrics = counting.inner


# -- awkward values: every store against the evaluator ----------------------------------------
NAN, INF = float("nan"), float("inf")

EDGE_CONFIGS = [
    ({"x": NAN, "big": 2 ** 53 + 1, "neg": -0.0, "e": {}, "lst": [{"d": 1}, {"d": 2}],
      "mixed": [1, "1", True, None], "s": "COMPLETED ", "when": "2024-03-01"}, "completed"),
    ({"x": INF, "big": 2 ** 40, "e": {"k": None}, "lst": [], "mixed": [], "s": "completed"},
     "COMPLETED"),
    ({"x": -INF, "big": -5, "e": None, "lst": [[1], [2]], "mixed": "1", "s": "Completed"},
     "Completed"),
    ({"x": 1e308, "big": 0, "lst": {"d": 1}, "mixed": 1.0, "s": "", "neg": 0}, "COMPLETED"),
    ({}, "FAILED"),
    ({"x": True, "big": False, "mixed": [None], "s": None, "e": {"k": 0}}, "RUNNING"),
]

EDGE_QUERIES = [
    "config.x > 0", "config.x < 0", "config.x >= 1e308", "config.x != 1", "config.x exists",
    "config.x in [1]", "config.x = true", "config.big = 9007199254740993",
    "config.big > 9007199254740992", "config.big < 1", "config.big = false", "config.big = 0",
    "config.neg = 0", "config.neg < 0", "config.e = null", "config.e exists",
    "config.e.k = null", "config.e.k exists", "config.e.k = 0", "config.lst.d = 1",
    "config.lst.0.d = 1", "config.lst contains [1]", "config.lst size 0", "config.lst size 2",
    "config.lst = []", "config.mixed = 1", "config.mixed = '1'", "config.mixed = true",
    "config.mixed = null", "config.mixed contains null", "config.mixed in [null]",
    "config.mixed not in [1]", "config.mixed in [1, null]", "config.mixed contains all [1, '1']",
    "config.mixed size 1", "config.mixed > 0", "config.mixed >= '1'", "config.s = 'COMPLETED'",
    "config.s = 'completed'", "config.s > 'C'", "config.s < 'D'", "config.s matches '^c'",
    "config.s matches '(?i)^c'", "config.s matches 'ED $'", "config.s = ''", "config.s = null",
    "config.when = '2024-03-01'", "status = 'completed'", "status = 'COMPLETED'",
    "status in ['COMPLETED', 'Completed']", "status > 'D'", "status matches '^C'",
    "status != 'COMPLETED'", "not config.x > 0", "not config.s > 'C'",
    "not config.mixed >= 1", "config.missing = null", "config.missing != null",
]
EDGE_DICTS = [
    {"config.x": NAN}, {"config.x": {"$ne": NAN}}, {"config.x": {"$in": [INF, -INF]}},
    {"config.x": {"$gt": NAN}}, {"config.e": {}}, {"config.e": {"k": None}},
    {"config.e": {"$eq": {"k": 0}}}, {"config.lst": {"$all": []}},
    {"config.mixed": {"$all": [None]}}, {"config.mixed": {"$size": 4}},
    {"config.s": {"$regex": "^c", "$options": "i"}}, {"config.s": {"$not": {"$regex": "^C"}}},
    {"config.s": {"$regex": "e d$", "$options": "ix"}},
    {"status": {"$regex": "^c", "$options": "i"}},
    {"$or": [{"config.x": {"$gt": 1}}, {"config.big": {"$lt": 0}}]},
    {"$nor": [{"config.x": {"$exists": True}}, {"config.s": ""}]},
    {"config": {"$exists": True}}, {"config": {}},
]
EDGE_ORDERS = ["config.x", "-config.x", "config.big", "-config.big", "config.mixed",
               "-config.mixed", "config.s", "-config.s", "status", "config.e.k"]


def _edge_doc(config: dict, status: str, i: int) -> dict:
    return _doc("edge", status, i, config, heartbeat=FUTURE)


@pytest.fixture(scope="module")
def edge_reference() -> Api:
    store = MemoryStore()
    for i, (config, status) in enumerate(EDGE_CONFIGS):
        store.create_run(_edge_doc(config, status, i))
    return Api(store)


@pytest.fixture(scope="module", params=sorted(STORE_KINDS))
def edge(request, tmp_path_factory) -> Api:
    tmp = tmp_path_factory.mktemp(f"edge-{request.param}")
    store = open_store(STORE_KINDS[request.param](request, tmp))
    for i, (config, status) in enumerate(EDGE_CONFIGS):
        store.create_run(_edge_doc(config, status, i))
    api = Api(store)
    yield api
    api.close()


def test_awkward_values_answer_like_the_evaluator(edge, edge_reference):
    wrong = []
    for flt in EDGE_QUERIES + EDGE_DICTS:
        want = ids(edge_reference.runs(flt, order="_id"))
        got = ids(edge.runs(flt, order="_id"))
        if got != want:
            wrong.append((flt, got, want))
        if not isinstance(flt, str):
            got = [d["_id"] for d in edge.store.find(flt)]
            if got != want:
                wrong.append(("find", flt, got, want))
    for order in EDGE_ORDERS:
        want = ids(edge_reference.runs(order=order))
        for limit in (None, 2):
            got = [d["_id"] for d in edge.store.find(None, order, limit)]
            if got != want[:limit]:
                wrong.append(("order", order, limit, got, want[:limit]))
    _no_differences(wrong)


def test_listings_leave_the_output_out_where_the_store_can(varied, monkeypatch):
    import functools

    store = varied.store
    calls = []
    real_find = store.find

    @functools.wraps(real_find)
    def find(*args, **kwargs):
        calls.append(kwargs.get("exclude", ()))
        return real_find(*args, **kwargs)

    monkeypatch.setattr(store, "find", find)
    can = "exclude" in __import__("inspect").signature(real_find).parameters
    runs = list(varied.runs(order="_id", per_page=5))
    assert calls == [("captured_out",) if can else ()]
    assert sum("captured_out" not in run._doc for run in runs) == (12 if can else 0)
    assert runs[0].captured_out == "out\n"  # read on first use, with its page
    assert len(calls) == (2 if can else 1)
    assert [run.doc["captured_out"] for run in runs[:5]] == ["out\n"] * 5
    assert len(calls) == (2 if can else 1)
    assert [run.captured_out for run in runs] == ["out\n"] * 12
    assert len(calls) == (4 if can else 1)  # pages of 5, 5 and 2
    # a filter or an order on the output reads it
    calls.clear()
    assert ids(varied.runs("captured_out matches '^out'", order="-_id"))[:2] == [12, 11]
    assert ids(varied.runs(order="captured_out"))[:2] == [1, 2]
    assert calls == [(), ()]


def test_invalid_filters_fail_on_an_empty_store_too(empty_url):
    store = open_store(empty_url)
    try:
        for flt, message in BAD_FILTERS[:6]:
            with pytest.raises(QueryError, match=message):
                store.find(flt)
            with pytest.raises(QueryError, match=message):
                Api(store).runs(flt)
        assert store.find({"config.lr": {"$gt": 0}}) == []
    finally:
        store.close()


def test_mongo_sampling_equals_the_generic_one_for_any_layout(bucketed_mongo):
    """Random batch sizes over 7-point buckets, random sample counts: the same points."""
    import random

    store = bucketed_mongo
    rng = random.Random(7)
    for run_id in range(10, 30):
        store.create_run(copy.deepcopy(RUNS[0][0]), run_id)
        step = 0
        for _ in range(rng.randint(1, 6)):
            size = rng.randint(1, 20)
            names = rng.sample(["a", "b", "c"], rng.randint(1, 3))
            store.append_metrics(run_id, {n: _series([rng.random() for _ in range(size)],
                                                     first_step=step) for n in names})
            step += size
        for samples in (None, 2, rng.randint(2, 9), rng.randint(10, 130)):
            names = rng.choice([None, ["a"], ["b", "c"]])
            assert store.history_sampled(run_id, names, samples) == \
                Store.history_sampled(store, run_id, names, samples), (run_id, names, samples)
    batch = list(range(10, 30))
    assert store.history_many(batch, ["a", "c"]) == Store.history_many(store, batch, ["a", "c"])
    assert store.last_values(batch) == Store.last_values(store, batch)
