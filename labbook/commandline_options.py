"""The options of experiment scripts: one table of every built-in flag, with what its value
must be, and :func:`cli_option` for an experiment's own flags (Sacred's
``labbook.commandline_options``).

The flags that name a store (``-F``, ``-s``, ``-m``, ``--store``) come from the observer
registry (:mod:`labbook.observers.registry`): each back-end contributes its own.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Callable

from labbook.errors import DefinitionError, OptionValueError, UsageError, did_you_mean
from labbook.observers.registry import STORE_FLAGS

if TYPE_CHECKING:
    from labbook.experiment import Experiment
    from labbook.run import Run

_HELP_COLUMN = 38
_HELP_WIDTH = 100

__all__ = ["CLIOption", "cli_option", "BUILTIN_OPTIONS", "DEFAULT_OPTIONS", "normalize_options",
           "custom_options", "all_options", "check_option_values"]


class CLIOption:
    """A command-line flag of an experiment, made with :func:`cli_option`.

    ``apply_function(value, run)`` is called with the flag's value (True for a switch) and the
    created run, before the run starts, whenever the flag is given.
    """

    def __init__(self, apply_function: Callable[[Any, Run], Any] | None,
                 short_flag: str | None, long_flag: str, is_flag: bool = False,
                 description: str | None = None, arg: str | None = None):
        if short_flag is not None and not re.fullmatch(r"-[A-Za-z0-9]", short_flag):
            raise DefinitionError(f"Short flag {short_flag!r} must be '-' and one letter, "
                                  "e.g. '-o'.")
        if not re.fullmatch(r"--[A-Za-z0-9][A-Za-z0-9_-]*", long_flag or ""):
            raise DefinitionError(f"Long flag {long_flag!r} must look like '--my-option'.")
        self.apply_function = apply_function
        self.short_flag = short_flag
        self.long_flag = long_flag
        self.is_flag = is_flag
        if description is None:
            doc = (getattr(apply_function, "__doc__", None) or "").strip()
            # the first paragraph, on one line: docopt reads the help text line by line
            description = " ".join(doc.split("\n\n")[0].split())
        self.description = description
        self.arg = None if is_flag else (arg or self.key.upper())

    @property
    def key(self) -> str:
        """The name in the options dict: ``--beat-interval`` -> ``beat_interval``."""
        return self.long_flag[2:].replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return not self.is_flag

    def get_flags(self) -> tuple[str | None, str]:
        return self.short_flag, self.long_flag

    def get_description(self) -> str:
        return self.description

    def apply(self, value: Any, run: Run) -> Any:
        if self.apply_function is not None:
            return self.apply_function(value, run)
        return None

    def usage_line(self) -> str:
        """The option's line in the help text, in the syntax docopt reads."""
        if self.is_flag:
            flags = f"{self.short_flag} {self.long_flag}" if self.short_flag else self.long_flag
        else:
            flags = f"{self.long_flag}={self.arg}"
            if self.short_flag:
                flags = f"{self.short_flag} {self.arg} {flags}"
        head = f"  {flags}"
        # docopt needs two spaces between the flags and their description
        head = head.ljust(_HELP_COLUMN) if len(head) <= _HELP_COLUMN - 2 else head + "  "
        return _wrap(head, self.description, len(head))

    def __repr__(self) -> str:
        return f"CLIOption({self.short_flag!r}, {self.long_flag!r}, is_flag={self.is_flag})"


def cli_option(short_flag: str | None, long_flag: str | None = None, is_flag: bool = False,
               *, description: str | None = None, arg: str | None = None):
    """Decorator turning ``func(value, run)`` into a :class:`CLIOption` (Sacred's spelling).

    >>> @cli_option("-o", "--own-flag", is_flag=True)
    ... def own_flag(value, run):
    ...     '''Remember that the flag was given.'''
    ...     run.info["own_flag"] = value

    The description in the help text is the docstring's first paragraph. ``cli_option("--x")``
    makes an option without a short form.
    """
    if long_flag is None and short_flag is not None and short_flag.startswith("--"):
        short_flag, long_flag = None, short_flag

    def decorate(func: Callable) -> CLIOption:
        return CLIOption(func, short_flag, long_flag or "", is_flag, description, arg)
    return decorate


