"""Side-by-side comparison of runs as one self-contained HTML page.

>>> from labbook import Api, compare_runs
>>> api = Api("file://runs")                                # doctest: +SKIP
>>> compare_runs(api.run(1), api.run(2), path="cmp.html")   # doctest: +SKIP

Nothing in the page is fetched from the network: the CSS is inline, plots are PNG data URIs
drawn with matplotlib's Agg renderer, image artifacts are embedded as data URIs.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from typing import TYPE_CHECKING, Any, Iterable

from labbook.errors import ArgumentError, ArgumentTypeError, ArtifactNameError, MissingExtraError

if TYPE_CHECKING:
    from labbook.api import RunView

__all__ = ["compare_runs", "plot_metric", "require_matplotlib", "split_system_metrics",
           "PLOT_FORMATS", "IMAGE_TYPES", "SYSTEM_METRIC_PREFIX"]

#: the metrics labbook samples itself (CPU, memory, GPU): shown apart from the user's own
SYSTEM_METRIC_PREFIX = "system."


def split_system_metrics(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(the user's metric names, the system.* ones)``, each sorted: readers list the user's
    metrics first and the sampled system metrics in a block of their own."""
    names = sorted(names)
    return ([n for n in names if not n.startswith(SYSTEM_METRIC_PREFIX)],
            [n for n in names if n.startswith(SYSTEM_METRIC_PREFIX)])


#: what :func:`plot_metric` draws: matplotlib's formats, and a page with the SVG inline
PLOT_FORMATS = ("png", "svg", "pdf", "html")

#: artifact extensions shown inline, with their MIME types
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".svg": "image/svg+xml", ".webp": "image/webp"}
#: larger image artifacts are listed, not embedded, to keep the page openable
MAX_EMBEDDED_IMAGE = 5 * 1024 * 1024
#: points per curve in the plots (evenly downsampled, first and last kept)
PLOT_POINTS = 2000

# a colour-blind-friendly cycle (Okabe-Ito), the same in the plots and the legend swatches
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
            "#000000")

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 24px; color: #1d232b; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d6dbe1;
     padding-bottom: 4px; }
.sub { color: #5d6670; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid #d6dbe1; padding: 4px 10px; text-align: left;
         vertical-align: top; }
