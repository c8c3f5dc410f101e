"""The MongoDB observer: records runs into a MongoDB store with Sacred's constructor, and keeps
runs on disk (``failure_dir``) while the server cannot be reached.

The store class comes from the registry (:func:`labbook.stores.store_class`); what this observer
needs beyond the generic store interface (the default database, the failure-dir note and the
upload hint) are attributes of that class.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from labbook import serialize
from labbook.errors import MongoConnectionError, ObserverError, StoreUnusableError
from labbook.observers.store_observer import StoreObserver, run_document
from labbook.stores import redact_url, store_class

__all__ = ["log", "MongoObserver"]

#: the logger the observer has always written to (as when it lived in the store's module)
log = logging.getLogger("labbook.stores.mongo")

_MongoStore = store_class("mongodb://")


def _failure_store(failure_dir: str) -> Any:
    """The file store in ``failure_dir``: runs saved there have its layout."""
    return store_class("file://")(failure_dir)


class MongoObserver(StoreObserver):
    """Records runs into MongoDB, with Sacred's constructor.

    ``failure_dir``: when MongoDB cannot be reached at the start or at the end of a run, the
    run is saved there in the file store's layout, with a warning saying how to upload it
    (``python -m labbook.stores.mongo upload DIR URL``). Without it, an unreachable server
    at the start disables this observer for the run (the run goes on) and one at the end is
    logged as an error. While a run is going, a lost connection keeps the data in memory and
    retries at later events.
    """

    priority = 30
    #: seconds between attempts while the server is away (events in between are queued)
    retry_interval = 5.0
    #: attempts to store the end of a run before giving up
    final_attempts = 3
    final_retry_delay = 0.5

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
        self._lock = threading.RLock()
        self._reset()

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
    def from_db_arg(cls, arg: str) -> MongoObserver:
        """The observer of Sacred's ``-m`` argument: ``[host:port:]db_name[.prefix]`` or a
        ``mongodb://`` URL."""
        return cls(**_MongoStore.parse_db_arg(arg))

    def _reset(self) -> None:
        self.run_id = None
        self._doc: dict = {}
        self._pending: list[tuple[str, tuple]] = []
        self._offline: Any = None
        self._offline_id: Any = None
        self._outage: MongoConnectionError | None = None
        self._retry_at = 0.0
        self._spool: str | None = None

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
        with self._lock:
            self._reset()
            if self.overwrite is not None:
                if status == "QUEUED":
                    raise ObserverError("A queued run cannot overwrite a stored run; drop "
                                        "overwrite= or run it directly.")
                _id = self.overwrite
            self._doc = run_document(status, time_key, when, ex_info, command, host_info,
                                     config, meta_info)
            try:
                stored = dict(self._doc, experiment=self.store.put_sources(
                    self._doc["experiment"]))
                self.run_id = self.store.create_run(stored, _id,
                                                    overwrite=self.overwrite is not None)
            except MongoConnectionError as exc:
                if not self.failure_dir:
                    raise MongoConnectionError(
                        f"{exc} This run is not recorded in MongoDB; pass failure_dir= to "
                        "MongoObserver to keep such runs on disk.", exc.url) from exc
                self._go_offline(exc)
                return _id
            return self.run_id

    def _go_offline(self, exc: MongoConnectionError) -> None:
        os.makedirs(self.failure_dir, exist_ok=True)
        self._offline = _failure_store(self.failure_dir)
        experiment = self._offline.put_sources(self._doc["experiment"])
        self._offline_id = self._offline.create_run(dict(self._doc, experiment=experiment))
        run_dir = os.path.join(self.failure_dir, str(self._offline_id))
        self._write_note(run_dir, exc, mongo_id=None)
        log.warning("MongoDB is unreachable: %s The run is saved in %s instead. %s",
                    exc, run_dir, self._upload_hint())

    def _upload_hint(self) -> str:
        return self.store.upload_hint(self.failure_dir)

    def _write_note(self, run_dir: str, exc: BaseException, mongo_id: Any) -> None:
        self.store.write_upload_note(run_dir, exc, mongo_id, self.overwrite)

    # -- during the run ------------------------------------------------------------------------
    def heartbeat_event(self, info, captured_out, beat_time, result):
        self._send("update_run", {"info": serialize.flatten(info), "captured_out": captured_out,
                                  "heartbeat": beat_time, "result": serialize.flatten(result)})

    def log_metrics(self, metrics_by_name, info):
        self._send("append_metrics", metrics_by_name)

    def resource_event(self, filename):
        self._send("put_resource", filename)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self._send("put_artifact", name, filename, metadata, content_type)

    def _send(self, method: str, *args: Any) -> None:
        with self._lock:
            if self._offline is not None:
                getattr(self._offline, method)(self._offline_id, *args)
                return
            if self.run_id is None:
                return
            if method == "update_run":
                self._doc.update(args[0])
                if self._pending and self._pending[-1][0] == "update_run":
                    # fields are whole values: a newer beat replaces the queued one
                    merged = dict(self._pending[-1][1][0], **args[0])
                    self._pending[-1] = ("update_run", (merged,))
                else:
                    self._pending.append((method, (dict(args[0]),)))
            else:
                self._pending.append((method, args))
            if time.monotonic() >= self._retry_at:
                self._flush()

    def _flush(self) -> bool:
        """Deliver the queued calls in order; False when the server is still away."""
        while self._pending:
            method, args = self._pending[0]
            try:
                getattr(self.store, method)(self.run_id, *args)
            except MongoConnectionError as exc:
                self._retry_at = time.monotonic() + self.retry_interval
                self._keep_files()
                if self._outage is None:
                    log.warning("%s Run %s keeps its data in memory and retries in %g s.",
                                exc, self.run_id, self.retry_interval)
                self._outage = exc
                return False
            except FileNotFoundError as exc:
                if method not in ("put_artifact", "put_resource"):
                    raise
                log.warning("Could not store %s of run %s: %s", method[4:], self.run_id, exc)
            self._pending.pop(0)
        if self._outage is not None:
            log.warning("MongoDB at %s is back; run %s is stored up to date.",
                        redact_url(self.store.url), self.run_id)
            self._outage = None
        return True

    def _keep_files(self) -> None:
        """Copy files of queued artifacts/resources: the run may delete them meanwhile."""
        for i, (method, args) in enumerate(self._pending):
            if method not in ("put_artifact", "put_resource"):
                continue
            source = args[1] if method == "put_artifact" else args[0]
            if self._spool and source.startswith(self._spool + os.sep):
                continue
            if not os.path.isfile(source):
                continue
            if self._spool is None:
                self._spool = tempfile.mkdtemp(prefix="labbook-mongo-")
            fd, copy = tempfile.mkstemp(dir=self._spool, suffix="-" + os.path.basename(source))
            os.close(fd)
            shutil.copyfile(source, copy)
            if method == "put_artifact":
                self._pending[i] = (method, (args[0], copy, *args[2:]))
            else:
                # store the copy's content under the name the run used
                self._pending[i] = (method, (copy, args[1] if len(args) > 1 else source))

    # -- end -----------------------------------------------------------------------------------
    def completed_event(self, stop_time, result):
        self._finish({"stop_time": stop_time, "result": serialize.flatten(result),
                      "status": "COMPLETED"})

    def interrupted_event(self, interrupt_time, status):
        self._finish({"stop_time": interrupt_time, "status": status})

    def failed_event(self, fail_time, fail_trace):
        self._finish({"stop_time": fail_time, "status": "FAILED",
                      "fail_trace": list(fail_trace)})

    def _finish(self, fields: dict) -> None:
        with self._lock:
            try:
                if self._offline is not None:
                    self._offline.update_run(self._offline_id, fields)
                    return
                if self.run_id is None:
                    return
                self._doc.update(fields)
                self._send_final(fields)
            finally:
                # the run is over: what was not delivered is in failure_dir, or lost
                if self._spool is not None:
                    shutil.rmtree(self._spool, ignore_errors=True)
                    self._spool = None

    def _send_final(self, fields: dict) -> None:
        if self._pending and self._pending[-1][0] == "update_run":
            self._pending[-1] = ("update_run", (dict(self._pending[-1][1][0], **fields),))
        else:
            self._pending.append(("update_run", (dict(fields),)))
        for attempt in range(self.final_attempts):
            if self._flush():
                return
            if attempt + 1 < self.final_attempts:
                time.sleep(self.final_retry_delay)
        exc = self._outage
        if self.failure_dir:
            self._dump(exc)
            return
        raise MongoConnectionError(
            f"{exc} The end of run {self.run_id} was not stored in MongoDB; pass failure_dir= "
            "to MongoObserver to keep such runs on disk.", exc.url if exc else "")

    def _dump(self, exc: BaseException | None) -> None:
        """Save what MongoDB did not get, in the file store's layout, for a later upload."""
        os.makedirs(self.failure_dir, exist_ok=True)
        files = _failure_store(self.failure_dir)
        experiment = files.put_sources(self._doc["experiment"])
        dump_id = files.create_run(dict(self._doc, experiment=experiment, artifacts=[],
                                        resources=[], status="RUNNING"))
        for method, args in self._pending:
            if method == "append_metrics":
                files.append_metrics(dump_id, args[0])
            elif method == "put_artifact" and os.path.isfile(args[1]):
                files.put_artifact(dump_id, *args)
            elif method == "put_resource" and os.path.isfile(args[0]):
                files.put_resource(dump_id, args[0])
                if len(args) > 1:  # a spooled copy: record the name the run used
                    resources = files.get(dump_id)["resources"]
                    resources[-1][0] = args[1]
                    files.update_run(dump_id, {"resources": resources})
        files.update_run(dump_id, {"status": self._doc["status"]})
        self._pending.clear()
        run_dir = os.path.join(self.failure_dir, str(dump_id))
        self._write_note(run_dir, exc or RuntimeError("unreachable"), mongo_id=self.run_id)
        log.warning("MongoDB is unreachable: %s The end of run %s (and the data MongoDB did "
                    "not get) is saved in %s. %s", exc, self.run_id, run_dir,
                    self._upload_hint())
