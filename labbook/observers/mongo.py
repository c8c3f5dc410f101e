"""The MongoDB observer: records runs into a MongoDB store with Sacred's constructor.

The store class comes from the registry (:func:`labbook.stores.store_class`). An unreachable
server is handled like any store's outage (:mod:`labbook.observers.durable`): events are
retried, then journaled under ``failure_dir`` (default ``labbook_failed_runs``) for
``labbook sync``. (Earlier versions kept failed batches in memory and saved runs in the file
store's layout, for ``python -m labbook.stores.mongo upload``, which still uploads such runs.)
"""
from __future__ import annotations

import logging
import os
from typing import Any

from labbook.errors import MongoConnectionError, ObserverError, StoreUnusableError
from labbook.observers.store_observer import StoreObserver, run_document
from labbook.stores import store_class

__all__ = ["log", "MongoObserver"]

#: the logger the observer has always written to (as when it lived in the store's module)
log = logging.getLogger("labbook.stores.mongo")

_MongoStore = store_class("mongodb://")


class MongoObserver(StoreObserver):
    """Records runs into MongoDB, with Sacred's constructor.

    ``failure_dir``: where the journals of events MongoDB could not take go (see
    :mod:`labbook.observers.durable`; default ``labbook_failed_runs``, or
    ``labbook.SETTINGS.DELIVERY.FAILURE_DIR``). Upload them with
    ``labbook sync FAILURE_DIR --store URL`` once the server is back.
    """

    priority = 30

    def __init__(self, url: str | None = None, db_name: str = _MongoStore.default_db,
                 collection: str = "runs", collection_prefix: str = "",
                 overwrite: Any = None, priority: int = 30, client: Any = None,
                 failure_dir: str | os.PathLike | None = None, **client_kwargs: Any):
        if collection != "runs":
            if collection_prefix:
                raise ObserverError("Give MongoObserver either collection_prefix or the older "
                                    "'collection', not both.")
            # Sacred 0.8 reads a non-default 'collection' as the prefix of its collections
            collection_prefix = collection
        default_db = _MongoStore.default_db
        store = _MongoStore(url, db_name=None if db_name == default_db else db_name,
                            collection_prefix=collection_prefix, client=client, **client_kwargs)
        super().__init__(store, priority)
        self.overwrite = overwrite
        self.failure_dir = os.path.abspath(os.fspath(failure_dir)) if failure_dir else None

    def preflight(self) -> None:
        """The server must answer before the run starts, unless runs can be kept in
        ``failure_dir`` meanwhile (then a warning says so)."""
        try:
            super().preflight()
        except MongoConnectionError:
            raise
        except Exception as exc:
            if self.failure_dir is None or not isinstance(exc, StoreUnusableError) \
                    or "Cannot reach" not in str(exc):
                raise
            log.warning("%s The run goes on; it is saved to %s if the server is still away "
                        "when it ends.", str(exc).split(" Check that")[0], self.failure_dir)

    @classmethod
    def create_from(cls, runs_collection: Any, fs: Any = None, overwrite: Any = None,
                    metrics_collection: Any = None, failure_dir: str | os.PathLike | None = None,
                    priority: int = 30) -> MongoObserver:
        """Sacred's constructor from pymongo objects: the observer records into the database of
        ``runs_collection`` through its client. Its collections are named as Sacred names them
        (``runs``, ``metrics`` and GridFS ``fs``, or ``<prefix>_runs`` ...); collections named
        otherwise are refused rather than written somewhere else."""
        name = getattr(runs_collection, "name", None)
        database = getattr(runs_collection, "database", None)
        if not isinstance(name, str) or database is None:
            raise ObserverError(f"MongoObserver.create_from needs a pymongo Collection, got "
                                f"{type(runs_collection).__name__}.")
        if name != "runs" and not name.endswith("_runs"):
            raise ObserverError(f"MongoObserver.create_from: the runs collection is named "
                                f"{name!r}; labbook keeps runs in 'runs' or '<prefix>_runs'.")
        prefix = name[:-len("_runs")] if name != "runs" else ""
        expected = f"{prefix}_metrics" if prefix else "metrics"
        given = getattr(metrics_collection, "name", expected)
        if given != expected or (metrics_collection is not None
                                 and metrics_collection.database.name != database.name):
            raise ObserverError(f"MongoObserver.create_from: the metrics collection must be "
                                f"{database.name}.{expected} to go with {database.name}.{name}.")
        fs_collection = getattr(fs, "_GridFS__collection", None)
        if fs_collection is not None and fs_collection.full_name != f"{database.name}.fs":
            raise ObserverError(f"MongoObserver.create_from: GridFS must be the default 'fs' "
                                f"of database {database.name}, got {fs_collection.full_name}.")
        return cls(db_name=database.name, collection_prefix=prefix, overwrite=overwrite,
                   priority=priority, client=database.client, failure_dir=failure_dir)

    @classmethod
    def from_db_arg(cls, arg: str) -> MongoObserver:
        """The observer of Sacred's ``-m`` argument: ``[host:port:]db_name[.prefix]`` or a
        ``mongodb://`` URL."""
        return cls(**_MongoStore.parse_db_arg(arg))

    @property
    def runs(self):
        """The runs collection (Sacred's attribute)."""
        return self.store.runs

    @property
    def metrics(self):
        """The metrics collection (Sacred's attribute)."""
        return self.store.metrics

    @property
    def fs(self):
        """GridFS (Sacred's attribute)."""
        return self.store.fs

    # -- start ---------------------------------------------------------------------------------
    def _begin(self, status: str, time_key: str, when, ex_info, command, host_info, config,
               meta_info, _id) -> Any:
        if self.overwrite is not None:
            if status == "QUEUED":
                raise ObserverError("A queued run cannot overwrite a stored run; drop "
                                    "overwrite= or run it directly.")
            _id = self.overwrite
        doc = run_document(status, time_key, when, ex_info, command, host_info, config,
                           meta_info)
        doc["experiment"] = self.store.put_sources(doc["experiment"])
        if self.overwrite is None:
            self._keep_claim(doc, _id)
        self.run_id = self.store.create_run(doc, _id, overwrite=self.overwrite is not None)
        self._meta = doc["meta"]
        return self.run_id
