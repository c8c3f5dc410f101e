"""Metric series: one document per series that Omniboard reads whole (Sacred's layout), the
points past it in overflow documents with a bounded summary of them in the first document,
``system.*`` series in a collection of their own; idempotent appends, histories of one or many
runs, last values, counts and sampled histories computed on the server, and the stored samples
of long series."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import pymongo
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure

from labbook import clock, serialize
from labbook.errors import ObserverError
from labbook.stores.base import max_steps, sample_positions
from labbook.stores.mongo.codec import _batch_token, _from_bson, _to_bson
from labbook.stores.mongo.connection import translated
from labbook.stores.mongo.schema import (BUCKET_LENGTH, COUNTED_FROM_START, LAST_FIELD,
                                         MAX_SERIES_ELEMENTS, SUMMARY_SLOTS,
                                         SYSTEM_METRIC_PREFIX)

__all__ = ["log", "SAMPLE_CACHE_POINTS", "CACHED_SAMPLES", "MetricsMixin", "extremum_key"]

log = logging.getLogger("labbook.stores.mongo")

#: a series of at least this many points gets its default sample stored when its run ends
#: (``labbook_samples``): ``history()`` then reads 500 points, not 20 buckets of 50,000
SAMPLE_CACHE_POINTS = 200_000
#: the number of samples cached: ``RunView.history``'s default
CACHED_SAMPLES = 500

_ARRAYS = ("steps", "values", "timestamps")


def extremum_key(value: Any) -> tuple:
    """The order in which MongoDB's ``$min``/``$max`` compare metric values (BSON's order:
    numbers before strings before documents..., NaN below every number), so the summary keeps
    the points Omniboard's min and max columns pick from the whole series."""
    if isinstance(value, bool):
        return (8, int(value))
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return (2, 0, 0.0)
        return (2, 1, value)
    if isinstance(value, str):
        return (3, value.encode("utf-8"))
    if isinstance(value, dict):
        return (4, repr(sorted(value.items())))
    if isinstance(value, list):
        return (5, repr(value))
    return (6, repr(value))


@dataclass
class _Position:
    """Where a series' next point goes.

    ``bucket`` 0 is the series' first document (in ``metrics``, or ``system_metrics`` for a
    ``system.*`` series); 1, 2... are the overflow documents. ``summary`` layouts (the user's
    series) keep ``first`` whole points in the first document and after them SUMMARY_SLOTS
    points per overflow document; the others (``system.*`` series, and series written by
    labbook before this layout: ``legacy``) are plain buckets in one collection.
    """

    system: bool
    legacy: bool = False
    first: int = 0
    bucket: int = 0
    count: int = 0
    #: overflow documents whose summary is to be (re)computed from the database
    stale: set = field(default_factory=set)

    @property
    def summary(self) -> bool:
        return not (self.system or self.legacy)


