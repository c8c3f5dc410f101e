"""The command line of experiment scripts: ``python exp.py [COMMAND] [with UPDATE...] [OPTIONS]``.

Parsed with docopt-ng. Updates are ``key=value`` (dotted keys for nested entries and
ingredients) with values read by ``ast.literal_eval`` -- never ``eval`` -- falling back to the
raw text only for bare words; a word without ``=`` names a named config or a config file.
"""
from __future__ import annotations

import ast
import logging
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from labbook.errors import LabbookError

if TYPE_CHECKING:
    from labbook.experiment import Experiment
    from labbook.run import Run


class UsageError(LabbookError):
    """The command line could not be understood."""

    exit_code = 2


#: exit statuses of experiment scripts
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3


@dataclass
class CLIOption:
    """A command-line flag: ``CLIOption("--lr-scan", "Run an LR scan.", short="-L")``.

    ``arg`` names the flag's value (None for a switch); ``apply(value, run)`` is called with the
    parsed value and the created run before it starts.
    """

    long: str
    description: str = ""
    short: str | None = None
    arg: str | None = None
    apply: Any = None

    @property
    def key(self) -> str:
        return self.long.lstrip("-").replace("-", "_")

    def usage_line(self) -> str:
        flag = f"{self.short} {self.long}" if self.short else self.long
        if self.arg:
            flag = f"{self.short} {self.arg} {self.long}={self.arg}" if self.short \
                else f"{self.long}={self.arg}"
        return f"  {flag:<32}{self.description}"


def cli_option(long: str, description: str = "", short: str | None = None,
               arg: str | None = None):
    """Decorator turning ``func(value, run)`` into a :class:`CLIOption`."""
    def decorate(func):
        return CLIOption(long=long, description=description or (func.__doc__ or "").strip(),
                         short=short, arg=arg, apply=func)
    return decorate


BUILTIN_OPTIONS = [
    CLIOption("--help", "Show this help message and exit.", "-h"),
    CLIOption("--debug", "Do not filter the traceback; re-raise errors.", "-d"),
    CLIOption("--pdb", "Start the debugger (post-mortem) when the run fails.", "-D"),
    CLIOption("--loglevel", "Log level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a number.",
              "-l", "LEVEL"),
    CLIOption("--comment", "A comment stored with the run.", "-c", "COMMENT"),
    CLIOption("--beat-interval", "Seconds between heartbeats (default 10).", "-b", "SECONDS"),
    CLIOption("--unobserved", "Ignore all observers for this run.", "-u"),
    CLIOption("--queue", "Only queue the run (for a worker to execute).", "-q"),
    CLIOption("--force", "Accept suspicious config changes (unused new entries).", "-f"),
    CLIOption("--priority", "Priority of a queued run.", "-P", "PRIORITY"),
    CLIOption("--enforce_clean", "Refuse to run when the git repository is dirty.", "-e"),
    CLIOption("--print-config", "Print the configuration before running.", "-p"),
    CLIOption("--id", "Use this id for the run.", "-i", "ID"),
    CLIOption("--name", "A name for this run.", "-n", "NAME"),
    CLIOption("--capture", "Output capture mode: fd, sys or no.", "-C", "MODE"),
    CLIOption("--tag", "Tag the run (repeatable).", "-t", "TAG"),
    CLIOption("--notes", "Notes stored with the run.", None, "NOTES"),
    CLIOption("--file_storage", "Store the run in this directory (file store).", "-F", "DIR"),
    CLIOption("--sql", "Store the run in this SQL database URL.", "-s", "URL"),
    CLIOption("--mongo_db", "Store the run in MongoDB: [host:port:]db or a mongodb:// URL.",
              "-m", "DB"),
    CLIOption("--store", "Store the run in the store at this URL (file://, sqlite:///, "
              "postgresql://, mysql://, mongodb://).", None, "URL"),
    CLIOption("--no-system-metrics", "Do not sample CPU/memory/GPU metrics."),
    CLIOption("--capture-env", "Comma-separated environment variables to record.", None,
              "VARS"),
]


