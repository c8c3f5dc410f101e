"""The SQL store: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy Core.

URLs: ``sqlite:///path.db`` (relative to the current directory, made absolute on open),
``postgresql://user:pw@host/db`` (driver psycopg 3 unless one is named, as in
``postgresql+psycopg://``), ``mysql://`` / ``mariadb://`` (driver PyMySQL unless named).

Tables (created and upgraded on first use by the Alembic migrations in
:mod:`labbook.stores.sql_migrations`; ``alembic_version`` holds the revision and
``labbook_schema`` the schema version older labbooks check)::

    experiments  (id, name, created)
    runs         (id = the run id, experiment_name, command, status, start_time, queue_time,
                  stop_time, heartbeat, experiment, host, config, meta, info, result,
                  fail_trace, resources, artifacts, extra (JSON), captured_out (text))
    metrics      (id, run_id, name, step, value, special, time_us)
    blobs        (md5, size)                 content-addressed: sources, resources, artifacts
    blob_chunks  (md5, seq, data)            a blob's bytes, in pieces of at most 1 MiB
    artifacts    (id, run_id, name, md5, content_type, metadata)

Metric times are integer microseconds since 1970-01-01 UTC (``time_us``), read back as naive
UTC datetimes.

Non-finite metric values are stored as ``value`` NULL plus ``special`` = 'nan' / 'inf' /
'-inf', because MySQL has no NaN and SQLite turns NaN into NULL. Non-finite floats inside
JSON columns become ``{"$float": "NaN"}`` (JSON has no NaN; PostgreSQL and MySQL refuse it).

Filters are translated to SQL where the translation is sure not to lose a match (the run id,
status, command, experiment name and the time columns); every candidate row is then checked
with :func:`labbook.stores.query.evaluate`, so results equal those of the file store.
"""
from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import io
import itertools
import math
import operator
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as _mysql

from labbook import clock, serialize
from labbook.errors import (RunNotFoundError, SqlConnectionError, SqlSchemaError,
                            SqlStoreError, StoredFileNotFoundError)
from labbook.fileio import file_md5
from labbook.observers.store_observer import StoreObserver
from labbook.stores import redact_url
from labbook.stores import query as _query
from labbook.stores.base import (LAST_KEY, RUN_FIELDS, Store, claim_order, replaceable,
                                 sample_positions)

#: the schema this code writes; a database with a higher version is refused. Kept in the
#: ``labbook_schema`` table for labbooks from before the Alembic migrations.
SCHEMA_VERSION = 3

#: the newest Alembic revision in labbook/stores/sql_migrations/versions (a test checks it);
#: a database at this revision is used without importing Alembic
HEAD_REVISION = "0003_summaries_tags_files"

#: largest piece of a stored file in one row (MariaDB refuses statements larger than
#: ``max_allowed_packet``; the store uses a quarter of that when it is smaller)
BLOB_CHUNK_SIZE = 1024 * 1024

#: Sacred's default priority of its SqlObserver
DEFAULT_SQL_PRIORITY = 40

#: seconds a SQLite writer waits for another process's write lock before giving up
SQLITE_BUSY_TIMEOUT = 30.0

#: seconds to wait for a database server to accept a connection
CONNECT_TIMEOUT = 10

_MYSQL_NAMES = ("mysql", "mariadb")
_SHORT = 255  # longest status / command / experiment / metric name stored in an indexed column
_INIT_LOCK_KEY = 0x6C6162626F6F6B  # "labbook", for PostgreSQL's advisory lock
_INIT_LOCK_SECONDS = 600  # MySQL GET_LOCK: how long a process waits for another's migration
_IN_CHUNK = 500  # ids per IN (...) list


# -- column types --------------------------------------------------------------------------------
def _name_type(length: int) -> sa.types.TypeEngine:
    # MySQL compares strings case-insensitively by default; names are case-sensitive keys.
    return sa.String(length).with_variant(
        _mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL_NAMES)


_JSON = sa.JSON(none_as_null=True)
_LONG_TEXT = sa.Text().with_variant(_mysql.LONGTEXT(), *_MYSQL_NAMES)
_BLOB = sa.LargeBinary().with_variant(_mysql.LONGBLOB(), *_MYSQL_NAMES)
# MySQL's DATETIME drops the microseconds unless asked to keep them.
_TIME = sa.DateTime().with_variant(_mysql.DATETIME(fsp=6), *_MYSQL_NAMES)
# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

# The tables as the head revision of labbook/stores/sql_migrations leaves them: used to build
# queries only (the migrations create and change them; a test checks the two agree).
METADATA = sa.MetaData()

schema_table = sa.Table(
    "labbook_schema", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    **_TABLE_OPTIONS)

experiments = sa.Table(
    "experiments", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", _name_type(_SHORT), nullable=False, unique=True),
    sa.Column("created", _TIME),
    **_TABLE_OPTIONS)

runs = sa.Table(
    "runs", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment_name", _name_type(_SHORT), index=True),
    sa.Column("command", _name_type(_SHORT)),
    sa.Column("status", _name_type(_SHORT), index=True),
    sa.Column("start_time", _TIME, index=True),
    sa.Column("queue_time", _TIME),
    sa.Column("stop_time", _TIME),
    sa.Column("heartbeat", _TIME, index=True),
    sa.Column("experiment", _JSON),
    sa.Column("host", _JSON),
    sa.Column("config", _JSON),
    sa.Column("meta", _JSON),
    sa.Column("info", _JSON),
    sa.Column("result", _JSON),
    sa.Column("fail_trace", _JSON),
    sa.Column("resources", _JSON),
    sa.Column("artifacts", _JSON),
    sa.Column("extra", _JSON),
    sa.Column("captured_out", _LONG_TEXT),
    # each metric's last logged value {name: value}, kept by append_metrics (the summaries)
    sa.Column("last_metrics", _JSON),
    # AUTOINCREMENT: SQLite never hands out the id of a deleted run again
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS)

metrics = sa.Table(
    "metrics", METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", _name_type(_SHORT), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("special", sa.String(8)),
    sa.Column("time_us", sa.BigInteger),
    sa.Index("ix_metrics_run_name_step", "run_id", "name", "step"),
    **_TABLE_OPTIONS)

blobs = sa.Table(
    "blobs", METADATA,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    **_TABLE_OPTIONS)

blob_chunks = sa.Table(
    "blob_chunks", METADATA,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", _BLOB, nullable=False),
    **_TABLE_OPTIONS)

artifacts = sa.Table(
    "artifacts", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", _name_type(1024), nullable=False),
    sa.Column("md5", sa.String(32), sa.ForeignKey("blobs.md5"), nullable=False),
    sa.Column("content_type", sa.String(255)),
    sa.Column("metadata", _JSON),
    **_TABLE_OPTIONS)

tags_table = sa.Table(
    "tags", METADATA,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True, autoincrement=False),
    sa.Column("tag", _name_type(_SHORT), primary_key=True),
    sa.Index("ix_tags_tag", "tag"),
    **_TABLE_OPTIONS)


def _file_table(name: str) -> sa.Table:
    return sa.Table(
        name, METADATA,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", _name_type(1024), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False, index=True),
        **_TABLE_OPTIONS)


#: the files a run read and its source files: (run, recorded name, md5 of the blob)
run_resources = _file_table("run_resources")
run_sources = _file_table("run_sources")

#: tables holding rows of one run (deleted with it; SQLite enforces no ON DELETE CASCADE)
_RUN_TABLES = (metrics, artifacts, tags_table, run_resources, run_sources)

_TABLE_NAMES = tuple(t.name for t in METADATA.sorted_tables)

_JSON_FIELDS = ("experiment", "host", "config", "meta", "info", "result", "fail_trace",
                "resources", "artifacts")
_TIME_FIELDS = ("start_time", "queue_time", "stop_time", "heartbeat")
_NAME_FIELDS = ("command", "status")
#: fields returned as None when NULL (the observer always sets them, None is meaningful);
#: other NULL fields are left out of the document, as the file store leaves out unset ones
_KEEP_NULL = ("heartbeat", "result")
_DEFAULTS = {"config": dict, "info": dict, "captured_out": str}


# -- URLs ----------------------------------------------------------------------------------------
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
_DRIVER_PACKAGES = {"psycopg": "postgres", "psycopg2": "postgres", "pymysql": "mysql",
                    "MySQLdb": "mysql"}


