#!/usr/bin/env python
"""``labbook sync SRC DST``: copy the runs of one store into another, incrementally.

Three runs are recorded into a file store (a directory, as on a cluster without a database),
copied into SQLite with ``labbook sync``, then a fourth run is recorded and a second sync copies
only that one. Every copy remembers where it came from (``meta.synced_from``), which the script
prints after reading the SQLite store with ``labbook.Api``. The script works in a new temporary
directory. The same works between any two stores (file, SQLite, PostgreSQL, MariaDB, MongoDB).

    python examples/store_sync.py

From the shell, after recording runs with ``python train.py -F runs``::

    labbook sync runs sqlite:///team.db
    labbook ls sqlite:///team.db
"""
import os
import shlex
import subprocess
import sys
import tempfile

from labbook import Api, Experiment

ex = Experiment("store_sync")


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    epochs = 10


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
    os.chdir(tempfile.mkdtemp(prefix="labbook-sync-"))
    print("working in", os.getcwd())
    options = {"--store": "runs", "--no-system-metrics": True, "--loglevel": "WARNING"}
    team_db = "sqlite:///team.db"

    for lr in (0.05, 0.1, 0.2):
        ex.run(config_updates={"lr": lr}, options=options)
    labbook_command("sync", "runs", team_db)

    ex.run(config_updates={"lr": 0.4}, options=options)
    labbook_command("sync", "runs", team_db)  # only the new run is copied

    with Api(team_db) as api:
        for run in api.runs(order="_id"):
            origin = run.meta["synced_from"]
            points = len(run.history("loss", pandas=False))
            print(f"team.db run {run.id}: lr={run.config.lr} result={run.result} "
                  f"({points} loss points) copied from run {origin['id']} of {origin['store']}")


if __name__ == "__main__":
    main()
