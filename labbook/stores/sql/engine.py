"""From a store URL to a SQLAlchemy engine, and the database's errors made readable.

The default drivers (psycopg 3, PyMySQL) and the package to install when one is missing; the
bounds on every database call (connect 10 s; statement / socket 30 s; SQLite's busy timeout
30 s), which a URL's own options override (PostgreSQL: ``connect_timeout``,
``tcp_user_timeout`` in ms, ``keepalives*``, ``options=-c statement_timeout=MS``; MariaDB:
``connect_timeout``, ``read_timeout``, ``write_timeout`` in s; SQLite: ``timeout`` in s);
SQLite's connection setup (busy timeout, WAL, ``BEGIN IMMEDIATE`` for writes);
dropping pooled connections in forked children; messages for a database that cannot be
opened, with the password hidden.
"""
from __future__ import annotations

import functools
import logging
import os
import random
import time
import weakref
from typing import Any, Callable

import sqlalchemy as sa

from labbook import serialize
from labbook.errors import SqlConnectionError, SqlStoreError
from labbook.stores import redact_url
from labbook.stores.sql.types import MYSQL_NAMES

__all__ = ["SQLITE_BUSY_TIMEOUT", "CONNECT_TIMEOUT", "STATEMENT_TIMEOUT", "engine_url",
           "is_memory_sqlite", "create_engine", "forget_connections_after_fork", "first_line",
           "is_deadlock", "retry_deadlocks", "DEADLOCK_RETRIES", "connection_error"]

logger = logging.getLogger(__name__)

#: seconds a SQLite writer waits for another process's write lock before giving up
SQLITE_BUSY_TIMEOUT = 30.0

#: seconds to wait for a database server to accept a connection
CONNECT_TIMEOUT = 10

#: seconds one statement (PostgreSQL ``statement_timeout``), or one read or write on the socket
#: (MariaDB ``read_timeout`` / ``write_timeout``; PostgreSQL ``tcp_user_timeout`` for
#: unacknowledged data), may take before the call fails
STATEMENT_TIMEOUT = 30

#: PostgreSQL TCP keepalives: probe an idle connection after 10 s, every 5 s, give up after 3
_PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                  "keepalives_count": 3}
_MYSQL_TIMEOUTS = ("connect_timeout", "read_timeout", "write_timeout")

_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
_DRIVER_PACKAGES = {"psycopg": "postgres", "psycopg2": "postgres", "pymysql": "mysql",
                    "MySQLdb": "mysql"}


# -- URLs ----------------------------------------------------------------------------------------
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


def is_memory_sqlite(url: sa.engine.URL) -> bool:
    """True for an in-memory SQLite database (one per connection unless the pool is static)."""
    return url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or "mode=memory" in url.database)


_NULL_HANDLER = logging.NullHandler()


