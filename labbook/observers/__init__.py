"""Observers receive the events of a run; the built-in ones store them.

Store-backed observers load lazily so that ``import labbook.observers`` stays cheap.
"""
from __future__ import annotations

from typing import Any

from labbook.observers.base import RunObserver

__all__ = ["RunObserver", "QueuedObserver", "FileStorageObserver", "StoreObserver",
           "observers_from_options"]

_LAZY = {
    "QueuedObserver": "labbook.observers.queued",
    "FileStorageObserver": "labbook.observers.store_observer",
    "StoreObserver": "labbook.observers.store_observer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labbook.observers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def observers_from_options(options: dict) -> list[RunObserver]:
    """Observers asked for on the command line (``-F DIR``)."""
    observers: list[RunObserver] = []
    if options.get("file_storage"):
        from labbook.observers.store_observer import FileStorageObserver

        observers.append(FileStorageObserver(options["file_storage"]))
    return observers
