"""Small value classes without the cost of making them.

``@dataclass`` writes and compiles the methods of each class it decorates: 0.3-1 ms per class,
and eight of the classes a run needs are made during a process's first ``ex.run()``. A class
here names its fields in ``__slots__`` and sets them in its own ``__init__``;
:class:`Fields` adds equality and a repr from those fields, :class:`FrozenFields` also makes
the instances immutable, hashable and picklable, as ``@dataclass(frozen=True)`` does.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Fields", "FrozenFields"]


class Fields:
    """Equality and repr from the fields named in the class's ``__slots__``."""

    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value: unhashable

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class FrozenFields(Fields):
    """:class:`Fields` whose instances cannot change once made (``__init__`` sets the fields
    with :meth:`_init`); hashable, and pickled by their fields."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is "
                             "immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is "
                             "immutable")

    def _init(self, *values: Any) -> None:
        """Set the fields, in the order ``__slots__`` names them (for ``__init__``)."""
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())

    def __reduce__(self) -> tuple:
        return type(self), self._values()
