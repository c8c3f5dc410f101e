"""labbook: reproducible, comparable experiments with Sacred's API.

>>> from labbook import Experiment
>>> ex = Experiment("mnist")  # doctest: +SKIP

Only light modules load here; stores, the query API and reports load on first use.
"""
from __future__ import annotations

from typing import Any

from labbook.errors import LabbookError, RunExistsError
from labbook.experiment import Experiment
from labbook.ingredient import Ingredient
from labbook.interrupts import LabbookInterrupt, TimeoutInterrupt

from labbook._version import __version__

__all__ = [
    "Experiment",
    "Ingredient",
    "LabbookError",
    "LabbookInterrupt",
    "RunExistsError",
    "TimeoutInterrupt",
    "host_info_getter",
    "cli_option",
    "SETTINGS",
    "Api",
    "open_store",
    "compare_runs",
    "get_metrics_for_all_jobs",
    "__version__",
]

_LAZY = {
    "host_info_getter": ("labbook.host_info", "host_info_getter"),
    "SETTINGS": ("labbook.settings", "SETTINGS"),
    "cli_option": ("labbook.commandline_options", "cli_option"),
    "Api": ("labbook.api", "Api"),
    "open_store": ("labbook.stores", "open_store"),
    "compare_runs": ("labbook.report", "compare_runs"),
    "get_metrics_for_all_jobs": ("labbook.api", "get_metrics_for_all_jobs"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'labbook' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
