"""Sacred's ``SqlObserver``: records runs in a SQL database (SQLite, PostgreSQL, MariaDB/MySQL).

It is the generic :class:`~labbook.observers.store_observer.StoreObserver` bound to the SQL
store, which it gets from the store registry (:mod:`labbook.stores`), never by importing the
back-end.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labbook.errors import ObserverError
from labbook.observers.store_observer import StoreObserver
from labbook.stores import check_url, store_class

if TYPE_CHECKING:
    import sqlalchemy as sa

    from labbook.stores.base import Store

__all__ = ["DEFAULT_SQL_PRIORITY", "SqlObserver"]

#: Sacred's default priority of its SqlObserver
DEFAULT_SQL_PRIORITY = 40

#: a URL the SQL back-end always serves, to find its class in the registry
_SQL_SCHEME_URL = "sqlite://"


def _open_sql_store(url: str, echo: bool) -> Store:
    # The class is looked up by a scheme only the SQL store serves, and ``url`` is then checked
    # by that store itself: any URL given to SqlObserver, even one of another scheme, fails
    # with the SQL store's own message.
    check_url(url)  # sqlite:/x.db, sqlite:// (in memory) ...: refused with the right spelling
    return store_class(_SQL_SCHEME_URL)(url, echo=echo)


class SqlObserver(StoreObserver):
    """Records runs in a SQL database (Sacred's ``SqlObserver``); connects when created."""

    priority = DEFAULT_SQL_PRIORITY

    def __init__(self, url: str, echo: bool | None = None,
                 priority: int = DEFAULT_SQL_PRIORITY, *, connect: bool = True):
        store = _open_sql_store(url, echo=bool(echo))
        if connect:
            store.check()  # a wrong URL fails here, not silently in the middle of a run
        super().__init__(store, priority)
        self.url = url

    @classmethod
    def from_flag(cls, url: str) -> SqlObserver:
        """The observer of ``-s URL``: connecting is left to the check made when the run is
        set up (so ``--queued`` can journal a run whose database is away)."""
        return cls(url, connect=False)

    @classmethod
    def create(cls, url: str, echo: bool = False,
               priority: int = DEFAULT_SQL_PRIORITY) -> SqlObserver:
        """Sacred's spelling of the constructor."""
        return cls(url, echo=echo, priority=priority)

    @classmethod
    def create_from(cls, engine: sa.engine.Engine, session: Any = None,
                    priority: int = DEFAULT_SQL_PRIORITY) -> SqlObserver:
        """Sacred's constructor from an SQLAlchemy ``engine`` and ``session``: the observer
        records into the database ``engine`` points at, through a connection of its own (it
        manages its transactions itself, so the session is not used; one bound to another
        database is refused)."""
        url = getattr(engine, "url", None)
        if url is None:
            raise ObserverError(f"SqlObserver.create_from needs an SQLAlchemy Engine, got "
                                f"{type(engine).__name__}.")
        bind = getattr(session, "bind", None) if session is not None else None
        if bind is not None and getattr(bind, "url", None) != url:
            raise ObserverError("SqlObserver.create_from: the session is bound to another "
                                "database than the engine; give the engine the session uses.")
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ObserverError("SqlObserver.create_from cannot record into an in-memory SQLite "
                                "engine (labbook opens its own connection, which would see "
                                "another, empty database); use a file: sqlite:///runs.db.")
        return cls(url.render_as_string(hide_password=False), echo=bool(engine.echo),
                   priority=priority)

    @property
    def engine(self) -> sa.engine.Engine:
        return self.store.engine

    def __repr__(self) -> str:
        return f"SqlObserver({self.store.redacted_url!r})"
