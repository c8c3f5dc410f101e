"""Mongo-style filters over run documents, parsed once into a small AST.

Supported: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $and $or $nor $not $all $size``
on dotted field paths (``config.lr``, ``meta.tags``). Arrays match an operand when any element
does (MongoDB's rule). An invalid filter raises :class:`QueryError` naming the operator and path.
On the time fields (``start_time``, ``stop_time``, ``heartbeat``, ``queue_time``) an ISO text
operand (or ``YYYY`` / ``YYYY-MM``: the first day) stands for the naive UTC datetime it names:
``{"start_time": {"$gte": "2024-03-01"}}``; a text that is no time there is a QueryError.

wandb's spellings are aliases with wandb's meaning (:func:`canonical_path`), in filters and
orders: ``summary_metrics.X`` is ``summary.X``, ``created_at`` is ``start_time``, ``state`` is
``status`` (with wandb's lowercase states: ``finished`` is COMPLETED, ``crashed`` DIED, ...),
and ``config.X.value`` is ``config.X``.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Callable, Collection

from labbook import clock
from labbook.errors import QueryError

__all__ = ["COMPARISONS", "Cond", "Logical", "Not", "parse", "TIME_PATHS", "lookup", "evaluate",
           "matches", "sort_runs", "DERIVED_FIELDS", "DEFAULT_BEAT_INTERVAL", "MIN_SILENCE",
           "UNRECORDED_SILENCE", "DIED_SENSITIVE", "run_name", "run_tags", "run_notes",
           "recorded_beat_interval", "beat_interval", "silence_limit", "as_time",
           "reported_status", "summary_of", "query_view", "node_paths", "heads", "evaluate_run",
           "WANDB_STATES", "canonical_path", "canonical_order"]

_MISSING = object()
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex",
               "$not", "$all", "$size", "$options")


@dataclass(frozen=True)
class Cond:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Logical:
    op: str  # "$and", "$or", "$nor"
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: Any


def parse(filter: dict | None) -> Any:
    """Parse a filter dict into the AST (``Logical("$and", ())`` matches everything)."""
    if filter is None:
        return Logical("$and", ())
    if not isinstance(filter, dict):
        raise QueryError(f"A filter must be a dict, got {type(filter).__name__}.")
    parts = []
    for key, value in filter.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise QueryError(f"{key} takes a non-empty list of filters, got {value!r}.")
            parts.append(Logical(key, tuple(parse(v) for v in value)))
        elif key.startswith("$"):
            raise QueryError(f"Unknown top-level operator '{key}'; use $and, $or or $nor, or a "
                             "field path like 'config.lr'.")
        else:
            parts.extend(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else Logical("$and", tuple(parts))


#: run fields holding times (naive UTC datetimes in every store)
TIME_PATHS = ("start_time", "stop_time", "heartbeat", "queue_time")


def _time_operand(path: str, value: Any) -> Any:
    """An ISO text operand on a time field as the naive UTC datetime it names (a text never
    equals or orders against a stored time, so this only gives text filters a meaning)."""
    if isinstance(value, list):
        return [_time_operand(path, v) for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        text = (text + "-01-01")[:10]  # a year, or a year and month: its first day
    try:
        return clock.to_utc(text)
    except ValueError:
        raise QueryError(f"'{path}' holds times: {value!r} is not an ISO date or time like "
                         "'2024-03-01 09:30'.") from None


#: ``$options`` letters and the Python flags that give them MongoDB's meaning
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path or "" in path.split("."):
        raise QueryError(f"Invalid field path {path!r}: use dotted names like 'config.lr'.")


def _regex(path: str, pattern: Any, options: Any = "") -> re.Pattern:
    if not isinstance(options, str) or any(c not in _REGEX_FLAGS for c in options):
        raise QueryError(f"$options on '{path}' takes letters of 'imsx', got {options!r}.")
    flags = 0
    for letter in options:
        flags |= _REGEX_FLAGS[letter]
    if isinstance(pattern, re.Pattern):
        if not flags:
            return pattern
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise QueryError(f"$regex on '{path}' takes a string, got {pattern!r}.")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise QueryError(f"Invalid $regex on '{path}': {exc}.") from None


#: wandb's run states and the statuses that mean the same
WANDB_STATES = {"running": "RUNNING", "finished": "COMPLETED", "crashed": "DIED",
                "failed": "FAILED", "killed": "INTERRUPTED", "pending": "QUEUED"}
_WANDB_HEADS = {"summary_metrics": "summary", "created_at": "start_time", "state": "status"}
#: fields recorded in ``meta`` that filters and orders name directly (``start_run(group=...,
#: parent=..., variant=...)``, ``--group``)
_META_HEADS = ("group", "parent", "variant")


def canonical_path(path: str) -> str:
    """A field path with wandb's spellings replaced by the query model's (``summary_metrics.loss``
    -> ``summary.loss``, ``created_at`` -> ``start_time``, ``state`` -> ``status``,
    ``config.lr.value`` -> ``config.lr``), and ``group`` / ``parent`` as ``meta.group`` /
    ``meta.parent``."""
    head, dot, rest = path.partition(".")
    if head in _WANDB_HEADS and (dot or head != "summary_metrics"):
        return _WANDB_HEADS[head] + dot + rest
    if head in _META_HEADS:
        return "meta." + path
    if head == "config" and rest.endswith(".value") and len(rest) > 6:
        return "config." + rest[:-6]  # wandb wraps each config entry as {"value": ...}
    return path


def canonical_order(order: str | None) -> str | None:
    """An order (``-created_at``, ``+summary_metrics.loss``) with :func:`canonical_path`."""
    if not order:
        return order
    sign = order[0] if order[0] in "+-" else ""
    return sign + canonical_path(order[len(sign):])


def _wandb_state(value: Any) -> Any:
    """wandb's lowercase states as statuses (in operands of ``state``)."""
    if isinstance(value, list):
        return [_wandb_state(v) for v in value]
    if isinstance(value, dict):
        return {k: _wandb_state(v) if k in ("$eq", "$ne", "$in", "$nin") else v
                for k, v in value.items()}
    return WANDB_STATES.get(value, value) if isinstance(value, str) else value


