"""The Experiment: the root ingredient, with a main function, observers and ``run()``."""
from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any, Callable, Sequence

from labbook.errors import (CommandNotFoundError, InteractiveSessionError, LabbookError,
                            MissingFileError, SignatureError)
from labbook.ingredient import Ingredient, PathType
from labbook.run import Run

__all__ = ["LOG_FORMAT", "Experiment"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so captured output includes logs."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


LOG_FORMAT = "%(levelname)s - %(name)s - %(message)s"


class Experiment(Ingredient):
    """The central object of an experiment script: config, main function, commands, observers.

    >>> ex = Experiment("mnist")
    """

    def __init__(self, name: str | None = None, ingredients: Sequence[Ingredient] = (),
                 interactive: bool = False, base_dir: PathType | None = None,
                 additional_host_info: list | dict | None = None,
                 additional_cli_options: Sequence | None = None, save_git_info: bool = True,
                 _caller_globals: dict | None = None):
        caller_globals = _caller_globals if _caller_globals is not None \
            else sys._getframe(1).f_globals
        if name is None:
            mainfile = caller_globals.get("__file__")
            if interactive or mainfile is None:
                raise InteractiveSessionError(
                    "Experiment needs a name when it is not defined in a file "
                    "(interactive mode): Experiment('my_experiment', interactive=True).")
            name = os.path.splitext(os.path.basename(mainfile))[0]
        super().__init__(path=name, ingredients=ingredients, interactive=interactive,
                         _caller_globals=caller_globals, base_dir=base_dir,
                         save_git_info=save_git_info)
        self.default_command: str | None = None
        self.observers: list = []
        self.captured_out_filter: Callable[[str], str] | None = None
        self.current_run: Run | None = None
        self.option_hooks: list[Callable] = []
        self.additional_host_info = additional_host_info
        self.additional_cli_options = list(additional_cli_options or [])
        self.logger: logging.Logger | None = None
        self._experiment_info_cache: tuple | None = None
        self.commands.update(self._builtin_commands())

    def _builtin_commands(self) -> dict[str, Callable]:
        try:
            from labbook.commands import builtin_commands
        except ImportError:  # the command-line layer is optional for library use
            return {}
        return builtin_commands(self)

    @property
    def name(self) -> str:
        return self.path

    @property
    def config_path(self) -> str:
        return ""

    # -- decorators ----------------------------------------------------------------------------
    def main(self, function: Callable) -> Callable:
        """Decorator: the default command, run by ``ex.run()`` and the command line."""
        captured = self.command(function)
        self.default_command = function.__name__
        return captured

    def automain(self, function: Callable) -> Callable:
        """Decorator: like ``main``, and runs the command line when the file is executed."""
        captured = self.main(function)
        if function.__module__ == "__main__":
            filename = inspect.getfile(function)
            if filename == "<stdin>" or filename.startswith("<ipython-input-"):
                raise InteractiveSessionError(
                    "Cannot use @ex.automain in an interactive session; use @ex.main and call "
                    "ex.run() instead.")
            self.run_commandline()
        return captured

    def option_hook(self, function: Callable) -> Callable:
        """Decorator: ``function(options)`` may change the options right before a run.

        ``options`` has Sacred's keys, the long flags (``--name``, ``--beat-interval``,
        ``--enforce_clean``, ...), every option present (``None``/``False`` when not given).
        """
        if "options" not in inspect.signature(function).parameters:
            raise SignatureError(f"Option hook {function.__name__} must have an argument "
                                 "'options'.")
        self.option_hooks.append(function)
        return function

    # -- running -------------------------------------------------------------------------------
    def run(self, command_name: str | None = None, config_updates: dict | None = None,
            named_configs: Sequence[str] = (), info: dict | None = None,
            meta_info: dict | None = None, options: dict | None = None) -> Run:
        """Run the main function (or ``command_name``) and return the finished Run."""
        run = self._create_run(command_name, config_updates, named_configs, info, meta_info,
                               options)
        run()
        return run

    def _create_run(self, command_name: str | None = None, config_updates: dict | None = None,
                    named_configs: Sequence[str] = (), info: dict | None = None,
                    meta_info: dict | None = None, options: dict | None = None) -> Run:
        command_name = command_name or self.default_command
        if command_name is None:
            raise CommandNotFoundError("main (no @ex.main or @ex.automain defined)",
                                       [n for n, _ in self.gather_commands()])
        commands = dict(self.gather_commands())
        if command_name not in commands:
            raise CommandNotFoundError(command_name, commands)
        command = commands[command_name]
        from labbook.host_info import await_prefetch, prefetch_host_info

        # uname -p and nvidia-smi run while the config is resolved and git is asked
        prefetch_host_info()
        try:
            return self._prepare_run(command_name, command, config_updates, named_configs, info,
                                     meta_info, options)
        finally:
            await_prefetch()  # no thread of ours outlives the start (fork safety)

    def _prepare_run(self, command_name: str, command: Callable, config_updates: dict | None,
                     named_configs: Sequence[str], info: dict | None, meta_info: dict | None,
                     options: dict | None) -> Run:
        from labbook.commandline_options import normalize_options
        from labbook.config.resolve import resolve_config

        opts = normalize_options(options, self)
        if self.option_hooks:
            # Sacred hands option hooks its docopt dict: ``--``-prefixed keys; what a hook
            # changes, adds (``--name`` or ``name``) or deletes is what the run uses
            hooked = _HookOptions((_DASHED_OPTIONS.get(key, f"--{key}"), value)
                                  for key, value in opts.items())
            for hook in self.option_hooks:
                hook(options=hooked)
            opts = normalize_options(hooked, self)
        base_logger = self._base_logger(opts.get("loglevel"))
        # as in Sacred, a run given a name (-n/--name) logs under that name
        run_logger = base_logger.getChild(str(opts.get("name") or self.path))
        resolved = resolve_config(self, command_name, config_updates, named_configs,
                                  force=bool(opts.get("force")), logger=run_logger,
                                  scope_logger=base_logger)

        experiment_info = self.get_experiment_info()
        if opts.get("enforce_clean"):
            from labbook.dependencies import check_clean

            check_clean(experiment_info)
        from labbook.host_info import get_host_info
        from labbook.settings import current

        settings = current()  # labbook.SETTINGS now, handed to the parts as values
        host_info = get_host_info(self.additional_host_info,
                                  capture_env=tuple(opts.get("capture_env") or ()),
                                  settings=settings["HOST_INFO"])
        meta = {"command": command_name, "options": _jsonable_options(opts),
                "named_configs": list(named_configs or ()),
                "config_updates": _nested_updates(config_updates)}
        for key in ("comment", "name", "notes", "priority", "group"):
            if opts.get(key) is not None:
                meta[key] = opts[key]
        tags = opts.get("tag") or ()
        meta["tags"] = [tags] if isinstance(tags, str) else list(tags)
        meta.update(meta_info or {})

        pre = [h for ing, _ in self.traverse_ingredients() for h in ing.pre_run_hooks]
        post = [h for ing, _ in self.traverse_ingredients() for h in ing.post_run_hooks]
        from labbook import distributed

        worker = distributed.is_worker()
        observers = (distributed.attached_observers() if worker
                     else self._observers_for(opts, settings.get("DELIVERY")))
        run = Run(resolved.config, resolved.summary, command, observers,
                  root_logger=base_logger, run_logger=run_logger,
                  experiment_info=experiment_info, host_info=host_info, pre_run_hooks=pre,
                  post_run_hooks=post, captured_out_filter=self.captured_out_filter,
                  command=command_name, meta_info=meta, info=info, seed=resolved.seed,
                  fixtures=resolved.fixtures,
                  read_only_config=settings["CONFIG"]["READ_ONLY_CONFIG"],
                  capture_mode=settings["CAPTURE_MODE"],
                  numpy_random_legacy=settings["CONFIG"]["NUMPY_RANDOM_LEGACY_API"])
        run.secret_names = tuple(settings.get("SECRET_NAMES") or ())
        run.seed_root = self  # _seed and _rnd follow Sacred's chain over this tree
        if not worker and not run_is_unobserved(opts, command):
            preflight(observers)
        run.debug = bool(opts.get("debug"))
        run.pdb = bool(opts.get("pdb"))
        run.queue_only = bool(opts.get("queue"))
        run.force = bool(opts.get("force"))
        run.unobserved = bool(opts.get("unobserved")) or getattr(command, "unobserved", False)
        if worker:
            run.is_worker = True
            run.unobserved = run.unobserved or not observers
            run._warned_unobserved = True
        run.system_metrics = not opts.get("no_system_metrics")
        run.delivery = dict(settings.get("DELIVERY") or {})
        if opts.get("beat_interval") is not None:
            run.beat_interval = float(opts["beat_interval"])
        if opts.get("capture") is not None:
            run.capture_mode = opts["capture"]
        if opts.get("id") is not None:
            run._id = opts["id"]
        if opts.get("resume"):
            from labbook.config.paths import iter_paths

            run.resume = "must"
            run.resume_config = dict(iter_paths(_nested_updates(config_updates)))
        self.current_run = run
        return run

    def _observers_for(self, opts: dict, delivery: dict | None = None) -> list:
        from labbook.observers import observers_from_options

        observers = list(self.observers) + observers_from_options(opts)
        url = opts.get("store")
        if url is None and not observers and os.environ.get("LABBOOK_STORE"):
            # Sacred's rule (no observer, no record) holds unless the user opted in.
            url = os.environ["LABBOOK_STORE"]
        if url is not None:
            from labbook.observers.registry import observer_for_url
            from labbook.stores import default_url

            observers.append(observer_for_url(url or default_url()))
        if opts.get("queued"):
            from labbook.observers.queued import QueuedObserver

            delivery = delivery or {}
            observers = [o if isinstance(o, QueuedObserver) else QueuedObserver(
                o, failure_dir=getattr(o, "failure_dir", None) or delivery.get("FAILURE_DIR"),
                max_wait=float(delivery.get("MAX_WAIT", 10.0)),
                backoff=float(delivery.get("BACKOFF", 0.1)),
                max_backoff=float(delivery.get("MAX_BACKOFF", 5.0))) for o in observers]
        return observers

    def _base_logger(self, level: Any = None) -> logging.Logger:
        """The base of the run's loggers, as Sacred makes it: ``ex.logger``, or the root
        logger. The run logs on its child named after the experiment, captured functions on
        children named ``[ingredient.]function``, config scopes on the base (ingredients' on
        its child named after the ingredient). When the program has not configured logging,
        the root logger gets a stderr handler in Sacred's ``LEVEL - name - message`` format
        and starts every run at INFO, so the program's own module loggers print too. Unlike
        Sacred, handlers the program installed are never replaced. ``-l LEVEL`` sets the
        level of that base logger."""
        if self.logger is not None:
            base = self.logger
        else:
            base = logging.getLogger()
            ours = [h for h in base.handlers if isinstance(h, _StderrHandler)]
            if not base.handlers:
                handler = _StderrHandler()
                handler.setFormatter(logging.Formatter(LOG_FORMAT))
                base.addHandler(handler)
                ours = [handler]
            if ours:
                base.setLevel(logging.INFO)  # each run starts from INFO, as in Sacred
        if level is not None:
            if isinstance(level, str) and not level.isdigit():
                numeric = logging.getLevelName(level.upper())
                if not isinstance(numeric, int):
                    raise LabbookError(
                        f"Unknown log level '{level}'. Use DEBUG, INFO, WARNING, ERROR, "
                        "CRITICAL or a number.")
                level = numeric
            base.setLevel(int(level))
        return base

    def run_commandline(self, argv: str | Sequence[str] | None = None) -> Run | None:
        """Run the command line of this experiment (``argv`` defaults to ``sys.argv``)."""
        from labbook.commandline import run_commandline

        return run_commandline(self, argv)

    def get_usage(self, program_name: str | None = None) -> str:
        """The command-line usage text of this experiment."""
        from labbook.arg_parser import usage_text

        return usage_text(self, program_name)

    @property
    def all_cli_options(self) -> list:
        """The command-line options of this experiment, as Sacred lists them: the built-in
        ones, then ``additional_cli_options`` (``CLIOption`` objects)."""
        from labbook.commandline_options import all_options

        return all_options(self)

    def get_default_options(self) -> dict:
        """Option keys of the form ``--beat_interval`` with their default values."""
        from labbook.commandline_options import DEFAULT_OPTIONS

        return {f"--{k}": v for k, v in DEFAULT_OPTIONS.items()}

    def get_experiment_info(self) -> dict:
        key = (len(sys.modules),
               frozenset(s for ing, _ in self.traverse_ingredients() for s in ing.sources),
               frozenset(repr(d) for ing, _ in self.traverse_ingredients()
                         for d in ing.dependencies))
        if self._experiment_info_cache is None or self._experiment_info_cache[0] != key:
            self._experiment_info_cache = (key, super().get_experiment_info())
        return self._experiment_info_cache[1]


def experiments_in_script(path: str, run_name: str) -> list[Experiment]:
    """The Experiments the script ``path`` defines at module level. The script is executed
    once as module ``run_name`` (not ``__main__``, so ``@ex.automain`` starts no run), with
    its directory first on ``sys.path`` meanwhile. Raises :class:`MissingFileError` (a
    FileNotFoundError) for a missing script; what the script raises (``SystemExit`` included)
    goes through."""
    import runpy

    if not os.path.isfile(path):
        raise MissingFileError(f"No experiment file {path}.")
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    try:
        namespace = runpy.run_path(path, run_name=run_name)
    finally:
        if sys.path and sys.path[0] == directory:
            del sys.path[0]
    return list({id(v): v for v in namespace.values() if isinstance(v, Experiment)}.values())


def experiment_in_script(path: str, run_name: str, reader: str) -> Experiment:
    """The one Experiment the script ``path`` defines at module level (read as
    :func:`experiments_in_script` reads it); ``reader`` names what reads it in the errors,
    which are one line each (:class:`UsageError`, :class:`CommandError`)."""
    from labbook.errors import CommandError, LabbookError, UsageError

    try:
        found = experiments_in_script(path, run_name)
    except MissingFileError:  # the script itself (not a file it opens) is missing
        raise UsageError(f"No experiment file {path} ({reader} takes an experiment script)."
                         ) from None
    except SystemExit as exc:
        raise CommandError(f"{path} exited ({exc.code}) when {reader} read it for its "
                           "experiment; define the experiment at module level.") from None
    except LabbookError:
        raise
    except Exception as exc:
        raise CommandError(f"{path} could not be read for its experiment: "
                           f"{type(exc).__name__}: {exc}") from None
    if len(found) != 1:
        what = "no Experiment" if not found else \
            f"{len(found)} experiments ({', '.join(sorted(e.name for e in found))})"
        raise UsageError(f"{path} defines {what} at module level; {reader} takes a script "
                         "with exactly one.")
    return found[0]


def run_is_unobserved(opts: dict, command: Any) -> bool:
    return bool(opts.get("unobserved")) or getattr(command, "unobserved", False)


def preflight(observers: Sequence) -> None:
    """Check every store the run will record into before anything of the run happens: a store
    that cannot be used at all raises (one line naming it and why), so no user code runs
    unrecorded. Observers without ``preflight`` (the user's own) are not checked."""
    for observer in observers:
        check = getattr(observer, "preflight", None)
        if callable(check):
            check()


#: options Sacred records with a dash (its docopt names); the others keep the underscore
_DASHED_OPTIONS = {"beat_interval": "--beat-interval", "print_config": "--print-config"}


class _HookOptions(dict):
    """The options an option hook gets: Sacred's ``--`` keys; a bare name (``options["sql"]``,
    labbook's spelling before) reads and writes the same entry."""

    def _key(self, key: Any) -> Any:
        if isinstance(key, str) and not key.startswith("-"):
            for dashed in (f"--{key}", "--" + key.replace("_", "-")):
                if dict.__contains__(self, dashed):
                    return dashed
        return key

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._key(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, self._key(key), value)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, self._key(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, self._key(key), default)


def _jsonable_options(opts: dict) -> dict:
    """The options as Sacred records them in ``meta.options`` (``--name`` keys)."""
    out = {}
    for key, value in opts.items():
        if isinstance(value, tuple):
            value = list(value)
        out[_DASHED_OPTIONS.get(key, f"--{key}")] = value
    return out


def _nested_updates(updates: dict | None) -> dict:
    """``config_updates`` with dotted keys expanded, as Sacred records them in ``meta``."""
    from labbook.config.paths import set_path

    nested: dict = {}
    for key, value in (updates or {}).items():
        set_path(nested, key, value)
    return nested
