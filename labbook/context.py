"""Which run is active: the link from captured functions (definition) to the running Run.

A context variable gives each thread/task its own current run; threads started by user code
(data loaders, thread pools) start with an empty context, so they fall back to the most
recently started run that is still active in this process.
"""
from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["current_run", "activate", "deactivate"]

_current: contextvars.ContextVar[Any] = contextvars.ContextVar("labbook_run", default=None)
_active: list[Any] = []


def current_run() -> Any:
    """The active Run of this context (or of the process), or None outside a run."""
    run = _current.get()
    if run is None and _active:
        return _active[-1]
    return run


def activate(run: Any) -> contextvars.Token:
    _active.append(run)
    return _current.set(run)


def deactivate(run: Any, token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # reset from another context; the variable dies with it anyway
        _current.set(None)
    for i in range(len(_active) - 1, -1, -1):
        if _active[i] is run:
            del _active[i]
            break
