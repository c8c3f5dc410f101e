"""Outages of every store: nothing lost, the run never hangs, one line says what to do.

Each test runs a real experiment script in a subprocess (``python exp.py with ... --store URL``)
whose store is reached through a TCP proxy of this process (tests/faults/tcp_proxy.py) that the
test stops (refuses), freezes (accepts, never answers) and restarts while the run goes on. The
script logs ``N`` metric points in three phases and waits at the end of each phase for the
test to act (files in a control directory). Afterwards the test checks the exit status, the one
loud line (how many events wait where, and the ``labbook sync`` command), runs that command
with the store back, and compares the stored run field by field with a reference run the same
script recorded in an undisturbed store (ids and times aside).

SQLite is taken away by another connection holding the write lock longer than the busy
timeout; the file store by making the run's directory unwritable (or, as root, for whom
permissions do not count, by putting a file where the directory was).
"""
from __future__ import annotations

import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.tcp_proxy import TcpProxy
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
N_PER_PHASE = int(os.environ.get("LABBOOK_OUTAGE_POINTS_PER_PHASE", "50"))  # per series
SERIES = ("loss", "acc")
POINTS = N_PER_PHASE * 3 * len(SERIES)
#: seconds the run gives its backlog at the end: longer for the large runs of
#: tools/fault_matrix.py (mongoeco, the test's MongoDB, is an in-memory server in Python)
MAX_WAIT = max(2.0, N_PER_PHASE / 100)

SCRIPT = r'''
import os, pathlib, time

import labbook
from labbook import Experiment

delivery = labbook.SETTINGS.DELIVERY  # short waits, so the tests stay quick
delivery.SYNC_WAIT = 1.0
delivery.MAX_WAIT = float(os.environ.get("OUTAGE_MAX_WAIT", "2.0"))
delivery.BACKOFF = 0.05
delivery.MAX_BACKOFF = 0.25

ex = Experiment("outage")


@ex.config
def cfg():
    n = 10  # points per series and phase
    lr = 0.5


def end_of_phase(k):
    time.sleep(0.5)  # a few beats deliver (or try to deliver) what the phase logged
    control = os.environ.get("OUTAGE_CONTROL")
    if control:
        pathlib.Path(control, f"reached_{k}").touch()
        while not os.path.exists(os.path.join(control, f"go_{k}")):
            time.sleep(0.02)


@ex.automain
def main(_run, n, lr):
    step = 0
    for k in range(3):
        for _ in range(n):
            _run.log_scalar("loss", 1.0 / (step + 1), step)
            _run.log_scalar("acc", step * lr, step)
            step += 1
        _run.info.setdefault("phases", []).append(k)
        print(f"phase {k} done")
        if k == 1:  # a file the run deletes right away, and a file it reads
            artifact = pathlib.Path("model.bin")
            artifact.write_bytes(b"weights" * 1000)
            _run.add_artifact(str(artifact))
            artifact.unlink()
            _run.open_resource(os.environ["OUTAGE_RESOURCE"]).close()
        end_of_phase(k)
    return {"steps": step}
'''

LOUD = re.compile(
    r"(?P<events>[\d,]+) events? of (?:run \S+|this run \(no id yet\)) \((?P<points>[\d,]+) "
    r"metric points?\) could not reach (?P<target>\S+); they wait in (?P<where>\S+?)"
    r"(?: \([^)]*\))?\. Upload them with: labbook sync (?P<dir>\S+) --store (?P<url>\S+)$")

#: what the matrix of the report shows: (store, when, recovers) -> (logged, stored after sync)
MATRIX: dict[tuple[str, str, str], tuple[int, int]] = {}


# -- the experiment and its reference run ----------------------------------------------------------

@pytest.fixture(scope="module")
def script_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("outage_script")
    (directory / "exp.py").write_text(SCRIPT)
    (directory / "data.txt").write_text("input data")
    return directory


