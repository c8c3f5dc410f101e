#!/usr/bin/env python
"""The ``labbook`` command: list, show, compare, export, plot, open and delete stored runs.

Three runs of a toy training loop go into a file store ``runs/`` in a new temporary directory
(the script works there); then the script runs the ``labbook`` commands you would type in a
shell, and prints each command with its output. Any store URL works in place of ``runs``.
``plot`` and ``compare --html`` need matplotlib (``pip install "labbook[analysis]"``).

    python examples/labbook_command.py
"""
import os
import shlex
import subprocess
import sys
import tempfile

from labbook import Experiment

ex = Experiment("labbook_command")


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    epochs = 10


@ex.main
def train(lr, epochs, _run):
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        _run.log_scalar("loss", loss, epoch)
    return round(1 - loss, 4)


def labbook_command(*args):
    """Run the ``labbook`` console script (through this Python, so no PATH is needed)."""
    print("$ labbook", shlex.join(args))
    proc = subprocess.run([sys.executable, "-m", "labbook.cli.main", *args],
                          capture_output=True, text=True, check=True)
    print(proc.stdout, end="")


def main():
    os.chdir(tempfile.mkdtemp(prefix="labbook-command-"))
    print("working in", os.getcwd())
    for lr in (0.05, 0.1, 0.3):
        ex.run(config_updates={"lr": lr},
               options={"--store": "runs", "--no-system-metrics": True, "--loglevel": "WARNING"})

    labbook_command("ls", "runs", "--columns", "id,status,config.lr,summary.loss,result")
    labbook_command("ls", "runs", "--filter", "config.lr >= 0.1", "--columns", "id,config.lr")
    labbook_command("show", "latest", "--store", "runs")
    labbook_command("compare", "1", "3", "--store", "runs", "--html", "compare.html")
    labbook_command("export", "--store", "runs", "--format", "csv", "--out", "runs.csv")
    labbook_command("plot", "1", "2", "3", "--metric", "loss", "--store", "runs",
                    "--out", "loss.png")
    labbook_command("open", "2", "--store", "runs")
    labbook_command("rm", "1", "--store", "runs", "--yes")
    labbook_command("ls", "runs", "--columns", "id,config.lr")
    print("files written:", sorted(os.listdir(".")))


if __name__ == "__main__":
    main()
