"""Seeds: one per run, derived per captured function, applied to random/numpy/torch.

Every captured function gets its own deterministic stream of seeds, derived from the run's
seed and the function's full name, so adding a function does not change the numbers another
one sees. Libraries are seeded only when the user's code has already imported them: seeding
must not be the reason numpy or torch get imported.
"""
from __future__ import annotations

import random
import sys
from typing import Any

SEED_RANGE = (1, 2**31 - 1)


def derive_seed(seed: int, name: str) -> int:
    """A seed for ``name`` that depends only on the run seed and the name."""
    return random.Random(f"{seed}:{name}").randint(*SEED_RANGE)


def create_rnd(seed: int) -> Any:
    """A numpy ``RandomState`` when numpy is installed, else a ``random.Random``."""
    try:
        import numpy
    except ImportError:
        return random.Random(seed)
    return numpy.random.RandomState(seed)


def set_global_seed(seed: int) -> None:
    """Seed ``random`` and, when already imported, numpy and torch."""
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)


class SeedStream:
    """Successive seeds for one captured function within one run."""

    __slots__ = ("_rnd",)

    def __init__(self, run_seed: int, name: str):
        self._rnd = random.Random(derive_seed(run_seed, name))

    def next(self) -> int:
        return self._rnd.randint(*SEED_RANGE)