def _all_options(ex: Experiment) -> list[CLIOption]:
    return BUILTIN_OPTIONS + [o for o in ex.additional_cli_options if isinstance(o, CLIOption)]


def usage_text(ex: Experiment, program_name: str | None = None) -> str:
    """The docopt usage/help text for ``ex``."""
    prog = program_name or _program_name()
    options = "\n".join(o.usage_line() for o in _all_options(ex) if o.long != "--tag")
    tag = next(o for o in BUILTIN_OPTIONS if o.long == "--tag")
    commands = sorted(ex.gather_commands())
    width = max([len(n) for n, _ in commands] + [8])
    command_lines = "\n".join(
        f"  {name:<{width}}  {_first_line(cmd)}" for name, cmd in commands)
    doc = (ex.doc or "").strip()
    return (
        f"{doc + chr(10) + chr(10) if doc else ''}"
        "Usage:\n"
        f"  {prog} [(with UPDATE...)] [-t TAG]... [options]\n"
        f"  {prog} help [COMMAND]\n"
        f"  {prog} (-h | --help)\n"
        f"  {prog} COMMAND [(with UPDATE...)] [-t TAG]... [options]\n"
        "\n"
        "Options:\n"
        f"{options}\n"
        f"{tag.usage_line()}\n"
        "\n"
        "Arguments:\n"
        "  COMMAND   Name of a command to run (default: the main function).\n"
        "  UPDATE    key=value config updates (dotted keys for nested entries), names of\n"
        "            named configs, or paths of .json/.yaml config files.\n"
        "\n"
        "Commands:\n"
        f"{command_lines}\n"
    )


def _first_line(func) -> str:
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _program_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "experiment"


_KEY = re.compile(r"^[^\s=.]+(\.[^\s=.]+)*$")
_STRUCTURED = ("[", "{", "(", "'", '"')


