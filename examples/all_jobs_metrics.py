#!/usr/bin/env python
"""``get_metrics_for_all_jobs``: one DataFrame row per run of an experiment (Foundations style).

Four runs of a toy training loop go into a SQLite database in a new temporary directory; then
``labbook.get_metrics_for_all_jobs(experiment_name, include_input_params=False, store=URL)``
tabulates them, oldest first: ``job_id``, ``status``, ``start_time``, ``completed_time`` and the
last value of every metric the run logged, and with ``include_input_params=True`` the config
too. Needs pandas (``pip install "labbook[analysis]"``).

    python examples/all_jobs_metrics.py
"""
import os
import tempfile

from labbook import Experiment, get_metrics_for_all_jobs

ex = Experiment("all_jobs")


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    batch_size = 32
    epochs = 10


@ex.main
def train(lr, batch_size, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr * (batch_size / 64) ** 0.5
        _run.log_scalar("loss", loss, epoch)
        _run.log_scalar("accuracy", 1 - loss, epoch)
    return round(1 - loss, 4)


def main():
    url = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="labbook-jobs-"), "jobs.db")
    for lr, batch_size in ((0.05, 32), (0.05, 128), (0.2, 32), (0.2, 128)):
        ex.run(config_updates={"lr": lr, "batch_size": batch_size},
               options={"--store": url, "--no-system-metrics": True, "--loglevel": "WARNING"})

    jobs = get_metrics_for_all_jobs("all_jobs", store=url)
    print(f"{len(jobs)} jobs in {url}; columns: {', '.join(jobs.columns)}")
    print(jobs[["job_id", "status", "loss", "accuracy"]].round(4).to_string(index=False))

    with_params = get_metrics_for_all_jobs("all_jobs", include_input_params=True, store=url)
    best = with_params.sort_values("accuracy", ascending=False).iloc[0]
    print(f"best job {best.job_id}: lr={best.lr} batch_size={best.batch_size} "
          f"accuracy {best.accuracy:.4f}")
    print(with_params[["job_id", "lr", "batch_size", "epochs", "accuracy"]]
          .round(4).to_string(index=False))


if __name__ == "__main__":
    main()
