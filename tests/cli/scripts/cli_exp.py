#!/usr/bin/env python
"""An experiment that exercises the command line in the tests.

Its commands print what they received, so a test can check the parsing end to end.
"""
import os

from labbook import Experiment, Ingredient, TimeoutInterrupt
from labbook import cli_option
from labbook.config.containers import thaw

HERE = os.path.dirname(os.path.abspath(__file__))

dataset = Ingredient("dataset")


@dataset.config
def dataset_config():
    path = "data.csv"  # where the data lives
    size = 10  # number of rows


@dataset.named_config
def small():
    """Only two rows."""
    size = 2


@dataset.command
def describe(path, size):
    """Describe the dataset."""
    print(f"dataset {path} with {size} rows")


@cli_option("-o", "--own-flag", is_flag=True)
def own_flag(value, run):
    """A switch of this experiment (records itself in run.info)."""
    run.info["own_flag"] = value
    print(f"own_flag={value!r}")


@cli_option("-x", "--extra")
def extra(value, run):
    """An option of this experiment that takes a value."""
    print(f"extra={value!r}")


ex = Experiment("cli_exp", ingredients=[dataset], additional_cli_options=[own_flag, extra])


@ex.config
def cfg():
    value = 1  # any value
    msg = "hello"  # a message
    nested = {"a": 1, "b": {"c": 2}}  # a nested dict
    items = [1, 2]
    flag = False
    nothing = None


@ex.named_config
def big():
    """A big value."""
    value = 100


@ex.named_config
def broken():
    """A named config with a bug."""
    value = 1 / 0


ex.add_named_config("from_dict", {"msg": "from a dict"})
ex.add_named_config("from_file", os.path.join(HERE, "named.yaml"))


@ex.command
def show(_config):
    """Print repr() of the configuration without the seed."""
    config = thaw(_config)
    config.pop("seed")
    print(repr(config))


@ex.command
def answer():
    """Return 42."""
    return 42


@ex.capture
def divide(value):
    return value / 0


@ex.command
def fail():
    """Fail with ZeroDivisionError."""
    divide()


@ex.command
def interrupt():
    """Stop as if Ctrl-C was pressed."""
    raise KeyboardInterrupt


@ex.command
def timeout():
    """Stop with a custom interrupt."""
    raise TimeoutInterrupt()


@ex.command
def needs(undefined_entry):
    """Take an argument that no config entry supplies."""
    print(undefined_entry)


@ex.capture
def helper(another_undefined):
    return another_undefined


@ex.command
def needs_deep():
    """Call a captured function whose argument no config entry supplies."""
    helper()


@ex.automain
def main(msg, value):
    print(f"msg={msg!r} value={value!r}")
