"""The SQL store's tables as the head revision of ``migrations/`` leaves them, and what the
store knows about the columns of ``runs``.

Used to build queries only: the Alembic migrations create and change the tables (a test checks
that the two agree).
"""
from __future__ import annotations

import sqlalchemy as sa

from labbook.stores.sql.types import (BIG_ID, BLOB, JSON, LONG_TEXT, SHORT, TABLE_OPTIONS, TIME,
                                      name_type)

__all__ = ["SCHEMA_VERSION", "HEAD_REVISION", "METADATA", "schema_table", "experiments", "runs",
           "metrics", "blobs", "blob_chunks", "artifacts", "tags_table", "file_table",
           "run_resources", "run_sources", "artifact_entries", "version_blobs",
           "RUN_TABLES", "TABLE_NAMES", "JSON_FIELDS",
           "TIME_FIELDS", "NAME_FIELDS", "KEEP_NULL", "DEFAULTS"]

#: the schema this code writes; a database with a higher version is refused. Kept in the
#: ``labbook_schema`` table for labbooks from before the Alembic migrations.
SCHEMA_VERSION = 5

#: the newest Alembic revision in labbook/stores/sql/migrations/versions (a test checks it);
#: a database at this revision is used without importing Alembic
HEAD_REVISION = "0005_artifact_versions"

#: every table of the store (the version table ``labbook_alembic_version`` aside)
METADATA = sa.MetaData()

schema_table = sa.Table(
    "labbook_schema", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    **TABLE_OPTIONS)

experiments = sa.Table(
    "experiments", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", name_type(SHORT), nullable=False, unique=True),
    sa.Column("created", TIME),
    **TABLE_OPTIONS)

runs = sa.Table(
    "runs", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment_name", name_type(SHORT), index=True),
    sa.Column("command", name_type(SHORT)),
    sa.Column("status", name_type(SHORT), index=True),
    sa.Column("start_time", TIME, index=True),
    sa.Column("queue_time", TIME),
    sa.Column("stop_time", TIME),
    sa.Column("heartbeat", TIME, index=True),
    sa.Column("experiment", JSON),
    sa.Column("host", JSON),
    sa.Column("config", JSON),
    sa.Column("meta", JSON),
    sa.Column("info", JSON),
    sa.Column("result", JSON),
    sa.Column("fail_trace", JSON),
    sa.Column("resources", JSON),
    sa.Column("artifacts", JSON),
    sa.Column("extra", JSON),
    sa.Column("captured_out", LONG_TEXT),
    # each metric's last logged value {name: value}, kept by append_metrics (the summaries)
    sa.Column("last_metrics", JSON),
    # AUTOINCREMENT: SQLite never hands out the id of a deleted run again
    sqlite_autoincrement=True,
    **TABLE_OPTIONS)

metrics = sa.Table(
    "metrics", METADATA,
    sa.Column("id", BIG_ID, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", name_type(SHORT), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("special", sa.String(8)),
    sa.Column("time_us", sa.BigInteger),
    # id too: a page of a series in (step, id) order is a range of this index on every server
    sa.Index("ix_metrics_run_name_step_id", "run_id", "name", "step", "id"),
    **TABLE_OPTIONS)

blobs = sa.Table(
    "blobs", METADATA,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    **TABLE_OPTIONS)

blob_chunks = sa.Table(
    "blob_chunks", METADATA,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", BLOB, nullable=False),
    **TABLE_OPTIONS)

artifacts = sa.Table(
    "artifacts", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", name_type(1024), nullable=False),
    sa.Column("md5", sa.String(32), sa.ForeignKey("blobs.md5"), nullable=False),
    sa.Column("content_type", sa.String(255)),
    sa.Column("metadata", JSON),
    **TABLE_OPTIONS)

tags_table = sa.Table(
    "tags", METADATA,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True, autoincrement=False),
    sa.Column("tag", name_type(SHORT), primary_key=True),
    sa.Index("ix_tags_tag", "tag"),
    **TABLE_OPTIONS)


def file_table(name: str) -> sa.Table:
    """A table of the files of runs: (run, recorded name, md5 of the blob)."""
    return sa.Table(
        name, METADATA,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", name_type(1024), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False, index=True),
        **TABLE_OPTIONS)


#: the files a run read and its source files: (run, recorded name, md5 of the blob)
run_resources = file_table("run_resources")
run_sources = file_table("run_sources")

#: the ledger of versioned artifacts (labbook.stores.versions): one row per entry, keyed by
#: the sha256 of (collection, entry); ``scope`` is the sha256 of (collection, first segment of
#: the entry), the index every listing uses
artifact_entries = sa.Table(
    "artifact_entries", METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(64), nullable=False, index=True),
    sa.Column("collection", name_type(1024), nullable=False),
    sa.Column("head", name_type(SHORT), nullable=False),
    sa.Column("entry", LONG_TEXT, nullable=False),
    sa.Column("body", LONG_TEXT, nullable=False),
    **TABLE_OPTIONS)

#: blobs held by versions of artifacts (kept when the runs that logged them are deleted)
version_blobs = sa.Table(
    "version_blobs", METADATA,
    sa.Column("md5", sa.String(32), primary_key=True),
    **TABLE_OPTIONS)

#: tables holding rows of one run (deleted with it; SQLite enforces no ON DELETE CASCADE)
RUN_TABLES = (metrics, artifacts, tags_table, run_resources, run_sources)

#: the names of labbook's tables (another application's tables of these names are refused)
TABLE_NAMES = tuple(t.name for t in METADATA.sorted_tables)

#: the run fields with a column of their own: JSON, times, short names
JSON_FIELDS = ("experiment", "host", "config", "meta", "info", "result", "fail_trace",
               "resources", "artifacts")
TIME_FIELDS = ("start_time", "queue_time", "stop_time", "heartbeat")
NAME_FIELDS = ("command", "status")
#: fields returned as None when NULL (the observer always sets them, None is meaningful);
#: other NULL fields are left out of the document, as the file store leaves out unset ones
KEEP_NULL = ("heartbeat", "result")
#: the values of NULL fields that have a default in the document
DEFAULTS = {"config": dict, "info": dict, "captured_out": str}
