#!/usr/bin/env python
"""Commands: functions runnable by name besides the main function.

    python examples/commands.py scream
    python examples/commands.py whisper with "message='psst'"
    python examples/commands.py print_config
"""
from labbook import Experiment

ex = Experiment("commands")


@ex.config
def cfg():
    message = "hello"  # what to say


@ex.command
def scream(message):
    """Say the message loudly."""
    print(message.upper() + "!")


@ex.command(unobserved=True)
def whisper(message):
    """Say the message quietly (never recorded by observers)."""
    print(message.lower() + "...")


@ex.automain
def main(message):
    print(message)
