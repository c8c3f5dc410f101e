"""Sweep trials and queued runs placed by a launcher (needs ``labbook[sweep]``).

Run without arguments, this script is the whole demonstration: a 3 x 2 grid whose trials run
three at a time as separate processes (``launcher="local:3"``), then three runs queued with
``-q`` and executed by ``labbook run-queue --launcher local:2``, all into a new SQLite store.
With arguments (or when a launcher's process runs it) it is the experiment script itself.

    python examples/sweep_launcher.py

The same from the shell (docs/sweeps.md, docs/workers.md); dask, ray:ADDRESS or
submitit:slurm place the processes on a cluster instead:

    labbook sweep examples/sweep_launcher.py --param 'lr=choice(0.01,0.1,0.3)' \\
        --param 'batch=choice(16,64)' --method grid --metric loss \\
        --store sqlite:///runs.db --launcher local:3
    python examples/sweep_launcher.py -q with lr=0.2 --store sqlite:///runs.db
    labbook run-queue examples/sweep_launcher.py --store sqlite:///runs.db --launcher local:2
"""
import os
import subprocess
import sys
import tempfile

import labbook
from labbook import Experiment

ex = Experiment("sweep_launcher")


@ex.config
def cfg():
    lr = 0.1      # learning rate
    batch = 32    # batch size
    epochs = 5


@ex.main
def train(lr, batch, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        # a made-up curve: bigger steps help until they overshoot, small batches help a little
        loss *= 1 - lr * (1 - abs(lr - 0.1) * 2) * (1 - batch / 256)
        _run.log_scalar("loss", round(loss, 6), epoch)
    return round(loss, 4)


def demo() -> None:
    store = f"sqlite:///{os.path.join(tempfile.mkdtemp(prefix='labbook-launch-'), 'runs.db')}"
    grid = labbook.sweep(__file__, {"lr": [0.01, 0.1, 0.3], "batch": [16, 64]},
                         method="grid", metric="loss", store=store, sweep_id="grid",
                         launcher="local:3", progress=True)
    best = grid.best_run()
    processes = {run.info.get("pid") for run in grid.runs}
    print(f"grid: {len(grid.runs)} runs through local:3 in {len(processes)} processes, "
          f"best lr={best.config['lr']} batch={best.config['batch']}")
    for lr in (0.05, 0.2, 0.3):
        subprocess.run([sys.executable, __file__, "-q", "with", f"lr={lr}", "--store", store,
                        "--loglevel", "WARNING"], check=True)
    subprocess.run([sys.executable, "-c", "import sys; from labbook.cli.main import main; "
                    "sys.exit(main())", "run-queue", __file__, "--store", store,
                    "--launcher", "local:2"], check=True)
    queued = labbook.Api(store).runs({"group": None, "meta.sweep": None})
    print(f"run-queue: {sum(r.status == 'COMPLETED' for r in queued)} queued runs COMPLETED, "
          f"results {sorted(r.result for r in queued)}")
    print(f"store: {store}")


@ex.post_run_hook
def note_process(_run):
    _run.info["pid"] = os.getpid()


if __name__ == "__main__":
    if len(sys.argv) > 1 or "LABBOOK_WORKER_RUN" in os.environ:
        ex.run_commandline()
    else:
        demo()
