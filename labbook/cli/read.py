"""The read commands of the ``labbook`` console script: ``ls``, ``show``, ``compare``,
``export``, ``plot``, ``rm``, ``open``. They read stores through :mod:`labbook.api` and the
registry only (the import contracts in pyproject.toml keep the run machinery out), and report
problems as :class:`~labbook.errors.UsageError` / :class:`~labbook.errors.CommandError`, which
:func:`labbook.cli.main.main` renders as one line and an exit status.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from labbook.errors import CommandError, LabbookError, NoStoreError, UsageError

__all__ = ["visible", "cmd_ls", "cmd_show", "cmd_compare", "cmd_export", "cmd_plot", "cmd_rm",
           "cmd_open", "parse_filter"]


#: characters a terminal may act on: C0 controls (tab and newline are kept where text allows),
#: DEL, C1 controls, and the bidirectional overrides that reorder what is shown
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(f"[{_CONTROLS}]")
_UNSAFE_CELL = re.compile(f"[\t\n{_CONTROLS}]")


def _escape(match: re.Match) -> str:
    char = match.group()
    return {"\t": "\\t", "\n": "\\n"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible(text: str, cell: bool = False) -> str:
    """``text`` safe to print on a terminal: escape sequences and other control characters in
    stored names, tags, config values or output are shown as ``\\x1b``, never emitted. A table
    ``cell`` also shows tabs and newlines as ``\\t`` and ``\\n``, so rows stay rows."""
    return (_UNSAFE_CELL if cell else _UNSAFE_TEXT).sub(_escape, text)


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
    rows = [[visible(c, cell=True) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _open(url: str | None):
    from labbook.stores import default_url, open_store, redact_url

    given = url
    url = url or default_url()
    try:
        return open_store(url, must_exist=True), url  # read commands create nothing
    except NoStoreError as exc:
        if given is None and not os.environ.get("LABBOOK_STORE"):
            raise NoStoreError(f"{exc} Name the store with --store URL or set "
                               "LABBOOK_STORE.", exc.url) from None
        raise
    except LabbookError:
        raise  # already one line naming the store
    except Exception as exc:  # shown as one line; -d style tracebacks are not needed here
        raise CommandError(f"Cannot open store {redact_url(url)}: {exc}") from exc


def parse_filter(text: str | None) -> dict | None:
    """A filter from ``--filter``: JSON when it starts with '{', else the text language."""
    if not text or not text.strip():
        return None
    if text.lstrip().startswith("{"):
        try:
            flt = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--filter is not valid JSON: {exc.msg} at column "
                             f"{exc.colno}.") from None
    else:
        from labbook.stores.query_text import parse_text

        try:
            flt = parse_text(text)
        except LabbookError as exc:
            raise UsageError(f"--filter: {exc}") from None
    from labbook.api import normalize_filter

    try:
        return normalize_filter(flt)
    except LabbookError as exc:
        raise UsageError(str(exc)) from None


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

        raise CommandError(f"No run with id {run_id} in {redact_url(location)}.") from None


#: ``ls --columns`` names with their headings; any other name is a document path
_BUILTIN_COLUMNS = {"id": "ID", "name": "NAME", "experiment": "EXPERIMENT",
                    "command": "COMMAND", "status": "STATUS", "start": "START",
                    "start_time": "START", "stop": "STOP", "stop_time": "STOP",
                    "duration": "DURATION", "result": "RESULT", "tags": "TAGS",
                    "heartbeat": "HEARTBEAT", "host": "HOST", "group": "GROUP",
                    "variant": "VARIANT", "parent": "PARENT"}
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
    if column in ("group", "variant", "parent"):  # start_run(group=...), --group
        return _cell(view.meta.get(column))
    if column == "result":
        # as the default listing always showed it: JSON, cut at 40 characters
        return "-" if view.result is None else json.dumps(view.result, default=str)[:40]
    if column == "summary" or column.startswith("summary."):
        value = lookup({"summary": view.summary}, column)
    else:
        value = lookup(doc, column)
    return "-" if value is _MISSING else _cell(value)


def cmd_ls(url: str | None, filter_text: str | None, order: str, limit: int,
           columns: str | None = None, sweep: str | None = None) -> str:
    flt = parse_filter(filter_text)
    if sweep:  # the runs of a sweep: its group
        flt = {"group": sweep} if not flt else {"$and": [flt, {"group": sweep}]}
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else \
        list(_DEFAULT_COLUMNS)
    if not names:
        raise UsageError("--columns names no column.")
    api, _ = _api(url)
    try:
        views = api.runs(flt, order=order, per_page=max(limit, 1))[:limit]
    except LabbookError as exc:
        raise UsageError(str(exc)) from None
    if not views:
        return "No runs."
    if not columns and any(v.meta.get("group") is not None for v in views):
        names.insert(names.index("name") + 1, "group")  # folds, trials: shown when there
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
    run = _get_readable(store, parsed)
    if run is None:
        from labbook.stores import redact_url

        raise CommandError(f"No run with id {run_id} in {redact_url(location)}.")
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
    from labbook.report import split_system_metrics

    # the user's metrics first; the sampled system.* ones in a block of their own after them
    user, system = split_system_metrics(set(counts) | set(last))
    for title, names in (("metrics", user), ("system metrics", system)):
        if names:
            lines.append(f"  {title} (last value, points):")
        for name in names:
            value = repr(last[name]) if name in last else "-"
            lines.append(f"    {name} = {value}  ({counts.get(name, 0)} points)")
    from labbook.stores.base import artifact_names

    if artifact_names(run):
        lines.append("  artifacts: " + ", ".join(artifact_names(run)))
    if store.keeps_versions:  # versioned artifacts: one listing of the run's index
        lineage = store.artifact_lineage(run.get("_id"))
        for role in ("logged", "used"):
            if lineage[role]:
                lines.append(f"  {role} versions: " + ", ".join(
                    f"{e['name']}:{e['version'] or e['digest'][:12]}" for e in lineage[role]))
    if run.get("fail_trace"):
        lines.append("  fail trace:")
        lines += ["    " + line for line in "".join(run["fail_trace"]).splitlines()]
    return "\n".join(lines)


def _get_readable(store: Any, run_id: Any) -> dict | None:
    """``store.get(run_id)``; a run whose document cannot be read at all (status BROKEN) is a
    :class:`~labbook.errors.CorruptRunError` naming the file and the problem, one line."""
    import warnings

    from labbook.errors import CorruptRunError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = store.get(run_id)
    problems = (run or {}).get("problems")
    if run is not None and run.get("status") == "BROKEN" and problems:
        raise CorruptRunError("; ".join(str(p) for p in problems))
    for warning in caught:  # the parts that could not be read: warned about once each
        warnings.warn(warning.message, warning.category, stacklevel=2)
    return run


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

    if html_path:
        from labbook.report import require_matplotlib

        require_matplotlib("compare --html")

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
    from labbook.report import split_system_metrics

    summaries: list[dict] = []
    system: list[dict] = []
    for view in views:
        user_names, system_names = split_system_metrics(view.summary)
        summaries.append({n: view.summary[n] for n in user_names})
        system.append({n: view.summary[n] for n in system_names})
    blocks = [("config", [flatten_dict(v.doc.get("config") or {}) for v in views]),
              ("summary", summaries)]
    if any(system):  # the sampled system.* metrics apart, after the user's own
        blocks.append(("system metrics", system))
    for title, values in blocks:
        rows = _flat_rows(values)
        out.append(f"{title}:")
        out.append(_table([[""] + header[1:]] + rows) if rows else "  (none)")
        out.append("")
    out.append("* = differs between the runs")
    if html_path:
        from labbook.report import compare_runs

        page = compare_runs(*views)  # made whole before the file is opened
        with open(html_path, "w", encoding="utf-8") as fh:
            fh.write(page)
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
        raise UsageError(f"--format must be csv, json or parquet, not {fmt!r}.")
    if fmt == "parquet" and not out:
        raise UsageError("--format parquet needs --out FILE (it is binary).")
    flt = parse_filter(filter_text)
    api, _ = _api(url)
    try:
        frame = api.runs(flt, order=order).to_dataframe()
    except LabbookError as exc:
        raise UsageError(str(exc)) from None
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", indent=2) + "\n"
    else:
        try:
            _scalar_columns(frame).to_parquet(out, index=False)
        except ImportError as exc:
            raise CommandError(f"Parquet needs pyarrow: pip install pyarrow ({exc}).") from None
        return f"Wrote {len(frame)} run(s) to {out}"
    if out:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return f"Wrote {len(frame)} run(s) to {out}"
    sys.stdout.write(text)
    return None


def _plot_format(path: str) -> str:
    """The format ``plot --out`` writes, from the file's suffix."""
    from labbook.report import PLOT_FORMATS

    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    suffix = {"htm": "html"}.get(suffix, suffix)
    if suffix not in PLOT_FORMATS:
        raise UsageError(f"--out {path}: plot writes " + ", ".join(f".{f}" for f in PLOT_FORMATS)
                         + " files; name one of those.")
    return suffix