def _parse_field(path: str, spec: Any) -> list:
    _check_path(path)
    if path == "state":
        spec = _wandb_state(spec)
    path = canonical_path(path)
    if isinstance(spec, dict) and any(isinstance(k, str) and k.startswith("$") for k in spec):
        fields = [k for k in spec if not (isinstance(k, str) and k.startswith("$"))]
        if fields:
            operators = [k for k in spec if k not in fields]
            raise QueryError(f"'{path}' mixes operators ({', '.join(operators)}) and field "
                             f"names ({', '.join(map(str, fields))}); to match a sub-document "
                             "exactly use {'$eq': {...}}.")
    if not (isinstance(spec, dict) and spec and all(k.startswith("$") for k in spec)):
        return [Cond(path, "$eq", _time_operand(path, spec) if path in TIME_PATHS else spec)]
    out = []
    for op, operand in spec.items():
        if op not in COMPARISONS:
            raise QueryError(f"Unknown operator '{op}' on '{path}'. Known: "
                             + ", ".join(o for o in COMPARISONS if o != "$options") + ".")
        if op == "$options":
            if "$regex" not in spec:
                raise QueryError(f"$options on '{path}' needs a $regex next to it.")
            continue
        if op in ("$in", "$nin", "$all") and not isinstance(operand, list):
            raise QueryError(f"{op} on '{path}' takes a list, got {operand!r}.")
        if op == "$size" and (not isinstance(operand, int) or isinstance(operand, bool)
                              or operand < 0):
            raise QueryError(f"$size on '{path}' takes an integer >= 0, got {operand!r}.")
        if op == "$exists" and not isinstance(operand, bool | int):
            raise QueryError(f"$exists on '{path}' takes true or false, got {operand!r}.")
        if op == "$regex":
            operand = _regex(path, operand, spec.get("$options", ""))
        elif path in TIME_PATHS and op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in",
                                           "$nin"):
            operand = _time_operand(path, operand)
        if op == "$not":
            if isinstance(operand, dict) and operand:
                sub = _parse_field(path, operand)
                if len(sub) == 1 and isinstance(sub[0], Cond) and sub[0].op == "$eq":
                    raise QueryError(f"$not on '{path}' takes operators like {{'$gt': 1}}, "
                                     f"got {operand!r}.")
            elif isinstance(operand, str | re.Pattern):
                sub = [Cond(path, "$regex", _regex(path, operand))]
            else:
                raise QueryError(f"$not on '{path}' takes operators like {{'$gt': 1}} or a "
                                 f"pattern, got {operand!r}.")
            out.append(Not(sub[0] if len(sub) == 1 else Logical("$and", tuple(sub))))
            continue
        out.append(Cond(path, op, operand))
    return out


