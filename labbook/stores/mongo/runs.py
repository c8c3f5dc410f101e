"""The write side of runs: ids from the counter, inserts and replacements, partial updates
that move big fields to GridFS, claiming queued runs, deleting."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from labbook import clock
from labbook.errors import ObserverError, RunExistsError, RunNotFoundError
from labbook.stores.base import RUN_FIELDS, replaceable
from labbook.stores.mongo.codec import (_SPILL_OVERHEAD, _doc_size, _elem_size, _is_metric_refs,
                                        _spill_stub, _to_bson)
from labbook.stores.mongo.connection import translated
from labbook.stores.mongo.schema import COUNTERS, FORMAT, SPILLABLE

__all__ = ["log", "RunsMixin"]

log = logging.getLogger("labbook.stores.mongo")

_ID_ATTEMPTS = 100
#: a field whose stored value is a stand-in (spilled): compare nothing with it
_UNKNOWN = object()


@dataclass
class _RunState:
    """What this process wrote into a run: values and BSON sizes of its top-level fields."""

    values: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    spilled: dict = field(default_factory=dict)
    artifacts: set = field(default_factory=set)
    fresh: bool = False  # created here: no metric documents can exist yet


def _omniboard_fields(meta: Any) -> dict:
    """Omniboard's ``omniboard`` entry for a run's meta: ``tags`` (``--tag``, ``set_tag``) and
    ``notes`` (``--notes``; Omniboard shows ``meta.comment`` where no notes are written)."""
    if not isinstance(meta, dict):
        return {}
    out: dict = {}
    tags = meta.get("tags")
    if isinstance(tags, list) and tags:
        out["tags"] = list(dict.fromkeys(str(t) for t in tags))
    if isinstance(meta.get("notes"), str):
        out["notes"] = meta["notes"]
    return out


class RunsMixin:
    """Writing runs, for :class:`~labbook.stores.mongo.MongoStore`."""

    @translated
    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        """Insert the run; ``overwrite=True`` replaces run ``run_id`` (our fields only)."""
        self._ensure_indexes()
        body = {k: _to_bson(v) for k, v in doc.items() if k != "_id"}
        if "format" not in body:  # where Sacred's documents have it: after the experiment
            items = list(body.items())
            at = list(body).index("experiment") + 1 if "experiment" in body else 0
            body = dict(items[:at] + [("format", FORMAT)] + items[at:])
        omniboard = _omniboard_fields(body.get("meta"))
        if omniboard and "omniboard" not in body:
            body["omniboard"] = omniboard  # where Omniboard reads (and edits) tags and notes
        late = {}
        sizes = {k: _elem_size(k, v) for k, v in body.items()}
        if _doc_size(sizes) + 64 > self.max_document_bytes:
            # written after the insert by update_run, which knows how to spill them
            for name in SPILLABLE:
                if name in body:
                    late[name] = body[name]
                    body[name] = "" if name == "captured_out" else {}
        if run_id is None:
            run_id = self._insert_new(body)
        elif overwrite:
            self._replace(run_id, body)
        else:
            try:
                self.runs.insert_one({"_id": run_id, **body})
            except DuplicateKeyError:
                existing = self.runs.find_one({"_id": run_id}, projection={
                    "status": 1, "start_time": 1, "meta.worker": 1}) or {}
                if not replaceable(existing):
                    raise RunExistsError(
                        f"A run with id {run_id!r} already exists in {self.db_name}."
                        f"{self.runs.name}. Pass overwrite={run_id!r} to MongoObserver to "
                        "replace it, or let MongoDB choose the id (no --id, and the "
                        "MongoObserver with the highest priority).") from None
                self._replace(run_id, body)  # a queued run being started under its id
        body["_id"] = run_id
        self._state[run_id] = _RunState(values=body, fresh=True,
                                        sizes={k: _elem_size(k, v) for k, v in body.items()})
        if late:
            self.update_run(run_id, {k: v for k, v in late.items()}, _encoded=True)
        return run_id

    def _insert_new(self, body: dict) -> int:
        for _ in range(_ID_ATTEMPTS):
            candidate = self._next_id()
            try:
                self.runs.insert_one({"_id": candidate, **body})
                return candidate
            except DuplicateKeyError:
                self._catch_up_counter()
        raise ObserverError(f"Could not allocate a run id in {self.db_name}.{self.runs.name} "
                            f"after {_ID_ATTEMPTS} attempts; is another program inserting runs "
                            "with the same ids?")

    def _next_id(self) -> int:
        for _ in range(5):
            try:
                counter = self.counters.find_one_and_update(
                    {"_id": self.runs.name}, {"$inc": {"seq": 1}}, upsert=True,
                    return_document=ReturnDocument.AFTER)
                return int(counter["seq"])
            except DuplicateKeyError:
                # two first upserts of the counter raced; the document exists now
                continue
        raise ObserverError(f"The id counter {COUNTERS}/{self.runs.name} cannot be updated.")

    def _catch_up_counter(self) -> None:
        """Move the counter past runs inserted without it (Sacred, or by hand).

        Only the counter moves here; ids still come from the atomic ``$inc``.
        """
        top = self.runs.find_one({"_id": {"$type": "number"}}, projection={"_id": 1},
                                 sort=[("_id", pymongo.DESCENDING)])
        if top is None:
            return
        try:
            self.counters.update_one({"_id": self.runs.name},
                                     {"$max": {"seq": int(top["_id"])}}, upsert=True)
        except DuplicateKeyError:
            pass  # created concurrently; the next $inc moves on anyway

    def _replace(self, run_id: Any, body: dict) -> None:
        old = self.runs.find_one({"_id": run_id},
                                 projection={"labbook_spill": 1, "artifacts": 1}) or {}
        unset = {name: "" for name in (*RUN_FIELDS, "labbook_spill") if name not in body}
        update: dict = {"$set": body}
        if unset:
            update["$unset"] = unset
        self.runs.update_one({"_id": run_id}, update, upsert=True)
        # the replaced run's series, files and spilled fields belong to nobody now
        self._delete_series(run_id)
        self._metric_refs.pop(run_id, None)
        stale = list((old.get("labbook_spill") or {}).values())
        stale += [a.get("file_id") for a in old.get("artifacts") or [] if isinstance(a, dict)]
        for file_id in stale:
            self._delete_file(file_id)

    def _run_state(self, run_id: Any) -> _RunState:
        state = self._state.get(run_id)
        if state is None:
            raw = self.runs.find_one({"_id": run_id})
            if raw is None:
                raise ObserverError(f"No run with id {run_id!r} in "
                                    f"{self.db_name}.{self.runs.name}.")
            spilled = dict(raw.get("labbook_spill") or {})
            sizes = {k: _elem_size(k, v) for k, v in raw.items()}
            # the document holds stand-ins for spilled fields: compare nothing with them
            raw.update({name: _UNKNOWN for name in spilled})
            state = _RunState(values=raw, spilled=spilled, sizes=sizes,
                              artifacts={a.get("name") for a in raw.get("artifacts") or []
                                         if isinstance(a, dict)})
            self._state[run_id] = state
        return state

    @translated
    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        # find_one_and_update is atomic on one document: each queued run goes to one worker
        flt: dict = {"status": "QUEUED"}
        if experiment is not None:
            flt["experiment.name"] = experiment
        raw = self.runs.find_one_and_update(
            flt, {"$set": {"status": "RUNNING", "heartbeat": clock.utcnow(),
                           "meta.worker": worker}},
            sort=[("meta.priority", pymongo.DESCENDING), ("queue_time", pymongo.ASCENDING),
                  ("_id", pymongo.ASCENDING)],
            return_document=ReturnDocument.AFTER)
        if raw is None:
            return None
        self._state.pop(raw["_id"], None)  # written behind this store's cache of the run
        return self._decode(raw)

    @translated
    def update_if(self, run_id: Any, expected: dict, fields: dict) -> bool:
        # update_one with the expected fields in its filter: atomic on one document
        flt = {"_id": run_id, **{k: _to_bson(v) for k, v in expected.items()}}
        result = self.runs.update_one(
            flt, {"$set": {k: _to_bson(v) for k, v in fields.items() if k != "_id"}})
        self._state.pop(run_id, None)  # written behind this store's cache of the run
        return result.modified_count == 1

    @translated
    def update_run(self, run_id: Any, fields: dict, *, _encoded: bool = False) -> None:
        state = self._run_state(run_id)
        body = fields if _encoded else {k: _to_bson(v) for k, v in fields.items() if k != "_id"}
        if isinstance(body.get("info"), dict) and "metrics" not in body["info"]:
            refs = self._refs_of(run_id)
            if refs:
                body = dict(body, info=dict(body["info"], metrics=[dict(r) for r in refs]))
        changed = {k: v for k, v in body.items()
                   if k not in state.values or state.values[k] is _UNKNOWN
                   or state.values[k] != v}
        if not changed:
            return
        sizes = dict(state.sizes)
        for key, value in changed.items():
            sizes[key] = _elem_size(key, value)
        if state.spilled or any(k in changed for k in SPILLABLE):
            sizes["labbook_spill"] = _SPILL_OVERHEAD
        staying = {k for k in state.spilled if k not in changed}
        total = _doc_size(sizes)
        to_spill = []
        candidates = [k for k in SPILLABLE if k in sizes and k not in staying]
        for name in sorted(candidates, key=lambda k: sizes[k], reverse=True):
            if total <= self.max_document_bytes:
                break
            stub_size = _elem_size(name, _spill_stub(name, changed.get(
                name, state.values.get(name)), ObjectId()))
            to_spill.append(name)
            total -= sizes[name] - stub_size
        if total > self.max_document_bytes:
            largest = sorted(sizes, key=sizes.get, reverse=True)[:3]
            raise ObserverError(
                f"Run {run_id!r} would need a {total / 2 ** 20:.1f} MB document even with its "
                f"output and info in GridFS (MongoDB allows 16 MB); the largest fields are "
                f"{', '.join(largest)}. Store big data as artifacts instead.")
        update_set: dict = {}
        unset: dict = {}
        obsolete = []
        new_spills = {}
        for name in to_spill:
            value = changed.get(name, state.values.get(name))
            file_id = self._put_spill(run_id, name, value)
            new_spills[name] = file_id
            update_set[name] = _spill_stub(name, value, file_id)
            update_set[f"labbook_spill.{name}"] = file_id
            if name in state.spilled:
                obsolete.append(state.spilled[name])
        for key, value in changed.items():
            if key in new_spills:
                continue
            update_set[key] = value
            if key in state.spilled:
                unset[f"labbook_spill.{key}"] = ""
                obsolete.append(state.spilled[key])
        update: dict = {"$set": update_set}
        if unset:
            update["$unset"] = unset
        tags = _omniboard_fields(changed.get("meta")).get("tags")
        if tags and "omniboard" not in changed:
            # tags set during the run join Omniboard's list; tags added in Omniboard stay
            update["$addToSet"] = {"omniboard.tags": {"$each": tags}}
        result = self.runs.update_one({"_id": run_id}, update)
        if result.matched_count == 0:
            self._state.pop(run_id, None)
            raise ObserverError(f"Run {run_id!r} disappeared from "
                                f"{self.db_name}.{self.runs.name} while it was being recorded.")
        state.values.update(changed)
        for key in changed:
            state.spilled.pop(key, None)
        state.spilled.update(new_spills)
        state.sizes = sizes
        for name in new_spills:
            state.sizes[name] = _elem_size(name, update_set[name])
        for file_id in obsolete:
            self._delete_file(file_id)
        if changed.get("status") not in (None, "RUNNING", "QUEUED"):
            self._cache_samples(run_id)

    def _refs_of(self, run_id: Any) -> list[dict]:
        """The run's ``info.metrics`` references, taken once from what the store knows."""
        refs = self._metric_refs.get(run_id)
        if refs is None:
            info = self._run_state(run_id).values.get("info")
            found = info.get("metrics") if isinstance(info, dict) else None
            refs = [dict(r) for r in found] if _is_metric_refs(found) else []
            self._metric_refs[run_id] = refs
        return refs

    @translated
    def delete_run(self, run_id: Any) -> None:
        """Delete the run, its metric documents, artifact files and spilled fields (sources and
        resources are shared between runs by content, so they stay)."""
        raw = self._find_raw(run_id, projection={"labbook_spill": 1, "artifacts": 1})
        if raw is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_name}.{self.runs.name}.")
        self.runs.delete_one({"_id": raw["_id"]})
        self._delete_series(raw["_id"])
        files = list((raw.get("labbook_spill") or {}).values())
        files += [a.get("file_id") for a in raw.get("artifacts") or [] if isinstance(a, dict)]
        for file_id in files:
            self._delete_file(file_id)
        self._state.pop(raw["_id"], None)
        self._metric_refs.pop(raw["_id"], None)