def cmd_plot(run_ids: list[str], metric: str, url: str | None, out: str | None) -> str:
    import re

    from labbook.report import plot_metric, require_matplotlib

    path = out or re.sub(r"[^\w.-]+", "_", metric) + ".png"
    fmt = _plot_format(path)
    require_matplotlib("labbook plot")
    api, location = _api(url)
    views = [_run_view(api, run_id, location) for run_id in run_ids]
    having = [v for v in views if metric in v.metrics]
    if not having:
        logged = sorted({m for v in views for m in v.metrics})
        known = ", ".join(logged) or "none"
        raise CommandError(f"No run among {', '.join(run_ids)} logged a metric {metric!r} "
                           f"(logged: {known}).")
    # drawn first, then written: a failure to draw never leaves an empty file behind
    data = plot_metric(having, metric, width=8, height=4.5, format=fmt)
    with open(path, "wb") as fh:
        fh.write(data)
    missing = [str(v.id) for v in views if v not in having]
    note = f" (runs without it: {', '.join(missing)})" if missing else ""
    return f"Wrote {path}{note}"


def _confirm(prompt: str) -> bool:
    sys.stderr.write(visible(prompt))
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_rm(run_id: str, url: str | None, yes: bool) -> str:
    api, location = _api(url)
    view = _run_view(api, run_id, location)
    what = f"run {view.id} ({view.name}, {view.status})"
    if not yes:
        if not (sys.stdin and sys.stdin.isatty()):
            raise CommandError(f"Refusing to delete {what} without --yes: standard input is not "
                               "a terminal to confirm on.")
        if not _confirm(f"Delete {what} with its metrics and artifacts? [y/N] "):
            return "Nothing deleted."
    try:
        api.store.delete_run(view.id)
    except NotImplementedError as exc:
        raise CommandError(str(exc)) from None
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

    from labbook.errors import ArtifactNameError

    try:
        section("artifacts", [(f.name, f.location) for f in view.files()])
    except ArtifactNameError as exc:  # a name planted to lead out of the store
        raise CommandError(str(exc)) from None
    section("sources", [(f.name, f.location) for f in view.sources])
    section("resources", [(f.name, f.location) for f in view.resources])
    if base is None and view.artifacts:
        lines.append(f"  download with: Api({redact_url(location)!r}).run({view.id!r})"
                     ".file(NAME).download()")
    return "\n".join(lines)