def parse_value(key: str, text: str) -> Any:
    """Read an update value with ``ast.literal_eval``; bare words stay strings."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        stripped = text.strip()
        if stripped.startswith(_STRUCTURED) or stripped.endswith(("]", "}", ")")):
            reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
            raise UsageError(
                f"Cannot parse the value of '{key}': {text!r} ({reason}). Values are Python "
                "literals: numbers, 'strings', [lists], {dicts}, True/False/None.") from None
        return text


def parse_updates(updates: Sequence[str]) -> tuple[dict, list[str]]:
    """Split ``with`` arguments into ``(config_updates, named_configs)``."""
    config_updates: dict[str, Any] = {}
    named: list[str] = []
    for item in updates:
        if "=" not in item:
            if not item.strip():
                raise UsageError("Empty update after 'with'.")
            named.append(item)
            continue
        key, _, text = item.partition("=")
        key = key.strip()
        if not _KEY.match(key):
            raise UsageError(
                f"Invalid config key {key!r} in update {item!r}: use dotted names like "
                "'optimizer.lr=0.1'.")
        config_updates[key] = parse_value(key, text)
    return config_updates, named


@dataclass
class ParsedArgs:
    command: str | None
    config_updates: dict
    named_configs: list[str]
    options: dict
    help: bool = False
    help_command: str | None = None
    custom: dict = field(default_factory=dict)


def parse_argv(ex: Experiment, argv: Sequence[str]) -> ParsedArgs:
    """Parse an experiment command line (without the program name)."""
    from docopt import DocoptExit, docopt

    usage = usage_text(ex)
    try:
        args = docopt(usage, argv=list(argv), default_help=False, version=None)
    except DocoptExit as exc:
        hint = _usage_hint(ex, argv)
        raise UsageError(f"{hint}\n{_usage_section(usage)}".strip()) from exc
    if args.get("--help") or args.get("-h"):
        return ParsedArgs(None, {}, [], {}, help=True)
    if args.get("help"):
        return ParsedArgs(None, {}, [], {}, help=True, help_command=args.get("COMMAND"))
    config_updates, named = parse_updates(args.get("UPDATE") or [])
    options: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    custom_keys = {o.long: o for o in ex.additional_cli_options if isinstance(o, CLIOption)}
    for key, value in args.items():
        if not key.startswith("--"):
            continue
        if key in custom_keys:
            custom[key] = value
        options[key.lstrip("-").replace("-", "_")] = value
    if options.get("capture") is not None and options["capture"] not in ("fd", "sys", "no"):
        raise UsageError(f"Invalid capture mode {options['capture']!r}: use fd, sys or no.")
    if options.get("beat_interval") is not None:
        try:
            options["beat_interval"] = float(options["beat_interval"])
        except ValueError:
            raise UsageError(f"--beat-interval takes a number of seconds, got "
                             f"{options['beat_interval']!r}.") from None
    if options.get("priority") is not None:
        try:
            options["priority"] = int(options["priority"])
        except ValueError:
            raise UsageError(f"--priority takes an integer, got {options['priority']!r}.") \
                from None
    if options.get("capture_env"):
        options["capture_env"] = [v for v in options["capture_env"].split(",") if v]
    options["tag"] = list(args.get("--tag") or [])
    return ParsedArgs(args.get("COMMAND"), config_updates, named, options, custom=custom)


def _usage_section(usage: str) -> str:
    lines = usage.split("Usage:", 1)[1].split("\n\n", 1)[0]
    return "Usage:" + lines


def _usage_hint(ex: Experiment, argv: Sequence[str]) -> str:
    known = {o.long for o in _all_options(ex)} | {o.short for o in _all_options(ex) if o.short}
    from labbook.errors import did_you_mean

    for arg in argv:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            if flag not in known:
                return f"Unknown option '{flag}'.{did_you_mean(flag, known)}"
    return "Invalid command line."


def run_commandline(ex: Experiment, argv: str | Sequence[str] | None = None) -> Run | None:
    """Run ``ex`` from a command line; exits the process on errors (like Sacred)."""
    if argv is None:
        argv = sys.argv
    elif isinstance(argv, str):
        argv = shlex.split(argv)
    argv = list(argv)
    debug = "-d" in argv or "--debug" in argv
    try:
        parsed = parse_argv(ex, argv[1:])
        if parsed.help:
            if parsed.help_command:
                commands = dict(ex.gather_commands())
                if parsed.help_command not in commands:
                    from labbook.errors import CommandNotFoundError

                    raise CommandNotFoundError(parsed.help_command, commands)
                print(_help_for(parsed.help_command, commands[parsed.help_command]))
            else:
                print(usage_text(ex))
            return None
        run = ex._create_run(parsed.command, parsed.config_updates, parsed.named_configs,
                             options=parsed.options)
        for opt in ex.additional_cli_options:
            if isinstance(opt, CLIOption) and opt.apply is not None \
                    and parsed.custom.get(opt.long):
                opt.apply(parsed.custom[opt.long], run)
        if parsed.options.get("print_config"):
            from labbook.cli.commands import format_config

            print(format_config(run.config, run.config_modifications))
        run()
        return run
    except LabbookError as exc:
        if debug:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        sys.exit(EXIT_INTERRUPTED)
    except BaseException as exc:
        if debug or isinstance(exc, SystemExit):
            raise
        from labbook.interrupts import LabbookInterrupt

        run = ex.current_run
        if isinstance(exc, LabbookInterrupt):
            sys.exit(EXIT_INTERRUPTED)
        trace = run.fail_trace if run is not None and run.fail_trace else None
        if trace is None:
            import traceback

            trace = traceback.format_exception(type(exc), exc, exc.__traceback__)
        print("".join(trace), file=sys.stderr, end="")
        sys.exit(EXIT_FAILED)


def _help_for(name: str, func) -> str:
    import inspect

    doc = inspect.getdoc(getattr(func, "uncaptured_function", func)) or "(no description)"
    return f"{name}\n\n{doc}"

