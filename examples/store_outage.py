#!/usr/bin/env python
"""A store that goes away in the middle of a run loses nothing.

The run records into SQLite. Halfway through, another program locks the database and keeps it
locked past the end of the run -- as a database server that went down would. The run does not
wait for it: the events the store cannot take are retried in the background, and at the end
they are journaled on disk, with one WARNING line giving the ``labbook sync`` command that
uploads them. Once the lock is gone, the script runs that command and reads the run back: every
point is there and the run is COMPLETED. The same holds for the file store, PostgreSQL,
MariaDB and MongoDB (docs/observers.md, "Outages: nothing lost").

    python examples/store_outage.py

The waits are shortened here so the example is quick; by default a run waits up to 30 s for
a store that does not answer and 10 s at its end (``labbook.SETTINGS.DELIVERY``).
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import labbook
from labbook import Api, Experiment

ex = Experiment("store_outage")
locks: list = []


@ex.config
def cfg():
    steps = 400  # points of the loss curve, half before and half during the outage


@ex.main
def train(steps, _run):
    for step in range(steps):
        if step == steps // 2:  # another program takes the database and does not give it back
            holder = sqlite3.connect("lab.db", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            locks.append(holder)
            print("the database is locked from step", step)
        _run.log_scalar("loss", 1 / (step + 1), step)
        time.sleep(0.002)  # some work; a heartbeat hands the points to the store every 0.1 s
    return "done"


def main():
    os.chdir(tempfile.mkdtemp(prefix="labbook-outage-"))
    print("working in", os.getcwd())
    delivery = labbook.SETTINGS.DELIVERY
    delivery.SYNC_WAIT, delivery.MAX_WAIT = 0.5, 0.5  # seconds (defaults: 30 and 10)
    delivery.FAILURE_DIR = "waiting"
    url = "sqlite:///lab.db?timeout=0.2"  # busy timeout 0.2 s (default 30 s)

    run = ex.run(options={"--store": url, "--beat-interval": 0.1, "--no-system-metrics": True})
    print("the run ended:", run.status, run.result)

    locks.pop().rollback()  # the database is back
    command = ["sync", "waiting", "--store", "sqlite:///lab.db"]
    print("$ labbook", " ".join(command))
    subprocess.run([sys.executable, "-m", "labbook.cli.main", *command], check=True)

    with Api("sqlite:///lab.db") as api:
        stored = api.run(run._id)
        loss = stored.history("loss", pandas=False)
        print(f"stored run {stored.id}: {stored.status}, result {stored.result!r}, "
              f"{len(loss)} of 400 loss points")


if __name__ == "__main__":
    main()
