"""The SQL store (:class:`SqlStore`): its connection, the schema brought to the head revision
on first use, and transactions with the database's errors made readable.

What it stores comes from the mixins: runs (:mod:`.runs`), metrics (:mod:`.metrics`) and files
(:mod:`.files`).
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as _mysql

from labbook.errors import NoStoreError, SqlConnectionError, SqlSchemaError, SqlStoreError
from labbook.stores import redact_url
from labbook.stores.base import Store
from labbook.stores.sql.engine import (connection_error, create_engine, engine_url, first_line,
                                       forget_connections_after_fork, is_deadlock,
                                       is_memory_sqlite)
from labbook.stores.sql.files import BLOB_CHUNK_SIZE, FilesMixin
from labbook.stores.sql.metrics import MetricsMixin
from labbook.stores.sql.migrations import VERSION_TABLE
from labbook.stores.sql.runs import RunsMixin
from labbook.stores.sql.versions import VersionsMixin
from labbook.stores.sql.schema import HEAD_REVISION, SCHEMA_VERSION, TABLE_NAMES, schema_table
from labbook.stores.sql.types import MYSQL_NAMES
from labbook.stores.sql.values import as_run_id

__all__ = ["SqlStore"]

_INIT_LOCK_KEY = 0x6C6162626F6F6B  # "labbook", for PostgreSQL's advisory lock
_INIT_LOCK_SECONDS = 600  # MySQL GET_LOCK: how long a process waits for another's migration


class SqlStore(RunsMixin, MetricsMixin, FilesMixin, VersionsMixin, Store):
    """Runs, metrics and files in a SQL database (SQLAlchemy Core)."""

    schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")

    def __init__(self, url: str, echo: bool = False, *, create: bool = True):
        self.url = url
        #: False when opened for reading: a missing SQLite file or labbook's tables missing
        #: from a database is an error (NoStoreError), and nothing is created
        self._create = create
        self._redacted = redact_url(url)
        self._sa_url = engine_url(url)
        self.dialect_name = self._sa_url.get_backend_name()
        self._is_mysql = self.dialect_name in MYSQL_NAMES
        self._lock = threading.RLock()
        self._ready = False
        #: per run: the info.tags keys last seen, so a heartbeat does not rewrite its tags
        self._info_tag_keys: dict[int, list] = {}
        self._chunk_size = BLOB_CHUNK_SIZE
        self._engine = create_engine(self._sa_url, self._redacted, echo)
        # reads on SQLite open a deferred transaction, writes an immediate one (see engine.py)
        self._reader = self._engine.execution_options(labbook_read=True)
        forget_connections_after_fork(self)

    def __repr__(self) -> str:
        return f"SqlStore({self._redacted!r})"

    @property
    def engine(self) -> sa.engine.Engine:
        return self._engine

    @property
    def redacted_url(self) -> str:
        """The store's URL with the password hidden (for messages and reprs)."""
        return self._redacted

    # -- connections -----------------------------------------------------------------------------
    def _forget_connections(self) -> None:
        # in a forked child: drop the parent's pooled connections without closing them
        self._engine.dispose(close=False)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._engine.dispose()

    def release(self) -> None:
        # SQLite's last connection closing writes the log back into the database file; a
        # server's idle connections are closed so that many stores in one process do not
        # exhaust its connection limit
        with self._lock:  # not while another thread holds a connection of the pool
            self._engine.dispose()

    def _connection_error(self, exc: BaseException) -> SqlConnectionError:
        return connection_error(self._sa_url, self._redacted, exc)

    def check(self) -> None:
        """Connect and create the tables if needed; raise a clear error when that fails."""
        self._ensure_ready()

    @classmethod
    def open_existing(cls, url: str) -> SqlStore:
        """The store at ``url`` for reading: the SQLite file, the database and labbook's
        tables must exist (checked now); nothing is created."""
        store = cls(url, create=False)
        store._ensure_ready()
        return store

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if not self._create and self.dialect_name == "sqlite" \
                    and not is_memory_sqlite(self._sa_url) \
                    and not os.path.isfile(self._sa_url.database or ""):
                raise NoStoreError(f"No store at {self._redacted} (the file "
                                   f"{self._sa_url.database} does not exist).", self._redacted)
            if self.dialect_name == "sqlite" and not is_memory_sqlite(self._sa_url):
                directory = os.path.dirname(self._sa_url.database or "")
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as exc:
                    raise self._connection_error(exc) from None
            try:
                with self._engine.connect():
                    pass
            except sa.exc.DBAPIError as exc:
                raise self._connection_error(exc) from None
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                raise self._connection_error(exc) from None
            if not self._at_head():
                if not self._create and not self._has_labbook_tables():
                    raise NoStoreError(f"{self._redacted} is not a labbook store (the database "
                                       "has no labbook tables); nothing was changed.",
                                       self._redacted)
                self._migrate_with_retries()
            if self._is_mysql:
                self._fit_chunks_to_packet()
            self._ready = True

    def _at_head(self) -> bool:
        """True when the database is at :data:`HEAD_REVISION` (checked without Alembic and
        without a write lock, so opening an up-to-date database stays cheap)."""
        try:
            with self._reader.connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
                if not {VERSION_TABLE, schema_table.name} <= names:
                    return False
                revisions = conn.exec_driver_sql(
                    f"SELECT version_num FROM {VERSION_TABLE}").scalars().all()
                version = conn.execute(sa.select(schema_table.c.version)
                                       .where(schema_table.c.id == 1)).scalar()
        except sa.exc.DBAPIError as exc:
            if is_deadlock(exc):  # another process is creating the tables: migrate (waits)
                return False
            raise self._connection_error(exc) from None
        return revisions == [HEAD_REVISION] and version == SCHEMA_VERSION

    def _has_labbook_tables(self) -> bool:
        try:
            with self._reader.connect() as conn:
                return schema_table.name in set(sa.inspect(conn).get_table_names())
        except sa.exc.DBAPIError as exc:
            raise self._connection_error(exc) from None

    def _migrate_with_retries(self) -> None:
        # the init lock serialises processes; a lost race on a server that ignores it (or a
        # deadlock report) is retried, and the retry finds the tables made by the winner
        for attempt in range(6):
            try:
                self._migrate()
                return
            except sa.exc.DBAPIError as exc:
                if attempt == 5:
                    raise SqlStoreError(f"Cannot create or upgrade the tables of "
                                        f"{self._redacted}: {first_line(exc)}.") from exc
                time.sleep(0.1 * (attempt + 1))

    def _migrate(self) -> None:
        """Create or upgrade the tables with the Alembic migrations, under the init lock."""
        with self._engine.begin() as conn:
            locked = self._init_lock(conn)
            try:
                names = set(sa.inspect(conn).get_table_names())
                version = None
                if schema_table.name in names:
                    version = conn.execute(sa.select(schema_table.c.version)
                                           .where(schema_table.c.id == 1)).scalar()
                else:
                    # another application's tables beside ours are fine (a sweep's Optuna
                    # study keeps its revision in alembic_version); tables named as ours not
                    foreign = names & (set(TABLE_NAMES) | {VERSION_TABLE})
                    if foreign:
                        raise SqlSchemaError(
                            f"The database {self._redacted} already has table(s) "
                            f"{', '.join(sorted(foreign))} that labbook did not create (no "
                            "labbook_schema table). Use a database of its own for labbook.")
                if version is not None and version > SCHEMA_VERSION:
                    raise SqlSchemaError(
                        f"The database {self._redacted} was written by a newer labbook (schema "
                        f"version {version}; this labbook knows versions up to "
                        f"{SCHEMA_VERSION}). Upgrade labbook: pip install -U labbook.")
                from labbook.stores.sql import migrations

                try:
                    # labbook_schema without a version table: made before the migrations
                    # (a revision an older labbook kept in alembic_version is moved first)
                    migrations.upgrade(conn, stamp_initial=version is not None
                                       and VERSION_TABLE not in names)
                except migrations.UnknownRevisionError as exc:
                    raise SqlSchemaError(
                        f"The database {self._redacted} was written by a newer labbook (schema "
                        f"revision {', '.join(exc.revisions)}, which this labbook does not know; "
                        f"it knows revisions up to {exc.head}). Upgrade labbook: "
                        "pip install -U labbook.") from None
            finally:
                if locked:
                    conn.exec_driver_sql("SELECT RELEASE_LOCK('labbook_init')")

    def _fit_chunks_to_packet(self) -> None:
        try:
            with self._reader.connect() as conn:
                packet = conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar()
        except sa.exc.DBAPIError:
            return
        if packet:
            # escaped binary can take up to twice its size in the statement text
            self._chunk_size = max(16 * 1024, min(BLOB_CHUNK_SIZE, int(packet) // 4))

    def _init_lock(self, conn: sa.Connection) -> bool:
        """Serialise table creation between processes; True when a lock must be released."""
        if self.dialect_name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": _INIT_LOCK_KEY})
        elif self._is_mysql:
            got = conn.exec_driver_sql(
                f"SELECT GET_LOCK('labbook_init', {_INIT_LOCK_SECONDS})").scalar()
            if got != 1:
                raise SqlStoreError(
                    f"Timed out after {_INIT_LOCK_SECONDS} s waiting for another process to "
                    f"create or upgrade the tables of {self._redacted}.")
            return True
        return False  # SQLite: BEGIN IMMEDIATE already holds the write lock

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (committed on success), with database errors made readable."""
        self._ensure_ready()
        with self._lock:
            try:
                with self._errors(), self._engine.begin() as conn:
                    yield conn
            except BaseException:
                # the tags the failed transaction wrote were rolled back with it: a retry
                # (a deadlock's, an outage's) must write them again, not trust the cache
                self._info_tag_keys.clear()
                raise

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        self._ensure_ready()
        with self._lock, self._errors(), self._reader.connect() as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as exc:
            # no statement: the failure happened while connecting
            if exc.connection_invalidated or exc.statement is None:
                raise self._connection_error(exc) from exc
            raise SqlStoreError(f"The SQL database {self._redacted} refused an operation: "
                                f"{first_line(exc)}") from exc

    # -- helpers of the mixins -------------------------------------------------------------------
    def _insert_ignore(self, table: sa.Table, values: dict) -> sa.sql.Executable:
        """INSERT that does nothing when the primary/unique key exists (races included)."""
        if self.dialect_name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
            return insert(table).values(**values).on_conflict_do_nothing()
        if self.dialect_name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
            return insert(table).values(**values).on_conflict_do_nothing()
        stmt = _mysql.insert(table).values(**values)
        key = next(iter(values))
        return stmt.on_duplicate_key_update({key: stmt.inserted[key]})

    def _existing_id(self, run_id: Any) -> int:
        """The integer id of a run to write to; an error when ``run_id`` cannot be one."""
        rid = as_run_id(run_id)
        if rid is None:
            raise SqlStoreError(f"There is no run {run_id!r} in {self._redacted} (run ids are "
                                "integers).")
        return rid