thead th { background: #f1f3f6; }
tbody th { font-weight: 600; font-family: ui-monospace, Menlo, Consolas, monospace;
           background: #fafbfc; }
td { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap;
     max-width: 420px; overflow-wrap: anywhere; }
tr.diff td, tr.diff th { background: #fff3c4; }
tr.diff th::before { content: "\\2260  "; color: #b15c00; }
td.missing { color: #9aa3ad; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; }
.status-COMPLETED { color: #137333; } .status-FAILED, .status-DIED { color: #b3261e; }
.status-RUNNING { color: #0b57d0; } .status-INTERRUPTED { color: #8a5a00; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #d6dbe1; padding: 6px; background: #fff; }
figure img { display: block; max-width: 520px; height: auto; }
figcaption { font-size: 12px; color: #5d6670; margin-top: 4px; }
.toggle { font-size: 13px; color: #5d6670; }
#only-diff:checked ~ table tr.same { display: none; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
details { margin: 6px 0; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A value as shown in a table cell."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _key(value: Any) -> str:
    """A comparable form of a value (NaN equals NaN here, as a reader expects)."""
    try:
        return json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _collect(runs: Iterable[Any]) -> list[RunView]:
    from labbook.api import RunView

    out: list[RunView] = []
    for item in runs:
        if isinstance(item, RunView):
            out.append(item)
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes | dict):
            out.extend(_collect(item))  # a Runs collection or a list of runs
        else:
            raise ArgumentTypeError(f"compare_runs takes RunView objects (Api().run(id)), got "
                                    f"{type(item).__name__}.")
    return out


def _label(run: RunView) -> str:
    return f"{run.id}: {run.name}" if run.name else str(run.id)


def _png_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def require_matplotlib(what: str = "Plotting") -> None:
    """A :class:`MissingExtraError` (one line, exit status 1) without matplotlib."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"{what} needs matplotlib: pip install 'labbook[plot]'"
                                ) from None


def plot_metric(runs: list[RunView], metric: str, width: float = 5.2, height: float = 3.2,
                format: str = "png") -> bytes:
    """``metric`` against step, one curve per run that logged it, as a ``format`` file:
    ``png``, ``svg``, ``pdf`` or ``html`` (a self-contained page with the SVG inline)."""
    if format not in PLOT_FORMATS:
        raise ArgumentError(f"plot_metric draws {', '.join(PLOT_FORMATS)}, not {format!r}.")
    require_matplotlib()
    if format == "html":
        svg = plot_metric(runs, metric, width, height, "svg").decode("utf-8")
        svg = svg[svg.find("<svg"):]  # inline: without the XML declaration and doctype
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>{_esc(metric)}</title></head><body>{svg}</body></html>\n"
                ).encode("utf-8")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # Figure without pyplot: no global state, no GUI backend; savefig renders with Agg
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.subplots()
    for i, run in enumerate(runs):
        # the store samples the series: a million points never travel for one plot
        rows = run.history([metric], samples=PLOT_POINTS, pandas=False)
        rows = [r for r in rows if r.get(metric) is not None]
        if not rows:
            continue
        steps = [r["_step"] for r in rows]
        values = [_plottable(r[metric]) for r in rows]
        style = "o-" if len(rows) < 30 else "-"
        ax.plot(steps, values, style, markersize=3, linewidth=1.4,
                color=_COLOURS[i % len(_COLOURS)], label=_label(run))
    ax.set_title(metric, fontsize=11)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    if format == "svg":
        fig.savefig(buf, format="svg", metadata={"Date": None})
    else:
        fig.savefig(buf, format=format)
    return buf.getvalue()


def _plottable(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _flat_table(title: str, columns: list[RunView], values: list[dict[str, Any]],
                highlight: bool, toggle_id: str | None = None) -> str:
    keys = sorted({k for v in values for k in v})
    if not keys:
        return f"<h2>{_esc(title)}</h2><p class='sub'>None recorded.</p>"
    parts = [f"<h2>{_esc(title)}</h2>"]
    if toggle_id:
        parts.append(f"<input type='checkbox' id='{toggle_id}'>"
                     f"<label class='toggle' for='{toggle_id}'> only differing values</label>")
    parts.append("<table>" + _header(columns) + "<tbody>")
    for key in keys:
        cells = []
        seen = set()
        for v in values:
            if key in v:
                seen.add(_key(v[key]))
                cells.append(f"<td>{_esc(_fmt(v[key]))}</td>")
            else:
                seen.add("\0missing")
                cells.append("<td class='missing'>&mdash;</td>")
        differs = highlight and len(columns) > 1 and len(seen) > 1
        cls = "diff" if differs else "same"
        parts.append(f"<tr class='{cls}'><th>{_esc(key)}</th>{''.join(cells)}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _header(runs: list[RunView]) -> str:
    cells = "".join(
        f"<th><span class='swatch' style='background:{_COLOURS[i % len(_COLOURS)]}'></span>"
        f"{_esc(_label(run))}</th>" for i, run in enumerate(runs))
    return f"<thead><tr><th></th>{cells}</tr></thead>"


def _overview(runs: list[RunView]) -> str:
    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"

    def duration(run: RunView) -> str:
        seconds = run.duration
        if seconds is None:
            return "-"
        s = round(seconds)
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

    rows = [("experiment", [r.experiment.get("name", "-") for r in runs]),
            ("command", [r.command or "-" for r in runs]),
            ("status", [r.status or "-" for r in runs]),
            ("started (UTC)", [when(r.start_time) for r in runs]),
            ("duration", [duration(r) for r in runs]),
            ("host", [r.host.get("hostname", "-") for r in runs]),
            ("tags", [", ".join(r.tags) or "-" for r in runs])]
    for key in ("group", "variant", "parent"):  # start_run(group=, variant=, parent=), --group
        values = [r.meta.get(key) for r in runs]
        if any(v is not None for v in values):
            rows.append((key, ["-" if v is None else str(v) for v in values]))
    rows += [("notes", [r.notes or "-" for r in runs]),
             ("result", [_fmt(r.result) for r in runs])]
    body = []
    for name, cells in rows:
        tds = []
        for cell in cells:
            cls = f" class='status-{_esc(cell)}'" if name == "status" else ""
            tds.append(f"<td{cls}>{_esc(cell)}</td>")
        body.append(f"<tr><th>{_esc(name)}</th>{''.join(tds)}</tr>")
    return "<h2>Runs</h2><table>" + _header(runs) + "<tbody>" + "".join(body) + \
        "</tbody></table>"


def _plots(runs: list[RunView]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        for name in run.metrics:
            counts[name] = counts.get(name, 0) + 1
    # "shared": logged by at least two of the runs (any metric when there is one run)
    need = 1 if len(runs) == 1 else 2
    shared = sorted(n for n, c in counts.items() if c >= need)
    if not shared:
        return "<h2>Metrics</h2><p class='sub'>No metric logged by more than one run.</p>"

    def figures(names: list[str]) -> str:
        out = []
        for name in names:
            having = [r for r in runs if name in r.metrics]
            uri = _png_uri(plot_metric(having, name))
            out.append(f"<figure><img src=\"{uri}\" alt=\"{_esc(name)}\">"
                       f"<figcaption>{_esc(name)}</figcaption></figure>")
        return "<div class='plots'>" + "".join(out) + "</div>"

    user, system = split_system_metrics(shared)
    parts = ["<h2>Metrics</h2>"]
    if user:
        parts.append(figures(user))
    if system:
        parts.append(f"<details><summary>System metrics ({len(system)})</summary>"
                     f"{figures(system)}</details>")
    return "".join(parts)


def _artifacts(runs: list[RunView]) -> str:
    parts = ["<h2>Artifacts</h2>"]
    if not any(r.artifacts for r in runs):
        return parts[0] + "<p class='sub'>No artifacts.</p>"
    for run in runs:
        files = run.files()
        if not files:
            continue
        items = []
        images = []
        for f in files:
            try:
                size = f.size
            except ArtifactNameError:  # a name planted to read outside the store: not read
                items.append(f"<li><code>{_esc(f.name)}</code> (refused: it points outside "
                             "the run's directory)</li>")
                continue
            items.append(f"<li><code>{_esc(f.name)}</code>"
                         + (f" ({size:,} bytes)" if size is not None else "") + "</li>")
            mime = IMAGE_TYPES.get(os.path.splitext(f.name)[1].lower())
            if mime is None or (size is not None and size > MAX_EMBEDDED_IMAGE):
                continue
            try:
                data = f.read_bytes()
            except OSError:
                continue  # listed above; a missing file must not break the whole report
            if len(data) > MAX_EMBEDDED_IMAGE:
                continue
            images.append(f"<figure><img src=\"{_png_uri(data, mime)}\" alt=\"{_esc(f.name)}\">"
                          f"<figcaption>{_esc(f.name)} (run {_esc(_label(run))})</figcaption>"
                          "</figure>")
        parts.append(f"<h3>Run {_esc(_label(run))}</h3><ul>{''.join(items)}</ul>")
        if images:
            parts.append("<div class='plots'>" + "".join(images) + "</div>")
    return "".join(parts)


def _failures(runs: list[RunView]) -> str:
    failed = [r for r in runs if r.fail_trace]
    if not failed:
        return ""
    parts = ["<h2>Failures</h2>"]
    for run in failed:
        parts.append(f"<details><summary>Run {_esc(_label(run))}</summary>"
                     f"<pre>{_esc(run.fail_trace)}</pre></details>")
    return "".join(parts)


def compare_runs(*runs: Any, path: str | os.PathLike | None = None,
                 title: str | None = None) -> str:
    """A self-contained HTML page comparing ``runs`` (RunView objects, or lists of them):
    overview, config side by side with differing values highlighted, summaries, one plot per
    shared metric, artifacts with images inline. Written to ``path`` too when given."""
    views = _collect(runs)
    if not views:
        raise ArgumentError("compare_runs needs at least one run.")
    require_matplotlib("The HTML comparison")
    ids = ", ".join(str(r.id) for r in views)
    heading = title or f"Comparison of runs {ids}"
    configs = [_flatten(r.doc.get("config") or {}) for r in views]
    summaries, system = [], []
    for run in views:
        user_names, system_names = split_system_metrics(run.summary)
        summaries.append({n: run.summary[n] for n in user_names})
        system.append({n: run.summary[n] for n in system_names})
    body = [f"<h1>{_esc(heading)}</h1>",
            f"<p class='sub'>{len(views)} run(s). Highlighted rows differ between runs.</p>",
            _overview(views),
            _flat_table("Config", views, configs, highlight=True, toggle_id="only-diff"),
            _flat_table("Summary", views, summaries, highlight=True),
            _flat_table("System metrics", views, system, highlight=False)
            if any(system) else "",
            _plots(views),
            _artifacts(views),
            _failures(views)]
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(heading)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            fh.write(page)
    return page


def _flatten(config: dict) -> dict[str, Any]:
    from labbook.api import flatten_dict

    return flatten_dict(config)
