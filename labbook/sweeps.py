"""Sweeps: many runs of one experiment, their configs chosen by Optuna (``labbook[sweep]``).

labbook does not search: Optuna's samplers pick each trial's config, its pruners stop trials,
its storage keeps the study. labbook runs each trial as a run of the experiment, in this
process, tagged ``sweep:ID`` and in the group ``ID``, and tells Optuna the run's value of the
metric (its summary). See docs/sweeps.md.

Pruning: the trial's run gets a metric buffer that reports each point of the sweep's metric to
the trial (``trial.report``) as it is logged, and asks ``trial.should_prune()``; when the pruner
says so, the ``log_scalar`` call raises :class:`~labbook.interrupts.PrunedInterrupt` and the
run ends with status ``PRUNED``, the point that decided it kept. Reporting from the metric path
(not from an observer) decides at the point, not at the next heartbeat, and changes nothing for
runs outside sweeps.
"""
from __future__ import annotations

import ast
import itertools
import math
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from labbook.errors import LabbookWarning, SweepError
from labbook.interrupts import PrunedInterrupt
from labbook.metrics import flatten
from labbook.pruning import attach

__all__ = ["Param", "parse_param", "parse_params", "sweep", "Sweep", "study_storage_url",
           "METHODS", "GOALS"]

METHODS = ("grid", "random", "tpe")
GOALS = ("minimize", "maximize")
_KINDS = ("uniform", "loguniform", "int", "choice")
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.S)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: labbook's default drivers, as its SQL store uses them (Optuna gets the same database)
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError("Sweeps need Optuna: pip install 'labbook[sweep]'.") from None
    return optuna


# -- parameter specs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One swept parameter: ``kind`` is uniform, loguniform, int, choice or value (fixed)."""

    name: str
    kind: str
    args: tuple

    def suggest(self, trial: Any) -> Any:
        """The trial's value of this parameter (Optuna's ``trial.suggest_*``)."""
        if self.kind == "uniform":
            return trial.suggest_float(self.name, *self.args)
        if self.kind == "loguniform":
            return trial.suggest_float(self.name, *self.args, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.name, *self.args)
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.args))
        return self.args[0]


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text  # a bare word: a string (choice(adam,sgd))


def _number(name: str, spec: str, value: Any, whole: bool = False) -> float | int:
    ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        what = "whole numbers" if whole else "numbers"
        raise SweepError(f"Parameter {name}: {spec!r} takes {what}, got {value!r}.")
    return value


def parse_spec(name: str, spec: Any) -> Param:
    """A :class:`Param` from ``uniform(a,b)``, ``loguniform(a,b)``, ``int(a,b)``,
    ``choice(x,y,...)`` or a plain value (fixed for every trial); a list is a choice."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise SweepError(f"Bad parameter name {name!r}: use a config key such as lr or "
                         "optimizer.lr.")
    if isinstance(spec, list | tuple):
        if not spec:
            raise SweepError(f"Parameter {name}: an empty list of choices.")
        return Param(name, "choice", tuple(spec))
    if not isinstance(spec, str):
        return Param(name, "value", (spec,))
    match = _CALL.match(spec)
    if not match or match.group(1) not in _KINDS:
        if match:
            raise SweepError(f"Parameter {name}: unknown distribution {match.group(1)!r} in "
                             f"{spec!r}; use one of {', '.join(k + '(...)' for k in _KINDS)}.")
        return Param(name, "value", (_literal(spec),))
    kind, body = match.group(1), match.group(2)
    try:
        parsed = ast.literal_eval(f"[{body}]")
    except (ValueError, SyntaxError):
        parsed = [_literal(part) for part in body.split(",")] if kind == "choice" else None
        if parsed is None:
            raise SweepError(f"Parameter {name}: cannot read {spec!r}; write e.g. "
                             f"{kind}(0.001, 0.1).") from None
    if kind == "choice":
        if not parsed:
            raise SweepError(f"Parameter {name}: {spec!r} has no choices.")
        return Param(name, kind, tuple(parsed))
    if len(parsed) != 2:
        raise SweepError(f"Parameter {name}: {spec!r} takes two bounds, low and high.")
    low, high = (_number(name, spec, v, whole=kind == "int") for v in parsed)
    if not low < high:
        raise SweepError(f"Parameter {name}: {spec!r} needs low < high.")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"Parameter {name}: {spec!r} needs bounds above 0 (a log scale).")
    if kind != "int":
        low, high = float(low), float(high)
    return Param(name, kind, (low, high))


def parse_param(text: str) -> Param:
    """``NAME=SPEC`` (the command line's ``--param``) as a :class:`Param`."""
    name, sep, spec = str(text).partition("=")
    if not sep:
        raise SweepError(f"Bad --param {text!r}: write NAME=SPEC, e.g. 'lr=loguniform(1e-4,1e-1)'.")
    return parse_spec(name.strip(), spec)


def parse_params(params: dict | Sequence[str] | Sequence[Param]) -> list[Param]:
    """Params from a dict ``{name: spec}`` or ``NAME=SPEC`` texts; names must be unique."""
    if isinstance(params, dict):
        out = [p if isinstance(p, Param) else parse_spec(n, p) for n, p in params.items()]
    elif isinstance(params, str):
        out = [parse_param(params)]
    else:
        out = [p if isinstance(p, Param) else parse_param(p) for p in params]
    names = [p.name for p in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SweepError(f"Parameter(s) given twice: {', '.join(twice)}.")
    if not any(p.kind != "value" for p in out):
        raise SweepError("A sweep needs at least one parameter to vary (uniform, loguniform, "
                         "int or choice).")
    return out


# -- the study's storage -----------------------------------------------------------------------
def study_storage_url(store: str) -> str | None:
    """Where the Optuna study of a sweep on ``store`` lives (an SQLAlchemy URL), None for in
    memory. A SQL store keeps it in its own database (Optuna's tables beside labbook's: labbook
    keeps its schema revision in ``labbook_alembic_version``, Optuna in ``alembic_version``);
    a file store in ``DIR/_optuna.db`` (SQLite). Other stores (Mongo): in memory."""
    scheme, sep, rest = store.partition("://")
    scheme = scheme.lower() if sep else ""
    base = scheme.split("+")[0]
    if base == "sqlite":
        path = (rest[1:] if rest.startswith("/") else rest).partition("?")[0]
        if not path or path == ":memory:":
            return None
        return f"sqlite:///{os.path.abspath(os.path.expanduser(path))}"
    if base in _DRIVERS:
        driver = scheme if "+" in scheme else _DRIVERS[base]
        return f"{driver}://{rest}"
    if not sep or scheme == "file":
        directory = os.path.expanduser(rest if sep else store)
        os.makedirs(directory, exist_ok=True)
        return f"sqlite:///{os.path.abspath(os.path.join(directory, '_optuna.db'))}"
    return None


def _prepare_storage(store: str) -> None:
    """Make the SQL store's tables before Optuna adds its own to the database, so that the
    database is a labbook store (and an unusable store is one line from labbook, not Optuna's
    traceback)."""
    from labbook.stores import open_store

    if store.partition("://")[0].lower().split("+")[0] not in ("sqlite", *_DRIVERS):
        return
    opened = open_store(store)
    try:
        opened.check()
    finally:
        opened.close()


# -- trials --------------------------------------------------------------------------------------
def load_experiment(path: str) -> Any:
    """The one Experiment defined at module level by the script ``path`` (read, not run)."""
    from labbook.errors import UsageError
    from labbook.experiment import experiment_in_script

    try:
        return experiment_in_script(path, "__labbook_sweep__", "a sweep")
    except UsageError as exc:
        raise SweepError(str(exc)) from None


def _sampler(optuna: Any, method: str, params: list[Param], seed: int | None) -> Any:
    if method == "grid":
        bad = [p.name for p in params if p.kind not in ("choice", "value")]
        if bad:
            raise SweepError(f"A grid takes choice(...) parameters only; {', '.join(bad)} "
                             "vary continuously (use --method random or tpe, or choices).")
        space = {p.name: list(p.args) for p in params if p.kind == "choice"}
        return optuna.samplers.GridSampler(space, seed=seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(optuna: Any, prune: Any) -> Any:
    if prune is None or prune in ("none", False):
        return optuna.pruners.NopPruner()
    if prune == "median":
        return optuna.pruners.MedianPruner()
    if isinstance(prune, optuna.pruners.BasePruner):
        return prune
    raise SweepError(f"Unknown pruner {prune!r}: use 'median', None, or an Optuna pruner.")


def sweep(experiment: Any, params: dict | Sequence[str], method: str = "tpe",
          trials: int | None = None, metric: str = "loss", goal: str = "minimize",
          store: str | None = None, prune: Any = None, sweep_id: str | None = None,
          seed: int | None = None, storage: str | None = None, launcher: Any = None,
          parallel: int | None = None, progress: bool | None = None) -> Sweep:
    """Run a sweep: ``trials`` runs of ``experiment`` (an Experiment or a script's path), each
    config from Optuna's sampler (``method``: grid, random or tpe) over ``params``; their value
    is the run's summary of ``metric``, to ``goal`` (minimize / maximize). ``prune="median"``
    stops trials whose logged ``metric`` lags (status PRUNED). Runs are tagged ``sweep:ID`` and
    grouped under ``ID``; the study is named ``ID`` and joined if it exists (several processes
    may run one sweep). ``storage`` overrides where the study lives (see
    :func:`study_storage_url`).

    ``launcher`` (``"local:3"``, ``"dask"``, ``"ray:ADDRESS"``, ``"submitit:slurm"``, or a
    :class:`labbook.launchers.Launcher`) runs the trials elsewhere: Optuna is asked for
    ``parallel`` trials at a time (default: the launcher's slots), each is queued as a run with
    its config and placed by the launcher, and its value is told to Optuna when the run ends.
    ``progress``: a live display of the trials' counts and the best value (None: a progress
    bar when standard output is a terminal, nothing otherwise; True: plain lines when it is
    not; False: none). Returns the :class:`Sweep`."""
    from labbook.experiment import Experiment
    from labbook.stores import default_url

    if method not in METHODS:
        raise SweepError(f"Unknown sweep method {method!r}: use {', '.join(METHODS)}.")
    if goal not in GOALS:
        raise SweepError(f"Unknown goal {goal!r}: use minimize or maximize.")
    if not isinstance(metric, str) or not metric:
        raise SweepError("A sweep needs the name of the metric it optimizes (metric=).")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        raise SweepError(f"trials must be a whole number above 0, got {trials!r}.")
    parsed = parse_params(params)
    if isinstance(experiment, str | os.PathLike):
        experiment = load_experiment(os.fspath(experiment))
    if not isinstance(experiment, Experiment):
        raise SweepError(f"sweep() takes an Experiment or a script's path, got "
                         f"{type(experiment).__name__}.")
    optuna = _optuna()
    sampler = _sampler(optuna, method, parsed, seed)
    if trials is None:
        if method != "grid":
            raise SweepError(f"A {method} sweep needs a number of trials (trials=).")
        trials = math.prod(len(p.args) for p in parsed if p.kind == "choice")
    store = store or default_url()
    sweep_id = sweep_id or f"sweep-{uuid.uuid4().hex[:8]}"
    if storage is None:
        storage = study_storage_url(store)
        if storage is not None:
            _prepare_storage(store)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=sweep_id, sampler=sampler,
                                pruner=_pruner(optuna, prune), direction=goal,
                                load_if_exists=True)
    result = Sweep(sweep_id, store, metric, goal, study=study, storage=storage)
    fixed = {p.name: p.args[0] for p in parsed if p.kind == "value"}
    varied = [p for p in parsed if p.kind != "value"]

    board = _progress(sweep_id, trials, metric, goal, progress)
    try:
        if launcher is not None:
            _launch_trials(optuna, study, experiment, varied, fixed, result, trials, launcher,
                           parallel, prune is not None and prune not in ("none", False),
                           grid=method == "grid", board=board)
            return result

        def objective(trial: Any) -> float:
            board.started()
            return _run_trial(optuna, trial, experiment, varied, fixed, result)

        def tally(study_: Any, frozen: Any) -> None:
            state = frozen.state.name
            status = {"COMPLETE": "COMPLETED", "PRUNED": "PRUNED"}.get(state, "FAILED")
            board.ended(status, frozen.value if state == "COMPLETE" else None,
                        frozen.user_attrs.get("labbook_run_id"))

        # optimize, not ask/tell: the grid sampler stops the study when its grid is done
        study.optimize(objective, n_trials=trials, catch=(_TrialFailed,), callbacks=[tally])
        return result
    finally:
        board.close()


def _progress(sweep_id: str, trials: int | None, metric: str, goal: str,
              progress: bool | None) -> Any:
    from labbook.launchers import Progress

    return Progress(f"sweep {sweep_id}", total=trials, metric=metric, goal=goal,
                    live=None if progress is None else bool(progress))


def _launch_trials(optuna: Any, study: Any, ex: Any, varied: list[Param], fixed: dict,
                   sweep_: Sweep, trials: int, launcher: Any, parallel: int | None,
                   prune: bool, grid: bool, board: Any) -> None:
    """Ask Optuna for trials, queue each as a run, place it with ``launcher``, tell Optuna its
    value when the run ends; ``parallel`` (default the launcher's slots) at a time."""
    from labbook.errors import LauncherError
    from labbook.launchers import Launcher, make_job, parse_launcher, wait_any
    from labbook.pruning import STORAGE_ENV

    script = ex.mainfile
    if not script or not os.path.isfile(script):
        raise SweepError("A sweep with a launcher runs the experiment's script in other "
                         "processes: give the script's path (or an Experiment defined in one).")
    if prune and sweep_._storage is None:
        from labbook.stores import redact_url

        raise LauncherError(f"--prune with a launcher needs the study in a database the trials "
                            f"can reach; the store {redact_url(sweep_.store)} keeps it in "
                            "memory: pass storage= (an SQL URL), or sweep without a launcher.")
    if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool)
                                 or parallel < 1):
        raise SweepError(f"parallel must be a whole number above 0, got {parallel!r}.")
    owned = not isinstance(launcher, Launcher)
    placer = parse_launcher(launcher)
    slots = parallel or placer.slots
    grid_size = math.prod(len(p.args) for p in varied if p.kind == "choice") if grid else None
    env = {STORAGE_ENV: sweep_._storage} if prune else {}
    pending: dict[Any, tuple[Any, Any]] = {}
    asked = 0
    try:
        while True:
            placed = 0
            while len(pending) < slots and asked < trials and not (
                    grid_size is not None and len(study.trials) >= grid_size):
                trial = study.ask()
                asked += 1
                run_id = _queue_trial(trial, ex, varied, fixed, sweep_, prune)
                try:
                    future = placer.submit(make_job(script, sweep_.store, run_id, env))
                except Exception as exc:
                    _tell(study, trial, state=optuna.trial.TrialState.FAIL)
                    raise LauncherError(
                        f"The {placer} launcher could not take run {run_id} (trial "
                        f"{trial.number} of sweep {sweep_.id}): {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}; "
                        "the run stays queued (labbook run-queue or a worker can execute "
                        "it).") from None
                pending[future] = (trial, run_id)
                placed += 1
            if placed:
                board.started(placed)
            if not pending:
                return
            for future in wait_any(list(pending)):
                trial, run_id = pending.pop(future)
                status, value = _trial_outcome(future, run_id, sweep_)
                if status == "COMPLETED" and _is_number(value):
                    _tell(study, trial, float(value))
                elif status == "PRUNED":
                    _tell(study, trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    if status == "COMPLETED":
                        warnings.warn(f"Sweep {sweep_.id}: run {run_id} has no number for "
                                      f"{sweep_.metric} ({value!r}); its trial {trial.number} "
                                      "is marked failed.", LabbookWarning)
                        status = "NO VALUE"
                    _tell(study, trial, state=optuna.trial.TrialState.FAIL)
                board.ended(status, value, run_id)
    finally:
        # stopped early (Ctrl-C, an error): the trials still out are failed in the study, so
        # a sweep joined later does not wait on them; their jobs are cancelled where the
        # engine can (a job already running goes on and records its run; Ctrl-C in a
        # terminal reaches local processes too, whose runs end INTERRUPTED)
        for future, (trial, _) in pending.items():
            try:
                future.cancel()
            except Exception:  # an engine that cannot cancel
                pass
            try:
                _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            except Exception:  # the study's storage is gone too: nothing more to do
                pass
        if owned:
            placer.close()


def _tell(study: Any, trial: Any, value: float | None = None, state: Any = None) -> None:
    """``study.tell``; the grid sampler's ``study.stop()`` once the grid is done (meant for
    ``optimize``) is not an error here: the trial's state is stored before it, and no more
    trials are asked once the study holds the whole grid."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _queue_trial(trial: Any, ex: Any, varied: list[Param], fixed: dict, sweep_: Sweep,
                 prune: bool) -> Any:
    """Queue the run of ``trial`` (its config from the sampler); its id."""
    updates = dict(fixed)
    updates.update((p.name, p.suggest(trial)) for p in varied)
    meta: dict = {"id": sweep_.id, "trial": trial.number}
    if prune:
        meta.update(trial_id=trial._trial_id, metric=sweep_.metric, prune=True)
    options = {"store": sweep_.store, "tag": [f"sweep:{sweep_.id}"], "group": sweep_.id,
               "queue": True}
    run = ex._create_run(config_updates=updates, options=options, meta_info={"sweep": meta})
    run()
    trial.set_user_attr("labbook_run_id", run._id)
    return run._id


def _trial_outcome(future: Any, run_id: Any, sweep_: Sweep) -> tuple[str, Any]:
    """The status of a placed trial's run and its value of the metric."""
    try:
        outcome = future.result()
    except Exception as exc:  # the engine lost the job: the run is whatever the store says
        warnings.warn(f"Sweep {sweep_.id}: the job of run {run_id} failed in its launcher: "
                      f"{type(exc).__name__}: {exc}", LabbookWarning)
    else:
        if not outcome.get("claimed"):
            warnings.warn(f"Sweep {sweep_.id}: run {run_id} was taken by another process "
                          f"(status {outcome.get('status')}); its trial is marked failed.",
                          LabbookWarning)
            return "TAKEN", None
    view = sweep_.api.run(run_id)
    status = view.status
    return status, view.summary.get(sweep_.metric) if status == "COMPLETED" else None


class _TrialFailed(Exception):
    """A trial's run failed or has no value of the metric: the trial fails, the sweep goes on."""


def _run_trial(optuna: Any, trial: Any, ex: Any, varied: list[Param], fixed: dict,
               sweep_: Sweep) -> float:
    updates = dict(fixed)
    updates.update((p.name, p.suggest(trial)) for p in varied)
    options = {"store": sweep_.store, "tag": [f"sweep:{sweep_.id}"], "group": sweep_.id}
    run = ex._create_run(config_updates=updates, options=options,
                         meta_info={"sweep": {"id": sweep_.id, "trial": trial.number}})
    attach(run, trial, sweep_.metric)
    try:
        run()
    except PrunedInterrupt as exc:
        raise optuna.TrialPruned(str(exc)) from None
    except Exception as exc:  # the run is stored FAILED; the sweep goes on
        raise _TrialFailed(f"run {run._id} failed: {type(exc).__name__}: {exc}") from None
    finally:
        if run._id is not None:
            trial.set_user_attr("labbook_run_id", run._id)
    value = sweep_.api.run(run._id).summary.get(sweep_.metric)
    if not _is_number(value):
        warnings.warn(f"Sweep {sweep_.id}: run {run._id} has no number for {sweep_.metric} "
                      f"({value!r}); its trial {trial.number} is marked failed.", LabbookWarning)
        raise _TrialFailed(f"run {run._id} has no value of {sweep_.metric}")
    return float(value)


# -- the result ----------------------------------------------------------------------------------
class Sweep:
    """A sweep: its runs (group ``id``), its Optuna ``study``, the best run.

    ``Sweep(id, store, metric, goal)`` reopens a sweep run earlier (its study loaded from
    ``storage``, by default :func:`study_storage_url`, when first used)."""

    def __init__(self, sweep_id: str, store: str, metric: str = "loss", goal: str = "minimize",
                 study: Any = None, storage: str | None = None):
        if goal not in GOALS:
            raise SweepError(f"Unknown goal {goal!r}: use minimize or maximize.")
        self.id = sweep_id
        self.store = store
        self.metric = metric
        self.goal = goal
        self._study = study
        self._storage = storage
        self._api: Any = None

    def __repr__(self) -> str:
        return f"<Sweep {self.id} {self.goal} {self.metric} in {self.store}>"

    @property
    def study(self) -> Any:
        """The Optuna study (``study.trials``, ``study.best_params``, Optuna's plots)."""
        if self._study is None:
            storage = self._storage or study_storage_url(self.store)
            if storage is None:
                raise SweepError(f"Sweep {self.id}: its study was kept in memory (store "
                                 f"{self.store}); pass storage= to find it.")
            self._study = _optuna().load_study(study_name=self.id, storage=storage)
        return self._study

    @property
    def api(self) -> Any:
        """The :class:`labbook.Api` of the sweep's store (opened once)."""
        if self._api is None:
            from labbook.api import Api

            self._api = Api(self.store)
        return self._api

    def close(self) -> None:
        """Close the store's connections (a new use opens them again)."""
        if self._api is not None:
            self._api.close()
            self._api = None

    @property
    def runs(self) -> Any:
        """The runs of the sweep (:class:`labbook.api.Runs`), newest first."""
        return self.api.runs({"group": self.id})

    def best_run(self, order: str | None = None) -> Any:
        """The completed run with the best summary of the metric (lowest when minimizing), or
        the first run by ``order`` (a field path, ``-`` for descending); None if none."""
        if order is not None:
            runs = self.api.runs({"group": self.id, "status": "COMPLETED"}, order=order)
            return runs[0] if runs else None
        scored = []
        for view in self.runs:
            value = view.summary.get(self.metric) if view.status == "COMPLETED" else None
            if _is_number(value):
                scored.append((value, view))
        if not scored:
            return None
        pick = min if self.goal == "minimize" else max
        return pick(scored, key=lambda pair: pair[0])[1]

    def to_dataframe(self) -> Any:
        """One row per run (``Runs.to_dataframe``): config and summary columns."""
        return self.runs.to_dataframe()

    def _completed(self) -> list[tuple[int, float, Any]]:
        """(trial number, value, run) of the completed runs, by trial number."""
        points = []
        for view in self.runs:
            value = view.summary.get(self.metric)
            trial = (view.meta.get("sweep") or {}).get("trial")
            if view.status == "COMPLETED" and isinstance(trial, int) and _is_number(value):
                points.append((trial, value, view))
        points.sort(key=lambda point: point[0])
        return points

    def plot(self, kind: str = "trials", ax: Any = None) -> Any:
        """A matplotlib figure of the completed trials: ``kind="trials"``, the metric against
        the trial number with the best so far; ``kind="parallel"``, parallel coordinates (an
        axis per swept parameter, each scaled to its range, then the metric; a line per
        run, darker when better)."""
        import matplotlib.pyplot as plt

        if kind not in ("trials", "parallel"):
            raise SweepError(f"Unknown plot {kind!r}: use 'trials' or 'parallel'.")
        points = self._completed()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5) if kind == "parallel" else None)
        ax.set_title(f"sweep {self.id}")
        if kind == "trials":
            trials = [t for t, _, _ in points]
            values = [v for _, v, _ in points]
            ax.plot(trials, values, "o", label=self.metric)
            best = list(itertools.accumulate(values, min if self.goal == "minimize" else max))
            ax.plot(trials, best, "-", label="best so far")
            ax.set_xlabel("trial")
            ax.set_ylabel(self.metric)
            ax.legend()
            return ax.figure
        swept = [flatten(view.meta.get("config_updates") or {}) for _, _, view in points]
        names = sorted({key for updates in swept for key in updates})
        columns = [_axis([updates.get(name) for updates in swept]) for name in names]
        columns.append([float(v) for _, v, _ in points])
        labels = [*names, self.metric]
        scaled = [_scaled(column) for column in columns]
        values = columns[-1]
        order = _scaled(values)
        for i in range(len(points)):
            better = 1 - order[i] if self.goal == "minimize" else order[i]
            ax.plot(range(len(labels)), [column[i] for column in scaled],
                    color=plt.cm.viridis(better), alpha=0.8)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks([])
        for x, column in enumerate(columns):
            known = [v for v in column if v is not None]
            if known:
                ax.annotate(f"{min(known):.3g}", (x, 0), textcoords="offset points",
                            xytext=(0, -12), ha="center", fontsize=7)
                ax.annotate(f"{max(known):.3g}", (x, 1), textcoords="offset points",
                            xytext=(0, 4), ha="center", fontsize=7)
        return ax.figure


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and not math.isnan(value)


def _axis(values: list) -> list[float | None]:
    """A parameter's values as positions: numbers as themselves; choices that are not all
    numbers by their place among the distinct values (in text order); missing: None."""
    if all(v is None or _is_number(v) for v in values):
        return [None if v is None else float(v) for v in values]
    distinct = sorted({repr(v) for v in values if v is not None})
    return [None if v is None else float(distinct.index(repr(v))) for v in values]


def _scaled(column: list) -> list[float]:
    """Values mapped to 0..1 over their range (a missing value or a single one: 0.5)."""
    known = [v for v in column if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    span = high - low
    return [0.5 if v is None or not span else (v - low) / span for v in column]