class _OneLineRecords(logging.Filter):
    """Turns a pool record's traceback into one line: ``message: ErrorType: first line``.

    During an outage the pool logs every failed rollback of a returned connection with the
    driver's whole traceback. Where the program's logging reaches stderr (Sacred's default
    root handler does), that lands in the run's captured output, several dozen lines per
    failure, although durable delivery already reports the outage in one line. The record
    stays (level, logger, message and the error); only the traceback goes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {type(record.exc_info[1]).__name__}: " \
                         f"{first_line(record.exc_info[1])}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_ONE_LINE = _OneLineRecords()


# -- engines -------------------------------------------------------------------------------------
def create_engine(url: sa.engine.URL, redacted: str, echo: bool) -> sa.engine.Engine:
    """The engine of the store at ``url`` (``redacted``: the store URL for messages)."""
    # During an outage the pool logs each failed rollback of a returned connection with its
    # traceback. With no logging configured, Python prints that to stderr, which a run
    # captures into its output. The outage itself is reported by durable delivery, so the
    # pool's records go only to handlers the program configured (they still propagate).
    logging.getLogger("sqlalchemy.pool").addHandler(_NULL_HANDLER)
    dialect = url.get_backend_name()
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": serialize.dumps_strict,
                              "json_deserializer": serialize.loads_strict}
    connect_args: dict[str, Any] = {}
    busy_timeout = SQLITE_BUSY_TIMEOUT
    if dialect == "sqlite":
        from labbook.stores.sql.values import dumps_sqlite_json, loads_sqlite_json

        # a number alone in a JSON column must keep its type (see dumps_sqlite_json)
        kwargs["json_serializer"] = dumps_sqlite_json
        kwargs["json_deserializer"] = loads_sqlite_json
        if "timeout" in url.query:  # sqlite:///x.db?timeout=5: the busy timeout in seconds
            busy_timeout = _seconds(url, "timeout")
            url = url.difference_update_query(["timeout"])
        connect_args["timeout"] = busy_timeout
        # one connection per thread at a time (the store's lock); the heartbeat thread
        # reuses pooled connections made by the main thread
        connect_args["check_same_thread"] = False
        if is_memory_sqlite(url):
            # every connection to :memory: would be a new empty database
            kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs["pool_pre_ping"] = True  # servers drop idle connections during long runs
        if dialect == "postgresql":
            connect_args.update(_postgresql_bounds(url))
        if dialect in MYSQL_NAMES:
            for key in _MYSQL_TIMEOUTS:  # the driver wants numbers, the URL has text
                default = CONNECT_TIMEOUT if key == "connect_timeout" else STATEMENT_TIMEOUT
                connect_args[key] = _seconds(url, key) if key in url.query else default
            url = url.difference_update_query(_MYSQL_TIMEOUTS)
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
            f"The database driver for {redacted} is not installed ({exc}); "
            f"{hint}.") from None
    except Exception as exc:  # unknown dialect or driver name
        raise SqlConnectionError(
            f"Cannot use the database URL {redacted}: {first_line(exc)}. Use "
            "sqlite:///file.db, postgresql://user@host/db or mysql://user@host/db.") from None
    pool_logger = engine.pool.logger  # with echo_pool, sqlalchemy's wrapper of the logger
    getattr(pool_logger, "logger", pool_logger).addFilter(_ONE_LINE)  # kept once per logger
    if dialect == "sqlite":
        sa.event.listen(engine, "connect",
                        lambda dbapi, record: _sqlite_on_connect(dbapi, record, busy_timeout))
        sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _seconds(url: sa.engine.URL, key: str) -> float:
    value = url.query[key]
    value = value[-1] if isinstance(value, tuple) else value
    try:
        return float(value)
    except ValueError:
        raise SqlStoreError(f"The URL option {key}={value!r} must be a number of seconds.") \
            from None


def _postgresql_bounds(url: sa.engine.URL) -> dict[str, Any]:
    """libpq options bounding every call (those the URL gives itself are kept)."""
    bounds: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        bounds["connect_timeout"] = CONNECT_TIMEOUT
    for key, value in _PG_KEEPALIVES.items():
        if key not in url.query:
            bounds[key] = value
    if "tcp_user_timeout" not in url.query:  # milliseconds
        bounds["tcp_user_timeout"] = STATEMENT_TIMEOUT * 1000
    options = url.query.get("options")
    if not options or "statement_timeout" not in str(options):
        extra = f"-c statement_timeout={STATEMENT_TIMEOUT * 1000}"
        if options:
            extra = f"{options[-1] if isinstance(options, tuple) else options} {extra}"
        bounds["options"] = extra
    return bounds


def _sqlite_on_connect(dbapi_connection: Any, _record: Any,
                       busy_timeout: float = SQLITE_BUSY_TIMEOUT) -> None:
    # labbook issues BEGIN itself (see _sqlite_on_begin), so the driver must not
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # WAL: readers never block the writer and vice versa, across processes
        mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode not in ("wal", "memory"):
            _switch_to_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any, busy_timeout: float = SQLITE_BUSY_TIMEOUT) -> None:
    # The switch needs the database to itself and SQLite reports "locked" at once instead of
    # waiting, so processes opening a new database together retry here.
    deadline = time.monotonic() + busy_timeout
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
    # writes take the write lock up front; reads (labbook_read) stay deferred and never wait.
    if conn.get_execution_options().get("labbook_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# -- forked processes ----------------------------------------------------------------------------
# Processes forked after a store opened must not share its pooled connections.
_OPEN_STORES: weakref.WeakSet = weakref.WeakSet()


def forget_connections_after_fork(store: Any) -> None:
    """Have ``store._forget_connections()`` called in every child forked from now on."""
    _OPEN_STORES.add(store)


def _after_fork() -> None:
    for store in list(_OPEN_STORES):
        store._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- errors --------------------------------------------------------------------------------------
def first_line(exc: BaseException) -> str:
    """The first line of the database's (or the driver's) message."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return text.splitlines()[0]


def is_deadlock(exc: BaseException | None) -> bool:
    """A transaction the server rolled back to break a deadlock (safe to run again)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    # MySQL/MariaDB 1213 (deadlock), 1205 (lock wait timeout) and 1412 (a table read while
    # another process was creating it); PostgreSQL 40P01
    return code in (1213, 1205, 1412) or getattr(orig, "sqlstate", None) in ("40P01", "40001")


#: how often a write the server rolled back to break a deadlock is made again
DEADLOCK_RETRIES = 6


def retry_deadlocks(method: Callable) -> Callable:
    """Make a store's write method again when the database chose its transaction as the victim
    of a deadlock (InnoDB does so between a worker's claim and a run's own writes to the same
    row): the rolled-back transaction left nothing behind, so running it again is safe. After
    :data:`DEADLOCK_RETRIES` more tries the error goes to the caller."""
    @functools.wraps(method)
    def retried(self: Any, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return method(self, *args, **kwargs)
            except SqlStoreError as exc:
                if attempt >= DEADLOCK_RETRIES or not is_deadlock(exc.__cause__):
                    raise
                logger.debug("deadlock in %s (try %d): %s", method.__name__, attempt + 1,
                             first_line(exc.__cause__))  # type: ignore[arg-type]
            # apart at random, so the processes that collided do not collide again
            time.sleep(random.uniform(0.005, 0.02) * 2 ** attempt)
            attempt += 1
    return retried


def connection_error(url: sa.engine.URL, redacted: str, exc: BaseException
                     ) -> SqlConnectionError:
    """The error for a database that cannot be opened: why, and what to check."""
    reason = first_line(exc)
    password = url.password
    if password:
        reason = reason.replace(str(password), "****")
    if url.get_backend_name() == "sqlite":
        check = (f"Check that the directory of '{url.database}' exists and is writable and "
                 "that the file is a SQLite database.")
    else:
        where = f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")
        check = (f"Check that the database server is running and reachable at {where}, "
                 f"that the database '{url.database}' exists (create it first), and that "
                 "the user name and password in the URL are right.")
    return SqlConnectionError(f"Cannot open the SQL database {redacted}: {reason}. "
                              f"{check}", redacted)
