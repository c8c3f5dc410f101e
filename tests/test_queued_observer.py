"""QueuedObserver: retries in the background, journals what cannot be delivered, replays."""
import json
import logging
import threading
import time

import pytest

from labbook import Experiment
from labbook.observers import FileStorageObserver, QueuedObserver
from labbook.observers.queued import replay, write_journal
from labbook.stores import open_store
from recording import RecordingObserver


class Flaky(RecordingObserver):
    """Fails the first ``failures`` deliveries of every queued event."""

    def __init__(self, failures):
        super().__init__()
        self.failures = failures
        self.attempts = {}

    def _record(self, event, **kwargs):
        n = self.attempts[event] = self.attempts.get(event, 0) + 1
        if event not in ("started_event", "join") and n <= self.failures:
            raise ConnectionError("store is down")
        super()._record(event, **kwargs)


class Dead(RecordingObserver):
    def _record(self, event, **kwargs):
        raise ConnectionError("store is down")


def make(observer, body=None):
    ex = Experiment("queued")
    ex.add_config(a=1)
    ex.observers.append(observer)

    @ex.main
    def main(a, _run):
        _run.log_scalar("loss", 0.5)
        _run.log_scalar("loss", 0.25)
        if body:
            body()
        return a

    return ex


def test_retries_deliver_everything_in_order():
    inner = Flaky(failures=2)
    run = make(QueuedObserver(inner, backoff=0.01)).run(options={"--no-system-metrics": True})
    assert run.status == "COMPLETED"
    assert inner.events() == ["started_event", "log_metrics", "heartbeat_event",
                              "completed_event", "join"]
    assert inner.last("log_metrics")["metrics_by_name"]["loss"]["values"] == [0.5, 0.25]


def test_user_code_does_not_wait_for_a_blocked_store():
    release = threading.Event()
    blocked = threading.Event()

    class Slow(RecordingObserver):
        def heartbeat_event(self, **kwargs):
            blocked.set()
            release.wait(10)
            super().heartbeat_event(**kwargs)

    inner = Slow()
    seen = []

    def body():
        # The first heartbeat is stuck in the store; the run keeps going regardless.
        assert blocked.wait(10)
        seen.append("ran while the store was blocked")
        release.set()

    ex = make(QueuedObserver(inner), body)
    ex.run(options={"--beat-interval": 0.05, "--no-system-metrics": True})
    assert seen == ["ran while the store was blocked"]
    assert inner.events()[-2:] == ["completed_event", "join"]


def test_dead_store_journals_and_sync_replays_idempotently(tmp_path, caplog):
    failure_dir = tmp_path / "failed"
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"\x00\x01weights")

    def body():
        from labbook.context import current_run

        current_run().add_artifact(str(artifact))

    observer = QueuedObserver(Dead(), failure_dir=failure_dir, max_wait=0.3, backoff=0.01)
    with caplog.at_level(logging.WARNING):
        run = make(observer, body).run(options={"--no-system-metrics": True})
    assert run.status == "COMPLETED" and run.result == 1
    assert "5 events of this run (no id yet) (2 metric points) could not reach Dead; they " \
        "wait in " in caplog.text
    assert f"labbook sync {failure_dir} --store URL" in caplog.text
    journals = list(failure_dir.iterdir())
    assert len(journals) == 1
    artifact.unlink()  # the journal kept its own copy

    target = tmp_path / "store"
    [(name, run_id, delivered)] = replay(failure_dir, f"file://{target}")
    assert run_id == 1 and delivered >= 5
    store = open_store(str(target))
    doc = store.get(1)
    assert doc["status"] == "COMPLETED" and doc["config"]["a"] == 1
    assert store.history(1)["loss"]["values"] == [0.5, 0.25]
    assert store.open_artifact(1, "model.bin").read() == b"\x00\x01weights"
    assert replay(failure_dir, f"file://{target}") == [(name, 1, 0)]
    assert sorted(p.name for p in target.iterdir() if p.name.isdigit()) == ["1"]
    assert json.loads((target / "1" / "run.json").read_text())["artifacts"] == ["model.bin"]


