"""Observers receive the events of a run; the built-in ones store them.

Store-backed observers (``FileStorageObserver``, ``SqlObserver``, ``MongoObserver``) are loaded
lazily so that ``import labbook.observers`` stays cheap.
"""
from __future__ import annotations

from labbook.observers.base import RunObserver

__all__ = ["RunObserver"]
