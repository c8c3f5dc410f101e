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
             [--sweep=ID]
  labbook show (ID | latest) [--store=URL]
  labbook compare ID ID... [--store=URL] [--html=FILE]
  labbook export [--store=URL] [--filter=F] [--order=FIELD] [--format=FMT] [--out=FILE]
  labbook plot ID... --metric=NAME [--store=URL] [--out=FILE]
  labbook rm ID [--store=URL] [--yes]
  labbook open ID [--store=URL]
  labbook sync SRC [DST] [--store=URL] [--filter=F] [--dry-run]
  labbook worker EXP [--store=URL] [--max-runs=N] [--idle-exit=S] [--concurrency=K]
                 [--name=NAME] [--max-requeues=N] [--poll=S]
  labbook sweep EXP [--param=SPEC...] [--config=FILE] [--method=M] [--trials=N]
                [--metric=NAME] [--goal=G] [--prune=P] [--store=URL] [--sweep-id=ID]
                [--seed=N] [--launcher=SPEC] [--parallel=K]
  labbook run-queue EXP [--store=URL] [--launcher=SPEC] [--max-runs=N] [--parallel=K]
  labbook ui [STORE] [--store=URL] [--port=N] [--host=H] [--token=T] [--read-only]
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
  --yes            Delete without asking.
  --dry-run        sync: say what would be copied, copy nothing.
  --max-runs=N       worker: exit after claiming N runs (and finishing them); run-queue:
                     place at most N runs.
  --idle-exit=S      worker: exit after S seconds with nothing to claim.
  --concurrency=K    worker: run K runs at a time [default: 1].
  --name=NAME        worker: its name, kept in meta.worker [default: HOST:PID].
  --max-requeues=N   worker: re-queue a dead run at most N times, then fail it [default: 3].
  --poll=S           worker: seconds between looks for queued runs when idle [default: 1].
  --sweep=ID         ls: only the runs of the sweep ID.
  --param=SPEC       sweep: NAME=uniform(a,b) | loguniform(a,b) | int(a,b) | choice(x,y,...)
                     | a fixed value; repeat for each parameter.
  --config=FILE      sweep: a YAML sweep file (method, metric, parameters, early_terminate).
  --method=M         sweep: grid, random or tpe (default: tpe).
  --trials=N         sweep: how many trials this process runs (grid: default all points).
  --metric=NAME      plot: the metric to plot; sweep: the metric to optimize (its summary).
  --goal=G           sweep: minimize or maximize (default: minimize).
  --prune=P          sweep: median (Optuna's MedianPruner) or none.
  --sweep-id=ID      sweep: the sweep's id (default: a new one); the same id joins a sweep.
  --seed=N           sweep: the sampler's seed.
  --launcher=SPEC    sweep, run-queue: where each run's process goes: local[:K],
                     dask[:SCHEDULER], ray[:ADDRESS] or submitit[:slurm|local]
                     (run-queue default: local).
  --parallel=K       sweep, run-queue: runs at a time (default: the launcher's slots).
  --port=N           ui: the port to listen on [default: 5000].
  --host=H           ui: the interface to listen on [default: 127.0.0.1]; another one
                     needs a token.
  --token=T          ui: the token every request must carry (default: none on 127.0.0.1,
                     generated and printed on another interface).
  --read-only        ui: no edits of tags and notes.

sweep: runs EXP's experiment once per trial, in this process, each config chosen by Optuna
(pip install 'labbook[sweep]'); the runs are tagged sweep:ID and grouped under ID. Several
processes given the same --sweep-id and store share the sweep's study.

sync: with a QueuedObserver failure directory as SRC, replays its journals into DST (or
--store); otherwise copies the runs of the store SRC (matching --filter) into the store DST,
incrementally: runs copied before and unchanged since are skipped.

run-queue: executes the queued runs of EXP's experiment through a launcher, each claimed by
its placed process, until none is queued; a live count of done / failed / running runs.
ui: a web dashboard over the store (pip install 'labbook[ui]'): the runs table with the
query language, run pages with live charts, output and artifacts, a compare view.

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


def _sweep_file(path: str) -> dict:
    """The settings of a YAML sweep file (wandb's keys): method, metric {name, goal},
    parameters {name: {values: [...]} | {value: x} | {min, max, distribution}},
    early_terminate {type: median}, trials (or run_cap)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise UsageError(f"Cannot read the sweep file {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"The sweep file {path} is not valid YAML: {exc}.") from None
    if not isinstance(data, dict):
        raise UsageError(f"The sweep file {path} must hold a mapping (method, metric, "
                         "parameters).")
    out: dict[str, Any] = {}
    if "method" in data:
        out["method"] = {"bayes": "tpe"}.get(data["method"], data["method"])
    metric = data.get("metric")
    if isinstance(metric, dict):
        if "name" in metric:
            out["metric"] = metric["name"]
        if "goal" in metric:
            out["goal"] = metric["goal"]
    elif metric is not None:
        out["metric"] = metric
    for key in ("trials", "run_cap"):
        if key in data:
            out["trials"] = data[key]
    early = data.get("early_terminate")
    if early:
        out["prune"] = early.get("type") if isinstance(early, dict) else early
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise UsageError(f"{path}: parameters must map names to their values or ranges.")
    out["params"] = {name: _yaml_param(path, name, spec) for name, spec in params.items()}
    return out


def _yaml_param(path: str, name: str, spec: Any) -> Any:
    """One parameter of a sweep file as a spec of labbook.sweep."""
    if not isinstance(spec, dict):
        return spec  # a list: the choices; anything else: a fixed value or a spec text
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        value = spec["value"]
        return repr(value) if isinstance(value, str) else value  # a text stays a text
    if "min" in spec and "max" in spec:
        low, high = spec["min"], spec["max"]
        kind = spec.get("distribution") or ("int_uniform" if isinstance(low, int) and
                                            isinstance(high, int) else "uniform")
        names = {"uniform": "uniform", "log_uniform_values": "loguniform",
                 "loguniform": "loguniform", "int_uniform": "int", "int": "int"}
        if kind not in names:
            raise UsageError(f"{path}: parameter {name} has distribution {kind!r}; use uniform, "
                             "log_uniform_values or int_uniform.")
        return f"{names[kind]}({low!r}, {high!r})"
    raise UsageError(f"{path}: parameter {name} needs values, value, or min and max.")


def cmd_sweep(args: dict) -> str:
    """``labbook sweep EXP ...``: run the trials; a line per run and the best one."""
    from labbook.sweeps import parse_param, sweep

    settings = _sweep_file(args["--config"]) if args["--config"] else {"params": {}}
    params = dict(settings.pop("params"))
    for text in args["--param"] or ():
        param = parse_param(text)
        params[param.name] = text.partition("=")[2]
    for option, key in (("--method", "method"), ("--metric", "metric"), ("--goal", "goal"),
                        ("--prune", "prune")):
        if args[option] is not None:
            settings[key] = args[option]
    if args["--trials"] is not None:
        settings["trials"] = _int(args["--trials"], "--trials")
    if args["--seed"] is not None:
        settings["seed"] = _int(args["--seed"], "--seed")
    if not params:
        raise UsageError("labbook sweep needs parameters: --param NAME=SPEC or --config FILE.")
    if settings.get("prune") == "none":
        settings["prune"] = None
    if args["--launcher"] is not None:
        settings["launcher"] = args["--launcher"]
    if args["--parallel"] is not None:
        settings["parallel"] = _int(args["--parallel"], "--parallel")
    result = sweep(args["EXP"], params, store=_store_arg(args["--store"]),
                   sweep_id=args["--sweep-id"], progress=True, **settings)
    states: dict[str, int] = {}
    for trial in result.study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    lines = [f"Sweep {result.id}: {counts} trial(s) in its study."]
    best = result.best_run()
    if best is not None:
        config = {p: best.config.get(p) for p in params} if hasattr(best.config, "get") else {}
        lines.append(f"Best run {best.id}: {result.metric} = {best.summary.get(result.metric)}"
                     f" with {config}")
    lines.append(f"labbook ls --sweep {result.id}  lists its runs.")
    return "\n".join(lines)


def cmd_run_queue(args: dict) -> tuple[str, str | None]:
    """``labbook run-queue EXP``: the queued runs through a launcher; a summary line, and an
    error line naming the runs that did not complete (None when all did)."""
    from labbook.cli.worker import experiment_name
    from labbook.launchers import parse_launcher, run_queue
    from labbook.stores import default_url

    max_runs = None if args["--max-runs"] is None else _int(args["--max-runs"], "--max-runs")
    parallel = None if args["--parallel"] is None else _int(args["--parallel"], "--parallel")
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel takes a whole number above 0, got {parallel}.")
    experiment = experiment_name(args["EXP"])
    launcher = parse_launcher(args["--launcher"] or "local")
    try:
        board = run_queue(args["EXP"], _store_arg(args["--store"]) or default_url(), launcher,
                          experiment, max_runs=max_runs, parallel=parallel, progress=True)
    finally:
        launcher.close()
    if not board.finished and not board.skipped:
        return f"No queued runs of experiment {experiment!r}.", None
    error = None
    if board.failed:
        ids = ", ".join(map(str, board.failed_runs[:10]))
        more = f" and {len(board.failed_runs) - 10} more" if len(board.failed_runs) > 10 else ""
        error = (f"{board.failed} of the queued runs did not complete (runs {ids}{more}); "
                 f"`labbook show ID` shows each one's status and fail_trace.")
    return f"Done: {board.line()}", error


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
COMMANDS = ("ls", "show", "compare", "export", "plot", "rm", "open", "sync", "worker", "sweep",
            "run-queue", "ui")
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


def _command_usage(command: str) -> list[str]:
    """The usage lines of one command (with their continuation lines)."""
    lines: list[str] = []
    for line in USAGE.split("Options:")[0].splitlines():
        if line.startswith("  labbook "):
            taking = line.split()[1] == command
        elif not (lines and line.startswith("      ") and taking):
            taking = False
        if line.startswith("  labbook ") and taking or lines and taking and line.strip():
            lines.append(line)
    return lines


def _misused_command(argv: list[str]) -> str:
    """The complaint about a known command given arguments its usage does not take: the
    option it does not know (with a close match) when there is one, and its usage lines."""
    import re

    from labbook.errors import suggest

    command = argv[0]
    usage = _command_usage(command)
    known = sorted(set(re.findall(r"--[a-z][a-z-]*", " ".join(usage))))
    for token in argv[1:]:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if token.startswith("-") and name not in known:
            close = suggest(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            head = f"'labbook {command}' has no option '{name}'{hint}"
            break
    else:
        head = f"'labbook {command}' cannot take {' '.join(argv[1:])!r}."
        if _parses(argv + ["1"]) or _parses(argv + ["--metric=x"]):
            head = f"'labbook {command}' needs more arguments."
        else:
            for i in range(len(argv) - 1, 0, -1):  # the last one that is too many
                token = argv[i]
                if not token.startswith("-") and _parses(argv[:i] + argv[i + 1:]):
                    head = f"'labbook {command}' does not take the argument {token!r}."
                    break
    return "\n".join([head, "Usage:", *usage])


def _parses(argv: list[str]) -> bool:
    from docopt import DocoptExit, docopt

    try:
        docopt(USAGE, argv=argv, default_help=False)
    except DocoptExit:
        return False
    return True


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
        if argv and argv[0] in COMMANDS and ("-h" in argv or "--help" in argv):
            print("\n".join(["Usage:", *_command_usage(argv[0])]))  # labbook ls --help
            print("\nRun 'labbook --help' for what the options mean.")
            return 0
        if argv and argv[0] in COMMANDS:
            print(f"Error: {_misused_command(argv)}", file=sys.stderr)
        else:
            print(USAGE.split("Options:")[0].strip(), file=sys.stderr)
        return UsageError.exit_code
    from labbook._version import __version__

    try:
        if args["--version"]:
            print(f"labbook {__version__}")
        elif args["ls"]:
            _say(cmd_ls(args["STORE"] or _store_arg(args["--store"]), args["--filter"],
                        args["--order"], _int(args["--limit"], "--limit"), args["--columns"],
                        sweep=args["--sweep"]))
        elif args["sweep"]:
            _say(cmd_sweep(args))
        elif args["sync"]:
            _say(cmd_sync(args["SRC"], args["DST"] or _store_arg(args["--store"]),
                          filter_text=args["--filter"], dry_run=args["--dry-run"],
                          copy_stores=args["DST"] is not None))
        elif args["worker"]:
            return _worker(args)
        elif args["run-queue"]:
            summary, failed = cmd_run_queue(args)
            _say(summary)
            if failed:  # the runs are stored (FAILED, with their traces); the exit says so
                print(f"Error: {failed}", file=sys.stderr)
                return 1
        elif args["ui"]:
            from labbook.cli.ui import cmd_ui

            return cmd_ui(args["STORE"] or _store_arg(args["--store"]), host=args["--host"],
                          port=_int(args["--port"], "--port"), token=args["--token"],
                          read_only=args["--read-only"])
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
