"""The pieces of a run's ``metrics.json`` and binary series copy, kept as the points arrive.

The file store appends each beat's points to ``metrics.jsonl``; when the run ends it writes
Sacred's ``metrics.json`` (every series whole, indented) and, for long series, the binary copy
of :mod:`labbook.stores.file_series`. Reading ``metrics.jsonl`` back for that held the whole
history in memory (3 GB for 10^7 points) and parsed every timestamp twice.

Instead, the writer encodes each beat's series once more as it appends them: the JSON text of
its steps, timestamps and values (the items as ``metrics.json`` lays them out) and their
int64/float64 bytes, appended to one scratch file ``.labbook-metrics-*`` in the run's
directory, with the offsets kept in memory. At the end ``metrics.json`` and the copy are
concatenated from those pieces, a beat's worth at a time: memory stays bounded and the output
is byte for byte what the former way wrote.

The pieces are used only when they account for all of ``metrics.jsonl``: this writer created
it, appended every line, and its size is the one after the last of them (another process
appending, or a line that failed, sends the store back to reading ``metrics.jsonl``). A
series with values that are no plain JSON scalars does the same. The scratch file is removed
when the run ends; one left by a crashed process is ignored.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import operator
import os
import struct
import tempfile
from typing import Any, BinaryIO

from labbook.clock import EPOCH, MICROSECOND, Micros
from labbook.stores import file_series

__all__ = ["PREFIX", "Pieces"]

PREFIX = ".labbook-metrics-"
#: the item separator of a list in metrics.json (a series' lists are at depth 2)
_SEP = ",\n      "
_SEP_BYTES = _SEP.encode()
_SCALARS = frozenset({int, float, str, bool, type(None)})
_NUMBERS = frozenset({int, float})
_KEYS = ("steps", "timestamps", "values")
_NO_TIME = file_series.NO_TIME


class _Series:
    __slots__ = ("text", "binary", "n", "ints", "has_int", "last")

    def __init__(self) -> None:
        self.text: dict[str, list[tuple[int, int]]] = {key: [] for key in _KEYS}
        #: per beat (offset, n, values as int64); None once a beat cannot be copied
        self.binary: list[tuple[int, int, bool]] | None = []
        self.n = 0
        self.ints = True  # every value an int so far
        self.has_int = False  # an int value among them
        self.last: Any = None


class Pieces:
    """What one run's writer has appended so far (see the module's docstring)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.jsonl = os.path.join(directory, "metrics.jsonl")
        fd, self.path = tempfile.mkstemp(prefix=PREFIX, dir=directory)
        self.fh: BinaryIO = os.fdopen(fd, "w+b")
        self.series: dict[str, _Series] = {}
        self.size = 0  # of metrics.jsonl after our last line
        self.valid = True

    def matches(self) -> bool:
        """Whether metrics.jsonl is exactly what this writer appended."""
        try:
            return self.valid and os.stat(self.jsonl).st_size == self.size
        except OSError:
            return False

    def add(self, metrics_by_name: dict, iso: dict[str, list],
            texts: dict[str, tuple[str, str, str]], size: int) -> None:
        """Keep the pieces of one line of metrics.jsonl (``iso``: each series' timestamps as
        written; ``texts``: the JSON of its steps, values and timestamps in the line;
        ``size``: the file's size after the line)."""
        if not self.valid:
            return
        fh = self.fh
        for name, series in metrics_by_name.items():
            steps, values, stamps = series["steps"], series["values"], series["timestamps"]
            n = len(values)
            numbers = set(map(type, steps)) | set(map(type, values))
            if len(steps) != n or len(stamps) != n or not (
                    numbers | set(map(type, iso[name]))) <= _SCALARS:
                self.valid = False  # metrics.json is then written from metrics.jsonl
                return
            kept = self.series.get(name)
            if kept is None:
                kept = self.series[name] = _Series()
            if not n:
                continue
            steps_text, values_text, stamps_text = texts[name]
            # numbers and ISO times hold no ", ": the line's item separator becomes the
            # indented one of metrics.json by a replace (other text is encoded again)
            plain = not numbers & {str}
            times = None not in stamps if stamps.__class__ is Micros \
                else set(map(type, stamps)) <= {_dt.datetime}
            for key, items, text in (("steps", steps, steps_text if plain else None),
                                     ("timestamps", iso[name], stamps_text if times else None),
                                     ("values", values, values_text if plain else None)):
                if text is None:
                    text = json.dumps(items, allow_nan=True, separators=(_SEP, ": "))
                else:
                    text = text.replace(", ", _SEP)
                data = text[1:-1].encode("ascii")
                kept.text[key].append((fh.tell(), len(data)))
                fh.write(data)
            kept.n += n
            kept.last = values[-1]
            if kept.binary is not None:
                kept.binary = self._add_binary(kept, steps, values, stamps)
        self.size = size

    def _add_binary(self, kept: _Series, steps: list, values: list, stamps: list
                    ) -> list | None:
        """The int64/float64 bytes of a beat, as file_series copies a series (None: this
        series is not copied); ``stamps`` datetimes, or microseconds (:class:`Micros`)."""
        n = len(values)
        kinds = set(map(type, values))
        if set(map(type, steps)) - {int} or kinds - _NUMBERS:
            return None
        ints = kinds <= {int}
        micros = stamps if stamps.__class__ is Micros else None
        if micros is None:
            try:
                micros = list(map(operator.floordiv,
                                  map(operator.sub, stamps, itertools.repeat(EPOCH)),
                                  itertools.repeat(MICROSECOND)))
            except TypeError:  # None among them (aware times are not copied)
                try:
                    micros = file_series.all_micros(stamps)
                except (ValueError, TypeError):
                    return None
        if None in micros:
            micros = [_NO_TIME if us is None else us for us in micros]
        try:
            data = (struct.pack(f"<{n}q", *steps)
                    + struct.pack(f"<{n}{'q' if ints else 'd'}", *values)
                    + struct.pack(f"<{n}q", *micros))
        except (struct.error, OverflowError):
            return None
        assert kept.binary is not None
        kept.binary.append((self.fh.tell(), n, ints))
        kept.ints = kept.ints and ints
        kept.has_int = kept.has_int or int in kinds
        self.fh.write(data)
        return kept.binary

    def tails(self) -> tuple[dict, dict]:
        """``({name: last value}, {name: number of points})``, as metric_tails gives."""
        return ({name: s.last for name, s in self.series.items() if s.n},
                {name: s.n for name, s in self.series.items()})

    def _read(self, offset: int, size: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(size)

    def write_json(self, out: Any) -> None:
        """Write metrics.json to the binary file ``out``, as serialize.iter_pretty lays it
        out (the pieces are ASCII: json.dumps escapes the rest)."""
        self.fh.flush()
        if not self.series:
            out.write(b"{}")
            return
        for i, name in enumerate(sorted(self.series)):
            kept = self.series[name]
            out.write((("{" if i == 0 else ",") + "\n  " + json.dumps(name) + ": ").encode())
            for j, key in enumerate(_KEYS):
                out.write((("{" if j == 0 else ",") + "\n    " + json.dumps(key) + ": ")
                          .encode())
                chunks = kept.text[key]
                if not chunks:
                    out.write(b"[]")
                    continue
                out.write(b"[\n      ")
                for k, (offset, size) in enumerate(chunks):
                    if k:
                        out.write(_SEP_BYTES)
                    out.write(self._read(offset, size))
                out.write(b"\n    ]")
            out.write(b"\n  }")
        out.write(b"\n}")

    def binary_series(self, min_points: int) -> list[tuple[str, int, bool, bool, Any]]:
        """``(name, n, ints, mixed, chunks)`` of each series file_series copies, when one of them
        has at least ``min_points`` points (then the short ones too): ``chunks()`` yields its
        steps, values and timestamps bytes, a beat at a time."""
        out = []
        if not any(kept.binary is not None and kept.n >= min_points
                   for kept in self.series.values()):
            return out
        for name, kept in self.series.items():
            if kept.binary is None:
                continue
            out.append((name, kept.n, kept.ints, kept.has_int and not kept.ints,
                        self._chunks(kept)))
        return out

    def _chunks(self, kept: _Series) -> Any:
        def chunks():
            self.fh.flush()
            for part in range(3):
                for offset, n, ints in kept.binary:
                    start = offset + 8 * n * part
                    data = self._read(start, 8 * n)
                    if part == 1 and ints and not kept.ints:  # an int beat of a float series
                        data = struct.pack(f"<{n}d", *struct.unpack(f"<{n}q", data))
                    yield data
        return chunks

    def close(self) -> None:
        try:
            self.fh.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass
