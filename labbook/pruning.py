"""Reporting a sweep's metric to its Optuna trial as it is logged (pruning).

A run that is a trial of a sweep gets a :class:`TrialBuffer` as its metric buffer: each point
of the sweep's metric goes to the trial (``trial.report``) as it is logged, and when the
study's pruner says so (``trial.should_prune()``) the ``log_scalar`` call raises
:class:`~labbook.interrupts.PrunedInterrupt`, so the run ends with status ``PRUNED``.

In the sweeping process the trial is Optuna's own object. A trial placed by a launcher runs in
another process: the queued run's ``meta.sweep`` names its study and trial
(``study``, ``trial_id``, ``metric``, ``prune``) and the placed process is given the study's
storage in the environment variable ``LABBOOK_SWEEP_STORAGE``; :func:`attach_from_meta` then
reopens the trial there (Optuna's RDB storage, shared by every process of the sweep).
"""
from __future__ import annotations

import math
import os
from typing import Any

from labbook.interrupts import PrunedInterrupt
from labbook.metrics import MetricBuffer, flatten

__all__ = ["TrialBuffer", "attach", "attach_from_meta", "STORAGE_ENV"]

#: the environment variable giving a placed trial the SQLAlchemy URL of its study's storage
STORAGE_ENV = "LABBOOK_SWEEP_STORAGE"


class TrialBuffer(MetricBuffer):
    """The metric buffer of a trial's run: reports the sweep's metric to the trial."""

    def __init__(self, trial: Any, metric: str) -> None:
        super().__init__()
        self._trial = trial
        self._metric = metric
        self._next_step = 0

    def add(self, metric_name: str, value: Any, step: int | None = None) -> None:
        super().add(metric_name, value, step)
        if metric_name == self._metric:
            self._report(value, step)

    def log(self, data: dict, step: int | None = None, commit: bool = True) -> None:
        super().log(data, step, commit)
        if commit and isinstance(data, dict):
            flat = flatten(data)
            if self._metric in flat:
                self._report(flat[self._metric], self.global_step - 1)

    def _report(self, value: Any, step: int | None) -> None:
        if step is None:
            step = self._next_step
        self._next_step = step + 1
        value = float(value)
        if math.isnan(value):
            return
        self._trial.report(value, step)
        if self._trial.should_prune():
            raise PrunedInterrupt(f"trial {self._trial.number} pruned at step {step} "
                                  f"({self._metric} = {value})")


def attach(run: Any, trial: Any, metric: str) -> None:
    """Give ``run`` a metric buffer reporting ``metric`` to the Optuna ``trial``."""
    run._metrics = TrialBuffer(trial, metric)
    run.log_scalar = run._metrics.add


def attach_from_meta(run: Any, sweep_meta: Any) -> bool:
    """In a placed trial's process: when the queued run's ``meta.sweep`` asks for pruning,
    reopen its Optuna trial from the storage named by :data:`STORAGE_ENV` and attach it; True
    when attached. Without the storage the run goes on unpruned, with a warning."""
    if not isinstance(sweep_meta, dict) or not sweep_meta.get("prune"):
        return False
    storage = os.environ.get(STORAGE_ENV)
    if not storage:
        run.run_logger.warning("Trial %s of sweep %s asks for pruning, but %s is not set; it "
                               "runs without pruning.", sweep_meta.get("trial"),
                               sweep_meta.get("id"), STORAGE_ENV)
        return False
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=sweep_meta["id"], storage=storage)
    attach(run, optuna.trial.Trial(study, sweep_meta["trial_id"]), sweep_meta["metric"])
    return True
