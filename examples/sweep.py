"""A sweep: Optuna chooses the configs, each trial is a labbook run (needs ``labbook[sweep]``).

A 3 x 2 grid over the learning rate and the batch size, then a TPE search with median pruning,
both into a new SQLite store; the runs of each sweep are its group (``labbook ls --sweep ID``)
and Optuna's study lives in the same database file, beside them.

    python examples/sweep.py

The same from the shell (docs/sweeps.md):

    labbook sweep examples/sweep.py --param 'lr=choice(0.01,0.1,0.3)' \\
        --param 'batch=choice(16,64)' --method grid --metric loss --store sqlite:///runs.db
"""
import os
import tempfile

import labbook
from labbook import Experiment

ex = Experiment("sweep_demo")


@ex.config
def cfg():
    lr = 0.1      # learning rate
    batch = 32    # batch size
    epochs = 8


@ex.main
def train(lr, batch, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        # a made-up curve: bigger steps help until they overshoot, small batches help a little
        loss *= 1 - lr * (1 - abs(lr - 0.1) * 2) * (1 - batch / 256)
        _run.log_scalar("loss", round(loss, 6), epoch)
    return round(loss, 4)


if __name__ == "__main__":
    store = f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'runs.db')}"
    grid = labbook.sweep(ex, {"lr": "choice(0.01, 0.1, 0.3)", "batch": [16, 64]},
                         method="grid", metric="loss", goal="minimize", store=store,
                         sweep_id="grid")
    best = grid.best_run()
    print(f"grid: {len(grid.runs)} runs, best lr={best.config['lr']} "
          f"batch={best.config['batch']} loss {best.summary['loss']:.4f}")
    tpe = labbook.sweep(ex, ["lr=loguniform(0.001, 0.5)", "batch=int(8, 128)"],
                        method="tpe", trials=12, metric="loss", store=store,
                        prune="median", seed=0, sweep_id="tpe")
    statuses = sorted({run.status for run in tpe.runs})
    print(f"tpe: {len(tpe.runs)} runs ({', '.join(statuses)}), "
          f"{len(tpe.study.trials)} trials in its study")
    frame = tpe.to_dataframe()
    print(frame[["id", "status", "config.lr", "config.batch", "summary.loss"]]
          .sort_values("summary.loss").head(3).to_string(index=False))