def test_labbook_sync_command(tmp_path, capsys):
    from labbook.cli.main import main

    failure_dir = tmp_path / "failed"
    make(QueuedObserver(Dead(), failure_dir=failure_dir, max_wait=0.2, backoff=0.01)).run(
        options={"--no-system-metrics": True})
    target = tmp_path / "store"
    assert main(["sync", str(failure_dir), "--store", f"file://{target}"]) == 0
    out = capsys.readouterr().out
    assert "event(s) delivered to run 1 in file://" in out
    assert main(["sync", str(failure_dir), "--store", f"file://{target}"]) == 0
    assert ": 0 event(s) delivered to run 1" in capsys.readouterr().out
    assert main(["sync", str(tmp_path / "nope")]) == 1
    assert "is not a directory of failed-run journals" in capsys.readouterr().err


def test_queued_option_wraps_every_observer(tmp_path):
    ex = make(FileStorageObserver(tmp_path))
    run = ex.run(options={"--queued": True, "--no-system-metrics": True})
    assert [type(o).__name__ for o in run.observers] == ["QueuedObserver"]
    assert open_store(str(tmp_path)).get(1)["status"] == "COMPLETED"


# -- an event still being sent when join() gives up (delivered or journaled, never both) -------

class SlowFileObserver(FileStorageObserver):
    """A file store whose ``slow`` event takes ``seconds``; counts what it really stored."""

    def __init__(self, basedir, slow, seconds):
        super().__init__(basedir)
        self.slow, self.seconds = slow, seconds
        self.stored = []

    def _store(self, event, *args, **kwargs):
        if event == self.slow:
            time.sleep(self.seconds)
        returned = getattr(FileStorageObserver, event)(self, *args, **kwargs)
        self.stored.append(event)
        return returned

    def started_event(self, **kwargs):
        return self._store("started_event", **kwargs)

    def log_metrics(self, **kwargs):
        return self._store("log_metrics", **kwargs)

    def heartbeat_event(self, **kwargs):
        return self._store("heartbeat_event", **kwargs)

    def completed_event(self, **kwargs):
        return self._store("completed_event", **kwargs)


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions that escaped any thread during the test."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def journal_of(failure_dir):
    [directory] = [p for p in failure_dir.iterdir() if (p / "events.jsonl").exists()]
    records = [json.loads(line) for line in (directory / "events.jsonl").read_text().splitlines()]
    return directory, records


def test_event_still_being_sent_when_join_gives_up_is_stored_once(tmp_path, thread_errors,
                                                                  caplog):
    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    inner = SlowFileObserver(store_dir, "completed_event", 3.0)
    observer = QueuedObserver(inner, failure_dir=failure_dir, max_wait=0.3, backoff=0.01)
    with caplog.at_level(logging.INFO, logger="labbook.observers.queued"):
        started = time.monotonic()
        run = make(observer).run(options={"--no-system-metrics": True})
        assert time.monotonic() - started < 0.3 + 2.0  # join() did not wait for the call
        directory, records = journal_of(failure_dir)
        assert [(r["event"], r.get("in_doubt")) for r in records] == [("completed_event", True)]
        # the worker finishes the call after join() gave up and tells the journal
        wait_until(lambda: (directory / "in_flight.json").exists())
    assert thread_errors == []
    assert "still being sent" in caplog.text and "reached SlowFileObserver" in caplog.text
    assert json.loads((directory / "in_flight.json").read_text()) == {
        "0": {"delivered": True, "run_id": None}}
    assert inner.stored.count("completed_event") == 1

    assert replay(failure_dir, f"file://{store_dir}") == [(directory.name, 1, 0)]
    assert replay(failure_dir, f"file://{store_dir}") == [(directory.name, 1, 0)]
    store = open_store(str(store_dir))
    assert run.status == "COMPLETED" and store.get(1)["status"] == "COMPLETED"
    assert store.get(1)["result"] == 1
    assert store.history(1)["loss"]["values"] == [0.5, 0.25]
    assert sorted(p.name for p in store_dir.iterdir() if p.name.isdigit()) == ["1"]


