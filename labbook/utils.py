"""Names Sacred users import from ``sacred.utils``, kept here so a switch is a rename.

Most names re-export the labbook function that does the job (dotted paths live in
:mod:`labbook.config.paths`, interrupts in :mod:`labbook.interrupts`); the small helpers that
only Sacred's users call are defined here. Everything here is light: ``import labbook.utils``
loads no third-party module.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Any, Callable, Iterator, Mapping

from labbook.config.files import PathType
from labbook.config.paths import get_path, join_path, set_path
from labbook.errors import CircularDependencyError, LabbookError, ObserverError
from labbook.interrupts import LabbookInterrupt, SacredInterrupt, TimeoutInterrupt
from labbook.output import apply_backspaces_and_linefeeds

__all__ = ["LabbookInterrupt", "SacredInterrupt", "TimeoutInterrupt", "SacredError",
           "apply_backspaces_and_linefeeds", "NO_LOGGER", "PYTHON_IDENTIFIER",
           "CircularDependencyError", "ObserverError", "create_basic_stream_logger",
           "recursive_update", "iterate_flattened", "iterate_flattened_separately",
           "set_by_dotted_path", "get_by_dotted_path", "iter_prefixes", "join_paths",
           "is_prefix", "convert_to_nested_dict", "convert_camel_case_to_snake_case",
           "format_filtered_stacktrace", "print_filtered_stacktrace",
           "optional_kwargs_decorator", "get_inheritors", "rel_path", "IntervalTimer",
           "PathType", "PATHCHANGE"]

#: Sacred's name for the base class of every error labbook raises for the user
SacredError = LabbookError


class _SilentLogger(logging.Logger):
    """A logger that stays disabled: ``logging.config.dictConfig`` (uvicorn, Ray and others call
    it with ``disable_existing_loggers=False``) re-enables every registered logger, so this one
    is kept out of the logging manager and ignores writes to ``disabled``."""

    disabled = property(lambda self: True, lambda self, value: None)


#: a logger that drops everything (for functions that take a ``_log`` outside a run)
NO_LOGGER = _SilentLogger("ignore")

#: a valid Python identifier (config keys, ingredient names)
PYTHON_IDENTIFIER = re.compile(r"^[a-zA-Z_][_a-zA-Z0-9]*$")


def create_basic_stream_logger() -> logging.Logger:
    """The root logger with one stderr handler in Sacred's format (added once), level INFO."""
    logger = logging.getLogger()
    logger.setLevel(logging.INFO)
    if not any(getattr(h, "_labbook_basic", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s - %(name)s - %(message)s"))
        handler._labbook_basic = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return logger


def recursive_update(d: dict, u: Mapping) -> dict:
    """Update ``d`` in place with ``u``, merging nested dicts; returns ``d``."""
    for key, value in u.items():
        if isinstance(value, Mapping) and isinstance(d.get(key), dict):
            recursive_update(d[key], value)
        else:
            d[key] = value
    return d


def iterate_flattened(d: Mapping) -> Iterator[tuple[str, Any]]:
    """``(dotted_path, value)`` for every leaf of ``d``, keys sorted at each level."""
    for key in sorted(d):
        value = d[key]
        if isinstance(value, Mapping) and value:
            for sub, leaf in iterate_flattened(value):
                yield join_path(str(key), sub), leaf
        else:
            yield str(key), value


def iterate_flattened_separately(dictionary: Mapping, manually_sorted_keys: list | None = None
                                 ) -> Iterator[tuple[str, Any]]:
    """Like :func:`iterate_flattened`, but each nested dict is first yielded itself (with the
    marker value ``PATHCHANGE``), plain values come before dicts, and
    ``manually_sorted_keys`` come first at the top level."""
    manually_sorted_keys = list(manually_sorted_keys or [])
    keys = [k for k in manually_sorted_keys if k in dictionary]
    rest = sorted(k for k in dictionary if k not in manually_sorted_keys)
    keys += [k for k in rest if not isinstance(dictionary[k], Mapping) or not dictionary[k]]
    keys += [k for k in rest if isinstance(dictionary[k], Mapping) and dictionary[k]]
    for key in keys:
        value = dictionary[key]
        if isinstance(value, Mapping) and value:
            yield str(key), PATHCHANGE
            for sub, leaf in iterate_flattened_separately(value):
                yield join_path(str(key), sub), leaf
        else:
            yield str(key), value


#: the marker :func:`iterate_flattened_separately` yields for a nested dict
PATHCHANGE = object()


def set_by_dotted_path(d: dict, path: str, value: Any) -> None:
    """Set ``d["a"]["b"] = value`` for ``path == "a.b"``, creating dicts on the way."""
    set_path(d, path, value)


def get_by_dotted_path(d: Mapping, path: str, default: Any = None) -> Any:
    """The value at dotted ``path`` in ``d``, or ``default`` when it is missing."""
    return get_path(d, path, default)


def iter_prefixes(path: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``"a"``, ``"a.b"``, ``"a.b.c"``."""
    parts = path.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def join_paths(*parts: str | None) -> str:
    """Join dotted path parts, leaving empty ones out: ``join_paths("", "a", "b") == "a.b"``."""
    return join_path(*[p.strip(".") if p else p for p in parts])


def is_prefix(pre_path: str, path: str) -> bool:
    """Whether dotted ``pre_path`` is one of the ancestors of ``path`` (``""`` always is; a
    path is not its own prefix, as in Sacred)."""
    pre = pre_path.strip(".")
    return not pre or path.strip(".").startswith(pre + ".")


def convert_to_nested_dict(dotted_dict: Mapping[str, Any]) -> dict:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``."""
    nested: dict = {}
    for path, value in iterate_flattened(dotted_dict):
        set_path(nested, path, value)
    return nested


def convert_camel_case_to_snake_case(name: str) -> str:
    """``"CamelCaseName"`` -> ``"camel_case_name"`` (``"HTTPServer"`` -> ``"http_server"``)."""
    s1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


def format_filtered_stacktrace(filter_traceback: str = "default") -> str:
    """The traceback of the exception being handled, as text.

    ``"default"`` and ``"always"`` leave labbook's own frames out (as a run's ``fail_trace``
    does); ``"never"`` keeps every frame.
    """
    import traceback

    from labbook.errors import OptionValueError

    exc_type, exc, tb = sys.exc_info()
    if filter_traceback == "never":
        return "".join(traceback.format_exception(exc_type, exc, tb))
    if filter_traceback not in ("default", "always"):
        raise OptionValueError(f"filter_traceback must be 'default', 'always' or 'never', "
                               f"not {filter_traceback!r}.")
    # the traceback itself is left as it is (the caller may still re-raise it)
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frames = [frame for frame in traceback.extract_tb(tb)
              if not os.path.abspath(frame.filename).startswith(package)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    return "".join(lines + traceback.format_list(frames)
                   + traceback.format_exception_only(exc_type, exc))


def print_filtered_stacktrace(filter_traceback: str = "default") -> None:
    """Print :func:`format_filtered_stacktrace` to stderr."""
    print(format_filtered_stacktrace(filter_traceback), file=sys.stderr, end="")


def optional_kwargs_decorator(wrapped: Callable) -> Callable:
    """Make a decorator usable bare (``@deco``) and with keyword arguments (``@deco(x=1)``):
    ``wrapped(func, **kwargs)`` is called either way."""
    import functools

    @functools.wraps(wrapped)
    def decorator(func: Callable | None = None, **kwargs: Any) -> Any:
        if func is None:
            return lambda f: wrapped(f, **kwargs)
        return wrapped(func, **kwargs)
    return decorator


def get_inheritors(cls: type) -> set[type]:
    """Every direct and indirect subclass of ``cls``."""
    found: set[type] = set()
    todo = [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def rel_path(base: str, path: str) -> str:
    """``path`` relative to dotted ``base`` (``rel_path("a.b", "a.b.c") == "c"``); raises
    :class:`~labbook.errors.ConfigError` when ``base`` is not a prefix of ``path``."""
    if base.strip(".") == path.strip("."):
        return ""
    if not is_prefix(base, path):
        from labbook.errors import ConfigError

        raise ConfigError(f"'{base}' is not a prefix of '{path}'.")
    return path.strip(".")[len(base.strip(".")):].lstrip(".")


class IntervalTimer(threading.Thread):
    """A daemon thread calling ``func()`` every ``interval`` seconds until ``event`` is set,
    and once more when it is (Sacred's heartbeat timer)."""

    def __init__(self, event: threading.Event, func: Callable[[], Any],
                 interval: float = 10.0):
        super().__init__(daemon=True)
        self.stopped = event
        self.func = func
        self.interval = interval

    @classmethod
    def create(cls, func: Callable[[], Any], interval: float = 10.0
               ) -> tuple[threading.Event, IntervalTimer]:
        """A stop event and a timer bound to it (start the timer, set the event to stop)."""
        stop_event = threading.Event()
        return stop_event, cls(stop_event, func, interval)

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.func()
        self.func()
