"""The SQL store: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy Core.

URLs: ``sqlite:///path.db`` (relative to the current directory, made absolute on open),
``postgresql://user:pw@host/db`` (driver psycopg 3 unless one is named, as in
``postgresql+psycopg://``), ``mysql://`` / ``mariadb://`` (driver PyMySQL unless named).

Tables (created and upgraded on first use by the Alembic migrations in
:mod:`labbook.stores.sql.migrations`; ``labbook_alembic_version`` holds the revision and
``labbook_schema`` the schema version older labbooks check; other applications' tables, such
as a sweep's Optuna study with its own ``alembic_version``, may share the database)::

    experiments  (id, name, created)
    runs         (id = the run id, experiment_name, command, status, start_time, queue_time,
                  stop_time, heartbeat, experiment, host, config, meta, info, result,
                  fail_trace, resources, artifacts, extra (JSON), captured_out (text),
                  last_metrics (JSON))
    tags         (run_id, tag)
    metrics      (id, run_id, name, step, value, special, time_us)
    blobs        (md5, size)                 content-addressed: sources, resources, artifacts
    blob_chunks  (md5, seq, data)            a blob's bytes, in pieces of at most 1 MiB
    artifacts    (id, run_id, name, md5, content_type, metadata)
    run_resources, run_sources (id, run_id, name, md5)

Metric times are integer microseconds since 1970-01-01 UTC (``time_us``), read back as naive
UTC datetimes.

Non-finite metric values are stored as ``value`` NULL plus ``special`` = 'nan' / 'inf' /
'-inf', because MySQL has no NaN and SQLite turns NaN into NULL; -0.0 likewise as '-0' (SQLite
and MariaDB drop the sign of zero). Non-finite floats inside
JSON columns become ``{"$float": "NaN"}`` (JSON has no NaN; PostgreSQL and MySQL refuse it).

Filters are translated to SQL where the translation is sure not to lose a match (the run id,
status, command, experiment name and the time columns); every candidate row is then checked
with :func:`labbook.stores.query.evaluate`, so results equal those of the file store.

The package, one concern per module (the names below are its public ones; the modules are
internal)::

    types.py      the column types, shared by the tables and the migrations
    schema.py     the tables (METADATA), SCHEMA_VERSION, HEAD_REVISION, the run columns
    engine.py     store URL -> SQLAlchemy URL and engine: drivers, timeouts, SQLite setup,
                  forked processes, connection error messages
    values.py     run ids, times and names as the columns hold them
    compiler.py   filters of the query model as SQL conditions; orderable columns
    runs.py       RunsMixin: run documents written, read and found
    metrics.py    MetricsMixin: metric points appended and read back
    files.py      FilesMixin: artifacts, resources and sources in chunked blobs
    store.py      SqlStore: connection, schema brought to head on first use, transactions
    migrations/   the Alembic revisions

The observer that records runs here is :class:`labbook.observers.sql.SqlObserver`.
"""
from __future__ import annotations

from labbook.errors import SqlConnectionError, SqlSchemaError, SqlStoreError
from labbook.stores.sql.engine import CONNECT_TIMEOUT, SQLITE_BUSY_TIMEOUT, engine_url
from labbook.stores.sql.files import BLOB_CHUNK_SIZE
from labbook.stores.sql.schema import HEAD_REVISION, METADATA, SCHEMA_VERSION
from labbook.stores.sql.store import SqlStore

__all__ = ["SqlStore", "engine_url", "HEAD_REVISION", "SCHEMA_VERSION", "METADATA",
           "BLOB_CHUNK_SIZE", "SQLITE_BUSY_TIMEOUT", "CONNECT_TIMEOUT",
           # the errors live in labbook.errors; named here too for code that imports them
           # from the store
           "SqlStoreError", "SqlConnectionError", "SqlSchemaError"]
