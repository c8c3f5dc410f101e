"""A store that cannot be used at all is found before the user's code runs, whichever way it
is named (-F, -s, -m, --store, LABBOOK_STORE, observers.create): one line, exit status 1,
nothing run, nothing half-recorded elsewhere. With --queued the run goes on and is journaled."""
from __future__ import annotations

import json
import os
import secrets

import pytest

import labbook
from labbook.errors import StoreError, StoreUnusableError
from tests.faults.safety_support import closed_port, error_lines, run_script, user_code_ran
from tests.stores.conftest import MYSQL_DEFAULT, POSTGRES_DEFAULT
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)


def _missing_db(admin_default: str, scheme: str) -> str:
    import sqlalchemy as sa

    url = sa.engine.make_url(admin_default)
    name = f"labbook_nosuch_{secrets.token_hex(4)}"
    return url.set(drivername=scheme, database=name).render_as_string(hide_password=False)


def _cases():
    port = closed_port()
    pg_missing = _missing_db(os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT),
                             "postgresql")
    my_missing = _missing_db(os.environ.get("LABBOOK_TEST_MYSQL_URL", MYSQL_DEFAULT), "mysql")
    return [
        # (id, arguments, environment, what the one line says)
        ("F-unwritable", ["-F", "/proc/labbook_x/runs"], {},
         "Error: Cannot record runs in the file store /proc/labbook_x/runs: No such file or "
         "directory (/proc/labbook_x). Give a directory you can write to."),
        ("store-file-unwritable", ["--store", "file:///proc/labbook_x"], {},
         "Error: Cannot record runs in the file store /proc/labbook_x: No such file or "
         "directory (/proc/labbook_x). Give a directory you can write to."),
        ("env-file-unwritable", [], {"LABBOOK_STORE": "/proc/labbook_x"},
         "Error: Cannot record runs in the file store /proc/labbook_x: "),
        ("s-wrong-port", ["-s", f"postgresql://postgres@127.0.0.1:{port}/x"], {},
         f"Error: Cannot open the SQL database postgresql://postgres@127.0.0.1:{port}/x: "),
        ("s-missing-database", ["-s", pg_missing], {},
         f"Error: Cannot open the SQL database {pg_missing}: "),
        ("store-mysql-missing-database", ["--store", my_missing], {},
         f"Error: Cannot open the SQL database {my_missing}: "),
        ("m-wrong-port", ["-m", f"mongodb://127.0.0.1:{port}/x"], {},
         f"Error: Cannot reach MongoDB at mongodb://127.0.0.1:{port}/x within 2 s "),
        ("m-short-wrong-port", ["-m", f"127.0.0.1:{port}:labbook"], {},
         f"Error: Cannot reach MongoDB at mongodb://127.0.0.1:{port}/labbook within 2 s "),
        ("store-mongo-invalid-name", ["--store", f"mongodb://127.0.0.1:{port}/a.b"], {},
         f"Error: Cannot use the MongoDB database name 'a.b' (mongodb://127.0.0.1:{port}/a.b): "
         "database names cannot contain the character '.'."),
        ("env-sql-wrong-port", [],
         {"LABBOOK_STORE": f"mysql://root:pw@127.0.0.1:{port}/x"},
         f"Error: Cannot open the SQL database mysql://root:****@127.0.0.1:{port}/x: "),
        ("F-a-file-not-a-directory", ["-F", "{tmp}/plain.txt"], {},
         "Error: Cannot record runs in the file store {tmp}/plain.txt: File exists "),
        ("s-sqlite-unwritable", ["-s", "sqlite:////proc/labbook_x/lab.db"], {},
         "Error: Cannot open the SQL database sqlite:////proc/labbook_x/lab.db: [Errno 2] No "
         "such file or directory: '/proc/labbook_x'. Check that the directory of "
         "'/proc/labbook_x/lab.db' exists and is writable"),
        ("s-mysql-wrong-port", ["-s", f"mysql://root@127.0.0.1:{port}/x"], {},
         f"Error: Cannot open the SQL database mysql://root@127.0.0.1:{port}/x: "),
        ("m-invalid-name", ["-m", f"mongodb://127.0.0.1:{port}/a.b"], {},
         f"Error: Cannot use the MongoDB database name 'a.b' (mongodb://127.0.0.1:{port}/a.b): "
         "database names cannot contain the character '.'."),
        ("store-postgresql-wrong-port", ["--store", f"postgresql://postgres@127.0.0.1:{port}/x"],
         {}, f"Error: Cannot open the SQL database postgresql://postgres@127.0.0.1:{port}/x: "),
        ("store-mongo-wrong-port", ["--store", f"mongodb://127.0.0.1:{port}/x"], {},
         f"Error: Cannot reach MongoDB at mongodb://127.0.0.1:{port}/x within 2 s "),
        ("store-sqlite-unwritable", ["--store", "sqlite:////proc/labbook_x/lab.db"], {},
         "Error: Cannot open the SQL database sqlite:////proc/labbook_x/lab.db: "),
        ("env-postgresql-missing-database", [], {"LABBOOK_STORE": pg_missing},
         f"Error: Cannot open the SQL database {pg_missing}: "),
        ("env-mongo-wrong-port", [], {"LABBOOK_STORE": f"mongodb://127.0.0.1:{port}/x"},
         f"Error: Cannot reach MongoDB at mongodb://127.0.0.1:{port}/x within 2 s "),
        ("env-mongo-invalid-name", [], {"LABBOOK_STORE": f"mongodb://127.0.0.1:{port}/a.b"},
         f"Error: Cannot use the MongoDB database name 'a.b' (mongodb://127.0.0.1:{port}/a.b): "),
    ]


