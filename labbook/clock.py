"""Time in labbook: naive UTC datetimes, and their conversions.

Every stored time is a naive ``datetime`` in UTC, the convention of Sacred's stores. A metric
point's time travels: ``time.time()`` when it is logged (a float: the cheapest thing to take on
the logging path) -> a datetime when the heartbeat hands the points to the observers (Sacred's
observer interface gives ``log_metrics`` datetimes) -> what each store keeps: ISO text (file),
integer microseconds since 1970 (SQL), a BSON date (Mongo) -> a datetime again when read back.
Each step has one function here.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import operator
import warnings
from typing import Any, Iterable
from labbook.errors import ArgumentTypeError

__all__ = ["EPOCH", "MICROSECOND", "utcnow", "from_timestamp", "from_timestamps", "to_utc",
           "to_iso", "from_iso", "to_microseconds", "from_microseconds", "Micros"]

EPOCH = _dt.datetime(1970, 1, 1)
MICROSECOND = _dt.timedelta(microseconds=1)
_UTC = _dt.timezone.utc


class Micros(list):
    """Times already as integer microseconds since 1970 (None: no time): what a store that
    keeps them so (the binary series copy, SQL) hands to :meth:`Store.history_for_copy
    <labbook.stores.base.Store.history_for_copy>`, and a store that keeps them so takes
    without converting them to datetimes and back (``Store.takes_micros``)."""

    __slots__ = ()


def utcnow() -> _dt.datetime:
    """The current time as a naive UTC datetime."""
    return _dt.datetime.now(_UTC).replace(tzinfo=None)


def from_timestamp(timestamp: float) -> _dt.datetime:
    """The naive UTC datetime of a POSIX timestamp."""
    return _dt.datetime.fromtimestamp(timestamp, _UTC).replace(tzinfo=None)


def from_timestamps(timestamps: list[float]) -> list[_dt.datetime]:
    """:func:`from_timestamp` of many timestamps, fast (a million per heartbeat happens)."""
    # datetime.utcfromtimestamp is deprecated since 3.12 but ~8x faster than the aware round
    # trip; the fallback keeps working once it is removed.
    fast = getattr(_dt.datetime, "utcfromtimestamp", None)
    if fast is None:
        return [from_timestamp(t) for t in timestamps]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(map(fast, timestamps))


def to_utc(value: Any) -> _dt.datetime | None:
    """A naive UTC datetime from a datetime (aware ones converted), ISO text (``Z`` allowed)
    or a POSIX timestamp; None stays None. Anything else raises ValueError or TypeError."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return from_timestamp(value)
    if not isinstance(value, _dt.datetime):
        raise ArgumentTypeError(f"Expected a time, got {type(value).__name__}: {value!r:.80}.")
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value


def to_iso(stamps: Iterable[Any]) -> list:
    """ISO texts of datetimes (other values, such as None or text, pass through)."""
    if isinstance(stamps, Micros):
        return _iso_of_micros(stamps)
    stamps = list(stamps)
    try:
        return list(map(_dt.datetime.isoformat, stamps))  # one C loop for the usual case
    except TypeError:
        return [t.isoformat() if isinstance(t, _dt.datetime) else t for t in stamps]


def _iso_of_micros(micros: list) -> list:
    """``datetime.isoformat`` of microseconds since 1970 (None stays None) without making a
    datetime per point: a run's points share few seconds, so each second's text is made once
    and the fraction appended (isoformat leaves a zero fraction out, and so does this)."""
    if None in micros:
        return [None if us is None else (EPOCH + _dt.timedelta(microseconds=us)).isoformat()
                for us in micros]
    million = 1_000_000
    seconds = list(map(million.__rfloordiv__, micros))
    fractions = list(map(million.__rmod__, micros))
    texts = {second: (EPOCH + _dt.timedelta(seconds=second)).isoformat()
             for second in set(seconds)}
    heads = list(map(texts.__getitem__, seconds))
    if 0 in fractions:
        return [f"{head}.{fraction:06d}" if fraction else head
                for head, fraction in zip(heads, fractions)]
    return list(map("{}.{:06d}".format, heads, fractions))


def from_iso(texts: Iterable[Any]) -> list:
    """Datetimes of ISO texts as stored (None and datetimes pass through)."""
    texts = list(texts)
    try:
        return list(map(_dt.datetime.fromisoformat, texts))
    except TypeError:
        return [to_utc(t) if isinstance(t, str) else t for t in texts]


def to_microseconds(stamps: Iterable[Any]) -> list[int | None]:
    """Integer microseconds since 1970 of times (None where there is no time)."""
    if isinstance(stamps, Micros):
        return stamps
    stamps = list(stamps)
    try:
        # naive UTC datetimes, what the heartbeat hands over: C loops (operator functions, not
        # dunder methods, so that None raises TypeError instead of giving NotImplemented)
        return list(map(operator.floordiv, map(operator.sub, stamps, itertools.repeat(EPOCH)),
                        itertools.repeat(MICROSECOND)))
    except TypeError:  # None, aware datetimes, floats, text: one at a time
        pass
    out: list[int | None] = []
    for stamp in stamps:
        when = to_utc(stamp)
        out.append(None if when is None else (when - EPOCH) // MICROSECOND)
    return out


def from_microseconds(micros: Iterable[int | None]) -> list[_dt.datetime | None]:
    """Naive UTC datetimes of microseconds since 1970 (None stays None)."""
    micros = list(micros)
    try:
        zeros = itertools.repeat(0)
        return list(map(EPOCH.__add__, map(_dt.timedelta, zeros, zeros, micros)))
    except TypeError:
        return [None if us is None else EPOCH + _dt.timedelta(microseconds=us) for us in micros]
