#!/usr/bin/env python
"""A custom observer: print a line for every event of the run.

    python examples/custom_observer.py
"""
from labbook import Experiment
from labbook.observers import RunObserver


class Printer(RunObserver):
    priority = 10

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        print(f"[observer] started {ex_info['name']}.{command} with lr={config['lr']}")
        return "run-42"  # the first observer (by priority) that returns an id decides it

    def log_metrics(self, metrics_by_name, info):
        for name, series in sorted(metrics_by_name.items()):
            if not name.startswith("system."):
                print(f"[observer] {name}: {series['values']}")

    def completed_event(self, stop_time, result):
        print(f"[observer] completed with result {result}")


ex = Experiment("custom_observer")
ex.observers.append(Printer())


@ex.config
def cfg():
    lr = 0.5


@ex.automain
def main(lr, _run):
    for step in range(3):
        _run.log_scalar("loss", lr / (step + 1))
    return _run._id
