#!/usr/bin/env python
"""The smallest experiment: a main function and nothing else.

    python examples/hello_world.py
"""
from labbook import Experiment

ex = Experiment("hello_world")


@ex.automain
def main():
    print("Hello world!")
