"""The in-memory metric buffer of a run.

Logging a point extends the metric's own flat list by ``(step, value, time.time())``: no I/O,
no lock, no datetime formatting, no object kept per point but the three values. The heartbeat
thread drains each list (an atomic slice copy + delete of what it saw, so points logged
meanwhile stay for the next beat) into Sacred's
``{name: {"steps": [...], "values": [...], "timestamps": [...]}}`` for ``log_metrics``.
"""
from __future__ import annotations

import numbers
from itertools import repeat
from time import time as _time
from typing import Any

from labbook.clock import from_timestamps
from labbook.errors import MetricNameError, MetricValueError
from labbook.serialize import unencodable

__all__ = ["METRIC_NAME_CHARS", "check_metric_name", "coerce_value", "flatten", "MetricBuffer"]

#: the longest metric name the SQL stores keep (``metrics.name``, VARCHAR(255))
METRIC_NAME_CHARS = 255

_REAL_TYPES = frozenset({float, int})


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
    """Points logged since the last drain, plus per-metric step counters and last values.

    Each metric has one flat list ``[step, value, time, step, value, time, ...]``: logging a
    point extends it by three items in one C call, with no tuple kept per point (no garbage
    collector work for millions of points, about a third less memory than a tuple per point).
    A point logged without a step keeps ``None`` as its step; the drain numbers those in order
    from the metric's counter, so the call does no counting.
    """

    __slots__ = ("_columns", "_counters", "last", "global_step", "_pending_step")

    def __init__(self) -> None:
        #: name -> flat [step, value, time, ...]; a name is checked once, when its list is made
        self._columns: dict[str, list] = {}
        self._counters: dict[str, int] = {}
        self.last: dict[str, Any] = {}
        self.global_step = 0
        self._pending_step: dict[str, Any] = {}

    def _column(self, name: Any) -> list:
        column = self._columns.get(name)
        if column is None:
            check_metric_name(name)
            # setdefault, atomic: two threads logging a new metric at once share one list
            column = self._columns.setdefault(name, [])
        return column

    def add(self, metric_name: str, value: Any, step: int | None = None) -> None:
        try:  # free in 3.11 when nothing is raised: cheaper than dict.get
            column = self._columns[metric_name]
        except KeyError:  # the metric's first point: its name is checked once
            column = self._column(metric_name)
        # literals, not the module's constants: this is the hot path (2**53 and 64 bits)
        if value.__class__ is not float and (value.__class__ is not int or value > 0x20000000000000
                                             or value < -0x20000000000000):
            value = coerce_value(metric_name, value)
        if step is not None and (step.__class__ is not int or step > 0x7FFFFFFFFFFFFFFF
                                 or step < -0x8000000000000000):
            step = _check_step(metric_name, step)
        column += (step, value, _time())  # one list.extend: atomic for the draining thread

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
            if name not in self._columns:
                self._column(name)
            if value.__class__ not in _REAL_TYPES or value.__class__ is int and not \
                    _INT_MIN <= value <= _INT_MAX:
                flat[name] = coerce_value(name, value)
        self._pending_step.update(flat)
        if commit:
            self._commit()

    def _commit(self) -> None:
        now = _time()
        step = self.global_step
        columns = self._columns
        for name, value in self._pending_step.items():
            column = columns[name]
            column += (step, value, now)
        self._pending_step = {}
        self.global_step = step + 1

    def commit(self) -> None:
        """Add the points of a step still open (``log(..., commit=False)``), as a drain does."""
        if self._pending_step:
            self._commit()

    def size(self) -> int:
        """How many points wait for the next drain."""
        return sum(map(len, list(self._columns.values()))) // 3

    def pending(self) -> list[tuple]:
        """``(name, step, value, time)`` of the points not drained yet (steps not given are
        None), metric by metric."""
        out = []
        for name, column in list(self._columns.items()):
            taken = column[:]
            out += zip(repeat(name), taken[0::3], taken[1::3], taken[2::3])
        return out

    def drain(self, limit: int | None = None) -> dict[str, dict[str, list]]:
        """Take every point logged so far (at most ``limit``, the oldest of each metric
        first), grouped by metric name (metrics in the order of their first point in the
        run)."""
        if self._pending_step:
            self._commit()
        grouped: dict[str, dict[str, list]] = {}
        room = -1 if limit is None else limit
        for name, column in list(self._columns.items()):
            if not room:
                break
            n = len(column)  # a multiple of 3: points are added by one extend each
            if not n:
                continue
            if room > 0:
                n = min(n, 3 * room)
                room -= n // 3
            taken = column[:n]
            del column[:n]  # what was logged meanwhile stays for the next drain
            steps, values = taken[0::3], taken[1::3]
            stamps = taken[2::3]
            del taken
            missing = steps.count(None)
            if missing:
                steps = self._number(name, steps, missing)
            # "name": the key again, as Sacred hands its observers each series
            grouped[name] = {"steps": steps, "values": values,
                             "timestamps": from_timestamps(stamps), "name": name}
            self.last[name] = values[-1]
        return grouped

    def _number(self, name: str, steps: list, missing: int) -> list:
        """``steps`` with each None replaced by the next count of the metric's counter."""
        first = self._counters.get(name, -1) + 1
        self._counters[name] = first + missing - 1
        if missing == len(steps):
            return list(range(first, first + missing))
        counts = iter(range(first, first + missing))
        return [next(counts) if step is None else step for step in steps]

    def latest(self) -> dict[str, Any]:
        """Last value of every metric, including points not drained yet."""
        last = dict(self.last)
        for name, column in list(self._columns.items()):
            tail = column[-3:]
            if len(tail) == 3:
                last[name] = tail[1]
        last.update(self._pending_step)
        return last
