"""The ``labbook`` console script: look at stored runs."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

from labbook.errors import LabbookError

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

sync: with a QueuedObserver failure directory as SRC, replays its journals into DST (or
--store); otherwise copies the runs of the store SRC (matching --filter) into the store DST,
incrementally: runs copied before and unchanged since are skipped.

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


def _parse_filter(text: str | None) -> dict | None:
    """A filter from ``--filter``: JSON when it starts with '{', else the text language."""
    if not text or not text.strip():
        return None
    if text.lstrip().startswith("{"):
        try:
            flt = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--filter is not valid JSON: {exc.msg} at column {exc.colno}.",
                           2) from None
    else:
        from labbook.stores.query_text import parse_text

        try:
            flt = parse_text(text)
        except LabbookError as exc:
            raise CLIError(f"--filter: {exc}", 2) from None
    from labbook.api import normalize_filter

    try:
        return normalize_filter(flt)
    except LabbookError as exc:
        raise CLIError(str(exc), 2) from None


def _api(url: str | None):
    from labbook.api import Api

    store, location = _open(url)
    return Api(store), location


def _run_view(api: Any, run_id: str, location: str):
    from labbook.api import RunNotFoundError

    try:
        return api.run(run_id)
    except RunNotFoundError:
        from labbook.stores import redact_url

        raise CLIError(f"No run with id {run_id} in {redact_url(location)}.") from None


#: ``ls --columns`` names with their headings; any other name is a document path
_BUILTIN_COLUMNS = {"id": "ID", "name": "NAME", "experiment": "EXPERIMENT",
                    "command": "COMMAND", "status": "STATUS", "start": "START",
                    "start_time": "START", "stop": "STOP", "stop_time": "STOP",
                    "duration": "DURATION", "result": "RESULT", "tags": "TAGS",
                    "heartbeat": "HEARTBEAT", "host": "HOST"}
_DEFAULT_COLUMNS = ("id", "name", "status", "start", "duration", "result")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):
        return _fmt_time(value)
    if isinstance(value, str):
        return value[:40]
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=str)[:40]


def _column_value(view: Any, column: str) -> str:
    from labbook.stores.query import _MISSING, lookup

    doc = view.doc
    if column == "id":
        return str(view.id)
    if column == "name":
        return _cell(view.name)
    if column == "experiment":
        return _cell(view.experiment.get("name"))
    if column == "status":
        return _cell(view.status)
    if column in ("start", "start_time"):
        return _fmt_time(view.start_time)
    if column in ("stop", "stop_time"):
        return _fmt_time(view.stop_time)
    if column == "heartbeat":
        return _fmt_time(view.heartbeat)
    if column == "duration":
        return _duration(doc)
    if column == "tags":
        return ",".join(view.tags) or "-"
    if column == "host":
        return _cell(view.host.get("hostname"))
    if column == "result":
        # as the default listing always showed it: JSON, cut at 40 characters
        return "-" if view.result is None else json.dumps(view.result, default=str)[:40]
    if column == "summary" or column.startswith("summary."):
        value = lookup({"summary": view.summary}, column)
    else:
        value = lookup(doc, column)
    return "-" if value is _MISSING else _cell(value)


def cmd_ls(url: str | None, filter_text: str | None, order: str, limit: int,
           columns: str | None = None) -> str:
    flt = _parse_filter(filter_text)
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else \
        list(_DEFAULT_COLUMNS)
    if not names:
        raise CLIError("--columns names no column.", 2)
    api, _ = _api(url)
    try:
        views = api.runs(flt, order=order, per_page=max(limit, 1))[:limit]
    except LabbookError as exc:
        raise CLIError(str(exc), 2) from None
    if not views:
        return "No runs."
    rows = [[_BUILTIN_COLUMNS.get(n, n) for n in names]]
    for view in views:
        rows.append([_column_value(view, n) for n in names])
    return _table(rows)


def cmd_show(run_id: str, url: str | None) -> str:
    store, location = _open(url)
    from labbook.api import RunView

    parsed: Any = int(run_id) if run_id.isdigit() else run_id
    if run_id == "latest":
        newest = store.find(order="-_id", limit=1)
        parsed = newest[0]["_id"] if newest else None
    run = store.get(parsed)
    if run is None:
        from labbook.stores import redact_url

        raise CLIError(f"No run with id {run_id} in {redact_url(location)}.")
    lines = [f"Run {run.get('_id')} of {(run.get('experiment') or {}).get('name')} "
             f"({run.get('command')}): {RunView(run, store).status}",
             f"  started  {_fmt_time(run.get('start_time'))}",
             f"  stopped  {_fmt_time(run.get('stop_time'))}  (after {_duration(run)})",
             f"  result   {json.dumps(run.get('result'))}",
             "  config:"]
    from labbook.config.text import format_config

    config_text = format_config(run.get("config") or {}, None, colour=False)
    lines += ["  " + line for line in config_text.splitlines()[1:]]
    # the last values and the counts: no series is read, however long
    last = store.last_values([parsed]).get(parsed) or {}
    counts = store.metric_counts([parsed]).get(parsed) or {}
    if counts or last:
        lines.append("  metrics (last value, points):")
        for name in sorted(set(counts) | set(last)):
            value = repr(last[name]) if name in last else "-"
            lines.append(f"    {name} = {value}  ({counts.get(name, 0)} points)")
    from labbook.stores.base import artifact_names

    if artifact_names(run):
        lines.append("  artifacts: " + ", ".join(artifact_names(run)))
    if run.get("fail_trace"):
        lines.append("  fail trace:")
        lines += ["    " + line for line in "".join(run["fail_trace"]).splitlines()]
    return "\n".join(lines)


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
        raise CLIError(f"{option} takes a whole number, got {value!r}.", 2) from None


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
        raise CLIError("--filter and --dry-run apply to copying a store (labbook sync SRC DST),"
                       " not to replaying a failure directory.", 2)
    return _replay(source, url)


def cmd_sync_stores(src: str, dst: str | None, filter_text: str | None, dry_run: bool) -> str:
    """``labbook sync SRC DST``: copy runs, incrementally (see labbook/sync.py)."""
    from labbook.stores import redact_url
    from labbook.sync import SyncError, sync

    if not dst:
        raise CLIError("labbook sync SRC DST needs a destination store.", 2)
    if "://" not in src and not os.path.isdir(src):
        raise CLIError(f"{src} is neither a store URL nor a directory.", 2)
    flt = _parse_filter(filter_text)
    try:
        result = sync(src, dst, flt, dry_run=dry_run)
    except SyncError as exc:
        raise CLIError(str(exc)) from None
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
        raise CLIError(f"{failure_dir} is not a directory of failed-run journals.")
    url = url or default_url()
    results = replay(failure_dir, url)
    if not results:
        return f"No journals in {failure_dir}."
    lines = [f"{name}: {count} event(s) delivered to run {run_id} in {redact_url(url)}"
             for name, run_id, count in results]
    return "\n".join(lines)


def _flat_rows(values: list[dict]) -> list[list[str]]:
    """Rows ``[marker + key, value per run]`` with '* ' marking keys whose values differ."""
    rows = []
    missing = object()
    for key in sorted({k for v in values for k in v}):
        raw = [v.get(key, missing) for v in values]
        # compared exactly, shown to 6 significant digits
        distinct = {"\0missing" if r is missing else json.dumps(r, default=str, sort_keys=True)
                    for r in raw}
        marker = "* " if len(distinct) > 1 else "  "
        rows.append([marker + key] + ["-" if r is missing else _cell_full(r) for r in raw])
    return rows


def _cell_full(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=str, sort_keys=True)


def cmd_compare(run_ids: list[str], url: str | None, html_path: str | None) -> str:
    from labbook.api import flatten_dict

    api, location = _api(url)
    views = [_run_view(api, run_id, location) for run_id in run_ids]
    header = [""] + [str(v.id) for v in views]
    out = [f"Comparing runs {', '.join(str(v.id) for v in views)}", ""]
    overview = [header,
                ["  name"] + [_cell(v.name) for v in views],
                ["  status"] + [_cell(v.status) for v in views],
                ["  start"] + [_fmt_time(v.start_time) for v in views],
                ["  duration"] + [_duration(v.doc) for v in views]]
    out += [_table(overview), ""]
    for title, values in (("config", [flatten_dict(v.doc.get("config") or {}) for v in views]),
                          ("summary", [dict(v.summary) for v in views])):
        rows = _flat_rows(values)
        out.append(f"{title}:")
        out.append(_table([[""] + header[1:]] + rows) if rows else "  (none)")
        out.append("")
    out.append("* = differs between the runs")
    if html_path:
        from labbook.report import compare_runs

        compare_runs(*views, path=html_path)
        out.append(f"Wrote {html_path}")
    return "\n".join(out)


def _scalar_columns(frame: Any) -> Any:
    """Lists, dicts and mixed types become JSON text: parquet wants one type per column."""
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        kinds = {type(v) for v in frame[name] if v is not None and v == v}
        if len(kinds) > 1 or kinds & {list, dict, tuple}:
            frame[name] = [None if v is None else json.dumps(v, default=str)
                           for v in frame[name]]
    return frame


def cmd_export(url: str | None, filter_text: str | None, order: str, fmt: str,
               out: str | None) -> str | None:
    fmt = (fmt or "csv").lower()
    if fmt not in ("csv", "json", "parquet"):
        raise CLIError(f"--format must be csv, json or parquet, not {fmt!r}.", 2)
    if fmt == "parquet" and not out:
        raise CLIError("--format parquet needs --out FILE (it is binary).", 2)
    flt = _parse_filter(filter_text)
    api, _ = _api(url)
    try:
        frame = api.runs(flt, order=order).to_dataframe()
    except LabbookError as exc:
        raise CLIError(str(exc), 2) from None
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", indent=2) + "\n"
    else:
        try:
            _scalar_columns(frame).to_parquet(out, index=False)
        except ImportError as exc:
            raise CLIError(f"Parquet needs pyarrow: pip install pyarrow ({exc}).") from None
        return f"Wrote {len(frame)} run(s) to {out}"
    if out:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return f"Wrote {len(frame)} run(s) to {out}"
    sys.stdout.write(text)
    return None


def cmd_plot(run_ids: list[str], metric: str, url: str | None, out: str | None) -> str:
    import re

    from labbook.report import plot_metric

    api, location = _api(url)
    views = [_run_view(api, run_id, location) for run_id in run_ids]
    having = [v for v in views if metric in v.metrics]
    if not having:
        logged = sorted({m for v in views for m in v.metrics})
        known = ", ".join(logged) or "none"
        raise CLIError(f"No run among {', '.join(run_ids)} logged a metric {metric!r} "
                       f"(logged: {known}).")
    path = out or re.sub(r"[^\w.-]+", "_", metric) + ".png"
    with open(path, "wb") as fh:
        fh.write(plot_metric(having, metric, width=8, height=4.5))
    missing = [str(v.id) for v in views if v not in having]
    note = f" (runs without it: {', '.join(missing)})" if missing else ""
    return f"Wrote {path}{note}"


def _confirm(prompt: str) -> bool:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_rm(run_id: str, url: str | None, yes: bool) -> str:
    api, location = _api(url)
    view = _run_view(api, run_id, location)
    what = f"run {view.id} ({view.name}, {view.status})"
    if not yes:
        if not (sys.stdin and sys.stdin.isatty()):
            raise CLIError(f"Refusing to delete {what} without --yes: standard input is not "
                           "a terminal to confirm on.")
        if not _confirm(f"Delete {what} with its metrics and artifacts? [y/N] "):
            return "Nothing deleted."
    try:
        api.store.delete_run(view.id)
    except NotImplementedError as exc:
        raise CLIError(str(exc)) from None
    return f"Deleted {what}."


def cmd_open(run_id: str, url: str | None) -> str:
    from labbook.stores import redact_url

    api, location = _api(url)
    view = _run_view(api, run_id, location)
    lines = [f"Run {view.id} in {redact_url(location)}"]
    base = getattr(api.store, "basedir", None)
    if base is not None:
        lines.append(f"  directory  {os.path.join(base, str(view.id))}")

    def section(title: str, entries: list[tuple[str, str | None]]) -> None:
        if not entries:
            return
        lines.append(f"  {title}:")
        width = max(len(name) for name, _ in entries)
        for name, where in entries:
            lines.append(f"    {name.ljust(width)}  {where or '(inside the store)'}")

    section("artifacts", [(f.name, f.location) for f in view.files()])
    section("sources", [(f.name, f.location) for f in view.sources])
    section("resources", [(f.name, f.location) for f in view.resources])
    if base is None and view.artifacts:
        lines.append(f"  download with: Api({redact_url(location)!r}).run({view.id!r})"
                     ".file(NAME).download()")
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
            print(cmd_ls(args["STORE"] or _store_arg(args["--store"]), args["--filter"],
                         args["--order"], _int(args["--limit"], "--limit"), args["--columns"]))
        elif args["sync"]:
            print(cmd_sync(args["SRC"], args["DST"] or _store_arg(args["--store"]),
                           filter_text=args["--filter"], dry_run=args["--dry-run"],
                           copy_stores=args["DST"] is not None))
        elif args["show"]:
            print(cmd_show(_one(args["ID"]) or "latest", _store_arg(args["--store"])))
        elif args["compare"]:
            print(cmd_compare(args["ID"], _store_arg(args["--store"]), args["--html"]))
        elif args["export"]:
            message = cmd_export(_store_arg(args["--store"]), args["--filter"],
                                 args["--order"], args["--format"], args["--out"])
            if message:
                print(message)
        elif args["plot"]:
            print(cmd_plot(args["ID"], args["--metric"], _store_arg(args["--store"]),
                           args["--out"]))
        elif args["rm"]:
            print(cmd_rm(_one(args["ID"]), _store_arg(args["--store"]), args["--yes"]))
        elif args["open"]:
            print(cmd_open(_one(args["ID"]), _store_arg(args["--store"])))
        else:
            print(USAGE)
    except CLIError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
