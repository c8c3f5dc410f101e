"""QueuedObserver: retries in the background, journals what cannot be delivered, replays."""
import json
import logging
import threading

from labbook import Experiment
from labbook.observers import QueuedObserver
from labbook.observers.queued import replay
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
    assert "could not be delivered to Dead" in caplog.text
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
    from labbook.observers import FileStorageObserver

    ex = make(FileStorageObserver(tmp_path))
    run = ex.run(options={"--queued": True, "--no-system-metrics": True})
    assert [type(o).__name__ for o in run.observers] == ["QueuedObserver"]
    assert open_store(str(tmp_path)).get(1)["status"] == "COMPLETED"
