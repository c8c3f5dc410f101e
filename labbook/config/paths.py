"""Dotted paths in nested dicts: merge, get, set and iterate.

A dotted path such as ``"optimizer.lr"`` names ``config["optimizer"]["lr"]``. These helpers are
shared by config scopes, resolution and the run, so they accept any mapping but always build
plain dicts.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from labbook.serialize import copy_plain

__all__ = ["join_path", "dict_merge", "iter_paths", "get_path", "has_path", "set_path"]

_RAISE = object()
_MISSING = object()


def join_path(*parts: str | None) -> str:
    """``join_path("a", "b") == "a.b"``; empty parts (an ingredient's or prefix's absence)
    are left out: ``join_path("", None, "lr") == "lr"``."""
    return ".".join(p for p in parts if p)


def dict_merge(base: Mapping, update: Mapping) -> dict:
    """A new dict: ``base`` updated recursively with ``update``.

    Where both sides hold a dict the two are merged (siblings from ``base`` are kept);
    otherwise the value from ``update`` wins. Neither argument is modified, and the result
    shares no dict or list with them.
    """
    merged = copy_plain(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = dict_merge(current, value)
        else:
            merged[key] = copy_plain(value)
    return merged


def iter_paths(d: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted_path, value)`` for every leaf of ``d`` in insertion order.

    An empty dict is a leaf (it is a value someone set, and would vanish otherwise).
    """
    for key, value in d.items():
        path = join_path(prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from iter_paths(value, path)
        else:
            yield path, value


def get_path(d: Mapping, path: str, default: Any = _RAISE) -> Any:
    """The value at dotted ``path`` in ``d`` (``d`` itself for ``""``).

    Raises ``KeyError(path)`` when it does not exist, unless ``default`` is given.
    """
    current: Any = d
    if path:
        for part in path.split("."):
            if not isinstance(current, Mapping) or part not in current:
                if default is _RAISE:
                    raise KeyError(path)
                return default
            current = current[part]
    return current


def has_path(d: Mapping, path: str) -> bool:
    """Whether dotted ``path`` exists in ``d``."""
    return get_path(d, path, _MISSING) is not _MISSING


def set_path(d: dict, path: str, value: Any) -> None:
    """Set dotted ``path`` in ``d`` to ``value``, creating the dicts on the way.

    Raises :class:`~labbook.errors.ConfigError` when a value on the way is not a dict (the
    caller would otherwise silently lose it).
    """
    parts = path.split(".")
    current = d
    for i, part in enumerate(parts[:-1]):
        nxt = current.setdefault(part, {})
        if not isinstance(nxt, dict):
            from labbook.errors import ConfigError

            where = ".".join(parts[: i + 1])
            raise ConfigError(
                f"Cannot set '{path}': '{where}' holds {nxt!r} ({type(nxt).__name__}), "
                "not a dict.", key=path)
        current = nxt
    current[parts[-1]] = value
