"""Names Sacred users import from ``sacred.utils``, kept here so a switch is a rename.

This module only re-exports; each name lives with the concept it serves.
"""
from __future__ import annotations

from labbook.interrupts import LabbookInterrupt, SacredInterrupt, TimeoutInterrupt
from labbook.output import apply_backspaces_and_linefeeds

__all__ = ["LabbookInterrupt", "SacredInterrupt", "TimeoutInterrupt",
           "apply_backspaces_and_linefeeds"]
