"""A binary copy of a run's long metric series, so a sampled read need not parse the JSON.

``DIR/<id>/.labbook-series`` (a dot name: Sacred's tools never look at it) holds one JSON header
line, then per series three fixed-width arrays: steps (int64), values (float64, or int64 when
every value is an int) and timestamps (int64 microseconds since 1970, ``NO_TIME`` for none)::

    {"v": 1, "sig": [[mtime_ns, size] | null, [mtime_ns, size] | null], "all": [names],
     "series": {"loss": {"n": 1000000, "off": 0, "ints": false, "mixed": false}}}\\n<arrays>

``sig`` is the (mtime, size) of ``metrics.jsonl`` and ``metrics.json`` when the copy was made: a
copy whose files have changed since is ignored. A copy is made for a run with a series of at
least ``MIN_POINTS`` points, and then holds every series of the run (the short ones too, so a
whole read of the run needs no JSON) whose steps are ints, values numbers and timestamps naive
ISO times (or missing); the others are read from the JSON as before. The writer makes the copy
when a run with a series of ``WRITER_MIN_POINTS`` ends; a reader makes it (again) on a sampled
read of an ended run (status no longer RUNNING or QUEUED) whose copy is missing or stale, when
it can write there. It is a cache: deleting it loses nothing.
"""
from __future__ import annotations

import array
import datetime as _dt
import json
import mmap
import os
import struct
import sys
from typing import Any

from labbook import clock
from labbook.clock import EPOCH as _EPOCH
from labbook.fileio import atomic_open

__all__ = ["NAME", "VERSION", "MIN_POINTS", "WRITER_MIN_POINTS", "NO_TIME", "source_signature",
           "write", "is_current", "read_sampled", "read_all", "all_micros"]

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


def all_micros(stamps: list) -> list[int]:
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
    mixed = kinds == {int, float}
    try:
        micros = all_micros(stamps)
    except (ValueError, TypeError):
        return None
    try:
        data = (struct.pack(f"<{n}q", *steps)
                + struct.pack(f"<{n}{'q' if ints else 'd'}", *values)
                + struct.pack(f"<{n}q", *micros))
    except struct.error:  # an int beyond 64 bits
        return None
    return data, ints, mixed


def write(directory: str, history: dict[str, dict[str, list]], min_points: int = MIN_POINTS
          ) -> bool:
    """Write the binary copy of ``history``'s series when one of them has at least
    ``min_points`` points; False when there is none to make or it cannot be written (a
    read-only directory)."""
    if not any(len(series["values"]) >= min_points for series in history.values()):
        return False
    parts = []
    for name, series in history.items():
        encoded = _encode(series)
        if encoded is None:
            continue
        data, ints, mixed = encoded
        parts.append((name, len(series["values"]), ints, mixed, lambda data=data: [data]))
    return write_parts(directory, list(history), parts)


def write_parts(directory: str, names: list[str],
                parts: list[tuple[str, int, bool, bool, Any]]) -> bool:
    """Write the binary copy from ``(name, n, ints, mixed, chunks)`` per copied series
    (``mixed``: its values were ints and floats, which the copy holds as floats, so a whole
    read takes them from the JSON), ``chunks()`` giving its steps, values and timestamps
    bytes in order (``names``: every metric of the run, in the order first logged). False
    when there is none or it cannot be written."""
    if not parts:
        return False
    # "all" in the order the metrics were first logged: a whole read from the copy gives
    # them in the order the JSON does
    header: dict[str, Any] = {"v": VERSION, "sig": None, "series": {}, "all": list(names)}
    offset = 0
    for name, n, ints, mixed, _chunks in parts:
        header["series"][name] = {"n": n, "off": offset, "ints": ints, "mixed": mixed}
        offset += 24 * n
    header["sig"] = source_signature(directory)
    try:
        with atomic_open(os.path.join(directory, NAME), "wb") as fh:
            fh.write(json.dumps(header).encode("utf-8") + b"\n")
            for _name, _n, _ints, _mixed, chunks in parts:
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


