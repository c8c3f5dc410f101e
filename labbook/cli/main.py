"""The ``labbook`` console script: look at stored runs."""
from __future__ import annotations

import json
import sys
from typing import Any, Sequence

USAGE = """labbook - reproducible, comparable experiments.

Usage:
  labbook ls [STORE] [--filter=JSON] [--order=FIELD] [--limit=N]
  labbook show (ID | latest) [--store=URL]
  labbook sync FAILURE_DIR [--store=URL]
  labbook --version
  labbook (-h | --help)

Options:
  --filter=JSON    Mongo-style filter, e.g. '{"config.lr": {"$gt": 0.01}}'.
  --order=FIELD    Sort by a field path, '-' for descending [default: -_id].
  --limit=N        Show at most N runs [default: 20].
  --store=URL      The store to read [default: $LABBOOK_STORE or sqlite:///labbook.db].

STORE / URL: file://DIR or a directory, sqlite:///file.db, postgresql://..., mysql://...,
mongodb://.../db. Experiments themselves run as scripts:
python my_experiment.py [COMMAND] [with UPDATE...] [OPTIONS] (see their --help).
"""


class CLIError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _fmt_time(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19].replace("T", " ")


def _duration(run: dict) -> str:
    start, stop = run.get("start_time"), run.get("stop_time")
    if not (hasattr(start, "timestamp") and hasattr(stop, "timestamp")):
        return "-"
    seconds = round((stop - start).total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _open(url: str | None):
    from labbook.stores import default_url, open_store, redact_url

    url = url or default_url()
    try:
        return open_store(url), url
    except Exception as exc:  # shown as one line; -d style tracebacks are not needed here
        raise CLIError(f"Cannot open store {redact_url(url)}: {exc}") from exc


def cmd_ls(url: str | None, filter_text: str | None, order: str, limit: int) -> str:
    flt = None
    if filter_text:
        try:
            flt = json.loads(filter_text)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--filter is not valid JSON: {exc.msg} at column {exc.colno}.",
                           2) from None
    store, _ = _open(url)
    from labbook.errors import LabbookError

    try:
        runs = store.find(flt, order=order, limit=limit)
    except LabbookError as exc:
        raise CLIError(str(exc), 2) from None
    rows = [["ID", "EXPERIMENT", "COMMAND", "STATUS", "START", "DURATION", "RESULT"]]
    for run in runs:
        result = run.get("result")
        rows.append([str(run.get("_id")),
                     str((run.get("experiment") or {}).get("name", "-")),
                     str(run.get("command", "-")), str(run.get("status", "-")),
                     _fmt_time(run.get("start_time")), _duration(run),
                     "-" if result is None else json.dumps(result)[:40]])
    if len(rows) == 1:
        return "No runs."
    return _table(rows)


def cmd_show(run_id: str, url: str | None) -> str:
    store, location = _open(url)
    parsed: Any = int(run_id) if run_id.isdigit() else run_id
    if run_id == "latest":
        newest = store.find(order="-_id", limit=1)
        parsed = newest[0]["_id"] if newest else None
    run = store.get(parsed)
    if run is None:
        from labbook.stores import redact_url

        raise CLIError(f"No run with id {run_id} in {redact_url(location)}.")
    lines = [f"Run {run.get('_id')} of {(run.get('experiment') or {}).get('name')} "
             f"({run.get('command')}): {run.get('status')}",
             f"  started  {_fmt_time(run.get('start_time'))}",
             f"  stopped  {_fmt_time(run.get('stop_time'))}  (after {_duration(run)})",
             f"  result   {json.dumps(run.get('result'))}",
             "  config:"]
    from labbook.cli.commands import format_config

    config_text = format_config(run.get("config") or {}, None, colour=False)
    lines += ["  " + line for line in config_text.splitlines()[1:]]
    history = store.history(parsed)
    if history:
        lines.append("  metrics (last value, points):")
        for name in sorted(history):
            values = history[name]["values"]
            lines.append(f"    {name} = {values[-1]!r}  ({len(values)} points)")
    if run.get("artifacts"):
        lines.append("  artifacts: " + ", ".join(run["artifacts"]))
    if run.get("fail_trace"):
        lines.append("  fail trace:")
        lines += ["    " + line for line in "".join(run["fail_trace"]).splitlines()]
    return "\n".join(lines)


def _store_arg(value: str | None) -> str | None:
    return None if not value or value.startswith("$LABBOOK_STORE") else value


def cmd_sync(failure_dir: str, url: str | None) -> str:
    """Replay the journals a QueuedObserver left in ``failure_dir`` into a store."""
    import os

    from labbook.observers.queued import replay
    from labbook.stores import default_url, redact_url

    if not os.path.isdir(failure_dir):
        raise CLIError(f"{failure_dir} is not a directory of failed-run journals.")
    url = url or default_url()
    results = replay(failure_dir, url)
    if not results:
        return f"No journals in {failure_dir}."
    lines = [f"{name}: {count} event(s) delivered to run {run_id} in {redact_url(url)}"
             for name, run_id, count in results]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from docopt import DocoptExit, docopt

    from labbook import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = docopt(USAGE, argv=argv, default_help=False)
    except DocoptExit:
        print(USAGE.split("Options:")[0].strip(), file=sys.stderr)
        return 2
    try:
        if args["--version"]:
            print(f"labbook {__version__}")
        elif args["ls"]:
            print(cmd_ls(args["STORE"], args["--filter"], args["--order"],
                         int(args["--limit"])))
        elif args["sync"]:
            print(cmd_sync(args["FAILURE_DIR"], _store_arg(args["--store"])))
        elif args["show"]:
            print(cmd_show(args["ID"] or "latest", _store_arg(args["--store"])))
        else:
            print(USAGE)
    except CLIError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
