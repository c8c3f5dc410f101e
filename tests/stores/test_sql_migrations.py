"""The SQL store's Alembic migrations on SQLite, PostgreSQL and MariaDB (see conftest.py).

A fresh database is created at the head revision; a database written by the labbook before
Alembic (``labbook_schema`` version 1, no version table) is upgraded in place with its
runs, metrics and files intact; a revision kept in ``alembic_version`` (where labbook kept it
before) moves to ``labbook_alembic_version``; another application's Alembic tables share the
database untouched; a database at a revision this labbook does not know is refused; many
processes opening a fresh database at once all succeed.
"""
import datetime as dt
import hashlib
import math
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from labbook.errors import SqlSchemaError
from labbook.observers.sql import SqlObserver
from labbook.stores.sql import HEAD_REVISION, METADATA, SCHEMA_VERSION, SqlStore, engine_url
from labbook.stores.sql import migrations as sql_migrations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)


# -- a frozen copy of the tables of the labbook before Alembic (schema version 1) ----------------
def _v1_metadata() -> sa.MetaData:
    names = ("mysql", "mariadb")

    def name(length):
        return sa.String(length).with_variant(
            mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *names)

    json_type = sa.JSON(none_as_null=True)
    time_type = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), *names)
    options = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
    meta = sa.MetaData()
    sa.Table("labbook_schema", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("version", sa.Integer, nullable=False), **options)
    sa.Table("experiments", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", name(255), nullable=False, unique=True),
             sa.Column("created", time_type), **options)
    sa.Table("runs", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("experiment_name", name(255), index=True),
             sa.Column("command", name(255)),
             sa.Column("status", name(255), index=True),
             sa.Column("start_time", time_type, index=True),
             sa.Column("queue_time", time_type),
             sa.Column("stop_time", time_type),
             sa.Column("heartbeat", time_type, index=True),
             *[sa.Column(c, json_type) for c in ("experiment", "host", "config", "meta", "info",
                                                 "result", "fail_trace", "resources",
                                                 "artifacts", "extra")],
             sa.Column("captured_out", sa.Text().with_variant(mysql.LONGTEXT(), *names)),
             sqlite_autoincrement=True, **options)
    sa.Table("metrics", meta,
             sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                       primary_key=True),
             sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                       nullable=False),
             sa.Column("name", name(255), nullable=False),
             sa.Column("step", sa.BigInteger, nullable=False),
             sa.Column("value", sa.Double),
             sa.Column("special", sa.String(8)),
             sa.Column("timestamp", time_type),
             sa.Index("ix_metrics_run_name_step", "run_id", "name", "step"), **options)
    sa.Table("blobs", meta,
             sa.Column("md5", sa.String(32), primary_key=True),
             sa.Column("size", sa.BigInteger, nullable=False),
             sa.Column("content", sa.LargeBinary().with_variant(mysql.LONGBLOB(), *names),
                       nullable=False), **options)
    sa.Table("artifacts", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                       nullable=False, index=True),
             sa.Column("name", name(1024), nullable=False),
             sa.Column("md5", sa.String(32), sa.ForeignKey("blobs.md5"), nullable=False),
             sa.Column("content_type", sa.String(255)),
             sa.Column("metadata", json_type), **options)
    return meta


def _engine(url):
    return sa.create_engine(engine_url(url))


def _table_columns(engine) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {name: {c["name"] for c in inspector.get_columns(name)}
            for name in inspector.get_table_names()}


