"""Sacred's ``sacred.serializer``: any value to JSON-compatible data and back.

``flatten(value)`` gives plain JSON data in which what JSON cannot hold carries jsonpickle's
tags (tuples as ``{"py/tuple": [...]}``, dates, sets, numpy values, non-string keys as
``"json://1"``), so that ``restore(data)`` gives the value back with its types, as Sacred's
pair does. ``restore`` also reads the numpy form Sacred writes (``{"py/object":
"numpy.ndarray", "values": [...], "dtype": ...}``). Restoring runs the constructors that the
tags name: restore only data you trust.

labbook's stores keep values plainer (tuples as lists, numpy values as numbers): that is
:mod:`labbook.serialize`, not this module.
"""
from __future__ import annotations

import json
import threading
from typing import Any

__all__ = ["flatten", "restore"]

_NUMPY_HANDLERS = threading.Lock()


def flatten(obj: Any) -> Any:
    """``obj`` as JSON-compatible data, its types kept in jsonpickle's tags."""
    import jsonpickle

    return json.loads(jsonpickle.encode(obj, keys=True))


def restore(flat: Any) -> Any:
    """The value :func:`flatten` (labbook's or Sacred's) made ``flat`` from."""
    import jsonpickle

    text = json.dumps(flat)
    if '"py/object": "numpy.' not in text:
        return jsonpickle.decode(text, keys=True)
    # Sacred's numpy form needs jsonpickle's numpy handlers; they are registered only while
    # decoding, so that nothing else labbook pickles changes form
    import jsonpickle.ext.numpy as numpy_handlers

    with _NUMPY_HANDLERS:
        numpy_handlers.register_handlers()
        try:
            return jsonpickle.decode(text, keys=True)
        finally:
            numpy_handlers.unregister_handlers()