def test_the_sync_command_skips_an_in_doubt_event_that_arrived(tmp_path, thread_errors, capsys):
    from labbook.cli.main import main

    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    inner = SlowFileObserver(store_dir, "completed_event", 1.0)
    make(QueuedObserver(inner, failure_dir=failure_dir, max_wait=0.2)).run(
        options={"--no-system-metrics": True})
    directory, _ = journal_of(failure_dir)
    wait_until(lambda: (directory / "in_flight.json").exists())
    assert main(["sync", str(failure_dir), "--store", f"file://{store_dir}"]) == 0
    assert ": 0 event(s) delivered to run 1" in capsys.readouterr().out
    assert inner.stored.count("completed_event") == 1 and thread_errors == []
    assert open_store(str(store_dir)).get(1)["status"] == "COMPLETED"


def test_in_doubt_event_that_failed_is_delivered_by_replay(tmp_path, thread_errors):
    class SlowThenDown(SlowFileObserver):
        def completed_event(self, **kwargs):
            time.sleep(self.seconds)
            raise ConnectionError("store went away during the call")

    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    inner = SlowThenDown(store_dir, "completed_event", 1.0)
    make(QueuedObserver(inner, failure_dir=failure_dir, max_wait=0.2)).run(
        options={"--no-system-metrics": True})
    directory, _ = journal_of(failure_dir)
    wait_until(lambda: (directory / "in_flight.json").exists())
    assert json.loads((directory / "in_flight.json").read_text())["0"]["delivered"] is False
    assert open_store(str(store_dir)).get(1)["status"] == "RUNNING"
    assert replay(failure_dir, f"file://{store_dir}") == [(directory.name, 1, 1)]
    assert open_store(str(store_dir)).get(1)["status"] == "COMPLETED"
    assert thread_errors == []


def test_unknown_outcome_of_in_doubt_metrics_is_checked_in_the_store(tmp_path, thread_errors):
    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    inner = SlowFileObserver(store_dir, "log_metrics", 1.0)
    make(QueuedObserver(inner, failure_dir=failure_dir, max_wait=0.2)).run(
        options={"--no-system-metrics": True})
    directory, records = journal_of(failure_dir)
    assert [r["event"] for r in records] == ["log_metrics", "heartbeat_event", "completed_event"]
    wait_until(lambda: (directory / "in_flight.json").exists())
    # as if the process had ended while the call was under way: nobody recorded its outcome
    (directory / "in_flight.json").unlink()
    assert replay(failure_dir, f"file://{store_dir}") == [(directory.name, 1, 2)]
    store = open_store(str(store_dir))
    assert store.history(1)["loss"]["values"] == [0.5, 0.25]  # not appended twice
    assert store.get(1)["status"] == "COMPLETED"
    assert thread_errors == []


def test_unknown_outcome_of_in_doubt_metrics_that_did_not_arrive(tmp_path):
    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    ex = make(FileStorageObserver(store_dir))
    ex.run(options={"--no-system-metrics": True})  # run 1, then its metrics are lost
    for name in ("metrics.jsonl", "metrics.json"):
        (store_dir / "1" / name).unlink()
    points = {"loss": {"steps": [0, 1], "values": [0.5, 0.25],
                       "timestamps": ["2024-01-01T00:00:00", "2024-01-01T00:00:01"]}}
    write_journal(str(failure_dir), 1, [("log_metrics", {"metrics_by_name": points,
                                                         "info": {}})], in_doubt=True)
    [(_, run_id, delivered)] = replay(failure_dir, f"file://{store_dir}")
    assert (run_id, delivered) == (1, 1)
    assert open_store(str(store_dir)).history(1)["loss"]["values"] == [0.5, 0.25]


