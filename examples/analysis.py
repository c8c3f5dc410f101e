"""Reading runs back: filter, tabulate, look at a history, compare in HTML.

Records four runs of a toy training loop in a temporary file store, then analyses them with
``labbook.Api`` the way a notebook would. Run it as::

    python examples/analysis.py

It prints the selected runs, a DataFrame and where the comparison page was written.
"""
from __future__ import annotations

import os
import tempfile

from labbook import Api, Experiment, compare_runs
from labbook.observers import FileStorageObserver

ex = Experiment("analysis_demo")


@ex.config
def config():
    lr = 0.1  # learning rate of the toy "training"
    epochs = 20


@ex.main
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
        _run.log_scalar("accuracy", 1 - loss, epoch)
    if lr >= 0.3:
        _run.set_tag("fast")
    return round(1 - loss, 4)


def main() -> None:
    workdir = tempfile.mkdtemp(prefix="labbook-analysis-")
    store = os.path.join(workdir, "runs")
    ex.observers.append(FileStorageObserver(store))
    for lr in (0.05, 0.1, 0.3, 0.5):
        ex.run(config_updates={"lr": lr}, options={"--no-system-metrics": True})

    api = Api(store)
    # summary.* filters and orders are evaluated by the API on each run's last metric values
    good = api.runs("status = 'COMPLETED' and summary.accuracy > 0.9",
                    order="-summary.accuracy")
    print("runs with accuracy > 0.9:", [run.id for run in good])
    print("tagged fast:", [run.id for run in api.runs("tags contains 'fast'", order="_id")])

    frame = api.runs(order="_id").to_dataframe()
    print(frame[["id", "config.lr", "summary.accuracy"]].round(4).to_string(index=False))

    best = good[0]
    history = best.history(["loss"], samples=5)
    print(f"run {best.id} loss at steps {history['_step'].tolist()}")

    report = os.path.join(workdir, "comparison.html")
    compare_runs(*api.runs(order="_id"), path=report)
    print("comparison written to", report)


if __name__ == "__main__":
    main()
