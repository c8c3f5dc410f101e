"""Captured functions (Sacred's ``@ex.capture``): missing arguments are filled from the
configuration of the current run.

Precedence: explicit arguments > special values (``_config``, ``_run``, ``_log``, ``_seed``,
``_rnd``) > config entries (under the ingredient's path and the ``prefix``) > the function's
defaults. A missing argument that nothing supplies raises :class:`MissingConfigError` naming the
function, the argument and the config paths that were searched.
"""
from __future__ import annotations

import datetime
import functools
import inspect
import logging
import time
from typing import Any, Callable

from labbook.config.paths import join_path
from labbook.context import current_run
from labbook.errors import MissingConfigError

__all__ = ["Signature", "captured_function", "create_captured_function",
           "check_missing_config", "SPECIAL_ARGS"]

SPECIAL_ARGS = frozenset({"_config", "_run", "_log", "_seed", "_rnd"})
_EMPTY = inspect.Parameter.empty


class Signature:
    """What a captured function accepts, computed once at decoration time."""

    __slots__ = ("name", "positional", "fillable", "defaults", "has_varargs")

    def __init__(self, func: Callable):
        self.name = getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))
        params = inspect.signature(func).parameters.values()
        self.positional: list[str] = []
        self.fillable: list[str] = []
        self.defaults: set[str] = set()
        self.has_varargs = False
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                self.has_varargs = True
                continue
            if p.kind is p.VAR_KEYWORD:
                continue
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.positional.append(p.name)
            if p.kind is not p.POSITIONAL_ONLY:
                self.fillable.append(p.name)
            if p.default is not _EMPTY:
                self.defaults.add(p.name)

    @property
    def arguments(self) -> list[str]:
        return list(self.fillable)


def captured_function(func: Callable, ingredient_path: str = "", prefix: str | None = None
                      ) -> Callable:
    """Wrap ``func`` so that its missing arguments come from the current run's config."""
    if getattr(func, "__labbook_captured__", False):
        return func
    signature = Signature(func)
    full_name = join_path(ingredient_path, prefix, getattr(func, "__name__", "function"))
    positional = signature.positional
    fillable = signature.fillable
    defaults = signature.defaults

    @functools.wraps(func)
    def captured(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        given = positional[:len(args)] if args else ()
        config = run.config_for(ingredient_path, prefix) if run is not None else None
        missing = None
        seed = None  # one seed per call: _rnd is seeded with _seed, as in Sacred
        for name in fillable:
            if name in kwargs or name in given:
                continue
            if name in ("_seed", "_rnd"):
                if seed is None:
                    seed = _next_seed(run, full_name, captured)
                kwargs[name] = seed if name == "_seed" else _rnd(seed, run)
            elif name in SPECIAL_ARGS:
                kwargs[name] = _special(name, run, ingredient_path, func)
            elif config is not None and name in config:
                kwargs[name] = config[name]
            elif name not in defaults:
                (missing := missing or []).append(name)
        if missing:
            searched = [join_path(ingredient_path, prefix, m) for m in missing]
            if run is None:
                searched = [s + " (no run is active)" for s in searched]
            raise MissingConfigError(signature.name, missing, searched)
        if run is None or not run.debug_logging:
            return func(*args, **kwargs)
        # -l DEBUG: Sacred's lines around each captured call, on the function's logger
        log = run.logger_for(join_path(ingredient_path, getattr(func, "__name__", "function")))
        log.debug("Started")
        started = time.monotonic()
        result = func(*args, **kwargs)
        log.debug("Finished after %s.", datetime.timedelta(seconds=round(time.monotonic()
                                                                         - started)))
        return result

    captured.__labbook_captured__ = True
    captured.signature = signature
    captured.prefix = prefix
    captured.ingredient_path = ingredient_path
    captured.uncaptured_function = func
    return captured


def create_captured_function(function: Callable, prefix: str | None = None) -> Callable:
    """Sacred's spelling: ``function`` captured at the top level, its arguments read from the
    config under the dotted ``prefix`` (the whole config when None)."""
    return captured_function(function, "", prefix)


def _next_seed(run: Any, full_name: str, function: Callable) -> int:
    """The next seed of ``function``'s stream in ``run`` (a random one outside a run)."""
    from labbook.randomness import get_seed

    if run is None:
        return get_seed()
    return run.seed_stream(full_name, function).next()


def _rnd(seed: int, run: Any) -> Any:
    from labbook.randomness import create_rnd

    return create_rnd(seed, run.numpy_random_legacy if run is not None else None)


def _special(name: str, run: Any, ingredient_path: str, func: Callable) -> Any:
    if name == "_run":
        return run
    if name == "_config":
        return run.config_for(ingredient_path, None) if run is not None else {}
    # _log (_seed and _rnd are drawn by the call itself)
    log_name = join_path(ingredient_path, getattr(func, "__name__", "function"))
    if run is not None:
        return run.logger_for(log_name)
    return logging.getLogger(log_name)


def check_missing_config(command: Callable, config_for: Callable[[str, str | None], Any]
                         ) -> None:
    """Raise :class:`MissingConfigError` before a run starts when ``command`` (a captured
    function) needs a value that neither the config nor a default supplies.
    ``config_for(ingredient_path, prefix)`` gives the config the function would see."""
    signature = getattr(command, "signature", None)
    if signature is None:
        return
    path = getattr(command, "ingredient_path", "")
    prefix = getattr(command, "prefix", None)
    config = config_for(path, prefix)
    missing = [a for a in signature.fillable if a not in signature.defaults
               and a not in SPECIAL_ARGS and a not in config]
    if missing:
        raise MissingConfigError(signature.name, missing,
                                 [join_path(path, prefix, m) for m in missing])
