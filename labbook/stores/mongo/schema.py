"""The names and sizes of the MongoDB store's documents (the layout is in the package
docstring): what every module of the store, and readers of the database, agree on."""
from __future__ import annotations

__all__ = ["FORMAT", "METRICS_BUCKET_SIZE", "MAX_BSON_BYTES", "SPILLABLE", "LAST_FIELD",
           "BUCKET_LENGTH", "COUNTED_FROM_START", "COUNTERS"]

FORMAT = "MongoObserver-0.7.0"
#: points per metrics document (see the module docstring)
METRICS_BUCKET_SIZE = 50_000
#: MongoDB's hard limit on one document
MAX_BSON_BYTES = 16 * 1024 * 1024
#: fields moved to GridFS when a run document would outgrow the limit
SPILLABLE = ("captured_out", "info")
#: field of a run document holding each metric's last value ``{escaped name: value}``, kept by
#: every append of points: summaries and ``summary.*`` filters need no metrics documents. Runs
#: written by Sacred lack it; their summaries come from the metrics collection.
LAST_FIELD = "labbook_last"
#: field of a metrics document holding the number of points in it (labbook's buckets); a
#: document without it (Sacred's) is measured with $size
BUCKET_LENGTH = "labbook_n"
COUNTED_FROM_START = "labbook_counted"
#: the collection of id counters ``{_id: <runs collection name>, seq: <last id>}``
COUNTERS = "labbook_counters"