def lookup(doc: Any, path: str) -> Any:
    if path.startswith("summary.") and isinstance(doc, dict):
        # summary.<metric name>: a metric's name may hold dots (train.loss)
        summary = doc.get("summary")
        if isinstance(summary, dict) and path[8:] in summary:
            return summary[path[8:]]
    value = doc
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _cmp(a: Any, b: Any, op: Callable[[Any, Any], bool]) -> bool:
    try:
        return bool(op(a, b))
    except TypeError:
        return False


def _scalar_match(value: Any, cond: Cond) -> bool:
    op, operand = cond.op, cond.value
    if op == "$eq":
        return value == operand
    if op == "$gt":
        return value is not None and _cmp(value, operand, lambda a, b: a > b)
    if op == "$gte":
        return value is not None and _cmp(value, operand, lambda a, b: a >= b)
    if op == "$lt":
        return value is not None and _cmp(value, operand, lambda a, b: a < b)
    if op == "$lte":
        return value is not None and _cmp(value, operand, lambda a, b: a <= b)
    if op == "$in":
        return any(value == o for o in operand)
    if op == "$regex":
        return isinstance(value, str) and operand.search(value) is not None
    raise AssertionError(op)


def _match_cond(doc: dict, cond: Cond) -> bool:
    value = lookup(doc, cond.path)
    op = cond.op
    if op == "$exists":
        return (value is not _MISSING) == bool(cond.value)
    if op == "$ne":
        return not _match_cond(doc, Cond(cond.path, "$eq", cond.value))
    if op == "$nin":
        return not _match_cond(doc, Cond(cond.path, "$in", cond.value))
    if value is _MISSING:
        return op == "$eq" and cond.value is None
    if op == "$size":
        return isinstance(value, list) and len(value) == cond.value
    if op == "$all":
        return isinstance(value, list) and all(v in value for v in cond.value)
    if isinstance(value, list):
        if _scalar_match(value, cond):
            return True
        return any(_scalar_match(v, cond) for v in value)
    return _scalar_match(value, cond)


def evaluate(node: Any, doc: dict) -> bool:
    if isinstance(node, Cond):
        return _match_cond(doc, node)
    if isinstance(node, Not):
        return not evaluate(node.part, doc)
    if node.op == "$and":
        return all(evaluate(p, doc) for p in node.parts)
    if node.op == "$or":
        return any(evaluate(p, doc) for p in node.parts)
    return not any(evaluate(p, doc) for p in node.parts)


def matches(filter: dict | Any, doc: dict) -> bool:
    node = filter if isinstance(filter, Cond | Logical | Not) else parse(filter)
    return evaluate(node, doc)


