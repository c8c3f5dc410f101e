"""Running an experiment from its command line (``ex.run_commandline()``, ``@ex.automain``):
parse, create the run, report errors in one line and exit with a status.

Exit statuses: 0 success, 1 failed run, 2 usage error, 3 interrupted run.
"""
from __future__ import annotations

import os
import shlex
import sys
import traceback
from typing import TYPE_CHECKING, Sequence

from labbook.arg_parser import (ParsedArgs, looks_like_config_file,
                                parse_argv, program_name, usage_text)
from labbook.captured import check_missing_config
from labbook.commandline_options import custom_options
from labbook.errors import LabbookError, MissingConfigError, UsageError
from labbook.serialize import unencodable

if TYPE_CHECKING:
    from labbook.experiment import Experiment
    from labbook.run import Run

#: exit statuses of experiment scripts
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3

__all__ = ["run_commandline", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]


def run_commandline(ex: Experiment, argv: str | Sequence[str] | None = None) -> Run | None:
    """Run ``ex`` from a command line (``argv[0]`` is the program); return the finished run,
    or None after help. Errors end the process with the statuses listed in the module doc."""
    if argv is None:
        argv = sys.argv
    elif isinstance(argv, str):
        argv = shlex.split(argv)
    # bytes that are not UTF-8 reach Python as lone surrogates, which no store can write as
    # UTF-8: they become backslash escapes ('\\xff'), kept faithfully in config and options
    argv = [_faithful_text(arg) for arg in argv]
    prog = os.path.basename(argv[0]) if argv and argv[0] else program_name()
    args = argv[1:]
    # Known before parsing, so that errors while parsing can show their traceback too.
    debug = "-d" in args or "--debug" in args
    parsed: ParsedArgs | None = None
    try:
        parsed = parse_argv(ex, args, prog)
        debug = debug or bool(parsed.options.get("debug"))
        if parsed.help:
            _print_help(ex, parsed.help_command, prog)
            return None
        run = _prepare_run(ex, parsed, prog)
    except KeyboardInterrupt:
        if debug:
            _print_traceback(True)
        sys.exit(EXIT_INTERRUPTED)
    except LabbookError as exc:
        if debug:
            _print_traceback(True)
        print(f"Error: {_message_for(exc, parsed, prog)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception:
        # a bug in the user's config code, an option hook or a custom option
        _print_traceback(debug)
        sys.exit(EXIT_FAILED)

    from labbook.interrupts import LabbookInterrupt

    try:
        run()
    except (KeyboardInterrupt, LabbookInterrupt):
        # the run logged "Aborted after ...!" and told its observers
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except BaseException:
        exc = sys.exc_info()[1]
        if run.fail_trace:
            from labbook.run import with_filtered_header

            trace = run.fail_trace if run.debug else with_filtered_header(run.fail_trace)
            print("".join(trace), file=sys.stderr, end="")
        elif isinstance(exc, LabbookError) and not debug:
            # refused before the main function started (e.g. --id of a stored run)
            print(f"Error: {exc}", file=sys.stderr)
        else:  # failed before the main function started (e.g. an observer's start)
            _print_traceback(debug)
        sys.exit(EXIT_FAILED)
    return run


def _faithful_text(arg: str) -> str:
    if unencodable(arg) is None:
        return arg
    return arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _print_help(ex: Experiment, command: str | None, prog: str) -> None:
    if command is None:
        print(usage_text(ex, prog))
        return
    commands = dict(ex.gather_commands())
    if command not in commands:
        from labbook.errors import CommandNotFoundError

        raise CommandNotFoundError(command, commands)
    # Sacred's text: the function's signature, then its docstring indented
    from labbook.commands import help_for_command as command_help

    print(command_help(commands[command]) + "\n")


def _prepare_run(ex: Experiment, parsed: ParsedArgs, prog: str) -> Run:
    """Create the run of a parsed command line; everything that can still be a usage error
    is found here, before the run starts."""
    _check_named_configs(ex, parsed, prog)
    run = ex._create_run(parsed.command, parsed.config_updates, parsed.named_configs,
                         options=parsed.options)
    for opt in custom_options(ex):
        if opt.long_flag in parsed.custom:
            opt.apply(parsed.custom[opt.long_flag], run)
    check_missing_config(run.main_function, run.config_for)
    run.announce()
    if parsed.options.get("print_config"):
        from labbook.config.text import format_config

        print(format_config(run.config, run.config_modifications))
        print("-" * 79)
    return run


def _check_named_configs(ex: Experiment, parsed: ParsedArgs, prog: str) -> None:
    """Clearer errors than "named config not found" for missing files and misplaced commands."""
    available = {name for name, _ in ex.gather_named_configs()}
    commands = {name for name, _ in ex.gather_commands()}
    for name in parsed.named_configs:
        if name in available:
            continue
        if looks_like_config_file(name):
            if not os.path.isfile(name):
                raise UsageError(f"Config file '{name}' not found (relative paths are read from "
                                 f"the current directory, {os.getcwd()}).")
        elif name in commands:
            raise UsageError(f"'{name}' is a command, not a named config: the command goes "
                             f"before 'with': {prog} {name} with ...")


def _message_for(exc: LabbookError, parsed: ParsedArgs | None, prog: str) -> str:
    message = str(exc)
    if isinstance(exc, MissingConfigError) and parsed is not None:
        command = f"{parsed.command} " if parsed.command else ""
        updates = " ".join(f"{key}=VALUE" for key in exc.searched)
        message += f" On the command line: {prog} {command}with {updates}"
    return message


def _print_traceback(full: bool) -> None:
    """The current exception's traceback on stderr, without labbook's frames unless ``full``."""
    from labbook.run import format_fail_trace, with_filtered_header

    exc_type, exc, tb = sys.exc_info()
    if full:
        lines = traceback.format_exception(exc_type, exc, tb)
    else:
        lines = with_filtered_header(format_fail_trace(exc_type, exc, tb))
    print("".join(lines), file=sys.stderr, end="")
