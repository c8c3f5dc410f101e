"""The generic observer: turns run events into writes on a :class:`~labbook.stores.base.Store`.

``FileStorageObserver``, ``SqlObserver`` and ``MongoObserver`` are this class bound to a store
(each in its own module of this package), so every built-in back-end records the same things
and everything recorded can be read back. Observers know stores only through the
:class:`~labbook.stores.base.Store` interface and the registry (:mod:`labbook.stores`).
"""
from __future__ import annotations

from typing import Any

from labbook import serialize
from labbook.errors import LabbookError, StoreUnusableError
from labbook.observers.base import RunObserver
from labbook.stores import redact_url
from labbook.stores.base import Store, replaceable

__all__ = ["StoreObserver", "run_document", "observed_store"]


def run_document(status: str, time_key: str, when: Any, ex_info: dict, command: str,
                 host_info: dict, config: dict, meta_info: dict) -> dict:
    """The document of a run as the start (or queue) event describes it: every field a store
    keeps, with the values flattened to plain JSON-compatible data. ``time_key`` is
    ``start_time`` or ``queue_time``."""
    # secrets are already masked: the run masks them once, before it announces itself
    return {
        "experiment": serialize.flatten(ex_info),
        "command": command,
        "host": serialize.flatten(host_info),
        time_key: when,
        "config": serialize.flatten(config),
        "meta": serialize.flatten(meta_info),
        "status": status,
        "resources": [],
        "artifacts": [],
        "captured_out": "",
        "info": {},
        "heartbeat": None,
        "result": None,
    }


def observed_store(observer: Any) -> Store | None:
    """The store ``observer`` records into: a store observer's own, or the one of the store
    observer a queued (or durable) observer delivers to; None for other observers."""
    inner = getattr(observer, "observer", observer)  # QueuedObserver wraps one observer
    return inner.store if isinstance(inner, StoreObserver) else None


