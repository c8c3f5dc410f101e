"""No secret reaches a store or a journal: a run given a password in its store URL (-s, -m,
--store), in a ``--password=...`` option and in a config key (``db_password=...``) is
recorded on every store, then every stored byte is searched for the secret: the files of the
file store and of the journal, every row of every table (SQLite, PostgreSQL, MariaDB, with
``SELECT *``), every document of every MongoDB collection (GridFS chunks included).

The PostgreSQL role and the MariaDB user are made with the password, so the URLs really log
in; mongoeco refuses every login and cannot create users, so for MongoDB the URL with a
password is shown to be refused in one masked line, and the secret is stored through the
option and the config of a run that connects.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets

import pytest

import labbook
from tests.faults.safety_support import closed_port, run_script, user_code_ran
from tests.stores.conftest import (mysql_database, postgresql_database)  # noqa: F401
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

NEEDLE = b"secretpw"
SECRET = "secretpw" + secrets.token_hex(4)
#: per store: occurrences of the secret in everything stored (printed with the bytes searched)
FOUND: dict[str, int] = {}
SCANNED: dict[str, int] = {}


class _Grep:
    """Counts the bytes searched and the occurrences of the secret in them."""

    def __init__(self):
        self.bytes = 0
        self.hits = 0

    def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self.hits += data.count(NEEDLE)


def _note(name: str, grep: _Grep) -> int:
    FOUND[name] = grep.hits
    SCANNED[name] = grep.bytes
    assert grep.bytes > 0  # something was searched
    return grep.hits


def _args(store_flag: str, url: str) -> list[str]:
    return [store_flag, url, f"--password={SECRET}", "--comment",
            f"trying {url}", "with", f"db_password={SECRET}", "x=3"]


def _check_run(proc, tmp_path, url: str) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "failed" not in proc.stderr, proc.stderr
    doc = _only_doc(url)
    assert user_code_ran(tmp_path)
    with open(tmp_path / "user_code_ran") as fh:  # the user's code got the real value
        assert fh.read() == hashlib.sha256(SECRET.encode()).hexdigest()
    assert doc["config"]["x"] == 3 and doc["config"]["db_password"] == "****"
    assert doc["meta"]["options"]["--password"] == "****"
    assert doc["meta"]["config_updates"] == {"db_password": "****", "x": 3}
    assert sorted(doc["meta"]["redacted"]) == [
        "config.db_password", "config_updates.db_password", "options.--password"]
    assert doc["status"] == "COMPLETED" and doc["result"] == 3


def _grep_files(directory, grep: _Grep) -> _Grep:
    if os.path.isfile(directory):
        with open(directory, "rb") as fh:
            grep(fh.read())
        return grep
    for base, _dirs, names in os.walk(directory):
        for name in names:
            with open(os.path.join(base, name), "rb") as fh:
                grep(fh.read())
    return grep


def _grep_sql(url: str, grep: _Grep) -> _Grep:
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    engine = sa.create_engine(engine_url(url))
    try:
        tables = sa.inspect(engine).get_table_names()
        assert "runs" in tables
        with engine.connect() as conn:
            for table in tables:
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"' if
                                                engine.dialect.name != "mysql" else
                                                f"SELECT * FROM `{table}`")):
                    for value in row:
                        data = value if isinstance(value, bytes | bytearray | memoryview) \
                            else str(value).encode()
                        grep(bytes(data))
    finally:
        engine.dispose()
    return grep


def _only_doc(url: str) -> dict:
    with labbook.Api(url) as api:
        runs = list(api.runs())
        assert len(runs) == 1
        return runs[0].doc


def test_file_store(tmp_path):
    proc = run_script(tmp_path, *_args("-F", str(tmp_path / "runs")))
    _check_run(proc, tmp_path, (str(tmp_path / "runs")))
    assert os.path.isfile(tmp_path / "runs" / ".labbook" / "index.jsonl")
    assert _note("file (-F, incl. .labbook/index.jsonl)",
                 _grep_files(tmp_path / "runs", _Grep())) == 0


def test_sqlite_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    proc = run_script(tmp_path, *_args("--store", url))
    _check_run(proc, tmp_path, (url))
    # the rows, and the database file itself (free pages, the WAL)
    grep = _grep_files(tmp_path / "lab.db", _grep_sql(url, _Grep()))
    for extra in ("lab.db-wal", "lab.db-journal"):
        if (tmp_path / extra).exists():
            _grep_files(tmp_path / extra, grep)
    assert _note("sqlite (--store)", grep) == 0


def _postgres_url_with_password(admin_url: str) -> str:
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    role = f"labbook_secret_{secrets.token_hex(4)}"
    database = sa.engine.make_url(engine_url(admin_url)).database
    engine = sa.create_engine(engine_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO {role}')
        conn.exec_driver_sql(f"ALTER SCHEMA public OWNER TO {role}")
    engine.dispose()
    return sa.engine.make_url(admin_url).set(username=role, password=SECRET) \
        .render_as_string(hide_password=False)


def test_postgresql_store(tmp_path, postgresql_database):  # noqa: F811
    from tests.stores.conftest import empty_database

    empty_database(postgresql_database)
    url = _postgres_url_with_password(postgresql_database)
    assert SECRET in url
    proc = run_script(tmp_path, *_args("-s", url))
    _check_run(proc, tmp_path, (postgresql_database))
    assert _note("postgresql (-s, password in URL)",
                 _grep_sql(postgresql_database, _Grep())) == 0
    empty_database(postgresql_database)


def test_postgresql_store_named_by_labbook_store(tmp_path, postgresql_database):  # noqa: F811
    from tests.stores.conftest import empty_database

    empty_database(postgresql_database)
    url = _postgres_url_with_password(postgresql_database)
    args = [a for a in _args("-s", url) if a not in ("-s", url)]
    proc = run_script(tmp_path, *args, env={"LABBOOK_STORE": url})
    _check_run(proc, tmp_path, (postgresql_database))
    assert _note("postgresql (LABBOOK_STORE, password in URL)",
                 _grep_sql(postgresql_database, _Grep())) == 0
    empty_database(postgresql_database)


def _mysql_url_with_password(admin_url: str) -> str:
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    user = f"lbsecret{secrets.token_hex(3)}"
    database = sa.engine.make_url(engine_url(admin_url)).database
    engine = sa.create_engine(engine_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for host in ("%%", "localhost", "127.0.0.1"):
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{SECRET}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{database}`.* TO '{user}'@'{host}'")
    engine.dispose()
    return sa.engine.make_url(admin_url).set(username=user, password=SECRET) \
        .render_as_string(hide_password=False)


def test_mariadb_store(tmp_path, mysql_database):  # noqa: F811
    from tests.stores.conftest import empty_database

    empty_database(mysql_database)
    url = _mysql_url_with_password(mysql_database)
    proc = run_script(tmp_path, *_args("--store", url))
    _check_run(proc, tmp_path, (mysql_database))
    assert _note("mariadb (--store, password in URL)", _grep_sql(mysql_database, _Grep())) == 0
    empty_database(mysql_database)


def test_mongo_store(tmp_path, mongo_server):  # noqa: F811
    import bson

    database = f"secrets_{secrets.token_hex(4)}"
    base = mongo_server.url(database)
    # mongoeco refuses every login (and cannot create users): a URL with a password is
    # refused before the run starts, in one line without the password...
    url = base.replace("mongodb://", f"mongodb://someone:{SECRET}@", 1)
    refused = run_script(tmp_path, *_args("-m", url))
    assert refused.returncode == 1 and not user_code_ran(tmp_path)
    assert refused.stderr.startswith(f"Error: MongoDB at {url.replace(SECRET, '****')} "
                                     "refused the login or the operation (Authentication "
                                     "failed")
    assert SECRET not in refused.stderr
    # ...so the secret travels in the option and the config of a run that connects
    proc = run_script(tmp_path, *_args("-m", base))
    _check_run(proc, tmp_path, base)
    client = mongo_server.client()
    grep = _Grep()
    try:
        db = client[database]
        for name in db.list_collection_names():
            for doc in db[name].find():
                grep(bson.encode(doc))
    finally:
        client.drop_database(database)
        client.close()
    assert _note("mongodb (-m)", grep) == 0


def test_queued_journal(tmp_path):
    # the store is away: the whole run goes to the journal, URL password and all masked
    url = f"postgresql://someone:{SECRET}@127.0.0.1:{closed_port()}/db"
    proc = run_script(tmp_path, "--queued", *_args("-s", url))
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stderr
    journal = tmp_path / "labbook_failed_runs"
    records = []
    for base, _dirs, names in os.walk(journal):
        if "events.jsonl" in names:
            with open(os.path.join(base, "events.jsonl")) as fh:
                records += [json.loads(line) for line in fh]
    start = records[0]["kwargs"]
    assert records[0]["event"] == "started_event"
    assert start["config"]["db_password"] == "****"
    assert start["meta_info"]["options"]["--sql"] == \
        url.replace(SECRET, "****")
    assert _note("queued journal (--queued -s)", _grep_files(journal, _Grep())) == 0


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if FOUND:
        print("\n[secret grep] occurrences of the secret in everything stored: "
              + ", ".join(f"{k}: {v} in {SCANNED[k]:,} bytes" for k, v in FOUND.items()))
        figures = os.environ.get("LABBOOK_FAULT_FIGURES")
        if figures:  # tools/fault_matrix.py collects these
            with open(figures, "a", encoding="utf-8") as fh:
                for name, hits in FOUND.items():
                    fh.write(json.dumps({"secret": name, "bytes": SCANNED[name],
                                         "hits": hits}) + "\n")
