"""Reading runs back: filter, page, summarise and download, whatever the store.

>>> api = Api("file://runs")                                     # doctest: +SKIP
>>> runs = api.runs("config.lr > 0.01 and status = 'COMPLETED'")  # doctest: +SKIP
>>> runs.to_dataframe()                                           # doctest: +SKIP
>>> api.run(3).history(["loss"], samples=200)                     # doctest: +SKIP

Everything goes through the :class:`~labbook.stores.base.Store` interface, so the file, SQL and
Mongo stores read the same. pandas is imported only by the methods that return DataFrames.
"""
from __future__ import annotations

import datetime as _dt
import operator
import os
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Sequence

from labbook.errors import (ArgumentError, ArgumentTypeError, ArtifactNameError,
                            ExperimentNotFoundError, RunNotFoundError, StoreUnsupportedError,
                            StoredFileNotFoundError)
from labbook.fileio import copy_atomic
from labbook.stores import query as _query
from labbook.stores.base import (LAST_KEY, Store, artifact_names, sample_positions,
                                 sample_series)
from labbook.stores.versions import ArtifactVersion

if TYPE_CHECKING:
    import pandas

__all__ = ["Api", "Artifact", "Runs", "RunView", "StoredFile", "SourceFile", "RunNotFoundError",
           "get_metrics_for_all_jobs", "normalize_filter", "flatten_dict", "downsample"]

#: a run's heartbeat interval when it recorded none; a RUNNING run silent for longer than
#: max(3 of its beats, MIN_SILENCE seconds) is reported as DIED, one that recorded no interval
#: after 60 s (see labbook.stores.query.silence_limit)
DEFAULT_BEAT_INTERVAL = _query.DEFAULT_BEAT_INTERVAL
MIN_SILENCE = _query.MIN_SILENCE


# -- small helpers ------------------------------------------------------------------------------
def normalize_filter(filters: dict | str | None) -> dict | None:
    """A Mongo-style filter dict from a dict, a human filter string or None."""
    if filters is None:
        return None
    if isinstance(filters, str):
        from labbook.stores.query_text import parse_text

        return parse_text(filters) or None
    if isinstance(filters, dict):
        _query.parse(filters)  # fail here, with the filter's own message, not deep in a store
        return filters or None
    raise _query.QueryError(
        f"A filter is a dict or a text like \"config.lr > 0.01\", got {type(filters).__name__}.")


