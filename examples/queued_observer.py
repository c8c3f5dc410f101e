#!/usr/bin/env python
"""QueuedObserver: a store that is down does not stop the run; nothing it missed is lost.

``QueuedObserver(observer, failure_dir=DIR)`` hands every event to a background thread that
retries the store. When the run ends it waits at most ``max_wait`` seconds, then appends what
it could not deliver to a journal under ``DIR`` and logs how to upload it later:
``labbook sync DIR --store URL``.

``TeamDatabase`` below stands for the team's database server while it is unreachable (a
MongoObserver whose server is down, a PostgreSQL behind a VPN that dropped): every call
raises ``ConnectionError``. (``SqlObserver(url)`` checks its URL when it is created, so a
database that is already down when the script starts fails there, before the run.) The run
completes anyway; the script then replays the journal into SQLite, as you would once the
server is back, and reads the run from there. The script works in a new temporary directory.

    python examples/queued_observer.py
"""
import os
import shlex
import subprocess
import sys
import tempfile

from labbook import Api, Experiment
from labbook.observers import QueuedObserver, RunObserver


class TeamDatabase(RunObserver):
    """An observer whose server cannot be reached: every event fails."""

    def _unreachable(self, *args, **kwargs):
        raise ConnectionError("db.example.org:5432: connection refused")

    started_event = heartbeat_event = log_metrics = completed_event = _unreachable


ex = Experiment("queued_observer")


@ex.config
def cfg():
    lr = 0.2  # learning rate of the toy training
    epochs = 5


@ex.main
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
    return round(1 - loss, 4)


def labbook_command(*args):
    """Run the ``labbook`` console script (through this Python, so no PATH is needed)."""
    print("$ labbook", shlex.join(args))
    proc = subprocess.run([sys.executable, "-m", "labbook.cli.main", *args],
                          capture_output=True, text=True, check=True)
    print(proc.stdout, end="")


def main():
    os.chdir(tempfile.mkdtemp(prefix="labbook-queued-"))
    print("working in", os.getcwd())
    # max_wait: how long the end of the run waits for the store (default 10 s)
    ex.observers.append(QueuedObserver(TeamDatabase(), failure_dir="failed_runs", max_wait=1))

    run = ex.run(options={"--no-system-metrics": True})
    print(f"the run finished anyway: {run.status}, result {run.result}")

    for journal in sorted(os.listdir("failed_runs")):
        files = sorted(os.listdir(os.path.join("failed_runs", journal)))
        print(f"journal failed_runs/{journal}: {files}")

    # the server is back (here: a SQLite file stands in for it); upload what it missed
    url = "sqlite:///recovered.db"
    labbook_command("sync", "failed_runs", "--store", url)
    labbook_command("sync", "failed_runs", "--store", url)  # again: nothing is sent twice

    with Api(url) as api:
        stored = api.runs(experiment="queued_observer")[0]
        losses = [round(row["loss"], 4) for row in stored.history("loss", pandas=False)]
        print(f"run {stored.id} in {url}: {stored.status}, lr={stored.config.lr}, "
              f"loss {losses}")


if __name__ == "__main__":
    main()