def engine_url(url: str) -> sa.engine.URL:
    """The SQLAlchemy URL for a labbook store URL (default drivers, absolute SQLite paths)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SqlStoreError(f"Not a database URL: {redact_url(url)!r}. Use sqlite:///file.db, "
                            "postgresql://user@host/db or mysql://user@host/db.")
    scheme = _DEFAULT_DRIVERS.get(scheme.lower(), scheme)
    try:
        parsed = sa.engine.make_url(f"{scheme}://{rest}")
    except Exception as exc:  # sqlalchemy raises ArgumentError with the full URL in it
        raise SqlStoreError(f"Cannot parse the database URL {redact_url(url)}: "
                            f"{type(exc).__name__}.") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parsed = parsed.set(database=os.path.abspath(os.path.expanduser(database)))
    return parsed


def _is_memory_sqlite(url: sa.engine.URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or "mode=memory" in url.database)


# Processes forked after a store opened must not share its pooled connections.
_OPEN_STORES: weakref.WeakSet = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_OPEN_STORES):
        store._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- helpers for values --------------------------------------------------------------------------
def _to_time(value: Any) -> _dt.datetime | None:
    """A naive UTC datetime from a datetime, an ISO string or a POSIX timestamp."""
    try:
        return clock.to_utc(value)
    except TypeError:
        raise SqlStoreError(f"Expected a datetime, got {type(value).__name__}: "
                            f"{value!r:.80}.") from None


def _short_name(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SqlStoreError(f"The run field '{field}' must be a string, got "
                            f"{type(value).__name__}: {value!r:.80}.")
    if len(value) > _SHORT:
        raise SqlStoreError(f"The run field '{field}' is {len(value)} characters long; the SQL "
                            f"store keeps at most {_SHORT}.")
    return value


def _pieces(filename: str, size: int) -> Iterator[bytes]:
    """The bytes of ``filename`` in pieces of ``size``; none when it is empty."""
    with open(filename, "rb") as fh:
        yield from iter(lambda: fh.read(size), b"")


def _file_rows(rid: int, entries: Any) -> list[dict]:
    """``run_resources`` / ``run_sources`` rows of ``[[name, md5], ...]`` entries."""
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list | tuple) and len(entry) >= 2 and isinstance(entry[1], str) \
                and len(entry[1]) == 32:
            rows.append({"run_id": rid, "name": str(entry[0])[:1024], "md5": entry[1]})
    return rows


def _special(value: float) -> str | None:
    """The ``special`` column of a metric value: 'nan', 'inf', '-inf' or None (finite)."""
    if value - value == 0.0:
        return None
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


_SPECIAL_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_RUN_AND_NAME = operator.itemgetter(0, 1)


def _microseconds(stamps: list | None, n: int) -> Iterable[int | None]:
    """``time_us`` for ``n`` points: microseconds since the epoch, None where no time."""
    if not stamps:
        return itertools.repeat(None, n)
    if len(stamps) != n:
        raise SqlStoreError(f"{n} metric steps but {len(stamps)} timestamps.")
    try:
        return clock.to_microseconds(stamps)
    except TypeError as exc:
        raise SqlStoreError(f"A metric timestamp is no time: {exc}") from None


def _plain_rows(conn: sa.Connection, stmt: sa.Select, size: int = 2000
                ) -> Iterator[list[tuple]]:
    """The rows of ``stmt`` in lists of up to ``size``, as the driver returns them: tuples,
    no SQLAlchemy ``Row`` per row (for columns of plain numbers and strings, which need no
    result processing). Small lists, not all rows at once: tuples that die young never reach
    the old generation, so the garbage collector does not rescan a million of them (and the
    long series being built) over and over."""
    result = conn.execute(stmt)
    try:
        if result.cursor is None:
            return
        while True:
            rows = result.cursor.fetchmany(size)
            if not rows:
                return
            yield rows
    finally:
        result.close()


def _run_id(run_id: Any) -> int | None:
    """The integer id of a run, or None when ``run_id`` cannot be one."""
    if isinstance(run_id, bool):
        return None
    if isinstance(run_id, int):
        return run_id
    if isinstance(run_id, str) and run_id.strip().isdigit():
        return int(run_id)
    return None


def _is_deadlock(exc: BaseException | None) -> bool:
    """A transaction the server rolled back to break a deadlock (safe to run again)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    # MySQL/MariaDB 1213 (deadlock), 1205 (lock wait timeout) and 1412 (a table read while
    # another process was creating it); PostgreSQL 40P01
    return code in (1213, 1205, 1412) or getattr(orig, "sqlstate", None) == "40P01"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return text.splitlines()[0]