def flatten_dict(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and other values are kept as they are."""
    if not isinstance(value, dict):
        return {prefix.rstrip("."): value} if prefix else {}
    out: dict[str, Any] = {}
    _flatten_into(value, prefix, out)
    return out


def _flatten_into(value: dict, prefix: str, out: dict[str, Any]) -> None:
    # one dict filled in place (not one per level merged upwards): a row per run is made
    # for every DataFrame, so this is on the read path of every table
    for key, item in value.items():
        name = prefix + key if key.__class__ is str else f"{prefix}{key}"
        if isinstance(item, dict) and item:
            _flatten_into(item, name + ".", out)
        else:
            out[name] = item


def downsample(items: Sequence, samples: int | None) -> list:
    """At most ``samples`` items spread evenly, always keeping the first and the last."""
    items = list(items)
    return [items[i] for i in sample_positions(len(items), samples)]


def _parse_id(run_id: Any) -> Any:
    if isinstance(run_id, str) and run_id.strip().isdigit():
        return int(run_id)
    return run_id


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _histories(store: Store, views: Sequence[RunView], per_page: int = 50) -> None:
    """Load the full history of every view that lacks it: one ``history_many`` call per page
    of ``per_page`` runs (stores answer it in one query where they can), never one per run."""
    pending = [v for v in views if v._history is None]
    for chunk in _chunks(pending, per_page):
        found = store.history_many([v.id for v in chunk])
        for view in chunk:
            view._history = found.get(view.id) or {}


def _last_values(store: Store, views: Sequence[RunView], per_page: int = 50) -> None:
    """Load the logged summary (each metric's last value) of every view that lacks it: one
    ``last_values`` call per page of runs, so no full history is read for a summary."""
    pending = [v for v in views if v._last is None and v._history is None]
    for chunk in _chunks(pending, per_page):
        found = store.last_values([v.id for v in chunk])
        for view in chunk:
            view._last = dict(found.get(view.id) or {})


def _variant(doc: dict) -> Any:
    meta = doc.get("meta")
    variant = meta.get("variant") if isinstance(meta, dict) else None
    return "main" if variant is None else variant


# -- the entry point ----------------------------------------------------------------------------
class Api:
    """Read access to one store: ``Api()`` uses ``$LABBOOK_STORE`` or the embedded default.

    ``url`` may also be an open :class:`Store`.
    """

    def __init__(self, url: str | Store | None = None):
        if isinstance(url, Store):
            self.store = url
        else:
            from labbook.stores import open_store

            # for reading: a missing store is an error (NoStoreError), never created
            self.store = open_store(url, must_exist=True)
        self.url = getattr(self.store, "url", "") or (url if isinstance(url, str) else "")

    def __repr__(self) -> str:
        from labbook.stores import redact_url

        return f"Api({redact_url(self.url)!r})"

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def runs(self, filters: dict | str | None = None, order: str | None = "-start_time",
             per_page: int = 50, experiment: str | None = None) -> Runs:
        """Runs matching ``filters`` (a Mongo-style dict or a text such as
        ``"config.lr > 0.01 and status = 'COMPLETED'"``), newest first by default."""
        flt = normalize_filter(filters)
        if experiment is not None:
            by_name = {"experiment.name": experiment}
            flt = by_name if not flt else {"$and": [flt, by_name]}
        return Runs(self.store, flt, _query.canonical_order(order), per_page)

    def run(self, run_id: Any) -> RunView:
        """One run by id (``3`` and ``"3"`` are the same run)."""
        doc = self.store.get(_parse_id(run_id))
        if doc is None:
            from labbook.stores import redact_url

            raise RunNotFoundError(f"No run with id {run_id} in {redact_url(self.url)}.")
        return RunView(doc, self.store)

    def experiments(self) -> list[str]:
        """Names of the experiments that have runs, sorted."""
        names = {(r.get("experiment") or {}).get("name") for r in self.store.find()}
        return sorted(n for n in names if isinstance(n, str))

    # -- the registry view (experiment_results_manager): runs by experiment and variant --------
    def variants(self, experiment: str) -> list[str]:
        """The variants (``start_run(variant=...)``) that runs of ``experiment`` have, sorted;
        runs without one count as ``"main"``, experiment_results_manager's default."""
        docs = self.store.find({"experiment.name": experiment})
        return sorted({str(_variant(doc)) for doc in docs})

    def latest(self, experiment: str, variant: str | None = None,
               status: str | None = None) -> RunView:
        """The newest run (by start time) of ``experiment``, of ``variant`` when given (runs
        without one are ``"main"``) and with ``status`` when given."""
        flt: dict[str, Any] = {"experiment.name": experiment}
        if status is not None:
            flt["status"] = status
        for view in self.runs(flt, order="-start_time", per_page=100):
            if variant is None or _variant(view.doc) == variant:
                return view
        from labbook.stores import redact_url

        what = f"experiment {experiment!r}" + (f", variant {variant!r}" if variant else "") + \
            (f", status {status}" if status else "")
        known = ", ".join(self.experiments()) or "none"
        raise RunNotFoundError(f"No run of {what} in {redact_url(self.url)} (experiments: "
                               f"{known}).")

    def artifact(self, ref: str) -> Artifact:
        """The version of a named artifact ``ref`` names: ``"model"`` (latest),
        ``"model:best"``, ``"model:v2"``; an :class:`ArtifactNotFoundError` lists what exists."""
        from labbook.stores.versions import resolve

        return Artifact(resolve(self.store, ref), self.store)

    def artifacts(self, type: str | None = None) -> list[str]:
        """Names of the versioned artifacts in the store (of ``type`` when given), sorted."""
        return [c["name"] for c in self.store.artifact_collections(type)]


class Artifact(ArtifactVersion):
    """A version of a named artifact read back (see
    :class:`~labbook.stores.versions.ArtifactVersion`): ``logged_by()`` and ``used_by()`` are
    :class:`RunView` lists here."""

    def _runs(self, ids: list) -> list[RunView]:
        views = []
        for run_id in ids:
            doc = self._store.get(run_id)
            if doc is not None:  # a deleted run drops out of the lineage
                views.append(RunView(doc, self._store))
        return views

    def logged_by(self) -> list[RunView]:  # type: ignore[override]
        """The runs that logged this content (the first one made the version)."""
        return self._runs(super().logged_by())

    def used_by(self) -> list[RunView]:  # type: ignore[override]
        """The runs that used this version (``use_artifact``)."""
        return self._runs(super().used_by())


# -- a lazy collection of runs -----------------------------------------------------------------
class Runs:
    """Runs matching a filter, fetched a page at a time as they are used.

    Iterable, ``len()``-able and indexable (``runs[3]``, ``runs[:5]``). The store interface has
    ``limit`` but no offset, so each further fetch asks for twice as many runs as the previous
    one (total reads stay linear in the runs used) and skips those already seen.
    """

    def __init__(self, store: Store, filters: dict | None, order: str | None,
                 per_page: int = 50):
        if per_page < 1:
            raise ArgumentError(f"per_page must be at least 1, got {per_page}.")
        self.store = store
        self.filters = filters
        self.order = order
        self.per_page = per_page
        self._node = _query.parse(filters)
        self._find_options = _find_options(store, self._node, order)
        self._views: list[RunView] = []
        self._ids: set = set()
        self._limit = 0
        self._exhausted = False
        self._fields_checked = False

    def __repr__(self) -> str:
        shown = f"{len(self._views)}{'' if self._exhausted else '+'}"
        return f"<Runs filters={self.filters!r} order={self.order!r} loaded={shown}>"

    # -- fetching -------------------------------------------------------------------------------
    def _view(self, doc: dict) -> RunView:
        view = RunView(doc, self.store)
        view._left_out = frozenset(f for f in self._find_options.get("exclude", ())
                                   if f not in doc)
        return view

    def _add(self, docs: list[dict]) -> None:
        views = []
        for doc in docs:
            run_id = doc.get("_id")
            if run_id in self._ids:
                continue  # already seen on an earlier page
            self._ids.add(run_id)
            views.append(self._view(doc))
        self._views.extend(_paged(views, self.per_page))

    def _fetch(self, wanted: int | None) -> None:
        """Make sure at least ``wanted`` runs are loaded (all of them for None)."""
        if self._exhausted or (wanted is not None and len(self._views) >= wanted):
            return
        # a loop, because runs added or deleted meanwhile can shift pages onto seen runs
        while not self._exhausted and (wanted is None or len(self._views) < wanted):
            if wanted is None:
                limit = None
            else:
                limit = max(wanted, self.per_page, 2 * self._limit)
                limit = -(-limit // self.per_page) * self.per_page  # whole pages
            docs = self.store.find(self.filters, order=self.order, limit=limit,
                                   **self._find_options)
            if not self._fields_checked:
                self._fields_checked = True
                warn_absent_fields(self.store, self._node, self.order, self._find_options, docs)
            self._add(docs)
            self._limit = limit or 0
            if limit is None or len(docs) < limit:
                self._exhausted = True

    # -- sequence protocol ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[RunView]:
        i = 0
        while True:
            if i >= len(self._views):
                self._fetch(i + 1)
                if i >= len(self._views):
                    return
            yield self._views[i]
            i += 1

    def __len__(self) -> int:
        self._fetch(None)
        return len(self._views)

    def __bool__(self) -> bool:
        self._fetch(1)
        return bool(self._views)

    def __getitem__(self, index: int | slice) -> RunView | list[RunView]:
        if isinstance(index, slice):
            start, stop, step = index.start, index.stop, index.step
            if (start is None or start >= 0) and stop is not None and stop >= 0 \
                    and (step is None or step > 0):
                self._fetch(stop)
            else:
                self._fetch(None)
            return self._views[index]
        if not isinstance(index, int):
            raise ArgumentTypeError(f"Runs indices are integers or slices, not "
                                    f"{type(index).__name__}.")
        self._fetch(index + 1 if index >= 0 else None)
        return self._views[index]

    # -- tables ---------------------------------------------------------------------------------
    def to_dataframe(self, config: bool = True, summary: bool = True, info: bool = False
                     ) -> pandas.DataFrame:
        """One row per run: id, name, status, start_time, duration (seconds), ``group``,
        ``variant`` and ``parent`` when a run has them, then the flattened ``config.*``,
        ``summary.*`` and (optionally) ``info.*`` columns."""
        pd = _pandas()
        if self._views or self._exhausted:  # runs already loaded (perhaps edited): from them
            views = list(self)
            if summary:
                _last_values(self.store, views, self.per_page)
            rows = [view._row(config=config, summary=summary, info=info) for view in views]
            return pd.DataFrame.from_records(rows, columns=_columns(rows))
        from labbook.serialize import gc_paused

        # a row (and its cells) per run: collections while they are made and turned into the
        # frame would walk them, and every older object, again and again
        with gc_paused():
            rows = self._rows(config, summary, info)
            return pd.DataFrame.from_records(rows, columns=_columns(rows))

    def _rows(self, config: bool, summary: bool, info: bool) -> list[dict]:
        """The rows of :meth:`to_dataframe` straight from the documents of one ``find``
        (read only: shared with the store's cache where it has one), without a
        :class:`RunView` per run; the runs stay unloaded."""
        options = dict(self._find_options)
        if "shared" in _find_parameters(self.store):
            options["shared"] = True
        docs = self.store.find(self.filters, order=self.order, **options)
        if not self._fields_checked:
            self._fields_checked = True
            warn_absent_fields(self.store, self._node, self.order, self._find_options, docs)
        seen: set = set()
        pairs = []
        for doc in docs:
            run_id = doc.get("_id")
            if run_id in seen:
                continue
            seen.add(run_id)
            pairs.append((doc, doc.get(LAST_KEY)))
        if summary:  # the summaries the store did not send along: a page of runs per call
            missing = [doc.get("_id") for doc, last in pairs if last is None]
            found: dict = {}
            for chunk in _chunks(missing, self.per_page):
                found.update(self.store.last_values(chunk))
            if found:
                pairs = [(doc, found.get(doc.get("_id")) or {} if last is None else last)
                         for doc, last in pairs]
        return [_row(doc, _query.summary_of(doc, last) if summary else None, config, info)
                for doc, last in pairs]

    def histories(self, keys: Sequence[str] | str | None = None, samples: int | None = 500,
                  x_axis: str = "_step", pandas: bool = True) -> Any:
        """Every run's history as :meth:`RunView.history` gives it, one table with a
        ``run_id`` column first. The metrics are read with one ``history_many`` call per page
        of runs."""
        views = list(self)
        if isinstance(keys, str):
            keys = [keys]
        names = None
        if keys is not None:
            names = list(dict.fromkeys(keys))
            if x_axis != "_step" and x_axis not in names:
                names.append(x_axis)
        rows = []
        for chunk in _chunks(views, self.per_page):
            if names is None:
                _histories(self.store, chunk, self.per_page)
                found = {view.id: view._history for view in chunk}
            else:
                found = self.store.history_many([view.id for view in chunk], names)
            for view in chunk:
                series = view._sampled(found.get(view.id) or {}, samples, x_axis)
                for row in view._history_rows(keys, samples, x_axis, series)[0]:
                    rows.append({"run_id": view.id, **row})
        if not pandas:
            return rows
        return _pandas().DataFrame.from_records(rows, columns=_columns(rows) or ["run_id"])


#: fields a listing does not need: left out by stores whose ``find`` takes ``exclude`` and read
#: on first use (``run.captured_out``, ``run.doc``)
LISTING_LEAVES_OUT = ("captured_out",)


#: fields every run has in the query model (derived, or written with every run)
_ALWAYS_THERE = {"_id", "status", "name", "tags", "notes", "start_time", "experiment"}


def warn_absent_fields(store: Store, node: Any, order: str | None, options: dict,
                       found: Sequence[dict] = ()) -> list[str]:
    """Warn (:class:`~labbook.errors.LabbookWarning`) about each field a filter or order names
    that no stored run has, with close matches among the fields the runs do have: a typo
    (``config.lrr``) would otherwise give a wrong answer without a word. ``found``: documents
    already read (a field one of them has needs no query). Returns the fields warned about."""
    paths = set(_query.node_paths(node))
    if order:
        paths.add(order.lstrip("+-"))
    paths = {p for p in paths if p.split(".", 1)[0] not in _ALWAYS_THERE}
    if found:  # fields the filter itself makes every match have
        paths -= _required_paths(node)
    for doc in found:  # (summaries only where the store sent them along: no extra reads)
        if not paths:
            break
        view = _query.query_view(doc, doc.get(LAST_KEY) or {})
        paths = {p for p in paths if _query.lookup(view, p) is _query._MISSING}
    if not paths:
        return []
    lean = {k: v for k, v in options.items() if k == "exclude"}
    absent = sorted(p for p in paths if not store.find({p: {"$exists": True}}, limit=1, **lean))
    if not absent:
        return []
    sample = store.find(None, order="-start_time", limit=20, **options)
    if not sample:
        return []  # an empty store: every field is absent, nothing to warn about
    import warnings

    from labbook.errors import LabbookWarning, did_you_mean

    known: set[str] = set()
    for doc in sample:
        last = doc.pop(LAST_KEY, None)
        view = _query.query_view(doc, last if last is not None else
                                 store.last_values([doc["_id"]]).get(doc["_id"]))
        for key, value in view.items():
            if key in ("captured_out", "host", "experiment", "fail_trace"):
                continue
            if key == "summary" and isinstance(value, dict):
                known.update(f"summary.{name}" for name in value)
                continue
            if not isinstance(value, dict):
                known.add(key)
                continue
            for path in flatten_dict(value, key + "."):
                known.add(path)
                parts = path.split(".")
                known.update(".".join(parts[:i]) for i in range(2, len(parts)))
    for path in absent:
        warnings.warn(LabbookWarning(
            f"No run has the field '{path}'; it is treated as missing in every run."
            f"{did_you_mean(path, known)}"), stacklevel=4)
    return absent


def _required_paths(node: Any) -> set[str]:
    """Fields every run matching ``node`` has (conditions no missing field can satisfy, in a
    conjunction)."""
    if isinstance(node, _query.Cond):
        op, value = node.op, node.value
        if op in ("$gt", "$gte", "$lt", "$lte", "$regex", "$all", "$size") or \
                (op == "$eq" and value is not None) or (op == "$exists" and value) or \
                (op == "$in" and None not in value):
            return {node.path}
        return set()
    if isinstance(node, _query.Logical) and node.op == "$and":
        return set().union(*(_required_paths(p) for p in node.parts))
    return set()


def _find_options(store: Store, node: Any, order: str | None) -> dict:
    """The ``find`` keyword arguments a listing passes where the store takes them: ``exclude``
    for what it does not need (unless the filter or order looks at it), ``with_last`` for the
    runs' summaries with their documents."""
    parameters = _find_parameters(store)
    options: dict = {}
    if "with_last" in parameters:
        options["with_last"] = True  # summaries come with the documents where they are at hand
    if "exclude" in parameters:
        heads = _query.heads(node, order)
        fields = tuple(f for f in LISTING_LEAVES_OUT if f not in heads)
        if fields:
            options["exclude"] = fields
    return options


def _find_parameters(store: Store) -> Any:
    """The parameters of the store's ``find`` (empty when they cannot be known)."""
    import inspect

    try:
        return inspect.signature(store.find).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or a mock
        return {}


def _paged(views: list[RunView], per_page: int) -> list[RunView]:
    """Make the views of each page peers: the first summary asked of one loads the page's."""
    for chunk in _chunks(views, per_page):
        peers = list(chunk)
        for view in peers:
            view._peers = peers
    return views


def _columns(rows: list[dict]) -> list[str]:
    """The union of the rows' keys, in first-seen order for fixed ones, sorted within groups."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    fixed = [k for k in seen if "." not in k]
    groups = ("config.", "summary.", "info.")
    rest = [k for k in seen if "." in k]
    ordered = []
    for prefix in groups:
        ordered += sorted(k for k in rest if k.startswith(prefix))
    ordered += [k for k in rest if not k.startswith(groups)]
    return fixed + ordered


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is in the test extra
        raise ImportError("This needs pandas: pip install 'labbook[analysis]' (or pass "
                          "pandas=False where offered).") from None
    return pandas


# -- one run ------------------------------------------------------------------------------------
class RunView:
    """A stored run, read back: fields of the document plus history, summary and files.

    ``tags``, ``notes``, ``name`` and ``summary`` may be edited, then saved with :meth:`update`.
    """

    def __init__(self, doc: dict, store: Store):
        if LAST_KEY in doc:  # find(..., with_last=True): the run's last values came along
            doc = dict(doc)
            last = doc.pop(LAST_KEY)
        else:
            last = None
        self._doc = doc
        self._store = store
        self._history: dict[str, dict[str, list]] | None = None
        #: each metric's last value, when loaded without the full history
        self._last: dict[str, Any] | None = dict(last) if last is not None else None
        #: runs fetched on the same page: their summaries are loaded together
        self._peers: list[RunView] = [self]
        #: fields the store left out of the document (read on first use)
        self._left_out: frozenset = frozenset()
        self._summary: dict[str, Any] | None = None
        self.id = doc.get("_id")
        # derived as every store's queries derive them (labbook.stores.query)
        self.name: str | None = _query.run_name(doc)
        self.tags: list[str] = _query.run_tags(doc)
        # Sacred's --comment is the closest thing to notes when no notes were written
        self.notes: str | None = _query.run_notes(doc)
        self._saved = (self.name, list(self.tags), self.notes)

    def __repr__(self) -> str:
        return f"<RunView {self.id} {self.name!r} {self.status}>"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, RunView) and other.id == self.id and \
            other._store is self._store

    def __hash__(self) -> int:
        return hash((self.id, id(self._store)))

    # -- document fields ------------------------------------------------------------------------
    @property
    def doc(self) -> dict:
        """The raw run document as the store returned it."""
        self._complete()
        return self._doc

    def _complete(self) -> None:
        """Read the fields a listing left out (``captured_out``), once, for the runs of the
        page together."""
        if not self._left_out:
            return
        pending = [v for v in self._peers if v._left_out] or [self]
        found = {d.get("_id"): d for d in
                 self._store.find({"_id": {"$in": [v.id for v in pending]}})}
        for view in pending:
            full = found.get(view.id) or {}
            view._doc = dict(view._doc, **{k: full[k] for k in view._left_out if k in full})
            view._left_out = frozenset()

    @property
    def config(self) -> Any:
        """The configuration, with attribute access (``run.config.optimizer.lr``)."""
        from munch import munchify

        return munchify(self._doc.get("config") or {})

    @property
    def info(self) -> dict:
        return self._doc.get("info") or {}

    @property
    def meta(self) -> dict:
        return self._doc.get("meta") or {}

    @property
    def host(self) -> dict:
        return self._doc.get("host") or {}

    @property
    def experiment(self) -> dict:
        """The experiment's record: name, base_dir, sources, dependencies, repositories."""
        return self._doc.get("experiment") or {}

    @property
    def command(self) -> str | None:
        return self._doc.get("command")

    @property
    def start_time(self) -> _dt.datetime | None:
        return _query.as_time(self._doc.get("start_time"))

    @property
    def stop_time(self) -> _dt.datetime | None:
        return _query.as_time(self._doc.get("stop_time"))

    @property
    def heartbeat(self) -> _dt.datetime | None:
        return _query.as_time(self._doc.get("heartbeat"))

    @property
    def duration(self) -> float | None:
        """Seconds from start to stop (None while running or never started)."""
        start, stop = self.start_time, self.stop_time
        if start is None or stop is None:
            return None
        return (stop - start).total_seconds()

    @property
    def result(self) -> Any:
        return self._doc.get("result")

    @property
    def fail_trace(self) -> str | None:
        trace = self._doc.get("fail_trace")
        if trace is None:
            return None
        return "".join(trace) if isinstance(trace, list) else str(trace)

    @property
    def captured_out(self) -> str:
        self._complete()
        return self._doc.get("captured_out") or ""

    @property
    def stored_status(self) -> str | None:
        """The status as written by the run, without the DIED inference."""
        return self._doc.get("status")

    @property
    def beat_interval(self) -> float:
        return _query.beat_interval(self._doc)

    @property
    def status(self) -> str | None:
        """The stored status, but DIED for a RUNNING run whose heartbeat stopped: silent for
        longer than max(3 of its recorded heartbeat intervals, 5 s), or 60 s when it recorded
        no interval (runs written by Sacred)."""
        return _query.reported_status(self._doc)

    # -- metrics --------------------------------------------------------------------------------
    def _full_history(self) -> dict[str, dict[str, list]]:
        if self._history is None:
            self._history = self._store.history(self.id)
        return self._history

    @property
    def metrics(self) -> list[str]:
        """Names of the logged metrics, sorted."""
        if self._history is None:
            return sorted(self._last_logged())
        return sorted(self._full_history())

    @property
    def summary(self) -> dict[str, Any]:
        """Last value of every metric, overridden by ``info["summary"]`` (editable)."""
        if self._summary is None:
            self._summary = _query.summary_of(self._doc, self._last_logged())
        return self._summary

    @summary.setter
    def summary(self, value: dict) -> None:
        self._summary = dict(value)

    def _last_logged(self) -> dict[str, Any]:
        if self._history is not None:
            return {name: series["values"][-1]
                    for name, series in self._history.items() if series["values"]}
        if self._last is None:
            # with the other runs of its page: one store call for all of them
            peers = self._peers if self in self._peers else [self]
            _last_values(self._store, peers, len(peers))
        return self._last or {}

    def _logged_summary(self) -> dict[str, Any]:
        return dict(sorted(self._last_logged().items()))

    def _sampled(self, series: dict[str, dict[str, list]], samples: int | None,
                 x_axis: str) -> dict[str, dict[str, list]]:
        """Full series cut down as ``history_sampled`` does (on the step axis only: another
        axis needs every metric at the same steps)."""
        if samples is None or x_axis != "_step":
            return series
        return {name: sample_series(points, samples) for name, points in series.items()}

    def _read_series(self, names: list[str] | None, samples: int | None, x_axis: str
                     ) -> dict[str, dict[str, list]]:
        if samples is None or x_axis != "_step":
            return self._series(names)
        if self._history is not None:
            return self._sampled(self._series(names), samples, x_axis)
        if names is not None and not names:
            return {}
        # each metric cut down by the store (natively where it can: a long series is never
        # read whole), then aligned on the steps
        return self._store.history_sampled(self.id, names, samples)

    def _series(self, names: Sequence[str] | None) -> dict[str, dict[str, list]]:
        if self._history is not None:
            full = self._history
            return full if names is None else {n: full[n] for n in names if n in full}
        if names is None:
            return self._full_history()
        return self._store.history(self.id, list(names))

    def _aligned_rows(self, keys: Sequence[str] | str | None, x_axis: str,
                      samples: int | None = None, series: dict | None = None
                      ) -> tuple[list, list]:
        if isinstance(keys, str):
            keys = [keys]
        wanted = None if keys is None else list(dict.fromkeys(keys))
        fetch = wanted
        if fetch is not None and x_axis != "_step" and x_axis not in fetch:
            fetch = fetch + [x_axis]
        if series is None:
            series = self._read_series(fetch, samples, x_axis)
        names = wanted if wanted is not None else sorted(series)
        columns = ["_step"]
        if x_axis != "_step":
            columns.append(x_axis)
        columns += [n for n in names if n not in columns]
        by_step: dict[Any, dict] = {}
        for name in columns[1:]:
            points = series.get(name)
            if points is None:
                continue
            for step, value in zip(points["steps"], points["values"]):
                by_step.setdefault(step, {})[name] = value  # a repeated step: last one wins
        rows = [{c: (step if c == "_step" else values.get(c)) for c in columns}
                for step, values in sorted(by_step.items(), key=lambda kv: _step_key(kv[0]))]
        if x_axis != "_step":
            rows = [r for r in rows if r.get(x_axis) is not None]
            rows.sort(key=lambda r: _step_key(r[x_axis]))
        return rows, columns

    def history(self, keys: Sequence[str] | str | None = None, samples: int | None = 500,
                x_axis: str = "_step", pandas: bool = True) -> Any:
        """Metric values aligned on step: a column ``_step`` plus one per key (all metrics by
        default), at most ``samples`` rows (``samples=None``: every row). ``x_axis`` may name
        a metric to order the rows by. A pandas DataFrame, or a list of dicts with
        ``pandas=False``.

        Downsampling keeps the first and last points and spreads the others evenly: on the
        step axis each metric is first cut to ``samples`` points by the store
        (``history_sampled``, natively where the store can, so a long series is never read
        whole), the points are aligned on their steps and the rows cut to ``samples``; with
        another ``x_axis`` the full series are aligned and the rows cut."""
        rows, columns = self._history_rows(keys, samples, x_axis)
        if not pandas:
            return rows
        return _pandas().DataFrame.from_records(rows, columns=columns)

    def _history_rows(self, keys: Sequence[str] | str | None, samples: int | None,
                      x_axis: str, series: dict | None = None) -> tuple[list, list]:
        """(rows, columns) of :meth:`history`, from ``series`` when given (else read)."""
        if samples is not None and samples < 2:
            raise ArgumentError(f"samples must be at least 2 (first and last are kept), got "
                                f"{samples}.")
        rows, columns = self._aligned_rows(keys, x_axis, samples, series)
        return downsample(rows, samples), columns

    def scan_history(self, keys: Sequence[str] | str | None = None, page_size: int = 1000
                     ) -> Iterator[dict]:
        """Every point, as rows aligned on step like :meth:`history` with ``samples=None``,
        streamed: each metric is read from the store ``page_size`` points at a time
        (``Store.iter_series``) and the metrics are merged by step, so a run of any length
        is scanned in bounded memory and in time linear in its points. (Steps are expected
        to grow, as ``log_scalar`` and ``log`` make them; a step logged out of order is
        still yielded, in the window of points it was read with.)

        With ``keys``, as in wandb's ``scan_history(keys=...)``, only the rows that have a
        value for every key are yielded (a step where one of them was not logged is left
        out); without, every row, None where a metric has no value at that step."""
        if page_size < 1:
            raise ArgumentError(f"page_size must be at least 1, got {page_size}.")
        if isinstance(keys, str):
            keys = [keys]
        names = list(dict.fromkeys(keys)) if keys is not None else self.metrics
        columns = ["_step"] + [n for n in names if n != "_step"]

        if len(columns) == 2:  # one metric: its points in order, no merge needed
            yield from self._scan_one(columns[1], page_size)
        else:
            yield from self._scan_merged(columns, keys is not None, page_size)

    def _scan_merged(self, columns: list[str], complete: bool, page_size: int
                     ) -> Iterator[dict]:
        """scan_history of several metrics, merged by step a window at a time: every metric
        holds at least one page; the smallest last step among those with more to read bounds
        the window; the points before it become rows (a dict per step, sorted once per
        window) and the metric that set the bound reads its next page. With ``complete``
        (wandb: with keys, only rows holding all of them) a row needs every metric."""
        names = columns[1:]
        pages = {name: _series_pages(self._store, self.id, name, page_size) for name in names}
        buffers: dict[str, list[tuple]] = {name: [] for name in names}
        reading = set(names)

        def read(name: str) -> None:
            page = next(pages[name], None)
            if page is None:
                reading.discard(name)
                return
            steps = page["steps"]
            keys = [(0, step, "") if step.__class__ in _NUMBER_TYPES else _step_key(step)
                    for step in steps]
            buffers[name].extend(zip(keys, steps, page["values"]))

        while True:
            for name in names:
                while name in reading and not buffers[name]:
                    read(name)
            bounding = min(reading, key=lambda name: buffers[name][-1][0], default=None)
            bound = buffers[bounding][-1][0] if bounding is not None else None
            rows: dict[tuple, dict] = {}
            filled: dict[tuple, set] = {}
            for name in names:
                buffer = buffers[name]
                if bound is None or (buffer and buffer[-1][0] < bound):
                    taken, buffers[name] = buffer, []
                elif not buffer or buffer[0][0] >= bound:
                    continue
                else:
                    taken = [point for point in buffer if point[0] < bound]
                    buffers[name] = [point for point in buffer if point[0] >= bound]
                for key, step, value in taken:
                    row = rows.get(key)
                    if row is None:
                        rows[key] = row = dict.fromkeys(columns)
                        row["_step"] = step
                    row[name] = value  # a repeated step: the last value wins, as in history()
                    if complete:
                        filled.setdefault(key, set()).add(name)
            for key in sorted(rows):
                if not complete or len(filled[key]) == len(names):
                    yield rows[key]
            if bounding is None:
                return
            read(bounding)

    def _scan_one(self, name: str, page_size: int) -> Iterator[dict]:
        """scan_history of one metric: a row per step (a repeated step keeps its last value)."""
        row: dict | None = None
        last: Any = _NO_STEP
        for page in _series_pages(self._store, self.id, name, page_size):
            steps, values = page["steps"], page["values"]
            if steps and not steps[0] == last and not any(map(_eq, steps, steps[1:])):
                # no step repeats in the page (the usual case): a row per point, in one loop;
                # the last stays pending, as the next page may repeat its step
                rows = [{"_step": step, name: value} for step, value in zip(steps, values)]
                if rows:
                    if row is not None:
                        yield row
                    row = rows.pop()
                    last = row["_step"]
                    yield from rows
                continue
            for step, value in zip(steps, values):
                if step == last and _step_key(step) == _step_key(last):
                    row[name] = value  # type: ignore[index]
                    continue
                if row is not None:
                    yield row
                row, last = {"_step": step, name: value}, step
        if row is not None:
            yield row

    # -- files ----------------------------------------------------------------------------------
    @property
    def artifacts(self) -> list[str]:
        """Names of the stored artifacts, in the order they were added."""
        return artifact_names(self._doc)

    def files(self) -> list[StoredFile]:
        return [StoredFile(self, name) for name in self.artifacts]

    def _lineage(self, role: str) -> list[Artifact]:
        from labbook.stores.versions import resolve

        if not self._store.keeps_versions:
            return []
        return [Artifact(resolve(self._store, f"{e['name']}:{e['version']}"), self._store)
                for e in self._store.artifact_lineage(self.id)[role] if e["version"]]

    def logged_artifacts(self) -> list[Artifact]:
        """The versions of named artifacts this run logged (``log_artifact``)."""
        return self._lineage("logged")

    def used_artifacts(self) -> list[Artifact]:
        """The versions of named artifacts this run used (``use_artifact``)."""
        return self._lineage("used")

    def file(self, name: str) -> StoredFile:
        if name not in self.artifacts:
            known = ", ".join(self.artifacts) or "none"
            raise StoredFileNotFoundError(f"Run {self.id} has no artifact {name!r} (it has: "
                                          f"{known}).")
        return StoredFile(self, name)

    @property
    def sources(self) -> list[SourceFile]:
        """The experiment's source files as stored with the run."""
        out = []
        for entry in self.experiment.get("sources") or []:
            if isinstance(entry, list | tuple) and len(entry) >= 2:
                out.append(SourceFile(self._store, str(entry[0]), entry[1]))
        return out

    @property
    def resources(self) -> list[SourceFile]:
        """Files the run read (``open_resource``), as stored."""
        return [SourceFile(self._store, str(e[0]), e[1]) for e in self._doc.get("resources") or []
                if isinstance(e, list | tuple) and len(e) >= 2]

    # -- editing --------------------------------------------------------------------------------
    def update(self) -> None:
        """Save edited ``name``, ``tags``, ``notes`` and ``summary`` to the store
        (``meta.name``, ``meta.tags``, ``meta.notes``, ``info.tags``, ``info.summary``, and
        Omniboard's ``omniboard.tags`` / ``omniboard.notes`` where the run has them)."""
        meta = dict(self.meta)
        info = dict(self.info)
        fields: dict[str, Any] = {}
        name, tags, notes = self._saved
        if (self.name, self.tags, self.notes) != (name, tags, notes):
            if self.name != name:
                meta["name"] = self.name
            meta["tags"] = list(dict.fromkeys(str(t) for t in self.tags))
            if self.notes != notes:
                meta["notes"] = self.notes
            fields["meta"] = meta
            omniboard = self._doc.get("omniboard")
            if isinstance(omniboard, dict):  # Omniboard shows (and edits) these
                omniboard = dict(omniboard, tags=list(meta["tags"]))
                if self.notes != notes:
                    omniboard["notes"] = self.notes
                fields["omniboard"] = omniboard
            valued = info.get("tags") or {}
            # a removed tag goes from both places, or it would come back on the next read
            kept = {k: v for k, v in valued.items() if str(k) in meta["tags"]}
            if kept != valued:
                info["tags"] = kept
                fields["info"] = info
        if self._summary is not None:
            logged = self._logged_summary()
            overrides = {k: v for k, v in self._summary.items()
                         if k not in logged or not _same(logged[k], v)}
            if overrides != (info.get("summary") or {}):
                if overrides:
                    info["summary"] = overrides
                else:
                    info.pop("summary", None)
                fields["info"] = info
        if not fields:
            return
        from labbook import serialize

        self._store.update_run(self.id, {k: serialize.flatten(v) for k, v in fields.items()})
        self._doc = dict(self._doc, **fields)
        self._saved = (self.name, list(self.tags), self.notes)

    # -- tables ---------------------------------------------------------------------------------
    def _row(self, config: bool = True, summary: bool = True, info: bool = False) -> dict:
        row = _row(self._doc, self.summary if summary else None, config, info)
        row["name"] = self.name  # perhaps edited
        return row


def _row(doc: dict, summary: dict | None, config: bool, info: bool) -> dict:
    """A run's row of :meth:`Runs.to_dataframe`, from its document and its summary (None: no
    ``summary.*`` columns)."""
    start, stop = _query.as_time(doc.get("start_time")), _query.as_time(doc.get("stop_time"))
    row: dict[str, Any] = {
        "id": doc.get("_id"), "name": _query.run_name(doc),
        "status": _query.reported_status(doc), "start_time": start,
        "duration": None if start is None or stop is None else (stop - start).total_seconds()}
    meta = doc.get("meta")
    if isinstance(meta, dict):  # start_run(group=, variant=, parent=), --group: when set
        for key in ("group", "variant", "parent"):
            if meta.get(key) is not None:
                row[key] = meta[key]
    if config:
        config_doc = doc.get("config")
        if isinstance(config_doc, dict):
            _flatten_into(config_doc, "config.", row)
        elif config_doc:
            row.update(flatten_dict(config_doc, "config."))
    if summary is not None:
        for key, value in summary.items():
            row[f"summary.{key}"] = value
    if info:
        row.update(flatten_dict(doc.get("info") or {}, "info."))
    return row


def _same(a: Any, b: Any) -> bool:
    # NaN != NaN, yet a NaN summary equal to the logged NaN is no edit
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


_NO_STEP = object()
_NUMBER_TYPES = (int, float, bool)
_eq = operator.eq


def _series_pages(store: Store, run_id: Any, name: str, page_size: int
                  ) -> Iterator[dict[str, list]]:
    """``store.iter_series`` without the timestamps where the store can leave them out (rows
    of scanned histories show none; a store written before ``times`` gets them and they are
    ignored)."""
    import inspect

    try:
        takes_times = "times" in inspect.signature(store.iter_series).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or a mock
        takes_times = False
    if takes_times:
        return iter(store.iter_series(run_id, name, page_size, times=False))
    return iter(store.iter_series(run_id, name, page_size))


def _step_key(value: Any) -> tuple:
    if isinstance(value, bool | int | float):
        return (0, value, "")
    return (1, 0, str(value))


def _file_store_base(store: Store) -> str | None:
    return store.local_dir


def _inside(path: str, base: str) -> bool:
    """Whether ``path``, links resolved, lies inside the directory ``base``."""
    real, root = os.path.realpath(path), os.path.realpath(base)
    return real != root and os.path.commonpath([real, root]) == root


class StoredFile:
    """An artifact of a run: ``download()``, ``open()`` or ``read_bytes()``."""

    def __init__(self, run: RunView, name: str):
        self.run = run
        self.name = name

    def __repr__(self) -> str:
        return f"<StoredFile {self.name!r} of run {self.run.id}>"

    @property
    def location(self) -> str | None:
        """The path on disk for a file store, else None (the file lives in the database)."""
        base = _file_store_base(self.run._store)
        if base is None:
            return None
        directory = os.path.join(base, str(self.run.id))
        path = os.path.normpath(os.path.join(directory, self.name))
        if os.path.isabs(self.name) or not _inside(path, directory):
            raise ArtifactNameError(f"Run {self.run.id} names an artifact {self.name!r} that "
                                    f"points outside its directory in {base}; refused.")
        return os.path.join(directory, self.name)

    @property
    def size(self) -> int | None:
        location = self.location
        if location is not None and os.path.exists(location):
            return os.path.getsize(location)
        return None

    def open(self) -> BinaryIO:
        return self.run._store.open_artifact(self.run.id, self.name)

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def download(self, root: str | os.PathLike = ".", replace: bool = False) -> str:
        """Copy the artifact to ``root/<name>``; the path written. An existing file is a
        ValueError unless ``replace``."""
        root = os.path.abspath(os.fspath(root))
        target = os.path.normpath(os.path.join(root, self.name))
        if os.path.commonpath([root, target]) != root:
            raise ArtifactNameError(f"Artifact name {self.name!r} points outside {root}.")
        if os.path.exists(target) and not replace:
            raise ArgumentError(f"{target} exists; pass replace=True to overwrite it.")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with self.open() as src:
            copy_atomic(src, target)  # never a half-written file under the real name
        return target


class SourceFile:
    """A stored source or resource: its recorded name and where the store keeps it."""

    def __init__(self, store: Store, name: str, stored: Any):
        self._store = store
        self.name = name
        self.stored = stored

    def __repr__(self) -> str:
        return f"<SourceFile {self.name!r} stored as {self.stored!r}>"

    @property
    def location(self) -> str | None:
        base = _file_store_base(self._store)
        return None if base is None else os.path.join(base, str(self.stored))

    def read_bytes(self) -> bytes:
        """The stored bytes; a file recorded outside the store (``../x``, an absolute path, a
        link pointing out) is refused with an :class:`ArtifactNameError`."""
        if self.location is not None:
            base = _file_store_base(self._store) or ""
            if not _inside(self.location, base):
                raise ArtifactNameError(f"{self.name!r} is recorded at {self.stored!r}, outside "
                                        f"the store {base}; refused.")
            with open(self.location, "rb") as fh:
                return fh.read()
        opener = getattr(self._store, "open_blob", None)
        if opener is None:
            raise StoreUnsupportedError(f"{type(self._store).__name__} cannot read stored files.")
        with opener(self.stored) as fh:
            return fh.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)


# -- Foundations Atlas ---------------------------------------------------------------------------
def get_metrics_for_all_jobs(experiment_name: str, include_input_params: bool = False,
                             store: str | Store | None = None) -> pandas.DataFrame:
    """One row per run of ``experiment_name`` (oldest first): job_id, status, start_time,
    completed_time and the run's summary metrics; its config too with
    ``include_input_params`` (a config key named like a metric gets a ``config.`` prefix)."""
    api = Api(store)
    try:
        runs = list(api.runs(experiment=experiment_name, order="start_time"))
        if not runs:
            from labbook.stores import redact_url

            raise ExperimentNotFoundError(f"Experiment {experiment_name!r} has no runs in "
                                          f"{redact_url(api.url)}.")
        _last_values(api.store, runs)
    finally:
        if not isinstance(store, Store):
            api.close()  # opened here from a URL: release its connections
    fixed = ("job_id", "status", "start_time", "completed_time")
    rows = []
    for run in runs:
        row: dict[str, Any] = {"job_id": run.id, "status": run.status,
                               "start_time": run.start_time, "completed_time": run.stop_time}
        row.update(run.summary)
        rows.append(row)
    if include_input_params:
        taken = {k for row in rows for k in row} | set(fixed)
        for run, row in zip(runs, rows):
            for key, value in flatten_dict(run._doc.get("config") or {}).items():
                row[f"config.{key}" if key in taken else key] = value
    columns = list(fixed)
    for row in rows:
        columns += [k for k in row if k not in columns]
    return _pandas().DataFrame.from_records(rows, columns=columns)
