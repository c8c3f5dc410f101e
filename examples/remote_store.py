#!/usr/bin/env python
"""A file store on object storage: ``s3://bucket/prefix``, ``gs://bucket/prefix`` or, as here,
``memory://name`` (fsspec's in-memory filesystem: no server, gone when the process ends).

The layout is the file store's (``<prefix>/<id>/run.json``, ``metrics.jsonl``, ...), and the
same URL reads the runs back. Against S3 (``pip install 'labbook[remote]'``; credentials from
the usual AWS variables or ``~/.aws``)::

    python examples/remote_store.py --store s3://my-bucket/experiments
    python examples/remote_store.py --store "s3://my-bucket/exp?endpoint_url=http://127.0.0.1:9000"
    labbook ls --store s3://my-bucket/experiments

Sacred's observers work too: ``ex.observers.append(S3Observer("my-bucket", "experiments"))``.
"""
import argparse
import os
import tempfile

from labbook import Api, Experiment

ex = Experiment("remote_store")


@ex.config
def cfg():
    lr = 0.1  # the toy training's learning rate
    epochs = 3


@ex.main
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.txt")
        with open(model, "w", encoding="utf-8") as fh:
            fh.write(f"lr={lr}\n")
        _run.add_artifact(model)
    return loss


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default="memory://labbook-example/experiments")
    url = parser.parse_args().store
    for lr in (0.1, 0.3):
        ex.run(config_updates={"lr": lr}, options={"--store": url, "--no-system-metrics": True})

    api = Api(url)
    for run in api.runs(experiment="remote_store", order="start_time"):
        losses = [row["loss"] for row in run.history(pandas=False)]
        print(f"run {run.id}: lr={run.config['lr']} losses={[round(x, 4) for x in losses]}")
    best = api.runs(experiment="remote_store", order="result")[0]
    print(f"best run: {best.id} lr={best.config['lr']} final loss {best.result:.4f}, "
          f"artifact says {best.file('model.txt').read_bytes().decode().strip()}")
