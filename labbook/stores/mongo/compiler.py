"""The query model (:mod:`labbook.stores.query`) translated into MongoDB filters and
projections."""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Callable

from labbook import serialize
from labbook.stores import query as _query
from labbook.stores.mongo.codec import BIG_INT_TAG
from labbook.stores.mongo.schema import LAST_FIELD, SPILLABLE
from labbook.stores.query import Cond, Not

__all__ = ["native_filter"]

# A filter is parsed once (labbook.stores.query) and translated into two native filters: one
# matching at least the runs the Python evaluator accepts (pushed to the server) and one
# matching at most those runs (needed under negation). Every run the server returns is checked
# again with the Python evaluator, so the answer is exactly the file store's. Where MongoDB's
# rules differ (implicit traversal of arrays inside a path, bool == 1 in Python, NaN, regex
# dialects, field order in sub-documents) a condition is widened or narrowed, never guessed.

_ALL: dict = {}
_NONE: dict = {"_id": {"$in": []}}
_DICT_FIELDS = ("config", "info", "meta", "host", "experiment")
#: orders the server sorts as sort_runs does (one BSON type each: ints, dates)
_NATIVE_ORDERS = ("_id", "start_time", "stop_time", "heartbeat", "queue_time")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
}
_SAFE_REGEX = re.compile(r"^(?:[^\\]|\\[^A-Za-z0-9])*$")


def _is_all(f: dict) -> bool:
    return not f


def _is_none(f: dict) -> bool:
    return f == _NONE


def _and(filters: list[dict]) -> dict:
    if any(_is_none(f) for f in filters):
        return _NONE
    kept = [f for f in filters if not _is_all(f)]
    if not kept:
        return _ALL
    return kept[0] if len(kept) == 1 else {"$and": kept}


def _or(filters: list[dict]) -> dict:
    if any(_is_all(f) for f in filters):
        return _ALL
    kept = [f for f in filters if not _is_none(f)]
    if not kept:
        return _NONE
    return kept[0] if len(kept) == 1 else {"$or": kept}


def _negate(f: dict) -> dict:
    if _is_all(f):
        return _NONE
    if _is_none(f):
        return _ALL
    return {"$nor": [f]}


def _eq_alternatives(value: Any) -> list | None:
    """Values MongoDB must match so that Python's ``==`` is reproduced; None: cannot say."""
    if isinstance(value, bool):
        return [value, int(value)]
    if isinstance(value, int | float):
        if value != value:  # NaN equals nothing in Python, itself in MongoDB
            return []
        if value in (0, 1):
            return [value, bool(value)]
        if isinstance(value, int) and not -2 ** 63 <= value < 2 ** 63:
            return None
        return [value]
    if isinstance(value, str):
        return [value]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            return []  # naive stored times never equal an aware one in Python
        # stored times have millisecond precision; a finer operand equals none of them
        return [value] if value.microsecond % 1000 == 0 else []
    return None


_NEGATIVE = {"$ne": "$eq", "$nin": "$in"}


