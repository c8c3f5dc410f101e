#!/usr/bin/env python
"""Seeds: every run has a ``seed`` (random unless given); the same seed gives the same numbers.

``random`` (and numpy/torch when imported) are seeded from it; captured functions get their
own reproducible ``_seed`` and ``_rnd``.

    python examples/randomness.py with seed=123
"""
import random

from labbook import Experiment

ex = Experiment("randomness")


@ex.config
def cfg():
    draws = 3  # how many numbers to draw


@ex.capture
def draw(draws, _rnd):
    return [int(_rnd.integers(0, 100)) for _ in range(draws)]


@ex.capture
def seed_of_this_call(_seed):
    return _seed


@ex.automain
def main(seed):
    print("seed:", seed)
    print("random:", random.randint(0, 100))
    print("_rnd:", draw())
    print("_seed:", seed_of_this_call())
    return draw()
