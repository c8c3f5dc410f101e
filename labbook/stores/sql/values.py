"""Values as the SQL columns hold them: run ids (integers), times (naive UTC), short names;
and lists of ids cut into pieces for ``IN (...)``."""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Iterator

from labbook import clock, serialize
from labbook.errors import SqlStoreError
from labbook.stores.sql.types import SHORT

__all__ = ["as_run_id", "in_chunks", "to_time", "short_name", "dumps_sqlite_json",
           "loads_sqlite_json"]

_IN_CHUNK = 500  # ids per IN (...) list


def as_run_id(run_id: Any) -> int | None:
    """The integer id of a run, or None when ``run_id`` cannot be one."""
    if isinstance(run_id, bool):
        return None
    if isinstance(run_id, int):
        return run_id
    if isinstance(run_id, str) and run_id.strip().isdigit():
        return int(run_id)
    return None


def in_chunks(ids: list) -> Iterator[list]:
    """``ids`` in consecutive pieces short enough for one ``IN (...)`` list each."""
    size = _IN_CHUNK
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def to_time(value: Any) -> _dt.datetime | None:
    """A naive UTC datetime from a datetime, an ISO string or a POSIX timestamp."""
    try:
        return clock.to_utc(value)
    except TypeError:
        raise SqlStoreError(f"Expected a datetime, got {type(value).__name__}: "
                            f"{value!r:.80}.") from None


def short_name(field: str, value: Any) -> str | None:
    """``value`` of a name column (status, command, metric name), checked: a string of at
    most :data:`~labbook.stores.sql.types.SHORT` characters, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SqlStoreError(f"The run field '{field}' must be a string, got "
                            f"{type(value).__name__}: {value!r:.80}.")
    if len(value) > SHORT:
        raise SqlStoreError(f"The run field '{field}' is {len(value)} characters long; the SQL "
                            f"store keeps at most {SHORT}.")
    return value


def dumps_sqlite_json(value: Any) -> str:
    """JSON text for a SQLite JSON column. SQLite gives such columns NUMERIC affinity: a text
    that reads as a number is stored as that number, so a top-level ``1.0`` would come back as
    the integer 1 and an integer beyond 64 bits as a float. Those two are written tagged,
    ``{"$float": "1.0"}`` / ``{"$int": "..."}``, which :func:`loads_sqlite_json` reads back;
    everything else as :func:`labbook.serialize.dumps_strict` writes it (which escapes a
    user's dict shaped like a tag, ``{"$esc": [...]}``; a ``{"$int": ...}`` is escaped here)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return '{"$float": "%r"}' % float(value)  # a numpy float's repr names its type
    if type(value) is int and not -2 ** 63 <= value < 2 ** 63:
        return '{"$int": "%d"}' % value
    if isinstance(value, dict) and list(value) == ["$int"]:
        return '{"$esc": %s}' % serialize.dumps_strict(["$int", value["$int"]])
    return serialize.dumps_strict(value)


#: the texts of the tags dumps_sqlite_json writes (a user's dict of that shape is escaped)
_SQLITE_TAGS = ('{"$float": "', '{"$int": "')


def loads_sqlite_json(text: Any) -> Any:
    """Inverse of :func:`dumps_sqlite_json` (a number SQLite already converted is kept)."""
    if isinstance(text, int | float):  # written before the tags: as SQLite converted it
        return text
    if isinstance(text, str) and text.startswith(_SQLITE_TAGS) and text.endswith('"}'):
        tag, _, number = text[2:-2].partition('": "')
        try:
            return float(number) if tag == "$float" else int(number)
        except ValueError:
            pass
    return serialize.loads_strict(text)
