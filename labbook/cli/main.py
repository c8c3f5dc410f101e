"""The ``labbook`` console script: look at stored runs."""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from labbook.cli.read import (cmd_compare, cmd_export, cmd_ls, cmd_open, cmd_plot, cmd_rm,
                              cmd_show, parse_filter, visible)
from labbook.errors import CommandError, LabbookError, UsageError

__all__ = ["USAGE", "COMMANDS", "BROKEN_PIPE_STATUS", "cmd_sync", "cmd_sync_stores", "main"]

USAGE = """labbook - reproducible, comparable experiments.

Usage:
  labbook ls [STORE] [--store=URL] [--filter=F] [--order=FIELD] [--limit=N] [--columns=COLS]
  labbook show (ID | latest) [--store=URL]
  labbook compare ID ID... [--store=URL] [--html=FILE]
  labbook export [--store=URL] [--filter=F] [--order=FIELD] [--format=FMT] [--out=FILE]
  labbook plot ID... --metric=NAME [--store=URL] [--out=FILE]
  labbook rm ID [--store=URL] [--yes]
  labbook open ID [--store=URL]
  labbook sync SRC [DST] [--store=URL] [--filter=F] [--dry-run]
  labbook worker EXP [--store=URL] [--max-runs=N] [--idle-exit=S] [--concurrency=K]
                 [--name=NAME] [--max-requeues=N] [--poll=S]
  labbook --version
  labbook (-h | --help)

Options:
  --filter=F       Which runs: a text like "config.lr > 0.01 and status = 'COMPLETED'" or a
                   Mongo-style JSON filter like '{"config.lr": {"$gt": 0.01}}'.
  --order=FIELD    Sort by a field path, '-' for descending [default: -_id].
  --limit=N        Show at most N runs [default: 20].
  --columns=COLS   Comma-separated columns: id, name, experiment, command, status, start,
                   duration, result, tags, or paths like config.lr, summary.loss, info.x.
  --store=URL      The store to read [default: $LABBOOK_STORE or sqlite:///labbook.db].
  --html=FILE      Also write a self-contained HTML comparison with plots.
  --format=FMT     csv, json or parquet [default: csv].
  --out=FILE       Write to FILE (export: default standard output; plot: METRIC.png).
  --metric=NAME    The metric to plot against step.
  --yes            Delete without asking.
  --dry-run        sync: say what would be copied, copy nothing.
  --max-runs=N       worker: exit after claiming N runs (and finishing them).
  --idle-exit=S      worker: exit after S seconds with nothing to claim.
  --concurrency=K    worker: run K runs at a time [default: 1].
  --name=NAME        worker: its name, kept in meta.worker [default: HOST:PID].
  --max-requeues=N   worker: re-queue a dead run at most N times, then fail it [default: 3].
  --poll=S           worker: seconds between looks for queued runs when idle [default: 1].

sync: with a QueuedObserver failure directory as SRC, replays its journals into DST (or
--store); otherwise copies the runs of the store SRC (matching --filter) into the store DST,
incrementally: runs copied before and unchanged since are skipped.

worker: executes the runs queued with `python EXP.py -q ...` (experiment of EXP.py), each in
a child process, until stopped (SIGTERM: after the current runs; twice: interrupts them).

STORE / URL: file://DIR or a directory, sqlite:///file.db, postgresql://..., mysql://...,
mongodb://.../db. Experiments themselves run as scripts:
python my_experiment.py [COMMAND] [with UPDATE...] [OPTIONS] (see their --help).
"""


def _say(text: str) -> None:
    """Print a command's text output, control characters of stored values made visible."""
    print(visible(text))


def _store_arg(value: str | None) -> str | None:
    return None if not value or value.startswith("$LABBOOK_STORE") else value


