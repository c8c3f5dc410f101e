"""Alembic migrations of the SQL store's schema, shipped inside the package.

``versions/`` holds one revision per schema change, in order:

* ``0001_initial``: the first schema (``labbook_schema`` version 1), exactly the tables the
  labbook before Alembic made with ``create_all``. A database made by that code has no
  ``alembic_version`` table; it is stamped at this revision, then upgraded.
* ``0002_blob_chunks_metric_us``: file contents in ``blob_chunks`` (pieces of at most
  ``CHUNK_SIZE`` bytes) instead of one ``blobs.content`` value; metric timestamps as integer
  microseconds since the epoch (``metrics.time_us``) instead of a DateTime column.
  ``labbook_schema.version`` becomes 2, so the labbook before Alembic refuses such a database
  with its "Upgrade labbook" message instead of misreading it.

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

__all__ = ["SCRIPT_LOCATION", "INITIAL_REVISION", "UnknownRevisionError", "config", "head_revision",
           "current_revisions", "upgrade"]

#: the folder Alembic reads (``script_location``)
SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))

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
    """The revision(s) the database is at (empty when it has no ``alembic_version`` yet)."""
    from alembic.runtime.migration import MigrationContext

    return list(MigrationContext.configure(connection).get_current_heads())


def upgrade(connection: Any, stamp_initial: bool = False) -> None:
    """Bring the database on ``connection`` to the head revision, in its open transaction.

    ``stamp_initial``: the database was made before Alembic (it has ``labbook_schema`` version 1
    and no ``alembic_version``); record it at :data:`INITIAL_REVISION` first. Raises
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
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise UnknownRevisionError(unknown, head)
    if stamp_initial and not current:
        command.stamp(cfg, INITIAL_REVISION)
    if current == [head]:
        return
    command.upgrade(cfg, "head")
