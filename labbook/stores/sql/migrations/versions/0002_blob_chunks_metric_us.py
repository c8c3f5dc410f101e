"""File contents in chunks (any size on every server); metric times as integer microseconds.

* ``blob_chunks (md5, seq, data)``: a stored file is its chunks in ``seq`` order, each at most
  ``CHUNK_SIZE`` bytes (MariaDB/MySQL refuse a statement larger than ``max_allowed_packet``,
  16 MB by default, so one 50 MB value cannot be written). The old ``blobs.content`` values
  are cut into chunks by the database itself, then the column is dropped.
* ``metrics.time_us``: microseconds since 1970-01-01 UTC, an integer, instead of the DateTime
  column ``timestamp``: exact, and written without per-row date formatting. Old rows are
  converted in SQL, then ``timestamp`` is dropped.
* ``labbook_schema.version`` = 2: the labbook before Alembic refuses the database.

Revision ID: 0002_blob_chunks_metric_us
Revises: 0001_initial
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from labbook.stores.sql.types import BLOB, TABLE_OPTIONS, TIME

revision = "0002_blob_chunks_metric_us"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

#: size of the chunks cut from the old ``blobs.content`` values
CHUNK_SIZE = 1024 * 1024

_TO_MICROSECONDS = {
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'
    "sqlite": ("CAST(strftime('%s', substr({t}, 1, 19)) AS INTEGER) * 1000000"
               " + CAST(COALESCE(NULLIF(substr({t}, 21, 6), ''), '0') AS INTEGER)"),
    "postgresql": "CAST(ROUND(EXTRACT(EPOCH FROM {t}) * 1000000) AS BIGINT)",
    "mysql": "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {t})",
}


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        "blob_chunks",
        sa.Column("md5", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", BLOB, nullable=False),
        **TABLE_OPTIONS)
    for md5, size in bind.execute(sa.text("SELECT md5, size FROM blobs ORDER BY md5")).all():
        for seq, start in enumerate(range(0, int(size), CHUNK_SIZE)):
            # SUBSTR counts from 1 and works on bytes for binary values on all three
            bind.execute(sa.text(
                f"INSERT INTO blob_chunks (md5, seq, data) SELECT md5, {seq}, "
                f"SUBSTR(content, {start + 1}, {CHUNK_SIZE}) FROM blobs WHERE md5 = :md5"),
                {"md5": md5})
    op.drop_column("blobs", "content")

    op.add_column("metrics", sa.Column("time_us", sa.BigInteger))
    column = bind.dialect.identifier_preparer.quote_identifier("timestamp")
    convert = _TO_MICROSECONDS["mysql" if dialect == "mariadb" else dialect].format(t=column)
    # no parameters: the driver leaves the % of strftime alone
    bind.exec_driver_sql(f"UPDATE metrics SET time_us = {convert} WHERE {column} IS NOT NULL")
    op.drop_column("metrics", "timestamp")
    bind.execute(sa.text("UPDATE labbook_schema SET version = 2 WHERE id = 1"))


def downgrade() -> None:
    bind = op.get_bind()
    op.add_column("metrics", sa.Column("timestamp", TIME))
    op.drop_column("metrics", "time_us")  # the times are lost: downgrade is for tests only
    op.add_column("blobs", sa.Column("content", BLOB))
    op.drop_table("blob_chunks")
    bind.execute(sa.text("UPDATE labbook_schema SET version = 1 WHERE id = 1"))
