"""The generic observer: turns run events into writes on a :class:`~labbook.stores.base.Store`.

``FileStorageObserver`` (and the SQL and Mongo observers) are this class bound to a store, so
every built-in back-end records the same things and everything recorded can be read back.
"""
from __future__ import annotations

import os
from typing import Any

from labbook import serialize
from labbook.observers.base import RunObserver
from labbook.stores.base import Store


def run_document(status: str, time_key: str, when: Any, ex_info: dict, command: str,
                 host_info: dict, config: dict, meta_info: dict) -> dict:
    """The document of a run as the start (or queue) event describes it: every field a store
    keeps, with the values flattened to plain JSON-compatible data. ``time_key`` is
    ``start_time`` or ``queue_time``."""
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


class StoreObserver(RunObserver):
    """Records runs into ``store``."""

    priority = 20

    def __init__(self, store: Store, priority: int | None = None):
        self.store = store
        if priority is not None:
            self.priority = priority
        self.run_id: Any = None

    @classmethod
    def create(cls, *args: Any, **kwargs: Any):
        """Sacred 0.7's constructor spelling, kept so old scripts run unchanged."""
        return cls(*args, **kwargs)

    def _begin(self, status: str, time_key: str, when, ex_info, command, host_info, config,
               meta_info, _id) -> Any:
        doc = run_document(status, time_key, when, ex_info, command, host_info, config,
                           meta_info)
        doc["experiment"] = self.store.put_sources(doc["experiment"])
        self.run_id = self.store.create_run(doc, _id)
        return self.run_id

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        return self._begin("QUEUED", "queue_time", queue_time, ex_info, command, host_info,
                           config, meta_info, _id)

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        return self._begin("RUNNING", "start_time", start_time, ex_info, command, host_info,
                           config, meta_info, _id)

    def heartbeat_event(self, info, captured_out, beat_time, result):
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
        self.store.update_run(self.run_id, {"stop_time": fail_time, "status": "FAILED",
                                            "fail_trace": list(fail_trace)})

    def resource_event(self, filename):
        self.store.put_resource(self.run_id, filename)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self.store.put_artifact(self.run_id, name, filename, metadata, content_type)


class FileStorageObserver(StoreObserver):
    """Stores runs in a directory, in the layout of Sacred's FileStorageObserver, with its
    options: ``resource_dir`` and ``source_dir`` (default ``basedir/_resources`` and
    ``basedir/_sources``), ``copy_artifacts`` and ``copy_sources`` (False records the names
    only) and ``template``: a Mako template (default ``basedir/template.html`` when it
    exists) rendered into ``<run dir>/report.<ext>`` when the run ends, with ``run``,
    ``config``, ``info``, ``cout`` and ``savedir`` (needs the ``mako`` package)."""

    def __init__(self, basedir: str | os.PathLike, resource_dir: str | os.PathLike | None = None,
                 source_dir: str | os.PathLike | None = None,
                 template: str | os.PathLike | None = None, priority: int | None = None,
                 copy_artifacts: bool = True, copy_sources: bool = True):
        from labbook.stores.file import FileStore

        super().__init__(FileStore(basedir, resource_dir=resource_dir, source_dir=source_dir,
                                   copy_artifacts=copy_artifacts, copy_sources=copy_sources),
                         priority)
        self.basedir = self.store.basedir
        self.resource_dir = self.store.resource_dir
        self.source_dir = self.store.source_dir
        self.copy_artifacts = copy_artifacts
        self.copy_sources = copy_sources
        if template is not None:
            template = os.path.abspath(os.fspath(template))
            if not os.path.isfile(template):
                raise FileNotFoundError(f"The FileStorageObserver's template {template} does "
                                        "not exist.")
        else:
            default = os.path.join(self.basedir, "template.html")
            template = default if os.path.isfile(default) else None
        self.template = template

    def completed_event(self, stop_time, result):
        super().completed_event(stop_time, result)
        self._render_report()

    def interrupted_event(self, interrupt_time, status):
        super().interrupted_event(interrupt_time, status)
        self._render_report()

    def failed_event(self, fail_time, fail_trace):
        super().failed_event(fail_time, fail_trace)
        self._render_report()

    def _render_report(self) -> None:
        if self.template is None or self.run_id is None:
            return
        try:
            from mako.template import Template
        except ImportError:
            import logging

            logging.getLogger("labbook.observers").warning(
                "The FileStorageObserver's template %s is not rendered: it needs Mako (pip "
                "install mako).", self.template)
            return
        doc = self.store.get(self.run_id) or {}
        # as in Sacred's run.json: times as ISO text (templates parse them with dateutil)
        run = serialize.flatten({k: v for k, v in doc.items()
                                 if k not in ("config", "info", "captured_out")})
        report = Template(filename=self.template).render(
            run=run, config=doc.get("config", {}), info=doc.get("info", {}),
            cout=doc.get("captured_out", ""), savedir=self.dir)
        extension = os.path.splitext(self.template)[1]
        with open(os.path.join(self.dir, "report" + extension), "w", encoding="utf-8") as fh:
            fh.write(report)

    @property
    def dir(self) -> str | None:
        """The directory of the current run (Sacred's ``observer.dir``)."""
        return None if self.run_id is None else os.path.join(self.basedir, str(self.run_id))


def observer_for_url(url: str, priority: int | None = None) -> StoreObserver:
    """The observer that records into the store at ``url`` (``--store URL``)."""
    from labbook.stores import open_store, scheme_of

    scheme = scheme_of(url)
    if scheme == "file":
        path = url[len("file://"):] if url.startswith("file://") else url
        return FileStorageObserver(path, priority=priority)
    if scheme == "mongodb":
        # MongoObserver adds what a network store needs: retries and a failure directory
        from labbook.observers.mongo import MongoObserver

        if priority is None:
            return MongoObserver(url=url)
        return MongoObserver(url=url, priority=priority)
    return StoreObserver(open_store(url), priority)
