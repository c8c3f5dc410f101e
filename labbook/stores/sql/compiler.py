"""Filters of the query model (:mod:`labbook.stores.query`) as SQL conditions.

A filter becomes a condition that keeps every matching run, exact where the translation is
sure (the run id, status, command, experiment name and the time columns); every candidate row
is then checked with :func:`labbook.stores.query.evaluate`, so results equal those of the file
store. Also here: the columns an order can use and the columns a filter needs to read.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import sqlalchemy as sa

from labbook.stores import query as _query
from labbook.stores.sql.schema import JSON_FIELDS, TIME_FIELDS, runs, tags_table
from labbook.stores.sql.types import MYSQL_NAMES, SHORT

__all__ = ["ORDERABLE", "key_columns", "Translator", "JsonPaths"]

#: the paths an order can name that the database sorts by itself
ORDERABLE = {"_id": runs.c.id, "start_time": runs.c.start_time,
             "queue_time": runs.c.queue_time, "stop_time": runs.c.stop_time,
             "heartbeat": runs.c.heartbeat}
_STRING_PATHS = {"status": runs.c.status, "command": runs.c.command,
                 "experiment.name": runs.c.experiment_name}

#: the columns a filter or an order on a top-level field needs (besides ``id``)
_HEAD_COLUMNS: dict[str, tuple] = {
    "_id": (),
    # the reported status: DIED depends on the heartbeat and the beat interval in meta
    "status": (runs.c.status, runs.c.heartbeat, runs.c.start_time, runs.c.meta),
    "name": (runs.c.meta, runs.c.experiment_name),
    "tags": (runs.c.meta, runs.c.info),
    "notes": (runs.c.meta,),
    "summary": (runs.c.info, runs.c.last_metrics),
    "experiment": (runs.c.experiment, runs.c.experiment_name),
}


def key_columns(heads: set[str]) -> list:
    """``id`` and the columns holding what the top-level fields ``heads`` need."""
    chosen: dict[str, Any] = {"id": runs.c.id}
    for head in sorted(heads):
        columns = _HEAD_COLUMNS.get(head)
        if columns is None:
            # a document field with a column of its own, else one kept in ``extra``
            columns = (runs.c[head],) if head in runs.c and head != "id" else (runs.c.extra,)
        for column in columns:
            chosen[column.name] = column
    return list(chosen.values())


_TRUE = sa.true()
_FALSE = sa.false()


class Translator:
    """The query AST as a SQL condition that keeps every matching run.

    Each translation returns ``(condition, exact)``. An inexact condition may keep runs that do
    not match (they are dropped by the Python check afterwards) but never drops a match. Exact
    conditions are two-valued (never SQL NULL), so they can be negated for ``$not``/``$nor``/
    ``$ne``/``$nin``; inexact ones cannot.
    """

    def __init__(self, dialect: str, strings_exact: bool):
        # MySQL compares strings case- and trailing-space-insensitively: a superset only
        self.strings_exact = strings_exact
        self.json = JsonPaths(dialect)

    def node(self, node: Any) -> tuple[Any, bool]:
        if isinstance(node, _query.Cond):
            return self.cond(node)
        if isinstance(node, _query.Not):
            inner, exact = self.node(node.part)
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        parts = [self.node(p) for p in node.parts]
        exact = all(e for _, e in parts)
        exprs = [c for c, _ in parts]
        if node.op == "$and":
            return (sa.and_(*exprs) if exprs else _TRUE), exact
        if node.op == "$or":
            return sa.or_(*exprs), exact
        if exact:  # $nor
            return sa.not_(sa.or_(*exprs)), True
        return _TRUE, False

    def cond(self, cond: _query.Cond) -> tuple[Any, bool]:
        path, op, value = cond.path, cond.op, cond.value
        if path == "status" and _mentions_died(op, value):
            return self.status(op, value)
        if path == "_id":
            kind, column = "id", runs.c.id
        elif path in TIME_FIELDS:
            kind, column = "time", runs.columns[path]
        elif path in _STRING_PATHS:
            kind, column = "str", _STRING_PATHS[path]
        else:
            return self.document_path(path, op, value)
        # NULL means "missing" except for the heartbeat, which is present as None
        null_is_none = path == "heartbeat"
        if op == "$ne":
            inner, exact = self.cond(_query.Cond(path, "$eq", value))
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        if op == "$nin":
            inner, exact = self.cond(_query.Cond(path, "$in", value))
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        if op == "$exists":
            if path == "experiment.name":
                return _TRUE, False
            if kind == "id" or null_is_none:
                return (_TRUE if value else _FALSE), True
            return (column.is_not(None) if value else column.is_(None)), True
        if op == "$eq":
            return self.equal(kind, column, path, [value], null_is_none, eq=True)
        if op == "$in":
            return self.equal(kind, column, path, list(value), null_is_none, eq=False)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            fit = self.fits(kind, path, value)
            if fit is None or kind == "str":
                # string order depends on the database's collation: checked in Python
                return _TRUE, False
            if not fit:
                return _FALSE, True  # Python's comparison raises TypeError: no match
            compare = {"$gt": column > value, "$gte": column >= value,
                       "$lt": column < value, "$lte": column <= value}[op]
            return sa.and_(column.is_not(None), compare), True
        return _TRUE, False  # $regex, $size, $all: in Python

    def status(self, op: str, value: Any) -> tuple[Any, bool]:
        """A condition naming RUNNING or DIED: a stored RUNNING run is reported as either, so
        the stored status keeps a superset (the Python check decides)."""
        if op not in ("$eq", "$in"):
            return _TRUE, False
        wanted = {("RUNNING" if v == "DIED" else v) for v in (value if op == "$in" else [value])
                  if isinstance(v, str)}
        if not wanted:
            return _FALSE, True
        return runs.c.status.in_(sorted(wanted)), False

    def document_path(self, path: str, op: str, value: Any) -> tuple[Any, bool]:
        """A condition on a field inside the JSON columns, or on a derived field."""
        head, _, rest = path.partition(".")
        parts = rest.split(".") if rest else []
        if head == "tags" and not parts:
            return self.tags(op, value)
        if head == "summary" and rest:
            # summary.<metric>: info.summary overrides the last logged value
            overridden = self.json.exists(runs.c.info, ["summary", rest])
            logged, _ = self.json.cond(runs.c.last_metrics, [rest], op, value)
            if overridden is None or logged is _TRUE:
                return _TRUE, False
            return sa.or_(overridden, logged), False
        if head in ("name", "notes") and not parts:
            if op not in ("$eq", "$in"):
                return _TRUE, False
            # name: meta.name, else the experiment's; notes: meta.notes, else meta.comment
            first, second = ((runs.c.meta, ["name"]), (runs.c.experiment, ["name"])) \
                if head == "name" else ((runs.c.meta, ["notes"]), (runs.c.meta, ["comment"]))
            one, _ = self.json.cond(*first, op, value)
            two, _ = self.json.cond(*second, op, value)
            if one is _TRUE or two is _TRUE:
                return _TRUE, False
            return sa.or_(one, two), False
        if head in JSON_FIELDS:
            return self.json.cond(runs.c[head], parts, op, value)
        return _TRUE, False

    def tags(self, op: str, value: Any) -> tuple[Any, bool]:
        """``tags``: rows of the tags table (what ``query.run_tags`` derives)."""
        def has(tag: str) -> Any:
            return sa.exists().where(tags_table.c.run_id == runs.c.id, tags_table.c.tag == tag)

        def usable(tag: Any) -> bool:
            return isinstance(tag, str) and len(tag) <= SHORT
        if op == "$exists":
            return (_TRUE if value else _FALSE), True
        if op in ("$eq", "$in", "$all"):
            operands = [value] if op == "$eq" else value
            strings = [t for t in operands if isinstance(t, str)]
            if not all(usable(t) for t in strings):
                return _TRUE, False
            if op == "$all":
                if len(strings) != len(operands):
                    return _FALSE, True  # a tag is always a string
                return (sa.and_(*map(has, strings)) if strings else _FALSE), self.strings_exact
            if not strings:
                return _FALSE, True
            inside = sa.exists().where(tags_table.c.run_id == runs.c.id,
                                       tags_table.c.tag.in_(strings))
            return inside, self.strings_exact
        return _TRUE, False

    def fits(self, kind: str, path: str, value: Any) -> bool | None:
        """True: comparable with the column; False: never equal/ordered; None: unsure."""
        if kind == "id":
            if isinstance(value, bool) or (isinstance(value, float)
                                           and not math.isfinite(value)):
                return None
            if isinstance(value, int) and not -2 ** 63 <= value < 2 ** 63:
                return None  # no database binds it; the Python check decides
            return isinstance(value, int | float)
        if kind == "time":
            return isinstance(value, _dt.datetime) and value.tzinfo is None
        if isinstance(value, str):
            if len(value) > SHORT:
                return None
            return True
        return False

    def equal(self, kind: str, column: Any, path: str, operands: list, null_is_none: bool,
              eq: bool) -> tuple[Any, bool]:
        exact = self.strings_exact or kind != "str"
        values = []
        match_null = False
        for operand in operands:
            if operand is None:
                if path == "experiment.name":
                    return _TRUE, False  # NULL also stands for a name that is not a string
                # {"f": None} matches a missing field; {"f": {"$in": [None]}} does not
                if kind != "id" and (eq or null_is_none):
                    match_null = True
                continue
            fit = self.fits(kind, path, operand)
            if fit is None:
                return _TRUE, False
            if fit:
                values.append(operand)
        parts = []
        if values:
            test = column == values[0] if len(values) == 1 else column.in_(values)
            parts.append(sa.and_(column.is_not(None), test))
        if match_null:
            parts.append(column.is_(None))
        if not parts:
            return _FALSE, True
        return (parts[0] if len(parts) == 1 else sa.or_(*parts)), exact


def _mentions_died(op: str, value: Any) -> bool:
    operands = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and v in _query.DIED_SENSITIVE for v in operands)


def _plain_number(value: Any) -> bool:
    """A finite number the database can take as a parameter and compare without rounding
    (integers beyond 2**53 are left to the Python check: SQLite cannot bind those beyond 64
    bits, and JSON functions read them as doubles)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return -2 ** 53 <= value <= 2 ** 53
    return isinstance(value, float) and math.isfinite(value)


