"""A run's side of versioned artifacts: ``run.log_artifact`` and ``run.use_artifact``.

``log_artifact`` hashes the file or the directory's files (sha256 each), and sends one
``artifact_version_event`` to the run's observers. Each store observer records the version in
its store (:mod:`labbook.stores.versions`), which assigns the number atomically and answers
with the version; the answer of the first store (in the observers' priority order) is
returned. A store that does not answer in time (an outage) gets the event later, from the
durable delivery's queue or its journal (``labbook sync``), with copies of the files: the
version then has no number yet, and the run says so.

``use_artifact`` resolves a reference (``name``, ``name:alias``, ``name:vN``) in the run's
first store that keeps versions and sends ``artifact_use_event`` to every observer, so every
store records the run as a user of that content (lineage); the files are written by
``.download()`` of the returned version.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable

from labbook import serialize
from labbook.errors import ArgumentError, ArgumentTypeError, MissingFileError, RunStateError, \
    StoreUnsupportedError
from labbook.observers.store_observer import observed_store
from labbook.stores.versions import (LATEST, ArtifactVersion, check_alias, collect_files,
                                     resolve)

__all__ = ["log_artifact", "use_artifact", "version_stores"]

log = logging.getLogger("labbook.artifacts")


def version_stores(bus: Any) -> list:
    """The stores of the bus's active observers that keep versioned artifacts, in order."""
    stores = [observed_store(observer) for observer in bus.active] if bus is not None else []
    return [store for store in stores if store is not None and store.keeps_versions]


def _stores_or_error(run: Any, doing: str) -> list:
    if run._bus is None:
        raise RunStateError(f"{doing} needs a started run (inside its main function, or "
                            "between labbook.start_run() and finish()).")
    stores = version_stores(run._bus)
    if not stores:
        names = [type(getattr(o, "observer", o)).__name__ for o in run._bus.active]
        raise StoreUnsupportedError(
            f"{doing}: none of this run's observers keeps versioned artifacts ("
            + (", ".join(names) if names else "the run has no observers")
            + "); record the run in a file, SQL or MongoDB store (--store URL).")
    return stores


def _aliases(aliases: Any) -> list[str]:
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    if not isinstance(aliases, Iterable):
        raise ArgumentTypeError(f"aliases must be a string or a list of strings, got "
                                f"{type(aliases).__name__}.")
    out = []
    for alias in aliases:
        alias = check_alias(alias) if alias != LATEST else alias
        if alias not in out:
            out.append(alias)
    return out


def log_artifact(run: Any, path: Any, name: str, type: str | None = None,
                 aliases: Any = None, metadata: dict | None = None) -> ArtifactVersion:
    """See :meth:`labbook.run.Run.log_artifact` (``name`` already checked)."""
    stores = _stores_or_error(run, "log_artifact")
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise MissingFileError(f"Artifact path {path} does not exist.")
    if type is not None and not isinstance(type, str):
        raise ArgumentTypeError(f"type must be a string, got {type!r}.")
    if metadata is not None and not isinstance(metadata, dict):
        raise ArgumentTypeError(f"metadata must be a dict, got {metadata!r}.")
    aliases = _aliases(aliases)
    files = collect_files(path)
    if not files:
        raise ArgumentError(f"Artifact directory {path} holds no files.")
    try:
        existing = stores[0].artifact_versions(name)
    except Exception:  # the store is away: its observer queues the version, checked later
        log.debug("could not read the versions of %r before logging one", name, exc_info=True)
        existing = []
    known = existing[0]["type"] if existing else None
    if type is not None and known is not None and known != type:
        raise ArgumentError(f"Artifact {name!r} has type {known!r}; a version of type "
                            f"{type!r} cannot join it. Use another name.")
    answers = run._bus.ask("artifact_version_event", name=name, files=files, type=type,
                           metadata=serialize.flatten(metadata), aliases=aliases)
    recorded = [a for a in answers if isinstance(a, dict) and a.get("version")]
    if recorded:
        return ArtifactVersion(recorded[0], stores[0])
    from labbook.stores.versions import digest_of

    log.warning("Artifact %r waits for its store; it gets its version number when the store "
                "stores it (the run's end says where it waits if that does not happen).", name)
    return ArtifactVersion({"name": name, "version": None, "digest": digest_of(files),
                            "aliases": aliases, "type": type, "metadata": metadata,
                            "files": files})


def use_artifact(run: Any, ref: str) -> ArtifactVersion:
    """See :meth:`labbook.run.Run.use_artifact`."""
    stores = _stores_or_error(run, "use_artifact")
    version = resolve(stores[0], ref)
    run._bus.emit("artifact_use_event", name=version["name"], digest=version["digest"])
    return ArtifactVersion(version, stores[0])