def launch(script_dir: Path, url: str, cwd: Path, control: Path | None,
           queued: bool = False, flag: str = "--store") -> subprocess.Popen:
    env = dict(os.environ, OUTAGE_RESOURCE=str(script_dir / "data.txt"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("OUTAGE_CONTROL", None)
    env["OUTAGE_MAX_WAIT"] = str(MAX_WAIT)
    if control is not None:
        env["OUTAGE_CONTROL"] = str(control)
    cmd = [sys.executable, str(script_dir / "exp.py"), "with", f"n={N_PER_PHASE}", "seed=7",
           flag, url, "--beat-interval", "0.1", "--no-system-metrics", "--capture", "sys"]
    if queued:
        cmd.append("--queued")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_script(script_dir: Path, url: str, cwd: Path, actions: dict | None = None,
               queued: bool = False, flag: str = "--store") -> tuple[int, str]:
    """Run the experiment; ``actions[k]()`` runs at the end of phase k. (status, stderr)"""
    control = None
    if actions is not None:
        control = cwd / "control"
        control.mkdir()
    proc = launch(script_dir, url, cwd, control, queued, flag)
    try:
        for k in range(3 if control else 0):
            reached = control / f"reached_{k}"
            deadline = time.monotonic() + 60
            while not reached.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    out, err = proc.communicate()
                    pytest.fail(f"the experiment did not reach phase {k}:\n{out}\n{err}")
                time.sleep(0.02)
            if k in actions:
                actions[k]()
            (control / f"go_{k}").touch()
        # a hung run fails here (the bound is the point of the test), never a slow one
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def only_run(url: str) -> tuple[object, object]:
    from labbook.stores import open_store

    store = open_store(url)
    docs = store.find()
    assert len(docs) == 1, f"{len(docs)} runs in {url}: a run was stored twice or not at all"
    return store, docs[0]["_id"]


_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")


def run_fields(store, run_id) -> dict:
    """Everything a user reads of a run, without ids, times and the log lines of the run."""
    doc = store.get(run_id)
    info = dict(doc.get("info") or {})
    if isinstance(info.get("metrics"), list):  # Sacred's series references (ids) on Mongo
        info["metrics"] = sorted(m["name"] for m in info["metrics"])
    history = store.history(run_id)
    return {
        "status": doc["status"],
        "result": doc.get("result"),
        "config": doc["config"],
        "info": info,
        "command": doc["command"],
        "experiment": doc["experiment"]["name"],
        "captured_out": [line for line in (doc.get("captured_out") or "").splitlines()
                         if not _LOG_LINE.match(line)],
        "metrics": {name: (list(series["steps"]), list(series["values"]))
                    for name, series in history.items()},
        "artifacts": {name: store.open_artifact(run_id, name).read()
                      for name in (a["name"] if isinstance(a, dict) else a  # Sacred's Mongo
                                   for a in doc.get("artifacts") or [])},
        "resources": sorted(r[0] for r in doc.get("resources") or []),
    }


def stored_points(fields: dict) -> int:
    return sum(len(steps) for steps, _ in fields["metrics"].values())


_REFERENCES: dict[str, dict] = {}


def reference(kind: str, url: str, script_dir: Path, cwd: Path) -> dict:
    """The run as an undisturbed store holds it (recorded once per store kind)."""
    if kind not in _REFERENCES:
        status, err = run_script(script_dir, url, cwd)
        assert status == 0, err
        store, run_id = only_run(url)
        _REFERENCES[kind] = run_fields(store, run_id)
        assert stored_points(_REFERENCES[kind]) == POINTS
    return _REFERENCES[kind]


def check_outcome(kind: str, when: str, recovers: str, status: int, err: str, url: str,
                  ref: dict, secret: str | None = None) -> None:
    """The exit status, the loud line, `labbook sync`, and the stored run against ``ref``."""
    from labbook.cli.main import main

    assert status == 0, err
    # the fault did happen, and the run said so when it did
    assert re.search(r"failed \(|(could|did) not record the start|has not answered within",
                     err), err
    loud = [m for m in map(LOUD.search, err.splitlines()) if m]
    if secret is not None:
        assert secret not in err
        journals = Path(os.environ["LABBOOK_FAILURE_DIR"])
        if journals.exists():
            assert not [p for p in journals.rglob("*.json*") if secret in p.read_text()]
    if recovers == "yes":
        assert loud == [], err  # everything arrived: nothing to say, nothing journaled
    else:
        assert len(loud) == 1, err  # one line, at the end
        line = loud[0]
        assert int(line["events"].replace(",", "")) >= 1
        assert Path(line["where"]).is_dir() and Path(line["where"]).parent == Path(line["dir"])
        assert Path(line["dir"]) == Path(os.environ["LABBOOK_FAILURE_DIR"])
        assert main(["sync", line["dir"], "--store", line["url"]]) == 0
        assert main(["sync", line["dir"], "--store", line["url"]]) == 0  # twice: no doubles
        print(f"\njournaled: {line['events']} events, {line['points']} points")
    store, run_id = only_run(url)
    fields = run_fields(store, run_id)
    MATRIX[(kind, when, recovers)] = (POINTS, stored_points(fields))
    print(f"\nMATRIX {kind} {when} recovers={recovers}: logged {POINTS}, stored after sync "
          f"{stored_points(fields)}")
    figures = os.environ.get("LABBOOK_FAULT_FIGURES")
    if figures:  # tools/fault_matrix.py collects these
        import json

        with open(figures, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({
                "store": kind, "when": when, "recovers": recovers, "logged": POINTS,
                "journaled": int(loud[0]["points"].replace(",", "")) if loud else 0,
                "events_journaled": int(loud[0]["events"].replace(",", "")) if loud else 0,
                "stored": stored_points(fields), "same_as_undisturbed": fields == ref,
                "status": fields["status"]}) + "\n")
    assert fields == ref


# -- the network stores --------------------------------------------------------------------------

def _server_url(kind: str, request) -> tuple[str, str, int, callable]:
    """(URL template with {host}/{port}, database name, server port, drop) for a fresh db."""
    name = f"labbook_outage_{os.getpid()}_{secrets.token_hex(4)}"
    if kind == "mongo":
        server = request.getfixturevalue("mongo_server")
        port = int(re.search(r":(\d+)", server.base_url.split("://", 1)[1]).group(1))

        def drop():
            client = server.client()
            try:
                client.drop_database(name)
            finally:
                client.close()
        # bounds that grow with the run: mongoeco takes seconds for a batch of thousands
        return (f"mongodb://127.0.0.1:{{port}}/{name}?directConnection=true&"
                f"serverSelectionTimeoutMS={max(1000, 2 * N_PER_PHASE)}&connectTimeoutMS=1000&"
                f"socketTimeoutMS={max(2000, 10 * N_PER_PHASE)}", name, port, drop)
    import sqlalchemy as sa

    from tests.stores.conftest import MYSQL_DEFAULT, POSTGRES_DEFAULT, _unreachable

    if kind == "postgresql":
        admin_url = os.environ.get("LABBOOK_TEST_POSTGRES_URL", POSTGRES_DEFAULT)
        create, drop_sql = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" ' \
            "WITH (FORCE)"
    else:
        admin_url = os.environ.get("LABBOOK_TEST_MYSQL_URL", MYSQL_DEFAULT)
        create, drop_sql = (f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
                            f"DROP DATABASE IF EXISTS `{name}`")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(create)
    except Exception as exc:
        admin.dispose()
        _unreachable(kind, admin_url, exc)
    parsed = sa.engine.make_url(admin_url)

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(drop_sql)
        admin.dispose()
    if kind == "postgresql":
        # trust authentication: the password is never used, so it may show up nowhere
        template = (f"postgresql://{parsed.username}:hunter2@127.0.0.1:{{port}}/{name}"
                    "?connect_timeout=2&tcp_user_timeout=2000"
                    "&options=-c%20statement_timeout%3D2000")
    else:
        template = (f"mysql://{parsed.username}@127.0.0.1:{{port}}/{name}"
                    "?connect_timeout=2&read_timeout=2&write_timeout=2")
    return template, name, parsed.port or (5432 if kind == "postgresql" else 3306), drop


@pytest.fixture
def network_store(request):
    """(kind, proxied URL, proxy, direct URL) of a fresh database; dropped afterwards."""
    kind = request.param
    template, _, port, drop = _server_url(kind, request)
    proxy = TcpProxy("127.0.0.1", port)
    try:
        yield kind, template.format(port=proxy.port), proxy, template.format(port=port)
    finally:
        proxy.close()
        try:
            drop()
        except Exception:
            pass


@pytest.fixture
def reference_url(request):
    """A fresh database of the same kind, for the undisturbed reference run."""
    kind = request.node.callspec.params["network_store"]
    if kind in _REFERENCES:
        yield None
        return
    template, _, port, drop = _server_url(kind, request)
    try:
        yield template.format(port=port)
    finally:
        try:
            drop()
        except Exception:
            pass


# when, recovers, --queued, before the launch, {phase: action}, after the run
SCENARIOS = {
    "start-no": ("start", "no", True, "stop", {}, "restart"),
    "start-yes": ("start", "yes", True, "stop", {0: "restart"}, None),
    "mid-yes": ("mid", "yes", False, None, {0: "stop", 1: "restart"}, None),
    "mid-no": ("mid", "no", False, None, {0: "stop"}, "restart"),
    "end-no": ("end", "no", False, None, {2: "stop"}, "restart"),
    "frozen-no": ("mid (frozen)", "no", False, None, {0: "freeze"}, "restart"),
    # the store named by Sacred's own flag (-m for MongoDB, -s for SQL) is the same observer
    "mid-no-own-flag": ("mid (-m/-s)", "no", False, None, {0: "stop"}, "restart"),
}
OWN_FLAG = {"mongo": "-m", "postgresql": "-s", "mysql": "-s"}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("network_store", ["postgresql", "mysql", "mongo"], indirect=True)
def test_network_store_outage(network_store, reference_url, scenario, script_dir, tmp_path):
    kind, url, proxy, _direct = network_store
    if reference_url is not None:
        ref_cwd = tmp_path / "reference"
        ref_cwd.mkdir()
        reference(kind, reference_url, script_dir, ref_cwd)
    ref = _REFERENCES[kind]
    when, recovers, queued, before, actions, after = SCENARIOS[scenario]
    if before:
        getattr(proxy, before)()
    flag = OWN_FLAG[kind] if scenario.endswith("own-flag") else "--store"
    status, err = run_script(script_dir, url, tmp_path,
                             {k: getattr(proxy, name) for k, name in actions.items()}, queued,
                             flag)
    if after:
        getattr(proxy, after)()
    check_outcome(kind, when, recovers, status, err, url, ref,
                  secret="hunter2" if kind == "postgresql" else None)
    if recovers == "no" and kind == "postgresql":
        assert "postgres:****@127.0.0.1" in err  # the store is named, its password hidden


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "mongo"])
def test_a_frozen_store_named_by_a_plain_url_lets_the_process_exit(kind, request, script_dir,
                                                                   tmp_path):
    # the failure as first seen: `--store postgresql://...` with no timeout in the URL, the
    # server frozen behind a proxy; the run logged "Completed" and the process never exited
    template, _, port, drop = _server_url(kind, request)
    plain = template.split("?", 1)[0]
    proxy = TcpProxy("127.0.0.1", port)
    try:
        status, err = run_script(script_dir, plain.format(port=proxy.port), tmp_path,
                                 {0: proxy.freeze})
        proxy.restart()
        assert status == 0, err
        assert "has not answered within" in err or "failed (" in err, err
        [line] = [m for m in map(LOUD.search, err.splitlines()) if m]
        assert "hunter2" not in err
        from labbook.cli.main import main

        assert main(["sync", line["dir"], "--store", line["url"]]) == 0
        store, run_id = only_run(plain.format(port=proxy.port))
        fields = run_fields(store, run_id)
        assert fields["status"] == "COMPLETED" and stored_points(fields) == POINTS
    finally:
        proxy.close()
        drop()


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "mongo", "sqlite"])
def test_every_database_call_is_bounded_by_default(kind, request, tmp_path):
    """A store URL without timeouts still gets connect, statement and socket bounds."""
    from labbook.stores import open_store

    if kind == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'b.db'}")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        return
    if kind == "mongo":
        server = request.getfixturevalue("mongo_server")
        store = open_store(server.url(f"bounds_{secrets.token_hex(4)}"))
        options = store.client.options
        assert options.server_selection_timeout == 2
        assert options.pool_options.connect_timeout == 10
        assert options.pool_options.socket_timeout == 30
        store.client.close()
        return
    template, _, port, drop = _server_url(kind, request)
    try:
        store = open_store(template.split("?", 1)[0].format(port=port))
        with store.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if kind == "postgresql":
                params = raw.info.get_parameters()
                assert params["connect_timeout"] == "10"
                assert params["tcp_user_timeout"] == "30000"
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "30s"
            else:
                assert (raw.connect_timeout, raw._read_timeout, raw._write_timeout) == \
                    (10, 30, 30)
        store.engine.dispose()
    finally:
        drop()


