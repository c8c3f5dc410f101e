"""The one codec of values: Python values <-> JSON-compatible values, for every store, config
file and journal.

- dicts, lists, str, int, bool, None pass through; tuples become lists;
- numpy scalars become Python scalars and numpy arrays nested lists;
- datetimes become ISO-8601 strings in JSON text (Sacred's file format);
- anything else goes through jsonpickle (``{"py/object": ...}``, with ``keys=True`` so dicts
  with non-string keys inside objects survive) and is restored on load (:func:`restore`);
- floats pass through. JSON text written by :func:`dumps` keeps NaN and +-inf as the
  JavaScript literals ``NaN``/``Infinity`` that Python's json module reads back (Sacred's file
  format); where the reader is stricter (SQL JSON columns) :func:`dumps_strict` tags them
  ``{"$float": "NaN"}`` and :func:`loads_strict` reads the tags back, as it reads
  ``{"$time": ISO}`` (journals) back as datetimes; a user's one-key dict of such a shape is
  written as ``{"$esc": [key, value]}`` so that it reads back as itself;
- keys must be strings; :func:`escape_key` / :func:`unescape_key` make ``.``, a leading
  ``$`` and NUL safe for MongoDB;
- :func:`copy_plain` copies JSON-like data: every dict and list, leaves shared;
- :func:`gc_paused` keeps the cyclic garbage collector out of a bulk parse (JSON text holds no
  cycles, and each collection it triggers would walk every object of the process).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Iterator

from labbook.clock import to_utc

__all__ = ["flatten", "pickle_object", "restore", "copy_plain", "dumps", "dumps_pretty",
           "iter_pretty", "loads", "escape_key", "unescape_key", "escape_keys", "unescape_keys",
           "tag_special", "untag_special", "dumps_strict", "loads_strict", "unencodable",
           "utf8_safe", "gc_paused"]

_PLAIN = (str, int, float, bool, type(None))


def flatten(value: Any, exact: bool = False) -> Any:
    """Turn ``value`` into plain JSON-compatible data (jsonpickle for unknown objects).

    What stores keep is plain where it can be: tuples become lists, numpy values numbers and
    lists, keys strings. With ``exact`` (config files, which must load back as they were
    saved), only dicts with string keys, lists and exact str/int/float/bool/None stay plain;
    everything else keeps its type through jsonpickle's tags.
    """
    if exact:
        return _flatten_exact(value)
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
    return pickle_object(value)


def _flatten_exact(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _flatten_exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_flatten_exact(v) for v in value]
    # each value gets its own Pickler, so its references (py/id) stay self-contained
    return pickle_object(value)


def pickle_object(value: Any) -> Any:
    """jsonpickle's tagged form of ``value`` (``{"py/object": ...}``)."""
    import jsonpickle

    return jsonpickle.Pickler(unpicklable=True, keys=True).flatten(value, reset=True)


def restore(value: Any) -> Any:
    """Inverse of :func:`flatten` for values that went through jsonpickle. Only dicts carrying
    a ``py/`` key reach jsonpickle, so plain data stays untouched and jsonpickle is not even
    imported for it."""
    if isinstance(value, dict):
        if any(isinstance(k, str) and k.startswith("py/") for k in value):
            import jsonpickle

            return jsonpickle.Unpickler(keys=True).restore(value, reset=True)
        return {k: restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore(v) for v in value]
    return value


def copy_plain(value: Any) -> Any:
    """A copy of JSON-like data in which every mapping is a new dict and every list a new
    list; other values (config leaves may be objects that refuse ``deepcopy``) are shared, so
    editing the copy never changes the original. Read-only config containers come out as
    plain, mutable dicts and lists."""
    kind = type(value)
    if kind in _LEAVES:  # most config values: no isinstance check against the Mapping ABC
        return value
    if isinstance(value, dict) or isinstance(value, Mapping):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_plain(v) for v in value]
    return value


