#!/usr/bin/env python
"""Choose the store by its URL: ``--store URL`` or ``$LABBOOK_STORE``, whatever kind it is.

The script itself names no observer: the URL picks it (a directory is the file store,
``sqlite:///`` / ``postgresql://`` / ``mysql://`` the SQL store, ``mongodb://`` MongoDB).
``$LABBOOK_STORE`` applies to every run that has no observer of its own; without either,
nothing is recorded (with Sacred's warning). The same URL reads the runs back.

    python examples/store_by_url.py --store sqlite:///labbook.db
    python examples/store_by_url.py --store runs          # a directory: the file store
    LABBOOK_STORE=sqlite:///labbook.db python examples/store_by_url.py
    python examples/store_by_url.py                       # no store: nothing is recorded
    labbook ls sqlite:///labbook.db

From Python: ``ex.run(options={"--store": url})``.
"""
from labbook import Experiment

ex = Experiment("store_by_url")


@ex.config
def cfg():
    steps = 3  # how many values to log


@ex.automain
def main(steps, _run):
    for step in range(steps):
        _run.log_scalar("value", step * 10, step)
    stores = [observer.store.url for observer in _run.observers]
    print("recording into:", ", ".join(stores) or "nothing")
    return steps
