"""The event bus between a run and its observers.

Observers are called in descending priority (ties keep the order they were added). An
observer that raises is logged once, loudly, and receives no further events of this run; the
run and the other observers carry on (Sacred's rule, kept for users' own observers). Store
observers reach the bus wrapped in a ``DurableObserver`` (labbook.observers.durable), which
never raises for an outage: it retries and journals instead. The first observer that returns
an id from ``started_event``/``queued_event`` decides the run's id, unless an id was given up
front.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterable, Iterator, Sequence

from labbook.errors import RunExistsError, RunIdRefusedError
from labbook.observers.base import RunObserver

#: what a store answers to a start that must stop the run before it starts (a taken id, an id
#: the store cannot hold): raised, not logged
START_REFUSALS = (RunExistsError, RunIdRefusedError)

__all__ = ["log", "EventBus"]

log = logging.getLogger("labbook.events")


class EventBus:
    def __init__(self, observers: Iterable[RunObserver], logger: logging.Logger | None = None):
        indexed = list(enumerate(observers))
        indexed.sort(key=lambda pair: (-getattr(pair[1], "priority", 0), pair[0]))
        self.observers: list[RunObserver] = [obs for _, obs in indexed]
        self.failed: list[RunObserver] = []
        self.logger = logger or log

    def __bool__(self) -> bool:
        return bool(self.observers)

    @property
    def active(self) -> list[RunObserver]:
        return [obs for obs in self.observers if obs not in self.failed]

    def _call(self, observer: RunObserver, event: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(observer, event, None)
        if method is None:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # an observer must never take a run down...
            if isinstance(exc, START_REFUSALS) and event in ("started_event", "queued_event"):
                raise  # ...but a taken or impossible id means it must not start (see start)
            self.failed.append(observer)
            self.logger.error(
                "Observer %s failed in %s and is disabled for the rest of this run; the run "
                "and the other observers continue.", type(observer).__name__, event,
                exc_info=True)
            return None

    def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Send one event to every observer that has not failed."""
        for observer in self.active:
            self._call(observer, event, *args, **kwargs)

    def ask(self, event: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Send one event to every observer that has not failed; their answers, in order."""
        return [self._call(observer, event, *args, **kwargs) for observer in self.active]

    def start(self, event: str, _id: Any = None, **kwargs: Any) -> Any:
        """Send ``started_event`` or ``queued_event`` and negotiate the run id."""
        started: list[RunObserver] = []
        for observer in self.active:
            try:
                returned = self._call(observer, event, _id=_id, **kwargs)
            except START_REFUSALS as exc:
                # like Sacred, a taken id stops the run before it starts; observers that
                # already recorded the start learn that it failed, so no run is left RUNNING
                when = kwargs.get("start_time") or kwargs.get("queue_time")
                for other in started:
                    self._call(other, "failed_event", fail_time=when,
                               fail_trace=[f"{type(exc).__name__}: {exc}\n"])
                raise
            started.append(observer)
            if _id is None and returned is not None:
                _id = returned
        return _id

    def join(self) -> None:
        for observer in self.observers:
            try:
                observer.join()
            except Exception:
                self.logger.error("Observer %s failed while finishing.",
                                  type(observer).__name__, exc_info=True)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Observers that deliver from a queue (``defer_waits``) do not wait for the points and
        heartbeats sent meanwhile; the event after the block waits for them, in order."""
        deferring = [obs for obs in self.observers if hasattr(obs, "defer_waits")]
        for observer in deferring:
            observer.defer_waits = True
        try:
            yield
        finally:
            for observer in deferring:
                observer.defer_waits = False

    def failed_names(self) -> Sequence[str]:
        return [type(obs).__name__ for obs in self.failed]