def _one(value: Any) -> str | None:
    """docopt gives ID as a list (compare takes several); the commands taking one use this."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _int(value: str, option: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} takes a whole number, got {value!r}.") from None


def _number(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} takes a number of seconds, got {value!r}.") from None


def _worker(args: dict) -> int:
    """``labbook worker``: runs until stopped; its exit status."""
    from labbook.cli.worker import cmd_worker

    name = args["--name"]
    return cmd_worker(args["EXP"], _store_arg(args["--store"]),
                      name=None if name in (None, "HOST:PID") else name,
                      max_runs=None if args["--max-runs"] is None
                      else _int(args["--max-runs"], "--max-runs"),
                      idle_exit=_number(args["--idle-exit"], "--idle-exit"),
                      concurrency=_int(args["--concurrency"], "--concurrency"),
                      max_requeues=_int(args["--max-requeues"], "--max-requeues"),
                      poll=_number(args["--poll"], "--poll"))


def _is_journal_dir(path: str) -> bool:
    """A QueuedObserver failure directory: ``run_*/journal.json`` entries, no runs."""
    if not os.path.isdir(path) or "://" in path:
        return False
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(os.path.isfile(os.path.join(path, n, "journal.json")) for n in names)


def cmd_sync(source: str, url: str | None, filter_text: str | None = None,
             dry_run: bool = False, copy_stores: bool = False) -> str:
    """Replay a QueuedObserver failure directory, or copy the runs of one store to another."""
    if copy_stores and not _is_journal_dir(source):
        return cmd_sync_stores(source, url, filter_text, dry_run)
    if filter_text or dry_run:
        raise UsageError("--filter and --dry-run apply to copying a store (labbook sync SRC DST),"
                         " not to replaying a failure directory.")
    return _replay(source, url)


def cmd_sync_stores(src: str, dst: str | None, filter_text: str | None, dry_run: bool) -> str:
    """``labbook sync SRC DST``: copy runs, incrementally (see labbook/sync.py)."""
    from labbook.stores import redact_url
    from labbook.sync import SyncError, sync

    if not dst:
        raise UsageError("labbook sync SRC DST needs a destination store.")
    if "://" not in src and not os.path.isdir(src):
        raise UsageError(f"{src} is neither a store URL nor a directory.")
    flt = parse_filter(filter_text)
    try:
        result = sync(src, dst, flt, dry_run=dry_run)
    except SyncError as exc:
        raise CommandError(str(exc)) from None
    lines = [f"{redact_url(src)} -> {redact_url(dst)}: {result.summary()}"]
    for label, pairs in (("new", result.created), ("updated", result.updated)):
        for src_id, dst_id in pairs:
            lines.append(f"  {label}: run {src_id}" + (f" -> {dst_id}" if dst_id is not None
                                                       else ""))
    return "\n".join(lines)


def _replay(failure_dir: str, url: str | None) -> str:
    """Replay the journals a QueuedObserver left in ``failure_dir`` into a store."""
    from labbook.observers.queued import replay
    from labbook.stores import default_url, redact_url

    if not os.path.isdir(failure_dir):
        raise CommandError(f"{failure_dir} is not a directory of failed-run journals.")
    url = url or default_url()
    results = replay(failure_dir, url)
    journals = sum(os.path.isfile(os.path.join(failure_dir, name, "events.jsonl"))
                   for name in os.listdir(failure_dir))
    skipped = journals - len(results)
    if not results and not skipped:
        return f"No journals in {failure_dir}."
    lines = [f"{name}: {count} event(s) delivered to run {run_id} in {redact_url(url)}"
             for name, run_id, count in results]
    if skipped:  # replay warned about each, naming its store
        lines.append(f"{skipped} journal(s) of runs of other stores left as they are.")
    return "\n".join(lines)


#: the commands of the usage, for "did you mean" on a mistyped one
COMMANDS = ("ls", "show", "compare", "export", "plot", "rm", "open", "sync", "worker")
#: the exit status of a command whose reader went away (``labbook ls | head -1``), as a
#: process killed by SIGPIPE reports it in the shell
BROKEN_PIPE_STATUS = 128 + 13


def _unknown_command(argv: list[str]) -> str | None:
    """The one-line complaint about a first word that names no command (None if it does)."""
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return None
    from labbook.errors import suggest

    close = suggest(argv[0], COMMANDS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return f"unknown command '{argv[0]}'{hint} Run 'labbook --help' for the commands."


def main(argv: Sequence[str] | None = None) -> int:
    """The ``labbook`` command: its exit status. labbook's warnings (damaged stored runs, a
    query on a field no run has) are printed as one ``Warning:`` line each; a closed standard
    output (``| head``) ends it quietly with status 141."""
    import warnings

    from labbook.errors import LabbookWarning

    seen: set[str] = set()
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, LabbookWarning):
            return original(message, category, filename, lineno, file, line)
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"Warning: {visible(text)}", file=sys.stderr)
        return None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", LabbookWarning)
            warnings.showwarning = show
            status = _main(argv)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader is gone (labbook ls | head -1): no traceback, and nothing more to write
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return BROKEN_PIPE_STATUS


def _main(argv: Sequence[str] | None = None) -> int:
    from docopt import DocoptExit, docopt

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = docopt(USAGE, argv=argv, default_help=False)
    except DocoptExit:
        unknown = _unknown_command(argv)
        if unknown:
            print(f"Error: {unknown}", file=sys.stderr)
            return UsageError.exit_code
        print(USAGE.split("Options:")[0].strip(), file=sys.stderr)
        return UsageError.exit_code
    from labbook._version import __version__

    try:
        if args["--version"]:
            print(f"labbook {__version__}")
        elif args["ls"]:
            _say(cmd_ls(args["STORE"] or _store_arg(args["--store"]), args["--filter"],
                        args["--order"], _int(args["--limit"], "--limit"), args["--columns"]))
        elif args["sync"]:
            _say(cmd_sync(args["SRC"], args["DST"] or _store_arg(args["--store"]),
                          filter_text=args["--filter"], dry_run=args["--dry-run"],
                          copy_stores=args["DST"] is not None))
        elif args["worker"]:
            return _worker(args)
        elif args["show"]:
            _say(cmd_show(_one(args["ID"]) or "latest", _store_arg(args["--store"])))
        elif args["compare"]:
            _say(cmd_compare(args["ID"], _store_arg(args["--store"]), args["--html"]))
        elif args["export"]:
            message = cmd_export(_store_arg(args["--store"]), args["--filter"],
                                 args["--order"], args["--format"], args["--out"])
            if message:
                _say(message)
        elif args["plot"]:
            _say(cmd_plot(args["ID"], args["--metric"], _store_arg(args["--store"]),
                          args["--out"]))
        elif args["rm"]:
            _say(cmd_rm(_one(args["ID"]), _store_arg(args["--store"]), args["--yes"]))
        elif args["open"]:
            _say(cmd_open(_one(args["ID"]), _store_arg(args["--store"])))
        else:
            print(USAGE)
    except LabbookError as exc:  # every error a user can cause: one line and its status
        print(f"Error: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
