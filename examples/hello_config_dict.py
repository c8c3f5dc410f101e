#!/usr/bin/env python
"""Configuration from a dict; entries are injected into the main function by name.

    python examples/hello_config_dict.py
    python examples/hello_config_dict.py with 'message="Hi there!"'
"""
from labbook import Experiment

ex = Experiment("hello_config_dict")
ex.add_config({"message": "Hello world!"})


@ex.automain
def main(message):
    print(message)