def _builtin(short: str | None, long: str, description: str, arg: str | None = None,
             default: Any = None) -> CLIOption:
    option = CLIOption(None, short, long, is_flag=arg is None, description=description, arg=arg)
    #: the value when the option is not given: False for a switch, else ``default``
    option.default = False if arg is None else default
    return option


BUILTIN_OPTIONS = [
    _builtin("-h", "--help", "Show this help message and exit."),
    _builtin("-d", "--debug", "Show full tracebacks, labbook's frames included."),
    _builtin("-D", "--pdb", "Start the post-mortem debugger when the run fails."),
    _builtin("-l", "--loglevel", "Log level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a "
             "number.", "LEVEL"),
    _builtin("-c", "--comment", "A comment stored with the run.", "COMMENT"),
    _builtin("-b", "--beat-interval", "Seconds between heartbeats (default 10).", "SECONDS"),
    _builtin("-u", "--unobserved", "Ignore all observers for this run."),
    _builtin("-q", "--queue", "Only queue the run (for a worker to execute)."),
    _builtin("-f", "--force", "Accept suspicious config changes (new entries nothing uses)."),
    _builtin("-P", "--priority", "Priority of a queued run (an integer).", "PRIORITY"),
    _builtin("-e", "--enforce_clean", "Refuse to run when the git repository is dirty."),
    _builtin("-p", "--print-config", "Print the configuration before running."),
    _builtin("-i", "--id", "Use this id for the run.", "ID"),
    _builtin("-n", "--name", "A name for this run.", "NAME"),
    _builtin("-C", "--capture", "Output capture mode: fd, sys or no.", "MODE"),
    # no short flag: Sacred's -t is --tiny_db (a store), which a tag must not be taken for
    _builtin(None, "--tag", "Tag the run (repeatable).", "TAG", default=()),
    _builtin(None, "--notes", "Notes stored with the run.", "NOTES"),
    _builtin(None, "--group", "A group the run belongs to (folds, trials of a sweep).",
             "GROUP"),
    _builtin(None, "--resume", "Continue the stored run given by --id (crashed or "
             "interrupted): same id, its config, metrics appended."),
    # the flags naming a store: one per back-end, from the observer registry
    *(_builtin(f.short, f.long, f.description, f.arg) for f in STORE_FLAGS),
    # no short flag: Sacred's -q is --queue (queue the run only), something else entirely
    _builtin(None, "--queued", "Deliver observer events from a background thread, retrying; "
             "journal what cannot be delivered."),
    _builtin(None, "--no-system-metrics", "Do not sample CPU/memory/GPU metrics."),
    _builtin(None, "--capture-env", "Comma-separated environment variables to record.",
             "VARS", default=()),
]

#: every built-in option's key with its default: what ``ex.run(options=...)`` starts from
DEFAULT_OPTIONS: dict[str, Any] = {option.key: option.default for option in BUILTIN_OPTIONS}


