"""The configuration as text: ``key = value`` lines with their doc comments, coloured by what
the updates changed. Shared by the ``print_config`` command, ``-p/--print-config`` and
``labbook show`` (which reads stored runs, so this module needs nothing of the run machinery)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from labbook.serialize import copy_plain

if TYPE_CHECKING:
    from labbook.config.summary import ConfigSummary

__all__ = ["SEED_DOC", "format_config"]

SEED_DOC = "the random seed for this experiment"
_COLOURS = {"added": "\033[32m", "modified": "\033[34m", "typechanged": "\033[31m",
            "doc": "\033[2m"}
_RESET = "\033[0m"
_LEGEND = ("modified", "added", "typechanged")


def _paint(text: str, kind: str | None, colour: bool) -> str:
    if not colour or kind is None:
        return text
    return f"{_COLOURS[kind]}{text}{_RESET}"


def format_config(config: dict, summary: ConfigSummary | None = None,
                  colour: bool | None = None) -> str:
    """The config as ``key = value`` lines with their doc comments.

    Entries the updates added, modified or changed the type of are coloured when ``colour``
    (by default: when stdout is a terminal) and marked ``(added)`` etc. otherwise. Doc
    comments start where Sacred's do: two spaces after an entry padded to 35 characters.
    """
    if colour is None:
        colour = _isatty(sys.stdout)
    docs = dict(getattr(summary, "docs", {}) or {})
    docs.setdefault("seed", SEED_DOC)
    legend = ", ".join(_paint(k, k, colour) for k in _LEGEND)
    header = f"Configuration ({legend}, {_paint('doc', 'doc', colour)}):"
    entries: list[tuple[str, str, str | None]] = []
    _collect(config, "", 1, summary, entries)
    lines = [header]
    for text, path, kind in entries:
        line = text if colour or kind is None else f"{text} ({kind})"
        doc = docs.get(path)
        if doc:  # Sacred's column: two spaces after 35 characters, four after a longer entry
            comment = _paint(f"# {doc}", "doc", colour)
            line = f"{line:<35}  {comment}" if len(line) <= 35 else f"{line}    {comment}"
        lines.append(_paint(line, kind, colour))
    return "\n".join(lines)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _collect(value: dict, prefix: str, depth: int, summary: ConfigSummary | None,
             out: list) -> None:
    indent = "  " * depth
    # Sacred's order: the plain values first, then the (non-empty) dicts, each by key
    for key in sorted(value, key=lambda k: (isinstance(value[k], dict) and bool(value[k]),
                                            str(k))):
        item = value[key]
        path = f"{prefix}.{key}" if prefix else str(key)
        kind = summary.status_of(path) if summary is not None else None
        if isinstance(item, dict) and item:
            out.append((f"{indent}{key}:", path, kind))
            _collect(item, path, depth + 1, summary, out)
        else:
            out.append((f"{indent}{key} = {_plain_repr(item)}", path, kind))


def _plain_repr(value: Any) -> str:
    # the run's config is frozen (read-only containers); show it as plain dicts and lists
    return repr(copy_plain(value))