class MetricsMixin:
    """Metric series, for :class:`~labbook.stores.mongo.MongoStore`."""

    # -- where series live ---------------------------------------------------------------------
    def _first_collection(self, position: _Position) -> Any:
        return self.system_metrics if position.system and not position.legacy else self.metrics

    def _rest_collection(self, position: _Position) -> Any:
        if position.legacy:
            return self.metrics
        return self.system_metrics if position.system else self.overflow

    def _collections_for(self, names: list[str] | None) -> list[Any]:
        """The collections that may hold the series ``names`` (None: all of them)."""
        out = [self.metrics]
        if names is None or any(not n.startswith(SYSTEM_METRIC_PREFIX) for n in names):
            out.append(self.overflow)
        if names is None or any(n.startswith(SYSTEM_METRIC_PREFIX) for n in names):
            out.append(self.system_metrics)
        return out

    @staticmethod
    def _length(doc: dict) -> int:
        """The number of the series' points in a metrics document."""
        if doc.get(COUNTED_FROM_START) is True and isinstance(doc.get(BUCKET_LENGTH), int):
            return doc[BUCKET_LENGTH]
        return len(doc.get("steps") or [])

    def _last_bucket(self, collection: Any, run_id: Any, name: str,
                     first_only: bool = False) -> dict | None:
        query: dict = {"run_id": run_id, "name": name}
        query["bucket"] = 0 if first_only else {"$exists": True}
        doc = collection.find_one(query, projection={"bucket": 1, BUCKET_LENGTH: 1,
                                                     COUNTED_FROM_START: 1},
                                  sort=[("bucket", pymongo.DESCENDING)])
        if doc is not None and not (doc.get(COUNTED_FROM_START) is True
                                    and isinstance(doc.get(BUCKET_LENGTH), int)):
            doc = collection.find_one({"_id": doc["_id"]}, projection={
                "bucket": 1, "steps": 1})  # written before lengths were kept: measured
        return doc

    def _position(self, run_id: Any, name: str) -> _Position:
        """Where the series goes on: from this store's memory, else from the database."""
        known = self._positions.get((run_id, name))
        if known is not None:
            return known
        system = name.startswith(SYSTEM_METRIC_PREFIX)
        position = _Position(system=system)
        state = self._state.get(run_id)
        if state is not None and state.fresh:
            return position
        if system:
            last = self._last_bucket(self.system_metrics, run_id, name)
            if last is None:
                legacy = self._last_bucket(self.metrics, run_id, name)
                if legacy is not None:  # begun in the metrics collection: it goes on there
                    last, position.legacy = legacy, True
            if last is not None:
                position.bucket, position.count = int(last["bucket"]), self._length(last)
            return position
        last = self._last_bucket(self.overflow, run_id, name)
        if last is not None:
            first = self._last_bucket(self.metrics, run_id, name, first_only=True)
            position.first = self._length(first) if first is not None else 0
            position.bucket, position.count = int(last["bucket"]), self._length(last)
            # the summaries of the documents written last may not have followed their points
            # (a process that stopped between the two writes): computed again
            position.stale = {b for b in (position.bucket - 1, position.bucket) if b >= 1}
            return position
        last = self._last_bucket(self.metrics, run_id, name)
        if last is None:
            return position  # nothing, or one document Sacred wrote (kept first by history)
        position.bucket, position.count = int(last["bucket"]), self._length(last)
        if position.bucket >= 1:
            position.legacy = True  # buckets of an earlier labbook: continued as they are
        else:
            position.first = position.count
        return position

    def _capacity(self, position: _Position) -> int:
        if position.summary and position.bucket == 0:
            return self.series_points
        return self.bucket_size

    def _extremes(self, run_id: Any, name: str, bucket: int, count: int | None
                  ) -> tuple | None:
        """(min point, max point) of the first ``count`` points (None: all) of an overflow
        document, each point ``(index, step, value, timestamp)``: from memory, else read."""
        known = self._extremes_cache.get((run_id, name, bucket))
        if known is not None or count == 0:
            return known
        doc = self.overflow.find_one({"run_id": run_id, "name": name, "bucket": bucket},
                                     projection={"_id": 0, BUCKET_LENGTH: 1,
                                                 COUNTED_FROM_START: 1,
                                                 **{k: 1 for k in _ARRAYS}}) or {}
        if count is None:
            count = self._length(doc)
        points = list(zip(range(count), *((doc.get(k) or [])[:count] for k in _ARRAYS)))
        return self._merge_extremes(None, points)

    @staticmethod
    def _merge_extremes(known: tuple | None, points: list[tuple]) -> tuple | None:
        lo, hi = known if known is not None else (None, None)
        for point in points:
            key = extremum_key(point[2])
            if point[2] is None:
                continue  # $min and $max pass over nulls
            if lo is None or key < extremum_key(lo[2]):
                lo = point
            if hi is None or key > extremum_key(hi[2]):
                hi = point
        return None if lo is None else (lo, hi)

    @translated
    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        if not metrics_by_name:
            return
        self._ensure_indexes()
        ops: dict[str, list] = {}  # collection name -> its updates
        collections: dict[str, Any] = {}
        first_docs: dict[int, str] = {}  # index in the metrics ops -> name, for info.metrics
        summaries: list = []
        after: dict[str, _Position] = {}
        extremes: dict[tuple, tuple | None] = {}
        for name, series in metrics_by_name.items():
            steps = _to_bson(list(series["steps"]))
            values = _to_bson(list(series["values"]))
            stamps = [clock.to_utc(t) if isinstance(t, str) else t
                      for t in series["timestamps"]]
            known = self._position(run_id, name)
            position = _Position(known.system, known.legacy, known.first, known.bucket,
                                 known.count, set(known.stale))
            touched: dict[int, list] = {}  # overflow document -> its new points
            pos = 0
            while pos < len(steps):
                if position.count >= self._capacity(position):
                    if position.summary and position.bucket == 0:
                        position.first = position.count
                    position.bucket, position.count = position.bucket + 1, 0
                    if position.summary and position.first + SUMMARY_SLOTS * position.bucket \
                            > MAX_SERIES_ELEMENTS:
                        raise ObserverError(
                            f"Metric {name!r} of run {run_id!r} has too many points for the "
                            f"MongoDB store's summary document (over "
                            f"{position.first + (position.bucket - 1) * self.bucket_size} "
                            f"points in documents of {self.bucket_size}); log it less often.")
                take = min(self._capacity(position) - position.count, len(steps) - pos)
                end = pos + take
                token = _batch_token(name, steps[pos:end], values[pos:end], stamps[pos:end])
                collection = (self._first_collection(position) if position.bucket == 0
                              else self._rest_collection(position))
                collections[collection.name] = collection
                batch = ops.setdefault(collection.name, [])
                if position.bucket == 0 and position.count == 0 and collection is self.metrics:
                    first_docs[len(batch)] = name
                # A document remembers the last batch pushed into it: the same batch sent again
                # (its reply was lost) matches nothing and stores nothing twice.
                query = {"run_id": run_id, "name": name, "bucket": position.bucket,
                         "labbook_batch": {"$ne": token}}
                batch.append(UpdateOne(query, {
                    "$push": {"steps": {"$each": steps[pos:end]},
                              "values": {"$each": values[pos:end]},
                              "timestamps": {"$each": stamps[pos:end]}},
                    # the document's number of points, so readers need not measure the arrays
                    # (a first document holds summary points after them); counted from its
                    # creation on (COUNTED_FROM_START) or not trusted
                    "$inc": {BUCKET_LENGTH: take},
                    "$setOnInsert": {COUNTED_FROM_START: True},
                    "$set": {"labbook_batch": token}}, upsert=position.count == 0))
                if position.summary and position.bucket >= 1:
                    touched.setdefault(position.bucket, []).extend(
                        (position.count + i, steps[pos + i], values[pos + i], stamps[pos + i])
                        for i in range(take))
                pos, position.count = end, position.count + take
            if position.summary and (touched or position.stale):
                summaries.append(self._summary_update(run_id, name, position, touched,
                                                      extremes))
                position.stale = set()
            after[name] = position
        upserted: dict = {}
        # the first documents before the overflow ones, and the summaries after both: a summary
        # is written at the end of the whole points it follows
        order = sorted(ops, key=lambda c: c != self.metrics.name)
        for name in order:
            done = self._bulk(collections[name], ops[name])
            if name == self.metrics.name:
                upserted = done
        if summaries:
            self._bulk(self.metrics, summaries)
        for index in sorted(i for i in upserted if i in first_docs):
            if run_id in self._state:  # a run this process writes: its next update says so
                self._refs_of(run_id).append(
                    {"name": first_docs[index], "id": str(upserted[index])})
        for name, position in after.items():
            self._positions[(run_id, name)] = position
        self._extremes_cache.update(extremes)
        # the run's summary: each metric's last value, on the run document (LAST_FIELD)
        last = {f"{LAST_FIELD}.{serialize.escape_key(name)}": _to_bson(series["values"][-1])
                for name, series in metrics_by_name.items() if len(series["values"])}
        if last:
            self.runs.update_one({"_id": run_id}, {"$set": last})

    def _summary_update(self, run_id: Any, name: str, position: _Position,
                        touched: dict[int, list], extremes: dict) -> UpdateOne:
        """The update that writes the summary of the overflow documents from the first one
        touched (or stale) to the last: SUMMARY_SLOTS points each (its minimum, maximum and
        last point, in series order), pushed where that summary begins with ``$position`` and
        the older summary points after them cut by ``$slice``: one atomic update, the same
        result when repeated, and the first document's last point is the series' last."""
        low = min(set(touched) | position.stale)
        slots: list[tuple] = []
        for bucket in range(low, position.bucket + 1):
            new = touched.get(bucket, [])
            # the points stored before this batch: up to the first new one, else all
            before = new[0][0] if new else None
            ext = self._merge_extremes(self._extremes(run_id, name, bucket, before), new)
            extremes[(run_id, name, bucket)] = ext
            last = new[-1] if new else self._last_point(run_id, name, bucket)
            if ext is None or last is None:
                continue
            slots.extend(sorted([ext[0], ext[1], last], key=lambda p: p[0]))
        base = position.first + SUMMARY_SLOTS * (low - 1)
        push = {key: {"$each": [slot[i + 1] for slot in slots], "$position": base,
                      "$slice": base + len(slots)} for i, key in enumerate(_ARRAYS)}
        return UpdateOne({"run_id": run_id, "name": name, "bucket": 0}, {"$push": push})

    def _last_point(self, run_id: Any, name: str, bucket: int) -> tuple | None:
        doc = self.overflow.find_one({"run_id": run_id, "name": name, "bucket": bucket},
                                     projection={"_id": 0, BUCKET_LENGTH: 1,
                                                 COUNTED_FROM_START: 1, "steps": 1,
                                                 "values": 1, "timestamps": 1})
        if not doc:
            return None
        n = self._length(doc)
        if n == 0:
            return None
        return (n - 1, *((doc.get(k) or [None] * n)[n - 1] for k in _ARRAYS))

    @staticmethod
    def _bulk(collection: Any, ops: list) -> dict:
        """Run the updates (unordered); {index: upserted id}. A duplicate document is a batch
        an earlier attempt stored: nothing to do."""
        try:
            return collection.bulk_write(ops, ordered=False).upserted_ids or {}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return {u["index"]: u["_id"] for u in exc.details.get("upserted", [])}

    def _forget_series(self, run_id: Any) -> None:
        """Drop what this store remembers of the run's series (deleted or replaced)."""
        for key in [k for k in self._positions if k[0] == run_id]:
            del self._positions[key]
        for key in [k for k in self._extremes_cache if k[0] == run_id]:
            del self._extremes_cache[key]

    def _delete_series(self, run_id: Any) -> None:
        for collection in (self.metrics, self.overflow, self.system_metrics, self.samples):
            collection.delete_many({"run_id": run_id})
        self._forget_series(run_id)

    def _series_docs(self, query: dict, names: list[str] | None, fields: Iterable[str]
                     ) -> list[dict]:
        """The metrics documents matching ``query`` from every collection that may hold the
        series ``names``, each cut to the series' own points, in series order (by name; a
        document Sacred wrote, without a bucket number, first)."""
        projection = {"_id": 0, "run_id": 1, "name": 1, "bucket": 1, BUCKET_LENGTH: 1,
                      COUNTED_FROM_START: 1, **{f: 1 for f in fields}}
        docs = []
        for collection in self._collections_for(names):
            docs.extend(collection.find(query, projection=projection))
        for doc in docs:
            if doc.get(COUNTED_FROM_START) is True and isinstance(doc.get(BUCKET_LENGTH), int):
                n = doc[BUCKET_LENGTH]  # summary points after the series' own: not read
                for key in fields:
                    if isinstance(doc.get(key), list) and len(doc[key]) > n:
                        doc[key] = doc[key][:n]
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        return docs

    def _cache_samples(self, run_id: Any) -> None:
        """Store the default sample of the run's long series (its points are all in now)."""
        try:
            lengths = self._bucket_lengths({"run_id": run_id})
            if lengths is None:
                return
            totals: dict[str, int] = {}
            for doc in lengths:
                totals[doc["name"]] = totals.get(doc["name"], 0) + doc["ns"]
            long = [name for name, n in totals.items() if n >= SAMPLE_CACHE_POINTS]
            if not long:
                return
            sampled = self._sample_buckets(
                [d for d in lengths if d["name"] in long], CACHED_SAMPLES)
            for name in long:
                self.samples.replace_one(
                    {"_id": f"{run_id}/{name}/{CACHED_SAMPLES}"},
                    {"run_id": run_id, "name": name, "samples": CACHED_SAMPLES,
                     "n": totals[name], **sampled[name]}, upsert=True)
        except (ConnectionFailure, OperationFailure):
            raise
        except Exception:  # a cache: the run's record stands without it
            log.debug("could not cache the samples of run %r", run_id, exc_info=True)

    @translated
    def history(self, run_id: Any, names: Iterable[str] | None = None
                ) -> dict[str, dict[str, list]]:
        names = None if names is None else list(names)
        query: dict = {"run_id": run_id}
        if isinstance(run_id, str) and run_id.isdigit():
            query["run_id"] = {"$in": [run_id, int(run_id)]}  # ids typed on a command line
        if names is not None:
            query["name"] = {"$in": names}
        out: dict[str, dict[str, list]] = {}
        for doc in self._series_docs(query, names, _ARRAYS):
            series = out.setdefault(doc["name"], {"steps": [], "values": [], "timestamps": []})
            for key in _ARRAYS:
                series[key].extend(doc.get(key) or [])
        return out

    @translated
    def last_steps(self, run_id: Any) -> dict[str, int]:
        """From the series' ``steps`` arrays alone (values and times are not read)."""
        query: dict = {"run_id": run_id}
        if isinstance(run_id, str) and run_id.isdigit():
            query["run_id"] = {"$in": [run_id, int(run_id)]}  # ids typed on a command line
        history: dict[str, dict[str, list]] = {}
        for doc in self._series_docs(query, None, ("steps",)):
            history.setdefault(doc["name"], {"steps": []})["steps"].extend(doc.get("steps") or [])
        return max_steps(history)

    @staticmethod
    def _runs_wanted(run_ids: Iterable[Any]) -> dict[Any, list]:
        """Stored ``run_id`` value -> the requested ids it answers (``"3"`` asks for 3 too)."""
        wanted: dict[Any, list] = {}
        for run_id in dict.fromkeys(run_ids):
            variants = [run_id]
            if isinstance(run_id, str) and run_id.isdigit():
                variants.append(int(run_id))  # ids typed on a command line
            for value in variants:
                wanted.setdefault(value, []).append(run_id)
        return wanted

    @translated
    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        """Every requested run's history from one query per collection (``run_id: {$in}``)."""
        run_ids = list(run_ids)
        names = None if names is None else list(names)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, dict[str, list]]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        query: dict = {"run_id": {"$in": list(wanted)}}
        if names is not None:
            query["name"] = {"$in": names}
        # as history(): by name, a document Sacred wrote (no bucket) first, then the buckets
        for doc in self._series_docs(query, names, _ARRAYS):
            for run_id in wanted.get(doc.get("run_id"), ()):
                series = out[run_id].setdefault(doc["name"], {"steps": [], "values": [],
                                                              "timestamps": []})
                for key in _ARRAYS:
                    series[key].extend(doc.get(key) or [])
        return out

    @translated
    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """Each metric's last value for many runs from one query, reading one value per
        metrics document (``$slice``) instead of whole series."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        for raw in self.runs.find({"_id": {"$in": list(wanted)}, LAST_FIELD: {"$exists": True}},
                                  projection={LAST_FIELD: 1}):
            last = {serialize.unescape_key(k): _from_bson(v)
                    for k, v in (raw.get(LAST_FIELD) or {}).items()}
            for run_id in wanted.pop(raw["_id"], ()):
                out[run_id] = dict(last)
        if not wanted:
            return out
        # runs written by Sacred (or before LAST_FIELD): the last element of each series (the
        # last element of a first document holding a summary is the series' last point too)
        docs = []
        for collection in (self.metrics, self.system_metrics):
            docs.extend(collection.find({"run_id": {"$in": list(wanted)}}, projection={
                "_id": 0, "run_id": 1, "name": 1, "bucket": 1, "values": {"$slice": -1}}))
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in docs:
            values = doc.get("values") or []
            if values:  # the last document with points has the last value
                for run_id in wanted.get(doc.get("run_id"), ()):
                    out[run_id][doc["name"]] = values[-1]
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000, *,
                    times: bool = True) -> Iterator[dict[str, list]]:
        """One metric document (bucket) at a time, cut into pages of ``page_size``
        (``times`` False: without ``timestamps``, which are then not sent)."""
        keys = _ARRAYS if times else tuple(k for k in _ARRAYS if k != "timestamps")
        query = {"run_id": {"$in": list(self._runs_wanted([run_id]))}, "name": name}
        found = []
        try:
            for collection in self._collections_for([name]):
                found.extend((collection, ref) for ref in collection.find(query, projection={
                    "_id": 1, "bucket": 1, BUCKET_LENGTH: 1, COUNTED_FROM_START: 1}))
        except ConnectionFailure as exc:
            raise self.connection_error(exc) from exc
        # a document without a bucket number was written by Sacred: it comes first
        found.sort(key=lambda item: item[1].get("bucket", -1))
        for collection, ref in found:
            doc = collection.find_one({"_id": ref["_id"]}, projection=dict(
                {"_id": 0}, **dict.fromkeys(keys, 1))) or {}
            steps = doc.get("steps") or []
            n = (ref[BUCKET_LENGTH] if ref.get(COUNTED_FROM_START) is True
                 and isinstance(ref.get(BUCKET_LENGTH), int) else len(steps))
            for start in range(0, min(n, len(steps)), page_size):
                stop = min(start + page_size, n)
                yield {key: list((doc.get(key) or [])[start:stop]) for key in keys}

    @staticmethod
    def _counted(field: str) -> dict:
        """The number of points of a document, on the server: its stored length where labbook
        counted it, else the length of the array ``field``."""
        number = {"$in": [{"$type": f"${BUCKET_LENGTH}"}, ["int", "long", "double"]]}
        return {"$cond": [{"$and": [{"$eq": [f"${COUNTED_FROM_START}", True]}, number]},
                          f"${BUCKET_LENGTH}", {"$size": {"$ifNull": [f"${field}", []]}}]}

    @translated
    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: points}}`` from the lengths of the metric documents (the server
        counts; no point is sent)."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, int]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        for collection in self._collections_for(None):
            for doc in collection.aggregate([
                    {"$match": {"run_id": {"$in": list(wanted)}}},
                    {"$project": {"_id": 0, "run_id": 1, "name": 1,
                                  "n": self._counted("values")}}]):
                for run_id in wanted.get(doc.get("run_id"), ()):
                    counts = out[run_id]
                    counts[doc["name"]] = counts.get(doc["name"], 0) + int(doc["n"])
        return out

    @translated
    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """The points ``sample_series`` keeps, picked on the server: the lengths of the metrics
        documents (stored in labbook's documents, else measured), then one query per collection
        that returns only the chosen elements; the default sample of a long series of an ended
        run comes from ``labbook_samples``, stored when the run ended."""
        if samples is None:
            return self.history(run_id, names)
        names = None if names is None else list(names)
        query: dict = {"run_id": {"$in": list(self._runs_wanted([run_id]))}}
        if names is not None:
            query["name"] = {"$in": names}
        docs = self._bucket_lengths(query, names)
        if docs is None:
            # ragged documents (not written by labbook): the generic reading is the definition
            return super().history_sampled(run_id, names, samples)
        totals: dict[str, int] = {}
        for doc in docs:
            totals[doc["name"]] = totals.get(doc["name"], 0) + doc["ns"]
        out: dict[str, dict[str, list]] = {}
        if samples == CACHED_SAMPLES:
            long = [name for name, n in totals.items() if n >= SAMPLE_CACHE_POINTS]
            if long:
                for cached in self.samples.find({**query, "name": {"$in": long},
                                                 "samples": samples}):
                    if cached.get("n") == totals.get(cached["name"]):  # nothing added since
                        out[cached["name"]] = {key: list(cached.get(key) or [])
                                               for key in _ARRAYS}
        rest = [d for d in docs if d["name"] not in out]
        out.update(self._sample_buckets(rest, samples))
        return out

    def _bucket_lengths(self, query: dict, names: list[str] | None = None
                        ) -> list[dict] | None:
        """``_id``, ``name``, ``bucket``, the collection ``coll`` and the number of points
        ``ns`` of each metrics document matching ``query``, in series order; None when a
        document's arrays differ in length."""
        def size(field: str) -> dict:
            return {"$size": {"$ifNull": [f"${field}", []]}}

        docs = []
        for collection in self._collections_for(names):
            found = list(collection.find(query, {"_id": 1, "name": 1, "bucket": 1,
                                                 BUCKET_LENGTH: 1, COUNTED_FROM_START: 1}))
            if found and all(d.get(COUNTED_FROM_START) is True
                             and isinstance(d.get(BUCKET_LENGTH), int) for d in found):
                # labbook's documents know their length: no array is read to measure it
                for doc in found:
                    doc["ns"] = doc["nv"] = doc["nt"] = doc[BUCKET_LENGTH]
            elif found:
                found = list(collection.aggregate([
                    {"$match": query},
                    {"$project": {"_id": 1, "name": 1, "bucket": 1, "ns": self._counted("steps"),
                                  "nv": self._counted("values"),
                                  "nt": self._counted("timestamps"),
                                  "n_steps": size("steps"), "n_values": size("values"),
                                  "n_stamps": size("timestamps")}}]))
                for doc in found:
                    if min(doc.pop("n_steps"), doc.pop("n_values"), doc.pop("n_stamps")) \
                            < doc["ns"]:
                        doc["nv"] = -1  # shorter arrays than the count says: ragged
            for doc in found:
                doc["coll"] = collection.name
            docs.extend(found)
        if any(d["ns"] != d["nv"] or d["ns"] != d["nt"] for d in docs):
            return None
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        return docs

    def _sample_buckets(self, docs: list[dict], samples: int) -> dict[str, dict[str, list]]:
        """The sampled series of the metrics documents ``docs`` (from ``_bucket_lengths``)."""
        by_name: dict[str, list[dict]] = {}
        for doc in docs:
            by_name.setdefault(doc["name"], []).append(doc)
        picks: dict[Any, list[int] | None] = {}  # document id -> its elements (None: all)
        lengths: dict[Any, int] = {}
        colls: dict[str, list] = {}  # collection -> the ids of its documents picked from
        for series_docs in by_name.values():
            total = sum(d["ns"] for d in series_docs)
            chosen_docs: list[tuple[dict, list[int] | None]] = []
            if total <= samples:
                chosen_docs = [(d, None) for d in series_docs if d["ns"]]
            else:
                positions = sample_positions(total, samples)
                start, k = 0, 0
                for doc in series_docs:
                    local = []
                    while k < len(positions) and positions[k] < start + doc["ns"]:
                        local.append(positions[k] - start)
                        k += 1
                    if local:
                        chosen_docs.append((doc, local))
                    start += doc["ns"]
            for doc, local in chosen_docs:
                picks[doc["_id"]] = local
                lengths[doc["_id"]] = doc["ns"]
                colls.setdefault(doc["coll"], []).append(doc["_id"])
        out: dict[str, dict[str, list]] = {
            name: {"steps": [], "values": [], "timestamps": []} for name in by_name}
        if not picks:
            return out
        branches = [{"case": {"$eq": ["$_id", doc_id]}, "then": local}
                    for doc_id, local in picks.items() if local is not None]

        def chosen(field: str) -> Any:
            if not branches:
                return f"${field}"
            pick = {"$switch": {"branches": branches, "default": None}}
            return {"$let": {"vars": {"pick": pick}, "in": {"$cond": [
                {"$eq": ["$$pick", None]}, f"${field}",
                {"$map": {"input": "$$pick", "as": "i",
                          "in": {"$arrayElemAt": [f"${field}", "$$i"]}}}]}}}

        found = []
        for name, ids in colls.items():
            found.extend(self.db[name].aggregate([
                {"$match": {"_id": {"$in": ids}}},
                {"$project": {"_id": 1, "name": 1, "bucket": 1, "steps": chosen("steps"),
                              "values": chosen("values"),
                              "timestamps": chosen("timestamps")}}]))
        found.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in found:
            series = out[doc["name"]]
            whole = picks.get(doc["_id"]) is None
            for key in _ARRAYS:
                values = doc.get(key) or []
                if whole:  # a first document's summary points are not the series'
                    values = values[:lengths[doc["_id"]]]
                series[key].extend(values)
        return out
