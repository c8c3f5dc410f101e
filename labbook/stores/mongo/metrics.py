"""Metric series in buckets: idempotent appends, histories of one or many runs, last values,
counts and sampled histories computed on the server, and the stored samples of long series."""
from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

import pymongo
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure

from labbook import clock, serialize
from labbook.stores.base import sample_positions
from labbook.stores.mongo.codec import _batch_token, _from_bson, _to_bson
from labbook.stores.mongo.connection import translated
from labbook.stores.mongo.schema import BUCKET_LENGTH, COUNTED_FROM_START, LAST_FIELD

__all__ = ["log", "SAMPLE_CACHE_POINTS", "CACHED_SAMPLES", "MetricsMixin"]

log = logging.getLogger("labbook.stores.mongo")

#: a series of at least this many points gets its default sample stored when its run ends
#: (``labbook_samples``): ``history()`` then reads 500 points, not 20 buckets of 50,000
SAMPLE_CACHE_POINTS = 200_000
#: the number of samples cached: ``RunView.history``'s default
CACHED_SAMPLES = 500


class MetricsMixin:
    """Metric series, for :class:`~labbook.stores.mongo.MongoStore`."""

    def _bucket_of(self, run_id: Any, name: str) -> tuple[int, int]:
        """(index, length) of the last bucket of a series."""
        known = self._buckets.get((run_id, name))
        if known is not None:
            return known
        state = self._state.get(run_id)
        if state is not None and state.fresh:
            return 0, 0
        last = self.metrics.find_one({"run_id": run_id, "name": name, "bucket": {"$exists": True}},
                                     projection={"bucket": 1, "steps": 1},
                                     sort=[("bucket", pymongo.DESCENDING)])
        if last is None:
            return 0, 0  # nothing, or one document Sacred wrote (kept first by history)
        return int(last["bucket"]), len(last.get("steps") or [])

    @translated
    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        if not metrics_by_name:
            return
        self._ensure_indexes()
        ops = []
        after: dict[str, tuple[int, int]] = {}
        first_buckets: dict[int, str] = {}  # index in ops -> name, for a series' first document
        for name, series in metrics_by_name.items():
            steps = _to_bson(list(series["steps"]))
            values = _to_bson(list(series["values"]))
            stamps = [clock.to_utc(t) if isinstance(t, str) else t
                      for t in series["timestamps"]]
            bucket, count = self._bucket_of(run_id, name)
            pos = 0
            while pos < len(steps):
                if count >= self.bucket_size:
                    bucket, count = bucket + 1, 0
                take = min(self.bucket_size - count, len(steps) - pos)
                end = pos + take
                token = _batch_token(name, steps[pos:end], values[pos:end], stamps[pos:end])
                if bucket == 0 and count == 0:
                    first_buckets[len(ops)] = name
                # A bucket remembers the last batch pushed into it: the same batch sent again
                # (its reply was lost) matches nothing and stores nothing twice.
                query = {"run_id": run_id, "name": name, "bucket": bucket,
                         "labbook_batch": {"$ne": token}}
                ops.append(UpdateOne(query, {
                    "$push": {"steps": {"$each": steps[pos:end]},
                              "values": {"$each": values[pos:end]},
                              "timestamps": {"$each": stamps[pos:end]}},
                    # the bucket's length, so readers need not measure the arrays; counted
                    # from its creation on (COUNTED_FROM_START) or not trusted
                    "$inc": {BUCKET_LENGTH: take},
                    "$setOnInsert": {COUNTED_FROM_START: True},
                    "$set": {"labbook_batch": token}}, upsert=count == 0))
                pos, count = end, count + take
            after[name] = (bucket, count)
        upserted: dict = {}
        if ops:
            try:
                upserted = self.metrics.bulk_write(ops, ordered=False).upserted_ids or {}
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                # duplicate buckets: those points were stored by an earlier attempt
                upserted = {u["index"]: u["_id"] for u in exc.details.get("upserted", [])}
        for index in sorted(i for i in upserted if i in first_buckets):
            if run_id in self._state:  # a run this process writes: its next update says so
                self._refs_of(run_id).append(
                    {"name": first_buckets[index], "id": str(upserted[index])})
        for name, position in after.items():
            self._buckets[(run_id, name)] = position
        # the run's summary: each metric's last value, on the run document (LAST_FIELD)
        last = {f"{LAST_FIELD}.{serialize.escape_key(name)}": _to_bson(series["values"][-1])
                for name, series in metrics_by_name.items() if len(series["values"])}
        if last:
            self.runs.update_one({"_id": run_id}, {"$set": last})

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
        query: dict = {"run_id": run_id}
        if isinstance(run_id, str) and run_id.isdigit():
            query["run_id"] = {"$in": [run_id, int(run_id)]}  # ids typed on a command line
        if names is not None:
            query["name"] = {"$in": list(names)}
        docs = list(self.metrics.find(query, projection={"_id": 0, "name": 1, "bucket": 1,
                                                         "steps": 1, "values": 1,
                                                         "timestamps": 1}))
        # a document without a bucket number was written by Sacred: it comes first
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        out: dict[str, dict[str, list]] = {}
        for doc in docs:
            series = out.setdefault(doc["name"], {"steps": [], "values": [], "timestamps": []})
            series["steps"].extend(doc.get("steps") or [])
            series["values"].extend(doc.get("values") or [])
            series["timestamps"].extend(doc.get("timestamps") or [])
        return out

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
        """Every requested run's history from one query (``run_id: {$in: ...}``)."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, dict[str, list]]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        query: dict = {"run_id": {"$in": list(wanted)}}
        if names is not None:
            query["name"] = {"$in": list(names)}
        docs = list(self.metrics.find(query, projection={"_id": 0, "run_id": 1, "name": 1,
                                                         "bucket": 1, "steps": 1, "values": 1,
                                                         "timestamps": 1}))
        # as history(): by name, a document Sacred wrote (no bucket) first, then the buckets
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in docs:
            for run_id in wanted.get(doc.get("run_id"), ()):
                series = out[run_id].setdefault(doc["name"], {"steps": [], "values": [],
                                                              "timestamps": []})
                series["steps"].extend(doc.get("steps") or [])
                series["values"].extend(doc.get("values") or [])
                series["timestamps"].extend(doc.get("timestamps") or [])
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
        # runs written by Sacred (or before LAST_FIELD): the last element of each series
        docs = list(self.metrics.find({"run_id": {"$in": list(wanted)}},
                                      projection={"_id": 0, "run_id": 1, "name": 1, "bucket": 1,
                                                  "values": {"$slice": -1}}))
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in docs:
            values = doc.get("values") or []
            if values:  # the last document with points has the last value
                for run_id in wanted.get(doc.get("run_id"), ()):
                    out[run_id][doc["name"]] = values[-1]
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000
                    ) -> Iterator[dict[str, list]]:
        """One metric document (bucket) at a time, cut into pages of ``page_size``."""
        query = {"run_id": {"$in": list(self._runs_wanted([run_id]))}, "name": name}
        try:
            found = list(self.metrics.find(query, projection={"_id": 1, "bucket": 1}))
        except ConnectionFailure as exc:
            raise self.connection_error(exc) from exc
        # a document without a bucket number was written by Sacred: it comes first
        found.sort(key=lambda d: d.get("bucket", -1))
        for ref in found:
            doc = self.metrics.find_one({"_id": ref["_id"]}, projection={
                "_id": 0, "steps": 1, "values": 1, "timestamps": 1}) or {}
            steps = doc.get("steps") or []
            for start in range(0, len(steps), page_size):
                yield {key: list((doc.get(key) or [])[start:start + page_size])
                       for key in ("steps", "values", "timestamps")}

    @translated
    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: points}}`` from the lengths of the metric documents (the server
        counts; no point is sent)."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, int]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        for doc in self.metrics.aggregate([
                {"$match": {"run_id": {"$in": list(wanted)}}},
                {"$project": {"_id": 0, "run_id": 1, "name": 1,
                              "n": {"$size": {"$ifNull": ["$values", []]}}}}]):
            for run_id in wanted.get(doc.get("run_id"), ()):
                counts = out[run_id]
                counts[doc["name"]] = counts.get(doc["name"], 0) + int(doc["n"])
        return out

    @translated
    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """The points ``sample_series`` keeps, picked on the server: the lengths of the metrics
        documents (stored in labbook's buckets, else measured), then one query that returns
        only the chosen elements; the default sample of a long series of an ended run comes
        from ``labbook_samples``, stored when the run ended."""
        if samples is None:
            return self.history(run_id, names)
        names = None if names is None else list(names)
        query: dict = {"run_id": {"$in": list(self._runs_wanted([run_id]))}}
        if names is not None:
            query["name"] = {"$in": names}
        docs = self._bucket_lengths(query)
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
                                               for key in ("steps", "values", "timestamps")}
        rest = [d for d in docs if d["name"] not in out]
        out.update(self._sample_buckets(rest, samples))
        return out

    def _bucket_lengths(self, query: dict) -> list[dict] | None:
        """``_id``, ``name``, ``bucket`` and the length ``ns`` of each metrics document matching
        ``query``, in series order; None when a document's arrays differ in length."""
        def size(field: str) -> dict:
            return {"$size": {"$ifNull": [f"${field}", []]}}

        docs = list(self.metrics.find(query, {"_id": 1, "name": 1, "bucket": 1,
                                              BUCKET_LENGTH: 1, COUNTED_FROM_START: 1}))
        if docs and all(d.get(COUNTED_FROM_START) is True
                        and isinstance(d.get(BUCKET_LENGTH), int) for d in docs):
            # labbook's buckets know their length: no array is read to measure it
            for doc in docs:
                doc["ns"] = doc["nv"] = doc["nt"] = doc[BUCKET_LENGTH]
        else:
            docs = list(self.metrics.aggregate([
                {"$match": query},
                {"$project": {"_id": 1, "name": 1, "bucket": 1, "ns": size("steps"),
                              "nv": size("values"), "nt": size("timestamps")}}]))
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
        for series_docs in by_name.values():
            total = sum(d["ns"] for d in series_docs)
            if total <= samples:
                picks.update({d["_id"]: None for d in series_docs if d["ns"]})
                continue
            positions = sample_positions(total, samples)
            start, k = 0, 0
            for doc in series_docs:
                local = []
                while k < len(positions) and positions[k] < start + doc["ns"]:
                    local.append(positions[k] - start)
                    k += 1
                if local:
                    picks[doc["_id"]] = local
                start += doc["ns"]
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

        found = list(self.metrics.aggregate([
            {"$match": {"_id": {"$in": list(picks)}}},
            {"$project": {"_id": 0, "name": 1, "bucket": 1, "steps": chosen("steps"),
                          "values": chosen("values"), "timestamps": chosen("timestamps")}}]))
        found.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in found:
            series = out[doc["name"]]
            for key in ("steps", "values", "timestamps"):
                series[key].extend(doc.get(key) or [])
        return out