class JsonPaths:
    """Conditions on values inside JSON columns, for each database's JSON functions.

    Every condition keeps each row whose value the Python evaluator could match: arrays
    (which match when an element does), booleans (``True == 1``) and objects (NaN and the
    infinities are stored as ``{"$float": ...}``) are kept for the Python check; numbers are
    compared with non-strict operators, since a database may round large integers to doubles
    (rounding keeps order, so no match is lost).
    """

    #: the database's names of each JSON type
    _TYPES = {
        "sqlite": {"number": ("integer", "real"), "string": ("text",),
                   "bool": ("true", "false"), "null": ("null",), "array": ("array",),
                   "object": ("object",)},
        "postgresql": {"number": ("number",), "string": ("string",), "bool": ("boolean",),
                       "null": ("null",), "array": ("array",), "object": ("object",)},
        "mysql": {"number": ("INTEGER", "UNSIGNED INTEGER", "DOUBLE", "DECIMAL"),
                  "string": ("STRING",), "bool": ("BOOLEAN",), "null": ("NULL",),
                  "array": ("ARRAY",), "object": ("OBJECT",)},
    }

    def __init__(self, dialect: str):
        self.dialect = "mysql" if dialect in MYSQL_NAMES else dialect
        self.types = self._TYPES.get(self.dialect)

    def usable(self, parts: list[str]) -> bool:
        # a digit part is a list index or a key (the evaluator tries both): left to Python
        return self.types is not None and not any(
            p.isdigit() or '"' in p or "\\" in p or not p for p in parts)

    def _path(self, parts: list[str]) -> str:
        return "$" + "".join(f'."{p}"' for p in parts)

    def _element(self, column: Any, parts: list[str]) -> Any:
        if self.dialect == "postgresql":
            return sa.func.json_extract_path(column, *parts) if parts else column
        if self.dialect == "mysql":
            return sa.func.json_extract(column, self._path(parts))
        return None

    def type_of(self, column: Any, parts: list[str]) -> Any:
        if self.dialect == "sqlite":
            return sa.func.json_type(column, self._path(parts))
        if self.dialect == "postgresql":
            return sa.func.json_typeof(self._element(column, parts))
        return sa.func.json_type(self._element(column, parts))

    def is_type(self, column: Any, parts: list[str], *kinds: str) -> Any:
        names = [n for kind in kinds for n in self.types[kind]]
        return self.type_of(column, parts).in_(names)

    def number(self, column: Any, parts: list[str]) -> Any:
        """The value as a number where it is one, else NULL."""
        if self.dialect == "sqlite":
            value = sa.func.json_extract(column, self._path(parts))
        elif self.dialect == "postgresql":
            text = sa.func.json_extract_path_text(column, *parts) if parts \
                else sa.cast(column, sa.Text)
            value = sa.cast(text, sa.Numeric)
        else:
            # text + 0e0 is the text read as a double (a CAST to FLOAT would be single
            # precision on MariaDB, and SQLAlchemy renders no CAST to DOUBLE for it)
            value = sa.func.json_unquote(self._element(column, parts)) + \
                sa.literal_column("0e0")
        # guarded: a cast of a text that is no number fails on some databases
        return sa.case((self.is_type(column, parts, "number"), value), else_=sa.null())

    def text(self, column: Any, parts: list[str]) -> Any | None:
        if self.dialect == "sqlite":
            return sa.func.json_extract(column, self._path(parts))
        if self.dialect == "postgresql":
            return sa.func.json_extract_path_text(column, *parts) if parts else None
        return sa.func.json_unquote(self._element(column, parts))

    def exists(self, column: Any, parts: list[str]) -> Any | None:
        """Present (JSON null included); None when the path cannot be translated."""
        if not self.usable(parts):
            return None
        return self.type_of(column, parts).is_not(None)

    def cond(self, column: Any, parts: list[str], op: str, value: Any) -> tuple[Any, bool]:
        if not self.usable(parts):
            return _TRUE, False
        if op == "$exists":
            present = self.type_of(column, parts).is_not(None)
            return (present if value else sa.not_(present)), True
        if op in ("$eq", "$in"):
            return self.equal(column, parts, [value] if op == "$eq" else list(value))
        if op in ("$gt", "$gte", "$lt", "$lte") and _plain_number(value):
            number = self.number(column, parts)
            compare = number >= value if op in ("$gt", "$gte") else number <= value
            return sa.or_(compare, self.is_type(column, parts, "array", "bool", "object")), False
        return _TRUE, False

    def equal(self, column: Any, parts: list[str], operands: list) -> tuple[Any, bool]:
        kinds = {"array"}
        tests = []
        for operand in operands:
            if operand is None:
                kinds.add("null")
                tests.append(self.type_of(column, parts).is_(None))
            elif isinstance(operand, bool):
                kinds.update(("bool", "number"))
            elif _plain_number(operand):
                # objects: SQLite keeps a whole-number float alone in a column as
                # {"$float": "1.0"} (see values.dumps_sqlite_json)
                kinds.update(("bool", "object") if not parts else ("bool",))
                tests.append(self.number(column, parts) == operand)
            elif isinstance(operand, str):
                text = self.text(column, parts)
                if text is None:
                    return _TRUE, False
                tests.append(sa.and_(self.is_type(column, parts, "string"), text == operand))
            else:  # documents, lists, NaN, the infinities: the Python check alone
                return _TRUE, False
        return sa.or_(self.is_type(column, parts, *sorted(kinds)), *tests), False