#: values copy_plain shares as they are
_LEAVES = frozenset({str, int, float, bool, type(None)})


_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # pauses in progress; whether the collector was on before the first


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the block runs (reference counting still frees
    what it can), as it was afterwards. For bulk parses of JSON text: each of the tens of
    thousands of containers they make counts towards the next collection, and collections
    of the older generations walk every object the process holds (pandas alone brings
    hundreds of thousands), so they cost more than the parse itself. Pauses may nest and
    overlap across threads: the last one to end turns the collector back on."""
    with _gc_lock:
        if not _gc_pauses[0]:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if not _gc_pauses[0] and _gc_pauses[1]:
                gc.enable()


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    return flatten(obj)


def dumps(value: Any, indent: int | None = 2) -> str:
    """JSON text of ``value`` (sorted keys, datetimes as ISO strings, NaN/inf kept)."""
    import json  # here, not at the top: `import labbook` stays without json

    return json.dumps(value, default=_default, indent=indent, sort_keys=True,
                      allow_nan=True, ensure_ascii=False)


def dumps_pretty(value: Any) -> str:
    """Exactly ``json.dumps(value, indent=2, sort_keys=True)`` (non-ASCII as ``\\u`` escapes,
    Sacred's file format), but with lists of scalars written by the C encoder.

    With ``indent`` set, the json module falls back to its pure-Python encoder: twice the time
    for the 10^6 points of one metric. Here dicts are walked in Python (they are small) and
    every list without containers in it is one C-encoder call whose item separator carries
    the newline and the indentation, so the bytes are the same in about half the time.
    """
    return "".join(iter_pretty(value))


def iter_pretty(value: Any) -> Iterator[str]:
    """:func:`dumps_pretty` in pieces, to write a large document without joining it first."""
    yield from _pretty(value, "\n")


def _pretty(value: Any, newline: str) -> Iterator[str]:
    import json  # here, not at the top: `import labbook` stays without json

    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        if all(isinstance(k, str) for k in value):  # other keys: the json module's rules
            inner = newline + "  "
            for i, key in enumerate(sorted(value)):
                yield ("{" if i == 0 else ",") + inner + json.dumps(key) + ": "
                yield from _pretty(value[key], inner)
            yield newline + "}"
            return
    elif isinstance(value, list | tuple):
        if not value:
            yield "[]"
            return
        inner = newline + "  "
        if not any(issubclass(t, dict | list | tuple) for t in set(map(type, value))):
            try:
                text = json.dumps(value, default=_scalar_default, allow_nan=True,
                                  separators=("," + inner, ": "))
            except _NotFlat:
                pass
            else:
                yield "[" + inner
                yield text[1:-1]
                yield newline + "]"
                return
        for i, item in enumerate(value):
            yield ("[" if i == 0 else ",") + inner
            yield from _pretty(item, inner)
        yield newline + "]"
        return
    # scalars, odd keys, values the default turns into containers: the json module itself
    yield json.dumps(value, default=flatten, indent=2, sort_keys=True,
                     allow_nan=True).replace("\n", newline)


def _scalar_default(obj: Any) -> Any:
    out = flatten(obj)
    if isinstance(out, dict | list):
        # a container in a "flat" list: let the caller's fallback lay it out with newlines
        raise _NotFlat
    return out


class _NotFlat(Exception):
    pass


def loads(text: str) -> Any:
    import json  # here, not at the top: `import labbook` stays without json

    return json.loads(text)


def escape_key(key: str) -> str:
    """Make a key storable in MongoDB (no ``.``, no leading ``$``, no NUL); reversible."""
    key = key.replace("\\", "\\\\").replace(".", "\\u002e")
    if key.startswith("$"):
        key = "\\u0024" + key[1:]
    if "\x00" in key:  # BSON keys are NUL-terminated C strings
        key = key.replace("\x00", "\\u0000")
    return key


_ESCAPES = {"\\\\": "\\", "\\u002e": ".", "\\u0024": "$", "\\u0000": "\x00"}
_ESCAPED = re.compile(r"\\\\|\\u002e|\\u0024|\\u0000")


def unescape_key(key: str) -> str:
    """Inverse of :func:`escape_key`: one left-to-right pass, so an escaped backslash before
    a literal ``u002e`` stays a backslash."""
    if "\\" not in key:
        return key
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group(0)], key)


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


# -- strict JSON: no NaN literals; tagged non-finite floats and times ---------------------------

_TAGGED_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: one-key dicts the reader turns into values; a user's dict of that shape is written as
#: ``{"$esc": [key, value]}`` so that it reads back as itself
_TAG_KEYS = frozenset({"$float", "$time", "$esc"})


def tag_special(value: Any, times: bool = False) -> Any:
    """``value`` with non-finite floats as ``{"$float": "NaN"}`` and, with ``times``,
    datetimes as ``{"$time": ISO}``; other objects as :func:`flatten` gives them."""
    if isinstance(value, float):  # numpy's float64 too: a subclass, whose repr differs
        if math.isfinite(value):
            return value
        tag = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        return {"$float": tag}
    if isinstance(value, dict):
        out = {k: tag_special(v, times) for k, v in value.items()}
        if len(out) == 1:
            (key, item), = out.items()
            if key in _TAG_KEYS:
                return {"$esc": [key, item]}
        return out
    if isinstance(value, list | tuple):
        return [tag_special(v, times) for v in value]
    if times and isinstance(value, _dt.datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, _PLAIN):
        return value
    return tag_special(flatten(value), times)


def untag_special(obj: dict) -> Any:
    """The ``object_hook`` reading :func:`tag_special`'s tags back."""
    if len(obj) == 1:
        (key, value), = obj.items()
        if key == "$float" and isinstance(value, str) and value in _TAGGED_FLOATS:
            return _TAGGED_FLOATS[value]
        if key == "$time" and isinstance(value, str):
            return to_utc(value)
        if key == "$esc" and isinstance(value, list) and len(value) == 2 \
                and isinstance(value[0], str):
            return {value[0]: value[1]}
    return obj


_SURROGATE = re.compile("[\ud800-\udfff]")


def unencodable(text: str) -> int | None:
    """Index of the first character UTF-8 cannot encode (a lone surrogate, as Python makes
    of bytes that are not UTF-8 in file names, arguments and environment), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def utf8_safe(text: str, backslash: str = "\\") -> str:
    """``text`` with each lone surrogate written as its escape ``\\udcff``: the text then
    encodes as UTF-8 for a database, and nothing is lost. ``backslash`` is how the escape's
    backslash is written (doubled inside JSON text)."""
    if unencodable(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"{backslash}u{ord(m.group()):04x}", text)


def _json_utf8_safe(text: str) -> str:
    return utf8_safe(text, "\\\\")


def dumps_strict(value: Any, times: bool = False) -> str:
    """JSON text without NaN/Infinity literals (strict readers such as SQL JSON columns):
    non-finite floats tagged, and datetimes too with ``times`` (else ISO strings)."""
    import json  # here, not at the top: `import labbook` stays without json

    if times:
        return _json_utf8_safe(json.dumps(tag_special(value, times=True), allow_nan=False,
                                          ensure_ascii=False))
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, default=flatten)
    except ValueError:
        pass  # the rare document with a non-finite float pays for a second pass
    else:
        if '"$' not in text or not any(f'"{key}"' in text for key in _TAG_KEYS):
            return _json_utf8_safe(text)
        # ... and so does one with a key that could be read as a tag
    return _json_utf8_safe(json.dumps(tag_special(value), allow_nan=False, ensure_ascii=False,
                                      default=flatten))


def loads_strict(text: str | bytes) -> Any:
    """Inverse of :func:`dumps_strict`."""
    import json  # here, not at the top: `import labbook` stays without json

    return json.loads(text, object_hook=untag_special)
