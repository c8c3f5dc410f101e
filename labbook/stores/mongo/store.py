"""The MongoDB store: :class:`MongoStore` joins the concerns of the modules next to this one
(runs written, runs read, metric series, GridFS files) on one client and its collections."""
from __future__ import annotations

import logging
from typing import Any

import gridfs
import pymongo
from pymongo.errors import (ConfigurationError, ConnectionFailure, InvalidName, InvalidURI,
                            OperationFailure)

from labbook.errors import ArgumentError, MongoConnectionError, StoreUnusableError
from labbook.stores import redact_url
from labbook.stores.base import Store
from labbook.stores.mongo import notes
from labbook.stores.mongo.blobs import BlobsMixin
from labbook.stores.mongo.connection import connection_error
from labbook.stores.mongo.metrics import MetricsMixin
from labbook.stores.mongo.reads import ReadsMixin
from labbook.stores.mongo.runs import RunsMixin, _RunState
from labbook.stores.mongo.versions import VersionsMixin
from labbook.stores.mongo.schema import (COUNTERS, MAX_BSON_BYTES, METRICS_BUCKET_SIZE, OVERFLOW,
                                         SERIES_DOC_POINTS, SYSTEM_METRICS)
from labbook.stores.mongo.url import (CONNECT_TIMEOUT_MS, DEFAULT_DB, DEFAULT_URL,
                                      SERVER_SELECTION_TIMEOUT_MS, SOCKET_TIMEOUT_MS,
                                      _compose_url, parse_mongo_db_arg, split_url)

__all__ = ["log", "MongoStore"]

log = logging.getLogger("labbook.stores.mongo")