def normalize_options(options: dict | None, ex: Experiment | None = None) -> dict[str, Any]:
    """The options of a run with canonical keys (``--beat-interval``, ``--beat_interval`` and
    ``beat_interval`` are one key) over :data:`DEFAULT_OPTIONS`.

    A key that is neither a built-in option nor one of ``ex``'s own options raises
    :class:`OptionValueError` naming it with close matches (``ex.run(options={"--group": ...})``
    would otherwise be ignored without a word). ``--capture-env`` given as text is a comma list,
    as on the command line.
    """
    result = dict(DEFAULT_OPTIONS)
    known: set[str] | None = None
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise OptionValueError(f"Run option names are strings such as '--name', got {key!r}.")
        canonical = key.lstrip("-").replace("-", "_")
        if canonical not in DEFAULT_OPTIONS:
            if known is None:
                known = {opt.key for opt in (custom_options(ex) if ex is not None else ())}
            if canonical not in known:
                flags = [o.long_flag for o in BUILTIN_OPTIONS] + \
                    ["--" + k.replace("_", "-") for k in sorted(known)]
                hint = did_you_mean("--" + canonical.replace("_", "-"), flags)
                raise OptionValueError(
                    f"Unknown run option '{key}'.{hint} Run options are the command line's "
                    f"long flags: {', '.join(flags)}.")
        if canonical == "capture_env" and isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        result[canonical] = value
    return result


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_CAPTURE_MODES = ("fd", "sys", "no")


def custom_options(ex: Experiment) -> list[CLIOption]:
    """The experiment's own options, checked against the built-in ones."""
    taken = {flag: opt for opt in BUILTIN_OPTIONS for flag in opt.get_flags() if flag}
    result = []
    for opt in ex.additional_cli_options:
        if not isinstance(opt, CLIOption):
            raise DefinitionError(
                f"additional_cli_options contains {opt!r}; give options made with the "
                "@cli_option decorator (from labbook import cli_option).")
        for flag in opt.get_flags():
            if flag and flag in taken:
                raise DefinitionError(
                    f"The option {flag} of {opt!r} is already taken by {taken[flag].long_flag}; "
                    "choose another flag.")
            if flag:
                taken[flag] = opt
        result.append(opt)
    return result


def all_options(ex: Experiment) -> list[CLIOption]:
    return BUILTIN_OPTIONS + custom_options(ex)


def _wrap(head: str, text: str, indent: int) -> str:
    """``head`` followed by ``text`` wrapped at the help width, continuation lines indented
    (they never start with '-', so docopt keeps them as description)."""
    import textwrap

    if not text:
        return head.rstrip()
    lines = textwrap.wrap(text, max(_HELP_WIDTH - indent, 30), break_on_hyphens=False) or [""]
    return head + lines[0] + "".join("\n" + " " * indent + line for line in lines[1:])


def check_option_values(options: dict) -> None:
    """Convert and check typed option values in place (UsageError naming the option)."""
    level = options.get("loglevel")
    if level is not None and not level.isdigit():
        if level.upper() not in _LOG_LEVELS:
            raise UsageError(
                f"Unknown log level '{level}' for -l/--loglevel."
                f"{did_you_mean(level.upper(), _LOG_LEVELS)} Use DEBUG, INFO, WARNING, ERROR, "
                "CRITICAL or a number.")
        options["loglevel"] = level.upper()
    elif level is not None:
        options["loglevel"] = int(level)
    capture = options.get("capture")
    if capture is not None and capture not in _CAPTURE_MODES:
        raise UsageError(f"Invalid capture mode '{capture}' for -C/--capture: use fd, sys or no.")
    if options.get("beat_interval") is not None:
        text = options["beat_interval"]
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise UsageError(f"-b/--beat-interval takes a number of seconds (0 or more), got "
                             f"'{text}'.")
        options["beat_interval"] = seconds
    if options.get("priority") is not None:
        try:
            options["priority"] = int(options["priority"])
        except ValueError:
            raise UsageError(f"-P/--priority takes an integer, got '{options['priority']}'.") \
                from None
    run_id = options.get("id")
    if run_id is not None and (not run_id.strip() or re.search(r"[/\\]", run_id)
                               or run_id in (".", "..")):
        # stores use the id as a directory or key name; it must not point elsewhere
        raise UsageError(f"-i/--id takes a plain name or number, got '{run_id}'.")
    if options.get("capture_env"):
        options["capture_env"] = [v for v in options["capture_env"].split(",") if v]
