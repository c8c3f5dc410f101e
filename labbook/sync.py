"""``labbook sync SRC DST``: copy runs from one store to another, incrementally.

Everything goes through the :class:`~labbook.stores.base.Store` interface, so any store can be
the source or the destination: a laptop's SQLite into the team's PostgreSQL, an offline
cluster's file store into MongoDB, MongoDB back into a directory.

How a copied run is remembered
    The destination run gets ``meta.synced_from = {"store": KEY, "id": SRC_ID,
    "fingerprint": HASH}``. ``KEY`` is the source URL with its password redacted (a relative
    SQLite path or directory made absolute); ``HASH`` is a SHA-1 of the source document as it
    was copied. Destination ids are allocated by the destination (ids of two sources would
    collide), so the mapping lives in the destination's documents, where every store can
    find it with one query, and nothing is written to the source.

What a second sync does
    A source run whose document hashes to the recorded fingerprint is skipped without reading
    its metrics (a run writes its heartbeat into the document whenever it logs metrics, so new
    points change the document too). A changed run (RUNNING -> COMPLETED, new heartbeat,
    edited tags...) gets its document fields updated, the metric points beyond those the
    destination has appended, and the artifacts and resources it lacks copied. The
    fingerprint is recorded last, so a copy that was interrupted (the destination went away,
    Ctrl-C) is finished by the next sync instead of being skipped or duplicated.

Sources and resources are read from the source store and written with the destination's own
``put_sources`` / ``put_resource`` (content-addressed there, so shared files are stored once).
The source store is only read: a failing destination never loses anything.

Versioned artifacts (:mod:`labbook.stores.versions`) follow the runs: every version the
destination lacks by content is copied and numbered there, and the copies of the runs that
logged or used a version are recorded in its lineage.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from labbook import clock
from labbook.errors import ArtifactNameError, LabbookError, SyncError
from labbook.stores.base import Store, artifact_names

__all__ = ["SYNC_KEY", "SyncResult", "store_key", "fingerprint", "sync"]

SYNC_KEY = "synced_from"


@dataclass
class SyncResult:
    """What a sync did (or, with ``dry_run``, would do): lists of ``(src id, dst id)``."""

    created: list[tuple[Any, Any]] = field(default_factory=list)
    updated: list[tuple[Any, Any]] = field(default_factory=list)
    unchanged: list[tuple[Any, Any]] = field(default_factory=list)
    #: source runs with files that cannot be read (each was warned about): not copied
    damaged: list[Any] = field(default_factory=list)
    points: int = 0
    files: int = 0
    #: versions of named artifacts new to the destination (labbook.stores.versions)
    versions: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        text = (f"{verb} {len(self.created)} new run(s), "
                f"{'would update' if self.dry_run else 'updated'} {len(self.updated)}, "
                f"{len(self.unchanged)} unchanged")
        if not self.dry_run:
            text += f" ({self.points} metric point(s), {self.files} file(s))"
            if self.versions:
                text += f"; {self.versions} new artifact version(s)"
        if self.damaged:
            text += (f"; {len(self.damaged)} damaged run(s) not copied: "
                     + ", ".join(str(i) for i in self.damaged))
        return text


def store_key(store: Store, url: str | None = None) -> str:
    """The name a source store is remembered by: its URL, absolute, without a password."""
    from labbook.stores import redact_url

    url = getattr(store, "url", "") or url or ""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///"):]
        if path and not path.startswith(":memory:"):
            url = "sqlite:///" + os.path.abspath(path)
    return redact_url(url)


def fingerprint(doc: dict) -> str:
    """SHA-1 of a source document (without our own sync record)."""
    meta = dict(doc.get("meta") or {})
    meta.pop(SYNC_KEY, None)
    body = {k: v for k, v in doc.items() if k != "meta"}
    body["meta"] = meta
    text = json.dumps(body, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _open_blob(store: Store, stored: Any, inside: bool = False) -> BinaryIO:
    """A stored source or resource of ``store`` by the reference its documents hold;
    ``inside``: a file-store path leading out of the store (links resolved) is refused with an
    :class:`~labbook.errors.ArtifactNameError` (resources are copies kept in the store)."""
    basedir = getattr(store, "basedir", None)
    if basedir is not None:  # the file store: a path, relative to the store or absolute
        path = os.fspath(stored)
        if not os.path.isabs(path):
            path = os.path.join(basedir, path)
        if not os.path.isfile(path):  # Sacred wrote another machine's DIR in front
            parts = os.path.normpath(path).split(os.sep)
            if len(parts) >= 2:
                path = os.path.join(basedir, parts[-2], parts[-1])
        real, root = os.path.realpath(path), os.path.realpath(basedir)
        if inside and os.path.commonpath([real, root]) != root:
            raise ArtifactNameError(f"The stored file {stored!r} of {basedir} lies outside the "
                                    "store; refused.")
        return open(path, "rb")
    opener = getattr(store, "open_blob", None)
    if opener is None:
        raise SyncError(f"{type(store).__name__} cannot read stored files.")
    return opener(stored)


class _Copier:
    def __init__(self, src: Store, dst: Store, key: str, tmp: str, result: SyncResult):
        self.src, self.dst, self.key, self.tmp, self.result = src, dst, key, tmp, result
        self._sources: dict[str, Any] = {}  # src stored reference -> dst stored reference
        self._count = 0

    def _scratch(self, name: str) -> str:
        self._count += 1
        directory = os.path.join(self.tmp, str(self._count))
        os.makedirs(directory)
        return os.path.join(directory, os.path.basename(name) or "file")

    def _fetch(self, opened: BinaryIO, name: str) -> str:
        path = self._scratch(name)
        with opened as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
        return path

    def experiment(self, experiment: Any) -> Any:
        """The experiment record with its sources stored in the destination."""
        if not isinstance(experiment, dict) or not experiment.get("sources"):
            return experiment
        sources = []
        for entry in experiment["sources"]:
            if not isinstance(entry, list | tuple) or len(entry) < 2:
                continue
            relname, stored = str(entry[0]), entry[1]
            ref = str(stored)
            if ref not in self._sources:
                try:
                    path = self._fetch(_open_blob(self.src, stored), relname)
                except (OSError, LabbookError):
                    continue  # a source missing from the source store stays missing
                info = self.dst.put_sources({"base_dir": os.path.dirname(path),
                                             "sources": [[os.path.basename(path), None]]})
                self._sources[ref] = info["sources"][0][1] if info.get("sources") else None
                self.result.files += 1
            if self._sources[ref] is not None:
                sources.append([relname, self._sources[ref]])
        return {**experiment, "sources": sources}

    def meta(self, doc: dict, finished: bool) -> dict:
        meta = dict(doc.get("meta") or {})
        meta[SYNC_KEY] = {"store": self.key, "id": doc["_id"],
                          "fingerprint": fingerprint(doc) if finished else None}
        return meta

    def fields(self, doc: dict) -> dict:
        fields = {k: v for k, v in doc.items() if k not in ("_id", "artifacts", "resources")}
        if "experiment" in fields:
            fields["experiment"] = self.experiment(fields["experiment"])
        fields["meta"] = self.meta(doc, finished=False)
        return fields

    def metrics(self, src_id: Any, dst_id: Any, existing: bool) -> None:
        # timestamps stay microseconds from a store that keeps them so to one that takes them
        history = self.src.history_for_copy(src_id)
        have = self.dst.metric_counts([dst_id]).get(dst_id, {}) if existing else {}
        takes_micros = self.dst.takes_micros
        tails = {}
        for name, series in history.items():
            start = have.get(name, 0)
            if len(series["values"]) > start:
                stamps = series["timestamps"]
                if isinstance(stamps, clock.Micros):
                    stamps = clock.Micros(stamps[start:]) if takes_micros \
                        else clock.from_microseconds(stamps[start:])
                else:
                    stamps = list(stamps[start:])
                tails[name] = {"steps": list(series["steps"][start:]),
                               "values": list(series["values"][start:]), "timestamps": stamps}
        if tails:
            self.dst.append_metrics(dst_id, tails)
            self.result.points += sum(len(s["values"]) for s in tails.values())

    def files(self, doc: dict, src_id: Any, dst_id: Any, dst_doc: dict | None) -> None:
        have = set(artifact_names(dst_doc or {}))
        for name in artifact_names(doc):
            if name in have:
                continue
            path = self._fetch(self.src.open_artifact(src_id, name), name)
            self.dst.put_artifact(dst_id, name, path)
            self.result.files += 1
        have_res = {str(e[0]) for e in (dst_doc or {}).get("resources") or []
                    if isinstance(e, list | tuple) and e}
        renamed = {}
        for entry in doc.get("resources") or []:
            if not isinstance(entry, list | tuple) or len(entry) < 2 or str(entry[0]) in have_res:
                continue
            path = self._fetch(_open_blob(self.src, entry[1], inside=True), str(entry[0]))
            self.dst.put_resource(dst_id, path)
            renamed[path] = str(entry[0])
            self.result.files += 1
        if renamed:
            # the destination recorded our scratch copy's path: put the run's own name back
            current = (self.dst.get(dst_id) or {}).get("resources") or []
            fixed = [[renamed.get(e[0], e[0]), *e[1:]] if isinstance(e, list | tuple) and e
                     else e for e in current]
            self.dst.update_run(dst_id, {"resources": fixed})

    def copy(self, doc: dict, dst_doc: dict | None) -> Any:
        src_id = doc["_id"]
        if dst_doc is None:
            dst_id = self.dst.create_run(self.fields(doc))
        else:
            dst_id = dst_doc["_id"]
            self.dst.update_run(dst_id, self.fields(doc))
        self.metrics(src_id, dst_id, existing=dst_doc is not None)
        self.files(doc, src_id, dst_id, dst_doc)
        # last: the fingerprint says "complete"; the status again lets the file store write
        # its end-of-run files (metrics.json) as it does for a run that ends
        final: dict[str, Any] = {"meta": self.meta(doc, finished=True)}
        if doc.get("status") is not None:
            final["status"] = doc["status"]
        self.dst.update_run(dst_id, final)
        return dst_id


def _open(url_or_store: str | Store, role: str) -> tuple[Store, bool]:
    if isinstance(url_or_store, Store):
        return url_or_store, False
    from labbook.stores import open_store, redact_url

    try:
        # the source is read: a missing one is an error, never created
        return open_store(url_or_store, must_exist=role == "source"), True
    except Exception as exc:
        raise SyncError(f"Cannot open the {role} store {redact_url(url_or_store)}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        ) from exc


def sync(src: str | Store, dst: str | Store, filter: dict | str | None = None,
         dry_run: bool = False, progress: Callable[[str], None] | None = None) -> SyncResult:
    """Copy the runs of ``src`` matching ``filter`` into ``dst``; see the module docstring.

    Runs already copied and unchanged are skipped; changed ones are brought up to date. Runs
    that are themselves copies of runs of ``dst`` (an earlier sync the other way) are skipped.
    ``dry_run`` only reports what would be done. Raises :class:`SyncError` when a store
    cannot be opened or reached, or a run cannot be copied (after the runs before it were).
    """
    from labbook.api import normalize_filter
    from labbook.stores import redact_url

    flt = normalize_filter(filter)
    if isinstance(src, str):
        _check_source_exists(src)
    src_store, close_src = _open(src, "source")
    try:
        dst_store, close_dst = _open(dst, "destination")
    except SyncError:
        if close_src:
            src_store.close()
        raise
    key = store_key(src_store, src if isinstance(src, str) else None)
    dst_key = store_key(dst_store, dst if isinstance(dst, str) else None)
    dst_name = redact_url(getattr(dst_store, "url", "") or (dst if isinstance(dst, str) else ""))
    result = SyncResult(dry_run=dry_run)
    try:
        if key == dst_key:
            raise SyncError(f"The source and the destination are the same store ({key}).")
        try:
            done = dst_store.find({f"meta.{SYNC_KEY}.store": key})
        except Exception as exc:
            raise SyncError(f"Cannot reach the destination {dst_name}: {_first_line(exc)}. "
                            "Nothing was copied; the source is unchanged.") from exc
        copied = {str((d.get("meta") or {}).get(SYNC_KEY, {}).get("id")): d for d in done}
        try:
            if flt is None:
                docs = src_store.find()
            else:  # through the API: tags, name, summary.* and DIED work as in ``labbook ls``
                from labbook.api import Api

                docs = [view.doc for view in Api(src_store).runs(flt, order=None)]
        except Exception as exc:
            raise SyncError(f"Cannot read the source {redact_url(key)}: {_first_line(exc)}."
                            ) from exc
        with tempfile.TemporaryDirectory(prefix="labbook-sync-") as tmp:
            copier = _Copier(src_store, dst_store, key, tmp, result)
            for doc in docs:
                src_id = doc.get("_id")
                origin = (doc.get("meta") or {}).get(SYNC_KEY) or {}
                if isinstance(origin, dict) and origin.get("store") == dst_key:
                    continue  # a copy of a run of the destination: it is there already
                if doc.get("problems"):  # a file of it cannot be read: a copy would lose it
                    result.damaged.append(src_id)
                    continue
                dst_doc = copied.get(str(src_id))
                if dst_doc is not None and \
                        dst_doc["meta"][SYNC_KEY].get("fingerprint") == fingerprint(doc):
                    result.unchanged.append((src_id, dst_doc["_id"]))
                    continue
                if dry_run:
                    target = result.created if dst_doc is None else result.updated
                    target.append((src_id, None if dst_doc is None else dst_doc["_id"]))
                    continue
                try:
                    dst_id = copier.copy(doc, dst_doc)
                except Exception as exc:
                    raise SyncError(
                        f"Run {src_id} could not be copied to {dst_name}: {_first_line(exc)}. "
                        f"{len(result.created) + len(result.updated)} run(s) were synced before "
                        "it; run the sync again to go on (the source is unchanged).") from exc
                (result.created if dst_doc is None else result.updated).append((src_id, dst_id))
                if progress is not None:
                    progress(f"run {src_id} -> {dst_id}")
            if not dry_run:
                _copy_versions(src_store, dst_store, copied, result, dst_name)
    finally:
        if close_src:
            src_store.close()
        if close_dst:
            dst_store.close()
    return result


def _copy_versions(src: Store, dst: Store, copied: dict, result: SyncResult,
                   dst_name: str) -> None:
    """The versions of named artifacts, with the lineage of the runs synced (now or before)."""
    from labbook.stores.versions import copy_versions

    if not (src.keeps_versions and dst.keeps_versions):
        return
    run_ids = {str(k): d["_id"] for k, d in copied.items()}
    for src_id, dst_id in result.created + result.updated + result.unchanged:
        run_ids[str(src_id)] = dst_id
    try:
        result.versions = copy_versions(src, dst, run_ids)
    except Exception as exc:
        raise SyncError(f"The versions of named artifacts could not be copied to {dst_name}: "
                        f"{_first_line(exc)}. The runs were synced; run the sync again to go "
                        "on (the source is unchanged).") from exc


def _check_source_exists(url: str) -> None:
    """A source that is not there is an error (opening it must not create an empty store)."""
    from labbook.stores import scheme_of

    scheme = scheme_of(url)
    path = None
    if scheme == "file":
        path = url[len("file://"):] if url.startswith("file://") else url
    elif scheme == "sqlite" and url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):].split("?", 1)[0]
        if not path or path.startswith(":memory:"):
            return
    if path is not None and not os.path.exists(path):
        raise SyncError(f"The source {url} does not exist.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
