"""The Store interface: one per back-end, used by the observer that writes and by the API
that reads, so everything written can be read back.

A run is a document (a dict) with Sacred's MongoObserver fields: ``_id``, ``experiment``,
``command``, ``host``, ``start_time``, ``queue_time``, ``config``, ``meta``, ``status``,
``resources``, ``artifacts``, ``captured_out``, ``info``, ``heartbeat``, ``result``,
``stop_time``, ``fail_trace``. Times are naive UTC datetimes. Metrics are series of
``(step, value, timestamp)`` per name.
"""
from __future__ import annotations

import abc
from typing import Any, BinaryIO, Iterable, Iterator
from labbook.errors import ArgumentError, StoreUnsupportedError
from labbook.stores import versions as _versions

__all__ = ["LAST_KEY", "RUN_FIELDS", "artifact_names", "replaceable", "claim_order",
           "sample_positions", "sample_series", "max_steps", "Store"]

#: key of a document returned by ``find(..., with_last=True)`` holding the run's last values
LAST_KEY = "_last"

RUN_FIELDS = ("experiment", "command", "host", "start_time", "queue_time", "config", "meta",
              "status", "resources", "artifacts", "captured_out", "info", "heartbeat",
              "result", "stop_time", "fail_trace")


def artifact_names(doc: dict) -> list[str]:
    """The names of a run document's artifacts, in the order they were added (the file and SQL
    stores list names, the Mongo store ``{"name", "file_id"}`` entries)."""
    names: list[str] = []
    for entry in doc.get("artifacts") or []:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def replaceable(doc: dict) -> bool:
    """Whether a new run may take over the stored run ``doc``'s id: a QUEUED run being started,
    or one a worker claimed (RUNNING, ``meta.worker`` set) that has not started yet."""
    if doc.get("status") == "QUEUED":
        return True
    return doc.get("status") == "RUNNING" and doc.get("start_time") is None and \
        bool((doc.get("meta") or {}).get("worker"))


def claim_order(doc: dict) -> tuple:
    """Sort key of queued runs: highest ``meta.priority`` first, then oldest, then lowest id."""
    priority = (doc.get("meta") or {}).get("priority")
    if not isinstance(priority, int | float) or isinstance(priority, bool):
        priority = 0
    queued = doc.get("queue_time")
    return (-priority, queued is None, str(queued) if queued is not None else "",
            str(doc.get("_id")).zfill(20))


def sample_positions(n: int, samples: int | None) -> range | list[int]:
    """Indices of at most ``samples`` of ``n`` items, evenly spread, first and last kept."""
    if samples is None or n <= samples:
        return range(n)
    if samples < 2:
        raise ArgumentError(f"samples must be at least 2 (first and last are kept), got {samples}.")
    # i * (n - 1) / (samples - 1) is strictly increasing when n > samples: no duplicates
    return [round(i * (n - 1) / (samples - 1)) for i in range(samples)]


def max_steps(history: dict[str, dict[str, list]]) -> dict[str, int]:
    """``{metric: its highest whole-number step}`` of a history (series without one left out)."""
    out: dict[str, int] = {}
    for name, series in history.items():
        steps = [s for s in series.get("steps") or () if isinstance(s, int)
                 and not isinstance(s, bool)]
        if steps:
            out[name] = max(steps)
    return out


def sample_series(series: dict[str, list], samples: int | None) -> dict[str, list]:
    """``series`` (steps/values/timestamps lists) cut down by ``sample_positions``."""
    keys = [k for k, v in series.items() if isinstance(v, list)]
    n = len(series.get("steps") or series.get("values") or [])
    if samples is None or n <= samples:
        return series
    picks = sample_positions(n, samples)
    return {**series, **{k: [series[k][i] for i in picks] for k in keys if len(series[k]) == n}}