CASES = _cases()


@pytest.mark.parametrize("args,env,line", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_unusable_store_stops_the_run_before_the_users_code(tmp_path, args, env, line):
    (tmp_path / "plain.txt").write_text("a file where a store directory is named")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    line = line.replace("{tmp}", str(tmp_path))
    proc = run_script(tmp_path, *args, env=env)
    lines = error_lines(proc)
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(line), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not user_code_ran(tmp_path)
    assert "Started" not in proc.stderr and proc.stdout == ""


def test_a_good_store_next_to_a_bad_one_records_nothing(tmp_path):
    # -F works, -m does not: the check comes before any store hears of the run
    good = tmp_path / "runs"
    proc = run_script(tmp_path, "-F", str(good), "-m", f"127.0.0.1:{closed_port()}:db")
    assert proc.returncode == 1
    assert error_lines(proc)[0].startswith("Error: Cannot reach MongoDB at ")
    assert not user_code_ran(tmp_path)
    assert [n for n in os.listdir(good) if not n.startswith("_")] == []  # no run directory


def test_queued_goes_on_and_journals_the_run(tmp_path):
    proc = run_script(tmp_path, "--queued", "-F", "/proc/labbook_x/runs")
    assert proc.returncode == 0, proc.stderr
    assert user_code_ran(tmp_path)
    warning = [ln for ln in proc.stderr.splitlines()
               if "Cannot record runs in the file store /proc/labbook_x/runs" in ln]
    assert len(warning) == 1 and "the run goes on" in warning[0], proc.stderr
    journals = os.listdir(tmp_path / "labbook_failed_runs")
    assert len(journals) == 1
    with open(tmp_path / "labbook_failed_runs" / journals[0] / "events.jsonl") as fh:
        events = [json.loads(line)["event"] for line in fh]
    assert events[0] == "started_event" and events[-1] == "completed_event"


def _experiment(ran: list):
    ex = labbook.Experiment("preflight", interactive=True)

    @ex.main
    def main():
        ran.append(True)

    return ex


def test_ex_run_raises_for_an_appended_observer(tmp_path):
    ran: list = []
    ex = _experiment(ran)
    ex.observers.append(labbook.observers.create("file:///proc/labbook_x"))
    with pytest.raises(StoreUnusableError) as info:
        ex.run()
    assert str(info.value).startswith("Cannot record runs in the file store /proc/labbook_x: ")
    assert info.value.exit_code == 1 and ran == []


def test_ex_run_raises_for_a_missing_sql_database(tmp_path):
    ran: list = []
    ex = _experiment(ran)
    url = _missing_db(os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT),
                      "postgresql")
    ex.observers.append(labbook.observers.create(url))
    with pytest.raises(StoreError) as info:
        ex.run()
    assert str(info.value).startswith(f"Cannot open the SQL database {url}: ")
    assert "does not exist" in str(info.value) and ran == []


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "mongo", "sqlite-unwritable"])
def test_ex_run_raises_for_a_store_created_by_url_that_cannot_be_used(kind):
    # observers.create: the same check as the command line, before the main function runs
    port = closed_port()
    url = {"postgresql": f"postgresql://postgres@127.0.0.1:{port}/x",
           "mysql": f"mysql://root:pw@127.0.0.1:{port}/x",
           "mongo": f"mongodb://127.0.0.1:{port}/x",
           "sqlite-unwritable": "sqlite:////proc/labbook_x/lab.db"}[kind]
    ran: list = []
    ex = _experiment(ran)
    ex.observers.append(labbook.observers.create(url))
    with pytest.raises(StoreError) as info:
        ex.run()
    shown = url.replace(":pw@", ":****@")
    assert str(info.value).startswith((f"Cannot open the SQL database {shown}: ",
                                       f"Cannot reach MongoDB at {shown} within 2 s "))
    assert "pw@" not in str(info.value) and info.value.exit_code == 1 and ran == []


def test_observers_create_refuses_an_invalid_mongo_database_name():
    with pytest.raises(StoreUnusableError) as info:
        labbook.observers.create(f"mongodb://127.0.0.1:{closed_port()}/a.b")
    assert str(info.value).startswith("Cannot use the MongoDB database name 'a.b' ")


def test_a_reachable_mongo_passes_the_check(tmp_path, mongo_server):  # noqa: F811
    # the check is no obstacle for a working store: the run is recorded as before
    url = mongo_server.url(f"preflight_{secrets.token_hex(4)}")
    proc = run_script(tmp_path, "--store", url)
    assert proc.returncode == 0, proc.stderr
    assert user_code_ran(tmp_path)
    with labbook.Api(url) as api:
        assert [run.doc["config"]["x"] for run in api.runs()] == [1]
