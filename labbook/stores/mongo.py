"""The MongoDB store and observer, writing the documents Sacred's MongoObserver and Omniboard read.

Layout in database ``DB`` (``PREFIX_runs`` / ``PREFIX_metrics`` when a collection prefix is
given, as Sacred 0.8 names them)::

    runs              one document per run: _id (int), experiment, format, command, host,
                      start_time, config, meta, status, resources, artifacts, captured_out,
                      info, heartbeat, result, stop_time, fail_trace
    metrics           run_id, name, bucket, steps, values, timestamps (see "Metrics")
    fs.files/chunks   GridFS: artifacts, resources, sources, spilled output
    labbook_counters  {_id: <runs collection name>, seq: <last id>}

Ids come from the counter document (``find_one_and_update`` with ``$inc``, atomic on the
server). Runs written by other tools (Sacred, older labbook) have no counter: an insert that
collides with one raises ``DuplicateKeyError``, the counter is raised past the highest existing
id with ``$max`` and the next ``$inc`` is tried.

Keys containing ``.`` or starting with ``$`` are escaped (:func:`labbook.serialize.escape_key`)
on write and unescaped on read. Updates ``$set`` only the fields that changed, so fields other
tools add to a run (Omniboard's tags and notes) survive. Times are BSON dates: MongoDB keeps
milliseconds, so times read back are truncated to the millisecond.

Metrics: a series is stored in buckets of :data:`METRICS_BUCKET_SIZE` points, each bucket one
document ``{run_id, name, bucket: k, steps, values, timestamps}`` appended to with ``$push``
``$each``. A full bucket of 50,000 points is about 2.4 MB of BSON, far below the 16 MB limit,
so 10 million points are 200 documents. A bucket also records a token of the last batch pushed
into it (``labbook_batch``) and buckets are unique per (run_id, name, bucket), so repeating an
append after a lost connection never stores points twice. A series shorter than one bucket is
one document, which is what Sacred writes and Omniboard shows.

Size limit: when captured output or info would push a run document past
:attr:`MongoStore.max_document_bytes` (15 MiB, leaving room below MongoDB's 16 MiB for tags
and notes), that field moves to GridFS. The run document then holds a short stand-in (a notice
with the end of the output; an empty info) and ``labbook_spill: {field: file_id}``; reading the
run through this store returns the full value.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import io
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Iterator
from urllib.parse import quote, unquote

try:
    import bson
    import gridfs
    import pymongo
    from bson import ObjectId
    from pymongo import ReturnDocument, UpdateOne
    from pymongo.errors import (BulkWriteError, ConfigurationError, ConnectionFailure,
                                DuplicateKeyError, InvalidURI, OperationFailure,
                                ServerSelectionTimeoutError)
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError("The MongoDB store needs pymongo: pip install 'labbook[mongo]' "
                      "(or pip install pymongo).") from _exc

from labbook import clock, serialize
from labbook.errors import (LabbookError, MongoConnectionError, ObserverError, RunExistsError,
                            RunNotFoundError, StoredFileNotFoundError)
from labbook.fileio import file_md5
from labbook.stores import redact_url
from labbook.stores.base import LAST_KEY, RUN_FIELDS, Store, replaceable, sample_positions
from labbook.stores import query as _query
from labbook.stores.query import Cond, Logical, Not, evaluate, parse, sort_runs

log = logging.getLogger("labbook.stores.mongo")

FORMAT = "MongoObserver-0.7.0"
DEFAULT_DB = "sacred"
DEFAULT_URL = "mongodb://localhost:27017"
#: points per metrics document (see the module docstring)
METRICS_BUCKET_SIZE = 50_000
#: MongoDB's hard limit on one document
MAX_BSON_BYTES = 16 * 1024 * 1024
#: fields moved to GridFS when a run document would outgrow the limit
SPILLABLE = ("captured_out", "info")
#: field of a run document holding each metric's last value ``{escaped name: value}``, kept by
#: every append of points: summaries and ``summary.*`` filters need no metrics documents. Runs
#: written by Sacred lack it; their summaries come from the metrics collection.
LAST_FIELD = "labbook_last"
#: field of a metrics document holding the number of points in it (labbook's buckets); a
#: document without it (Sacred's) is measured with $size
BUCKET_LENGTH = "labbook_n"
COUNTED_FROM_START = "labbook_counted"
#: a series of at least this many points gets its default sample stored when its run ends
#: (``labbook_samples``): ``history()`` then reads 500 points, not 20 buckets of 50,000
SAMPLE_CACHE_POINTS = 200_000
#: the number of samples cached: ``RunView.history``'s default
CACHED_SAMPLES = 500
#: characters of output kept in the run document when the output is spilled
_SPILL_TAIL = 10_000
#: room kept for the ``labbook_spill`` sub-document
_SPILL_OVERHEAD = 200
#: the default wait for a server, so an unreachable one is reported quickly
SERVER_SELECTION_TIMEOUT_MS = 2000
#: the note written next to a run saved in ``failure_dir``
UPLOAD_NOTE = "mongo_upload.json"

_ID_ATTEMPTS = 100
_COUNTERS = "labbook_counters"
_UNKNOWN = object()
#: Unauthorized, AuthenticationFailed
_AUTH_ERRORS = (13, 18)


# --- URLs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MongoURL:
    """A MongoDB URL taken apart: what the client gets, the database and the collection prefix."""

    client_url: str
    database: str | None
    collection_prefix: str


def split_url(url: str) -> MongoURL:
    """Take ``mongodb://[user:pw@]hosts[/db][?options&collection_prefix=P]`` apart.

    ``collection_prefix`` is labbook's own option and is removed before the URL reaches the
    driver; ``host:port`` without a scheme is accepted as Sacred accepts it.
    """
    if "://" not in url:
        return MongoURL(url, None, "")
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    creds, at, hosts_path = rest.rpartition("@")
    hosts, slash, path = hosts_path.partition("/")
    prefix = ""
    kept = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        if name.lower() == "collection_prefix":
            prefix = unquote(value)
        else:
            kept.append(item)
    client_url = f"{scheme}://{creds}{at}{hosts}{slash}{path}"
    if kept:
        client_url += ("" if slash else "/") + "?" + "&".join(kept)
    return MongoURL(client_url, unquote(path) or None, prefix)


def _compose_url(client_url: str, database: str, prefix: str) -> str:
    """A URL that reopens the same database and collections (for worker processes)."""
    parts = split_url(client_url if "://" in client_url else "mongodb://" + client_url)
    scheme, rest = parts.client_url.split("://", 1)
    rest, _, query = rest.partition("?")
    creds, at, hosts_path = rest.rpartition("@")
    hosts, _, path = hosts_path.partition("/")
    options = [q for q in query.split("&") if q]
    if at and unquote(path) != database and not any(
            q.lower().startswith("authsource=") for q in options):
        # the URL's path was also the database to log in to; keep logging in there
        options.append("authSource=" + quote(unquote(path) or "admin", safe=""))
    if prefix:
        options.append("collection_prefix=" + quote(prefix, safe=""))
    url = f"{scheme}://{creds}{at}{hosts}/{quote(database, safe='')}"
    return url + ("?" + "&".join(options) if options else "")


def parse_mongo_db_arg(arg: str) -> dict:
    """Sacred's ``-m`` value -> MongoObserver keyword arguments.

    ``db``, ``db.prefix``, ``host:port:db``, ``host:port:db.prefix``, ``host:port`` or a full
    ``mongodb://`` URL (whose path names the database).
    """
    if "://" in arg:
        return {"url": arg}
    parts = arg.split(":")
    if len(parts) == 1:
        host_port, rest = None, parts[0]
    elif len(parts) in (2, 3) and parts[1].isdigit() and parts[0]:
        host_port, rest = f"{parts[0]}:{parts[1]}", (parts[2] if len(parts) == 3 else "")
    else:
        raise ObserverError(
            f"Cannot understand the MongoDB option '{arg}'. Write [host:port:]db_name[.prefix] "
            "(e.g. localhost:27017:sacred) or a URL like mongodb://host:27017/sacred.")
    db_name, _, prefix = rest.partition(".")
    kwargs: dict[str, Any] = {"db_name": db_name or DEFAULT_DB}
    if host_port:
        kwargs["url"] = host_port
    if prefix:
        kwargs["collection_prefix"] = prefix
    return kwargs


# --- values -----------------------------------------------------------------------------------

_NATIVE = (str, bool, float, type(None), _dt.datetime, ObjectId, bytes)


def _to_bson(value: Any) -> Any:
    """Escape keys for MongoDB and coerce what BSON cannot hold (numpy scalars, tuples...)."""
    if isinstance(value, _NATIVE) or type(value) is int:
        return value
    if isinstance(value, dict):
        return {serialize.escape_key(k if isinstance(k, str) else str(k)): _to_bson(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_bson(v) for v in value]
    if isinstance(value, int):  # int subclasses (IntEnum, numpy via flatten below)
        return int(value)
    return _to_bson(serialize.flatten(value))


def _from_bson(value: Any) -> Any:
    """Unescape keys; file ids become strings so documents stay JSON-friendly."""
    if isinstance(value, dict):
        return {serialize.unescape_key(k): _from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_bson(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
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


# --- filters ----------------------------------------------------------------------------------
#
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
        return _or([{"meta.tags": {"$in": listed}}]
                   + [{f"info.tags.{serialize.escape_key(t)}": {"$exists": True}}
                      for t in tags]), _NONE
    if path in ("name", "notes"):
        if not positive:
            return _ALL, _NONE
        fields = ("meta.name", "experiment.name") if path == "name" else \
            ("meta.notes", "meta.comment")
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
        exact = _or([{path: {op: number}}] + extra)
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
                 "name": ("meta", "experiment"), "tags": ("meta", "info"), "notes": ("meta",),
                 "summary": ("info",)}


def _projected(heads: set[str]) -> set[str]:
    """The top-level fields to read for a filter and an order on ``heads``."""
    out: set[str] = set()
    for head in heads:
        out.update(_DERIVED_FROM.get(head, (head,)))
    out.discard("_id")
    return out


def _batches(cursor: Any, size: int) -> Any:
    batch: list = []
    for raw in cursor:
        batch.append(raw)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the store --------------------------------------------------------------------------------

@dataclass
class _RunState:
    """What this process wrote into a run: values and BSON sizes of its top-level fields."""

    values: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    spilled: dict = field(default_factory=dict)
    artifacts: set = field(default_factory=set)
    fresh: bool = False  # created here: no metric documents can exist yet


def _is_metric_refs(value: Any) -> bool:
    """Whether ``value`` is Sacred's ``info.metrics``: ``[{"name": ..., "id": "<ObjectId>"}]``."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(r, dict) and set(r) == {"name", "id"} and isinstance(r["id"], str)
        for r in value)