def sort_runs(runs: list, order: str, view: Callable[[Any], dict] | None = None) -> list:
    """Sort by a field path with an optional ``+``/``-`` prefix: numbers (booleans among
    them), then other values by their text; missing, None and NaN last, in either direction.
    ``view`` gives the dict to look the path up in, for items that are not run documents
    themselves (``(document, query view)`` pairs)."""
    descending = order.startswith("-")
    path = order.lstrip("+-")

    def key(run: Any):
        value = lookup(view(run) if view is not None else run, path)
        # NaN is ordered with the missing values: it compares with no number, so sorting
        # among numbers would depend on the order the store happened to return the runs in
        if value is _MISSING or value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, bool | int | float):
            return (0, value)
        return (1, str(value))

    keyed = [(key(r), r) for r in runs]  # each key once
    present = [item for item in keyed if item[0] is not None]
    present.sort(key=_first, reverse=descending)  # stable, as list.sort keeps ties in order
    return [r for _, r in present] + [r for k, r in keyed if k is None]


def _first(item: tuple) -> Any:
    return item[0]


# -- the query model: the run as filters and orders see it -------------------------------------
#: fields that filters and orders may name besides the document's own. Every store derives them
#: the same way (here), so a filter means the same on every store:
#:
#: - ``name``: ``meta.name`` (``--name``), else the experiment's name;
#: - ``tags``: ``meta.tags``, Omniboard's ``omniboard.tags``, then the keys of ``info.tags``
#:   (``_run.set_tag``), as strings;
#: - ``notes``: Omniboard's ``omniboard.notes``, else ``meta.notes``, else Sacred's
#:   ``meta.comment``;
#: - ``summary``: each metric's last logged value, overridden by ``info.summary``; in a path,
#:   what follows ``summary.`` is a metric name, dots included (``summary.train.loss``);
#: - ``status`` is the one reported: DIED for a RUNNING run whose heartbeat stopped.
DERIVED_FIELDS = ("name", "tags", "notes", "summary")

#: a run's heartbeat interval when it recorded none (seconds)
DEFAULT_BEAT_INTERVAL = 10.0
#: a RUNNING run that recorded its beat interval is reported as DIED once silent for longer
#: than max(3 beats, this many seconds)
MIN_SILENCE = 5.0
#: ... and one that recorded none (written by Sacred, or with heartbeats off) after this long
UNRECORDED_SILENCE = 60.0
#: statuses whose conditions change when a stored RUNNING is reported as DIED
DIED_SENSITIVE = frozenset({"RUNNING", "DIED"})


def _meta(doc: dict) -> dict:
    meta = doc.get("meta")
    return meta if isinstance(meta, dict) else {}


def _info(doc: dict) -> dict:
    info = doc.get("info")
    return info if isinstance(info, dict) else {}


def run_name(doc: dict) -> Any:
    experiment = doc.get("experiment")
    return _meta(doc).get("name") or (experiment.get("name") if isinstance(experiment, dict)
                                      else None)


def _omniboard(doc: dict) -> dict:
    omniboard = doc.get("omniboard")
    return omniboard if isinstance(omniboard, dict) else {}


def run_tags(doc: dict) -> list[str]:
    tags: list[str] = []
    for listed in (_meta(doc).get("tags"), _omniboard(doc).get("tags")):
        for tag in listed if isinstance(listed, list) else []:
            if str(tag) not in tags:
                tags.append(str(tag))
    valued = _info(doc).get("tags")
    # sorted: some stores keep info's keys sorted, others in insertion order
    for key in sorted(str(k) for k in (valued if isinstance(valued, dict) else {})):
        if key not in tags:
            tags.append(key)
    return tags


def run_notes(doc: dict) -> Any:
    # Omniboard's notes (written there, or by labbook on MongoDB), else labbook's, else
    # Sacred's --comment, which Omniboard shows as the notes too
    omniboard, meta = _omniboard(doc), _meta(doc)
    if "notes" in omniboard:
        return omniboard["notes"]
    return meta.get("notes", meta.get("comment"))


def recorded_beat_interval(doc: dict) -> float | None:
    """The heartbeat interval the run recorded (``meta.beat_interval``, written at start, else
    its ``--beat_interval`` option); None when it recorded none, or no positive one."""
    meta = _meta(doc)
    options = meta.get("options")
    options = options if isinstance(options, dict) else {}
    for value in (meta.get("beat_interval"), options.get("--beat_interval"),
                  options.get("--beat-interval")):
        if value is None or isinstance(value, bool):
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        return seconds if seconds > 0 and seconds == seconds else None
    return None


