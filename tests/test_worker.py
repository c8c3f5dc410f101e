"""``labbook worker``: queued runs executed by worker processes on a shared store.

Stores: every kind of tests/api/conftest.py but ``memory://``, which lives inside one process
(a worker and its children are separate processes). The many-workers test queues 200 runs on
the shared database servers and SQLite, 40 on the file store (``LABBOOK_TEST_WORKER_RUNS``
sets one number for all).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from labbook import Experiment
from labbook.stores import open_store
from tests.api.conftest import STORE_KINDS, server_databases  # noqa: F401 (a fixture)
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: memory:// is per process: workers and their children could not share it
WORKER_KINDS = sorted(k for k in STORE_KINDS if k != "memory")
#: runs queued for the four workers: every kind of database at full size, the file store less
RUNS = {kind: int(os.environ.get("LABBOOK_TEST_WORKER_RUNS", "40" if kind == "file" else "200"))
        for kind in WORKER_KINDS}

SCRIPT = '''
import json, os, time
from labbook import Experiment

ex = Experiment("wq")


@ex.config
def cfg():
    x = 1
    square = x * x
    hang = 0.0  # seconds to sleep, unless the run was re-queued before
    log = "executions.jsonl"


@ex.automain
def main(x, square, hang, log, _run):
    with open(log, "a") as fh:
        fh.write(json.dumps({"id": _run._id, "x": x, "pid": os.getpid(),
                             "requeues": _run.meta_info.get("requeues", 0)}) + "\\n")
    if hang and not _run.meta_info.get("requeues"):
        time.sleep(hang)
    _run.log_scalar("x", x)
    return {"x": x, "square": square}
'''


def queue_experiment() -> Experiment:
    """The script's experiment, defined in the test's process to queue its runs."""
    ex = Experiment("wq")

    @ex.config
    def cfg():
        x = 1  # noqa: F841
        square = x * x  # noqa: F841
        hang = 0.0  # noqa: F841
        log = "executions.jsonl"  # noqa: F841

    @ex.main
    def main(x, square, hang, log):
        raise AssertionError("only queued here")

    return ex


def queue(url: str, count: int = 1, **config) -> list:
    ex = queue_experiment()
    return [ex.run(config_updates=dict(config, x=i if "x" not in config else config["x"]),
                   options={"--store": url, "--queue": True, "--loglevel": "WARNING",
                            "--no-system-metrics": True, "--capture": "sys",
                            "--beat-interval": 0.5})._id
            for i in range(count)]


@pytest.fixture(params=WORKER_KINDS)
def worker_url(request, tmp_path) -> str:
    return STORE_KINDS[request.param](request, tmp_path)


@pytest.fixture
def script(tmp_path) -> str:
    path = tmp_path / "exp.py"
    path.write_text(SCRIPT)
    return str(path)


def start_worker(script: str, url: str, *args: str, cwd=None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from labbook.cli.main import main; sys.exit(main())",
         "worker", script, "--store", url, "--poll", "0.2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=cwd or os.path.dirname(script), env=env, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def executions(script: str) -> list[dict]:
    path = os.path.join(os.path.dirname(script), "executions.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def started(store, run_id) -> bool:
    doc = store.get(run_id) or {}
    return doc.get("status") == "RUNNING" and doc.get("start_time") is not None


def age_heartbeat(store, run_id) -> None:
    """What an hour without news of the run looks like (instead of waiting for DIED)."""
    store.update_run(run_id, {"heartbeat": dt.datetime.utcnow() - dt.timedelta(hours=1)})


def test_four_workers_execute_each_queued_run_once(request, worker_url, script):
    ids = queue(worker_url, RUNS[request.node.callspec.params["worker_url"]])
    workers = [start_worker(script, worker_url, "--idle-exit", "1", "--name", f"w{n}")
               for n in range(4)]
    for proc in workers:
        code, output = finish(proc, timeout=1200)  # 200 runs of a fresh process each
        assert code == 0, output[-3000:]
    done = executions(script)
    assert sorted(e["id"] for e in done) == sorted(ids)  # each run once, none twice, none left
    store = open_store(worker_url)
    try:
        workers_seen = set()
        for x, run_id in enumerate(ids):
            doc = store.get(run_id)
            assert doc["status"] == "COMPLETED", (run_id, doc.get("fail_trace"))
            assert doc["config"]["x"] == x and doc["config"]["square"] == x * x
            assert doc["result"] == {"x": x, "square": x * x}
            assert doc["meta"]["config_updates"]["x"] == x
            assert doc["queue_time"] is not None and doc["start_time"] >= doc["queue_time"]
            assert store.history(run_id)["x"]["values"] == [x]
            workers_seen.add(doc["meta"]["worker"])
        assert workers_seen <= {"w0", "w1", "w2", "w3"}
        assert not store.find({"status": {"$ne": "COMPLETED"}})
    finally:
        store.close()


def test_a_killed_workers_run_is_queued_again_and_completed(worker_url, script):
    [run_id] = queue(worker_url, 1, x=7, hang=600)
    store = open_store(worker_url)
    try:
        first = start_worker(script, worker_url, "--name", "doomed")
        wait_for(lambda: executions(script))  # the main function is running
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its child: a machine gone
        first.communicate(timeout=30)
        age_heartbeat(store, run_id)
        code, output = finish(start_worker(script, worker_url, "--idle-exit", "1",
                                           "--name", "rescuer"))
        assert code == 0, output[-3000:]
        assert f"run {run_id} its heartbeat stopped" in output
        doc = store.get(run_id)
        assert doc["status"] == "COMPLETED", doc.get("fail_trace")
        assert doc["result"] == {"x": 7, "square": 49}
        assert doc["meta"]["requeues"] == 1 and doc["meta"]["worker"] == "rescuer"
        # the second execution replaced the first: its points only
        assert store.history(run_id)["x"]["values"] == [7]
        assert [e["requeues"] for e in executions(script)] == [0, 1]
    finally:
        store.close()


def test_a_run_dead_too_often_fails_with_the_reason(worker_url, script):
    [run_id] = queue(worker_url, 1, x=3)
    store = open_store(worker_url)
    try:
        assert store.claim_queued("ghost", experiment="wq")["_id"] == run_id
        age_heartbeat(store, run_id)
        code, output = finish(start_worker(script, worker_url, "--idle-exit", "0",
                                           "--max-requeues", "0"))
        assert code == 0, output[-3000:]
        doc = store.get(run_id)
        assert doc["status"] == "FAILED"
        trace = "".join(doc["fail_trace"])
        assert "heartbeat stopped" in trace and "--max-requeues 0" in trace
        assert executions(script) == []
    finally:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_sigterm_lets_the_current_run_finish(sqlite_url, script):
    first, second = queue(sqlite_url, 2, hang=2)
    store = open_store(sqlite_url)
    try:
        proc = start_worker(script, sqlite_url)
        running = wait_for(lambda: next((i for i in (first, second) if started(store, i)),
                                        None))
        proc.send_signal(signal.SIGTERM)
        code, output = finish(proc)
        assert code == 0, output[-3000:]
        assert "SIGTERM" in output
        assert store.get(running)["status"] == "COMPLETED"
        other = second if running == first else first
        assert store.get(other)["status"] == "QUEUED"  # not claimed after the signal
    finally:
        store.close()


def test_sigterm_twice_interrupts_the_run(sqlite_url, script):
    [run_id] = queue(sqlite_url, 1, hang=600)
    store = open_store(sqlite_url)
    try:
        proc = start_worker(script, sqlite_url)
        wait_for(lambda: started(store, run_id))
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        code, output = finish(proc, timeout=60)
        assert code == 3, output[-3000:]
        assert store.get(run_id)["status"] == "INTERRUPTED"
    finally:
        store.close()


def test_a_child_that_cannot_start_fails_the_run_not_the_worker(sqlite_url, script):
    first, second = queue(sqlite_url, 2)
    with open(script) as fh:
        text = fh.read()
    with open(script, "w") as fh:  # broken since the runs were queued, for the children
        fh.write(text.replace('ex = Experiment("wq")', 'ex = Experiment("wq")\n'
                              'if "LABBOOK_WORKER_RUN" in os.environ:\n'
                              '    raise SystemExit(5)'))
    code, output = finish(start_worker(script, sqlite_url, "--idle-exit", "0"))
    assert code == 0, output[-3000:]
    store = open_store(sqlite_url)
    try:
        for run_id in (first, second):
            doc = store.get(run_id)
            assert doc["status"] == "FAILED"
            assert "exited with status 5 before starting" in "".join(doc["fail_trace"])
    finally:
        store.close()


def test_config_changed_since_queueing_runs_the_stored_config(sqlite_url, script):
    [run_id] = queue(sqlite_url, 1, x=4)
    with open(script) as fh:
        text = fh.read()
    with open(script, "w") as fh:
        fh.write(text.replace("square = x * x", "square = x * x + 1"))
    code, output = finish(start_worker(script, sqlite_url, "--idle-exit", "0"))
    assert code == 0, output[-3000:]
    assert "differs from what the script gives now (square)" in output
    store = open_store(sqlite_url)
    try:
        doc = store.get(run_id)
        assert doc["status"] == "COMPLETED" and doc["result"] == {"x": 4, "square": 16}
    finally:
        store.close()


def test_clear_errors(tmp_path, sqlite_url, script):
    code, output = finish(start_worker(str(tmp_path / "missing.py"), sqlite_url,
                                       cwd=str(tmp_path)))
    assert code == 2 and "No experiment file" in output and "Traceback" not in output
    code, output = finish(start_worker(script, "postgresql://postgres@127.0.0.1:1/nowhere"))
    assert code != 0 and "127.0.0.1:1" in output and "Traceback" not in output
    code, output = finish(start_worker(script, sqlite_url, "--idle-exit", "0"))
    assert code == 0 and "nothing queued for experiment 'wq'" in output
    code, output = finish(start_worker(script, sqlite_url, "--concurrency", "0"))
    assert code == 2 and "--concurrency" in output


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_the_worker_heartbeats_a_claim_until_its_child_starts(kind, tmp_path, script):
    url = f"sqlite:///{tmp_path / 'runs.db'}" if kind == "sqlite" else f"file://{tmp_path / 'runs'}"
    [run_id] = queue(url, 1, x=2)
    with open(script) as fh:
        text = fh.read()
    with open(script, "w") as fh:  # a child slow to import, as one importing a big library
        fh.write(text.replace('ex = Experiment("wq")', 'ex = Experiment("wq")\n'
                              'if "LABBOOK_WORKER_RUN" in os.environ:\n'
                              '    time.sleep(3)'))
    store = open_store(url)
    try:
        proc = start_worker(script, url, "--idle-exit", "0")
        claimed = wait_for(lambda: (store.get(run_id) or {}).get("meta", {}).get("worker")
                           and store.get(run_id))
        first_beat = claimed["heartbeat"]
        later = wait_for(lambda: (lambda d: d if d["heartbeat"] != first_beat else None)(
            store.get(run_id)), timeout=30)
        assert later.get("start_time") is None and later["status"] == "RUNNING"
        assert later["heartbeat"] > first_beat
        code, output = finish(proc)
        assert code == 0, output[-3000:]
        doc = store.get(run_id)
        assert doc["status"] == "COMPLETED" and doc["result"] == {"x": 2, "square": 4}
    finally:
        store.close()


def test_max_runs_and_concurrency(sqlite_url, script):
    ids = queue(sqlite_url, 3, hang=1)
    code, output = finish(start_worker(script, sqlite_url, "--max-runs", "2",
                                       "--concurrency", "2"))
    assert code == 0, output[-3000:]
    assert "exiting after 2 run(s)" in output
    store = open_store(sqlite_url)
    try:
        statuses = sorted(store.get(i)["status"] for i in ids)
        assert statuses == ["COMPLETED", "COMPLETED", "QUEUED"]
    finally:
        store.close()
    # two children at once: the second was claimed before the first finished
    claims = [n for n, line in enumerate(output.splitlines()) if "claimed run" in line]
    first_end = next(n for n, line in enumerate(output.splitlines()) if "finished:" in line)
    assert len(claims) == 2 and claims[1] < first_end
