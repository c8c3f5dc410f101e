"""Queued runs executed by workers: ``python exp.py -q ...`` and ``labbook worker exp.py``.

Run without arguments, this script is the whole demonstration: it queues three runs of its own
experiment into a new SQLite store (the first with priority 5), starts two workers on that
store, waits until they have run everything (``--idle-exit 1``) and reads the results back.
With arguments it is the experiment script itself, which is how the workers' children run it.

    python examples/worker_queue.py

By hand, with a store every machine reaches (see docs/workers.md):

    python examples/worker_queue.py -q with lr=0.3 --store postgresql://host/db
    labbook worker examples/worker_queue.py --store postgresql://host/db
"""
import os
import subprocess
import sys
import tempfile

import labbook
from labbook import Experiment

ex = Experiment("worker_queue")


@ex.config
def cfg():
    lr = 0.1      # learning rate
    epochs = 3    # epochs to train


@ex.main
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
    return round(loss, 4)


def demo() -> None:
    directory = tempfile.mkdtemp(prefix="labbook-worker-")
    url = f"sqlite:///{os.path.join(directory, 'runs.db')}"
    for lr, priority in ((0.1, 0), (0.3, 5), (0.5, 0)):
        subprocess.run([sys.executable, __file__, "-q", "with", f"lr={lr}", "--store", url,
                        "-P", str(priority)], check=True)
    worker = [sys.executable, "-c", "import sys; from labbook.cli.main import main; "
              "sys.exit(main())", "worker", __file__, "--store", url, "--idle-exit", "1"]
    workers = [subprocess.Popen(worker + ["--name", f"worker-{n}"]) for n in (1, 2)]
    for proc in workers:
        proc.wait()
    runs = labbook.Api(url).runs(order="queue_time")
    for run in runs:
        print(f"run {run.id}: lr={run.config['lr']} loss={run.result} {run.status} "
              f"by {run.meta['worker']}")
    print(f"{sum(r.status == 'COMPLETED' for r in runs)} queued runs COMPLETED by workers")
    print(f"store: {url}")


if __name__ == "__main__":
    if len(sys.argv) > 1 or "LABBOOK_WORKER_RUN" in os.environ:
        ex.run_commandline()
    else:
        demo()
