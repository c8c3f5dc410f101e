"""The ``labbook`` console script: :mod:`labbook.cli.main` dispatches (and syncs), and
:mod:`labbook.cli.read` holds the commands that read stores (ls, show, compare, export, plot,
rm, open). Experiment scripts have their own command line: :mod:`labbook.commandline`."""
from __future__ import annotations

from typing import Any

__all__ = ["main", "read"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'labbook.cli' has no attribute {name!r}")
    import importlib

    return importlib.import_module(f"labbook.cli.{name}")
