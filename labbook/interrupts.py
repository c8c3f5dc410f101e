"""Exceptions that end a run early with a status of their own (Sacred's custom interrupts)."""
from __future__ import annotations

__all__ = ["LabbookInterrupt", "TimeoutInterrupt", "SacredInterrupt", "PrunedInterrupt"]


class LabbookInterrupt(Exception):
    """Base class of custom interrupts: raising one ends the run with status ``STATUS``.

    Subclass it and set ``STATUS`` to record your own status (e.g. ``"DIVERGED"``).
    """

    STATUS = "INTERRUPTED"


class TimeoutInterrupt(LabbookInterrupt):
    """The run exceeded its time limit; it ends with status ``TIMEOUT``."""

    STATUS = "TIMEOUT"


# Sacred's name for the base class, so ``except SacredInterrupt`` keeps working after a switch.
SacredInterrupt = LabbookInterrupt


class PrunedInterrupt(LabbookInterrupt):
    """A sweep's pruner stopped this trial early; the run ends with status ``PRUNED``."""

    STATUS = "PRUNED"