def beat_interval(doc: dict) -> float:
    recorded = recorded_beat_interval(doc)
    return DEFAULT_BEAT_INTERVAL if recorded is None else recorded


def silence_limit(doc: dict) -> float:
    """Seconds without a heartbeat after which a RUNNING run is reported as DIED."""
    recorded = recorded_beat_interval(doc)
    if recorded is None:
        return max(3 * DEFAULT_BEAT_INTERVAL, UNRECORDED_SILENCE)
    return max(3 * recorded, MIN_SILENCE)


def as_time(value: Any) -> _dt.datetime | None:
    """A naive UTC datetime from what a store returns (a datetime, ISO text), else None."""
    if not isinstance(value, str | _dt.datetime):
        return None
    try:
        return clock.to_utc(value)
    except ValueError:
        return None


def reported_status(doc: dict, now: _dt.datetime | None = None) -> Any:
    """The stored status, but DIED for a RUNNING run whose last heartbeat (its start before
    the first) is older than :func:`silence_limit`: max(3 of its recorded heartbeat
    intervals, :data:`MIN_SILENCE`), or :data:`UNRECORDED_SILENCE` when it recorded none."""
    status = doc.get("status")
    if status != "RUNNING":
        return status
    last = as_time(doc.get("heartbeat")) or as_time(doc.get("start_time"))
    if last is None:
        return status
    silence = ((now or clock.utcnow()) - last).total_seconds()
    return "DIED" if silence > silence_limit(doc) else status


def summary_of(doc: dict, last: dict | None) -> dict:
    """Each metric's last value (``last``, sorted by name) overridden by ``info.summary``."""
    summary = dict(sorted((last or {}).items()))
    overrides = _info(doc).get("summary")
    if isinstance(overrides, dict):
        summary.update(overrides)
    return summary


def query_view(doc: dict, last: dict | None = None, now: _dt.datetime | None = None,
               fields: Collection[str] | None = None) -> dict:
    """``doc`` as filters and orders see it: with the derived fields and the reported status
    (``last``: the run's last metric values, needed only for ``summary``). ``fields``: the
    top-level fields that will be looked at (:func:`heads`); the derived ones outside it are
    not computed, and without any to compute the view is ``doc`` itself (to be read only)."""
    if fields is None:
        return dict(doc, name=run_name(doc), tags=run_tags(doc), notes=run_notes(doc),
                    summary=summary_of(doc, last), status=reported_status(doc, now))
    derived = {}
    if "name" in fields:
        derived["name"] = run_name(doc)
    if "tags" in fields:
        derived["tags"] = run_tags(doc)
    if "notes" in fields:
        derived["notes"] = run_notes(doc)
    if "summary" in fields:  # (unsorted: only looked up)
        summary = dict(last) if last else {}
        overrides = _info(doc).get("summary")
        if isinstance(overrides, dict):
            summary.update(overrides)
        derived["summary"] = summary
    if "status" in fields:
        derived["status"] = reported_status(doc, now)
    return dict(doc, **derived) if derived else doc


def node_paths(node: Any) -> set[str]:
    """Every field path a parsed filter looks at."""
    if isinstance(node, Cond):
        return {node.path}
    if isinstance(node, Not):
        return node_paths(node.part)
    return set().union(*(node_paths(p) for p in node.parts)) if node.parts else set()


def heads(node: Any, order: str | None = None) -> set[str]:
    """The top-level fields a filter and an order look at."""
    out = {p.split(".", 1)[0] for p in node_paths(node)}
    if order:
        out.add(order.lstrip("+-").split(".", 1)[0])
    return out


def evaluate_run(node: Any, doc: dict, last: dict | None = None,
                 now: _dt.datetime | None = None) -> bool:
    """Whether the stored run ``doc`` matches the parsed filter, derived fields included."""
    return evaluate(node, query_view(doc, last, now))
