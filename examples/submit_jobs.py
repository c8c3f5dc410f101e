"""Submitting runs from Python and reading them back: ``labbook.submit`` (as Foundations'
``submit``).

Run without arguments, this script submits three runs of its own experiment, each with other
params, into a new SQLite store; each is queued, then executed by a process of its own (the
third through the ``local:1`` launcher); the deployments give back the params at once and the
metrics once each run has ended. With arguments it is the experiment script itself, which is
how the placed processes run it.

    python examples/submit_jobs.py
"""
import os
import sys
import tempfile

import labbook
from labbook import Experiment

ex = Experiment("submit_jobs")


@ex.config
def cfg():
    learning_rate = 0.1   # step size
    epochs = 4


@ex.main
def train(learning_rate, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - learning_rate
        _run.log_scalar("loss", loss, epoch)
    return round(loss, 4)


def demo() -> None:
    directory = tempfile.mkdtemp(prefix="labbook-submit-")
    store = f"sqlite:///{os.path.join(directory, 'runs.db')}"
    # the first two in detached processes whose output shows here too (stream_job_logs),
    # the third as a job of a local launcher
    jobs = [labbook.submit(__file__, params={"learning_rate": lr}, store=store,
                           launcher="local:1" if lr == 0.5 else None, stream_job_logs=True)
            for lr in (0.1, 0.3, 0.5)]
    for job in jobs:
        lr = job.get_param("learning_rate")          # known at once
        loss = job.get_metric("loss", timeout=120)   # waits for the run to end
        details = job.get_job_details()
        print(f"run {job.run_id}: learning_rate={lr} {details['status']} loss {loss:.4f}")
        job.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 or os.environ.get("LABBOOK_WORKER_RUN"):
        ex.run_commandline()
    else:
        demo()
