"""Durable delivery, the default for every built-in store observer: nothing lost in an outage.

Every :class:`~labbook.observers.store_observer.StoreObserver` of a run (``-F``, ``-s``, ``-m``,
``--store``, ``LABBOOK_STORE``, ``observers.create(url)`` and ``ex.observers.append(
SqlObserver(url))`` alike) is wrapped in a :class:`DurableObserver` when the run builds its
event bus (``run.observers`` keeps the user's objects; ``--queued`` wraps every observer in a
plain :class:`~labbook.observers.queued.QueuedObserver` instead).

* **While the store answers, delivery is synchronous**: each event is handed to the delivery
  thread and the run waits until it is stored, so a program (or a Sacred user) reading the store
  during or right after a run sees everything, as without the wrapper. The wait is bounded by
  ``sync_wait`` seconds, so a store that stops answering (a frozen connection that no socket
  timeout notices) cannot hang the run.
* **After a failure or a wait that ran out**, the run stops waiting: events queue up and the
  thread retries them in order with exponential back-off (``backoff`` doubling up to
  ``max_backoff``). When the store answers again and the queue has drained, delivery is
  synchronous again.
* **The run's last beat** (its remaining points and heartbeat) is queued without a wait of
  its own (``EventBus.deferred``): the end event that follows at once waits for it, since the
  thread delivers in order.
* **At the end** the run waits at most ``max_wait`` seconds for the queue, then journals what is
  left in the journal format of the queued observer (under ``failure_dir``) and logs one line
  saying how many events wait where and the ``labbook sync`` command that uploads them. The
  observer is never disabled by an outage.
* A refusal that is no outage (:class:`~labbook.errors.ObserverError`, such as a taken
  ``--id``) is raised as before.

Observers that are not store observers (users' own ``RunObserver`` subclasses) are not wrapped:
as in Sacred, one that raises is logged and gets no further events of the run.

The defaults come from ``labbook.SETTINGS.DELIVERY`` (see :func:`labbook.settings.defaults`).
"""
from __future__ import annotations

import os
import weakref
from typing import Any, Iterable

from labbook.observers.base import RunObserver
from labbook.observers.queued import QueuedObserver, _Item, log
from labbook.observers.store_observer import StoreObserver

__all__ = ["DurableObserver", "make_durable"]


#: the events whose wait a run may defer to the end event that follows them
_DEFERRABLE = frozenset({"log_metrics", "heartbeat_event"})


class DurableObserver(QueuedObserver):
    """``observer`` delivered synchronously while its store answers, in the background with
    retries (and a journal at the end) while it does not. See the module's docstring."""

    def __init__(self, observer: RunObserver, failure_dir: str | os.PathLike | None = None,
                 sync_wait: float = 30.0, max_wait: float = 10.0, backoff: float = 0.1,
                 max_backoff: float = 5.0):
        super().__init__(observer, failure_dir=failure_dir, max_wait=max_wait, backoff=backoff,
                         max_backoff=max_backoff, start_wait=sync_wait)
        self.sync_wait = sync_wait
        #: the run stopped waiting for deliveries (a failure, or a wait that ran out)
        self._behind = False
        #: set by the run (``EventBus.deferred``) around its last beat: that beat's points and
        #: heartbeat are queued without a wait of their own, since the end event that follows
        #: at once waits for its delivery, which comes after theirs (one queue, in order)
        self.defer_waits = False

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        # no copy while the store answers: the file is stored before the run goes on
        self._put("artifact_event", {"name": name, "filename": filename, "metadata": metadata,
                                     "content_type": content_type})

    def artifact_version_event(self, name, files, type=None, metadata=None, aliases=()):
        # no copies while the store answers: the version is stored before the run goes on,
        # and its answer (the version) is returned
        item = self._put("artifact_version_event", {"name": name, "files": files, "type": type,
                                                    "metadata": metadata,
                                                    "aliases": list(aliases)})
        return item.result if item.delivered else {"pending": True}

    def _put(self, event: str, kwargs: dict) -> _Item:
        with self._cond:
            item = _Item(event, kwargs, self._generation)
            self._enqueue(item)
            if self._behind and self._outage is None and len(self._items) <= 1 \
                    and self._current is None:
                self._behind = False  # caught up: synchronous again
            wait = not self._behind and not (self.defer_waits and event in _DEFERRABLE)
        if wait:
            self._wait_for(item)
        if event == "artifact_event" and not item.delivered:
            # it waits: the run may delete the file once this returns
            copy = self._copy_of(kwargs["filename"])
            with self._cond:
                if not item.delivered:
                    item.kwargs = dict(item.kwargs, filename=copy)
        elif event == "artifact_version_event" and not item.delivered:
            files = [dict(f, source=self._copy_of(f["source"])) for f in kwargs["files"]]
            with self._cond:
                if not item.delivered:
                    item.kwargs = dict(item.kwargs, files=files)
        return item

    def _wait_for(self, item: _Item) -> None:
        settled = item.settled.wait(self.sync_wait)
        with self._cond:
            if not settled:
                if not self._behind:
                    log.warning("%s has not answered within %g s; the run goes on without "
                                "waiting for it, and its events are delivered in the background "
                                "or saved in %s at the end of the run.", self.describe(),
                                self.sync_wait, self.failure_dir)
                self._behind = True
            elif self._outage is not None:
                self._behind = True

    def _start(self, event: str, kwargs: dict) -> tuple[Any, bool]:
        result = super()._start(event, kwargs)
        if not result[1]:
            with self._cond:
                self._behind = True
        return result

    def __repr__(self) -> str:
        return f"DurableObserver({self.observer!r})"


#: one wrapper per observer, reused by its later runs: one thread per observer, in order
_WRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def make_durable(observers: Iterable[RunObserver], delivery: dict | None = None
                 ) -> list[RunObserver]:
    """``observers`` with every store observer wrapped in a :class:`DurableObserver`
    (``delivery``: ``labbook.SETTINGS.DELIVERY`` as a plain dict)."""
    delivery = delivery or {}
    wrapped = []
    for observer in observers:
        if not isinstance(observer, StoreObserver):
            wrapped.append(observer)  # QueuedObserver, custom observers: as they are
            continue
        durable = _WRAPPERS.get(observer)
        if durable is None:
            durable = DurableObserver(
                observer,
                failure_dir=getattr(observer, "failure_dir", None) or delivery.get("FAILURE_DIR"),
                sync_wait=float(delivery.get("SYNC_WAIT", 30.0)),
                max_wait=float(delivery.get("MAX_WAIT", 10.0)),
                backoff=float(delivery.get("BACKOFF", 0.1)),
                max_backoff=float(delivery.get("MAX_BACKOFF", 5.0)))
            _WRAPPERS[observer] = durable
        wrapped.append(durable)
    return wrapped