@pytest.mark.parametrize("outcome_known", [True, False], ids=["outcome-known", "process-died"])
def test_in_doubt_start_is_not_stored_twice(tmp_path, thread_errors, outcome_known):
    store_dir, failure_dir = tmp_path / "store", tmp_path / "failed"
    inner = SlowFileObserver(store_dir, "started_event", 1.0)
    run = make(QueuedObserver(inner, failure_dir=failure_dir, max_wait=0.2, start_wait=0.1)).run(
        options={"--no-system-metrics": True})
    assert run.status == "COMPLETED" and run._id is None  # the store answered too late
    directory, records = journal_of(failure_dir)
    assert directory.name.startswith("run_unknown_")
    assert [r["event"] for r in records][0] == "started_event" and records[0]["in_doubt"]
    wait_until(lambda: (directory / "in_flight.json").exists())
    assert json.loads((directory / "in_flight.json").read_text())["0"] == {
        "delivered": True, "run_id": 1}
    if not outcome_known:
        (directory / "in_flight.json").unlink()  # found in the store by time, host, command
    [(_, run_id, delivered)] = replay(failure_dir, f"file://{store_dir}")
    assert run_id == 1 and delivered == len(records) - 1
    store = open_store(str(store_dir))
    assert sorted(p.name for p in store_dir.iterdir() if p.name.isdigit()) == ["1"]
    assert store.get(1)["status"] == "COMPLETED"
    assert store.history(1)["loss"]["values"] == [0.5, 0.25]
    assert thread_errors == []