def _translated(method: Callable) -> Callable:
    """Report a lost or missing server as :class:`MongoConnectionError`."""

    @functools.wraps(method)
    def wrapper(self: MongoStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ConnectionFailure as exc:
            raise self.connection_error(exc) from exc
        except OperationFailure as exc:
            if exc.code not in _AUTH_ERRORS:
                raise
            raise self.connection_error(exc) from exc
    return wrapper


class _GridFSReader(io.RawIOBase):
    """A GridFS file read chunk by chunk, asking the server for a few chunks per reply
    (``read(n)`` returns ``n`` bytes unless the file ends; GridOut's attributes are kept).

    pymongo's ``GridOut`` leaves the batch size to the server. A server that answers the
    chunks query with every chunk at once (mongoeco does; MongoDB stops at 16 MiB) then sends
    one reply above the wire protocol's 48 MB limit for any larger file, and the read fails.
    """

    BATCH_BYTES = 8 * 1024 * 1024

    def __init__(self, chunks: Any, file_doc: dict):
        super().__init__()
        self._chunks = chunks
        self._file_id = file_doc["_id"]
        self.length = int(file_doc.get("length") or 0)
        self.chunk_size = max(1, int(file_doc.get("chunkSize") or gridfs.DEFAULT_CHUNK_SIZE))
        self._id = file_doc["_id"]
        self.filename = file_doc.get("filename")
        self.upload_date = file_doc.get("uploadDate")
        self.content_type = file_doc.get("contentType")
        self.metadata = file_doc.get("metadata")
        self._cursor: Any = None
        self._next_n = 0
        self._data = memoryview(b"")
        self._offset = 0
        self._position = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Load the next chunk when the current one is used up; False at the end."""
        if self._offset < len(self._data):
            return True
        if self._position >= self.length:
            return False
        if self._cursor is None:
            self._cursor = self._chunks.find(
                {"files_id": self._file_id, "n": {"$gte": self._next_n}}, sort=[("n", 1)],
                batch_size=max(1, self.BATCH_BYTES // self.chunk_size))
        doc = next(self._cursor, None)
        if doc is None or doc.get("n") != self._next_n:
            raise gridfs.errors.CorruptGridFile(
                f"GridFS file {self._file_id}: chunk {self._next_n} is missing.")
        self._next_n += 1
        self._data, self._offset = memoryview(bytes(doc["data"])), 0
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._data) - self._offset)
        buffer[:n] = self._data[self._offset:self._offset + n]
        self._offset += n
        self._position += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        parts = []
        while size > 0 and self._fill():
            take = min(size, len(self._data) - self._offset)
            parts.append(self._data[self._offset:self._offset + take].tobytes())
            self._offset += take
            self._position += take
            size -= take
        return b"".join(parts)

    def readall(self) -> bytes:
        parts = []
        while self._fill():
            parts.append(self._data[self._offset:].tobytes())
            self._position += len(self._data) - self._offset
            self._offset = len(self._data)
        return b"".join(parts)

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
        super().close()


class MongoStore(Store):
    """Runs in MongoDB, in the documents of Sacred's MongoObserver (see the module docstring)."""

    schemes = ("mongodb",)
    #: a run document is kept below this size by moving output and info to GridFS
    max_document_bytes = MAX_BSON_BYTES - 1024 * 1024

    def __init__(self, url: str | None = None, db_name: str | None = None,
                 collection_prefix: str = "", client: Any = None,
                 bucket_size: int = METRICS_BUCKET_SIZE, **client_kwargs: Any):
        parts = split_url(url or DEFAULT_URL)
        self.db_name = db_name or parts.database or DEFAULT_DB
        self.collection_prefix = collection_prefix or parts.collection_prefix
        self.bucket_size = int(bucket_size)
        if self.bucket_size < 1:
            raise ValueError("bucket_size must be at least 1")
        self._owns_client = client is None
        if client is None:
            query = parts.client_url.partition("?")[2].lower()
            if "serverselectiontimeoutms" not in query:
                client_kwargs.setdefault("serverSelectionTimeoutMS", SERVER_SELECTION_TIMEOUT_MS)
            try:
                client = pymongo.MongoClient(parts.client_url, **client_kwargs)
            except (ConfigurationError, InvalidURI, ValueError, TypeError) as exc:
                raise MongoConnectionError(
                    f"Invalid MongoDB URL or option for {redact_url(url or DEFAULT_URL)}: {exc}. "
                    "Write mongodb://[user:password@]host[:port][/database][?options] and "
                    "check the option names.", redact_url(url or DEFAULT_URL)) from None
            self.url = _compose_url(parts.client_url, self.db_name, self.collection_prefix)
        else:
            seeds = sorted(client.topology_description.server_descriptions())
            hosts = ",".join(f"{h}:{p}" for h, p in seeds) or "localhost:27017"
            self.url = _compose_url("mongodb://" + hosts, self.db_name, self.collection_prefix)
        self.client = client
        self.db = client[self.db_name]
        prefix = f"{self.collection_prefix}_" if self.collection_prefix else ""
        self.runs = self.db[prefix + "runs"]
        self.metrics = self.db[prefix + "metrics"]
        self.counters = self.db[_COUNTERS]
        self.samples = self.db[prefix + "labbook_samples"]
        self.fs = gridfs.GridFS(self.db)
        self.files = self.db["fs.files"]
        self._state: dict[Any, _RunState] = {}
        self._buckets: dict[tuple, tuple[int, int]] = {}
        #: {run_id: [{"name", "id"}]}: the series this store started, which update_run writes
        #: into ``info.metrics`` as Sacred does (Omniboard's metric columns look them up there)
        self._metric_refs: dict[Any, list[dict]] = {}
        self._indexed = False
        self._timeout_s = client.options.server_selection_timeout

    #: the database used when neither the URL nor ``db_name`` names one (Sacred's)
    default_db = DEFAULT_DB

    @staticmethod
    def parse_db_arg(arg: str) -> dict:
        """Sacred's ``-m`` value -> MongoObserver keyword arguments (:func:`parse_mongo_db_arg`)."""
        return parse_mongo_db_arg(arg)

    def upload_hint(self, failure_dir: str) -> str:
        """How to upload the runs saved in ``failure_dir`` to this store, once it is back."""
        url = redact_url(self.url)
        hint = (f"Once the server is back, upload it with: python -m labbook.stores.mongo "
                f"upload {failure_dir} '{url}'")
        if "****" in url:
            hint += " (with the real password in place of ****)"
        return hint + "."

    def write_upload_note(self, run_dir: str, exc: BaseException, run_id: Any,
                          overwrite: Any = None) -> None:
        """Write :data:`UPLOAD_NOTE` into ``run_dir``, a run saved in a failure directory:
        this store, the run's id here (None: never stored), ``overwrite``, why it was saved
        there (``exc``); :func:`upload_failed_runs` reads it and records ``uploaded_as``."""
        note = {"store": redact_url(self.url), "run_id": run_id,
                "overwrite": overwrite, "reason": str(exc).split(" Check that")[0],
                "uploaded_as": None}
        with open(os.path.join(run_dir, UPLOAD_NOTE), "w", encoding="utf-8") as fh:
            json.dump(note, fh, indent=2, default=str)

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """``mongodb://host:port/db`` (database ``sacred`` when the path is empty)."""
        return cls(url)

    def __repr__(self) -> str:
        return f"MongoStore({redact_url(self.url)!r})"

    def connection_error(self, exc: BaseException) -> MongoConnectionError:
        """The labbook error for a pymongo connection failure, naming the URL and the checks."""
        url = redact_url(self.url)
        reason = str(exc).split(", Timeout:")[0].split("\n")[0][:300]
        if isinstance(exc, ServerSelectionTimeoutError):
            head = f"Cannot reach MongoDB at {url} within {self._timeout_s:g} s ({reason})."
        elif isinstance(exc, OperationFailure):
            head = f"MongoDB at {url} refused the login or the operation ({reason})."
        else:
            head = f"Lost the connection to MongoDB at {url} ({type(exc).__name__}: {reason})."
        return MongoConnectionError(
            head + " Check that the server is running and listening on that host and port, "
            "that no firewall or VPN blocks it, that the user name, password and authSource "
            "are right, and for a single member of a replica set add directConnection=true. "
            "Wait longer with ?serverSelectionTimeoutMS=10000 in the URL.", url)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- write side ----------------------------------------------------------------------------
    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        keys = [("run_id", 1), ("name", 1), ("bucket", 1)]
        try:
            # unique, so a bucket re-created after a lost connection is refused, not doubled
            self.metrics.create_index(keys, unique=True, name="labbook_run_name_bucket")
        except OperationFailure:
            # old data (several documents per series) cannot take a unique index
            log.debug("metrics: unique index refused, using a plain one", exc_info=True)
            self.metrics.create_index(keys, name="labbook_run_name_bucket_plain")
        self.files.create_index("md5", name="labbook_md5")
        # what listings sort and filter by: the first page of 10^5 runs reads one page
        for key, direction in (("start_time", -1), ("status", 1), ("experiment.name", 1),
                               ("heartbeat", -1)):
            self.runs.create_index([(key, direction), ("_id", 1)],
                                   name=f"labbook_{key.replace('.', '_')}")
        self._indexed = True

    @_translated
    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        """Insert the run; ``overwrite=True`` replaces run ``run_id`` (our fields only)."""
        self._ensure_indexes()
        body = {k: _to_bson(v) for k, v in doc.items() if k != "_id"}
        if "format" not in body:  # where Sacred's documents have it: after the experiment
            items = list(body.items())
            at = list(body).index("experiment") + 1 if "experiment" in body else 0
            body = dict(items[:at] + [("format", FORMAT)] + items[at:])
        late = {}
        sizes = {k: _elem_size(k, v) for k, v in body.items()}
        if _doc_size(sizes) + 64 > self.max_document_bytes:
            # written after the insert by update_run, which knows how to spill them
            for name in SPILLABLE:
                if name in body:
                    late[name] = body[name]
                    body[name] = "" if name == "captured_out" else {}
        if run_id is None:
            run_id = self._insert_new(body)
        elif overwrite:
            self._replace(run_id, body)
        else:
            try:
                self.runs.insert_one({"_id": run_id, **body})
            except DuplicateKeyError:
                existing = self.runs.find_one({"_id": run_id}, projection={
                    "status": 1, "start_time": 1, "meta.worker": 1}) or {}
                if not replaceable(existing):
                    raise RunExistsError(
                        f"A run with id {run_id!r} already exists in {self.db_name}."
                        f"{self.runs.name}. Pass overwrite={run_id!r} to MongoObserver to "
                        "replace it, or let MongoDB choose the id (no --id, and the "
                        "MongoObserver with the highest priority).") from None
                self._replace(run_id, body)  # a queued run being started under its id
        body["_id"] = run_id
        self._state[run_id] = _RunState(values=body, fresh=True,
                                        sizes={k: _elem_size(k, v) for k, v in body.items()})
        if late:
            self.update_run(run_id, {k: v for k, v in late.items()}, _encoded=True)
        return run_id

    def _insert_new(self, body: dict) -> int:
        for _ in range(_ID_ATTEMPTS):
            candidate = self._next_id()
            try:
                self.runs.insert_one({"_id": candidate, **body})
                return candidate
            except DuplicateKeyError:
                self._catch_up_counter()
        raise ObserverError(f"Could not allocate a run id in {self.db_name}.{self.runs.name} "
                            f"after {_ID_ATTEMPTS} attempts; is another program inserting runs "
                            "with the same ids?")

    def _next_id(self) -> int:
        for _ in range(5):
            try:
                counter = self.counters.find_one_and_update(
                    {"_id": self.runs.name}, {"$inc": {"seq": 1}}, upsert=True,
                    return_document=ReturnDocument.AFTER)
                return int(counter["seq"])
            except DuplicateKeyError:
                # two first upserts of the counter raced; the document exists now
                continue
        raise ObserverError(f"The id counter {_COUNTERS}/{self.runs.name} cannot be updated.")

    def _catch_up_counter(self) -> None:
        """Move the counter past runs inserted without it (Sacred, or by hand).

        Only the counter moves here; ids still come from the atomic ``$inc``.
        """
        top = self.runs.find_one({"_id": {"$type": "number"}}, projection={"_id": 1},
                                 sort=[("_id", pymongo.DESCENDING)])
        if top is None:
            return
        try:
            self.counters.update_one({"_id": self.runs.name},
                                     {"$max": {"seq": int(top["_id"])}}, upsert=True)
        except DuplicateKeyError:
            pass  # created concurrently; the next $inc moves on anyway

    def _replace(self, run_id: Any, body: dict) -> None:
        old = self.runs.find_one({"_id": run_id},
                                 projection={"labbook_spill": 1, "artifacts": 1}) or {}
        unset = {name: "" for name in (*RUN_FIELDS, "labbook_spill") if name not in body}
        update: dict = {"$set": body}
        if unset:
            update["$unset"] = unset
        self.runs.update_one({"_id": run_id}, update, upsert=True)
        # the replaced run's series, files and spilled fields belong to nobody now
        self.metrics.delete_many({"run_id": run_id})
        self.samples.delete_many({"run_id": run_id})
        self._metric_refs.pop(run_id, None)
        for key in list(self._buckets):
            if key[0] == run_id:
                del self._buckets[key]
        stale = list((old.get("labbook_spill") or {}).values())
        stale += [a.get("file_id") for a in old.get("artifacts") or [] if isinstance(a, dict)]
        for file_id in stale:
            self._delete_file(file_id)

    def _delete_file(self, file_id: Any) -> None:
        if file_id is None:
            return
        try:
            self.fs.delete(file_id)
        except ConnectionFailure:
            raise
        except Exception:  # a file already gone is what we wanted
            log.debug("could not delete GridFS file %s", file_id, exc_info=True)

    def _run_state(self, run_id: Any) -> _RunState:
        state = self._state.get(run_id)
        if state is None:
            raw = self.runs.find_one({"_id": run_id})
            if raw is None:
                raise ObserverError(f"No run with id {run_id!r} in "
                                    f"{self.db_name}.{self.runs.name}.")
            spilled = dict(raw.get("labbook_spill") or {})
            sizes = {k: _elem_size(k, v) for k, v in raw.items()}
            # the document holds stand-ins for spilled fields: compare nothing with them
            raw.update({name: _UNKNOWN for name in spilled})
            state = _RunState(values=raw, spilled=spilled, sizes=sizes,
                              artifacts={a.get("name") for a in raw.get("artifacts") or []
                                         if isinstance(a, dict)})
            self._state[run_id] = state
        return state

    @_translated
    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        # find_one_and_update is atomic on one document: each queued run goes to one worker
        flt: dict = {"status": "QUEUED"}
        if experiment is not None:
            flt["experiment.name"] = experiment
        raw = self.runs.find_one_and_update(
            flt, {"$set": {"status": "RUNNING", "heartbeat": clock.utcnow(),
                           "meta.worker": worker}},
            sort=[("meta.priority", pymongo.DESCENDING), ("queue_time", pymongo.ASCENDING),
                  ("_id", pymongo.ASCENDING)],
            return_document=ReturnDocument.AFTER)
        if raw is None:
            return None
        self._state.pop(raw["_id"], None)  # written behind this store's cache of the run
        return self._decode(raw)

    @_translated
    def update_run(self, run_id: Any, fields: dict, *, _encoded: bool = False) -> None:
        state = self._run_state(run_id)
        body = fields if _encoded else {k: _to_bson(v) for k, v in fields.items() if k != "_id"}
        if isinstance(body.get("info"), dict) and "metrics" not in body["info"]:
            refs = self._refs_of(run_id)
            if refs:
                body = dict(body, info=dict(body["info"], metrics=[dict(r) for r in refs]))
        changed = {k: v for k, v in body.items()
                   if k not in state.values or state.values[k] is _UNKNOWN
                   or state.values[k] != v}
        if not changed:
            return
        sizes = dict(state.sizes)
        for key, value in changed.items():
            sizes[key] = _elem_size(key, value)
        if state.spilled or any(k in changed for k in SPILLABLE):
            sizes["labbook_spill"] = _SPILL_OVERHEAD
        staying = {k for k in state.spilled if k not in changed}
        total = _doc_size(sizes)
        to_spill = []
        candidates = [k for k in SPILLABLE if k in sizes and k not in staying]
        for name in sorted(candidates, key=lambda k: sizes[k], reverse=True):
            if total <= self.max_document_bytes:
                break
            stub_size = _elem_size(name, _spill_stub(name, changed.get(
                name, state.values.get(name)), ObjectId()))
            to_spill.append(name)
            total -= sizes[name] - stub_size
        if total > self.max_document_bytes:
            largest = sorted(sizes, key=sizes.get, reverse=True)[:3]
            raise ObserverError(
                f"Run {run_id!r} would need a {total / 2 ** 20:.1f} MB document even with its "
                f"output and info in GridFS (MongoDB allows 16 MB); the largest fields are "
                f"{', '.join(largest)}. Store big data as artifacts instead.")
        update_set: dict = {}
        unset: dict = {}
        obsolete = []
        new_spills = {}
        for name in to_spill:
            value = changed.get(name, state.values.get(name))
            file_id = self._put_spill(run_id, name, value)
            new_spills[name] = file_id
            update_set[name] = _spill_stub(name, value, file_id)
            update_set[f"labbook_spill.{name}"] = file_id
            if name in state.spilled:
                obsolete.append(state.spilled[name])
        for key, value in changed.items():
            if key in new_spills:
                continue
            update_set[key] = value
            if key in state.spilled:
                unset[f"labbook_spill.{key}"] = ""
                obsolete.append(state.spilled[key])
        update: dict = {"$set": update_set}
        if unset:
            update["$unset"] = unset
        result = self.runs.update_one({"_id": run_id}, update)
        if result.matched_count == 0:
            self._state.pop(run_id, None)
            raise ObserverError(f"Run {run_id!r} disappeared from "
                                f"{self.db_name}.{self.runs.name} while it was being recorded.")
        state.values.update(changed)
        for key in changed:
            state.spilled.pop(key, None)
        state.spilled.update(new_spills)
        state.sizes = sizes
        for name in new_spills:
            state.sizes[name] = _elem_size(name, update_set[name])
        for file_id in obsolete:
            self._delete_file(file_id)
        if changed.get("status") not in (None, "RUNNING", "QUEUED"):
            self._cache_samples(run_id)

    def _cache_samples(self, run_id: Any) -> None:
        """Store the default sample of the run's long series (its points are all in now)."""
        try:
            lengths = self._bucket_lengths({"run_id": run_id})
            if lengths is None:
                return
            totals: dict[str, int] = {}
            for doc in lengths:
                totals[doc["name"]] = totals.get(doc["name"], 0) + doc["ns"]
            long = [name for name, n in totals.items() if n >= SAMPLE_CACHE_POINTS]
            if not long:
                return
            sampled = self._sample_buckets(
                [d for d in lengths if d["name"] in long], CACHED_SAMPLES)
            for name in long:
                self.samples.replace_one(
                    {"_id": f"{run_id}/{name}/{CACHED_SAMPLES}"},
                    {"run_id": run_id, "name": name, "samples": CACHED_SAMPLES,
                     "n": totals[name], **sampled[name]}, upsert=True)
        except (ConnectionFailure, OperationFailure):
            raise
        except Exception:  # a cache: the run's record stands without it
            log.debug("could not cache the samples of run %r", run_id, exc_info=True)

    def _refs_of(self, run_id: Any) -> list[dict]:
        """The run's ``info.metrics`` references, taken once from what the store knows."""
        refs = self._metric_refs.get(run_id)
        if refs is None:
            info = self._run_state(run_id).values.get("info")
            found = info.get("metrics") if isinstance(info, dict) else None
            refs = [dict(r) for r in found] if _is_metric_refs(found) else []
            self._metric_refs[run_id] = refs
        return refs

    def _put_spill(self, run_id: Any, name: str, value: Any) -> Any:
        if name == "captured_out":
            data = (value or "").encode("utf-8")
        else:
            data = bson.encode({"v": value})
        return self.fs.put(data, filename=f"{name}://{self.runs.name}/{run_id}",
                           metadata={"run_id": run_id, "field": name})

    def _read_spill(self, name: str, file_id: Any) -> Any:
        data = self.fs.get(file_id).read()
        if name == "captured_out":
            return data.decode("utf-8")
        return _from_bson(bson.decode(data)["v"])

    def _bucket_of(self, run_id: Any, name: str) -> tuple[int, int]:
        """(index, length) of the last bucket of a series."""
        known = self._buckets.get((run_id, name))
        if known is not None:
            return known
        state = self._state.get(run_id)
        if state is not None and state.fresh:
            return 0, 0
        last = self.metrics.find_one({"run_id": run_id, "name": name, "bucket": {"$exists": True}},
                                     projection={"bucket": 1, "steps": 1},
                                     sort=[("bucket", pymongo.DESCENDING)])
        if last is None:
            return 0, 0  # nothing, or one document Sacred wrote (kept first by history)
        return int(last["bucket"]), len(last.get("steps") or [])

    @_translated
    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        if not metrics_by_name:
            return
        self._ensure_indexes()
        ops = []
        after: dict[str, tuple[int, int]] = {}
        first_buckets: dict[int, str] = {}  # index in ops -> name, for a series' first document
        for name, series in metrics_by_name.items():
            steps = _to_bson(list(series["steps"]))
            values = _to_bson(list(series["values"]))
            stamps = [clock.to_utc(t) if isinstance(t, str) else t
                      for t in series["timestamps"]]
            bucket, count = self._bucket_of(run_id, name)
            pos = 0
            while pos < len(steps):
                if count >= self.bucket_size:
                    bucket, count = bucket + 1, 0
                take = min(self.bucket_size - count, len(steps) - pos)
                end = pos + take
                token = _batch_token(name, steps[pos:end], values[pos:end], stamps[pos:end])
                if bucket == 0 and count == 0:
                    first_buckets[len(ops)] = name
                # A bucket remembers the last batch pushed into it: the same batch sent again
                # (its reply was lost) matches nothing and stores nothing twice.
                query = {"run_id": run_id, "name": name, "bucket": bucket,
                         "labbook_batch": {"$ne": token}}
                ops.append(UpdateOne(query, {
                    "$push": {"steps": {"$each": steps[pos:end]},
                              "values": {"$each": values[pos:end]},
                              "timestamps": {"$each": stamps[pos:end]}},
                    # the bucket's length, so readers need not measure the arrays; counted
                    # from its creation on (COUNTED_FROM_START) or not trusted
                    "$inc": {BUCKET_LENGTH: take},
                    "$setOnInsert": {COUNTED_FROM_START: True},
                    "$set": {"labbook_batch": token}}, upsert=count == 0))
                pos, count = end, count + take
            after[name] = (bucket, count)
        upserted: dict = {}
        if ops:
            try:
                upserted = self.metrics.bulk_write(ops, ordered=False).upserted_ids or {}
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                # duplicate buckets: those points were stored by an earlier attempt
                upserted = {u["index"]: u["_id"] for u in exc.details.get("upserted", [])}
        for index in sorted(i for i in upserted if i in first_buckets):
            if run_id in self._state:  # a run this process writes: its next update says so
                self._refs_of(run_id).append(
                    {"name": first_buckets[index], "id": str(upserted[index])})
        for name, position in after.items():
            self._buckets[(run_id, name)] = position
        # the run's summary: each metric's last value, on the run document (LAST_FIELD)
        last = {f"{LAST_FIELD}.{serialize.escape_key(name)}": _to_bson(series["values"][-1])
                for name, series in metrics_by_name.items() if len(series["values"])}
        if last:
            self.runs.update_one({"_id": run_id}, {"$set": last})

    @_translated
    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        # Sacred's artifact files always carry "metadata" (null without any)
        extra: dict = {"metadata": None if metadata is None else _to_bson(metadata)}
        if content_type is not None:
            extra["contentType"] = content_type  # where Sacred and Omniboard look
        with open(filename, "rb") as fh:
            file_id = self.fs.put(fh, filename=f"artifact://{self.runs.name}/{run_id}/{name}",
                                  **extra)
        state = self._state.get(run_id)
        if state is None or name in state.artifacts:
            # same name again: point the existing entry at the new file, keeping its place
            old = self.runs.find_one_and_update(
                {"_id": run_id, "artifacts.name": name},
                {"$set": {"artifacts.$.file_id": file_id}}, projection={"artifacts": 1})
            if old is not None:
                previous = next((a.get("file_id") for a in old.get("artifacts") or []
                                 if isinstance(a, dict) and a.get("name") == name), None)
                self._delete_file(previous)
                return
        self.runs.update_one({"_id": run_id},
                             {"$push": {"artifacts": {"name": name, "file_id": file_id}}})
        if state is not None:
            state.artifacts.add(name)

    def _store_blob(self, path: str, md5: str, recorded_name: str | None = None) -> Any:
        """The GridFS id of this content, uploading it only when no file has the same md5."""
        found = self.files.find_one({"md5": md5}, projection={"_id": 1})
        if found is not None:
            return found["_id"]
        with open(path, "rb") as fh:
            return self.fs.put(fh, filename=recorded_name or os.path.abspath(path), md5=md5)

    @_translated
    def put_resource(self, run_id: Any, filename: str, recorded_name: str | None = None) -> None:
        """Store the file once per content; the run records ``recorded_name or filename``."""
        md5 = file_md5(filename)
        self._store_blob(filename, md5, recorded_name)
        self.runs.update_one({"_id": run_id},
                             {"$addToSet": {"resources": [recorded_name or filename, md5]}})

    @_translated
    def put_sources(self, experiment_info: dict) -> dict:
        info = dict(experiment_info)
        base_dir = info.get("base_dir") or ""
        sources = []
        for relname, *_ in info.get("sources", []):
            path = os.path.join(base_dir, relname)
            if os.path.isfile(path):
                sources.append([relname, self._store_blob(path, file_md5(path))])
        info["sources"] = sources
        return info

    @_translated
    def delete_run(self, run_id: Any) -> None:
        """Delete the run, its metric documents, artifact files and spilled fields (sources and
        resources are shared between runs by content, so they stay)."""
        raw = self._find_raw(run_id, projection={"labbook_spill": 1, "artifacts": 1})
        if raw is None:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.db_name}.{self.runs.name}.")
        self.runs.delete_one({"_id": raw["_id"]})
        self.metrics.delete_many({"run_id": raw["_id"]})
        self.samples.delete_many({"run_id": raw["_id"]})
        files = list((raw.get("labbook_spill") or {}).values())
        files += [a.get("file_id") for a in raw.get("artifacts") or [] if isinstance(a, dict)]
        for file_id in files:
            self._delete_file(file_id)
        self._state.pop(raw["_id"], None)
        self._metric_refs.pop(raw["_id"], None)
        for key in [k for k in self._buckets if k[0] == raw["_id"]]:
            del self._buckets[key]

    # -- read side -----------------------------------------------------------------------------
    def _decode(self, raw: dict) -> dict:
        spilled = raw.pop("labbook_spill", None) or {}
        raw.pop(LAST_FIELD, None)
        doc = _from_bson(raw)
        info = doc.get("info")
        if isinstance(info, dict) and _is_metric_refs(info.get("metrics")):
            # Sacred's links to the metric documents: bookkeeping, not the run's info
            doc["info"] = {k: v for k, v in info.items() if k != "metrics"}
        for name, file_id in spilled.items():
            if name in doc:
                try:
                    doc[name] = self._read_spill(name, file_id)
                except gridfs.errors.NoFile:
                    # replaced between our two reads: the run document names the new file
                    fresh = self.runs.find_one({"_id": raw["_id"]},
                                               projection={"labbook_spill": 1}) or {}
                    newer = (fresh.get("labbook_spill") or {}).get(name)
                    if newer is not None:
                        doc[name] = self._read_spill(name, newer)
        return doc

    def _find_raw(self, run_id: Any, projection: dict | None = None) -> dict | None:
        raw = self.runs.find_one({"_id": run_id}, projection=projection)
        if raw is None and isinstance(run_id, str) and run_id.isdigit():
            raw = self.runs.find_one({"_id": int(run_id)}, projection=projection)
        return raw

    @_translated
    def get(self, run_id: Any) -> dict | None:
        raw = self._find_raw(run_id)
        return None if raw is None else self._decode(raw)

    @_translated
    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False) -> list[dict]:
        """Run documents matching ``filter``; the top-level fields in ``exclude`` (such as
        ``captured_out``) are left out of them unless the filter or the order needs them;
        ``with_last`` adds each run's last values (``LAST_KEY``) where its document has them."""
        node = filter if isinstance(filter, Cond | Logical | Not) else parse(filter)
        native = native_filter(node)
        if _is_none(native) or (limit is not None and limit == 0):
            return []
        if limit is not None and limit < 0:
            # Python's slice meaning, as in the file store
            return self.find(node, order, exclude=exclude, with_last=with_last)[:limit]
        heads = _query.heads(node, order)
        left_out = {f: 0 for f in exclude if f not in heads and f not in ("_id", "labbook_spill")}
        summary = "summary" in heads
        now = clock.utcnow()
        path = order.lstrip("+-") if order else "_id"
        if path in _NATIVE_ORDERS:
            # the server sorts as sort_runs does (see _sorted_cursors): candidates come in
            # order and the first `limit` that pass the Python check are the answer
            out: list[dict] = []
            descending = bool(order) and order.startswith("-")
            for query, sort in self._sorted_queries(native, path, descending):
                for batch in self._pages(query, sort, left_out, limit):
                    for doc, view in self._views(batch, summary, now, with_last):
                        if evaluate(node, view):
                            out.append(doc)
                            if limit is not None and len(out) >= limit:
                                return out
            return out
        # Order in Python (sort_runs: missing values last, numbers before text), reading only
        # the fields the filter and the order need, then fetch the winners in full.
        projection = {h: 1 for h in _projected(heads)}
        projection["labbook_spill"] = 1
        if summary:
            projection[LAST_FIELD] = 1
        found = list(self.runs.find(native, projection))
        rows = [view for _, view in self._views(found, summary, now) if evaluate(node, view)]
        rows.sort(key=lambda r: (not isinstance(r["_id"], int | float), r["_id"]
                                 if isinstance(r["_id"], int | float) else str(r["_id"])))
        ids = [r["_id"] for r in sort_runs(rows, order)]
        if limit is not None:
            ids = ids[:limit]
        full = {raw["_id"]: raw for raw in self.runs.find({"_id": {"$in": ids}},
                                                          left_out or None)}
        return [doc for doc, _ in self._views([full[i] for i in ids if i in full], False, now,
                                              with_last)]

    @staticmethod
    def _sorted_queries(native: dict, path: str, descending: bool) -> list[tuple[dict, list]]:
        """(filter, sort) pairs that list the runs matching ``native`` in sort_runs's order of
        ``path`` (an id or a time: one type, so MongoDB's order is Python's), ties by id.
        Missing and null values come last in both directions: MongoDB puts them last when
        descending, so ascending reads the present values first, then the others."""
        if path == "_id":
            return [(native, [("_id", pymongo.DESCENDING if descending else pymongo.ASCENDING)])]
        if descending:
            return [(native, [(path, pymongo.DESCENDING), ("_id", pymongo.ASCENDING)])]
        return [(_and([native, {path: {"$ne": None}}]),
                 [(path, pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]),
                (_and([native, {path: None}]), [("_id", pymongo.ASCENDING)])]

    def _pages(self, query: dict, sort: list, left_out: dict, limit: int | None
               ) -> Iterator[list[dict]]:
        """The sorted runs in growing pages (skip/limit): a server asked for a limit sorts only
        what it returns (mongoeco otherwise prepares every match before the first batch)."""
        projection = left_out or None
        if limit is None:
            yield from _batches(self.runs.find(query, projection).sort(sort), 200)
            return
        # a filter that the Python check narrows keeps a part of what the server sends:
        # ask for a few pages' worth at first, then twice as many each time
        offset, take = 0, max(4 * limit, 100)
        while True:
            page = list(self.runs.find(query, projection).sort(sort).skip(offset).limit(take))
            if page:
                yield page
            if len(page) < take:
                return
            offset, take = offset + take, take * 2

    def _views(self, raws: list[dict], summary: bool, now: Any, with_last: bool = False
               ) -> list[tuple[dict, dict]]:
        """(document, query view) of raw run documents; the views of ``summary`` queries
        get each run's last values (from LAST_FIELD, else one batch from the metrics), and
        with ``with_last`` the documents that have LAST_FIELD carry it as LAST_KEY."""
        lasts: dict[Any, dict] = {}
        missing = []
        for raw in raws if summary or with_last else ():
            if LAST_FIELD in raw:
                lasts[raw["_id"]] = {serialize.unescape_key(k): _from_bson(v)
                                     for k, v in (raw[LAST_FIELD] or {}).items()}
            else:
                missing.append(raw["_id"])
        if summary and missing:
            lasts.update(self.last_values(missing))
        out = []
        for raw in raws:
            doc = self._decode(raw)
            last = lasts.get(doc["_id"])
            out.append((doc, _query.query_view(doc, last if summary else None, now)))
            if with_last and last is not None:
                doc[LAST_KEY] = dict(last)
        return out

    @_translated
    def history(self, run_id: Any, names: Iterable[str] | None = None
                ) -> dict[str, dict[str, list]]:
        query: dict = {"run_id": run_id}
        if isinstance(run_id, str) and run_id.isdigit():
            query["run_id"] = {"$in": [run_id, int(run_id)]}  # ids typed on a command line
        if names is not None:
            query["name"] = {"$in": list(names)}
        docs = list(self.metrics.find(query, projection={"_id": 0, "name": 1, "bucket": 1,
                                                         "steps": 1, "values": 1,
                                                         "timestamps": 1}))
        # a document without a bucket number was written by Sacred: it comes first
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        out: dict[str, dict[str, list]] = {}
        for doc in docs:
            series = out.setdefault(doc["name"], {"steps": [], "values": [], "timestamps": []})
            series["steps"].extend(doc.get("steps") or [])
            series["values"].extend(doc.get("values") or [])
            series["timestamps"].extend(doc.get("timestamps") or [])
        return out

    @staticmethod
    def _runs_wanted(run_ids: Iterable[Any]) -> dict[Any, list]:
        """Stored ``run_id`` value -> the requested ids it answers (``"3"`` asks for 3 too)."""
        wanted: dict[Any, list] = {}
        for run_id in dict.fromkeys(run_ids):
            variants = [run_id]
            if isinstance(run_id, str) and run_id.isdigit():
                variants.append(int(run_id))  # ids typed on a command line
            for value in variants:
                wanted.setdefault(value, []).append(run_id)
        return wanted

    @_translated
    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        """Every requested run's history from one query (``run_id: {$in: ...}``)."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, dict[str, list]]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        query: dict = {"run_id": {"$in": list(wanted)}}
        if names is not None:
            query["name"] = {"$in": list(names)}
        docs = list(self.metrics.find(query, projection={"_id": 0, "run_id": 1, "name": 1,
                                                         "bucket": 1, "steps": 1, "values": 1,
                                                         "timestamps": 1}))
        # as history(): by name, a document Sacred wrote (no bucket) first, then the buckets
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in docs:
            for run_id in wanted.get(doc.get("run_id"), ()):
                series = out[run_id].setdefault(doc["name"], {"steps": [], "values": [],
                                                              "timestamps": []})
                series["steps"].extend(doc.get("steps") or [])
                series["values"].extend(doc.get("values") or [])
                series["timestamps"].extend(doc.get("timestamps") or [])
        return out

    @_translated
    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """Each metric's last value for many runs from one query, reading one value per
        metrics document (``$slice``) instead of whole series."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        for raw in self.runs.find({"_id": {"$in": list(wanted)}, LAST_FIELD: {"$exists": True}},
                                  projection={LAST_FIELD: 1}):
            last = {serialize.unescape_key(k): _from_bson(v)
                    for k, v in (raw.get(LAST_FIELD) or {}).items()}
            for run_id in wanted.pop(raw["_id"], ()):
                out[run_id] = dict(last)
        if not wanted:
            return out
        # runs written by Sacred (or before LAST_FIELD): the last element of each series
        docs = list(self.metrics.find({"run_id": {"$in": list(wanted)}},
                                      projection={"_id": 0, "run_id": 1, "name": 1, "bucket": 1,
                                                  "values": {"$slice": -1}}))
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in docs:
            values = doc.get("values") or []
            if values:  # the last document with points has the last value
                for run_id in wanted.get(doc.get("run_id"), ()):
                    out[run_id][doc["name"]] = values[-1]
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000
                    ) -> Iterator[dict[str, list]]:
        """One metric document (bucket) at a time, cut into pages of ``page_size``."""
        query = {"run_id": {"$in": list(self._runs_wanted([run_id]))}, "name": name}
        try:
            found = list(self.metrics.find(query, projection={"_id": 1, "bucket": 1}))
        except ConnectionFailure as exc:
            raise self.connection_error(exc) from exc
        # a document without a bucket number was written by Sacred: it comes first
        found.sort(key=lambda d: d.get("bucket", -1))
        for ref in found:
            doc = self.metrics.find_one({"_id": ref["_id"]}, projection={
                "_id": 0, "steps": 1, "values": 1, "timestamps": 1}) or {}
            steps = doc.get("steps") or []
            for start in range(0, len(steps), page_size):
                yield {key: list((doc.get(key) or [])[start:start + page_size])
                       for key in ("steps", "values", "timestamps")}

    @_translated
    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: points}}`` from the lengths of the metric documents (the server
        counts; no point is sent)."""
        run_ids = list(run_ids)
        wanted = self._runs_wanted(run_ids)
        out: dict[Any, dict[str, int]] = {run_id: {} for run_id in run_ids}
        if not wanted:
            return out
        for doc in self.metrics.aggregate([
                {"$match": {"run_id": {"$in": list(wanted)}}},
                {"$project": {"_id": 0, "run_id": 1, "name": 1,
                              "n": {"$size": {"$ifNull": ["$values", []]}}}}]):
            for run_id in wanted.get(doc.get("run_id"), ()):
                counts = out[run_id]
                counts[doc["name"]] = counts.get(doc["name"], 0) + int(doc["n"])
        return out

    @_translated
    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """The points ``sample_series`` keeps, picked on the server: the lengths of the metrics
        documents (stored in labbook's buckets, else measured), then one query that returns
        only the chosen elements; the default sample of a long series of an ended run comes
        from ``labbook_samples``, stored when the run ended."""
        if samples is None:
            return self.history(run_id, names)
        names = None if names is None else list(names)
        query: dict = {"run_id": {"$in": list(self._runs_wanted([run_id]))}}
        if names is not None:
            query["name"] = {"$in": names}
        docs = self._bucket_lengths(query)
        if docs is None:
            # ragged documents (not written by labbook): the generic reading is the definition
            return super().history_sampled(run_id, names, samples)
        totals: dict[str, int] = {}
        for doc in docs:
            totals[doc["name"]] = totals.get(doc["name"], 0) + doc["ns"]
        out: dict[str, dict[str, list]] = {}
        if samples == CACHED_SAMPLES:
            long = [name for name, n in totals.items() if n >= SAMPLE_CACHE_POINTS]
            if long:
                for cached in self.samples.find({**query, "name": {"$in": long},
                                                 "samples": samples}):
                    if cached.get("n") == totals.get(cached["name"]):  # nothing added since
                        out[cached["name"]] = {key: list(cached.get(key) or [])
                                               for key in ("steps", "values", "timestamps")}
        rest = [d for d in docs if d["name"] not in out]
        out.update(self._sample_buckets(rest, samples))
        return out

    def _bucket_lengths(self, query: dict) -> list[dict] | None:
        """``_id``, ``name``, ``bucket`` and the length ``ns`` of each metrics document matching
        ``query``, in series order; None when a document's arrays differ in length."""
        def size(field: str) -> dict:
            return {"$size": {"$ifNull": [f"${field}", []]}}

        docs = list(self.metrics.find(query, {"_id": 1, "name": 1, "bucket": 1,
                                              BUCKET_LENGTH: 1, COUNTED_FROM_START: 1}))
        if docs and all(d.get(COUNTED_FROM_START) is True
                        and isinstance(d.get(BUCKET_LENGTH), int) for d in docs):
            # labbook's buckets know their length: no array is read to measure it
            for doc in docs:
                doc["ns"] = doc["nv"] = doc["nt"] = doc[BUCKET_LENGTH]
        else:
            docs = list(self.metrics.aggregate([
                {"$match": query},
                {"$project": {"_id": 1, "name": 1, "bucket": 1, "ns": size("steps"),
                              "nv": size("values"), "nt": size("timestamps")}}]))
        if any(d["ns"] != d["nv"] or d["ns"] != d["nt"] for d in docs):
            return None
        docs.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        return docs

    def _sample_buckets(self, docs: list[dict], samples: int) -> dict[str, dict[str, list]]:
        """The sampled series of the metrics documents ``docs`` (from ``_bucket_lengths``)."""
        by_name: dict[str, list[dict]] = {}
        for doc in docs:
            by_name.setdefault(doc["name"], []).append(doc)
        picks: dict[Any, list[int] | None] = {}  # document id -> its elements (None: all)
        for series_docs in by_name.values():
            total = sum(d["ns"] for d in series_docs)
            if total <= samples:
                picks.update({d["_id"]: None for d in series_docs if d["ns"]})
                continue
            positions = sample_positions(total, samples)
            start, k = 0, 0
            for doc in series_docs:
                local = []
                while k < len(positions) and positions[k] < start + doc["ns"]:
                    local.append(positions[k] - start)
                    k += 1
                if local:
                    picks[doc["_id"]] = local
                start += doc["ns"]
        out: dict[str, dict[str, list]] = {
            name: {"steps": [], "values": [], "timestamps": []} for name in by_name}
        if not picks:
            return out
        branches = [{"case": {"$eq": ["$_id", doc_id]}, "then": local}
                    for doc_id, local in picks.items() if local is not None]

        def chosen(field: str) -> Any:
            if not branches:
                return f"${field}"
            pick = {"$switch": {"branches": branches, "default": None}}
            return {"$let": {"vars": {"pick": pick}, "in": {"$cond": [
                {"$eq": ["$$pick", None]}, f"${field}",
                {"$map": {"input": "$$pick", "as": "i",
                          "in": {"$arrayElemAt": [f"${field}", "$$i"]}}}]}}}

        found = list(self.metrics.aggregate([
            {"$match": {"_id": {"$in": list(picks)}}},
            {"$project": {"_id": 0, "name": 1, "bucket": 1, "steps": chosen("steps"),
                          "values": chosen("values"), "timestamps": chosen("timestamps")}}]))
        found.sort(key=lambda d: (d["name"], d.get("bucket", -1)))
        for doc in found:
            series = out[doc["name"]]
            for key in ("steps", "values", "timestamps"):
                series[key].extend(doc.get(key) or [])
        return out

    def _open_file(self, file_id: Any) -> BinaryIO:
        """A stored GridFS file, read in bounded batches (see :class:`_GridFSReader`)."""
        doc = self.files.find_one({"_id": file_id})
        if doc is None:
            raise gridfs.errors.NoFile(f"No GridFS file with id {file_id!r}.")
        return _GridFSReader(self.db["fs.chunks"], doc)  # self.files is fs.files

    @_translated
    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        raw = self._find_raw(run_id, projection={"artifacts": 1})
        if raw is None:
            raise StoredFileNotFoundError(f"No run with id {run_id!r} in "
                                          f"{self.db_name}.{self.runs.name}.")
        entries = [a for a in raw.get("artifacts") or [] if isinstance(a, dict)]
        for entry in reversed(entries):
            if entry.get("name") == name:
                return self._open_file(entry["file_id"])
        known = ", ".join(repr(a.get("name")) for a in entries) or "none"
        raise StoredFileNotFoundError(f"Run {run_id!r} has no artifact named {name!r} "
                                      f"(it has: {known}).")

    @_translated
    def open_blob(self, stored: Any) -> BinaryIO:
        """A stored source (by its GridFS id, as the run lists it) or resource (by md5)."""
        if isinstance(stored, ObjectId) or (isinstance(stored, str)
                                            and ObjectId.is_valid(stored)):
            try:
                return self._open_file(ObjectId(stored))
            except gridfs.errors.NoFile:
                pass
        found = self.files.find_one({"md5": str(stored)}, projection={"_id": 1})
        if found is None:
            raise StoredFileNotFoundError(f"No stored file {stored!r} in {self.db_name}.")
        return self._open_file(found["_id"])


# --- uploading runs saved in failure_dir ------------------------------------------------------

def upload_failed_runs(failure_dir: str | os.PathLike, url: str | None = None,
                       store: MongoStore | None = None) -> dict[str, Any]:
    """Upload every run a MongoObserver saved in ``failure_dir``; ``{run dir: MongoDB id}``.

    A run already uploaded (its note has ``uploaded_as``) is skipped, so this can be repeated.
    """
    from labbook.stores.file import FileStore

    base = os.path.abspath(os.fspath(failure_dir))
    files = FileStore(base)
    own = store is None
    if store is None:
        store = MongoStore(url)
    done: dict[str, Any] = {}
    try:
        for dump_id in files.run_ids():
            run_dir = os.path.join(base, str(dump_id))
            note_path = os.path.join(run_dir, UPLOAD_NOTE)
            if not os.path.exists(note_path):
                continue
            with open(note_path, encoding="utf-8") as fh:
                note = json.load(fh)
            if note.get("uploaded_as") is not None:
                continue
            done[run_dir] = _upload_one(files, dump_id, note, store)
            note["uploaded_as"] = done[run_dir]
            with open(note_path, "w", encoding="utf-8") as fh:
                json.dump(note, fh, indent=2, default=str)
    finally:
        if own:
            store.close()
    return done


def _upload_one(files: Any, dump_id: int, note: dict, store: MongoStore) -> Any:
    doc = files.get(dump_id)
    run_dir = os.path.join(files.basedir, str(dump_id))
    fields = {k: doc[k] for k in RUN_FIELDS if k in doc and k not in ("artifacts", "resources")}
    run_id = note.get("run_id")
    if run_id is None:
        experiment = dict(doc.get("experiment") or {})
        base_dir = experiment.get("base_dir") or ""
        sources = []
        for relname, stored in experiment.get("sources", []):
            path = os.path.join(files.basedir, stored)
            sources.append([relname, store._store_blob(path, file_md5(path),
                                                       os.path.join(base_dir, relname))])
        experiment["sources"] = sources
        fields.update(experiment=experiment, artifacts=[], resources=[])
        overwrite = note.get("overwrite")
        run_id = store.create_run(fields, overwrite, overwrite=overwrite is not None)
    else:
        # the run exists: bring its changing fields up to date, leave the rest as stored
        progress = ("status", "stop_time", "heartbeat", "result", "fail_trace", "info",
                    "captured_out")
        store.update_run(run_id, {k: fields[k] for k in progress if k in fields})
    history = files.history(dump_id)
    if history:
        store.append_metrics(run_id, history)
    for name in doc.get("artifacts") or []:
        store.put_artifact(run_id, name, os.path.join(run_dir, name))
    for original, stored in doc.get("resources") or []:
        store.put_resource(run_id, os.path.join(files.basedir, stored), recorded_name=original)
    return run_id


def main(argv: list[str] | None = None) -> int:
    """``python -m labbook.stores.mongo upload FAILURE_DIR URL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "upload":
        print("usage: python -m labbook.stores.mongo upload FAILURE_DIR mongodb://host:port/db",
              file=sys.stderr)
        return 2
    try:
        done = upload_failed_runs(args[1], args[2])
    except LabbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for run_dir, run_id in done.items():
        print(f"{run_dir} -> run {run_id}")
    if not done:
        print(f"nothing to upload in {args[1]}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
