"""The ASGI app of ``labbook ui``: server-rendered pages (Jinja2, autoescaped), htmx for the
live parts and the edits, uPlot for the charts (both vendored under ``static/``).

Every read goes through :class:`labbook.api.Api` (filters in the text query language, the
summaries, the DIED inference), every edit through :meth:`labbook.api.RunView.update`.
Safety: the CLI binds 127.0.0.1 and then accepts loopback ``Host`` headers only (no DNS
rebinding); a ``token`` guards every request (cookie, ``?token=`` once, or a Bearer header);
edits check the request's Origin against its Host and a CSRF token; ``read_only`` refuses
every edit; artifacts are served under ``Content-Security-Policy: sandbox``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import warnings
from typing import Any, Iterable, Iterator
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse,
                                 RedirectResponse, Response, StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from labbook.api import Api, RunView, flatten_dict
from labbook.errors import LabbookError, LabbookWarning, RunNotFoundError
from labbook.report import IMAGE_TYPES, split_system_metrics
from labbook.ui.decimate import (DEFAULT_POINTS, PAGE_SIZE, csv_rows, decimate_series,
                                 epoch_seconds, sampled_series)

__all__ = ["create_app", "PER_PAGE", "OUTPUT_TAIL", "LOOPBACK_HOSTS"]

HERE = os.path.dirname(os.path.abspath(__file__))
#: runs per page of the table
PER_PAGE = 50
#: characters of captured output shown at the end of a run page
OUTPUT_TAIL = 20_000
#: decimated series kept in memory (about 80 KB each)
SERIES_CACHE = 64
#: bytes of a text, JSON or HTML artifact shown inline
PREVIEW_BYTES = 200_000
#: the Host header values a loopback-bound dashboard accepts (a page on another site that
#: resolves its own name to 127.0.0.1 sends its name: refused)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_COOKIE = "labbook_ui_token"
TEXT_TYPES = {".txt", ".log", ".csv", ".tsv", ".md", ".py", ".yaml", ".yml", ".toml", ".ini",
              ".cfg", ".sh", ".out", ".err"}
BUILTIN_COLUMNS = ("id", "name", "experiment", "status", "start", "duration", "tags")
#: the field each built-in column sorts by (None: no field of the query model holds it)
SORT_FIELDS: dict[str, str | None] = {
    "id": "_id", "name": "name", "experiment": "experiment.name", "status": "status",
    "start": "start_time", "duration": None, "tags": "tags", "group": "group",
    "host": "host.hostname"}


class _Store:
    """The app's one Api, used by one request at a time (some stores' connections are not
    shared between threads)."""

    def __init__(self, api: Api):
        self.api = api
        self.lock = threading.RLock()
        #: decimated series by (run, metric, number of points, points asked): a chart
        #: polled while its run runs reads a series again only when it grew
        self.series: dict[tuple, dict] = {}

    def locked(self, items: Iterable[Any]) -> Iterator[Any]:
        """``items``, each one taken from its iterator under the lock."""
        iterator = iter(items)
        while True:
            with self.lock:
                item = next(iterator, _MISSING)
            if item is _MISSING:
                return
            yield item

    def has_decimated(self, run_id: Any, name: str, total: int, points: int) -> bool:
        return (run_id, name, total, points) in self.series

    def decimated(self, run_id: Any, name: str, total: int, points: int) -> dict:
        key = (run_id, name, total, points)
        found = self.series.get(key)
        if found is None:
            found = decimate_series(self.api.store, run_id, name, total, points)
            if len(self.series) >= SERIES_CACHE:
                self.series.pop(next(iter(self.series)))  # the oldest
            self.series[key] = found
        return found


def _filter(text: str) -> Any:
    """The filter box's text: the query language, or a Mongo-style JSON filter (``{...}``) as
    ``labbook ls --filter`` takes it; None when empty."""
    if not text:
        return None
    if text.startswith("{"):
        from labbook.errors import QueryError

        try:
            found = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QueryError(f"The filter is not valid JSON: {exc.msg} at column "
                             f"{exc.colno}.") from None
        return found
    return text


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _cell(view: RunView, column: str) -> Any:
    if column == "id":
        return view.id
    if column == "name":
        return view.name
    if column == "experiment":
        return view.experiment.get("name")
    if column == "status":
        return view.status
    if column == "start":
        return _when(view.start_time)
    if column == "duration":
        return _duration(view.duration)
    if column == "tags":
        return ", ".join(view.tags)
    if column == "group":
        return view.meta.get("group")
    if column == "host":
        return view.host.get("hostname")
    if column.startswith("summary."):
        return view.summary.get(column[len("summary."):])
    head, _, rest = column.partition(".")
    value: Any = view._doc.get(head)
    for part in rest.split(".") if rest else []:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _column_choices(views: list[RunView]) -> list[str]:
    """The columns the picker offers: group and host, then the config and summary keys the
    shown runs have."""
    config: set[str] = set()
    summary: set[str] = set()
    for view in views:
        config.update(flatten_dict(view._doc.get("config") or {}, "config."))
        summary.update(f"summary.{k}" for k in view.summary)
    user, system = split_system_metrics(summary)
    return ["group", "host"] + sorted(config) + user + system


def _changed_keys(doc: dict) -> set[str]:
    """The config keys the run set itself (``with key=value``, ``config_updates``), as
    recorded in ``meta.config_updates``."""
    updates = (doc.get("meta") or {}).get("config_updates")
    return set(flatten_dict(updates)) if isinstance(updates, dict) else set()


def _artifact_kind(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_TYPES:
        return "image"
    if ext in (".html", ".htm"):
        return "html"
    if ext == ".json":
        return "json"
    if ext in TEXT_TYPES:
        return "text"
    return "file"


def _preview(view: RunView, name: str, kind: str) -> str | None:
    """The start of a text or JSON artifact (JSON pretty-printed when whole), or None."""
    if kind not in ("text", "json"):
        return None
    try:
        with view.file(name).open() as fh:
            data = fh.read(PREVIEW_BYTES + 1)
    except (OSError, LabbookError):
        return None
    text = data[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    if kind == "json" and len(data) <= PREVIEW_BYTES:
        try:
            return json.dumps(json.loads(text), indent=2, sort_keys=True)
        except ValueError:
            return text
    return text + ("\n[...]" if len(data) > PREVIEW_BYTES else "")


def create_app(store_url: Any = None, *, read_only: bool = False, token: str | None = None,
               allowed_hosts: tuple[str, ...] | list[str] | None = None,
               poll_seconds: float = 2.0) -> Starlette:
    """The dashboard over the store ``store_url`` (a URL, a directory, an open Store or an
    :class:`Api`; None: ``$LABBOOK_STORE`` or the embedded default).

    ``read_only``: no edits. ``token``: every request must carry it. ``allowed_hosts``: the
    Host header values accepted (None: any; ``labbook ui`` on 127.0.0.1 passes
    :data:`LOOPBACK_HOSTS`). ``poll_seconds``: how often live parts refresh."""
    api = store_url if isinstance(store_url, Api) else Api(store_url)
    shared = _Store(api)
    secret = (token or secrets.token_urlsafe(32)).encode()
    csrf = hmac.new(secret, b"labbook-ui-csrf", hashlib.sha256).hexdigest()
    env = Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["fmt"] = _fmt
    env.filters["urlpart"] = lambda value: quote(str(value), safe="/")
    env.globals.update(read_only=read_only, csrf=csrf, poll_ms=int(poll_seconds * 1000),
                       split_system_metrics=split_system_metrics)

    def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status_code)

    def get_run(run_id: str) -> RunView:
        return shared.api.run(run_id)

    # -- the runs table ------------------------------------------------------------------------
    def table_context(request: Request) -> dict:
        params = request.query_params
        query = params.get("q", "").strip()
        order = params.get("order", "").strip() or "-start_time"
        picked = [c for c in params.getlist("col") if c]
        try:
            page = max(0, int(params.get("page", "0")))
        except ValueError:
            page = 0
        columns = list(BUILTIN_COLUMNS) + [c for c in picked if c not in BUILTIN_COLUMNS]
        error = None
        hints: list[str] = []
        views: list[RunView] = []
        more = False
        with shared.lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LabbookWarning)
            try:
                runs = shared.api.runs(_filter(query), order=order, per_page=PER_PAGE)
                window = runs[page * PER_PAGE:(page + 1) * PER_PAGE + 1]
                more = len(window) > PER_PAGE
                views = list(window[:PER_PAGE])
                cells = [[_cell(v, c) for c in columns] for v in views]
                choices = _column_choices(views)
            except LabbookError as exc:
                error = str(exc)
                views, cells, choices = [], [], []
        hints = [str(w.message) for w in caught if issubclass(w.category, LabbookWarning)]
        running = any(v.status == "RUNNING" for v in views)
        base = {"q": query, "order": order, "col": picked}

        def link(**changes: Any) -> str:
            merged = dict(base, **changes)
            pairs = [(k, v) for k, v in merged.items() if k != "col" and v not in ("", None)]
            pairs += [("col", c) for c in merged["col"]]
            return "?" + urlencode(pairs)

        sorts: dict[str, str | None] = {}
        for column in columns:
            field = SORT_FIELDS.get(column, column)
            sorts[column] = None if field is None else \
                link(order=("-" + field) if order == field else field, page=0)
        return {"query": query, "order": order, "columns": columns, "picked": picked,
                "choices": choices, "rows": list(zip(views, cells)), "error": error,
                "hints": hints, "page": page, "more": more, "running": running,
                "sorts": sorts, "prev_link": link(page=page - 1) if page else None,
                "next_link": link(page=page + 1) if more else None,
                "self_link": link(page=page), "sort_fields": SORT_FIELDS}

    def index(request: Request) -> Response:
        return render("runs.html", **table_context(request),
                      store=_redacted(shared.api.url))

    def table(request: Request) -> Response:
        context = table_context(request)
        response = render("runs_table.html", **context)
        # the address bar follows the filter, order, columns and page (a reload or a bookmark
        # shows the same table), replaced rather than pushed: the live refresh adds no history
        response.headers["HX-Replace-Url"] = "/" + context["self_link"]
        return response

    # -- one run -------------------------------------------------------------------------------
    def run_page(request: Request) -> Response:
        with shared.lock:
            view = get_run(request.path_params["run_id"])
            doc = view.doc
            # the names from the last values the stores keep (counting a long series' points
            # would read it; the charts say how many points they drew from)
            user, system = split_system_metrics(view.metrics)
            changed = _changed_keys(doc)
            config = [(k, v, k in changed or any(k.startswith(c + ".") for c in changed))
                      for k, v in flatten_dict(doc.get("config") or {}).items()]
            artifacts = []
            for name in view.artifacts:
                kind = _artifact_kind(name)
                artifacts.append({"name": name, "kind": kind, "text": _preview(view, name, kind)})
            context = {
                "run": view, "doc": doc, "config": config, "changed": bool(changed),
                "named_configs": (doc.get("meta") or {}).get("named_configs") or [],
                "info": flatten_dict(view.info), "host": flatten_dict(view.host),
                "repositories": [r for r in view.experiment.get("repositories") or []
                                 if isinstance(r, dict)],
                "dependencies": view.experiment.get("dependencies") or [],
                "user_metrics": user, "system_metrics": system,
                "artifacts": artifacts, "output": view.captured_out[-OUTPUT_TAIL:],
                "output_cut": len(view.captured_out) > OUTPUT_TAIL,
                "started": _when(view.start_time), "duration": _duration(view.duration),
                "summary": view.summary}
        return render("run.html", **context)

    def output(request: Request) -> Response:
        with shared.lock:
            view = get_run(request.path_params["run_id"])
            text = view.captured_out
        return render("output.html", run=view, output=text[-OUTPUT_TAIL:],
                      output_cut=len(text) > OUTPUT_TAIL)

    def series(request: Request) -> Response:
        """Every metric of a run (or those named by ``?name=``), decimated, as JSON.

        ``?quick=1``: the metrics longer than ``points`` as an even sample the store reads
        natively (``history_sampled``: a fraction of a second for a million points), marked
        ``"sampled": true``; the page draws it first, then asks for the min/max decimation,
        which reads the whole series and keeps its spikes."""
        try:
            points = min(max(int(request.query_params.get("points", DEFAULT_POINTS)), 4),
                         100_000)
        except ValueError:
            return PlainTextResponse("points takes a whole number.", status_code=400)
        wanted = request.query_params.getlist("name")
        quick = request.query_params.get("quick") == "1"
        with shared.lock:
            view = get_run(request.path_params["run_id"])
            store = shared.api.store
            counts = store.metric_counts([view.id]).get(view.id) or {}
            names = [n for n in (wanted or sorted(counts)) if n in counts]
            long = [n for n in names if counts[n] > points and
                    not shared.has_decimated(view.id, n, counts[n], points)] if quick else []
            sampled = store.history_sampled(view.id, long, points) if long else {}
            metrics = {name: sampled_series(sampled[name], counts[name]) if name in sampled
                       else shared.decimated(view.id, name, counts[name], points)
                       for name in names}
            status = view.status
            start = view.start_time
        return JSONResponse({"run": view.id, "name": view.name, "status": status,
                             "start": epoch_seconds(start), "metrics": metrics})

    def series_csv(request: Request) -> Response:
        name = request.path_params["name"]
        with shared.lock:
            view = get_run(request.path_params["run_id"])
            if name not in view.metrics:
                return PlainTextResponse(f"Run {view.id} has no metric {name!r}.",
                                         status_code=404)
        pages = shared.api.store.iter_series(view.id, name, PAGE_SIZE)
        filename = f"run{view.id}-{name}.csv".replace('"', "_").replace("/", "_")
        # streamed a page at a time (a long series never sits in memory whole); the store
        # is asked for each page under the lock, not held while the client reads
        return StreamingResponse(csv_rows(shared.locked(pages)),
                                 media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{filename}"'})

    def artifact(request: Request) -> Response:
        name = request.path_params["name"]
        with shared.lock:
            view = get_run(request.path_params["run_id"])
            data = view.file(name).read_bytes()
        kind = _artifact_kind(name)
        ext = os.path.splitext(name)[1].lower()
        media = {"image": IMAGE_TYPES.get(ext), "html": "text/html; charset=utf-8",
                 "json": "application/json", "text": "text/plain; charset=utf-8"
                 }.get(kind) or "application/octet-stream"
        headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
        if kind == "file" or request.query_params.get("download"):
            safe = os.path.basename(name).replace('"', "_")
            headers["Content-Disposition"] = f'attachment; filename="{safe}"'
        return Response(data, media_type=media, headers=headers)

    # -- edits ---------------------------------------------------------------------------------
    async def checked_form(request: Request) -> dict:
        if read_only:
            raise _Refused(403, "This dashboard is read-only (labbook ui --read-only).")
        origin = request.headers.get("origin") or request.headers.get("referer")
        host = request.headers.get("host", "")
        if not origin or urlsplit(origin).netloc != host:
            raise _Refused(403, "Refused: the request comes from another site (its Origin "
                                "does not match this dashboard).")
        form = await request.form()
        if not _same(str(form.get("csrf", "")), csrf):
            raise _Refused(403, "Refused: the form's CSRF token is missing or wrong; reload "
                                "the page.")
        return dict(form)

    def edited(request: Request, view: RunView, fragment: str) -> Response:
        if request.headers.get("hx-request"):
            return render(fragment, run=view)
        return RedirectResponse(f"/run/{view.id}", status_code=303)

    async def edit_tags(request: Request) -> Response:
        form = await checked_form(request)
        tags = [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()]

        def save() -> RunView:
            with shared.lock:
                view = get_run(request.path_params["run_id"])
                view.tags = list(dict.fromkeys(tags))
                view.update()
                return view
        from starlette.concurrency import run_in_threadpool

        return edited(request, await run_in_threadpool(save), "tags.html")

    async def edit_notes(request: Request) -> Response:
        form = await checked_form(request)
        notes = str(form.get("notes", ""))

        def save() -> RunView:
            with shared.lock:
                view = get_run(request.path_params["run_id"])
                view.notes = notes or None
                view.update()
                return view
        from starlette.concurrency import run_in_threadpool

        return edited(request, await run_in_threadpool(save), "notes.html")

    # -- compare -------------------------------------------------------------------------------
    def compare(request: Request) -> Response:
        ids = [part.strip() for value in request.query_params.getlist("id")
               for part in value.split(",") if part.strip()]
        if not ids:
            return render("message.html", status_code=400, title="Nothing to compare",
                          message="Select runs in the table, then press Compare.")
        with shared.lock:
            views = [get_run(i) for i in dict.fromkeys(ids)]
            configs = [flatten_dict(v.doc.get("config") or {}) for v in views]
            summaries = [v.summary for v in views]
            metrics = sorted({m for v in views for m in v.metrics})
        user, system = split_system_metrics(metrics)
        return render("compare.html", runs=views, config=_diff(configs),
                      summary=_diff(summaries), user_metrics=user, system_metrics=system,
                      overview=[("experiment", [v.experiment.get("name") for v in views]),
                                ("status", [v.status for v in views]),
                                ("started", [_when(v.start_time) for v in views]),
                                ("duration", [_duration(v.duration) for v in views]),
                                ("host", [v.host.get("hostname") for v in views]),
                                ("tags", [", ".join(v.tags) for v in views]),
                                ("notes", [v.notes for v in views])])

    # -- errors --------------------------------------------------------------------------------
    def not_found(request: Request, exc: Exception) -> Response:
        return render("message.html", status_code=404, title="Not found", message=str(exc))

    def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Refused)
        return PlainTextResponse(exc.message, status_code=exc.status)

    def bad_request(request: Request, exc: Exception) -> Response:
        return render("message.html", status_code=400, title="Cannot show this",
                      message=str(exc))

    routes = [
        Route("/", index),
        Route("/table", table),
        Route("/run/{run_id}", run_page),
        Route("/run/{run_id}/output", output),
        Route("/run/{run_id}/series", series),
        Route("/run/{run_id}/metric/{name:path}.csv", series_csv),
        Route("/run/{run_id}/artifact/{name:path}", artifact),
        Route("/run/{run_id}/tags", edit_tags, methods=["POST"]),
        Route("/run/{run_id}/notes", edit_notes, methods=["POST"]),
        Route("/compare", compare),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
    ]
    middleware = [Middleware(_Guard, token=token, allowed_hosts=allowed_hosts)]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={RunNotFoundError: not_found, _Refused: refused,
                                        LabbookError: bad_request},
                    lifespan=_closing(shared.api))
    app.state.api = shared.api
    app.state.csrf = csrf
    return app


def _closing(api: Api) -> Any:
    """The app's lifespan: the store's connections are released when the server stops."""
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        try:
            yield
        finally:
            api.close()
    return lifespan


def _diff(values: list[dict]) -> list[tuple[str, list, bool]]:
    """Rows ``(key, [each run's value, or a marker when missing], differs)``."""
    keys = sorted({k for v in values for k in v})
    rows = []
    for key in keys:
        cells = [v.get(key, _MISSING) for v in values]
        shown = {json.dumps(c, sort_keys=True, default=str) if c is not _MISSING else "\0"
                 for c in cells}
        rows.append((key, [None if c is _MISSING else c for c in cells], len(shown) > 1))
    return rows


_MISSING = object()


def _redacted(url: str) -> str:
    from labbook.stores import redact_url

    return redact_url(url)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of a given secret with the expected one."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Guard:
    """The token and Host checks, before any route."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: Any):
        self.app = app
        self.token = token
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        # cookies are shared by every port of a host: one name per token, so two dashboards
        # on one machine do not log each other out
        self.cookie = TOKEN_COOKIE + "_" + hashlib.sha256(
            (token or "").encode()).hexdigest()[:12]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.allowed is not None:
            host = request.headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            name = name.strip("[]").lower()
            if name not in self.allowed:
                await PlainTextResponse(
                    f"Refused: this dashboard answers to {', '.join(sorted(self.allowed))}, "
                    f"not {host!r}.", status_code=421)(scope, receive, send)
                return
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and _same(given, self.token):
                # once from the printed URL; then a cookie, and the token leaves the address
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + ("?" + urlencode(rest) if rest else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
            cookie = request.cookies.get(self.cookie, "")
            bearer = request.headers.get("authorization", "")
            bearer = bearer[7:] if bearer.lower().startswith("bearer ") else ""
            if not (_same(cookie, self.token) or _same(bearer, self.token)):
                await PlainTextResponse(
                    "This dashboard needs its token: open the address labbook ui printed "
                    "(it ends in ?token=...).", status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)