class MongoStore(RunsMixin, ReadsMixin, MetricsMixin, BlobsMixin, VersionsMixin, Store):
    """Runs in MongoDB, in the documents of Sacred's MongoObserver (see the package docstring).

    The methods come from the mixins, one concern each: :class:`RunsMixin` (writing runs),
    :class:`ReadsMixin` (get, find), :class:`MetricsMixin` (series) and :class:`BlobsMixin`
    (GridFS files); this class holds the client, the collections and the caches they share.
    """

    schemes = ("mongodb",)
    #: a run document is kept below this size by moving output and info to GridFS
    max_document_bytes = MAX_BSON_BYTES - 1024 * 1024

    def __init__(self, url: str | None = None, db_name: str | None = None,
                 collection_prefix: str = "", client: Any = None,
                 bucket_size: int = METRICS_BUCKET_SIZE,
                 series_points: int = SERIES_DOC_POINTS, **client_kwargs: Any):
        parts = split_url(url or DEFAULT_URL)
        self.db_name = db_name or parts.database or DEFAULT_DB
        self.collection_prefix = collection_prefix or parts.collection_prefix
        self.bucket_size = int(bucket_size)
        #: the points a series keeps whole in the document Omniboard reads
        self.series_points = int(series_points)
        if self.bucket_size < 1 or self.series_points < 1:
            raise ArgumentError("bucket_size and series_points must be at least 1")
        self._owns_client = client is None
        if client is None:
            query = parts.client_url.partition("?")[2].lower()
            # every call is bounded; the URL's options (or the caller's) win
            for option, default in (("serverSelectionTimeoutMS", SERVER_SELECTION_TIMEOUT_MS),
                                    ("connectTimeoutMS", CONNECT_TIMEOUT_MS),
                                    ("socketTimeoutMS", SOCKET_TIMEOUT_MS)):
                if option.lower() not in query:
                    client_kwargs.setdefault(option, default)
            try:
                client = pymongo.MongoClient(parts.client_url, **client_kwargs)
            except (ConfigurationError, InvalidURI, ValueError, TypeError) as exc:
                raise MongoConnectionError(
                    f"Invalid MongoDB URL or option for {redact_url(url or DEFAULT_URL)}: {exc}. "
                    "Write mongodb://[user:password@]host[:port][/database][?options] and "
                    "check the option names.", redact_url(url or DEFAULT_URL)) from None
            self.url = _compose_url(parts.client_url, self.db_name, self.collection_prefix)
        else:
            seeds = sorted(client.topology_description.server_descriptions())
            hosts = ",".join(f"{h}:{p}" for h, p in seeds) or "localhost:27017"
            self.url = _compose_url("mongodb://" + hosts, self.db_name, self.collection_prefix)
        self.client = client
        try:
            self.db = client[self.db_name]
        except InvalidName as exc:
            raise StoreUnusableError(
                f"Cannot use the MongoDB database name {self.db_name!r} "
                f"({redact_url(url or DEFAULT_URL)}): {exc}. Database names cannot hold "
                "/\\. \"$ spaces or NUL; in -m host:port:db.prefix the part after the dot is "
                "the collection prefix.", redact_url(url or DEFAULT_URL)) from None
        prefix = f"{self.collection_prefix}_" if self.collection_prefix else ""
        self.runs = self.db[prefix + "runs"]
        self.metrics = self.db[prefix + "metrics"]
        self.overflow = self.db[prefix + OVERFLOW]
        self.system_metrics = self.db[prefix + SYSTEM_METRICS]
        self.counters = self.db[COUNTERS]
        self.samples = self.db[prefix + "labbook_samples"]
        self.fs = gridfs.GridFS(self.db)
        self.files = self.db["fs.files"]
        self._state: dict[Any, _RunState] = {}
        #: (run_id, name) -> where the series' next point goes
        self._positions: dict[tuple, Any] = {}
        #: (run_id, name, overflow document) -> its (min point, max point), for its summary
        self._extremes_cache: dict[tuple, Any] = {}
        #: {run_id: [{"name", "id"}]}: the series this store started, which update_run writes
        #: into ``info.metrics`` as Sacred does (Omniboard's metric columns look them up there)
        self._metric_refs: dict[Any, list[dict]] = {}
        self._indexed = False
        self._timeout_s = client.options.server_selection_timeout

    #: the database used when neither the URL nor ``db_name`` names one (Sacred's)
    default_db = DEFAULT_DB

    @staticmethod
    def parse_db_arg(arg: str) -> dict:
        """Sacred's ``-m`` value -> MongoObserver keyword arguments (:func:`parse_mongo_db_arg`)."""
        return parse_mongo_db_arg(arg)

    def upload_hint(self, failure_dir: str) -> str:
        """How to upload the runs saved in ``failure_dir`` to this store, once it is back."""
        return notes.upload_hint(self.url, failure_dir)

    def write_upload_note(self, run_dir: str, exc: BaseException, run_id: Any,
                          overwrite: Any = None) -> None:
        """Write the upload note (``UPLOAD_NOTE``) into ``run_dir``, a run saved in a failure
        directory: this store, the run's id here (None: never stored), ``overwrite`` and why it
        was saved there (``exc``); :func:`upload_failed_runs` reads it."""
        notes.write_note(run_dir, self.url, exc, run_id, overwrite)

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """``mongodb://host:port/db`` (database ``sacred`` when the path is empty)."""
        return cls(url)

    def __repr__(self) -> str:
        return f"MongoStore({redact_url(self.url)!r})"

    def connection_error(self, exc: BaseException) -> MongoConnectionError:
        """The labbook error for a pymongo connection failure, naming the URL and the checks."""
        return connection_error(self.url, self._timeout_s, exc)

    def check(self) -> None:
        """The server answers (within the server-selection timeout); else a
        :class:`StoreUnusableError` naming the URL (password hidden) and what to check."""
        try:
            self.client.admin.command("ping")
        except (ConnectionFailure, OperationFailure) as exc:
            error = self.connection_error(exc)
            raise StoreUnusableError(str(error), error.url) from None

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- indexes, made on the first write ------------------------------------------------------
    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        keys = [("run_id", 1), ("name", 1), ("bucket", 1)]
        try:
            # unique, so a bucket re-created after a lost connection is refused, not doubled
            self.metrics.create_index(keys, unique=True, name="labbook_run_name_bucket")
        except OperationFailure:
            # old data (several documents per series) cannot take a unique index
            log.debug("metrics: unique index refused, using a plain one", exc_info=True)
            self.metrics.create_index(keys, name="labbook_run_name_bucket_plain")
        for collection in (self.overflow, self.system_metrics):
            collection.create_index(keys, unique=True, name="labbook_run_name_bucket")
        self.files.create_index("md5", name="labbook_md5")
        # what listings sort and filter by: the first page of 10^5 runs reads one page
        for key, direction in (("start_time", -1), ("status", 1), ("experiment.name", 1),
                               ("heartbeat", -1)):
            self.runs.create_index([(key, direction), ("_id", 1)],
                                   name=f"labbook_{key.replace('.', '_')}")
        self._indexed = True
