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

__all__ = ["SEED_RANGE", "derive_seed", "create_rnd", "set_global_seed", "SeedStream"]

SEED_RANGE = (1, 2**31 - 1)


def derive_seed(seed: int, name: str) -> int:
    """A seed for ``name`` that depends only on the run seed and the name."""
    return random.Random(f"{seed}:{name}").randint(*SEED_RANGE)


def create_rnd(seed: int, legacy: bool | None = None) -> Any:
    """``_rnd``: as in Sacred 0.8, a numpy ``Generator`` seeded with ``seed`` (or a
    ``RandomState`` with ``SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API = True``), a
    ``random.Random`` without numpy. The Generator also answers the ``RandomState`` calls
    older Sacred code makes (``randint``, ``rand``, ``randn``, ``random_sample``).
    ``legacy`` is that setting's value (default: as it is now)."""
    try:
        import numpy
    except ImportError:
        return random.Random(seed)
    if legacy is None:
        from labbook.settings import current

        legacy = current()["CONFIG"]["NUMPY_RANDOM_LEGACY_API"]
    if legacy:
        return numpy.random.RandomState(seed)
    return _generator_class(numpy)(numpy.random.PCG64(seed))


_GENERATOR: Any = None


def _generator_class(numpy: Any) -> type:
    """A ``numpy.random.Generator`` with the legacy ``RandomState`` spellings added."""
    global _GENERATOR
    if _GENERATOR is None:
        class Generator(numpy.random.Generator):
            def randint(self, low, high=None, size=None, dtype=int):
                """``RandomState.randint``: ``integers`` (``high`` excluded)."""
                return self.integers(low, high, size=size, dtype=dtype)

            def rand(self, *shape):
                """``RandomState.rand``: uniform floats in [0, 1) of the given shape."""
                return self.random(shape or None)

            def randn(self, *shape):
                """``RandomState.randn``: standard normal floats of the given shape."""
                return self.standard_normal(shape or None)

            def random_sample(self, size=None):
                """``RandomState.random_sample``: ``random``."""
                return self.random(size)

        Generator.__module__ = __name__
        Generator.__qualname__ = "Generator"
        globals()["Generator"] = _GENERATOR = Generator  # found by name, as pickle looks
    return _GENERATOR


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
