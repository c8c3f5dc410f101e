#!/usr/bin/env python
"""A config scope: local variables become config entries, comments become their docs.

Derived entries follow updates: ``with recipient=Bob`` also changes ``message``.

    python examples/hello_config_scope.py print_config
    python examples/hello_config_scope.py with recipient=Bob
"""
from labbook import Experiment

ex = Experiment("hello_cs")


@ex.config
def cfg():
    recipient = "world"  # who gets greeted
    message = "Hello {}!".format(recipient)  # the whole greeting


@ex.automain
def main(message):
    print(message)
