"""The observer of a worker process of a distributed job: it writes the worker's metrics and
artifacts into the parent's run (see :mod:`labbook.distributed`)."""
from __future__ import annotations

from typing import Any

from labbook.observers.base import RunObserver

__all__ = ["AttachedObserver"]


class AttachedObserver(RunObserver):
    """Sends a worker's metrics and artifacts into the parent run; ignores everything else."""

    priority = 1000

    def __init__(self, store: Any, run_id: Any, prefix: str):
        self.store = store
        self.run_id = run_id
        self.prefix = prefix

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        return self.run_id

    def log_metrics(self, metrics_by_name, info):
        prefixed = {self.prefix + name: dict(series, name=self.prefix + name)
                    for name, series in metrics_by_name.items()}
        self.store.append_metrics(self.run_id, prefixed)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self.store.put_artifact(self.run_id, self.prefix + name, filename, metadata,
                                content_type)

    @classmethod
    def for_url(cls, url: str, run_id: Any, prefix: str) -> AttachedObserver:
        """Attached to run ``run_id`` of the store at ``url`` (opened through the registry)."""
        from labbook.stores import open_store

        return cls(open_store(url), run_id, prefix)
