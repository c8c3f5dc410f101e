"""The MongoDB store, writing the documents Sacred's MongoObserver and Omniboard read.

The observer that records runs here is :class:`labbook.observers.mongo.MongoObserver`; it
reaches this store through the registry (:func:`labbook.stores.store_class`).

Modules, one concern each::

    schema      names and sizes of the documents (the constants below)
    url         MongoURL, split_url, the URL that reopens a store, Sacred's -m argument
    codec       values to and from BSON, size estimates, spill stand-ins, batch tokens
    compiler    the query model (labbook.stores.query) -> native filters and projections
    connection  pymongo's connection failures -> MongoConnectionError
    runs        RunsMixin: ids, inserts, partial updates with spilling, claims, deletes
    reads       ReadsMixin: get and find
    metrics     MetricsMixin: series documents, overflow and summaries, histories, last values,
                counts, sampled histories
    blobs       BlobsMixin and _GridFSReader: artifacts, sources, resources, spilled fields
    store       MongoStore: the client and collections the mixins share
    notes       the upload note of a run saved in an observer's failure_dir
    upload      upload_failed_runs and ``python -m labbook.stores.mongo upload DIR URL``

Layout in database ``DB`` (``PREFIX_runs`` / ``PREFIX_metrics`` when a collection prefix is
given, as Sacred 0.8 names them)::

    runs              one document per run: _id (int), experiment, format, command, host,
                      start_time, config, meta, status, resources, artifacts, captured_out,
                      info, heartbeat, result, stop_time, fail_trace
    metrics           one document per series: run_id, name, bucket: 0, steps, values,
                      timestamps (see "Metrics"); what Sacred writes and Omniboard reads
    metrics_overflow  the points of a series past its first SERIES_DOC_POINTS
    system_metrics    the sampled system.* series (Omniboard does not list them)
    labbook_samples   the stored 500-point samples of long series of ended runs
    fs.files/chunks   GridFS: artifacts, resources, sources, spilled output
    labbook_counters  {_id: <runs collection name>, seq: <last id>}

Ids come from the counter document (``find_one_and_update`` with ``$inc``, atomic on the
server). Runs written by other tools (Sacred, older labbook) have no counter: an insert that
collides with one raises ``DuplicateKeyError``, the counter is raised past the highest existing
id with ``$max`` and the next ``$inc`` is tried.

Keys containing ``.`` or starting with ``$`` are escaped (:func:`labbook.serialize.escape_key`)
on write and unescaped on read. Updates ``$set`` only the fields that changed, so fields other
tools add to a run (Omniboard's tags and notes) survive. Times are BSON dates: MongoDB keeps
milliseconds, so times read back are truncated to the millisecond.

Metrics: a series is ONE document of ``metrics`` (``bucket: 0``), as Sacred writes it and as
Omniboard reads it (its plot lists a run's documents by ``run_id``; its last/max/min columns
follow ``info.metrics`` to one document and take the last element, ``$max`` and ``$min`` of its
``values``), while the series fits: :data:`SERIES_DOC_POINTS` points (82,241: a quarter of the
16 MiB limit at :data:`POINT_BYTES`, 51 bytes per point, the most a step, value and timestamp
take in the three arrays). Appends add points to its end with ``$push``/``$each``.

Past that many points the series goes on in ``metrics_overflow``: documents ``{run_id, name,
bucket: 1, 2..., steps, values, timestamps}`` of :data:`METRICS_BUCKET_SIZE` points, which
Omniboard never reads. The first document keeps its whole points (``labbook_n`` of them) and,
after them, a summary: for each overflow document its minimum point, maximum point and last
point (:data:`SUMMARY_SLOTS`), in series order. So Omniboard's plot spans the whole range and
its last, max and min columns are exact (min and max in MongoDB's order: NaN below every
number). A summary is rewritten for the overflow documents an append touched only: one
``$push`` at ``$position`` with ``$slice`` that replaces the summary points from there on,
atomic and the same when repeated. Arrays stay within :data:`MAX_SERIES_ELEMENTS` (three
quarters of the limit): about 4 * 10**9 points; beyond that an append fails with one line.

labbook's reads (history, history_many, iter_series, sampled histories, counts) take
``labbook_n`` points from each document (``labbook_counted`` says the count is whole), so the
summary points are never read as points; documents without a count (Sacred's) are read whole.
Series written before this layout (buckets 0, 1, 2... all in ``metrics``) read the same and
continue as buckets there. ``system.*`` series are buckets of :data:`METRICS_BUCKET_SIZE` in
``system_metrics``, without a summary, and are not in ``info.metrics``.

Every document records a token of the last batch pushed into it (``labbook_batch``) and the
documents are unique per (run_id, name, bucket), so repeating an append after a lost connection
never stores points twice; the summary is recomputed from the points stored. A process that
continues a series recomputes the summaries of its last two overflow documents first (a writer
that stopped between the points and their summary left them behind).

Size limit: when captured output or info would push a run document past
:attr:`MongoStore.max_document_bytes` (15 MiB, leaving room below MongoDB's 16 MiB for tags
and notes), that field moves to GridFS. The run document then holds a short stand-in (a notice
with the end of the output; an empty info) and ``labbook_spill: {field: file_id}``; reading the
run through this store returns the full value.
"""
from __future__ import annotations

try:
    import bson  # noqa: F401
    import gridfs  # noqa: F401
    import pymongo  # noqa: F401
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError("The MongoDB store needs pymongo: pip install 'labbook[mongo]' "
                      "(or pip install pymongo).") from _exc

from labbook.stores.mongo.compiler import native_filter
from labbook.stores.mongo.metrics import CACHED_SAMPLES, SAMPLE_CACHE_POINTS
from labbook.stores.mongo.notes import UPLOAD_NOTE
from labbook.stores.mongo.schema import (BUCKET_LENGTH, COUNTED_FROM_START, FORMAT, LAST_FIELD,
                                         MAX_BSON_BYTES, MAX_SERIES_ELEMENTS,
                                         METRICS_BUCKET_SIZE, OVERFLOW, POINT_BYTES,
                                         SERIES_DOC_POINTS, SPILLABLE, SUMMARY_SLOTS,
                                         SYSTEM_METRICS)
from labbook.stores.mongo.store import MongoStore
from labbook.stores.mongo.upload import main, upload_failed_runs
from labbook.stores.mongo.url import (DEFAULT_DB, DEFAULT_URL, SERVER_SELECTION_TIMEOUT_MS,
                                      MongoURL, parse_mongo_db_arg, split_url)

__all__ = [
    "MongoStore", "MongoURL", "split_url", "parse_mongo_db_arg", "native_filter",
    "upload_failed_runs", "main",
    "FORMAT", "DEFAULT_DB", "DEFAULT_URL", "METRICS_BUCKET_SIZE", "MAX_BSON_BYTES", "SPILLABLE",
    "LAST_FIELD", "BUCKET_LENGTH", "COUNTED_FROM_START", "SAMPLE_CACHE_POINTS", "CACHED_SAMPLES",
    "SERVER_SELECTION_TIMEOUT_MS", "UPLOAD_NOTE", "SERIES_DOC_POINTS", "POINT_BYTES",
    "MAX_SERIES_ELEMENTS", "SUMMARY_SLOTS", "OVERFLOW", "SYSTEM_METRICS",
]
