#!/usr/bin/env python
"""Metrics (Sacred's log_scalar and wandb-style log), params, tags, a summary and artifacts,
recorded into a file store.

    python examples/metrics_and_artifacts.py -F runs
    labbook show 1 --store runs
"""
import json
import os
import tempfile

from labbook import Experiment

ex = Experiment("metrics_and_artifacts")


@ex.config
def cfg():
    epochs = 5  # passes over the data
    lr = 0.1  # learning rate


@ex.automain
def main(epochs, lr, _run):
    _run.log_params({"optimizer": "sgd", "batch_size": 32})
    _run.set_tag("baseline")
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("train.loss", loss, epoch)           # Sacred style
        _run.log({"val": {"loss": loss * 1.1, "acc": 1 - loss}})  # wandb style, global step
    _run.summary["best_acc"] = round(1 - loss, 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        with open(path, "w") as fh:
            json.dump({"weights": [lr, loss]}, fh)
        _run.add_artifact(path, name="model.json", metadata={"epochs": epochs})
    print(f"final loss {loss:.4f}")
    return round(1 - loss, 4)
