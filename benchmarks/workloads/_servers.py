"""Database servers for the per-store workloads: a fresh database, its URL and its clean-up.

``server_store(kind)`` gives ``(url, cleanup, None)`` or ``(None, None, reason)``:

- ``postgresql``: ``$LABBOOK_BENCH_POSTGRES_URL``, default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, an account allowed to create
  databases; a database ``labbook_bench_<pid>_<hex>`` is created and dropped afterwards;
- ``mysql``: the same with ``$LABBOOK_BENCH_MYSQL_URL``, default
  ``mysql+pymysql://root@127.0.0.1:3306/``;
- ``mongo``: ``$LABBOOK_BENCH_MONGO_URL``, else the mongoeco server of ``.venv-mongoeco``
  (tests/stores/mongo_server.py), a database dropped with the server.
"""
import os
import secrets
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/"


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sql_database(kind):
    try:
        import sqlalchemy as sa
    except ImportError as exc:
        return None, None, f"no SQLAlchemy ({exc})"
    if kind == "postgresql":
        admin_url = os.environ.get("LABBOOK_BENCH_POSTGRES_URL", POSTGRES_DEFAULT)
        create, drop = 'CREATE DATABASE "{}"', 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
    else:
        admin_url = os.environ.get("LABBOOK_BENCH_MYSQL_URL", MYSQL_DEFAULT)
        create, drop = "CREATE DATABASE `{}` CHARACTER SET utf8mb4", "DROP DATABASE IF EXISTS `{}`"
    name = f"labbook_bench_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                 connect_args={"connect_timeout": 5})
        with admin.connect() as conn:
            conn.exec_driver_sql(create.format(name))
    except Exception as exc:
        return None, None, f"{kind} not reachable: {_first_line(exc)}"
    url = sa.engine.make_url(admin_url).set(database=name, drivername=kind)

    def cleanup():
        with admin.connect() as conn:
            conn.exec_driver_sql(drop.format(name))
        admin.dispose()

    return url.render_as_string(hide_password=False), cleanup, None


def _mongo_database():
    given = os.environ.get("LABBOOK_BENCH_MONGO_URL")
    db = f"labbook_bench_{os.getpid()}_{secrets.token_hex(4)}"
    if given:
        base, _, query = given.partition("?")
        url = base.rstrip("/") + "/" + db + (f"?{query}" if query else "")

        def drop():
            from pymongo import MongoClient

            client = MongoClient(given)
            client.drop_database(db)
            client.close()

        return url, drop, None
    try:
        import pymongo  # noqa: F401

        sys.path.insert(0, ROOT)
        from tests.stores.mongo_server import start_mongoeco
    except ImportError as exc:
        return None, None, f"no MongoDB ({exc})"
    try:
        server = start_mongoeco()
    except RuntimeError as exc:
        return None, None, f"no MongoDB: {_first_line(exc)}"
    return server.url(db), server.stop, None


def server_store(kind):
    if kind in ("postgresql", "mysql"):
        return _sql_database(kind)
    if kind == "mongo":
        return _mongo_database()
    raise ValueError(kind)
