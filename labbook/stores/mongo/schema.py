"""The names and sizes of the MongoDB store's documents (the layout is in the package
docstring): what every module of the store, and readers of the database, agree on."""
from __future__ import annotations

__all__ = ["FORMAT", "METRICS_BUCKET_SIZE", "MAX_BSON_BYTES", "SPILLABLE", "LAST_FIELD",
           "BUCKET_LENGTH", "COUNTED_FROM_START", "COUNTERS", "POINT_BYTES", "SERIES_DOC_POINTS",
           "MAX_SERIES_ELEMENTS", "SUMMARY_SLOTS", "OVERFLOW", "SYSTEM_METRICS",
           "SYSTEM_METRIC_PREFIX"]

FORMAT = "MongoObserver-0.7.0"
#: points per overflow document (a series' points past the first SERIES_DOC_POINTS)
METRICS_BUCKET_SIZE = 50_000
#: MongoDB's hard limit on one document
MAX_BSON_BYTES = 16 * 1024 * 1024
#: the most BSON bytes one point takes in a metrics document's three arrays: per array an
#: element is a type byte, its index as a decimal key with a NUL (at most 8 bytes below 10**7
#: elements) and an 8-byte payload (int64 step, double value, date timestamp)
POINT_BYTES = 3 * (1 + 8 + 8)
#: the points a series keeps whole in the one document Omniboard reads (Sacred's layout):
#: a quarter of the limit, so about 4 MB; the rest of the document is room for the summary
SERIES_DOC_POINTS = MAX_BSON_BYTES // 4 // POINT_BYTES
#: the most points (whole ones and summary ones) that document's arrays may hold: three
#: quarters of the limit, leaving a quarter for the other fields and the unexpected
MAX_SERIES_ELEMENTS = MAX_BSON_BYTES * 3 // 4 // POINT_BYTES
#: summary points per overflow document: its minimum, its maximum and its last point
SUMMARY_SLOTS = 3
#: collection (after the prefix) of the overflow documents, which Omniboard does not read
OVERFLOW = "metrics_overflow"
#: collection (after the prefix) of the sampled ``system.*`` series, apart from Omniboard's
SYSTEM_METRICS = "system_metrics"
#: the names of the series that go to SYSTEM_METRICS
SYSTEM_METRIC_PREFIX = "system."
#: fields moved to GridFS when a run document would outgrow the limit
SPILLABLE = ("captured_out", "info")
#: field of a run document holding each metric's last value ``{escaped name: value}``, kept by
#: every append of points: summaries and ``summary.*`` filters need no metrics documents. Runs
#: written by Sacred lack it; their summaries come from the metrics collection.
LAST_FIELD = "labbook_last"
#: field of a metrics document holding the number of the series' points in it (labbook's
#: documents; a series' first document may hold summary points after them); a document
#: without it (Sacred's) is measured with $size
BUCKET_LENGTH = "labbook_n"
COUNTED_FROM_START = "labbook_counted"
#: the collection of id counters ``{_id: <runs collection name>, seq: <last id>}``
COUNTERS = "labbook_counters"
