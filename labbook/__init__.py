"""labbook: reproducible, comparable experiments with Sacred's API.

>>> from labbook import Experiment
>>> ex = Experiment("mnist")  # doctest: +SKIP

Only light modules load here; stores, the query API and reports load on first use.
"""
from __future__ import annotations

from labbook._lazy import lazy_names
from labbook._version import __author__, __author_email__, __url__, __version__  # noqa: F401
from labbook.errors import LabbookError, RunExistsError
from labbook.experiment import Experiment
from labbook.ingredient import Ingredient
from labbook.interrupts import LabbookInterrupt, TimeoutInterrupt

_IMPERATIVE = ("start_run", "init", "current_run", "finish", "end_run", "log", "log_scalar",
               "log_metric", "log_metrics", "define_metric", "log_param", "log_params",
               "set_tag", "set_tags", "save", "restore", "create_syncable_directory",
               "save_artifact", "log_text", "log_dict", "log_image", "log_figure",
               "load_parameters", "log_artifact", "use_artifact")

__all__ = [
    "Experiment",
    "Ingredient",
    "LabbookError",
    "LabbookInterrupt",
    "RunExistsError",
    "TimeoutInterrupt",
    "host_info_getter",
    "host_info_gatherer",
    "cli_option",
    "observers",
    "SETTINGS",
    "Api",
    "open_store",
    "compare_runs",
    "get_metrics_for_all_jobs",
    "sweep",
    "Sweep",
    "submit",
    "Deployment",
    # runs without decorators (notebooks, scripts): labbook.imperative
    *_IMPERATIVE,
    "__version__",
]
# Sacred's package metadata (__author__, __author_email__, __url__) is importable too

_lazy_getattr = lazy_names(globals(), {
    "host_info_getter": "labbook.host_info",
    "host_info_gatherer": "labbook.host_info",
    "SETTINGS": "labbook.settings",
    "cli_option": "labbook.commandline_options",
    "Api": "labbook.api",
    "open_store": "labbook.stores",
    "compare_runs": "labbook.report",
    "get_metrics_for_all_jobs": "labbook.api",
    "sweep": "labbook.sweeps",
    "Sweep": "labbook.sweeps",
    "submit": "labbook.jobs",
    "Deployment": "labbook.jobs",
    **dict.fromkeys(_IMPERATIVE, "labbook.imperative"),
})


def __getattr__(name: str) -> object:
    if name == "observers":  # Sacred's ``sacred.observers``, as an attribute of the package
        import importlib

        return importlib.import_module("labbook.observers")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
