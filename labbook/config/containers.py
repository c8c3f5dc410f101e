"""Read-only containers that hand the resolved configuration to running code.

They *are* dicts and lists (``isinstance(cfg, dict)`` holds, ``json.dumps`` works), so third-party
code accepts them. Every mutating method raises :class:`~labbook.errors.ReadOnlyConfigError`
naming the full key path. Unlike read-only containers that only override the mutators, they
pickle (and so travel through multiprocessing, ray or joblib) by reducing to their plain
contents, and ``copy.copy`` / ``copy.deepcopy`` give a plain, mutable copy to edit.
"""
from __future__ import annotations

from typing import Any

from labbook.serialize import copy_plain

__all__ = ["freeze", "thaw", "ReadOnlyDict", "ReadOnlyList"]


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def freeze(value: Any, path: str = "") -> Any:
    """Return ``value`` with every dict and list (recursively) made read-only."""
    if isinstance(value, ReadOnlyDict | ReadOnlyList):
        return value
    if isinstance(value, dict):
        return ReadOnlyDict(value, path)
    if isinstance(value, list | tuple):
        return ReadOnlyList(value, path)
    return value


#: a plain, mutable copy of a (possibly frozen) config value
thaw = copy_plain

#: the values :func:`freeze` replaces (read-only ones are kept as they are)
_CONTAINERS = (dict, list, tuple)


class ReadOnlyDict(dict):
    """A dict that refuses mutation; nested values are read-only too."""

    __slots__ = ("_path",)

    def __init__(self, data: dict | None = None, path: str = ""):
        self._path = path
        dict.__init__(self)
        for key, value in (data or {}).items():
            if isinstance(value, _CONTAINERS):  # a leaf needs no path: only containers keep one
                value = freeze(value, _join(path, key))
            dict.__setitem__(self, key, value)

    def _refuse(self, key: Any = None, action: str = "change") -> None:
        from labbook.errors import ReadOnlyConfigError

        where = _join(self._path, key) if key is not None else (self._path or "the config")
        raise ReadOnlyConfigError(where, action)

    def __setitem__(self, key, value):
        self._refuse(key, "set")

    def __delitem__(self, key):
        self._refuse(key, "delete")

    def update(self, *args, **kwargs):
        keys = list(dict(*args, **kwargs))
        self._refuse(keys[0] if len(keys) == 1 else None, "update")

    def setdefault(self, key, default=None):
        if key in self:
            return self[key]
        self._refuse(key, "set")

    def pop(self, key, *default):
        self._refuse(key, "pop")

    def popitem(self):
        self._refuse(None, "pop an item from")

    def clear(self):
        self._refuse(None, "clear")

    def __ior__(self, other):
        self._refuse(None, "update")

    def __reduce__(self):
        return (_rebuild_dict, (thaw(self), self._path))

    def __copy__(self):
        return {k: v for k, v in self.items()}

    def __deepcopy__(self, memo):
        return thaw(self)

    def __repr__(self):
        return dict.__repr__(self)


class ReadOnlyList(list):
    """A list that refuses mutation; nested values are read-only too."""

    __slots__ = ("_path",)

    def __init__(self, data=(), path: str = ""):
        self._path = path
        list.__init__(self, data)
        for i, value in enumerate(self):
            if isinstance(value, _CONTAINERS):
                list.__setitem__(self, i, freeze(value, _join(path, i)))

    def _refuse(self, index: Any = None, action: str = "change") -> None:
        from labbook.errors import ReadOnlyConfigError

        where = _join(self._path, index) if isinstance(index, int) else (self._path or "list")
        raise ReadOnlyConfigError(where, action)

    def __setitem__(self, index, value):
        self._refuse(index, "set")

    def __delitem__(self, index):
        self._refuse(index, "delete")

    def __iadd__(self, other):
        self._refuse(None, "extend")

    def __imul__(self, other):
        self._refuse(None, "repeat")

    def append(self, value):
        self._refuse(None, "append to")

    def extend(self, values):
        self._refuse(None, "extend")

    def insert(self, index, value):
        self._refuse(None, "insert into")

    def pop(self, index=-1):
        self._refuse(None, "pop from")

    def remove(self, value):
        self._refuse(None, "remove from")

    def clear(self):
        self._refuse(None, "clear")

    def sort(self, *args, **kwargs):
        self._refuse(None, "sort")

    def reverse(self):
        self._refuse(None, "reverse")

    def __reduce__(self):
        return (_rebuild_list, (thaw(self), self._path))

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        return thaw(self)

    def __repr__(self):
        return list.__repr__(self)


def _rebuild_dict(data: dict, path: str) -> ReadOnlyDict:
    return ReadOnlyDict(data, path)


def _rebuild_list(data: list, path: str) -> ReadOnlyList:
    return ReadOnlyList(data, path)
