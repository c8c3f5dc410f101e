"""DIED from each run's own heartbeat interval: a run killed hard shows DIED after 3 missed
beats of the interval it ran with (at least 5 s), not after a fixed minute; a run that recorded
no interval (Sacred's) keeps the 60 s rule. Answered the same by ``find`` on every store."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from labbook import Api
from labbook.stores import open_store
from labbook.stores.query import reported_status, silence_limit
from tests.api.conftest import STORE_KINDS, server_databases  # noqa: F401 (a fixture)
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    import time
    from labbook import Experiment

    ex = Experiment("victim")

    @ex.automain
    def main():
        time.sleep(600)
""")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    return env


def _wait(predicate, what: str, limit: float = 60.0):
    """Poll ``predicate`` until it gives a true value (a generous limit: never a timing test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_run_killed_with_sigkill_shows_died_within_seconds(tmp_path, kind):
    url = f"file://{tmp_path / 'runs'}" if kind == "file" else \
        f"sqlite:///{tmp_path / 'labbook.db'}"
    script = tmp_path / "victim.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "--beat-interval", "1",
                             "--capture", "no", "--store", url], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL)
    try:
        def beating():
            assert proc.poll() is None, "the experiment ended before it was killed"
            try:
                run = Api(url).runs()
                return run[0] if len(run) and run[0].heartbeat is not None else None
            except Exception:  # the store is still being created
                return None

        run = _wait(beating, "the first heartbeat")
        assert run.stored_status == "RUNNING" and run.doc["meta"]["beat_interval"] == 1.0
        assert run.status == "RUNNING"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # 3 missed beats of 1 s, floor 5 s: DIED in seconds, not after a minute
    assert silence_limit(run.doc) == 5.0
    died = _wait(lambda: Api(url).run(run.id).status == "DIED", "DIED", limit=30)
    assert died
    api = Api(url)
    assert api.run(run.id).stored_status == "RUNNING"  # the store is left as it was
    assert [v.id for v in api.runs("status = 'DIED'")] == [run.id]
    assert [v.id for v in api.runs("status = 'RUNNING'")] == []
    listing = subprocess.run([sys.executable, "-m", "labbook.cli.main", "ls", "--store", url],
                             capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split()[:3] == [str(run.id), "victim", "DIED"]


def _doc(name: str, heartbeat_age: float, meta: dict) -> dict:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return {"experiment": {"name": name}, "command": "main", "host": {}, "config": {},
            "meta": dict(meta, command="main"), "status": "RUNNING", "resources": [],
            "artifacts": [], "captured_out": "", "info": {}, "result": None,
            "start_time": now - dt.timedelta(seconds=heartbeat_age + 1),
            "heartbeat": now - dt.timedelta(seconds=heartbeat_age)}


@pytest.fixture(params=sorted(STORE_KINDS))
def store_url(request, tmp_path):
    return STORE_KINDS[request.param](request, tmp_path)


def test_died_filters_use_each_runs_interval_on_every_store(store_url):
    store = open_store(store_url)
    docs = [
        _doc("one-second-silent-8s", 8, {"beat_interval": 1.0}),       # > max(3, 5): DIED
        _doc("one-second-silent-2s", 2, {"beat_interval": 1.0}),       # RUNNING
        _doc("ten-seconds-silent-20s", 20, {"beat_interval": 10.0}),   # < 30: RUNNING
        _doc("ten-seconds-silent-40s", 40, {"beat_interval": 10.0}),   # > 30: DIED
        _doc("option-only-silent-8s", 8, {"options": {"--beat_interval": 2}}),  # > 6: DIED
        _doc("sacred-silent-40s", 40, {}),                             # < 60: RUNNING
        _doc("sacred-silent-90s", 90, {}),                             # > 60: DIED
        _doc("beats-off-silent-40s", 40, {"beat_interval": 0.0}),      # < 60: RUNNING
    ]
    ids = {store.create_run(doc): doc["experiment"]["name"] for doc in docs}

    def names(flt):
        return sorted(ids[d["_id"]] for d in store.find(flt))

    died = ["one-second-silent-8s", "option-only-silent-8s", "sacred-silent-90s",
            "ten-seconds-silent-40s"]
    assert names({"status": "DIED"}) == died
    assert names({"status": {"$in": ["DIED"]}}) == died
    assert names({"status": "RUNNING"}) == sorted(set(ids.values()) - set(died))
    assert names({"status": {"$ne": "DIED"}}) == sorted(set(ids.values()) - set(died))
    for doc in store.find():
        assert reported_status(doc) == ("DIED" if ids[doc["_id"]] in died else "RUNNING")
        assert doc["status"] == "RUNNING"  # what is stored is not changed
