"""Commands that read runs never create a store: a missing SQLite file, directory or server
database is one line and exit status 1 (``labbook ls sqlite:///nosuch.db`` used to create a
120 KB database, ``labbook show latest`` a ``labbook.db``); a database without labbook's tables
is "not a labbook store" and gets no tables."""
from __future__ import annotations

import os

import pytest

import labbook
from labbook.errors import NoStoreError, StoreError
from tests.faults.safety_support import error_lines, run_labbook, run_script
from tests.stores.conftest import empty_database, postgresql_database  # noqa: F401 (fixture)

READ_COMMANDS = [
    ["ls", "{url}"],
    ["show", "latest", "--store", "{url}"],
    ["show", "1", "--store", "{url}"],
    ["compare", "1", "2", "--store", "{url}"],
    ["export", "--store", "{url}"],
    ["plot", "1", "--metric", "loss", "--store", "{url}"],
    ["open", "1", "--store", "{url}"],
    ["rm", "1", "--yes", "--store", "{url}"],
    ["ui", "{url}", "--port", "0"],
]
MISSING = [
    ("sqlite:///nosuch.db", "Error: No store at sqlite:///nosuch.db (the file {tmp}/nosuch.db "
                            "does not exist)."),
    ("nosuch", "Error: No store at nosuch (the directory {tmp}/nosuch does not exist)."),
    ("file://nosuch", "Error: No store at file://nosuch (the directory {tmp}/nosuch does not "
                      "exist)."),
]


@pytest.mark.parametrize("command", READ_COMMANDS,
                         ids=[c[0] + str(i) for i, c in enumerate(READ_COMMANDS)])
@pytest.mark.parametrize("url,line", MISSING, ids=[m[0] for m in MISSING])
def test_reading_a_missing_store_creates_nothing(tmp_path, command, url, line):
    proc = run_labbook(tmp_path, *[part.format(url=url) for part in command])
    assert proc.returncode == 1, proc.stderr
    assert error_lines(proc) == [line.format(tmp=tmp_path)]
    assert os.listdir(tmp_path) == []


def test_show_latest_without_a_store_says_so(tmp_path):
    proc = run_labbook(tmp_path, "show", "latest")
    assert proc.returncode == 1
    assert error_lines(proc) == [
        f"Error: No store at sqlite:///labbook.db (the file {tmp_path}/labbook.db does not "
        "exist). Name the store with --store URL or set LABBOOK_STORE."]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("url", ["sqlite:///nosuch.db", "nosuch", "file://nosuch"])
def test_api_on_a_missing_store_raises_and_creates_nothing(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NoStoreError) as info:
        labbook.Api(url)
    assert str(info.value).startswith(f"No store at {url} (the ")
    assert info.value.exit_code == 1
    assert os.listdir(tmp_path) == []


def test_an_existing_store_still_reads(tmp_path):
    proc = run_script(tmp_path, "--store", "sqlite:///labbook.db", "with", "x=7")
    assert proc.returncode == 0, proc.stderr
    # the run ended with the store's connections closed: it lives in the one database file
    # (no write-ahead log left behind that a copy of labbook.db would miss)
    assert not [name for name in os.listdir(tmp_path) if name.startswith("labbook.db-")]
    before = os.path.getsize(tmp_path / "labbook.db")
    shown = run_labbook(tmp_path, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "x = 7" in shown.stdout
    assert os.path.getsize(tmp_path / "labbook.db") == before


def _tables(url: str) -> set[str]:
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    engine = sa.create_engine(engine_url(url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_database_without_labbook_tables_is_not_migrated(
        tmp_path, postgresql_database):  # noqa: F811
    import sqlalchemy as sa

    from labbook.stores.sql import engine_url

    url = postgresql_database
    empty_database(url)
    engine = sa.create_engine(engine_url(url))
    with engine.begin() as conn:  # another application's table, with its data
        conn.exec_driver_sql("CREATE TABLE other_app (id integer, name text)")
        conn.exec_driver_sql("INSERT INTO other_app VALUES (1, 'kept')")
    engine.dispose()
    proc = run_labbook(tmp_path, "ls", url)
    assert proc.returncode == 1
    assert error_lines(proc) == [f"Error: {url} is not a labbook store (the database has no "
                                 "labbook tables); nothing was changed."]
    with pytest.raises(NoStoreError):
        labbook.Api(url)
    assert _tables(url) == {"other_app"}
    engine = sa.create_engine(engine_url(url))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM other_app").all() == [(1, "kept")]
    engine.dispose()
    empty_database(url)


def test_an_empty_sqlite_file_is_not_a_store_and_stays_empty(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    proc = run_labbook(tmp_path, "ls", "sqlite:///empty.db")
    assert proc.returncode == 1
    assert error_lines(proc) == ["Error: sqlite:///empty.db is not a labbook store (the "
                                 "database has no labbook tables); nothing was changed."]
    assert _tables(f"sqlite:///{tmp_path / 'empty.db'}") == set()


def test_a_missing_server_database_is_one_line(tmp_path):
    url = "postgresql://postgres@127.0.0.1:5432/labbook_never_created_db"
    proc = run_labbook(tmp_path, "ls", url)
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"Error: Cannot open the SQL database {url}: ")
    with pytest.raises(StoreError):
        labbook.Api(url)
