"""Queryable summaries and tags; which runs use which stored files.

* ``runs.last_metrics`` (JSON): each metric's last logged value, ``{name: value}``, kept up to
  date by every append of points, so summaries and ``summary.*`` filters need no scan of the
  metrics table. Filled here from the metrics already stored.
* ``tags (run_id, tag)``: a run's tags (``meta.tags`` and the keys of ``info.tags``), one row
  each, so ``tags contains 'best'`` is an indexed lookup. Filled from the runs' JSON.
* ``run_resources`` / ``run_sources (run_id, name, md5)``: the files a run read and its source
  files, pointing at the content-addressed ``blobs``; a blob is deleted once nothing points at
  it. Filled from ``runs.resources`` and ``runs.experiment``'s sources.
* ``labbook_schema.version`` = 3.

Revision ID: 0003_summaries_tags_files
Revises: 0002_blob_chunks_metric_us
Create Date: 2026-12-01
"""
import json
import math

import sqlalchemy as sa
from alembic import op

from labbook.stores.sql.types import JSON, SHORT, TABLE_OPTIONS, name_type

revision = "0003_summaries_tags_files"
down_revision = "0002_blob_chunks_metric_us"
branch_labels = None
depends_on = None

_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _json(value):
    """A JSON column's value as Python data (drivers return text or already decoded data)."""
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _tags(meta, info) -> list:
    tags = []
    listed = meta.get("tags") if isinstance(meta, dict) else None
    for tag in listed if isinstance(listed, list) else []:
        if str(tag) not in tags:
            tags.append(str(tag))
    valued = info.get("tags") if isinstance(info, dict) else None
    for key in sorted(str(k) for k in (valued if isinstance(valued, dict) else {})):
        if key not in tags:
            tags.append(key)
    return [t for t in tags if len(t) <= SHORT]


def _pairs(entries) -> list:
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[1], str) \
                and len(entry[1]) == 32:
            out.append((str(entry[0])[:1024], entry[1]))
    return out


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("runs", sa.Column("last_metrics", JSON))
    op.create_table(
        "tags",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("tag", name_type(SHORT), primary_key=True),
        sa.Index("ix_tags_tag", "tag"),
        **TABLE_OPTIONS)
    for name in ("run_resources", "run_sources"):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                      nullable=False, index=True),
            sa.Column("name", name_type(1024), nullable=False),
            sa.Column("md5", sa.String(32), nullable=False, index=True),
            **TABLE_OPTIONS)

    runs = sa.table("runs", sa.column("id"), sa.column("last_metrics", JSON))
    last: dict = {}
    rows = bind.execute(sa.text(
        "SELECT run_id, name, value, special FROM metrics WHERE id IN "
        "(SELECT MAX(id) FROM metrics GROUP BY run_id, name)"))
    for run_id, name, value, special in rows:
        last.setdefault(run_id, {})[name] = _SPECIAL[special] if special else value
    for run_id, values in last.items():
        bind.execute(runs.update().where(runs.c.id == run_id).values(last_metrics=values))

    tags = sa.table("tags", sa.column("run_id"), sa.column("tag"))
    files = {name: sa.table(name, sa.column("run_id"), sa.column("name"), sa.column("md5"))
             for name in ("run_resources", "run_sources")}
    for run_id, meta, info, resources, experiment in bind.execute(sa.text(
            "SELECT id, meta, info, resources, experiment FROM runs")).all():
        for tag in _tags(_json(meta), _json(info)):
            bind.execute(tags.insert().values(run_id=run_id, tag=tag))
        for name, md5 in _pairs(_json(resources)):
            bind.execute(files["run_resources"].insert().values(
                run_id=run_id, name=name, md5=md5))
        experiment = _json(experiment)
        sources = experiment.get("sources") if isinstance(experiment, dict) else None
        for name, md5 in _pairs(sources):
            bind.execute(files["run_sources"].insert().values(run_id=run_id, name=name, md5=md5))
    bind.execute(sa.text("UPDATE labbook_schema SET version = 3 WHERE id = 1"))


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_table("run_sources")
    op.drop_table("run_resources")
    op.drop_table("tags")
    op.drop_column("runs", "last_metrics")
    bind.execute(sa.text("UPDATE labbook_schema SET version = 2 WHERE id = 1"))
