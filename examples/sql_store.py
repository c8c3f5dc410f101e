#!/usr/bin/env python
"""Record runs into SQLite with the SQL store, then read them back with ``labbook.Api``.

Every run goes to the database named by ``-s URL`` (Sacred's ``--sql``, which attaches
``SqlObserver(URL)``); without it, the option hook below picks ``sqlite:///labbook.db``, a file
in the current directory. PostgreSQL and MariaDB URLs work the same (docs/stores_sql.md). In
your own code, ``ex.observers.append(SqlObserver(url))`` does what ``-s URL`` does.

    python examples/sql_store.py                            # into ./labbook.db
    python examples/sql_store.py with lr=0.3
    python examples/sql_store.py with lr=0.5 -s sqlite:///other.db
    python examples/sql_store.py runs                       # read ./labbook.db back
    labbook ls sqlite:///labbook.db                         # the same from the shell
"""
from labbook import Api, Experiment

DEFAULT_URL = "sqlite:///labbook.db"

ex = Experiment("sql_store")


@ex.option_hook
def default_database(options):
    """Without -s URL, record into DEFAULT_URL (as if -s sqlite:///labbook.db was given)."""
    if not options["--sql"]:
        options["--sql"] = DEFAULT_URL


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    epochs = 10


# commands come before @ex.automain, which runs the command line as soon as it is applied
@ex.command(unobserved=True)
def runs(_run):
    """List the runs of this experiment that the database holds, and the best one's history."""
    url = _run.meta_info["options"]["--sql"]
    with Api(url) as api:
        stored = api.runs(experiment="sql_store", order="_id")
        print(f"{len(stored)} run(s) in {url}")
        if not stored:
            return
        for run in stored:
            print(f"  run {run.id}: {run.status} lr={run.config.lr} "
                  f"accuracy={run.summary['accuracy']:.4f}")
        best = api.runs(experiment="sql_store", order="-summary.accuracy")[0]
        history = best.history(["loss"], samples=4, pandas=False)
        print(f"best run {best.id}, loss at steps", [(row["_step"], round(row["loss"], 4))
                                                     for row in history])


@ex.automain
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
        _run.log_scalar("accuracy", 1 - loss, epoch)
    url = _run.meta_info["options"]["--sql"]  # the options are recorded with the run
    print(f"run {_run._id} recorded in {url}: accuracy {1 - loss:.4f}")
    return round(1 - loss, 4)
