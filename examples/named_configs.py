#!/usr/bin/env python
"""Named configs: alternative settings chosen by name (``with small``).

Named configs are applied before the defaults and win over them; explicit updates win over
named configs. They can be scopes, dicts or files.

    python examples/named_configs.py with large
    python examples/named_configs.py with large layers=2
    python examples/named_configs.py print_named_configs
"""
from labbook import Experiment

ex = Experiment("named_configs")


@ex.config
def cfg():
    layers = 4  # number of layers
    width = 64  # units per layer
    params = layers * width  # derived: follows any change of layers or width


@ex.named_config
def large():
    """A bigger network."""
    layers = 12
    width = 512


ex.add_named_config("tiny", {"layers": 1, "width": 8})


@ex.automain
def main(layers, width, params):
    print(f"{layers} layers x {width} units = {params}")
    return params
