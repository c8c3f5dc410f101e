"""Stores with runs recorded through the public API, for the read-side tests.

Every store kind in ``STORE_KINDS`` gets the same runs; a new back-end plugs in by adding a
function ``(request, tmp_path)`` that returns the URL of an empty store: the file store and
SQLite under the temporary directory, PostgreSQL, MariaDB and MongoDB in a fresh database on
the test servers (:class:`ServerDatabases`), and the file store over fsspec under a fresh
``memory://`` name.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import struct
import zlib

import pytest

from labbook import Experiment
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)


def _file_url(request, tmp) -> str:
    return f"file://{tmp / 'runs'}"


def _sqlite_url(request, tmp) -> str:
    return f"sqlite:///{tmp / 'labbook.db'}"


def _postgresql_url(request, tmp) -> str:
    return request.getfixturevalue("server_databases").new("postgresql", request)


def _mysql_url(request, tmp) -> str:
    return request.getfixturevalue("server_databases").new("mysql", request)


def _mongo_url(request, tmp) -> str:
    return request.getfixturevalue("server_databases").new("mongo", request)


def _memory_url(request, tmp) -> str:
    # the file store over fsspec's in-memory filesystem (labbook.stores.remote): the same
    # layout and read API as "file", through the remote code path; a fresh name per store
    return f"memory://labbook-api-{os.getpid()}-{secrets.token_hex(4)}/runs"


STORE_KINDS = {"file": _file_url}
if importlib.util.find_spec("fsspec"):
    STORE_KINDS["memory"] = _memory_url
if importlib.util.find_spec("sqlalchemy") and os.path.exists(
        os.path.join(os.path.dirname(__file__), "..", "..", "labbook", "stores", "sql")):
    STORE_KINDS["sqlite"] = _sqlite_url
    STORE_KINDS["postgresql"] = _postgresql_url
    STORE_KINDS["mysql"] = _mysql_url
if importlib.util.find_spec("pymongo"):
    STORE_KINDS["mongo"] = _mongo_url


class ServerDatabases:
    """Fresh, uniquely named databases on the PostgreSQL, MariaDB and MongoDB test servers
    (one per store asked for, so module- and function-scoped stores never share one), all
    dropped at the end of the session. A server that cannot be reached skips the tests that
    need it, saying why (see tests/stores/conftest.py for the URLs)."""

    def __init__(self):
        self.created: list[tuple[str, str]] = []
        self.mongo_base: str | None = None

    def new(self, kind: str, request) -> str:
        name = f"labbook_api_{os.getpid()}_{secrets.token_hex(4)}"
        if kind == "mongo":
            server = request.getfixturevalue("mongo_server")
            self.mongo_base = server.base_url
            self.created.append(("mongo", name))
            return server.url(name)
        from tests.stores.conftest import MYSQL_DEFAULT, POSTGRES_DEFAULT, _unreachable

        if kind == "postgresql":
            admin = os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT)
            create, what = f'CREATE DATABASE "{name}"', "PostgreSQL"
        else:
            admin = os.environ.get("LABBOOK_TEST_MYSQL_URL", MYSQL_DEFAULT)
            create, what = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", "MariaDB/MySQL"
        import sqlalchemy as sa

        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(create)
        except Exception as exc:
            _unreachable(what, admin, exc)
        finally:
            engine.dispose()
        self.created.append((kind, name))
        url = sa.engine.make_url(admin).set(database=name)
        # the store is given the URL without a driver, as users write it
        return url.set(drivername=kind).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        import contextlib

        for kind, name in self.created:
            with contextlib.suppress(Exception):
                if kind == "mongo":
                    import pymongo

                    client = pymongo.MongoClient(self.mongo_base, serverSelectionTimeoutMS=2000)
                    try:
                        client.drop_database(name)
                    finally:
                        client.close()
                    continue
                import sqlalchemy as sa

                from tests.stores.conftest import MYSQL_DEFAULT, POSTGRES_DEFAULT

                if kind == "postgresql":
                    admin = os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT)
                    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                else:
                    admin = os.environ.get("LABBOOK_TEST_MYSQL_URL", MYSQL_DEFAULT)
                    drop = f"DROP DATABASE IF EXISTS `{name}`"
                engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql(drop)
                finally:
                    engine.dispose()


@pytest.fixture(scope="session")
def server_databases():
    databases = ServerDatabases()
    yield databases
    databases.drop_all()


OPTS = {"--no-system-metrics": True, "--capture": "sys"}


def tiny_png(width: int = 4, height: int = 3, rgb: tuple = (200, 30, 30)) -> bytes:
    """A valid PNG of one colour, made by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def record_standard_runs(url: str, files_dir) -> None:
    """Runs 1-4 of experiment 'train' (3 fails) and run 5 of experiment 'other'.

    ====  =====  =====  ======  ===============  ========  ================
    id    lr     batch  optim.  tags             acc       notes / name
    ====  =====  =====  ======  ===============  ========  ================
    1     0.001  32     sgd     baseline         0.7
    2     0.01   64     adam    tuned, best (*)  0.9       name 'lucky'
    3     0.1    64     adam    -                0.3 FAIL
    4     0.05   128    sgd     tuned            0.8       notes 'try wide'
    5     0.5    32     -       -                0.6       experiment other
    ====  =====  =====  ======  ===============  ========  ================
    (*) 'best' is set while running, so it lives in info.tags, not meta.tags.
    """
    png = files_dir / "curve.png"
    png.write_bytes(tiny_png())
    text = files_dir / "notes.txt"
    text.write_text("artifact text\n")

    train = Experiment("train")

    @train.config
    def cfg():
        lr = 0.01
        batch = 64
        optimizer = {"name": "adam", "momentum": 0.0}
        layers = [64, 32]
        warmup = False
        acc = 0.5
        crash = False

    @train.main
    def main(acc, crash, _run):
        print(f"training with acc target {acc}")
        _run.log_scalar("acc", acc / 2)
        _run.log_scalar("loss", 1.0)
        _run.log_scalar("acc", acc)
        _run.log_scalar("loss", round(1 - acc, 3))
        if acc == 0.9:
            _run.set_tag("best")
        if acc == 0.7:
            _run.add_artifact(str(png))
            _run.add_artifact(str(text))
        if crash:
            raise RuntimeError("diverged")
        return acc

    sgd = {"name": "sgd", "momentum": 0.9}
    train.run(config_updates={"lr": 0.001, "batch": 32, "optimizer": sgd, "acc": 0.7},
              options={**OPTS, "--store": url, "--tag": ["baseline"]})
    train.run(config_updates={"lr": 0.01, "acc": 0.9},
              options={**OPTS, "--store": url, "--tag": ["tuned"], "--name": "lucky"})
    with pytest.raises(RuntimeError):
        train.run(config_updates={"lr": 0.1, "layers": [128], "acc": 0.3, "crash": True},
                  options={**OPTS, "--store": url})
    train.run(config_updates={"lr": 0.05, "batch": 128, "optimizer": sgd, "layers": [128],
                              "warmup": True, "acc": 0.8},
              options={**OPTS, "--store": url, "--tag": ["tuned"], "--notes": "try wide"})

    other = Experiment("other")
    other.add_config({"lr": 0.5, "batch": 32, "drop out": 0.2, "depth": None})

    @other.main
    def other_main(lr, _run):
        _run.log_scalar("acc", 0.6)
        return 0.6

    other.run(options={**OPTS, "--store": url})


@pytest.fixture(scope="module", params=sorted(STORE_KINDS))
def standard_url(request, tmp_path_factory) -> str:
    """A store of each kind holding the standard runs (built once per module and kind)."""
    tmp = tmp_path_factory.mktemp(f"standard-{request.param}")
    url = STORE_KINDS[request.param](request, tmp)
    record_standard_runs(url, tmp)
    return url


@pytest.fixture
def make_png():
    """:func:`tiny_png`, for test modules (they cannot import this conftest reliably)."""
    return tiny_png


@pytest.fixture(params=sorted(STORE_KINDS))
def empty_url(request, tmp_path) -> str:
    """An empty store of each kind."""
    return STORE_KINDS[request.param](request, tmp_path)


@pytest.fixture(params=sorted(k for k in STORE_KINDS if k != "memory"))
def shared_url(request, tmp_path) -> str:
    """An empty store of each kind that several processes can share (memory:// lives in one
    process)."""
    return STORE_KINDS[request.param](request, tmp_path)
