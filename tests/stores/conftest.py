"""Real databases for the SQL store tests.

SQLite always (a file under ``tmp_path``). PostgreSQL (``LABBOOK_TEST_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and MariaDB/MySQL
(``LABBOOK_TEST_MYSQL_URL``, default ``mysql+pymysql://root@127.0.0.1:3306/``): the URL names a
server and an account allowed to create databases; each test session creates a fresh
database ``labbook_test_<pid>_<random>`` there and drops it at the end. An unreachable server
skips its tests (with the reason) unless ``LABBOOK_TEST_REQUIRE_SERVERS`` is set, then it fails.
"""
from __future__ import annotations

import os
import secrets
import sys

import pytest

POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/"
BACKENDS = ("sqlite", "postgresql", "mysql")


def _unreachable(what: str, url: str, exc: BaseException) -> None:
    from labbook.stores import redact_url

    reason = f"{what} not reachable at {redact_url(url)}: {str(exc).splitlines()[0]}"
    print(f"\n[labbook tests] {reason}", file=sys.stderr)
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):
        pytest.fail(reason)
    pytest.skip(reason)


def _server_database(what: str, admin_url: str, scheme: str, create: str, drop: str):
    """Create a uniquely named database on a server; yield its labbook URL; drop it."""
    import sqlalchemy as sa

    name = f"labbook_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(create.format(name=name))
    except Exception as exc:
        admin.dispose()
        _unreachable(what, admin_url, exc)
    url = sa.engine.make_url(admin_url).set(database=name)
    # the store is given the URL without a driver, as users write it
    plain = url.set(drivername=scheme).render_as_string(hide_password=False)
    try:
        yield plain
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(drop.format(name=name))
        admin.dispose()


@pytest.fixture(scope="session")
def postgresql_database():
    yield from _server_database(
        "PostgreSQL", os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT),
        "postgresql", 'CREATE DATABASE "{name}"', 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_database():
    yield from _server_database(
        "MariaDB/MySQL", os.environ.get("LABBOOK_TEST_MYSQL_URL", MYSQL_DEFAULT), "mysql",
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4", "DROP DATABASE IF EXISTS `{name}`")


def empty_database(url: str) -> None:
    """Drop every table of the test database, so each test starts from nothing."""
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    engine = sa.create_engine(engine_url(url))
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()


def backend_url(request, backend: str, tmp_path) -> str:
    """A store URL of ``backend`` holding no tables yet."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'labbook.db'}"
    url = request.getfixturevalue(f"{backend}_database")
    empty_database(url)
    return url


@pytest.fixture(params=BACKENDS)
def sql_backend(request) -> str:
    return request.param


@pytest.fixture
def sql_url(request, sql_backend, tmp_path) -> str:
    """An empty store on each backend in turn."""
    return backend_url(request, sql_backend, tmp_path)


@pytest.fixture
def sql_store(sql_url):
    from labbook.stores.sql import SqlStore

    store = SqlStore(sql_url)
    yield store
    store.close()
