"""The one serializer of every store: Python values <-> JSON-compatible values.

- dicts, lists, str, int, bool, None pass through; tuples become lists;
- floats pass through, NaN and +-inf as the strings Sacred's stores use ("NaN", "Infinity",
  "-Infinity") are NOT used: JSON text written by :func:`dumps` keeps them as the JavaScript
  literals ``NaN``/``Infinity`` that Python's json module reads back;
- numpy scalars become Python scalars and numpy arrays nested lists;
- datetimes become ISO-8601 strings in JSON text (Sacred's file format);
- anything else goes through jsonpickle (``{"py/object": ...}``) and is restored on load;
- keys must be strings; :func:`escape_key` / :func:`unescape_key` make ``.`` and a leading
  ``$`` safe for MongoDB.
"""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any

_PLAIN = (str, int, float, bool, type(None))


def flatten(value: Any) -> Any:
    """Turn ``value`` into plain JSON-compatible data (jsonpickle for unknown objects)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: flatten(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [flatten(v) for v in value]
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    module = type(value).__module__
    if module == "numpy":
        tolist = getattr(value, "tolist", None)
        if tolist is not None:
            return flatten(tolist())
    import jsonpickle

    return jsonpickle.Pickler(unpicklable=True, keys=False).flatten(value)


def restore(value: Any) -> Any:
    """Inverse of :func:`flatten` for values that went through jsonpickle."""
    if isinstance(value, dict):
        if any(k.startswith("py/") for k in value):
            import jsonpickle

            return jsonpickle.Unpickler().restore(value, reset=True)
        return {k: restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore(v) for v in value]
    return value


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    return flatten(obj)


def dumps(value: Any, indent: int | None = 2) -> str:
    """JSON text of ``value`` (sorted keys, datetimes as ISO strings, NaN/inf kept)."""
    return json.dumps(value, default=_default, indent=indent, sort_keys=True,
                      allow_nan=True, ensure_ascii=False)


def loads(text: str) -> Any:
    return json.loads(text)


def escape_key(key: str) -> str:
    """Make a key storable in MongoDB (no ``.``, no leading ``$``); reversible."""
    key = key.replace("\\", "\\\\").replace(".", "\\u002e")
    if key.startswith("$"):
        key = "\\u0024" + key[1:]
    return key


def unescape_key(key: str) -> str:
    if key.startswith("\\u0024"):
        key = "$" + key[6:]
    return key.replace("\\u002e", ".").replace("\\\\", "\\")


def escape_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {escape_key(k): escape_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_keys(v) for v in value]
    return value


def unescape_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {unescape_key(k): unescape_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape_keys(v) for v in value]
    return value


def parse_time(value: Any) -> _dt.datetime | None:
    """A datetime from an ISO string (or a datetime), None for None."""
    if value is None or isinstance(value, _dt.datetime):
        return value
    return _dt.datetime.fromisoformat(value)
