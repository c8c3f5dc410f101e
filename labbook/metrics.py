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
from labbook.errors import MetricNameError, MetricValueError
from labbook.serialize import unencodable

__all__ = ["METRIC_NAME_CHARS", "check_metric_name", "coerce_value", "flatten", "MetricBuffer"]

#: the longest metric name the SQL stores keep (``metrics.name``, VARCHAR(255))
METRIC_NAME_CHARS = 255

_REAL_TYPES = frozenset({float, int})


_NAME, _STEP, _VALUE, _TIME = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)


def check_metric_name(name: Any) -> None:
    """Raise :class:`MetricNameError` for a name some store cannot hold."""
    if not isinstance(name, str) or not name:
        raise MetricNameError(f"Metric names must be non-empty strings, got {name!r}.")
    if len(name) > METRIC_NAME_CHARS:
        raise MetricNameError(
            f"Metric name {name[:40]!r}... is {len(name)} characters long; the SQL stores keep "
            f"metric names of at most {METRIC_NAME_CHARS} characters.")
    if "\x00" in name:
        raise MetricNameError(f"Metric name {name!r} contains a NUL character, which "
                              "PostgreSQL cannot store.")
    bad = unencodable(name)
    if bad is not None:
        raise MetricNameError(
            f"Metric name {name!r} is not valid Unicode text (character {bad} is a lone "
            "surrogate, as Python decodes bytes that are not UTF-8); stores keep UTF-8 names.")


def _too_big(name: str, value: int) -> None:
    raise MetricValueError(
        f"Metric '{name}' got the integer {value}, beyond 2**53: the SQL stores keep metric "
        "values as 64-bit floats (DOUBLE), which cannot hold it exactly. Log float(value) if "
        "an approximation is meant.")


def _check_step(name: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise MetricValueError(f"The step of metric '{name}' must be an integer, got "
                               f"{type(step).__name__}: {step!r:.80}.")
    step = int(step)
    if not _STEP_MIN <= step <= _STEP_MAX:
        raise MetricValueError(f"The step of metric '{name}' is {step.bit_length()} bits long; "
                               "stores keep 64-bit steps.")
    return step


#: steps every store keeps (64-bit integers)
_STEP_MIN, _STEP_MAX = -(2 ** 63), 2 ** 63 - 1
#: integer values every store keeps exactly (a 64-bit float holds every integer up to 2**53)
_INT_MIN, _INT_MAX = -(2 ** 53), 2 ** 53


def coerce_value(name: str, value: Any) -> float | int:
    """Return ``value`` as a Python int/float, or raise a clear error naming the metric."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        _too_big(name, int(value))
    if isinstance(value, numbers.Real):
        out = value.item() if hasattr(value, "item") else float(value)
        if out.__class__ is int and not _INT_MIN <= out <= _INT_MAX:  # numpy's int64
            _too_big(name, out)
        return out
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

    __slots__ = ("_points", "_counters", "last", "global_step", "_pending_step", "_names")

    def __init__(self) -> None:
        self._names: set[str] = set()  # names already checked (one set lookup per point)
        self._points: list[tuple] = []
        self._counters: dict[str, int] = {}
        self.last: dict[str, Any] = {}
        self.global_step = 0
        self._pending_step: dict[str, Any] = {}

    def add(self, metric_name: str, value: Any, step: int | None = None) -> None:
        if metric_name not in self._names:
            check_metric_name(metric_name)
            self._names.add(metric_name)
        # literals, not the module's constants: this is the hot path (2**53 and 64 bits)
        if value.__class__ is not float and (value.__class__ is not int or value > 0x20000000000000
                                             or value < -0x20000000000000):
            value = coerce_value(metric_name, value)
        if step is None:
            step = self._counters[metric_name] = self._counters.get(metric_name, -1) + 1
        elif step.__class__ is not int or step > 0x7FFFFFFFFFFFFFFF or \
                step < -0x8000000000000000:
            step = _check_step(metric_name, step)
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
            if name not in self._names:
                check_metric_name(name)
                self._names.add(name)
            if value.__class__ not in _REAL_TYPES or value.__class__ is int and not \
                    _INT_MIN <= value <= _INT_MAX:
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

    def size(self) -> int:
        """How many points wait for the next drain."""
        return len(self._points)

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
        names = dict.fromkeys(map(_NAME, taken))  # in order of first point, at C speed
        by_name: dict[str, list[tuple]]
        if len(names) == 1:
            by_name = {next(iter(names)): taken}
        elif len(names) <= 8:  # a comprehension per metric beats a Python loop over points
            by_name = {name: [point for point in taken if point[0] == name] for name in names}
        else:
            by_name = {}
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