# -- SQLite and the file store: the same moments, without a proxy ---------------------------------

# when, recovers, --queued, before the launch, {phase: action}, after the run ("take" takes the
# store away, "give" gives it back); at the start only --queued goes on (see preflight tests)
LOCAL_SCENARIOS = {
    "start-no": ("start", "no", True, "take", {}, "give"),
    "start-yes": ("start", "yes", True, "take", {0: "give"}, None),
    "mid-yes": ("mid", "yes", False, None, {0: "take", 1: "give"}, None),
    "mid-no": ("mid", "no", False, None, {0: "take"}, "give"),
    "end-no": ("end", "no", False, None, {2: "take"}, "give"),
}


def _local_run(kind: str, scenario: str, take, give, url: str, script_dir: Path,
               tmp_path: Path, ref: dict) -> None:
    when, recovers, queued, before, actions, after = LOCAL_SCENARIOS[scenario]
    act = {"take": take, "give": give}
    if before:
        act[before]()
    try:
        status, err = run_script(script_dir, url, tmp_path,
                                 {k: act[name] for k, name in actions.items()}, queued)
    finally:
        give()  # whatever happened, the store is back for `labbook sync` and the checks
    check_outcome(kind, when, recovers, status, err, url, ref)


# SQLite is taken away by another connection holding the write lock longer than the busy timeout
@pytest.mark.parametrize("scenario", sorted(LOCAL_SCENARIOS))
def test_sqlite_locked_longer_than_the_busy_timeout(scenario, script_dir, tmp_path):
    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    ref = reference("sqlite", f"sqlite:///{ref_dir / 'ref.db'}?timeout=0.3", script_dir,
                    ref_dir)
    path = tmp_path / "lab.db"
    url = f"sqlite:///{path}?timeout=0.3"
    holder: list[sqlite3.Connection] = []

    def lock():
        con = sqlite3.connect(path, isolation_level=None, timeout=10)
        con.execute("BEGIN EXCLUSIVE")
        holder.append(con)

    def unlock():
        while holder:
            con = holder.pop()
            con.execute("COMMIT")
            con.close()

    _local_run("sqlite", scenario, lock, unlock, url, script_dir, tmp_path, ref)


