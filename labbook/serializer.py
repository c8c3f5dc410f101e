"""Sacred's ``sacred.serializer``: values JSON cannot hold, to plain data and back.

``flatten(value)`` turns numpy values, tuples and other objects into JSON-compatible data
(jsonpickle tags where needed) and ``restore(data)`` undoes it; both are
:mod:`labbook.serialize`'s functions.
"""
from __future__ import annotations

from labbook.serialize import flatten, restore

__all__ = ["flatten", "restore"]