def test_in_doubt_start_that_never_arrived_is_delivered(tmp_path):
    failure_dir, store_dir = tmp_path / "failed", tmp_path / "store"
    make(QueuedObserver(Dead(), failure_dir=failure_dir, max_wait=0.2, backoff=0.01)).run(
        options={"--no-system-metrics": True})
    directory, records = journal_of(failure_dir)
    # rewrite the journal as if the start had been under way when the run ended
    records[0]["in_doubt"] = True
    (directory / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    [(_, run_id, delivered)] = replay(failure_dir, f"file://{store_dir}")
    assert run_id == 1 and delivered == len(records)
    assert open_store(str(store_dir)).get(1)["status"] == "COMPLETED"


def test_worker_never_lets_an_exception_escape(tmp_path, thread_errors, caplog):
    class Bug(BaseException):
        """Not an Exception: it gets past the retries."""

    class Broken(RecordingObserver):
        def heartbeat_event(self, **kwargs):
            raise Bug("a bug in an observer")

    inner = Broken()
    with caplog.at_level(logging.ERROR, logger="labbook.observers.queued"):
        run = make(QueuedObserver(inner, max_wait=0.3, backoff=0.01,
                                  failure_dir=tmp_path / "failed")).run(
            options={"--no-system-metrics": True})
    assert run.status == "COMPLETED" and thread_errors == []
    assert "stopped unexpectedly" in caplog.text
    # the event the thread was delivering when it broke is journaled, not lost
    _, records = journal_of(tmp_path / "failed")
    assert [r["event"] for r in records][0] == "heartbeat_event"


# -- the start waits at most start_wait --------------------------------------------------------

def test_slow_start_does_not_hold_up_the_run(tmp_path, thread_errors, caplog):
    class SlowStart(RecordingObserver):
        def started_event(self, **kwargs):
            time.sleep(3.0)
            return super().started_event(**kwargs)

    inner = SlowStart(return_id=42)
    began = []
    before = time.monotonic()
    with caplog.at_level(logging.WARNING):
        run = make(QueuedObserver(inner, start_wait=0.3, max_wait=10,
                                  failure_dir=tmp_path / "failed"),
                   lambda: began.append(time.monotonic() - before)).run(
            options={"--no-system-metrics": True})
    assert began[0] < 0.3 + 2.0  # the main function did not wait for the store
    assert "did not record the start of the run within 0.3 s (start_wait)" in caplog.text
    assert run._id is None  # the answer came too late to decide the id
    # everything reached the store afterwards, the start first
    assert inner.events() == ["started_event", "log_metrics", "heartbeat_event",
                              "completed_event", "join"]
    assert not (tmp_path / "failed").exists() and thread_errors == []


def test_store_down_at_the_start_gets_everything_once_it_is_back(tmp_path, caplog):
    inner = Flaky(failures=3)
    inner.attempts = {}

    def flaky_start(**kwargs):
        n = inner.attempts["start"] = inner.attempts.get("start", 0) + 1
        if n <= 3:
            raise ConnectionError("store is down")
        return RecordingObserver.started_event(inner, **kwargs)

    inner.started_event = flaky_start
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        run = make(QueuedObserver(inner, backoff=0.05, start_wait=5,
                                  failure_dir=tmp_path / "failed")).run(
            options={"--no-system-metrics": True})
    assert time.monotonic() - started < 5  # the run did not wait after the first failure
    assert "could not record the start of the run (ConnectionError: store is down)" \
        in caplog.text
    assert run.status == "COMPLETED"
    assert inner.events() == ["started_event", "log_metrics", "heartbeat_event",
                              "completed_event", "join"]


def test_dead_store_at_the_start_journals_and_replay_delivers(tmp_path):
    failure_dir, target = tmp_path / "failed", tmp_path / "store"
    started = time.monotonic()
    run = make(QueuedObserver(Dead(), failure_dir=failure_dir, max_wait=0.3, backoff=0.01,
                              start_wait=5)).run(options={"--no-system-metrics": True})
    assert time.monotonic() - started < 0.3 + 2.0
    assert run.status == "COMPLETED"
    directory, records = journal_of(failure_dir)
    assert [r["event"] for r in records] == ["started_event", "log_metrics",
                                             "heartbeat_event", "completed_event"]
    assert not any(r.get("in_doubt") for r in records)
    [(_, run_id, delivered)] = replay(failure_dir, f"file://{target}")
    assert (run_id, delivered) == (1, 4)
    doc = open_store(str(target)).get(1)
    assert doc["status"] == "COMPLETED" and doc["config"]["a"] == 1 and doc["result"] == 1


def test_refusal_at_the_start_is_not_queued(tmp_path, caplog):
    from labbook.errors import ObserverError

    class Refuses(RecordingObserver):
        def started_event(self, **kwargs):
            raise ObserverError("this store does not take runs of this experiment")

    inner = Refuses()
    with caplog.at_level(logging.ERROR):
        run = make(QueuedObserver(inner, failure_dir=tmp_path / "failed")).run(
            options={"--no-system-metrics": True})
    assert run.status == "COMPLETED"
    assert "Observer QueuedObserver failed in started_event" in caplog.text
    assert not (tmp_path / "failed").exists()  # a refusal is not retried or journaled


def test_observer_is_reused_by_the_next_run(tmp_path):
    inner = RecordingObserver(return_id=None)
    observer = QueuedObserver(inner, failure_dir=tmp_path / "failed")
    ex = make(observer)
    ex.run(options={"--no-system-metrics": True})
    ex.run(options={"--no-system-metrics": True})
    assert inner.events() == ["started_event", "log_metrics", "heartbeat_event",
                              "completed_event", "join"] * 2


def test_queue_only_run_with_a_dead_store_is_journaled(tmp_path):
    failure_dir = tmp_path / "failed"
    make(QueuedObserver(Dead(), failure_dir=failure_dir, backoff=0.01)).run(
        options={"--queue": True})
    _, records = journal_of(failure_dir)
    assert [r["event"] for r in records] == ["queued_event"]