# the file store: its directory made unwritable (or, as root, for whom permissions do not
# count, a file put where the directory was)
@pytest.mark.parametrize("scenario", sorted(LOCAL_SCENARIOS))
def test_file_store_directory_unwritable(scenario, script_dir, tmp_path):
    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    ref = reference("file", f"file://{ref_dir / 'runs'}", script_dir, ref_dir)
    runs = tmp_path / "runs"
    url = f"file://{runs}"
    as_root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    # before the run the store itself is away; during the run, the run's own directory
    target = runs if LOCAL_SCENARIOS[scenario][0] == "start" else runs / "1"
    away = target.with_name(target.name + ".away")

    def take_away():
        if as_root or not target.exists():
            if target.exists():
                target.rename(away)
            target.write_text("not a directory")
        else:
            target.chmod(0o500)

    def give_back():
        if target.is_file():
            target.unlink()
            if away.exists():
                away.rename(target)
        elif target.exists():
            target.chmod(0o755)

    _local_run("file", scenario, take_away, give_back, url, script_dir, tmp_path, ref)


# -- what is no outage ---------------------------------------------------------------------------

def test_a_taken_id_is_refused_not_journaled(script_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    status, err = run_script(script_dir, url, tmp_path)
    assert status == 0, err
    assert "alembic" not in err  # a new database is made quietly
    store, run_id = only_run(url)
    before = run_fields(store, run_id)
    env = dict(os.environ, OUTAGE_RESOURCE=str(script_dir / "data.txt"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script_dir / "exp.py"), "with", "n=1",
                           "--store", url, "--id", str(run_id), "--no-system-metrics"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"Error: A run with id {run_id} already exists in" in done.stderr
    assert not LOUD.search(done.stderr) and "could not reach" not in done.stderr
    assert not Path(os.environ["LABBOOK_FAILURE_DIR"]).exists()
    store, same_id = only_run(url)
    assert same_id == run_id and run_fields(store, run_id) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_are_quiet_unless_labbook_logs_at_debug(kind, request, tmp_path, caplog):
    import logging

    from labbook.stores.sql import SqlStore

    drops = []

    def new_database(name):
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}"
        template, _, port, drop = _server_url(kind, request)
        drops.append(drop)
        return template.split("?", 1)[0].format(port=port)

    try:
        with caplog.at_level(logging.INFO):
            SqlStore(new_database("quiet.db")).check()
        assert not [r for r in caplog.records if r.name.startswith("alembic")]
        caplog.clear()
        labbook_log = logging.getLogger("labbook")
        level = labbook_log.level
        labbook_log.setLevel(logging.DEBUG)
        try:
            with caplog.at_level(logging.INFO):
                SqlStore(new_database("told.db")).check()
        finally:
            labbook_log.setLevel(level)
        assert [r for r in caplog.records if r.name.startswith("alembic")]
    finally:
        for drop in drops:
            drop()


def test_a_run_into_a_new_postgresql_database_prints_no_migration_lines(
        request, script_dir, tmp_path):
    template, _, port, drop = _server_url("postgresql", request)
    try:
        status, err = run_script(script_dir, template.format(port=port), tmp_path)
    finally:
        drop()
    assert status == 0, err
    assert "alembic" not in err and "Running upgrade" not in err, err


def test_a_journal_of_run_n_of_one_store_never_lands_in_another(tmp_path, capsys, caplog):
    from labbook.cli.main import main
    from labbook.observers.queued import write_journal
    from labbook.stores import open_store

    failure_dir = tmp_path / "failed"
    directory, _ = write_journal(
        str(failure_dir), 1, [("completed_event", {"stop_time": None, "result": 3})],
        observer="FileStorageObserver", store=f"file://{tmp_path / 'runs'}")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["sync", str(failure_dir), "--store", other]) == 0
    assert "1 journal(s) of runs of other stores left as they are." in capsys.readouterr().out
    assert f"holds events of run 1 of file://{tmp_path / 'runs'}, not of {other}" in caplog.text
    assert open_store(other).find() == []
    assert not os.path.exists(os.path.join(directory, "delivered.json"))


