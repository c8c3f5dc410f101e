"""The in-memory metric buffer of a run.

Logging a point is one tuple appended to a list: no I/O, no lock, no datetime formatting. The
heartbeat thread drains the buffer (an atomic slice copy + delete of what it saw, so points
logged meanwhile stay for the next beat) and groups the points by name into Sacred's
``{name: {"steps": [...], "values": [...], "timestamps": [...]}}`` for ``log_metrics``.
"""
from __future__ import annotations

import numbers
import time
from operator import itemgetter
from typing import Any

from labbook.clock import from_timestamps
from labbook.errors import MetricValueError

__all__ = ["coerce_value", "flatten", "MetricBuffer"]

_REAL_TYPES = frozenset({float, int})


_STEP, _VALUE, _TIME = itemgetter(1), itemgetter(2), itemgetter(3)


def coerce_value(name: str, value: Any) -> float | int:
    """Return ``value`` as a Python int/float, or raise a clear error naming the metric."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real):
        return value.item() if hasattr(value, "item") else float(value)
    item = getattr(value, "item", None)  # 0-d numpy / torch tensors
    if item is not None and getattr(value, "ndim", None) == 0:
        return coerce_value(name, item())
    raise MetricValueError(
        f"Metric '{name}' must be a real number (int, float, bool or a numpy scalar), got "
        f"{type(value).__name__}: {value!r:.80}.")


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (wandb-style nested metric dicts)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class MetricBuffer:
    """Points logged since the last drain, plus per-metric step counters and last values."""

    __slots__ = ("_points", "_counters", "last", "global_step", "_pending_step")

    def __init__(self) -> None:
        self._points: list[tuple] = []
        self._counters: dict[str, int] = {}
        self.last: dict[str, Any] = {}
        self.global_step = 0
        self._pending_step: dict[str, Any] = {}

    def add(self, metric_name: str, value: Any, step: int | None = None) -> None:
        if value.__class__ not in _REAL_TYPES:
            value = coerce_value(metric_name, value)
        if step is None:
            step = self._counters[metric_name] = self._counters.get(metric_name, -1) + 1
        self._points.append((metric_name, step, value, time.time()))

    def log(self, data: dict, step: int | None = None, commit: bool = True) -> None:
        """wandb-style: a dict of metrics at the global step; ``commit=False`` accumulates."""
        if not isinstance(data, dict):
            raise MetricValueError(f"log() takes a dict of metrics, got {type(data).__name__}.")
        if step is not None:
            if step < self.global_step:
                raise MetricValueError(
                    f"log() step {step} is lower than the current step {self.global_step}; "
                    "steps must not go backwards.")
            if step > self.global_step and self._pending_step:
                self._commit()
            self.global_step = step
        flat = flatten(data)
        for name, value in flat.items():
            if value.__class__ not in _REAL_TYPES:
                flat[name] = coerce_value(name, value)
        self._pending_step.update(flat)
        if commit:
            self._commit()

    def _commit(self) -> None:
        now = time.time()
        step = self.global_step
        append = self._points.append
        for name, value in self._pending_step.items():
            append((name, step, value, now))
        self._pending_step = {}
        self.global_step = step + 1

    def pending(self) -> list[tuple]:
        return self._points[:]

    def drain(self) -> dict[str, dict[str, list]]:
        """Take every point logged so far, grouped by metric name."""
        if self._pending_step:
            self._commit()
        points = self._points
        n = len(points)
        if not n:
            return {}
        taken = points[:n]
        del points[:n]
        by_name: dict[str, list[tuple]] = {}
        for point in taken:
            group = by_name.get(point[0])
            if group is None:
                by_name[point[0]] = [point]
            else:
                group.append(point)
        grouped: dict[str, dict[str, list]] = {}
        for name, group in by_name.items():
            values = list(map(_VALUE, group))
            grouped[name] = {"steps": list(map(_STEP, group)), "values": values,
                             "timestamps": from_timestamps(list(map(_TIME, group)))}
            self.last[name] = values[-1]
        return grouped

    def latest(self) -> dict[str, Any]:
        """Last value of every metric, including points not drained yet."""
        last = dict(self.last)
        for name, _step, value, _ts in self._points[:]:
            last[name] = value
        last.update(self._pending_step)
        return last
