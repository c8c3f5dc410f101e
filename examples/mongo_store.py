#!/usr/bin/env python
"""Record runs into MongoDB with MongoObserver, then read them back with ``labbook.Api``.

The documents are the ones Sacred's MongoObserver writes, so Omniboard shows these runs
(``omniboard -m localhost:27017:labbook_example``): each metric is one document of the
``metrics`` collection, whole up to 82,241 points and summarised past that so Omniboard's plot
and last/max/min columns cover all of it; the sampled ``system.*`` metrics are in
``system_metrics``, apart from the metrics Omniboard lists. The
server comes from ``$LABBOOK_EXAMPLE_MONGO_URL`` (default
``mongodb://localhost:27017/labbook_example``; the URL's path names the database). Needs
pymongo (``pip install "labbook[mongo]"``) and a running server (docs/stores_mongo.md).

    python examples/mongo_store.py
    python examples/mongo_store.py with lr=0.3
    python examples/mongo_store.py runs              # read the runs back
    labbook ls mongodb://localhost:27017/labbook_example

Any script records into MongoDB with Sacred's ``-m DB`` (``-m labbook_example``, or
``-m mongodb://localhost:27017/labbook_example``) or with ``--store URL``.
"""
import os

from labbook import Api, Experiment
from labbook.observers import MongoObserver

MONGO_URL = os.environ.get("LABBOOK_EXAMPLE_MONGO_URL",
                           "mongodb://localhost:27017/labbook_example")

ex = Experiment("mongo_store")
# the same as MongoObserver(url="mongodb://localhost:27017", db_name="labbook_example")
ex.observers.append(MongoObserver(url=MONGO_URL))


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    epochs = 10


@ex.command(unobserved=True)
def runs():
    """List the runs of this experiment in MongoDB, with their summaries."""
    with Api(MONGO_URL) as api:  # the same URL for writing and reading
        stored = api.runs(experiment="mongo_store", order="_id")
        print(f"{len(stored)} run(s) of mongo_store in MongoDB")
        for run in stored:
            print(f"  run {run.id}: {run.status} lr={run.config.lr} "
                  f"accuracy={run.summary['accuracy']:.4f} ({len(run.history())} steps)")


@ex.automain
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
        _run.log_scalar("accuracy", 1 - loss, epoch)
    print(f"run {_run._id}: accuracy {1 - loss:.4f}")
    return round(1 - loss, 4)
