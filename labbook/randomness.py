"""Seeds: one per run, derived per captured function, applied to random/numpy/torch.

As in Sacred, every captured function gets its own stream of seeds drawn from one chain: the
run's seed seeds a generator per ingredient (the experiment's is the run's seed; each
ingredient's is drawn from its parent's generator, children in reverse order), whose
successive draws seed each captured function of that ingredient in the order the functions
were defined (the experiment's four built-in commands first); every call of a function draws
the next seed of its stream (``_seed``) and ``_rnd`` is a generator seeded with it. So the
same seed gives the same ``_seed`` and ``_rnd`` numbers as under Sacred 0.8.7. Functions
outside an experiment's tree get a stream derived from the run's seed and their name.
Libraries are seeded only when the user's code has already imported them: seeding must not be
the reason numpy or torch get imported.
"""
from __future__ import annotations

import random
import sys
from typing import Any

__all__ = ["SEED_RANGE", "derive_seed", "create_rnd", "set_global_seed", "SeedStream",
           "get_seed", "function_streams"]

#: Sacred's range of seeds: from 1 up to (not including) 10**9
SEED_RANGE = (1, 10**9)


def get_seed(rnd: Any = None) -> int:
    """Sacred's draw of a seed from ``rnd`` (a numpy ``Generator`` or ``RandomState``, or a
    ``random.Random``); from ``random`` itself when None."""
    if rnd is None:
        return random.randint(*SEED_RANGE)
    if hasattr(rnd, "integers"):
        return int(rnd.integers(*SEED_RANGE, dtype=int))
    return int(rnd.randint(*SEED_RANGE))


class _FunctionStream:
    """The seeds of one captured function: successive draws from its own generator."""

    __slots__ = ("_rnd",)

    def __init__(self, rnd: Any):
        self._rnd = rnd

    def next(self) -> int:
        return get_seed(self._rnd)


def function_streams(root: Any, seed: int, legacy: bool | None = None,
                     ingredient_seed: Any = None) -> dict[int, _FunctionStream]:
    """Sacred's seed chain over the tree of ``root`` (an experiment): ``{id(captured
    function): its stream}``. ``ingredient_seed(ingredient)`` may give an ingredient's own
    ``seed`` entry, which Sacred uses instead of a drawn one."""
    seeds: dict[int, int] = {id(root): seed}
    order = [root]

    def path_of(ingredient: Any) -> str:
        return "" if ingredient is root else ingredient.config_path

    def seed_children(ingredient: Any, own_seed: int) -> None:
        # Sacred seeds from an ingredient's generator only the children whose path lies
        # below its own (every child of the experiment), the last child first
        rnd = create_rnd(own_seed, legacy)
        prefix = path_of(ingredient)
        for child in reversed(ingredient.ingredients):
            if id(child) in seeds or (prefix and not path_of(child).startswith(prefix + ".")):
                continue
            given = ingredient_seed(child) if ingredient_seed is not None else None
            seeds[id(child)] = given if isinstance(given, int) else get_seed(rnd)
            order.append(child)
            seed_children(child, seeds[id(child)])

    seed_children(root, seed)
    # Sacred 0.8.7 gives the ingredients left over (an ingredient's child whose path is not
    # below the parent's) a seed from the unseeded ``random`` module, so their functions
    # never repeat; labbook derives theirs from the run's seed and the ingredient's path.
    depth: dict[int, int] = {}
    found: dict[int, Any] = {}
    for ingredient, level in root.traverse_ingredients():
        found[id(ingredient)] = ingredient
        depth[id(ingredient)] = max(level, depth.get(id(ingredient), 0))
    for key in reversed(sorted(found, key=lambda k: -depth[k])):
        ingredient = found[key]
        if key not in seeds:
            given = ingredient_seed(ingredient) if ingredient_seed is not None else None
            seeds[key] = given if isinstance(given, int) else derive_seed(seed, path_of(
                ingredient))
            order.append(ingredient)
            seed_children(ingredient, seeds[key])
    streams: dict[int, _FunctionStream] = {}
    for ingredient in order:
        rnd = create_rnd(seeds[id(ingredient)], legacy)
        if ingredient is root and hasattr(root, "default_command"):
            for _ in range(4):  # Sacred's experiment captures its 4 built-in commands first
                get_seed(rnd)
        for function in ingredient.captured_functions:
            if id(function) not in streams:
                streams[id(function)] = _FunctionStream(create_rnd(get_seed(rnd), legacy))
    return streams


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
