"""Metric pages in order straight from the index: ``metrics (run_id, name, step, id)``.

A series is read a page at a time in (step, id) order, each page starting after the last
point of the one before. With the index on ``(run_id, name, step)`` alone, PostgreSQL read
and sorted every remaining point of the series for each page (quadratic in its length); the
index now holds ``id`` too, so each page is a range of it. SQLite and InnoDB kept the row id
in the index already; they get the same index, so the three schemas stay one.

* ``ix_metrics_run_name_step_id`` replaces ``ix_metrics_run_name_step`` (made first: MariaDB
  keeps an index on ``run_id`` for the foreign key at every moment).
* ``labbook_schema.version`` = 4.

Revision ID: 0004_metric_page_index
Revises: 0003_summaries_tags_files
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_metric_page_index"
down_revision = "0003_summaries_tags_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_run_name_step_id", "metrics", ["run_id", "name", "step", "id"])
    op.drop_index("ix_metrics_run_name_step", table_name="metrics")
    op.get_bind().execute(sa.text("UPDATE labbook_schema SET version = 4 WHERE id = 1"))


def downgrade() -> None:
    op.create_index("ix_metrics_run_name_step", "metrics", ["run_id", "name", "step"])
    op.drop_index("ix_metrics_run_name_step_id", table_name="metrics")
    op.get_bind().execute(sa.text("UPDATE labbook_schema SET version = 3 WHERE id = 1"))