def _revision(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT version_num FROM {sql_migrations.VERSION_TABLE}").scalars().all()


def test_the_head_revision_constant_matches_the_migrations():
    assert sql_migrations.head_revision() == HEAD_REVISION
    assert sql_migrations.INITIAL_REVISION == "0001_initial"


def test_a_fresh_database_is_created_at_the_head_revision(sql_url):
    store = SqlStore(sql_url)
    store.check()
    engine = _engine(sql_url)
    try:
        assert _revision(engine) == [HEAD_REVISION]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM labbook_schema").scalar() == \
                SCHEMA_VERSION
        columns = _table_columns(engine)
        # the migrations make exactly the tables the code queries
        for table in METADATA.sorted_tables:
            assert columns[table.name] == {c.name for c in table.columns}, table.name
        assert set(columns) == \
            {t.name for t in METADATA.sorted_tables} | {sql_migrations.VERSION_TABLE}
        indexes = {ix["name"]: ix["column_names"]
                   for ix in sa.inspect(engine).get_indexes("metrics")}
        assert indexes["ix_metrics_run_name_step_id"] == ["run_id", "name", "step", "id"]
        assert "ix_metrics_run_name_step" not in indexes
    finally:
        engine.dispose()
    run_id = store.create_run({"status": "RUNNING"})
    store.append_metrics(run_id, {"x": {"steps": [0], "values": [1.0], "timestamps": [T0]}})
    store.close()
    again = SqlStore(sql_url)  # opening again changes nothing
    assert again.history(run_id)["x"]["timestamps"] == [T0]
    again.close()


def test_import_and_an_up_to_date_database_do_not_import_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'up.db'}"
    SqlStore(url).check()
    code = ("import sys, labbook, labbook.observers, labbook.stores.sql\n"
            "assert 'alembic' not in sys.modules, 'import'\n"
            "from labbook.stores.sql import SqlStore\n"
            f"SqlStore({url!r}).find()\n"
            "assert 'alembic' not in sys.modules, 'open'\n"
            f"SqlStore({str(url).replace('up.db', 'new.db')!r}).find()\n"
            "assert 'alembic' in sys.modules, 'a new database is made by the migrations'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr


# -- a database of the labbook before Alembic ----------------------------------------------------
def _make_v1_database(url, big: bytes) -> dict:
    """Tables and rows as the labbook before Alembic wrote them."""
    meta = _v1_metadata()
    engine = _engine(url)
    t = meta.tables
    small = b"small artifact\x00\xff"
    try:
        with engine.begin() as conn:
            meta.create_all(conn)
            conn.execute(t["labbook_schema"].insert().values(id=1, version=1))
            conn.execute(t["experiments"].insert().values(name="old", created=T0))
            conn.execute(t["runs"].insert().values(
                id=7, experiment_name="old", command="main", status="COMPLETED",
                start_time=T0, stop_time=T0 + dt.timedelta(minutes=1), heartbeat=T0,
                experiment={"name": "old", "sources": []}, host={"hostname": "h"},
                config={"lr": 0.1, "nested": {"a": [1, 2]}},
                meta={"command": "main", "tags": ["old"]},
                info={"note": "kept", "tags": {"v1": None}}, result={"acc": 0.5},
                resources=[["/data/small.bin", hashlib.md5(small).hexdigest()]], artifacts=[
                    "small.bin", "big.bin"], extra={"custom": "field"},
                captured_out="old output\n"))
            points = [
                ("loss", 0, 1.0, None, T0),
                ("loss", 1, None, "nan", T0 + dt.timedelta(microseconds=1)),
                ("loss", 2, None, "-inf", T0 + dt.timedelta(seconds=1, microseconds=999999)),
                ("acc", 10, 0.25, None, dt.datetime(1969, 12, 31, 23, 59, 59, 500000)),
                ("loss", 3, 0.5, None, None),
            ]
            conn.execute(t["metrics"].insert(), [
                {"run_id": 7, "name": n, "step": s, "value": v, "special": sp, "timestamp": ts}
                for n, s, v, sp, ts in points])
            for content in (small, big):
                conn.execute(t["blobs"].insert().values(
                    md5=hashlib.md5(content).hexdigest(), size=len(content), content=content))
            conn.execute(t["artifacts"].insert(), [
                {"run_id": 7, "name": "small.bin", "md5": hashlib.md5(small).hexdigest(),
                 "content_type": "application/octet-stream", "metadata": {"epoch": 1}},
                {"run_id": 7, "name": "big.bin", "md5": hashlib.md5(big).hexdigest(),
                 "content_type": None, "metadata": None}])
    finally:
        engine.dispose()
    return {"small": small, "big": big, "points": points}


def test_a_v1_database_is_upgraded_in_place_with_its_data(sql_url):
    big = os.urandom(2 * 1024 * 1024 + 12345)  # cut into three chunks by the migration
    made = _make_v1_database(sql_url, big)
    store = SqlStore(sql_url)
    doc = store.get(7)
    assert doc["status"] == "COMPLETED" and doc["config"] == {"lr": 0.1, "nested": {"a": [1, 2]}}
    assert doc["start_time"] == T0 and doc["custom"] == "field"
    assert doc["captured_out"] == "old output\n" and doc["result"] == {"acc": 0.5}

    history = store.history(7)
    loss = [p for p in made["points"] if p[0] == "loss"]
    assert history["loss"]["steps"] == [p[1] for p in loss]
    assert [repr(v) for v in history["loss"]["values"]] == ["1.0", "nan", "-inf", "0.5"]
    assert history["loss"]["timestamps"] == [p[4] for p in loss]  # to the microsecond
    assert history["acc"] == {"steps": [10], "values": [0.25],
                              "timestamps": [dt.datetime(1969, 12, 31, 23, 59, 59, 500000)]}

    assert store.open_artifact(7, "small.bin").read() == made["small"]
    assert store.open_artifact(7, "big.bin").read() == big
    engine = _engine(sql_url)
    try:
        assert _revision(engine) == [HEAD_REVISION]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM labbook_schema").scalar() == \
                SCHEMA_VERSION
            chunks = conn.exec_driver_sql(
                "SELECT seq FROM blob_chunks WHERE md5 = '%s' ORDER BY seq"
                % hashlib.md5(big).hexdigest()).scalars().all()
        assert chunks == [0, 1, 2]
        columns = _table_columns(engine)
        assert "content" not in columns["blobs"] and "timestamp" not in columns["metrics"]
    finally:
        engine.dispose()

    # 0003 filled in the summaries, tags and file rows from what was stored
    last = store.last_values([7])[7]
    assert last["acc"] == 0.25 and last["loss"] == 0.5  # the last point written
    assert [d["_id"] for d in store.find({"summary.loss": 0.5})] == [7]
    assert [d["_id"] for d in store.find({"tags": {"$all": ["old", "v1"]}})] == [7]
    engine = _engine(sql_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name, md5 FROM run_resources").all() == [
                ("/data/small.bin", hashlib.md5(made["small"]).hexdigest())]
    finally:
        engine.dispose()

    # the upgraded database takes new points and runs as a new one does
    store.append_metrics(7, {"loss": {"steps": [4], "values": [0.25], "timestamps": [T0]}})
    assert store.history(7, ["loss"])["loss"]["steps"] == [0, 1, 2, 3, 4]
    new = store.create_run({"status": "RUNNING"})
    assert new != 7 and store.get(new)["status"] == "RUNNING" and store.get(7)["info"]
    store.close()


def test_an_unknown_newer_revision_is_refused(sql_url):
    store = SqlStore(sql_url)
    store.check()
    store.close()
    engine = _engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE labbook_alembic_version SET version_num = '0099_from_the_future'")
    engine.dispose()
    with pytest.raises(SqlSchemaError, match="0099_from_the_future") as info:
        SqlObserver(sql_url)
    message = str(info.value)
    assert "newer labbook" in message and "Upgrade labbook: pip install -U labbook" in message
    assert HEAD_REVISION in message
    with pytest.raises(SqlSchemaError, match="Upgrade labbook"):
        SqlStore(sql_url).find()


def test_another_applications_alembic_tables_share_the_database(sql_url):
    # Optuna's study storage (a sweep keeps its study in the store's database) migrates with
    # Alembic too, and keeps its revision in alembic_version
    engine = _engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('v3.2.0.a')")
    store = SqlStore(sql_url)
    run_id = store.create_run({"status": "RUNNING"})
    assert store.get(run_id)["status"] == "RUNNING"
    store.close()
    try:
        assert _revision(engine) == [HEAD_REVISION]
        with engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT version_num FROM alembic_version").scalars().all() == ["v3.2.0.a"]
    finally:
        engine.dispose()


def test_a_revision_kept_in_alembic_version_moves_to_labbooks_table(sql_url):
    store = SqlStore(sql_url)
    run_id = store.create_run({"status": "COMPLETED", "config": {"lr": 0.1}})
    store.close()
    engine = _engine(sql_url)
    try:
        with engine.begin() as conn:  # the layout of an older labbook: alembic_version, at 0004
            conn.exec_driver_sql("DROP TABLE labbook_alembic_version")
            conn.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0004_metric_page_index')")
            conn.exec_driver_sql("DROP TABLE artifact_entries")  # what 0005 adds
            conn.exec_driver_sql("DROP TABLE version_blobs")
            conn.exec_driver_sql("UPDATE labbook_schema SET version = 4 WHERE id = 1")
    finally:
        engine.dispose()
    store = SqlStore(sql_url)
    assert store.get(run_id)["config"] == {"lr": 0.1}
    store.close()
    engine = _engine(sql_url)
    try:
        assert _revision(engine) == [HEAD_REVISION]
        tables = set(sa.inspect(engine).get_table_names())
        assert "alembic_version" not in tables
        assert {t.name for t in METADATA.sorted_tables} <= tables
    finally:
        engine.dispose()


def test_tables_named_as_labbooks_but_not_made_by_it_are_refused(sql_url):
    engine = _engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (id INTEGER PRIMARY KEY, note VARCHAR(20))")
    engine.dispose()
    with pytest.raises(SqlSchemaError, match="did not create") as info:
        SqlStore(sql_url).check()
    assert "runs" in str(info.value)


# -- many processes opening a fresh database at once ---------------------------------------------
OPEN_SCRIPT = """
import os, sys, time
sys.path.insert(0, {root!r})
from labbook.stores.sql import SqlStore
while not os.path.exists({go!r}):
    time.sleep(0.005)
store = SqlStore({url!r})
run_id = store.create_run({{"status": "RUNNING", "config": {{"worker": int(sys.argv[1])}}}})
store.append_metrics(run_id, {{"x": {{"steps": [0, 1], "values": [1.0, 2.0],
                                      "timestamps": [None, None]}}}})
print(run_id)
"""


def test_many_processes_open_a_fresh_database_at_once(sql_url, tmp_path):
    go = tmp_path / "go"
    script = tmp_path / "open.py"
    script.write_text(OPEN_SCRIPT.format(root=ROOT, go=str(go), url=sql_url))
    procs = [subprocess.Popen([sys.executable, str(script), str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(6)]
    time.sleep(1.0)  # let them all start and wait at the line
    go.write_text("")
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        ids.append(int(out.strip()))
    assert len(set(ids)) == 6
    store = SqlStore(sql_url)
    assert sorted(r["config"]["worker"] for r in store.find()) == list(range(6))
    assert all(store.history(i)["x"]["values"] == [1.0, 2.0] for i in ids)
    engine = _engine(sql_url)
    try:
        assert _revision(engine) == [HEAD_REVISION]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM labbook_schema").scalar() == 1
    finally:
        engine.dispose()
    store.close()


def test_nan_points_of_a_v1_database_keep_their_special_column(sql_url):
    made = _make_v1_database(sql_url, b"")
    store = SqlStore(sql_url)
    values = store.history(7, ["loss"])["loss"]["values"]
    assert math.isnan(values[1]) and values[2] == -math.inf
    assert store.open_artifact(7, "big.bin").read() == b""  # an empty file has no chunks
    assert len(made["points"]) == 5
    store.close()
