"""A binary copy of a run's long metric series, so a sampled read need not parse the JSON.

``DIR/<id>/.labbook-series`` (a dot name: Sacred's tools never look at it) holds one JSON header
line, then per series three fixed-width arrays: steps (int64), values (float64, or int64 when
every value is an int) and timestamps (int64 microseconds since 1970, ``NO_TIME`` for none)::

    {"v": 1, "sig": [[mtime_ns, size] | null, [mtime_ns, size] | null], "all": [names],
     "series": {"loss": {"n": 1000000, "off": 0, "ints": false}}}\\n<arrays>

``sig`` is the (mtime, size) of ``metrics.jsonl`` and ``metrics.json`` when the copy was made: a
copy whose files have changed since is ignored. Only series of at least ``MIN_POINTS`` points
whose steps are ints, values numbers and timestamps naive ISO times (or missing) are copied;
the others are read from the JSON as before. The writer makes the copy when a run with a series
of ``WRITER_MIN_POINTS`` ends; a reader makes it (again) on a sampled read of an ended run
(status no longer RUNNING or QUEUED) whose copy is missing or stale, when it can write there.
It is a cache: deleting it loses nothing.
"""
from __future__ import annotations

import datetime as _dt
import json
import mmap
import os
import struct
from typing import Any

from labbook import clock
from labbook.clock import EPOCH as _EPOCH
from labbook.fileio import atomic_open

__all__ = ["NAME", "VERSION", "MIN_POINTS", "WRITER_MIN_POINTS", "NO_TIME", "source_signature",
           "write", "is_current", "read_sampled"]

NAME = ".labbook-series"
VERSION = 1
#: shortest series copied by a reader (on its first sampled read of an ended run)
MIN_POINTS = 10_000
#: shortest series copied by the writer when the run ends (longer: the write path stays cheap)
WRITER_MIN_POINTS = 200_000
NO_TIME = -(2 ** 63)
_SOURCES = ("metrics.jsonl", "metrics.json")


def source_signature(directory: str) -> list:
    out = []
    for name in _SOURCES:
        try:
            st = os.stat(os.path.join(directory, name))
            out.append([st.st_mtime_ns, st.st_size])
        except OSError:
            out.append(None)
    return out


def _micros(stamp: Any) -> int | None:
    """Microseconds since 1970 of a naive ISO time (None: no time); raises ValueError else."""
    if stamp is None:
        return NO_TIME
    value = stamp if isinstance(stamp, _dt.datetime) else _dt.datetime.fromisoformat(stamp)
    if value.tzinfo is not None:
        raise ValueError("aware time")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _all_micros(stamps: list) -> list[int]:
    """:func:`_micros` of every stamp; naive ISO texts (what the file store writes) in C
    loops, anything else one at a time."""
    try:
        times = list(map(_dt.datetime.fromisoformat, stamps))
        if any(t.tzinfo is not None for t in times):
            raise ValueError("aware time")
        return clock.to_microseconds(times)
    except TypeError:  # None or datetimes among them
        return [_micros(t) for t in stamps]


def _encode(series: dict) -> tuple[bytes, bool] | None:
    steps, values, stamps = series["steps"], series["values"], series["timestamps"]
    n = len(values)
    if len(steps) != n or len(stamps) != n:
        return None
    if set(map(type, steps)) - {int}:
        return None
    kinds = set(map(type, values))
    ints = kinds <= {int}
    if kinds - {int, float}:
        return None
    try:
        micros = _all_micros(stamps)
    except (ValueError, TypeError):
        return None
    try:
        data = (struct.pack(f"<{n}q", *steps)
                + struct.pack(f"<{n}{'q' if ints else 'd'}", *values)
                + struct.pack(f"<{n}q", *micros))
    except struct.error:  # an int beyond 64 bits
        return None
    return data, ints


def write(directory: str, history: dict[str, dict[str, list]], min_points: int = MIN_POINTS
          ) -> bool:
    """Write the binary copy of ``history``'s series of at least ``min_points`` points; False
    when there is none to make or it cannot be written (a read-only directory)."""
    parts = []
    for name, series in history.items():
        if len(series["values"]) < min_points:
            continue
        encoded = _encode(series)
        if encoded is None:
            continue
        data, ints = encoded
        parts.append((name, len(series["values"]), ints, lambda data=data: [data]))
    return write_parts(directory, list(history), parts)


def write_parts(directory: str, names: list[str], parts: list[tuple[str, int, bool, Any]]
                ) -> bool:
    """Write the binary copy from ``(name, n, ints, chunks)`` per copied series, ``chunks()``
    giving its steps, values and timestamps bytes in order (``names``: every metric of the
    run). False when there is none or it cannot be written."""
    if not parts:
        return False
    header: dict[str, Any] = {"v": VERSION, "sig": None, "series": {}, "all": sorted(names)}
    offset = 0
    for name, n, ints, _chunks in parts:
        header["series"][name] = {"n": n, "off": offset, "ints": ints}
        offset += 24 * n
    header["sig"] = source_signature(directory)
    try:
        with atomic_open(os.path.join(directory, NAME), "wb") as fh:
            fh.write(json.dumps(header).encode("utf-8") + b"\n")
            for _name, _n, _ints, chunks in parts:
                for chunk in chunks():
                    fh.write(chunk)
    except OSError:
        return False
    return True


def is_current(directory: str) -> bool:
    """Whether the run has a copy made from its metric files as they are now."""
    try:
        with open(os.path.join(directory, NAME), "rb") as fh:
            header = json.loads(fh.readline())
        return header.get("v") == VERSION and header.get("sig") == source_signature(directory)
    except (OSError, ValueError, AttributeError):
        return False


def read_sampled(directory: str, names: list[str] | None, positions: Any
                 ) -> dict[str, dict[str, list]] | None:
    """``{name: sampled series}`` for ``names`` (every metric of the run by default), picked
    at ``positions(n)``; None when there is no valid copy or it lacks one of them."""
    path = os.path.join(directory, NAME)
    try:
        fh = open(path, "rb")
    except OSError:
        return None
    with fh:
        try:
            header = json.loads(fh.readline())
            if header.get("v") != VERSION or header.get("sig") != source_signature(directory):
                return None
            held = header["series"]
            if names is None:
                names = list(header["all"])
            if any(name not in held for name in names if name in header["all"]):
                return None  # a short or odd series: from the JSON
            base = fh.tell()
            size = os.fstat(fh.fileno()).st_size
            if size == base:
                return None
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError, AttributeError, KeyError, TypeError):
            return None
        with mapped:
            out = {}
            for name in names:
                where = held.get(name)
                if where is None:
                    continue  # the run has no such metric
                n, start = where["n"], base + where["off"]
                if start + 24 * n > size:
                    return None  # truncated: not a copy to trust
                picks = positions(n)
                steps = [struct.unpack_from("<q", mapped, start + 8 * i)[0] for i in picks]
                vfmt = "<q" if where["ints"] else "<d"
                values = [struct.unpack_from(vfmt, mapped, start + 8 * (n + i))[0]
                          for i in picks]
                stamps = []
                for i in picks:
                    micros = struct.unpack_from("<q", mapped, start + 8 * (2 * n + i))[0]
                    stamps.append(None if micros == NO_TIME
                                  else _EPOCH + _dt.timedelta(microseconds=micros))
                out[name] = {"steps": steps, "values": values, "timestamps": stamps}
            return out