class SqlStore(Store):
    """Runs, metrics and files in a SQL database (SQLAlchemy Core)."""

    schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        self._redacted = redact_url(url)
        self._sa_url = engine_url(url)
        self.dialect_name = self._sa_url.get_backend_name()
        self._is_mysql = self.dialect_name in _MYSQL_NAMES
        self._lock = threading.RLock()
        self._ready = False
        #: per run: the info.tags keys last seen, so a heartbeat does not rewrite its tags
        self._info_tag_keys: dict[int, list] = {}
        self._chunk_size = BLOB_CHUNK_SIZE
        self._engine = self._create_engine(echo)
        # reads on SQLite open a deferred transaction, writes an immediate one (see _on_begin)
        self._reader = self._engine.execution_options(labbook_read=True)
        _OPEN_STORES.add(self)

    def __repr__(self) -> str:
        return f"SqlStore({self._redacted!r})"

    @property
    def engine(self) -> sa.engine.Engine:
        return self._engine

    # -- connections -----------------------------------------------------------------------------
    def _create_engine(self, echo: bool) -> sa.engine.Engine:
        url = self._sa_url
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": serialize.dumps_strict,
                                  "json_deserializer": serialize.loads_strict}
        connect_args: dict[str, Any] = {}
        if self.dialect_name == "sqlite":
            connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
            # one connection per thread at a time (the store's lock); the heartbeat thread
            # reuses pooled connections made by the main thread
            connect_args["check_same_thread"] = False
            if _is_memory_sqlite(url):
                # every connection to :memory: would be a new empty database
                kwargs["poolclass"] = sa.pool.StaticPool
        else:
            kwargs["pool_pre_ping"] = True  # servers drop idle connections during long runs
            if self.dialect_name == "postgresql" and "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = CONNECT_TIMEOUT
            if self._is_mysql:
                if "connect_timeout" not in url.query:
                    connect_args["connect_timeout"] = CONNECT_TIMEOUT
                if "charset" not in url.query:
                    url = url.update_query_dict({"charset": "utf8mb4"})
        if connect_args:
            kwargs["connect_args"] = connect_args
        try:
            engine = sa.create_engine(url, **kwargs)
        except ModuleNotFoundError as exc:
            extra = _DRIVER_PACKAGES.get((exc.name or "").split(".")[0])
            hint = (f"pip install 'labbook[{extra}]'" if extra
                    else f"install the Python package '{exc.name}'")
            raise SqlConnectionError(
                f"The database driver for {self._redacted} is not installed ({exc}); "
                f"{hint}.") from None
        except Exception as exc:  # unknown dialect or driver name
            raise SqlConnectionError(
                f"Cannot use the database URL {self._redacted}: {_first_line(exc)}. Use "
                "sqlite:///file.db, postgresql://user@host/db or mysql://user@host/db.") from None
        if self.dialect_name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_on_connect)
            sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _forget_connections(self) -> None:
        # in a forked child: drop the parent's pooled connections without closing them
        self._engine.dispose(close=False)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._engine.dispose()

    def _connection_error(self, exc: BaseException) -> SqlConnectionError:
        reason = _first_line(exc)
        password = self._sa_url.password
        if password:
            reason = reason.replace(str(password), "****")
        url = self._sa_url
        if self.dialect_name == "sqlite":
            check = (f"Check that the directory of '{url.database}' exists and is writable and "
                     "that the file is a SQLite database.")
        else:
            where = f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")
            check = (f"Check that the database server is running and reachable at {where}, "
                     f"that the database '{url.database}' exists (create it first), and that "
                     "the user name and password in the URL are right.")
        return SqlConnectionError(f"Cannot open the SQL database {self._redacted}: {reason}. "
                                  f"{check}", self._redacted)

    def check(self) -> None:
        """Connect and create the tables if needed; raise a clear error when that fails."""
        self._ensure_ready()

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if self.dialect_name == "sqlite" and not _is_memory_sqlite(self._sa_url):
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
                if not {"alembic_version", schema_table.name} <= names:
                    return False
                revisions = conn.exec_driver_sql(
                    "SELECT version_num FROM alembic_version").scalars().all()
                version = conn.execute(sa.select(schema_table.c.version)
                                       .where(schema_table.c.id == 1)).scalar()
        except sa.exc.DBAPIError as exc:
            if _is_deadlock(exc):  # another process is creating the tables: migrate (waits)
                return False
            raise self._connection_error(exc) from None
        return revisions == [HEAD_REVISION] and version == SCHEMA_VERSION

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
                                        f"{self._redacted}: {_first_line(exc)}.") from exc
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
                    foreign = names & set(_TABLE_NAMES)
                    if "alembic_version" in names and conn.exec_driver_sql(
                            "SELECT version_num FROM alembic_version").first() is not None:
                        foreign.add("alembic_version")  # another application's migrations
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
                from labbook.stores import sql_migrations

                try:
                    # labbook_schema without alembic_version: made before the migrations
                    sql_migrations.upgrade(conn, stamp_initial=version is not None
                                           and "alembic_version" not in names)
                except sql_migrations.UnknownRevisionError as exc:
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
        with self._lock, self._errors(), self._engine.begin() as conn:
            yield conn

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
                                f"{_first_line(exc)}") from exc

    # -- write side ------------------------------------------------------------------------------
    def _columns(self, fields: dict) -> tuple[dict, dict]:
        """Column values for run fields, and the fields without a column of their own."""
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "_id":
                continue
            if key in _JSON_FIELDS:
                values[key] = serialize.flatten(value)
                if key == "experiment":
                    name = value.get("name") if isinstance(value, dict) else None
                    # the column mirrors the name for indexing; NULL when it cannot
                    values["experiment_name"] = (
                        name if isinstance(name, str) and len(name) <= _SHORT else None)
            elif key in _TIME_FIELDS:
                values[key] = _to_time(value)
            elif key in _NAME_FIELDS:
                values[key] = _short_name(key, value)
            elif key == "captured_out":
                text = value or ""
                if self.dialect_name == "postgresql" and "\x00" in text:
                    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
                values[key] = text
            else:
                extra[key] = serialize.flatten(value)
        return values, extra

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

    def _ensure_experiment(self, conn: sa.Connection, name: str | None) -> None:
        if name is None:
            return
        found = conn.execute(sa.select(experiments.c.id)
                             .where(experiments.c.name == name)).first()
        if found is None:
            conn.execute(self._insert_ignore(experiments, {"name": name,
                                                           "created": clock.utcnow()}))

    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        values, extra = self._columns(doc)
        values["extra"] = extra or None
        if run_id is not None:
            wanted = _run_id(run_id)
            if wanted is None:
                raise SqlStoreError(f"The SQL store numbers runs with integers; cannot use the "
                                    f"run id {run_id!r}.")
            return self._create_with_id(values, wanted, overwrite)
        for attempt in range(5):
            try:
                with self._write() as conn:
                    self._ensure_experiment(conn, values.get("experiment_name"))
                    result = conn.execute(runs.insert().values(**values))
                    rid = int(result.inserted_primary_key[0])
                    self._write_related(conn, rid, values)
                    return rid
            except SqlStoreError as exc:
                if attempt == 4:
                    raise
                if _is_deadlock(exc.__cause__):
                    # many processes starting at once: the transaction was rolled back whole
                    time.sleep(0.02 * (attempt + 1))
                    continue
                # PostgreSQL: a run inserted with an explicit id can meet the sequence
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
                with self._write() as conn:
                    self._sync_sequence(conn)
        raise AssertionError("unreachable")

    def _create_with_id(self, values: dict, run_id: int, overwrite: bool) -> int:
        full = {c.name: None for c in runs.columns if c.name != "id"}
        full.update(values)
        with self._write() as conn:
            self._ensure_experiment(conn, values.get("experiment_name"))
            exists = conn.execute(sa.select(runs.c.status, runs.c.start_time, runs.c.meta)
                                  .where(runs.c.id == run_id)).first()
            if exists:
                if not overwrite and not replaceable(exists._asdict()):
                    from labbook.errors import RunExistsError

                    raise RunExistsError(
                        f"A run with id {run_id} already exists in {self._redacted}. Choose "
                        "another id, or leave the id out to get the next free one.")
                # the new run starts clean: the old one's points, files and tags go
                for table in _RUN_TABLES:
                    conn.execute(table.delete().where(table.c.run_id == run_id))
                conn.execute(runs.update().where(runs.c.id == run_id).values(**full))
            else:
                conn.execute(runs.insert().values(id=run_id, **full))
                self._sync_sequence(conn)
            self._info_tag_keys.pop(run_id, None)
            self._write_related(conn, run_id, values)
        return run_id

    # -- rows that mirror a run's fields (tags, resources, sources) -------------------------------
    def _write_related(self, conn: sa.Connection, rid: int, doc: dict) -> None:
        """The tags, resources and sources rows of a new run."""
        self._write_tags(conn, rid, doc.get("meta"), doc.get("info"), fresh=True)
        for table, entries in ((run_resources, doc.get("resources")),
                               (run_sources, (doc.get("experiment") or {}).get("sources")
                                if isinstance(doc.get("experiment"), dict) else None)):
            rows = _file_rows(rid, entries)
            if rows:
                conn.execute(table.insert(), rows)

    def _write_tags(self, conn: sa.Connection, rid: int, meta: Any, info: Any,
                    fresh: bool = False) -> None:
        """Make the run's rows of the tags table those of ``meta`` and ``info``."""
        def key(tag: str) -> str:
            # MySQL's PAD SPACE collations take 'a' and 'a ' for one key
            return tag.rstrip(" ") if self._is_mysql else tag

        wanted: dict[str, str] = {}
        for tag in _query.run_tags({"meta": meta, "info": info}):
            if len(tag) <= _SHORT:
                wanted.setdefault(key(tag), tag)
        stored: dict[str, str] = {}
        if not fresh:
            stored = {key(t): t for t in conn.execute(
                sa.select(tags_table.c.tag).where(tags_table.c.run_id == rid)).scalars()}
        # row by row, never "delete where run_id": on InnoDB a delete that finds nothing
        # locks the gap, and runs created at the same time then deadlock on it
        for gone in stored.keys() - wanted.keys():
            conn.execute(tags_table.delete().where(tags_table.c.run_id == rid,
                                                   tags_table.c.tag == stored[gone]))
        new = [{"run_id": rid, "tag": tag} for k, tag in wanted.items() if k not in stored]
        if new:
            conn.execute(tags_table.insert(), new)
        valued = info.get("tags") if isinstance(info, dict) else None
        self._info_tag_keys[rid] = sorted(map(str, valued)) if isinstance(valued, dict) else []

    def _update_related(self, conn: sa.Connection, rid: int, fields: dict) -> None:
        """Keep the tags, resources and sources rows in step with changed fields."""
        if "meta" in fields or "info" in fields:
            info = fields.get("info")
            valued = info.get("tags") if isinstance(info, dict) else None
            keys = sorted(map(str, valued)) if isinstance(valued, dict) else []
            # a heartbeat (info only) with the same tags as before changes nothing
            if "meta" in fields or self._info_tag_keys.get(rid) != keys:
                stored = conn.execute(sa.select(runs.c.meta, runs.c.info)
                                      .where(runs.c.id == rid)).first()
                if stored is not None:
                    self._write_tags(conn, rid, fields.get("meta", stored.meta),
                                     fields.get("info", stored.info))
        for table, name in ((run_resources, "resources"), (run_sources, "experiment")):
            if name not in fields:
                continue
            entries = fields[name]
            if name == "experiment":
                entries = entries.get("sources") if isinstance(entries, dict) else None
            conn.execute(table.delete().where(table.c.run_id == rid))
            rows = _file_rows(rid, entries)
            if rows:
                conn.execute(table.insert(), rows)

    def _sync_sequence(self, conn: sa.Connection) -> None:
        # PostgreSQL's sequence does not see explicit ids; SQLite and MySQL move on by themselves
        if self.dialect_name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('runs', 'id'), "
                "(SELECT COALESCE(MAX(id), 0) + 1 FROM runs), false)")

    def update_run(self, run_id: Any, fields: dict) -> None:
        rid = self._existing_id(run_id)
        values, extra = self._columns(fields)
        with self._write() as conn:
            if extra:
                current = conn.execute(sa.select(runs.c.extra).where(runs.c.id == rid)).scalar()
                values["extra"] = {**(current or {}), **extra}
            if "experiment_name" in values:
                self._ensure_experiment(conn, values["experiment_name"])
            if not values:
                return
            result = conn.execute(runs.update().where(runs.c.id == rid).values(**values))
            if result.rowcount == 0:
                raise SqlStoreError(f"There is no run {run_id!r} in {self._redacted}.")
            self._update_related(conn, rid, values)

    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        # Compare-and-set: UPDATE ... WHERE status = 'QUEUED' changes a row for one transaction
        # only (PostgreSQL and InnoDB re-check the condition after waiting for the row's lock;
        # SQLite writes one transaction at a time), so the loser moves on to the next run.
        stmt = sa.select(runs.c.id, runs.c.queue_time, runs.c.meta).where(
            runs.c.status == "QUEUED")
        if experiment is not None:
            stmt = stmt.where(runs.c.experiment_name == experiment)
        with self._read() as conn:
            queued = [{"_id": row.id, "queue_time": row.queue_time, "meta": row.meta}
                      for row in conn.execute(stmt)]
        for candidate in sorted(queued, key=claim_order):
            rid = candidate["_id"]
            with self._write() as conn:
                won = conn.execute(runs.update().where(runs.c.id == rid,
                                                       runs.c.status == "QUEUED")
                                   .values(status="RUNNING", heartbeat=clock.utcnow())).rowcount
                if won != 1:
                    continue
                meta = conn.execute(sa.select(runs.c.meta).where(runs.c.id == rid)).scalar()
                meta = dict(meta or {}, worker=worker)
                conn.execute(runs.update().where(runs.c.id == rid).values(meta=meta))
            return self.get(rid)
        return None

    def _existing_id(self, run_id: Any) -> int:
        rid = _run_id(run_id)
        if rid is None:
            raise SqlStoreError(f"There is no run {run_id!r} in {self._redacted} (run ids are "
                                "integers).")
        return rid

    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        rid = self._existing_id(run_id)
        # (has a special value, rows) per metric, in the order given
        parts: list[tuple[bool, Iterable[tuple]]] = []
        last: dict[str, float] = {}
        for name, series in metrics_by_name.items():
            _short_name("metric name", name)
            steps = series["steps"]
            n = len(steps)
            if not n:
                continue
            if set(map(type, steps)) != {int}:
                steps = [_integral_step(name, step) for step in steps]
            values = list(map(float, series["values"]))
            if len(values) != n:
                raise SqlStoreError(f"Metric '{name}': {n} steps but {len(values)} values.")
            times = _microseconds(series.get("timestamps"), n)
            last[name] = values[-1]
            # NaN and +-inf make the sum non-finite (a finite overflow only costs the slow path)
            if math.isfinite(sum(values)):
                parts.append((False, zip(itertools.repeat(rid, n), itertools.repeat(name, n),
                                         steps, values, times)))
            else:
                specials = [_special(value) for value in values]
                values = [None if special else value
                          for value, special in zip(values, specials)]
                parts.append((True, zip(itertools.repeat(rid, n), itertools.repeat(name, n),
                                        steps, values, specials, times)))
        if not parts:
            return
        with self._write() as conn:
            for special, group in itertools.groupby(parts, operator.itemgetter(0)):
                columns = (("run_id", "name", "step", "value", "special", "time_us") if special
                           else ("run_id", "name", "step", "value", "time_us"))
                self._insert_metric_rows(conn, columns, itertools.chain.from_iterable(
                    rows for _, rows in group))
            # the summary of the run, in the same transaction as its points
            current = conn.execute(sa.select(runs.c.last_metrics)
                                   .where(runs.c.id == rid)).scalar()
            conn.execute(runs.update().where(runs.c.id == rid)
                         .values(last_metrics={**(current or {}), **last}))

    def _insert_metric_rows(self, conn: sa.Connection, columns: tuple[str, ...],
                            rows: Iterable[tuple]) -> None:
        """Rows straight to the driver, with no per-row SQLAlchemy processing: ``COPY`` with
        psycopg 3, else one ``executemany`` (sqlite3 loops in C, PyMySQL rewrites it into
        multi-row INSERTs)."""
        mark = "?" if self.dialect_name == "sqlite" else "%s"
        sql = (f"INSERT INTO metrics ({', '.join(columns)}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            if self.dialect_name == "postgresql" and hasattr(cursor, "copy"):
                sql = f"COPY metrics ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            elif self._is_mysql and self._engine.dialect.driver == "pymysql":
                def quote(name: str) -> str:
                    return cursor.mogrify("%s", (name,))

                for sql in self._mysql_inserts(quote, columns, rows):
                    cursor.execute(sql)
            else:
                cursor.executemany(sql, rows)
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error,
                                             dialect=self._engine.dialect) from exc
        finally:
            cursor.close()

    def _mysql_inserts(self, quote: Any, columns: tuple[str, ...], rows: Iterable[tuple]
                       ) -> Iterator[str]:
        """Multi-row INSERT statements of at most ~1 MB for MySQL, written directly: what
        PyMySQL's ``executemany`` makes, without escaping every number through its generic
        encoders. Only the metric name is text (quoted by the driver's ``mogrify``, which
        knows the server's quoting mode, once per name); run ids, steps and times are
        ``int``, values ``float`` (finite: repr is exact), ``special`` one of three fixed
        words."""
        head = f"INSERT INTO metrics ({', '.join(columns)}) VALUES "
        limit = min(1_000_000, self._chunk_size * 2)
        quoted: dict[str, str] = {}
        parts: list[str] = []
        length = len(head)
        with_special = "special" in columns
        for row in rows:
            if with_special:
                rid, name, step, value, special, micros = row
            else:
                rid, name, step, value, micros = row
                special = None
            text = quoted.get(name)
            if text is None:
                text = quoted[name] = quote(name)
            if with_special:
                part = (f"({rid},{text},{step},{'NULL' if value is None else repr(value)},"
                        f"{'NULL' if special is None else repr(special)},"
                        f"{'NULL' if micros is None else micros})")
            else:
                part = (f"({rid},{text},{step},{'NULL' if value is None else repr(value)},"
                        f"{'NULL' if micros is None else micros})")
            if parts and length + len(part) > limit:
                yield head + ",".join(parts)
                parts, length = [], len(head)
            parts.append(part)
            length += len(part) + 1
        if parts:
            yield head + ",".join(parts)

    def _put_blob(self, conn: sa.Connection, md5: str, filename: str) -> None:
        """Store a file's bytes once per md5, in chunks, read from ``filename`` piece by
        piece."""
        found = conn.execute(sa.select(blobs.c.md5).where(blobs.c.md5 == md5)).first()
        if found is not None:
            return
        size = 0
        digest = hashlib.md5()
        for seq, piece in enumerate(_pieces(filename, self._chunk_size)):
            # concurrent writers of the same new file: the second one's rows are ignored
            conn.execute(self._insert_ignore(blob_chunks, {"md5": md5, "seq": seq,
                                                           "data": piece}))
            digest.update(piece)
            size += len(piece)
        if digest.hexdigest() != md5:  # the transaction is rolled back: nothing half-stored
            raise SqlStoreError(f"The file {filename} changed while it was being stored in "
                                f"{self._redacted}; nothing was stored.")
        conn.execute(self._insert_ignore(blobs, {"md5": md5, "size": size}))

    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        rid = self._existing_id(run_id)
        md5 = file_md5(filename)
        row = {"md5": md5, "content_type": content_type,
               "metadata": serialize.flatten(metadata) if metadata is not None else None}
        with self._write() as conn:
            self._put_blob(conn, md5, filename)
            found = conn.execute(sa.select(artifacts.c.id).where(
                artifacts.c.run_id == rid, artifacts.c.name == name)).first()
            if found is None:
                conn.execute(artifacts.insert().values(run_id=rid, name=name, **row))
            else:  # the same name again replaces the content, like a file overwritten
                conn.execute(artifacts.update().where(artifacts.c.id == found[0]).values(**row))
            names = conn.execute(sa.select(artifacts.c.name).where(artifacts.c.run_id == rid)
                                 .order_by(artifacts.c.id)).scalars().all()
            conn.execute(runs.update().where(runs.c.id == rid).values(artifacts=list(names)))

    def put_resource(self, run_id: Any, filename: str) -> None:
        rid = self._existing_id(run_id)
        md5 = file_md5(filename)
        with self._write() as conn:
            self._put_blob(conn, md5, filename)
            current = conn.execute(sa.select(runs.c.resources)
                                   .where(runs.c.id == rid)).scalar() or []
            if [filename, md5] not in current:
                conn.execute(runs.update().where(runs.c.id == rid)
                             .values(resources=[*current, [filename, md5]]))
                conn.execute(run_resources.insert().values(run_id=rid, name=filename[:1024],
                                                           md5=md5))

    def put_sources(self, experiment_info: dict) -> dict:
        info = dict(experiment_info)
        base_dir = info.get("base_dir") or ""
        stored = []
        paths: dict[str, str] = {}
        for relname, _md5sum in info.get("sources", []):
            path = os.path.join(base_dir, relname)
            if os.path.isfile(path):
                md5 = file_md5(path)
                paths[md5] = path
                stored.append([relname, md5])
        if paths:
            with self._write() as conn:
                for md5, path in paths.items():
                    self._put_blob(conn, md5, path)
        info["sources"] = stored
        return info

    def delete_run(self, run_id: Any) -> None:
        """Delete the run, its metrics and artifacts; a blob goes too once no artifact, resource
        or source refers to it any more."""
        rid = _run_id(run_id)
        with self._write() as conn:
            found = None if rid is None else conn.execute(
                sa.select(runs.c.id).where(runs.c.id == rid)).first()
            if found is None:
                raise RunNotFoundError(f"No run with id {run_id!r} in {self._redacted}.")
            md5s = set()
            for table in (artifacts, run_resources, run_sources):
                md5s.update(conn.execute(sa.select(table.c.md5).where(table.c.run_id == rid)
                                         ).scalars().all())
            # explicit deletes: SQLite enforces ON DELETE CASCADE only with a pragma
            for table in _RUN_TABLES:
                conn.execute(table.delete().where(table.c.run_id == rid))
            conn.execute(runs.delete().where(runs.c.id == rid))
            self._info_tag_keys.pop(rid, None)
            for md5 in set(md5s):
                if self._blob_referenced(conn, md5):
                    continue
                conn.execute(blobs.delete().where(blobs.c.md5 == md5))
                conn.execute(blob_chunks.delete().where(blob_chunks.c.md5 == md5))

    @staticmethod
    def _blob_referenced(conn: sa.Connection, md5: str) -> bool:
        return any(conn.execute(sa.select(table.c.id).where(table.c.md5 == md5).limit(1)
                                ).first() is not None
                   for table in (artifacts, run_resources, run_sources))

    # -- read side -------------------------------------------------------------------------------
    def _document(self, row: sa.Row, with_last: bool = False) -> dict:
        """The run document of a row (of the columns the row has); with ``with_last``, the
        run's last values under ``LAST_KEY``."""
        mapping = row._mapping
        doc: dict[str, Any] = {"_id": mapping["id"]}
        if with_last:
            doc[LAST_KEY] = mapping.get("last_metrics") or {}
        if "experiment" not in mapping and mapping.get("experiment_name") is not None:
            # a query that looks at the experiment's name only reads the name's column
            doc["experiment"] = {"name": mapping["experiment_name"]}
        for field in RUN_FIELDS:
            if field not in mapping:
                continue
            value = mapping[field]
            if value is None:
                default = _DEFAULTS.get(field)
                if default is not None:
                    value = default()
                elif field not in _KEEP_NULL:
                    continue
            doc[field] = value
        for key, value in (mapping.get("extra") or {}).items():
            doc.setdefault(key, value)
        return doc

    def get(self, run_id: Any) -> dict | None:
        rid = _run_id(run_id)
        if rid is None:
            return None
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == rid)).first()
        return None if row is None else self._document(row)

    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False) -> list[dict]:
        """Runs matching ``filter`` (the query model of :mod:`labbook.stores.query`: document
        fields plus name, tags, notes, summary and the reported status), sorted by ``order``.

        The filter becomes a SQL condition that keeps every match (exact where it can be);
        each candidate is then checked in Python, the one source of truth. When the database
        cannot answer alone, a first query reads only the columns the filter and the order
        look at, and the documents of the runs kept are read afterwards, ``exclude``'d
        top-level fields (such as ``captured_out``) left out."""
        node = _query.parse(filter)
        where, exact = _Translator(self.dialect_name, strings_exact=not self._is_mysql
                                   ).node(node)
        path = order.lstrip("+-") if order else None
        descending = bool(order) and order.startswith("-")
        column = _ORDERABLE.get(path) if path else None
        if limit is not None and limit < 0:  # Python's slice meaning, as in the file store
            return self.find(filter, order, exclude=exclude, with_last=with_last)[:limit]
        wanted_heads = _query.heads(node, order)
        columns = self._document_columns(exclude, wanted_heads, with_last)
        if column is not None:
            # missing values last in both directions, ties by id: what sort_runs does
            key = column.desc() if descending else column.asc()
            ordering: tuple = (column.is_(None), key, runs.c.id)
        else:
            ordering = (runs.c.id,)
        now = clock.utcnow()
        if exact and (order is None or column is not None):
            # the database answers alone: documents straight away, limited
            stmt = sa.select(*columns).where(where).order_by(*ordering)
            if limit is not None:
                stmt = stmt.limit(limit)
            with self._read() as conn:
                docs = [self._document(row, with_last) for row in conn.execute(stmt)]
            # checked even when the SQL was exact: cheap, and the one source of truth
            return [d for d in docs if _query.evaluate_run(node, d, None, now)]
        # 1. the runs kept, from the columns the filter and the order need
        needed = _key_columns(wanted_heads)
        stmt = sa.select(*needed).where(where).order_by(*ordering)
        kept: list[tuple[int, dict]] = []
        summary = "summary" in wanted_heads
        with self._read() as conn:
            for row in conn.execute(stmt):
                partial = self._document(row)
                view = _query.query_view(partial, row._mapping.get("last_metrics") if summary
                                         else None, now)
                if _query.evaluate(node, view):
                    kept.append((partial["_id"], view))
                    if column is not None and limit is not None and len(kept) >= limit:
                        break
        if order and column is None:
            kept = _query.sort_runs(kept, order, view=lambda item: item[1])
        ids = [rid for rid, _ in kept]
        if limit is not None:
            ids = ids[:limit]
        # 2. their documents
        found: dict[int, dict] = {}
        with self._read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                stmt = sa.select(*columns).where(runs.c.id.in_(ids[start:start + _IN_CHUNK]))
                for row in conn.execute(stmt):
                    found[row._mapping["id"]] = self._document(row, with_last)
        return [found[rid] for rid in ids if rid in found]

    @staticmethod
    def _document_columns(exclude: Iterable[str], needed: set[str], with_last: bool) -> list:
        """The columns of a run's document, without the excluded fields nobody looks at (and
        the run's last values for ``with_last``)."""
        skip = {f for f in exclude if f not in needed and f in runs.c and f != "id"}
        return [c for c in runs.columns if c.name not in skip
                and (c.name != "last_metrics" or with_last)]

    _SERIES_COLUMNS = (metrics.c.run_id, metrics.c.name, metrics.c.step, metrics.c.value,
                       metrics.c.special, metrics.c.time_us)

    @staticmethod
    def _collect(batches: Iterable[list[tuple]], out: dict[int, dict[str, dict[str, list]]]
                 ) -> None:
        """Add lists of ``(run_id, name, step, value, special, time_us)`` rows (in id order)
        to ``{run_id: {name: series}}``; timestamps stay microseconds until :func:`_finish`.
        A heartbeat's points of one metric are consecutive rows: handled a group at a time."""
        for rows in batches:
            for (rid, name), group in itertools.groupby(rows, _RUN_AND_NAME):
                _, _, steps, values, specials, micros = zip(*group)
                history = out.get(rid)
                if history is None:
                    history = out[rid] = {}
                series = history.get(name)
                if series is None:
                    series = history[name] = {"steps": [], "values": [], "timestamps": []}
                series["steps"].extend(steps)
                if any(specials):
                    values = tuple(_SPECIAL_VALUES[special] if special else value
                                   for value, special in zip(values, specials))
                series["values"].extend(values)
                series["timestamps"].extend(micros)

    @staticmethod
    def _finish(history: dict[str, dict[str, list]]) -> dict[str, dict[str, list]]:
        for series in history.values():
            series["timestamps"] = clock.from_microseconds(series["timestamps"])
        return history

    @staticmethod
    def _names(names: Iterable[str] | None) -> list[str] | None:
        return None if names is None else list(names)

    def history(self, run_id: Any, names: Iterable[str] | None = None
                ) -> dict[str, dict[str, list]]:
        rid = _run_id(run_id)
        names = self._names(names)
        if rid is None or names == []:
            return {}
        stmt = (sa.select(*self._SERIES_COLUMNS).where(metrics.c.run_id == rid)
                .order_by(metrics.c.id))
        if names is not None:
            stmt = stmt.where(metrics.c.name.in_(names))
        out: dict[int, dict[str, dict[str, list]]] = {}
        with self._read() as conn:
            self._collect(_plain_rows(conn, stmt), out)
        return self._finish(out.get(rid, {}))

    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        """``{run_id: history}`` for many runs: one query per 500 run ids."""
        keys = list(run_ids)
        names = self._names(names)
        wanted = sorted({rid for rid in map(_run_id, keys) if rid is not None})
        out: dict[int, dict[str, dict[str, list]]] = {}
        if wanted and names != []:
            with self._read() as conn:
                for start in range(0, len(wanted), _IN_CHUNK):
                    stmt = (sa.select(*self._SERIES_COLUMNS)
                            .where(metrics.c.run_id.in_(wanted[start:start + _IN_CHUNK]))
                            .order_by(metrics.c.id))
                    if names is not None:
                        stmt = stmt.where(metrics.c.name.in_(names))
                    self._collect(_plain_rows(conn, stmt), out)
        result: dict[Any, dict[str, dict[str, list]]] = {}
        finished: set[int] = set()
        for key in keys:
            rid = _run_id(key)
            history = out.get(rid, {}) if rid is not None else {}
            if rid is not None and rid not in finished:
                self._finish(history)
                finished.add(rid)
            result[key] = history
        return result

    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """``{run_id: {metric: last value}}`` in one query per 500 runs, from the
        ``last_metrics`` column that every append of points keeps up to date."""
        keys = list(run_ids)
        wanted = sorted({rid for rid in map(_run_id, keys) if rid is not None})
        found: dict[int, dict[str, Any]] = {}
        if wanted:
            with self._read() as conn:
                for start in range(0, len(wanted), _IN_CHUNK):
                    stmt = sa.select(runs.c.id, runs.c.last_metrics).where(
                        runs.c.id.in_(wanted[start:start + _IN_CHUNK]))
                    for rid, last in conn.execute(stmt):
                        found[rid] = last or {}
        out: dict[Any, dict[str, Any]] = {}
        for key in keys:
            rid = _run_id(key)
            out[key] = dict(found.get(rid, {})) if rid is not None else {}
        return out

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000
                    ) -> Iterator[dict[str, list]]:
        """Pages of one metric by (step, id), each one query on the (run, name, step) index."""
        rid = _run_id(run_id)
        if rid is None:
            return
        after: tuple | None = None
        columns = (metrics.c.id, metrics.c.step, metrics.c.value, metrics.c.special,
                   metrics.c.time_us)
        while True:
            stmt = sa.select(*columns).where(metrics.c.run_id == rid, metrics.c.name == name)
            if after is not None:
                stmt = stmt.where(sa.or_(metrics.c.step > after[0], sa.and_(
                    metrics.c.step == after[0], metrics.c.id > after[1])))
            stmt = stmt.order_by(metrics.c.step, metrics.c.id).limit(page_size)
            with self._read() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            after = (rows[-1].step, rows[-1].id)
            yield {"steps": [r.step for r in rows],
                   "values": [_SPECIAL_VALUES[r.special] if r.special else r.value
                              for r in rows],
                   "timestamps": clock.from_microseconds([r.time_us for r in rows])}
            if len(rows) < page_size:
                return

    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: points}}``, counted by the database (index only)."""
        keys = list(run_ids)
        wanted = sorted({rid for rid in map(_run_id, keys) if rid is not None})
        found: dict[int, dict[str, int]] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                stmt = (sa.select(metrics.c.run_id, metrics.c.name, sa.func.count())
                        .where(metrics.c.run_id.in_(wanted[start:start + _IN_CHUNK]))
                        .group_by(metrics.c.run_id, metrics.c.name))
                for rid, name, count in conn.execute(stmt):
                    found.setdefault(rid, {})[name] = int(count)
        return {key: dict(found.get(_run_id(key), {})) for key in keys}

    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """``history`` cut down to the points at :func:`~labbook.stores.base.sample_positions`
        (by position in write order), reading only those rows."""
        if samples is None:
            return self.history(run_id, names)
        rid = _run_id(run_id)
        names = self._names(names)
        if rid is None or names == []:
            return {}
        count_stmt = (sa.select(metrics.c.name, sa.func.count(), sa.func.min(metrics.c.id))
                      .where(metrics.c.run_id == rid).group_by(metrics.c.name))
        if names is not None:
            count_stmt = count_stmt.where(metrics.c.name.in_(names))
        out: dict[int, dict[str, dict[str, list]]] = {}
        with self._read() as conn:
            counts = sorted(conn.execute(count_stmt).all(), key=lambda row: row[2])
            whole = [name for name, n, _ in counts if n <= samples]
            picks = {name: sample_positions(n, samples) for name, n, _ in counts
                     if n > samples}
            if whole:
                self._collect(_plain_rows(
                    conn, sa.select(*self._SERIES_COLUMNS)
                    .where(metrics.c.run_id == rid, metrics.c.name.in_(whole))
                    .order_by(metrics.c.id)), out)
            for name, positions in picks.items():
                self._collect(self._sampled_rows(conn, rid, name, list(positions)), out)
        history = out.get(rid, {})
        # names in the order of their first point, as history() gives them
        return self._finish({name: history[name] for name, _, _ in counts if name in history})

    def _sampled_rows(self, conn: sa.Connection, rid: int, name: str, positions: list[int]
                      ) -> Iterator[list[tuple]]:
        """The rows of one metric at ``positions`` (0-based, in id order), in lists."""
        if self.dialect_name == "sqlite":
            # the ids alone come from the (run_id, name, step) index, which also holds the
            # row id; sorting them is cheap (they nearly always come sorted already)
            cursor = conn.connection.cursor()
            try:
                ids = [row[0] for row in cursor.execute(
                    "SELECT id FROM metrics WHERE run_id = ? AND name = ?", (rid, name))]
            finally:
                cursor.close()
            ids.sort()
            chosen = [ids[i] for i in positions if i < len(ids)]
        else:
            # numbered on the server; only the ids go through the window (much faster on
            # MariaDB than numbering whole rows)
            position = (sa.func.row_number().over(order_by=metrics.c.id) - 1).label("position")
            ranked = (sa.select(metrics.c.id, position)
                      .where(metrics.c.run_id == rid, metrics.c.name == name).subquery())
            chosen = sorted(conn.execute(sa.select(ranked.c.id)
                                         .where(ranked.c.position.in_(positions))).scalars())
        for start in range(0, len(chosen), _IN_CHUNK):
            yield from _plain_rows(
                conn, sa.select(*self._SERIES_COLUMNS)
                .where(metrics.c.id.in_(chosen[start:start + _IN_CHUNK]))
                .order_by(metrics.c.id))

    def _blob_reader(self, md5: str | None, missing: str) -> BinaryIO:
        chunks: list = []
        size = None
        if md5 is not None:
            with self._read() as conn:
                size = conn.execute(sa.select(blobs.c.size).where(blobs.c.md5 == md5)).scalar()
                if size is not None:
                    chunks = conn.execute(
                        sa.select(blob_chunks.c.seq, sa.func.length(blob_chunks.c.data))
                        .where(blob_chunks.c.md5 == md5).order_by(blob_chunks.c.seq)).all()
        if size is None:
            raise StoredFileNotFoundError(missing)
        lengths = [int(length) for _, length in chunks]
        if [seq for seq, _ in chunks] != list(range(len(chunks))) or sum(lengths) != size:
            raise SqlStoreError(f"The stored file {md5} in {self._redacted} is incomplete "
                                f"({sum(lengths)} of {size} bytes in {len(chunks)} chunks).")
        return io.BufferedReader(_ChunkReader(self, md5, lengths),
                                 buffer_size=io.DEFAULT_BUFFER_SIZE)

    def _read_chunk(self, md5: str, seq: int) -> bytes:
        with self._read() as conn:
            data = conn.execute(sa.select(blob_chunks.c.data).where(
                blob_chunks.c.md5 == md5, blob_chunks.c.seq == seq)).scalar()
        if data is None:
            raise SqlStoreError(f"The stored file {md5} in {self._redacted} lost its chunk "
                                f"{seq} while being read.")
        return bytes(data)

    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        """The artifact as a read-only, seekable binary file that fetches its chunks as it
        is read (a 50 MB artifact is never held in memory at once unless read at once)."""
        rid = _run_id(run_id)
        md5 = None
        if rid is not None:
            with self._read() as conn:
                md5 = conn.execute(sa.select(artifacts.c.md5).where(
                    artifacts.c.run_id == rid, artifacts.c.name == name)).scalar()
        return self._blob_reader(md5, f"Run {run_id!r} in {self._redacted} has no artifact "
                                      f"{name!r}.")

    def open_blob(self, md5: str) -> BinaryIO:
        """A stored source or resource file by its md5 (as listed in the run document)."""
        return self._blob_reader(md5, f"No file with md5 {md5} in {self._redacted}.")


class _ChunkReader(io.RawIOBase):
    """The bytes of one stored blob, fetched chunk by chunk from the database."""

    def __init__(self, store: SqlStore, md5: str, lengths: list[int]):
        super().__init__()
        self._store = store
        self._md5 = md5
        self._starts = list(itertools.accumulate(lengths, initial=0))
        self._size = self._starts[-1]
        self._pos = 0
        self._cached: tuple[int, memoryview] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _chunk(self, index: int) -> memoryview:
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, memoryview(self._store._read_chunk(self._md5, index)))
        return self._cached[1]

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        chunk = self._chunk(index)
        offset = self._pos - self._starts[index]
        n = min(len(buffer), len(chunk) - offset)
        memoryview(buffer).cast("B")[:n] = chunk[offset:offset + n]
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = []
        while self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            offset = self._pos - self._starts[index]
            parts.append(self._chunk(index)[offset:])
            self._pos = self._starts[index + 1]
        self._cached = None
        return b"".join(parts)


def _integral_step(name: str, step: Any) -> int:
    try:
        as_int = int(step)
        if as_int == step:
            return as_int
    except (TypeError, ValueError, OverflowError):
        pass
    raise SqlStoreError(f"Metric '{name}': steps must be integers, got {step!r:.80}.")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # labbook issues BEGIN itself (see _sqlite_on_begin), so the driver must not
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        # WAL: readers never block the writer and vice versa, across processes
        mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode not in ("wal", "memory"):
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # The switch needs the database to itself and SQLite reports "locked" at once instead of
    # waiting, so processes opening a new database together retry here.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another process wrote meanwhile (the busy timeout does not apply), so
    # writes take the write lock up front; reads stay deferred and never wait.
    if conn.get_execution_options().get("labbook_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# -- filters to SQL ------------------------------------------------------------------------------
_ORDERABLE = {"_id": runs.c.id, "start_time": runs.c.start_time,
              "queue_time": runs.c.queue_time, "stop_time": runs.c.stop_time,
              "heartbeat": runs.c.heartbeat}
_STRING_PATHS = {"status": runs.c.status, "command": runs.c.command,
                 "experiment.name": runs.c.experiment_name}

#: the columns a filter or an order on a top-level field needs (besides ``id``)
_HEAD_COLUMNS: dict[str, tuple] = {
    "_id": (),
    # the reported status: DIED depends on the heartbeat and the beat interval in meta
    "status": (runs.c.status, runs.c.heartbeat, runs.c.start_time, runs.c.meta),
    "name": (runs.c.meta, runs.c.experiment_name),
    "tags": (runs.c.meta, runs.c.info),
    "notes": (runs.c.meta,),
    "summary": (runs.c.info, runs.c.last_metrics),
    "experiment": (runs.c.experiment, runs.c.experiment_name),
}


def _key_columns(heads: set[str]) -> list:
    """``id`` and the columns holding what the top-level fields ``heads`` need."""
    chosen: dict[str, Any] = {"id": runs.c.id}
    for head in sorted(heads):
        columns = _HEAD_COLUMNS.get(head)
        if columns is None:
            # a document field with a column of its own, else one kept in ``extra``
            columns = (runs.c[head],) if head in runs.c and head != "id" else (runs.c.extra,)
        for column in columns:
            chosen[column.name] = column
    return list(chosen.values())


_TRUE = sa.true()
_FALSE = sa.false()


class _Translator:
    """The query AST as a SQL condition that keeps every matching run.

    Each translation returns ``(condition, exact)``. An inexact condition may keep runs that do
    not match (they are dropped by the Python check afterwards) but never drops a match. Exact
    conditions are two-valued (never SQL NULL), so they can be negated for ``$not``/``$nor``/
    ``$ne``/``$nin``; inexact ones cannot.
    """

    def __init__(self, dialect: str, strings_exact: bool):
        # MySQL compares strings case- and trailing-space-insensitively: a superset only
        self.strings_exact = strings_exact
        self.json = _JsonPaths(dialect)

    def node(self, node: Any) -> tuple[Any, bool]:
        if isinstance(node, _query.Cond):
            return self.cond(node)
        if isinstance(node, _query.Not):
            inner, exact = self.node(node.part)
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        parts = [self.node(p) for p in node.parts]
        exact = all(e for _, e in parts)
        exprs = [c for c, _ in parts]
        if node.op == "$and":
            return (sa.and_(*exprs) if exprs else _TRUE), exact
        if node.op == "$or":
            return sa.or_(*exprs), exact
        if exact:  # $nor
            return sa.not_(sa.or_(*exprs)), True
        return _TRUE, False

    def cond(self, cond: _query.Cond) -> tuple[Any, bool]:
        path, op, value = cond.path, cond.op, cond.value
        if path == "status" and _mentions_died(op, value):
            return self.status(op, value)
        if path == "_id":
            kind, column = "id", runs.c.id
        elif path in _TIME_FIELDS:
            kind, column = "time", runs.columns[path]
        elif path in _STRING_PATHS:
            kind, column = "str", _STRING_PATHS[path]
        else:
            return self.document_path(path, op, value)
        # NULL means "missing" except for the heartbeat, which is present as None
        null_is_none = path == "heartbeat"
        if op == "$ne":
            inner, exact = self.cond(_query.Cond(path, "$eq", value))
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        if op == "$nin":
            inner, exact = self.cond(_query.Cond(path, "$in", value))
            return (sa.not_(inner), True) if exact else (_TRUE, False)
        if op == "$exists":
            if path == "experiment.name":
                return _TRUE, False
            if kind == "id" or null_is_none:
                return (_TRUE if value else _FALSE), True
            return (column.is_not(None) if value else column.is_(None)), True
        if op == "$eq":
            return self.equal(kind, column, path, [value], null_is_none, eq=True)
        if op == "$in":
            return self.equal(kind, column, path, list(value), null_is_none, eq=False)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            fit = self.fits(kind, path, value)
            if fit is None or kind == "str":
                # string order depends on the database's collation: checked in Python
                return _TRUE, False
            if not fit:
                return _FALSE, True  # Python's comparison raises TypeError: no match
            compare = {"$gt": column > value, "$gte": column >= value,
                       "$lt": column < value, "$lte": column <= value}[op]
            return sa.and_(column.is_not(None), compare), True
        return _TRUE, False  # $regex, $size, $all: in Python

    def status(self, op: str, value: Any) -> tuple[Any, bool]:
        """A condition naming RUNNING or DIED: a stored RUNNING run is reported as either, so
        the stored status keeps a superset (the Python check decides)."""
        if op not in ("$eq", "$in"):
            return _TRUE, False
        wanted = {("RUNNING" if v == "DIED" else v) for v in (value if op == "$in" else [value])
                  if isinstance(v, str)}
        if not wanted:
            return _FALSE, True
        return runs.c.status.in_(sorted(wanted)), False

    def document_path(self, path: str, op: str, value: Any) -> tuple[Any, bool]:
        """A condition on a field inside the JSON columns, or on a derived field."""
        head, _, rest = path.partition(".")
        parts = rest.split(".") if rest else []
        if head == "tags" and not parts:
            return self.tags(op, value)
        if head == "summary" and rest:
            # summary.<metric>: info.summary overrides the last logged value
            overridden = self.json.exists(runs.c.info, ["summary", rest])
            logged, _ = self.json.cond(runs.c.last_metrics, [rest], op, value)
            if overridden is None or logged is _TRUE:
                return _TRUE, False
            return sa.or_(overridden, logged), False
        if head in ("name", "notes") and not parts:
            if op not in ("$eq", "$in"):
                return _TRUE, False
            # name: meta.name, else the experiment's; notes: meta.notes, else meta.comment
            first, second = ((runs.c.meta, ["name"]), (runs.c.experiment, ["name"])) \
                if head == "name" else ((runs.c.meta, ["notes"]), (runs.c.meta, ["comment"]))
            one, _ = self.json.cond(*first, op, value)
            two, _ = self.json.cond(*second, op, value)
            if one is _TRUE or two is _TRUE:
                return _TRUE, False
            return sa.or_(one, two), False
        if head in _JSON_FIELDS:
            return self.json.cond(runs.c[head], parts, op, value)
        return _TRUE, False

    def tags(self, op: str, value: Any) -> tuple[Any, bool]:
        """``tags``: rows of the tags table (what ``query.run_tags`` derives)."""
        def has(tag: str) -> Any:
            return sa.exists().where(tags_table.c.run_id == runs.c.id, tags_table.c.tag == tag)

        def usable(tag: Any) -> bool:
            return isinstance(tag, str) and len(tag) <= _SHORT
        if op == "$exists":
            return (_TRUE if value else _FALSE), True
        if op in ("$eq", "$in", "$all"):
            operands = [value] if op == "$eq" else value
            strings = [t for t in operands if isinstance(t, str)]
            if not all(usable(t) for t in strings):
                return _TRUE, False
            if op == "$all":
                if len(strings) != len(operands):
                    return _FALSE, True  # a tag is always a string
                return (sa.and_(*map(has, strings)) if strings else _FALSE), self.strings_exact
            if not strings:
                return _FALSE, True
            inside = sa.exists().where(tags_table.c.run_id == runs.c.id,
                                       tags_table.c.tag.in_(strings))
            return inside, self.strings_exact
        return _TRUE, False

    def fits(self, kind: str, path: str, value: Any) -> bool | None:
        """True: comparable with the column; False: never equal/ordered; None: unsure."""
        if kind == "id":
            if isinstance(value, bool) or (isinstance(value, float)
                                           and not math.isfinite(value)):
                return None
            return isinstance(value, int | float)
        if kind == "time":
            return isinstance(value, _dt.datetime) and value.tzinfo is None
        if isinstance(value, str):
            if len(value) > _SHORT:
                return None
            return True
        return False

    def equal(self, kind: str, column: Any, path: str, operands: list, null_is_none: bool,
              eq: bool) -> tuple[Any, bool]:
        exact = self.strings_exact or kind != "str"
        values = []
        match_null = False
        for operand in operands:
            if operand is None:
                if path == "experiment.name":
                    return _TRUE, False  # NULL also stands for a name that is not a string
                # {"f": None} matches a missing field; {"f": {"$in": [None]}} does not
                if kind != "id" and (eq or null_is_none):
                    match_null = True
                continue
            fit = self.fits(kind, path, operand)
            if fit is None:
                return _TRUE, False
            if fit:
                values.append(operand)
        parts = []
        if values:
            test = column == values[0] if len(values) == 1 else column.in_(values)
            parts.append(sa.and_(column.is_not(None), test))
        if match_null:
            parts.append(column.is_(None))
        if not parts:
            return _FALSE, True
        return (parts[0] if len(parts) == 1 else sa.or_(*parts)), exact


def _mentions_died(op: str, value: Any) -> bool:
    operands = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and v in _query.DIED_SENSITIVE for v in operands)


def _plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


class _JsonPaths:
    """Conditions on values inside JSON columns, for each database's JSON functions.

    Every condition keeps each row whose value the Python evaluator could match: arrays
    (which match when an element does), booleans (``True == 1``) and objects (NaN and the
    infinities are stored as ``{"$float": ...}``) are kept for the Python check; numbers are
    compared with non-strict operators, since a database may round large integers to doubles
    (rounding keeps order, so no match is lost).
    """

    #: the database's names of each JSON type
    _TYPES = {
        "sqlite": {"number": ("integer", "real"), "string": ("text",),
                   "bool": ("true", "false"), "null": ("null",), "array": ("array",),
                   "object": ("object",)},
        "postgresql": {"number": ("number",), "string": ("string",), "bool": ("boolean",),
                       "null": ("null",), "array": ("array",), "object": ("object",)},
        "mysql": {"number": ("INTEGER", "UNSIGNED INTEGER", "DOUBLE", "DECIMAL"),
                  "string": ("STRING",), "bool": ("BOOLEAN",), "null": ("NULL",),
                  "array": ("ARRAY",), "object": ("OBJECT",)},
    }

    def __init__(self, dialect: str):
        self.dialect = "mysql" if dialect in _MYSQL_NAMES else dialect
        self.types = self._TYPES.get(self.dialect)

    def usable(self, parts: list[str]) -> bool:
        # a digit part is a list index or a key (the evaluator tries both): left to Python
        return self.types is not None and not any(
            p.isdigit() or '"' in p or "\\" in p or not p for p in parts)

    def _path(self, parts: list[str]) -> str:
        return "$" + "".join(f'."{p}"' for p in parts)

    def _element(self, column: Any, parts: list[str]) -> Any:
        if self.dialect == "postgresql":
            return sa.func.json_extract_path(column, *parts) if parts else column
        if self.dialect == "mysql":
            return sa.func.json_extract(column, self._path(parts))
        return None

    def type_of(self, column: Any, parts: list[str]) -> Any:
        if self.dialect == "sqlite":
            return sa.func.json_type(column, self._path(parts))
        if self.dialect == "postgresql":
            return sa.func.json_typeof(self._element(column, parts))
        return sa.func.json_type(self._element(column, parts))

    def is_type(self, column: Any, parts: list[str], *kinds: str) -> Any:
        names = [n for kind in kinds for n in self.types[kind]]
        return self.type_of(column, parts).in_(names)

    def number(self, column: Any, parts: list[str]) -> Any:
        """The value as a number where it is one, else NULL."""
        if self.dialect == "sqlite":
            value = sa.func.json_extract(column, self._path(parts))
        elif self.dialect == "postgresql":
            text = sa.func.json_extract_path_text(column, *parts) if parts \
                else sa.cast(column, sa.Text)
            value = sa.cast(text, sa.Numeric)
        else:
            # text + 0e0 is the text read as a double (a CAST to FLOAT would be single
            # precision on MariaDB, and SQLAlchemy renders no CAST to DOUBLE for it)
            value = sa.func.json_unquote(self._element(column, parts)) + \
                sa.literal_column("0e0")
        # guarded: a cast of a text that is no number fails on some databases
        return sa.case((self.is_type(column, parts, "number"), value), else_=sa.null())

    def text(self, column: Any, parts: list[str]) -> Any | None:
        if self.dialect == "sqlite":
            return sa.func.json_extract(column, self._path(parts))
        if self.dialect == "postgresql":
            return sa.func.json_extract_path_text(column, *parts) if parts else None
        return sa.func.json_unquote(self._element(column, parts))

    def exists(self, column: Any, parts: list[str]) -> Any | None:
        """Present (JSON null included); None when the path cannot be translated."""
        if not self.usable(parts):
            return None
        return self.type_of(column, parts).is_not(None)

    def cond(self, column: Any, parts: list[str], op: str, value: Any) -> tuple[Any, bool]:
        if not self.usable(parts):
            return _TRUE, False
        if op == "$exists":
            present = self.type_of(column, parts).is_not(None)
            return (present if value else sa.not_(present)), True
        if op in ("$eq", "$in"):
            return self.equal(column, parts, [value] if op == "$eq" else list(value))
        if op in ("$gt", "$gte", "$lt", "$lte") and _plain_number(value):
            number = self.number(column, parts)
            compare = number >= value if op in ("$gt", "$gte") else number <= value
            return sa.or_(compare, self.is_type(column, parts, "array", "bool", "object")), False
        return _TRUE, False

    def equal(self, column: Any, parts: list[str], operands: list) -> tuple[Any, bool]:
        kinds = {"array"}
        tests = []
        for operand in operands:
            if operand is None:
                kinds.add("null")
                tests.append(self.type_of(column, parts).is_(None))
            elif isinstance(operand, bool):
                kinds.update(("bool", "number"))
            elif _plain_number(operand):
                kinds.add("bool")
                tests.append(self.number(column, parts) == operand)
            elif isinstance(operand, str):
                text = self.text(column, parts)
                if text is None:
                    return _TRUE, False
                tests.append(sa.and_(self.is_type(column, parts, "string"), text == operand))
            else:  # documents, lists, NaN, the infinities: the Python check alone
                return _TRUE, False
        return sa.or_(self.is_type(column, parts, *sorted(kinds)), *tests), False


# -- the observer --------------------------------------------------------------------------------
class SqlObserver(StoreObserver):
    """Records runs in a SQL database (Sacred's ``SqlObserver``); connects when created."""

    priority = DEFAULT_SQL_PRIORITY

    def __init__(self, url: str, echo: bool | None = None,
                 priority: int = DEFAULT_SQL_PRIORITY):
        store = SqlStore(url, echo=bool(echo))
        store.check()  # a wrong URL fails here, not silently in the middle of a run
        super().__init__(store, priority)
        self.url = url

    @classmethod
    def create(cls, url: str, echo: bool = False,
               priority: int = DEFAULT_SQL_PRIORITY) -> SqlObserver:
        """Sacred's spelling of the constructor."""
        return cls(url, echo=echo, priority=priority)

    @property
    def engine(self) -> sa.engine.Engine:
        return self.store.engine

    def __repr__(self) -> str:
        return f"SqlObserver({self.store._redacted!r})"