class StoreObserver(RunObserver):
    """Records runs into ``store``."""

    priority = 20

    def __init__(self, store: Store, priority: int | None = None):
        self.store = store
        if priority is not None:
            self.priority = priority
        self.run_id: Any = None
        self._meta: dict | None = None  # the run's meta as stored (see _keep_tags)

    def preflight(self) -> None:
        """Check, before the run starts, that the store can record it at all (see
        :meth:`Store.check`); a :class:`~labbook.errors.StoreError` names the store and why."""
        try:
            self.store.check()
        except LabbookError:
            raise
        except Exception as exc:  # a driver's own error: one line, the URL without password
            url = redact_url(getattr(self.store, "url", "") or type(self.store).__name__)
            raise StoreUnusableError(f"Cannot record runs in {url}: {type(exc).__name__}: "
                                     f"{redact_url(str(exc).splitlines()[0] if str(exc) else '')}",
                                     url) from None

    @classmethod
    def create(cls, *args: Any, **kwargs: Any):
        """Sacred 0.7's constructor spelling, kept so old scripts run unchanged."""
        return cls(*args, **kwargs)

    def _begin(self, status: str, time_key: str, when, ex_info, command, host_info, config,
               meta_info, _id) -> Any:
        doc = run_document(status, time_key, when, ex_info, command, host_info, config,
                           meta_info)
        doc["experiment"] = self.store.put_sources(doc["experiment"])
        self._keep_claim(doc, _id)
        self.run_id = self.store.create_run(doc, _id)
        self._meta = doc["meta"]
        return self.run_id

    def _keep_claim(self, doc: dict, _id: Any) -> None:
        """A queued run that a worker claimed (``labbook worker``) starts under its id and
        replaces the claimed document: it keeps the time it was queued."""
        meta = doc.get("meta")
        if _id is None or doc.get("status") != "RUNNING" or not isinstance(meta, dict) \
                or not meta.get("worker"):
            return
        claimed = self.store.get(_id)
        if claimed is not None and replaceable(claimed) and claimed.get("queue_time"):
            doc["queue_time"] = claimed["queue_time"]

    def _keep_tags(self, info: Any) -> None:
        """``meta.tags`` of the run: the command line's, then each ``_run.set_tag`` as it
        arrives (in ``info.tags`` with the heartbeats); every store keeps them there."""
        meta = self._meta
        valued = info.get("tags") if isinstance(info, dict) else None
        if not isinstance(meta, dict) or not isinstance(valued, dict):
            return
        listed = meta.get("tags") if isinstance(meta.get("tags"), list) else []
        new = [str(k) for k in valued if str(k) not in [str(t) for t in listed]]
        if new:
            self._meta = dict(meta, tags=list(listed) + new)
            self.store.update_run(self.run_id, {"meta": self._meta})

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        return self._begin("QUEUED", "queue_time", queue_time, ex_info, command, host_info,
                           config, meta_info, _id)

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        if _id is not None and isinstance(meta_info, dict) and meta_info.get("resumptions"):
            return self._reopen(start_time, ex_info, host_info, config, meta_info, _id)
        return self._begin("RUNNING", "start_time", start_time, ex_info, command, host_info,
                           config, meta_info, _id)

    def _reopen(self, start_time, ex_info, host_info, config, meta_info, _id) -> Any:
        """A resumed run (see :mod:`labbook.resume`): the stored run is RUNNING again, with
        this start's host, sources and meta; its points, artifacts and start time stay."""
        from labbook.errors import RunNotFoundError

        if self.store.get(_id) is None:
            raise RunNotFoundError(f"No run with id {_id} to resume in "
                                   f"{redact_url(getattr(self.store, 'url', '') or '')}.")
        experiment = self.store.put_sources(serialize.flatten(ex_info))
        meta = serialize.flatten(meta_info)
        self.store.update_run(_id, {"status": "RUNNING", "heartbeat": start_time,
                                    "stop_time": None, "fail_trace": None, "result": None,
                                    "host": serialize.flatten(host_info),
                                    "experiment": experiment, "config": serialize.flatten(config),
                                    "meta": meta})
        self.run_id = _id
        self._meta = meta
        return _id

    def heartbeat_event(self, info, captured_out, beat_time, result):
        self._keep_tags(info)
        self.store.heartbeat(self.run_id, serialize.flatten(info), captured_out, beat_time,
                             serialize.flatten(result))

    def log_metrics(self, metrics_by_name, info):
        self.store.append_metrics(self.run_id, metrics_by_name)

    def completed_event(self, stop_time, result):
        self.store.update_run(self.run_id, {"stop_time": stop_time,
                                            "result": serialize.flatten(result),
                                            "status": "COMPLETED"})

    def interrupted_event(self, interrupt_time, status):
        self.store.update_run(self.run_id, {"stop_time": interrupt_time, "status": status})

    def failed_event(self, fail_time, fail_trace):
        # kept as given, as Sacred stores it: a list of lines, or one text (never its letters)
        trace = fail_trace if isinstance(fail_trace, str) or fail_trace is None \
            else list(fail_trace)
        self.store.update_run(self.run_id, {"stop_time": fail_time, "status": "FAILED",
                                            "fail_trace": trace})

    def config_event(self, config, changes):
        self._meta = dict(self._meta or {}, config_changes=serialize.flatten(changes))
        self.store.update_run(self.run_id, {"config": serialize.flatten(config),
                                            "meta": self._meta})

    def resource_event(self, filename):
        self.store.put_resource(self.run_id, filename)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self.store.put_artifact(self.run_id, name, filename, metadata, content_type)

    def artifact_version_event(self, name, files, type=None, metadata=None, aliases=()):
        """Record a version of a named artifact (labbook.stores.versions); the version, or
        None when this store keeps no versions."""
        if not self.store.keeps_versions:
            return None
        return self.store.log_artifact_version(self.run_id, name, files, type, metadata,
                                               aliases)

    def artifact_use_event(self, name, digest):
        if self.store.keeps_versions:
            self.store.use_artifact_version(self.run_id, name, digest)

    def join(self) -> None:
        """The run has ended: the store closes its idle connections (see Store.release)."""
        self.store.release()
