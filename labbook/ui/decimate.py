"""Long metric series cut down to what a chart can show, read a page at a time.

A chart a few hundred pixels wide cannot show a million points, and sending them would take
seconds. :func:`decimate_series` keeps, for each of ``points // 2`` buckets of consecutive
points (by position), the point with the smallest and the one with the largest value, plus
the first and the last point of the series: spikes survive (an even sample would skip them)
and the shape is the one a full plot draws. The series is read with ``Store.iter_series``, so
it never sits in memory whole. The full series stays downloadable as CSV (:func:`csv_rows`).
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Iterable, Iterator

from labbook.errors import ArgumentError

__all__ = ["decimate_series", "Decimator", "plain_number", "epoch_seconds", "csv_rows",
           "sampled_series",
           "DEFAULT_POINTS", "PAGE_SIZE"]

#: points per series sent to a chart by default (about two per pixel of a wide chart)
DEFAULT_POINTS = 2000
#: points read from the store at a time
PAGE_SIZE = 50_000


def plain_number(value: Any) -> float | None:
    """A value as a chart plots it: a finite float, or None (a gap) for NaN, infinities and
    what is no number (strings, lists)."""
    if value.__class__ is float:
        return value if math.isfinite(value) else None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def epoch_seconds(value: Any) -> float | None:
    """A point's timestamp as seconds since the epoch (naive times are UTC, as stored)."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


class Decimator:
    """Min and max per bucket of a series of ``total`` points, fed page by page.

    With ``total <= points`` every point is kept."""

    def __init__(self, total: int, points: int = DEFAULT_POINTS):
        if points < 4:
            raise ArgumentError(f"points must be at least 4, got {points}.")
        self.total = total
        self.keep_all = total <= points
        # two points per bucket, and room for the first and the last
        self.buckets = max(1, (points - 2) // 2)
        self.seen = 0
        self.kept: list[tuple[int, Any, Any, Any]] = []  # (index, step, value, time)
        self._bucket = -1
        self._low: tuple | None = None   # (value, index, step, raw value, time)
        self._high: tuple | None = None
        self._first: tuple | None = None
        self._last: tuple | None = None

    def _flush(self) -> None:
        for best in sorted({self._low, self._high} - {None}, key=lambda b: b[1]):
            self.kept.append((best[1], best[2], best[3], best[4]))
        self._low = self._high = None

    def add(self, steps: list, values: list, times: list | None) -> None:
        """The next page of points (``times`` may be None)."""
        n = len(values)
        offset = self.seen
        self.seen += n
        if not n:
            return
        if times is None:
            times = [None] * n
        self._last = (offset + n - 1, steps[-1], values[-1], times[-1])
        if self.keep_all:
            self.kept.extend(zip(range(offset, offset + n), steps, values, times))
            return
        total = max(self.total, self.seen)  # points logged since the count was read
        buckets = self.buckets
        start = 0
        while start < n:
            index = offset + start
            bucket = index * buckets // total
            # the first index of the next bucket
            end_index = -(-(bucket + 1) * total // buckets)
            end = min(n, max(end_index - offset, start + 1))
            if bucket != self._bucket:
                self._flush()
                self._bucket = bucket
            numbers = [plain_number(v) for v in values[start:end]]
            picked = [i for i, x in enumerate(numbers) if x is not None]
            if picked:
                low = min(picked, key=numbers.__getitem__)
                high = max(picked, key=numbers.__getitem__)
                for i, slot in ((low, "_low"), (high, "_high")):
                    current = getattr(self, slot)
                    x = numbers[i]
                    better = current is None or (x < current[0] if slot == "_low"
                                                 else x > current[0])
                    if better:
                        j = start + i
                        setattr(self, slot, (x, offset + j, steps[j], values[j], times[j]))
            start = end

    def result(self) -> dict[str, list]:
        """``{"step": [...], "time": [...], "value": [...], "total": n}``, in series order;
        values that are no finite number are None (gaps)."""
        if not self.keep_all:
            self._flush()
        points = self.kept
        if not self.keep_all and self.seen:
            first_index = points[0][0] if points else None
            if first_index != 0 and self._first is not None:
                points = [self._first] + points
            if self._last is not None and (not points or points[-1][0] != self._last[0]):
                points = points + [self._last]
        return {"step": [p[1] for p in points],
                "time": [epoch_seconds(p[3]) for p in points],
                "value": [plain_number(p[2]) for p in points],
                "total": self.seen}

    def feed(self, pages: Iterable[dict[str, list]]) -> Decimator:
        for page in pages:
            steps, values = page["steps"], page["values"]
            if self.seen == 0 and values:
                times = page.get("timestamps")
                self._first = (0, steps[0], values[0], times[0] if times else None)
            self.add(steps, values, page.get("timestamps"))
        return self


def decimate_series(store: Any, run_id: Any, name: str, total: int,
                    points: int = DEFAULT_POINTS) -> dict[str, list]:
    """One metric of a run cut down to about ``points`` points (all of them when it has no
    more), read from the store a page at a time. ``total``: its number of points
    (``Store.metric_counts``)."""
    pages = store.iter_series(run_id, name, PAGE_SIZE)
    return Decimator(total, points).feed(pages).result()


def sampled_series(series: dict[str, list], total: int) -> dict[str, Any]:
    """A series as :meth:`Store.history_sampled` gives it (an even sample), in the form of
    :meth:`Decimator.result`, marked ``"sampled": True``."""
    times = series.get("timestamps") or [None] * len(series["steps"])
    return {"step": list(series["steps"]), "time": [epoch_seconds(t) for t in times],
            "value": [plain_number(v) for v in series["values"]], "total": total,
            "sampled": True}


def csv_rows(pages: Iterable[dict[str, list]]) -> Iterator[str]:
    """Every point of a metric as CSV text (step, value, ISO timestamp), a chunk per page of
    ``Store.iter_series``."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "value", "timestamp"])
    yield buffer.getvalue()
    for page in pages:
        buffer.seek(0)
        buffer.truncate()
        times = page.get("timestamps") or [None] * len(page["steps"])
        writer.writerows((step, value, time.isoformat() if hasattr(time, "isoformat")
                          else ("" if time is None else time))
                         for step, value, time in zip(page["steps"], page["values"], times))
        yield buffer.getvalue()
