"""The first schema: the tables of the labbook before Alembic (``labbook_schema`` version 1).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from labbook.stores.sql.types import (BIG_ID, BLOB, JSON, LONG_TEXT, SHORT, TABLE_OPTIONS,
                                      TIME, name_type)

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        "labbook_schema", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        **TABLE_OPTIONS)
    sa.Table(
        "experiments", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", name_type(SHORT), nullable=False, unique=True),
        sa.Column("created", TIME),
        **TABLE_OPTIONS)
    sa.Table(
        "runs", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("experiment_name", name_type(SHORT), index=True),
        sa.Column("command", name_type(SHORT)),
        sa.Column("status", name_type(SHORT), index=True),
        sa.Column("start_time", TIME, index=True),
        sa.Column("queue_time", TIME),
        sa.Column("stop_time", TIME),
        sa.Column("heartbeat", TIME, index=True),
        *[sa.Column(name, JSON) for name in (
            "experiment", "host", "config", "meta", "info", "result", "fail_trace",
            "resources", "artifacts", "extra")],
        sa.Column("captured_out", LONG_TEXT),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS)
    sa.Table(
        "metrics", meta,
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", name_type(SHORT), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("special", sa.String(8)),
        sa.Column("timestamp", TIME),
        sa.Index("ix_metrics_run_name_step", "run_id", "name", "step"),
        **TABLE_OPTIONS)
    sa.Table(
        "blobs", meta,
        sa.Column("md5", sa.String(32), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", BLOB, nullable=False),
        **TABLE_OPTIONS)
    sa.Table(
        "artifacts", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", name_type(1024), nullable=False),
        sa.Column("md5", sa.String(32), sa.ForeignKey("blobs.md5"), nullable=False),
        sa.Column("content_type", sa.String(255)),
        sa.Column("metadata", JSON),
        **TABLE_OPTIONS)
    return meta


def upgrade() -> None:
    bind = op.get_bind()
    meta = _tables()
    meta.create_all(bind)
    bind.execute(meta.tables["labbook_schema"].insert().values(id=1, version=1))


def downgrade() -> None:
    _tables().drop_all(op.get_bind())
