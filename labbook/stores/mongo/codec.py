"""Values to and from BSON: escaped keys, what BSON cannot hold turned into plain data by
:mod:`labbook.serialize`, BSON size estimates, the stand-ins of spilled fields and the tokens
that make an append of metric points idempotent."""
from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

import bson
import bson.int64
from bson import ObjectId

from labbook import serialize

__all__ = []

#: characters of output kept in the run document when the output is spilled
_SPILL_TAIL = 10_000
#: room kept for the ``labbook_spill`` sub-document
_SPILL_OVERHEAD = 200

_NATIVE = (str, bool, float, type(None), _dt.datetime, ObjectId, bytes)

#: BSON's integers are 64-bit; a bigger one is kept as ``{"\\int": "<decimal digits>"}``.
#: escape_key doubles every backslash of a user's key, so no stored key is one backslash and
#: ``int``: the tag cannot be confused with data.
BIG_INT_TAG = "\\int"
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 63 - 1


def _to_bson(value: Any) -> Any:
    """Escape keys for MongoDB and coerce what BSON cannot hold (numpy scalars, tuples,
    integers beyond 64 bits...)."""
    if type(value) is int:
        return value if _INT_MIN <= value <= _INT_MAX else {BIG_INT_TAG: str(value)}
    if type(value) is str:
        return serialize.utf8_safe(value)  # lone surrogates as escapes: BSON is UTF-8
    if isinstance(value, _NATIVE):
        return value
    if isinstance(value, dict):
        return {serialize.escape_key(serialize.utf8_safe(k if isinstance(k, str) else str(k))):
                _to_bson(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_bson(v) for v in value]
    if isinstance(value, int):  # int subclasses (IntEnum, numpy via flatten below)
        return _to_bson(int(value))
    return _to_bson(serialize.flatten(value))


def _from_bson(value: Any) -> Any:
    """Unescape keys; file ids become strings so documents stay JSON-friendly."""
    if isinstance(value, dict):
        if len(value) == 1 and BIG_INT_TAG in value:
            return int(value[BIG_INT_TAG])
        return {serialize.unescape_key(k): _from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_bson(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, bson.int64.Int64):  # a plain int, as every other store gives it
        return int(value)
    return value


def _elem_size(key: str, value: Any) -> int:
    """Bytes the field takes in a BSON document."""
    if isinstance(value, str):
        # type byte, key, NUL, int32 length, UTF-8 bytes, NUL
        return len(key.encode("utf-8")) + 7 + len(value.encode("utf-8"))
    return len(bson.encode({key: value})) - 5


def _doc_size(sizes: dict[str, int]) -> int:
    return 5 + sum(sizes.values())


def _batch_token(name: str, steps: list, values: list, stamps: list) -> str:
    """Identifies a slice of a series (its ends and length are enough: steps only grow)."""
    key = repr((name, len(steps), steps[:2], steps[-2:], values[:2], values[-2:],
                stamps[:1], stamps[-1:]))
    return hashlib.md5(key.encode("utf-8")).hexdigest()


def _spill_stub(name: str, value: Any, file_id: Any) -> Any:
    """What stays in the run document when ``name`` moved to GridFS."""
    if name == "captured_out":
        text = value or ""
        return (f"[labbook: the captured output ({len(text.encode('utf-8'))} bytes) is too "
                f"large for the run document and is stored in GridFS file {file_id}; its end "
                f"follows]\n" + text[-_SPILL_TAIL:])
    return {}


def _is_metric_refs(value: Any) -> bool:
    """Whether ``value`` is Sacred's ``info.metrics``: ``[{"name": ..., "id": "<ObjectId>"}]``."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(r, dict) and set(r) == {"name", "id"} and isinstance(r["id"], str)
        for r in value)
