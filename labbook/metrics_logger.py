"""Sacred's ``sacred.metrics_logger``: the shape of logged scalar metrics.

A run buffers its points in :class:`labbook.metrics.MetricBuffer`; these names serve code
written against Sacred that builds or reads metric entries itself.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable, NamedTuple

__all__ = ["ScalarMetricLogEntry", "linearize_metrics"]


class ScalarMetricLogEntry(NamedTuple):
    """One logged point of a scalar metric."""

    name: str
    step: Any
    timestamp: _dt.datetime
    value: Any


def linearize_metrics(logged_metrics: Iterable[ScalarMetricLogEntry]) -> dict[str, dict]:
    """Group entries by metric name, keeping their order:
    ``{name: {"steps": [...], "values": [...], "timestamps": [...], "name": name}}``, the
    shape Sacred hands its observers."""
    series: dict[str, dict] = {}
    for entry in logged_metrics:
        one = series.setdefault(entry.name, {"steps": [], "values": [], "timestamps": [],
                                             "name": entry.name})
        one["steps"].append(entry.step)
        one["values"].append(entry.value)
        one["timestamps"].append(entry.timestamp)
    return series