# -- the durable wrapper in one process ------------------------------------------------------------

class _FlakyStore:
    """A file store that can be taken away (refuses) or frozen (a call blocks until released)."""

    def __init__(self, path):
        from labbook.stores.file import FileStore

        self.inner = FileStore(path)
        self.url = f"file://{path}"
        self.down = False
        self.frozen = None  # a threading.Event a call waits for

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            from labbook.errors import StoreConnectionError

            if self.frozen is not None:
                self.frozen.wait()
            if self.down:
                raise StoreConnectionError("the store is away")
            return attr(*args, **kwargs)
        return call


def _experiment(observer, body):
    from labbook import Experiment

    ex = Experiment("durable")
    ex.observers.append(observer)
    ex.main(body)
    return ex


def test_a_store_back_in_the_middle_of_a_run_gets_everything(tmp_path, monkeypatch, caplog):
    import logging

    import labbook
    from labbook.observers.store_observer import StoreObserver

    monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], "BACKOFF", 0.01)
    monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], "MAX_BACKOFF", 0.05)
    store = _FlakyStore(tmp_path / "runs")
    observer = StoreObserver(store)
    seen = []

    def body(_run):
        seen.append(list(_run.observers))
        for i in range(20):
            _run.log_scalar("x", i, i)
            if i == 5:
                store.down = True
                time.sleep(0.2)  # beats fail meanwhile
            if i == 15:
                store.down = False
                time.sleep(0.2)
        return 3

    with caplog.at_level(logging.WARNING):
        run = _experiment(observer, body).run(options={"--beat-interval": 0.05,
                                                       "--no-system-metrics": True})
    assert seen == [[observer]]  # the run's observers are the user's objects (Sacred code)
    assert run.status == "COMPLETED"
    assert "file://" in caplog.text and "the store is away" in caplog.text
    assert "answers again" in caplog.text and not LOUD.search(caplog.text)
    assert "failed in" not in caplog.text  # never disabled
    doc = store.inner.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 3
    assert store.inner.history(run._id)["x"]["steps"] == list(range(20))


