"""The observer interface: every event of a run's life, in Sacred's vocabulary.

Subclass :class:`RunObserver` and override the events you care about; every method has a
do-nothing default. Observers are called in descending ``priority``; the first one whose
``started_event``/``queued_event`` returns an id decides the run's ``_id`` and the others are
handed that id.
"""
from __future__ import annotations

from typing import Any

__all__ = ["RunObserver", "td_format"]


class RunObserver:
    """Base class of run observers (all events are optional)."""

    priority: int = 0

    def queued_event(self, ex_info: dict, command: str, host_info: dict, queue_time, config: dict,
                     meta_info: dict, _id) -> Any:
        return None

    def started_event(self, ex_info: dict, command: str, host_info: dict, start_time,
                      config: dict, meta_info: dict, _id) -> Any:
        return None

    def heartbeat_event(self, info: dict, captured_out: str, beat_time, result) -> None:
        pass

    def completed_event(self, stop_time, result) -> None:
        pass

    def interrupted_event(self, interrupt_time, status: str) -> None:
        pass

    def failed_event(self, fail_time, fail_trace: list[str]) -> None:
        pass

    def resource_event(self, filename: str) -> None:
        pass

    def artifact_event(self, name: str, filename: str, metadata: dict | None = None,
                       content_type: str | None = None) -> None:
        pass

    def log_metrics(self, metrics_by_name: dict, info: dict) -> None:
        pass

    def config_event(self, config: dict, changes: dict) -> None:
        """labbook's own event (Sacred has none): a run started with ``labbook.start_run``
        changed its config before logging metrics; ``config`` is the whole new config,
        ``changes`` maps each changed top-level key to ``{"from": old, "to": new}`` (no
        ``from`` for a new key)."""

    def join(self) -> None:
        """Block until everything this observer was handed is stored."""


def td_format(td_object) -> str:
    """A duration in words, as Sacred's chat observers write it: ``"1 hour, 2 seconds"``;
    ``"less than a second"`` under one second."""
    seconds = int(td_object.total_seconds())
    if seconds == 0:
        return "less than a second"
    parts = []
    for unit, length in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400),
                         ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= length:
            count, seconds = divmod(seconds, length)
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return ", ".join(parts)
