"""Ingredients: reusable parts of experiments with their own config, commands and functions.

Decorators only record what the user declared; nothing runs, reads files or touches the
network at decoration time. Running is :meth:`Experiment.run`.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Generator, Iterator, Sequence

from labbook.captured import captured_function
from labbook.config.paths import join_path
from labbook.context import current_run
from labbook.errors import (CircularDependencyError, ConfigError, DefinitionError,
                            DuplicateNameError, InteractiveSessionError, NoRunError)

__all__ = ["PathType", "Ingredient"]

PathType = str | bytes | os.PathLike


def _active_run(what: str):
    run = current_run()
    if run is None:
        raise NoRunError(what)
    return run


class Ingredient:
    """A reusable part of an experiment; its config lives under ``config[path]``."""

    def __init__(self, path: PathType, ingredients: Sequence[Ingredient] = (),
                 interactive: bool = False, _caller_globals: dict | None = None,
                 base_dir: PathType | None = None, save_git_info: bool = True):
        self.path = os.fsdecode(path) if not isinstance(path, str) else path
        self.ingredients: list[Ingredient] = list(ingredients)
        self.interactive = interactive
        self.configurations: list = []
        self.named_configs: dict[str, Any] = {}
        self.config_hooks: list[Callable] = []
        self.captured_functions: list[Callable] = []
        self.commands: dict[str, Callable] = {}
        self.pre_run_hooks: list[Callable] = []
        self.post_run_hooks: list[Callable] = []
        #: :class:`labbook.dependencies.Source` objects added with add_source_file (the main
        #: file and imported modules are gathered when a run starts)
        self.sources: set = set()
        self.dependencies: set = set()
        self.save_git_info = save_git_info
        self._is_traversing = False
        globs = _caller_globals if _caller_globals is not None else sys._getframe(1).f_globals
        self._globals = globs
        self.mainfile: str | None = globs.get("__file__")
        self.doc = globs.get("__doc__")
        if base_dir is not None:
            self.base_dir = os.path.abspath(os.fsdecode(base_dir))
        elif self.mainfile:
            self.base_dir = os.path.dirname(os.path.abspath(self.mainfile))
        else:
            self.base_dir = os.getcwd()
        if self.mainfile is None and not interactive and self._requires_mainfile():
            raise InteractiveSessionError(
                f"Cannot find the file that defines {type(self).__name__} '{self.path}': "
                "it seems to be defined interactively. Pass interactive=True to allow that "
                "(sources cannot be recorded then).")

    def _requires_mainfile(self) -> bool:
        return False

    @property
    def config_path(self) -> str:
        """Where this ingredient's entries live in the run's config ("" for the root)."""
        return self.path

    # -- configuration -------------------------------------------------------------------------
    def config(self, function: Callable) -> Callable:
        """Decorator: the function's local variables become config entries."""
        from labbook.config.scope import ConfigScope

        self.configurations.append(ConfigScope(function))
        return self.configurations[-1]

    def named_config(self, func: Callable) -> Callable:
        """Decorator: a config scope applied only when named (``with NAME``)."""
        from labbook.config.scope import ConfigScope

        scope = ConfigScope(func)
        self._add_named_config(func.__name__, scope)
        return scope

    def add_config(self, cfg_or_file: dict | PathType | None = None, **kw_conf: Any) -> None:
        """Add config entries from a dict, keyword arguments, or a json/yaml/pickle file.

        With a file name, ``trusted=True`` allows a file that runs code when loaded (pickle,
        jsonpickle object tags); without a file, ``trusted`` is a config entry like any other.
        """
        self.configurations.append(self._make_config(cfg_or_file, kw_conf))

    def add_named_config(self, name: str, cfg_or_file: dict | PathType | None = None,
                         **kw_conf: Any) -> None:
        """Add a named config from a dict, keyword arguments, or a json/yaml/pickle file
        (``trusted=True`` as in :meth:`add_config`)."""
        self._add_named_config(name, self._make_config(cfg_or_file, kw_conf))

    def _add_named_config(self, name: str, conf: Any) -> None:
        if name in self.named_configs:
            raise DuplicateNameError(f"Named config '{name}' is already defined in '{self.path}'.")
        self.named_configs[name] = conf

    @staticmethod
    def _make_config(cfg_or_file: Any, kw_conf: dict):
        from labbook.config.scope import ConfigDict

        trusted = None
        if isinstance(cfg_or_file, str | bytes | os.PathLike) and set(kw_conf) == {"trusted"}:
            trusted = bool(kw_conf.pop("trusted"))
        if cfg_or_file is not None and kw_conf:
            raise DefinitionError("add_config takes a dict or a file name, or keyword arguments, "
                                  "not both.")
        if cfg_or_file is None:
            if not kw_conf:
                raise DefinitionError("add_config needs a dict, a file name or keyword arguments.")
            return ConfigDict(kw_conf)
        if isinstance(cfg_or_file, dict):
            return ConfigDict(cfg_or_file)
        if isinstance(cfg_or_file, str | bytes | os.PathLike):
            return _FileConfig(os.fsdecode(cfg_or_file), trusted)
        raise ConfigError(
            f"add_config expects a dict or a file name, got {type(cfg_or_file).__name__}.")

    def config_hook(self, func: Callable) -> Callable:
        """Decorator: ``func(config, command_name, logger) -> dict`` of updates, called after
        this ingredient's config scopes."""
        import inspect

        params = inspect.signature(func).parameters
        if len(params) != 3:
            raise DefinitionError(
                f"Config hook {func.__name__} must take exactly 3 arguments "
                f"(config, command_name, logger), it takes {len(params)}.")
        self.config_hooks.append(func)
        return func

    # -- functions -----------------------------------------------------------------------------
    def capture(self, function: Callable | None = None, prefix: str | None = None):
        """Decorator: fill the function's missing arguments from the config."""
        if function is None:
            return lambda f: self.capture(f, prefix=prefix)
        if getattr(function, "__labbook_captured__", False):
            if function not in self.captured_functions:
                self.captured_functions.append(function)
            return function
        captured = captured_function(function, self.config_path, prefix)
        self.captured_functions.append(captured)
        return captured

    def command(self, function: Callable | None = None, prefix: str | None = None,
                unobserved: bool = False):
        """Decorator: a command runnable as ``python exp.py NAME`` or ``ex.run("NAME")``."""
        if function is None:
            return lambda f: self.command(f, prefix=prefix, unobserved=unobserved)
        captured = self.capture(function, prefix=prefix)
        captured.unobserved = unobserved
        self.commands[function.__name__] = captured
        return captured

    def pre_run_hook(self, func: Callable | None = None, prefix: str | None = None):
        """Decorator: a captured function run just before the main function."""
        if func is None:
            return lambda f: self.pre_run_hook(f, prefix=prefix)
        captured = self.capture(func, prefix=prefix)
        self.pre_run_hooks.append(captured)
        return captured

    def post_run_hook(self, func: Callable | None = None, prefix: str | None = None):
        """Decorator: a captured function run just after the main function."""
        if func is None:
            return lambda f: self.post_run_hook(f, prefix=prefix)
        captured = self.capture(func, prefix=prefix)
        self.post_run_hooks.append(captured)
        return captured

    def post_process_name(self, name: str, ingredient: Ingredient) -> str:
        """Can be overridden to change the (dotted) name of commands and named configs."""
        return join_path(ingredient.config_path, name)

    # -- sources and dependencies --------------------------------------------------------------
    def add_source_file(self, filename: PathType) -> None:
        """Record ``filename`` as a source of this experiment."""
        from labbook.dependencies import Source
        from labbook.errors import SourceNotFoundError

        filename = os.fsdecode(filename)
        if not os.path.isabs(filename):
            filename = os.path.join(self.base_dir, filename)
        filename = os.path.abspath(filename)
        if not os.path.isfile(filename):
            raise SourceNotFoundError(filename, self.base_dir)
        self.sources.add(Source.create(filename, save_git_info=self.save_git_info))

    def add_package_dependency(self, package_name: str, version: str | None) -> None:
        """Record a package (and minimum version) this experiment depends on."""
        from labbook.dependencies import PackageDependency

        self.dependencies.add(PackageDependency(package_name, version))

    # -- traversal -----------------------------------------------------------------------------
    def traverse_ingredients(self) -> Iterator[tuple[Ingredient, int]]:
        """Yield ``(ingredient, depth)`` in preorder, starting with ``(self, 0)``.

        Raises CircularDependencyError naming the cycle when ingredients use each other."""
        yield from self._traverse([], 0)

    def _traverse(self, stack: list[Ingredient], depth: int):
        if self in stack:
            cycle = [i.path or "<experiment>" for i in stack[stack.index(self):]]
            raise CircularDependencyError(cycle + [self.path])
        stack.append(self)
        yield self, depth
        for ingredient in self.ingredients:
            yield from ingredient._traverse(stack, depth + 1)
        stack.pop()

    def gather_commands(self) -> Generator[tuple[str, Callable], None, None]:
        """Yield ``(dotted name, function)`` of every command of this tree."""
        for ingredient, _ in self.traverse_ingredients():
            for name, cmd in ingredient.commands.items():
                yield self.post_process_name(name, ingredient), cmd

    def gather_named_configs(self) -> Generator[tuple[str, Any], None, None]:
        """Yield ``(dotted name, config)`` of every named config of this tree."""
        for ingredient, _ in self.traverse_ingredients():
            for name, conf in ingredient.named_configs.items():
                yield self.post_process_name(name, ingredient), conf

    def captured_arg_names(self) -> set[str]:
        """Every argument name that a captured function (or config scope) of the tree takes."""
        names: set[str] = set()
        for ingredient, _ in self.traverse_ingredients():
            for func in [*ingredient.captured_functions, *ingredient.commands.values()]:
                names.update(func.signature.arguments)
                if func.prefix:
                    names.update(func.prefix.split("."))
            for scope in ingredient.configurations:
                names.update(getattr(scope, "arg_names", ()))
        return names

    def captured_arg_paths(self) -> set[str]:
        """The config paths the tree reads: ``ingredient.prefix.argument`` of every captured
        function and command, ``ingredient.parameter`` of every config scope (as Sacred, a
        function with ``prefix="optimizer"`` reads ``optimizer.lr``, not ``optimizer``)."""
        paths: set[str] = set()
        for ingredient, _ in self.traverse_ingredients():
            own = "" if ingredient is self else ingredient.config_path
            for func in [*ingredient.captured_functions, *ingredient.commands.values()]:
                base = getattr(func, "ingredient_path", own)
                paths.update(join_path(base, func.prefix, arg) for arg in func.signature.arguments)
            for scope in ingredient.configurations:
                paths.update(join_path(own, arg) for arg in getattr(scope, "arg_names", ()))
        return paths

    def get_experiment_info(self) -> dict:
        """Name, base_dir, sources, dependencies and git repositories of this experiment."""
        from labbook.dependencies import gather_experiment_info

        sources: set[str] = set()
        deps: set = set()
        save_git = True
        for ingredient, _ in self.traverse_ingredients():
            # the digests are taken again when the run starts: the files may have changed
            sources |= {source.filename for source in ingredient.sources}
            deps |= ingredient.dependencies
            if ingredient.mainfile:
                sources.add(os.path.abspath(ingredient.mainfile))
            save_git = save_git and ingredient.save_git_info
        return gather_experiment_info(
            self.path, self.base_dir, self._globals, extra_sources=sorted(sources),
            extra_dependencies=sorted(deps, key=repr), save_git_info=save_git)

    # -- run-time conveniences (delegate to the current run) -----------------------------------
    @property
    def info(self) -> dict:
        """The current run's info dict (only during a run)."""
        return _active_run("ex.info").info

    def log_scalar(self, name: str, value: Any, step: int | None = None) -> None:
        """Add a measurement to the current run."""
        _active_run("log_scalar").log_scalar(name, value, step)

    def add_artifact(self, filename: PathType, name: str | None = None,
                     metadata: dict | None = None, content_type: str | None = None) -> None:
        """Store a file produced by the current run."""
        _active_run("add_artifact").add_artifact(filename, name, metadata, content_type)

    def add_resource(self, filename: PathType) -> None:
        """Record a file used by the current run."""
        _active_run("add_resource").add_resource(filename)

    def open_resource(self, filename: PathType, mode: str = "r"):
        """Open a file and record it as a resource of the current run."""
        return _active_run("open_resource").open_resource(filename, mode)


class _FileConfig:
    """A config file, read when the config is resolved (not when it is declared)."""

    def __init__(self, filename: str, trusted: bool | None = None):
        self.filename = os.path.abspath(filename)
        self.trusted = trusted

    def __call__(self, fixed=None, preset=None, fallback=None):
        from labbook.config.files import load_config_file
        from labbook.config.scope import ConfigDict

        config = ConfigDict(load_config_file(self.filename, self.trusted))
        return config(fixed=fixed, preset=preset, fallback=fallback)

    def __repr__(self):
        return f"<config file {self.filename}>"
