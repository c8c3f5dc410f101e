"""Alembic migrations of the SQL store's schema, shipped inside the package.

``versions/`` holds one revision per schema change, in order:

* ``0001_initial``: the first schema (``labbook_schema`` version 1), exactly the tables the
  labbook before Alembic made with ``create_all``. A database made by that code has no
  version table; it is stamped at this revision, then upgraded.
* ``0002_blob_chunks_metric_us``: file contents in ``blob_chunks`` (pieces of at most
  ``CHUNK_SIZE`` bytes) instead of one ``blobs.content`` value; metric timestamps as integer
  microseconds since the epoch (``metrics.time_us``) instead of a DateTime column.
  ``labbook_schema.version`` becomes 2, so the labbook before Alembic refuses such a database
  with its "Upgrade labbook" message instead of misreading it.

The revision is kept in the table ``labbook_alembic_version`` (:data:`VERSION_TABLE`), not in
Alembic's default ``alembic_version``: another application that migrates with Alembic (Optuna's
study storage, which sweeps keep in the store's database) keeps its own revision there, in the
same database. A database whose revision an older labbook recorded in ``alembic_version`` is
moved over on its next upgrade: its revision is stamped into :data:`VERSION_TABLE` and the old
table dropped.

The revisions take their column types from :mod:`labbook.stores.sql.types` (defined once, for
the store's tables as well; those types never change once a revision uses them).

Alembic's INFO lines (one per step) are silenced while the store migrates, unless the
``labbook`` logger is at DEBUG or the program set a level on the ``alembic`` logger.

The store calls :func:`upgrade` on its own connection while it holds its cross-process init
lock; nothing here runs at import time, and ``import labbook`` never imports Alembic.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator

__all__ = ["SCRIPT_LOCATION", "INITIAL_REVISION", "VERSION_TABLE", "LEGACY_VERSION_TABLE",
           "UnknownRevisionError", "config", "head_revision", "current_revisions",
           "legacy_revisions", "upgrade"]

#: the folder Alembic reads (``script_location``)
SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))

#: the table holding the database's revision (Alembic's ``version_table``)
VERSION_TABLE = "labbook_alembic_version"
#: where labbook kept the revision before, and where other applications keep theirs
LEGACY_VERSION_TABLE = "alembic_version"

#: the revision of a database made by the labbook before Alembic (``labbook_schema`` = 1)
INITIAL_REVISION = "0001_initial"


class UnknownRevisionError(LookupError):
    """The database is at a revision these migrations do not contain."""

    def __init__(self, revisions: list[str], head: str):
        super().__init__(f"unknown revision(s) {', '.join(revisions)}")
        self.revisions = revisions
        self.head = head


def config(connection: Any = None) -> Any:
    """An Alembic ``Config`` for these migrations (``connection`` for env.py, if given)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision in ``versions/``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def current_revisions(connection: Any) -> list[str]:
    """The revision(s) the database is at (empty when it has no version table yet)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return list(context.get_current_heads())


def legacy_revisions(connection: Any) -> list[str]:
    """labbook's revisions recorded in ``alembic_version`` (labbook before the move to
    :data:`VERSION_TABLE`); empty when that table is missing or holds another application's."""
    import sqlalchemy as sa

    if LEGACY_VERSION_TABLE not in set(sa.inspect(connection).get_table_names()):
        return []
    found = connection.exec_driver_sql(
        f"SELECT version_num FROM {LEGACY_VERSION_TABLE}").scalars().all()
    from alembic.script import ScriptDirectory

    known = {rev.revision for rev in ScriptDirectory.from_config(config()).walk_revisions()}
    return list(found) if found and all(rev in known for rev in found) else []


def upgrade(connection: Any, stamp_initial: bool = False) -> None:
    """Bring the database on ``connection`` to the head revision, in its open transaction.

    ``stamp_initial``: the database was made before Alembic (it has ``labbook_schema`` version 1
    and no version table); record it at :data:`INITIAL_REVISION` first. A revision recorded in
    ``alembic_version`` by an older labbook is moved to :data:`VERSION_TABLE` first. Raises
    :class:`UnknownRevisionError` when the database is at a revision not in ``versions/``
    (written by a newer labbook).
    """
    with _quiet_alembic():  # importing alembic logs too (its plugins)
        from alembic import command
        from alembic.script import ScriptDirectory

        _upgrade(connection, stamp_initial, command, ScriptDirectory)


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic logs a line per step at INFO; a store's first use stays quiet unless asked:
    the ``labbook`` logger at DEBUG, or a level the program set on the ``alembic`` logger."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level != logging.NOTSET \
            or logging.getLogger("labbook").isEnabledFor(logging.DEBUG):
        yield
        return
    alembic_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_log.setLevel(logging.NOTSET)


def _upgrade(connection: Any, stamp_initial: bool, command: Any, ScriptDirectory: Any) -> None:
    cfg = config(connection)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    known = {rev.revision for rev in script.walk_revisions()}
    current = current_revisions(connection)
    if not current:
        legacy = legacy_revisions(connection)
        if legacy:  # recorded by an older labbook in alembic_version: move it to our table
            command.stamp(cfg, legacy if len(legacy) > 1 else legacy[0])
            connection.exec_driver_sql(f"DROP TABLE {LEGACY_VERSION_TABLE}")
            current = current_revisions(connection)
            stamp_initial = False
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise UnknownRevisionError(unknown, head)
    if stamp_initial and not current:
        command.stamp(cfg, INITIAL_REVISION)
    if current == [head]:
        return
    command.upgrade(cfg, "head")