def test_a_call_that_never_returns_does_not_hold_the_run(tmp_path, monkeypatch, caplog):
    import json
    import logging
    import threading

    import labbook
    from labbook.observers.queued import replay
    from labbook.observers.store_observer import StoreObserver

    for key, value in (("SYNC_WAIT", 0.2), ("MAX_WAIT", 0.2), ("BACKOFF", 0.01)):
        monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], key, value)
    store = _FlakyStore(tmp_path / "runs")
    observer = StoreObserver(store)
    release = threading.Event()

    def body(_run):
        _run.log_scalar("x", 1, 0)
        time.sleep(0.1)
        store.frozen = release  # from now on every call hangs
        _run.log_scalar("x", 2, 1)
        time.sleep(0.4)  # beats pile up meanwhile
        return 4

    with caplog.at_level(logging.WARNING):
        run = _experiment(observer, body).run(options={"--beat-interval": 0.05,
                                                       "--no-system-metrics": True})
    assert run.status == "COMPLETED" and run.result == 4  # the run did not hang
    assert "has not answered within 0.2 s" in caplog.text
    [line] = [m for m in map(LOUD.search, caplog.text.splitlines()) if m]
    journal = Path(line["where"])
    records = [json.loads(line) for line in (journal / "events.jsonl").read_text().splitlines()]
    assert records[0]["in_doubt"] is True  # it was under way when the run ended
    # the newest heartbeat replaced those waiting behind the hung call
    assert sum(r["event"] == "heartbeat_event" for r in records[1:]) == 1
    store.frozen = None
    release.set()  # the hung call returns: the worker notes whether it landed
    deadline = time.monotonic() + 10
    while not (journal / "in_flight.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (journal / "in_flight.json").exists()
    replay(line["dir"], line["url"])
    doc = store.inner.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 4
    assert store.inner.history(run._id)["x"]["steps"] == [0, 1]  # once each


def _slowed(store, seconds, calls):
    """``store``'s heartbeats and points take ``seconds`` each; ``calls`` gets their ends."""
    def slow(name):
        inner = getattr(store.inner, name)

        def call(*args, **kwargs):
            time.sleep(seconds)
            result = inner(*args, **kwargs)
            calls.append((name, time.monotonic()))
            return result
        return call
    store.inner.heartbeat = slow("heartbeat")
    store.inner.append_metrics = slow("append_metrics")


def test_the_last_beat_is_not_waited_for_alone_yet_stored_before_the_run_returns(
        tmp_path, monkeypatch):
    import threading

    from labbook.observers.durable import DurableObserver
    from labbook.observers.store_observer import StoreObserver

    store = _FlakyStore(tmp_path / "runs")
    stored: list = []
    _slowed(store, 0.3, stored)
    puts = []
    put = DurableObserver._put

    def timed_put(self, event, kwargs):
        start = time.monotonic()
        try:
            return put(self, event, kwargs)
        finally:
            if threading.current_thread() is threading.main_thread():
                puts.append((event, start, time.monotonic()))
    monkeypatch.setattr(DurableObserver, "_put", timed_put)

    def body(_run):
        for i in range(10):
            _run.log_scalar("x", i, i)
        _run.info["last"] = "seen"
        return 5

    started = time.monotonic()
    run = _experiment(StoreObserver(store), body).run(options={"--no-system-metrics": True})
    returned = time.monotonic()
    # the last beat (points, then heartbeat) is queued without waiting for the slow store...
    last_beat = [(event, end - start) for event, start, end in puts
                 if event in ("log_metrics", "heartbeat_event")]
    assert [event for event, _ in last_beat] == ["log_metrics", "heartbeat_event"]
    assert all(took < 0.25 for _, took in last_beat), last_beat
    # ... and the end event waits for it: everything is stored before ex.run() returns
    [(_, _, completed_put_end)] = [p for p in puts if p[0] == "completed_event"]
    assert [name for name, _ in stored] == ["append_metrics", "heartbeat"]
    assert all(end <= completed_put_end <= returned for _, end in stored)
    assert returned - started >= 0.6
    doc = store.inner.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 5 and doc["info"]["last"] == "seen"
    assert store.inner.history(run._id)["x"]["steps"] == list(range(10))


def test_a_store_lost_during_the_last_beat_loses_nothing(tmp_path, monkeypatch, caplog):
    import json
    import logging

    import labbook
    from labbook.observers.queued import replay
    from labbook.observers.store_observer import StoreObserver

    for key, value in (("SYNC_WAIT", 0.3), ("MAX_WAIT", 0.3), ("BACKOFF", 0.01),
                       ("MAX_BACKOFF", 0.05)):
        monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], key, value)
    store = _FlakyStore(tmp_path / "runs")

    def body(_run):
        for i in range(10):
            _run.log_scalar("x", i, i)
        store.down = True  # gone before the last beat
        return 6

    with caplog.at_level(logging.WARNING):
        run = _experiment(StoreObserver(store), body).run(
            options={"--no-system-metrics": True})
    assert run.status == "COMPLETED" and run.result == 6
    [line] = [m for m in map(LOUD.search, caplog.text.splitlines()) if m]
    journal = Path(line["where"])
    records = [json.loads(r) for r in (journal / "events.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["log_metrics", "heartbeat_event", "completed_event"]
    store.down = False
    replay(line["dir"], line["url"])
    doc = store.inner.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 6
    assert store.inner.history(run._id)["x"]["steps"] == list(range(10))


def test_the_pools_outage_tracebacks_stay_out_of_the_runs_output(tmp_path):
    # a failed rollback during an outage is logged by SQLAlchemy's pool with a traceback;
    # without configured logging Python printed it to stderr, into the run's captured output
    script = (
        "import logging, sys\n"
        "from labbook.stores.sql.store import SqlStore\n"
        f"SqlStore('sqlite:///{tmp_path / 'x.db'}').check()\n"
        "pool = logging.getLogger('sqlalchemy.pool.impl.QueuePool')\n"
        "pool.error('Exception during reset or similar')\n"
        "logging.basicConfig(stream=sys.stdout)\n"
        "pool.error('seen by the program\\'s own handler')\n"
        # Sacred's default logging (a stderr handler on the root logger) sees the record,
        # as one line: the driver's traceback is dozens of lines per failed rollback
        "try:\n"
        "    raise TimeoutError('timed out')\n"
        "except TimeoutError:\n"
        "    pool.error('Exception during reset or similar', exc_info=True)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "seen by the program's own handler" in proc.stdout
    assert proc.stdout.splitlines()[-1] == ("ERROR:sqlalchemy.pool.impl.QueuePool:Exception "
                                            "during reset or similar: TimeoutError: timed out")
    assert "Traceback" not in proc.stdout
