"""Sacred's queue observers, mapped onto :class:`~labbook.observers.queued.QueuedObserver`.

``QueueObserver(observer)`` delivers ``observer``'s events from a background thread;
``QueuedMongoObserver(...)`` is a :class:`~labbook.observers.mongo.MongoObserver` behind such a
queue. labbook's queue sends each event as soon as it can and retries with a growing pause
(at most ``retry_interval`` seconds); what cannot be delivered when the run ends is journaled
for ``labbook sync`` instead of being lost.
"""
from __future__ import annotations

import os
from typing import Any

from labbook.errors import ArgumentError
from labbook.observers.base import RunObserver
from labbook.observers.queued import QueuedObserver

__all__ = ["QueueObserver", "QueuedMongoObserver"]


def _check(interval: float, retry_interval: float) -> None:
    for label, value in (("interval", interval), ("retry_interval", retry_interval)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ArgumentError(f"{label} must be a positive number of seconds, got {value!r}.")


class QueueObserver(QueuedObserver):
    """Sacred's ``QueueObserver(covered_observer, interval, retry_interval)``.

    ``interval``: Sacred's pause between deliveries; labbook delivers each event at once, so
    it is only checked. ``retry_interval``: the longest pause between retries.
    """

    def __init__(self, covered_observer: RunObserver, interval: float = 20.0,
                 retry_interval: float = 10.0, failure_dir: str | os.PathLike | None = None):
        _check(interval, retry_interval)
        super().__init__(covered_observer, failure_dir=failure_dir,
                         backoff=min(0.1, retry_interval), max_backoff=retry_interval)
        self.interval = interval
        self.retry_interval = retry_interval

    @property
    def covered_observer(self) -> RunObserver:
        return self.observer


class QueuedMongoObserver(QueueObserver):
    """Sacred's ``QueuedMongoObserver``: a MongoObserver (same arguments) behind a queue."""

    def __init__(self, interval: float = 20.0, retry_interval: float = 10.0,
                 url: str | None = None, db_name: str = "sacred", collection: str = "runs",
                 overwrite: Any = None, priority: int = 30, client: Any = None,
                 failure_dir: str | os.PathLike | None = None, **kwargs: Any):
        from labbook.observers.mongo import MongoObserver

        _check(interval, retry_interval)
        mongo = MongoObserver(url=url, db_name=db_name, collection=collection,
                              overwrite=overwrite, priority=priority, client=client,
                              failure_dir=failure_dir, **kwargs)
        super().__init__(mongo, interval=interval, retry_interval=retry_interval,
                         failure_dir=failure_dir)

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> QueuedMongoObserver:
        """Sacred's older constructor spelling, kept so old scripts run unchanged."""
        return cls(*args, **kwargs)
