"""labbook: reproducible, comparable experiments with Sacred's API.

>>> from labbook import Experiment
>>> ex = Experiment("mnist")  # doctest: +SKIP

Only light modules load here; stores, the query API and reports load on first use.
"""
from __future__ import annotations

from labbook._lazy import lazy_names
from labbook._version import __version__
from labbook.errors import LabbookError, RunExistsError
from labbook.experiment import Experiment
from labbook.ingredient import Ingredient
from labbook.interrupts import LabbookInterrupt, TimeoutInterrupt

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

__getattr__ = lazy_names(globals(), {
    "host_info_getter": "labbook.host_info",
    "SETTINGS": "labbook.settings",
    "cli_option": "labbook.commandline_options",
    "Api": "labbook.api",
    "open_store": "labbook.stores",
    "compare_runs": "labbook.report",
    "get_metrics_for_all_jobs": "labbook.api",
})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
