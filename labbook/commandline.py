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

#: the environment variable naming the claimed run a ``labbook worker`` child executes: JSON
#: ``{"store": URL, "id": RUN_ID, "worker": NAME}``
WORKER_RUN_ENV = "LABBOOK_WORKER_RUN"

__all__ = ["run_commandline", "read_claim", "WORKER_RUN_ENV", "EXIT_OK", "EXIT_FAILED",
           "EXIT_USAGE", "EXIT_INTERRUPTED"]


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
    # a worker's child (labbook worker): the run to execute is named by the environment, not
    # by the command line; taken out so the run's own subprocesses do not inherit it
    claim_spec = os.environ.pop(WORKER_RUN_ENV, None)
    claimed: dict | None = None
    try:
        if claim_spec is not None:
            parsed, claimed = _claimed_run_args(ex, claim_spec)
        else:
            parsed = parse_argv(ex, args, prog)
        debug = debug or bool(parsed.options.get("debug"))
        if parsed.help:
            _print_help(ex, parsed.help_command, prog)
            return None
        run = _prepare_run(ex, parsed, prog, claimed)
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


def _prepare_run(ex: Experiment, parsed: ParsedArgs, prog: str,
                 claimed: dict | None = None) -> Run:
    """Create the run of a parsed command line; everything that can still be a usage error
    is found here, before the run starts."""
    _check_named_configs(ex, parsed, prog)
    run = ex._create_run(parsed.command, parsed.config_updates, parsed.named_configs,
                         options=parsed.options)
    if claimed is not None:
        run = _as_claimed(ex, parsed, run, claimed)
        sweep_meta = (claimed.get("meta") or {}).get("sweep")
        if isinstance(sweep_meta, dict) and sweep_meta.get("prune"):
            from labbook.pruning import attach_from_meta

            attach_from_meta(run, sweep_meta)
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


# -- a claimed queued run, executed by a worker's child -----------------------------------------
#: options of the queued run that do not carry over to its execution (the worker gives the
#: store and the id; queueing, help and the debugger are the queueing process's business)
_NOT_CARRIED = {"help", "pdb", "unobserved", "queue", "print_config", "id", "resume"}


def read_claim(spec_text: str) -> tuple[str, dict]:
    """``(store URL, run document)`` of the claimed run that ``spec_text`` (the value of
    :data:`WORKER_RUN_ENV`) names, checked to be claimed by that worker and not started yet."""
    import json

    from labbook.errors import RunStateError
    from labbook.stores import open_store, redact_url

    try:
        spec = json.loads(spec_text)
        url, run_id, worker = spec["store"], spec["id"], spec["worker"]
    except (ValueError, TypeError, KeyError):
        raise UsageError(f"{WORKER_RUN_ENV} must be JSON with store, id and worker (it is set "
                         f"by labbook worker), got {spec_text!r}.") from None
    store = open_store(url)
    try:
        doc = store.get(run_id)
    finally:
        store.close()
    meta = (doc or {}).get("meta") or {}
    if doc is None or doc.get("status") != "RUNNING" or doc.get("start_time") is not None \
            or meta.get("worker") != worker:
        state = "is not there" if doc is None else \
            f"has status {doc.get('status')} and worker {meta.get('worker')!r}"
        raise RunStateError(f"Run {run_id} in {redact_url(url)} is not claimed by worker "
                            f"{worker!r} and waiting to start: it {state}.")
    return url, doc


def _claimed_run_args(ex: Experiment, spec_text: str) -> tuple[ParsedArgs, dict]:
    """What to run for the claimed run named by ``spec_text`` (see :data:`WORKER_RUN_ENV`):
    the queued run's command, its named configs and config updates with its seed, and its
    options, recording into the worker's store under the run's id."""
    from labbook.commandline_options import custom_options
    from labbook.config.paths import iter_paths
    from labbook.observers.registry import STORE_FLAGS

    url, doc = read_claim(spec_text)
    meta = doc.get("meta") or {}
    store_keys = {f.long.lstrip("-").replace("-", "_") for f in STORE_FLAGS}
    custom = {opt.key: opt.long_flag for opt in custom_options(ex)}
    options: dict = {}
    given_custom: dict = {}
    for key, value in (meta.get("options") or {}).items():
        canonical = str(key).lstrip("-").replace("-", "_")
        if canonical in _NOT_CARRIED or canonical in store_keys:
            continue
        if canonical in custom:
            if value is not None and value is not False:
                given_custom[custom[canonical]] = value
            continue
        options[canonical] = value
    options.update(store=url, id=doc["_id"])
    updates = dict(iter_paths(meta.get("config_updates") or {}))
    config = doc.get("config") or {}
    if "seed" in config and "seed" not in updates:
        updates["seed"] = config["seed"]
    parsed = ParsedArgs(command=doc.get("command"), config_updates=updates,
                        named_configs=list(meta.get("named_configs") or ()),
                        options=options, custom=given_custom)
    return parsed, doc


def _as_claimed(ex: Experiment, parsed: ParsedArgs, run: Run, claimed: dict) -> Run:
    """The run made from the queued run's updates, checked against the config stored when it
    was queued: when the script's config changed since, the stored config is what runs (with
    a warning naming the entries), so the run executes what was queued. The run's meta keeps
    the queued run's updates, its worker and how often it was re-queued."""
    from labbook.config.paths import iter_paths
    from labbook.serialize import flatten

    stored_meta = claimed.get("meta") or {}
    redacted = {p[len("config."):] for p in stored_meta.get("redacted") or ()
                if isinstance(p, str) and p.startswith("config.")}
    stored = {p: v for p, v in iter_paths(claimed.get("config") or {}) if p not in redacted}
    now = {p: v for p, v in iter_paths(flatten(run.config)) if p not in redacted}
    differing = sorted(p for p in stored.keys() | now.keys() if stored.get(p) != now.get(p))
    if differing:
        run.run_logger.warning(
            "The config of queued run %s differs from what the script gives now (%s); the "
            "config stored when it was queued is used.", claimed.get("_id"),
            ", ".join(differing[:10]) + (" ..." if len(differing) > 10 else ""))
        run = ex._create_run(parsed.command, stored, parsed.named_configs,
                             options=dict(parsed.options, force=True))
    for key in ("config_updates", "worker", "requeues", "sweep"):
        if key in stored_meta:
            run.meta_info[key] = stored_meta[key]
    return run
