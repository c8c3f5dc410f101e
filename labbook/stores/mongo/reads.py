"""The read side of runs: documents decoded, ``get`` and ``find`` (a native filter for the
server, the Python evaluator for the exact answer, orders sorted by the server where it sorts
as :func:`~labbook.stores.query.sort_runs` does)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import gridfs
import pymongo

from labbook import clock, serialize
from labbook.stores import query as _query
from labbook.stores.base import LAST_KEY
from labbook.stores.mongo.codec import _from_bson, _is_metric_refs
from labbook.stores.mongo.compiler import (_NATIVE_ORDERS, _and, _is_none, _projected,
                                           native_filter)
from labbook.stores.mongo.connection import translated
from labbook.stores.mongo.schema import LAST_FIELD
from labbook.stores.query import Cond, Logical, Not, evaluate, parse, sort_runs

__all__ = ["ReadsMixin"]


def _batches(cursor: Any, size: int) -> Any:
    batch: list = []
    for raw in cursor:
        batch.append(raw)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ReadsMixin:
    """Reading runs, for :class:`~labbook.stores.mongo.MongoStore`."""

    def _decode(self, raw: dict) -> dict:
        spilled = raw.pop("labbook_spill", None) or {}
        raw.pop(LAST_FIELD, None)
        doc = _from_bson(raw)
        info = doc.get("info")
        if isinstance(info, dict) and _is_metric_refs(info.get("metrics")):
            # Sacred's links to the metric documents: bookkeeping, not the run's info
            doc["info"] = {k: v for k, v in info.items() if k != "metrics"}
        for name, file_id in spilled.items():
            if name in doc:
                try:
                    doc[name] = self._read_spill(name, file_id)
                except gridfs.errors.NoFile:
                    # replaced between our two reads: the run document names the new file
                    fresh = self.runs.find_one({"_id": raw["_id"]},
                                               projection={"labbook_spill": 1}) or {}
                    newer = (fresh.get("labbook_spill") or {}).get(name)
                    if newer is not None:
                        doc[name] = self._read_spill(name, newer)
        return doc

    def _find_raw(self, run_id: Any, projection: dict | None = None) -> dict | None:
        raw = self.runs.find_one({"_id": run_id}, projection=projection)
        if raw is None and isinstance(run_id, str) and run_id.isdigit():
            raw = self.runs.find_one({"_id": int(run_id)}, projection=projection)
        return raw

    @translated
    def get(self, run_id: Any) -> dict | None:
        raw = self._find_raw(run_id)
        return None if raw is None else self._decode(raw)

    @translated
    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False) -> list[dict]:
        """Run documents matching ``filter``; the top-level fields in ``exclude`` (such as
        ``captured_out``) are left out of them unless the filter or the order needs them;
        ``with_last`` adds each run's last values (``LAST_KEY``) where its document has them."""
        node = filter if isinstance(filter, Cond | Logical | Not) else parse(filter)
        order = _query.canonical_order(order)  # wandb's spellings (-created_at)
        native = native_filter(node)
        if _is_none(native) or (limit is not None and limit == 0):
            return []
        if limit is not None and limit < 0:
            # Python's slice meaning, as in the file store
            return self.find(node, order, exclude=exclude, with_last=with_last)[:limit]
        heads = _query.heads(node, order)
        left_out = {f: 0 for f in exclude if f not in heads and f not in ("_id", "labbook_spill")}
        summary = "summary" in heads
        now = clock.utcnow()
        path = order.lstrip("+-") if order else "_id"
        if path in _NATIVE_ORDERS:
            # the server sorts as sort_runs does (see _sorted_cursors): candidates come in
            # order and the first `limit` that pass the Python check are the answer
            out: list[dict] = []
            descending = bool(order) and order.startswith("-")
            for query, sort in self._sorted_queries(native, path, descending):
                for batch in self._pages(query, sort, left_out, limit):
                    for doc, view in self._views(batch, summary, now, with_last):
                        if evaluate(node, view):
                            out.append(doc)
                            if limit is not None and len(out) >= limit:
                                return out
            return out
        # Order in Python (sort_runs: missing values last, numbers before text), reading only
        # the fields the filter and the order need, then fetch the winners in full.
        projection = {h: 1 for h in _projected(heads)}
        projection["labbook_spill"] = 1
        if summary:
            projection[LAST_FIELD] = 1
        found = list(self.runs.find(native, projection))
        rows = [view for _, view in self._views(found, summary, now) if evaluate(node, view)]
        rows.sort(key=lambda r: (not isinstance(r["_id"], int | float), r["_id"]
                                 if isinstance(r["_id"], int | float) else str(r["_id"])))
        ids = [r["_id"] for r in sort_runs(rows, order)]
        if limit is not None:
            ids = ids[:limit]
        full = {raw["_id"]: raw for raw in self.runs.find({"_id": {"$in": ids}},
                                                          left_out or None)}
        return [doc for doc, _ in self._views([full[i] for i in ids if i in full], False, now,
                                              with_last)]

    @staticmethod
    def _sorted_queries(native: dict, path: str, descending: bool) -> list[tuple[dict, list]]:
        """(filter, sort) pairs that list the runs matching ``native`` in sort_runs's order of
        ``path`` (an id or a time: one type, so MongoDB's order is Python's), ties by id.
        Missing and null values come last in both directions: MongoDB puts them last when
        descending, so ascending reads the present values first, then the others."""
        if path == "_id":
            return [(native, [("_id", pymongo.DESCENDING if descending else pymongo.ASCENDING)])]
        if descending:
            return [(native, [(path, pymongo.DESCENDING), ("_id", pymongo.ASCENDING)])]
        return [(_and([native, {path: {"$ne": None}}]),
                 [(path, pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]),
                (_and([native, {path: None}]), [("_id", pymongo.ASCENDING)])]

    def _pages(self, query: dict, sort: list, left_out: dict, limit: int | None
               ) -> Iterator[list[dict]]:
        """The sorted runs in growing pages (skip/limit): a server asked for a limit sorts only
        what it returns (mongoeco otherwise prepares every match before the first batch)."""
        projection = left_out or None
        if limit is None:
            yield from _batches(self.runs.find(query, projection).sort(sort), 200)
            return
        # a filter that the Python check narrows keeps a part of what the server sends:
        # ask for a few pages' worth at first, then twice as many each time
        offset, take = 0, max(4 * limit, 100)
        while True:
            page = list(self.runs.find(query, projection).sort(sort).skip(offset).limit(take))
            if page:
                yield page
            if len(page) < take:
                return
            offset, take = offset + take, take * 2

    def _views(self, raws: list[dict], summary: bool, now: Any, with_last: bool = False
               ) -> list[tuple[dict, dict]]:
        """(document, query view) of raw run documents; the views of ``summary`` queries
        get each run's last values (from LAST_FIELD, else one batch from the metrics), and
        with ``with_last`` the documents that have LAST_FIELD carry it as LAST_KEY."""
        lasts: dict[Any, dict] = {}
        missing = []
        for raw in raws if summary or with_last else ():
            if LAST_FIELD in raw:
                lasts[raw["_id"]] = {serialize.unescape_key(k): _from_bson(v)
                                     for k, v in (raw[LAST_FIELD] or {}).items()}
            else:
                missing.append(raw["_id"])
        if summary and missing:
            lasts.update(self.last_values(missing))
        out = []
        for raw in raws:
            doc = self._decode(raw)
            last = lasts.get(doc["_id"])
            out.append((doc, _query.query_view(doc, last if summary else None, now)))
            if with_last and last is not None:
                doc[LAST_KEY] = dict(last)
        return out