class Store(abc.ABC):
    """Write side and read side of one storage back-end."""

    #: URL schemes served by this store class
    schemes: tuple[str, ...] = ()

    url: str = ""
    #: the directory holding the stored files as plain files on this machine (the file store),
    #: else None: the read side opens artifacts in place when it is set
    local_dir: str | None = None
    #: whether :meth:`append_metrics` takes timestamps as :class:`~labbook.clock.Micros`
    #: (microseconds since 1970) as well as datetimes: a copy from a store that keeps them so
    #: then skips two conversions per point (``labbook sync``)
    takes_micros: bool = False

    def check(self) -> None:
        """Make sure runs can be written here (directory writable, server reachable, database
        there); raise a :class:`~labbook.errors.StoreError` naming the store and the cause.
        Called once when a run is set up, before the user's code runs."""

    # -- write side ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        """Store a new run and return its id (allocated atomically when ``run_id`` is None).

        An explicit ``run_id`` that a stored run already has raises
        :class:`~labbook.errors.RunExistsError`, unless that run is :func:`replaceable` (queued,
        or claimed by a worker, and being started now) or ``overwrite`` is true; then the new
        run replaces it, metrics and artifacts included.
        """

    @abc.abstractmethod
    def update_run(self, run_id: Any, fields: dict) -> None:
        """Set the given top-level fields of a run (a partial update)."""

    @abc.abstractmethod
    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        """Append points: ``{name: {"steps": [...], "values": [...], "timestamps": [...]}}``."""

    @abc.abstractmethod
    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        """Copy the file ``filename`` into the run under ``name``."""

    @abc.abstractmethod
    def put_resource(self, run_id: Any, filename: str) -> None:
        """Record (and store once per content) a file the run read."""

    def put_sources(self, experiment_info: dict) -> dict:
        """Store the source files; return ``experiment_info`` with stored references."""
        return experiment_info

    def heartbeat(self, run_id: Any, info: dict, captured_out: str, beat_time: Any,
                  result: Any) -> None:
        """Record a heartbeat: the run's info, output so far, the beat's time and result."""
        self.update_run(run_id, {"info": info, "captured_out": captured_out,
                                 "heartbeat": beat_time, "result": result})

    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        """Atomically take one QUEUED run (of ``experiment`` when given) for ``worker``: the
        highest ``meta.priority`` first, then the oldest. Its status becomes RUNNING, its
        heartbeat now and ``meta.worker`` the worker's name; the claimed run's document is
        returned, or None when nothing is queued. Two workers never get the same run, however
        many processes or machines claim at once."""
        raise StoreUnsupportedError(f"{type(self).__name__} cannot hand out queued runs.")

    def claim_run(self, run_id: Any, worker: str) -> dict | None:
        """Atomically take the queued run ``run_id`` for ``worker`` (as :meth:`claim_queued`
        does for the next one): its document once claimed, None when it is not queued (another
        process took it, or it is gone). A launcher's placed process claims its run so."""
        from labbook import clock

        doc = self.get(run_id)
        if doc is None or doc.get("status") != "QUEUED":
            return None
        meta = dict(doc.get("meta") or {}, worker=worker)
        if not self.update_if(run_id, {"status": "QUEUED", "heartbeat": doc.get("heartbeat")},
                              {"status": "RUNNING", "heartbeat": clock.utcnow(),
                               "meta": meta}):
            return None
        return self.get(run_id)

    def update_if(self, run_id: Any, expected: dict, fields: dict) -> bool:
        """Compare-and-set: set ``fields`` of the run only while its top-level fields equal
        ``expected`` (``status``, ``start_time``, ``heartbeat``; None means unset); True when
        this call changed the run. Workers re-queue a dead run and heartbeat a claimed one
        through it, so two workers noticing the same dead run re-queue it once. This default
        reads then writes (not atomic); the built-in stores override it with an atomic step."""
        doc = self.get(run_id)
        if doc is None or any(doc.get(k) != v for k, v in expected.items()):
            return False
        self.update_run(run_id, fields)
        return True

    # -- read side -----------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, run_id: Any) -> dict | None:
        """The run document, or None."""

    @abc.abstractmethod
    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None) -> list[dict]:
        """Run documents matching a Mongo-style filter over the query model of
        :mod:`labbook.stores.query` (evaluate with ``query.query_view``), sorted by ``order``.

        The built-in stores take two keyword arguments besides: ``exclude``, top-level
        fields to leave out unless the filter or order looks at them (listings leave out
        ``captured_out``), and ``with_last``: each document then carries the run's last
        metric values under the key :data:`LAST_KEY` where the store has them at hand (no
        extra query), which saves the API a ``last_values`` call for summaries.
        """

    @abc.abstractmethod
    def history(self, run_id: Any, names: Iterable[str] | None = None
                ) -> dict[str, dict[str, list]]:
        """All points of the run's metrics (optionally only ``names``)."""

    def history_for_copy(self, run_id: Any) -> dict[str, dict[str, list]]:
        """:meth:`history` for a copy into another store: a store may give a series'
        timestamps as :class:`~labbook.clock.Micros`, which :attr:`takes_micros` stores take
        as they are (the caller converts them for the others)."""
        return self.history(run_id)

    @abc.abstractmethod
    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        """The stored artifact as a binary file object."""

    # -- optional fast paths of the read side (stores override them where they can) -----------
    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """Like ``history`` but at most ``samples`` points per metric, spread evenly by
        position and always keeping the first and the last (``None``: all points)."""
        return {name: sample_series(series, samples)
                for name, series in self.history(run_id, names).items()}

    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        """``{run_id: history}`` for many runs (stores answer in one query where they can)."""
        names = None if names is None else list(names)
        return {run_id: self.history(run_id, names) for run_id in run_ids}

    def last_steps(self, run_id: Any) -> dict[str, int]:
        """``{metric: its highest whole-number step}`` of the run (a resumed run's steps go on
        after them). SQL and Mongo answer on the server without reading the values."""
        return max_steps(self.history(run_id))

    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """``{run_id: {metric: the value logged last}}``, for summaries of many runs."""
        out: dict[Any, dict[str, Any]] = {}
        for run_id, history in self.history_many(run_ids).items():
            out[run_id] = {name: series["values"][-1]
                           for name, series in history.items() if series["values"]}
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000, *,
                    times: bool = True) -> Iterator[dict[str, list]]:
        """One metric's points in pages of at most ``page_size`` (``steps``/``values``/
        ``timestamps`` lists), in the order stored; stores that can read a page at a time
        from the database or the file do, so a long series never sits in memory whole.
        ``times`` False: pages without ``timestamps``, for readers that show none (stores
        then neither read nor convert them where they can)."""
        series = self.history(run_id, [name]).get(name)
        if not series:
            return
        keys = ("steps", "values", "timestamps") if times else ("steps", "values")
        for start in range(0, len(series["steps"]), page_size):
            yield {key: series[key][start:start + page_size] for key in keys}

    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: number of points}}`` (stores count without reading points where
        they can)."""
        return {run_id: {name: len(series["values"]) for name, series in history.items()}
                for run_id, history in self.history_many(run_ids).items()}

    def close(self) -> None:
        """Release connections."""

    def release(self) -> None:
        """Close idle connections at the end of a run; the store stays usable (a later call
        connects again). SQLite writes its write-ahead log back into the database file when
        its last connection closes, so a finished run lives in that one file."""

    def delete_run(self, run_id: Any) -> None:
        """Delete a run with its metrics and artifacts (sources and resources shared with other
        runs stay). An unknown id raises KeyError."""
        raise StoreUnsupportedError(f"{type(self).__name__} cannot delete runs yet.")

    # -- versioned artifacts (the ledger of labbook.stores.versions) ---------------------------
    def log_artifact_version(self, run_id: Any, name: str, files: list[dict],
                             type: str | None = None, metadata: dict | None = None,
                             aliases: Iterable[str] = ()) -> dict:
        """Record a version of the named artifact ``name`` holding ``files`` (``{"path",
        "sha256", "md5", "size", "source"}`` each, ``source`` a file on this machine), logged
        by ``run_id``: a new number (assigned atomically across processes) unless a version
        has the same content; the aliases given move to it. Returns the version as
        :meth:`artifact_versions` lists it."""
        return _versions.log_version(self, run_id, name, files, type, metadata, aliases)

    def use_artifact_version(self, run_id: Any, name: str, digest: str) -> None:
        """Record that ``run_id`` used the version of ``name`` with content ``digest``."""
        _versions.use_version(self, run_id, name, digest)

    def artifact_versions(self, name: str) -> list[dict]:
        """The versions of ``name``, oldest first ([] when unknown)."""
        return _versions.list_versions(self, name)

    def artifact_collections(self, type: str | None = None) -> list[dict]:
        """``[{"name", "type", "versions"}]`` of the named artifacts (of ``type``)."""
        return _versions.collections(self, type)

    def artifact_lineage(self, run_id: Any) -> dict[str, list[dict]]:
        """``{"logged": [...], "used": [...]}`` versions of one run."""
        return _versions.run_lineage(self, run_id)

    def open_version_file(self, entry: dict) -> BinaryIO:
        """A file of a version (an entry of its ``files``) as a binary file object."""
        return self._version_blob_open(entry)

    @property
    def keeps_versions(self) -> bool:
        """Whether this store keeps versioned artifacts (it provides the ledger)."""
        return type(self)._ledger_claim is not Store._ledger_claim

    def _no_versions(self) -> StoreUnsupportedError:
        return StoreUnsupportedError(
            f"{type(self).__name__} ({self.url or 'this store'}) does not keep versioned "
            "artifacts; log them to a file, SQL or MongoDB store.")

    #: the primitives each store provides (see labbook.stores.versions)
    def _ledger_claim(self, collection: str, entry: str, body: dict) -> bool:
        """Create the entry unless it exists (atomically, across processes): True if made."""
        raise self._no_versions()

    def _ledger_put(self, collection: str, entry: str, body: dict) -> None:
        """Create or replace the entry whole."""
        raise self._no_versions()

    def _ledger_get(self, collection: str, entry: str) -> dict | None:
        raise self._no_versions()

    def _ledger_list(self, collection: str, prefix: str) -> dict[str, dict]:
        """``{entry: body}`` of the collection's entries starting with ``prefix``."""
        raise self._no_versions()

    def _ledger_collections(self) -> list[str]:
        raise self._no_versions()

    def _version_blob_put(self, entry: dict, filename: str) -> None:
        """Store the file ``filename`` (its ``sha256``/``md5``/``size`` in ``entry``) once
        per content."""
        raise self._no_versions()

    def _version_blob_open(self, entry: dict) -> BinaryIO:
        raise self._no_versions()