def _open_copy(directory: str, names: list[str] | None, exact: bool = False
               ) -> tuple[Any, list[tuple[str, int, int, bool]]] | None:
    """``(open file, [(name, n, offset, ints)])`` of a valid copy for each of ``names`` the
    run has (every metric of the run by default), in the order the metrics were first
    logged (what the JSON gives); None when the copy is missing, stale, truncated or lacks
    one of them. ``exact``: also None when one of them mixes int and float values (or the
    copy is of a version that did not say)."""
    try:
        fh = open(os.path.join(directory, NAME), "rb")
    except OSError:
        return None
    try:
        header = json.loads(fh.readline())
        if header.get("v") != VERSION or header.get("sig") != source_signature(directory):
            raise ValueError("stale")
        held = header["series"]
        wanted = None if names is None else set(names)
        names = [name for name in header["all"] if wanted is None or name in wanted]
        if any(name not in held for name in names):
            raise ValueError("a short or odd series: from the JSON")
        if exact and any(held[name].get("mixed") is not False for name in names):
            raise ValueError("ints among floats: from the JSON, which keeps them ints")
        base = fh.tell()
        size = os.fstat(fh.fileno()).st_size
        entries = [(name, held[name]["n"], base + held[name]["off"], held[name]["ints"])
                   for name in names]
        if size == base or any(start + 24 * n > size for _, n, start, _ in entries):
            raise ValueError("empty or truncated: not a copy to trust")
    except (ValueError, OSError, AttributeError, KeyError, TypeError):
        fh.close()
        return None
    return fh, entries


def _column(data: bytes, code: str) -> list:
    column = array.array(code)
    column.frombytes(data)
    if sys.byteorder != "little":
        column.byteswap()
    return column.tolist()


def read_all(directory: str, names: list[str] | None = None
             ) -> dict[str, dict[str, list]] | None:
    """``{name: whole series}`` for ``names`` (every metric of the run by default) from the
    copy, each column in one C call; timestamps as :class:`~labbook.clock.Micros`. None when
    there is no valid copy or it lacks one of them (the caller reads the JSON)."""
    opened = _open_copy(directory, names, exact=True)
    if opened is None:
        return None
    fh, entries = opened
    out = {}
    with fh:
        for name, n, start, ints in entries:
            fh.seek(start)
            data = fh.read(24 * n)
            if len(data) != 24 * n:
                return None
            micros = _column(data[16 * n:], "q")
            if NO_TIME in micros:
                micros = [None if us == NO_TIME else us for us in micros]
            out[name] = {"steps": _column(data[:8 * n], "q"),
                         "values": _column(data[8 * n:16 * n], "q" if ints else "d"),
                         "timestamps": clock.Micros(micros)}
    return out


def read_sampled(directory: str, names: list[str] | None, positions: Any
                 ) -> dict[str, dict[str, list]] | None:
    """``{name: sampled series}`` for ``names`` (every metric of the run by default), picked
    at ``positions(n)``; None when there is no valid copy or it lacks one of them."""
    opened = _open_copy(directory, names)
    if opened is None:
        return None
    fh, entries = opened
    with fh:
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):
            return None
        with mapped:
            out = {}
            for name, n, start, ints in entries:
                picks = positions(n)
                steps = [struct.unpack_from("<q", mapped, start + 8 * i)[0] for i in picks]
                vfmt = "<q" if ints else "<d"
                values = [struct.unpack_from(vfmt, mapped, start + 8 * (n + i))[0]
                          for i in picks]
                stamps = []
                for i in picks:
                    micros = struct.unpack_from("<q", mapped, start + 8 * (2 * n + i))[0]
                    stamps.append(None if micros == NO_TIME
                                  else _EPOCH + _dt.timedelta(microseconds=micros))
                out[name] = {"steps": steps, "values": values, "timestamps": stamps}
            return out
