"""Versioned artifacts with lineage (labbook.stores.versions).

* ``artifact_entries (key, scope, collection, head, entry, body)``: the ledger of versioned
  artifacts, one row per entry (a version, a digest, an alias, a run that logged or used a
  version). ``key`` (primary key) is the sha256 of the collection and the entry, so a version
  number is taken by exactly one INSERT however many processes log at once; ``scope``
  (indexed) is the sha256 of the collection and the entry's first segment.
* ``version_blobs (md5)``: the blobs versions hold, kept when a run is deleted.
* ``labbook_schema.version`` = 5.

Revision ID: 0005_artifact_versions
Revises: 0004_metric_page_index
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from labbook.stores.sql.types import LONG_TEXT, SHORT, TABLE_OPTIONS, name_type

revision = "0005_artifact_versions"
down_revision = "0004_metric_page_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifact_entries",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("collection", name_type(1024), nullable=False),
        sa.Column("head", name_type(SHORT), nullable=False),
        sa.Column("entry", LONG_TEXT, nullable=False),
        sa.Column("body", LONG_TEXT, nullable=False),
        **TABLE_OPTIONS)
    op.create_index("ix_artifact_entries_scope", "artifact_entries", ["scope"])
    op.create_table(
        "version_blobs",
        sa.Column("md5", sa.String(32), primary_key=True),
        **TABLE_OPTIONS)
    op.get_bind().execute(sa.text("UPDATE labbook_schema SET version = 5 WHERE id = 1"))


def downgrade() -> None:
    op.drop_table("version_blobs")
    op.drop_index("ix_artifact_entries_scope", table_name="artifact_entries")
    op.drop_table("artifact_entries")
    op.get_bind().execute(sa.text("UPDATE labbook_schema SET version = 4 WHERE id = 1"))
