#!/usr/bin/env python
"""Captured functions get their missing arguments from the configuration.

Explicit arguments win; ``prefix`` looks the arguments up in a sub-dict of the config; the
special arguments ``_log``, ``_seed`` and ``_rnd`` are filled in too.

    python examples/captured_functions.py with optimizer.lr=0.5
"""
from labbook import Experiment

ex = Experiment("captured_functions")


@ex.config
def cfg():
    greeting = "Hello"  # how to greet
    name = "world"
    optimizer = {"lr": 0.01, "momentum": 0.9}  # settings of the optimizer


@ex.capture
def greet(greeting, name, punctuation="!"):
    return f"{greeting}, {name}{punctuation}"


@ex.capture(prefix="optimizer")
def describe_optimizer(lr, momentum, _log):
    _log.info("optimizer settings read from config['optimizer']")
    return f"lr={lr} momentum={momentum}"


@ex.capture
def noisy_value(_rnd):
    return _rnd.integers(0, 1000)


@ex.automain
def main():
    print(greet())
    print(greet(name="Alice", punctuation="?"))
    print(describe_optimizer())
    return noisy_value()