def _native_derived(cond: Cond) -> tuple[dict, dict] | None:
    """(superset, subset) of a condition on a derived field (see labbook.stores.query), or
    None when the field is a document field. Only supersets: the Python check decides."""
    path, op, value = cond.path, cond.op, cond.value
    head, _, rest = path.partition(".")
    if path == "status" and _query.DIED_SENSITIVE & set(
            v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
        # a stored RUNNING run is reported as RUNNING or DIED
        if op not in ("$eq", "$in"):
            return _ALL, _NONE
        stored = sorted({"RUNNING" if v == "DIED" else v
                         for v in (value if op == "$in" else [value]) if isinstance(v, str)})
        return {"status": {"$in": stored}}, _NONE
    if path == "status" and op in ("$regex", "$gt", "$gte", "$lt", "$lte"):
        return _ALL, _NONE  # DIED may match where the stored RUNNING does not
    positive = op in ("$eq", "$in") and all(
        isinstance(v, str) for v in (value if op == "$in" else [value]))
    if path == "tags":
        if not positive:
            return _ALL, _NONE
        tags = value if op == "$in" else [value]
        # tags are compared as text: a number in meta.tags is the tag of its digits
        listed = tags + [int(t) for t in tags if t.isascii() and t.lstrip("-").isdigit()]
        return _or([{"meta.tags": {"$in": listed}}, {"omniboard.tags": {"$in": listed}}]
                   + [{f"info.tags.{serialize.escape_key(t)}": {"$exists": True}}
                      for t in tags]), _NONE
    if path in ("name", "notes"):
        if not positive:
            return _ALL, _NONE
        fields = ("meta.name", "experiment.name") if path == "name" else \
            ("omniboard.notes", "meta.notes", "meta.comment")
        spec = value if op == "$eq" else {"$in": value}
        return _or([{f: spec} for f in fields]), _NONE
    if head == "summary":
        if not rest or op in _NEGATIVE or (op == "$exists" and not value):
            return _ALL, _NONE
        key = serialize.escape_key(rest)
        logged, _ = _native_op(op, f"{LAST_FIELD}.{key}", True if op == "$exists" else value)
        # runs without LAST_FIELD (Sacred's) and overridden summaries: the Python check
        return _or([{LAST_FIELD: {"$exists": False}},
                    {f"info.summary.{key}": {"$exists": True}}, logged]), _NONE
    if head in _query.DERIVED_FIELDS:
        return _ALL, _NONE
    return None


def _native_cond(cond: Cond) -> tuple[dict, dict]:
    """(superset, subset) native filters of one condition."""
    derived = _native_derived(cond)
    if derived is not None:
        return derived
    segments = cond.path.split(".")
    head = segments[0]
    if head in ("artifacts", "labbook_spill") or cond.path.startswith("experiment.sources"):
        return _ALL, _NONE  # file ids are strings when read back, ObjectIds on the server
    path = ".".join(serialize.escape_key(s) for s in segments)
    # $ne, $nin and $exists: false are translated as the negation of their positive form
    negative = cond.op in _NEGATIVE or (cond.op == "$exists" and not cond.value)
    op = _NEGATIVE.get(cond.op, cond.op)
    value = True if cond.op == "$exists" else cond.value
    sup, sub = _native_op(op, path, value)
    # A path is "shallow" when no array can sit between its parts: only then do MongoDB's
    # implicit array traversal and Python's lookup agree on which value is looked at.
    shallow = len(segments) == 1 or (len(segments) == 2 and head in _DICT_FIELDS)
    if not shallow:
        # traversal only adds matches to a positive condition, except for null, which it
        # can also take away
        sub = _NONE
        if op in ("$eq", "$in") and _mentions_none(value):
            sup = _ALL
    if negative:
        sup, sub = _negate(sub), _negate(sup)
    if head in SPILLABLE:
        # a spilled field holds a stand-in on the server; Python looks at the real value
        sup = _or([sup, {f"labbook_spill.{head}": {"$exists": True}}])
        sub = _and([sub, {f"labbook_spill.{head}": {"$exists": False}}])
    return sup, sub


def _mentions_none(value: Any) -> bool:
    return value is None or (isinstance(value, list) and any(v is None for v in value))


def _native_op(op: str, path: str, value: Any) -> tuple[dict, dict]:
    """(superset, subset) of a positive condition on a shallow path."""
    if op == "$exists":
        exact = {path: {"$exists": True}}
        return exact, exact
    if op == "$eq":
        return _native_eq(path, value)
    if op == "$in":
        return _native_in(path, value)
    if op in _COMPARE:
        return _native_compare(path, op, value)
    if op == "$regex":
        if value.flags & ~(re.IGNORECASE | re.UNICODE) or not _SAFE_REGEX.match(value.pattern) \
                or (value.flags & re.IGNORECASE and not value.pattern.isascii()):
            return _ALL, _NONE  # Python's and PCRE's dialects may disagree on this pattern
        spec: dict = {"$regex": value.pattern}
        if value.flags & re.IGNORECASE:
            spec["$options"] = "i"
        exact = {path: spec}
        return exact, exact
    if op == "$size":
        exact = {path: {"$size": value}}
        return exact, exact
    if op == "$all":
        parts = []
        for item in value:
            alternatives = _eq_alternatives(item)
            if alternatives is None:
                return _ALL, _NONE
            parts.append({path: {"$in": alternatives}} if alternatives else _NONE)
        # MongoDB's $all also matches a scalar equal to a single operand: a superset only
        return (_and(parts) if parts else _ALL), _NONE
    return _ALL, _NONE


def _native_eq(path: str, value: Any) -> tuple[dict, dict]:
    if value is None:
        exact = {path: None}
        return exact, exact
    alternatives = _eq_alternatives(value)
    if alternatives is None:
        return _ALL, _NONE
    if not alternatives:
        return _NONE, _NONE
    exact = {path: alternatives[0]} if len(alternatives) == 1 else {path: {"$in": alternatives}}
    return exact, exact


def _native_in(path: str, values: list) -> tuple[dict, dict]:
    alternatives: list = []
    with_none = False
    for value in values:
        if value is None:
            with_none = True
            continue
        found = _eq_alternatives(value)
        if found is None:
            return _ALL, _NONE
        alternatives.extend(found)
    if with_none:
        # MongoDB's null also matches a missing field; Python's $in does not
        sup = {path: {"$in": alternatives + [None]}}
        return sup, {path: {"$in": alternatives + [None], "$exists": True}}
    if not alternatives:
        return _NONE, _NONE
    exact = {path: {"$in": alternatives}}
    return exact, exact


def _native_compare(path: str, op: str, value: Any) -> tuple[dict, dict]:
    if value is None:
        return _NONE, _NONE  # Python cannot order None against anything
    if isinstance(value, bool | int | float):
        number = int(value) if isinstance(value, bool) else value
        if number != number:
            return _NONE, _NONE
        if isinstance(number, int) and not -2 ** 63 <= number < 2 ** 63:
            return _ALL, _NONE
        # Python orders True/False among the numbers; MongoDB keeps booleans apart
        bools = [b for b in (False, True) if _COMPARE[op](int(b), number)]
        extra = [{path: {"$in": bools}}] if bools else []
        # integers beyond 64 bits are stored as {"\\int": digits} (codec): always candidates
        big = [{f"{path}.{BIG_INT_TAG}": {"$exists": True}}]
        exact = _or([{path: {op: number}}] + extra + big)
        # Some servers order NaN below every number; Python never orders it
        typed = _or([{path: {op: number, "$type": "number"}}] + extra)
        return exact, _and([typed, {path: {"$ne": float("nan")}}, _not_array(path)])
    if isinstance(value, str):
        exact = {path: {op: value}}
        return exact, _and([{path: {op: value, "$type": "string"}}, _not_array(path)])
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            return _NONE, _NONE
        # stored times are whole milliseconds: compare with the operand rounded down
        floor = value.replace(microsecond=value.microsecond - value.microsecond % 1000)
        if floor != value:
            op = {"$gte": "$gt", "$lt": "$lte"}.get(op, op)
        exact = {path: {op: floor}}
        return exact, _and([{path: {op: floor, "$type": "date"}}, _not_array(path)])
    return _ALL, _NONE


def _not_array(path: str) -> dict:
    # The subset of an order comparison is negated for $not/$nor/$ne, so it must never keep a
    # run Python would not. MongoDB keeps null, numbers, text and dates apart when ordering;
    # not every server that speaks its protocol does (some order "0.3" above 0.01), hence the
    # $type next to the comparison, and an array whose elements pass the comparison and the
    # type test one each is left to the superset.
    return {path: {"$not": {"$type": "array"}}}


def native_filter(node: Any) -> dict:
    """A MongoDB filter matching at least the runs ``node`` (a parsed filter) matches."""
    return _native(node)[0]


def _native(node: Any) -> tuple[dict, dict]:
    if isinstance(node, Cond):
        return _native_cond(node)
    if isinstance(node, Not):
        sup, sub = _native(node.part)
        return _negate(sub), _negate(sup)
    parts = [_native(p) for p in node.parts]
    sups, subs = [p[0] for p in parts], [p[1] for p in parts]
    if node.op == "$and":
        return _and(sups), _and(subs)
    if node.op == "$or":
        return _or(sups), _or(subs)
    return _negate(_or(subs)), _negate(_or(sups))  # $nor


#: the document fields a derived field is made of (labbook.stores.query)
_DERIVED_FROM = {"status": ("status", "heartbeat", "start_time", "meta"),
                 "name": ("meta", "experiment"), "tags": ("meta", "info", "omniboard"),
                 "notes": ("meta", "omniboard"),
                 "summary": ("info",)}


def _projected(heads: set[str]) -> set[str]:
    """The top-level fields to read for a filter and an order on ``heads``."""
    out: set[str] = set()
    for head in heads:
        out.update(_DERIVED_FROM.get(head, (head,)))
    out.discard("_id")
    return out
