"""``labbook.submit``: hand a run of an experiment script to a process of its own and get a
handle on it (Foundations' ``submit``, on labbook's queue).

The run is queued in the store first (as ``python exp.py with ... -q`` queues it), with the
given params as config updates; then a process is placed to execute it: by default a process of
its own on this machine, detached from the caller (it goes on if the caller ends), or a job on a
launcher (``launcher="dask:tcp://..."``, ``"ray"``, ``"submitit:slurm"``: see
:mod:`labbook.launchers`). That process claims the run and records it like any run, so a worker
or another launcher never executes it twice.

The :class:`Deployment` reads the run back from the store: ``get_param`` at once (the config is
stored when the run is queued), ``get_metric``, ``get_job_details`` and ``wait`` once the run
has ended (they block until then, as Foundations' calls do; ``timeout`` bounds the wait).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Sequence

from labbook.errors import JobTimeoutError, SubmitError, UsageError

__all__ = ["submit", "Deployment", "ENDED"]

#: statuses after which a run changes no more (DIED: its process is gone)
ENDED = ("COMPLETED", "FAILED", "INTERRUPTED", "PRUNED", "DIED")


def submit(experiment: str | os.PathLike, params: dict | None = None, *,
           store: str | None = None, command: str | None = None,
           named_configs: Sequence[str] = (), launcher: Any = None, name: str | None = None,
           tags: Sequence[str] = (), priority: int | None = None,
           project_name: str | None = None, stream_job_logs: bool = False) -> Deployment:
    """Queue a run of the experiment script ``experiment`` with ``params`` (config updates,
    dotted keys or nested dicts) in ``store`` (default: ``$LABBOOK_STORE`` or ``labbook.db``)
    and place a process to execute it. Returns its :class:`Deployment`.

    The script either defines an Experiment (its run is queued with the params as config
    updates, and the placed process runs it as ``labbook worker`` would), or is a plain script
    that calls :func:`labbook.start_run` (or ``init``) and reads the params with
    ``load_parameters()`` / ``run.config``: its run is queued with the params as its config
    under the experiment ``project_name`` (default: the name the script gives ``start_run``,
    else the script's name), and ``start_run`` in the placed process starts that run. Which
    one is read from the script's text (a call of ``Experiment(...)``), without running it.

    ``launcher``: None (a detached process on this machine), or a spec or
    :class:`~labbook.launchers.Launcher` (``"local:2"``, ``"dask:ADDRESS"``, ``"ray"``,
    ``"submitit:slurm"``); a launcher made from a spec here is closed once the run has ended
    and the deployment waited for it. ``stream_job_logs``: the placed process writes the
    run's output to its standard error too (the detached one's is this process's; a launcher
    job's is where the engine puts it); it is stored with the run in every case."""
    from labbook.experiment import experiment_in_script
    from labbook.stores import default_url

    if not isinstance(experiment, str | os.PathLike):
        raise SubmitError(f"submit() takes the path of an experiment script, got "
                          f"{type(experiment).__name__}: the run is executed by a process of "
                          "its own, which runs the script.")
    if params is not None and not isinstance(params, dict):
        raise SubmitError(f"params must be a dict of config entries, got "
                          f"{type(params).__name__}.")
    if isinstance(tags, str):
        tags = [tags]
    script = os.path.abspath(os.fspath(experiment))
    url = store or default_url()
    placer = None
    if launcher is not None:
        from labbook.launchers import Launcher, parse_launcher

        placer = launcher if isinstance(launcher, Launcher) else parse_launcher(launcher)
    options: dict[str, Any] = {"queue": True, "store": url, "tag": list(tags)}
    if name is not None:
        options["name"] = name
    if priority is not None:
        options["priority"] = priority
    if _defines_experiment(script):
        ex = experiment_in_script(script, "__labbook_submit__", "labbook.submit")
        meta = {"project_name": project_name} if project_name else None
        run = ex.run(command, config_updates=params or {}, named_configs=list(named_configs),
                     options=options, meta_info=meta)
    else:
        if command is not None or named_configs:
            raise SubmitError(f"{script} defines no Experiment: command and named_configs "
                              "are for experiment scripts.")
        run = _queue_plain(script, params or {}, options, project_name)
    if run._id is None:
        raise SubmitError(f"The run of {script} was not queued in {url}: no store recorded it.")
    deployment = Deployment(run._id, url, script)
    from labbook.launchers import make_job

    job = dict(make_job(script, url, run._id), stream=bool(stream_job_logs))
    if placer is None:
        deployment._process = _detached(job, stream_job_logs)
    else:
        deployment._future = placer.submit(job)
        deployment._launcher = placer if placer is not launcher else None
    return deployment


def _defines_experiment(script: str) -> bool:
    """True when the script's text calls ``Experiment(...)`` (read, not run: a plain script
    does its work at module level)."""
    import ast

    try:
        with open(script, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), script)
    except FileNotFoundError:
        raise UsageError(f"No experiment file {script} (labbook.submit takes a script's path)."
                         ) from None
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise SubmitError(f"{script} cannot be read as Python: {exc}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if called == "Experiment":
                return True
    return False


def _queue_plain(script: str, params: dict, options: dict, project_name: str | None) -> Any:
    """Queue the run of a plain script: an experiment made here holds the params as its
    config (dotted keys nest); ``start_run`` in the placed process starts the queued run."""
    from labbook.config.paths import set_path
    from labbook.experiment import Experiment

    config: dict = {}
    for key, value in params.items():
        set_path(config, str(key), value)
    name = project_name or os.path.splitext(os.path.basename(script))[0]
    ex = Experiment(name, interactive=True)
    if config:
        ex.add_config(config)

    def submitted() -> None:  # the queued run's command (the script runs, not this)
        return None

    ex.main(submitted)
    meta = {"project_name": project_name} if project_name else None
    return ex.run(options=options, meta_info=meta)


def _detached(job: dict, stream: bool) -> subprocess.Popen:
    """``python -m labbook.jobs JOB``: a process of its own session, so that it outlives the
    caller and a Ctrl-C in the caller's terminal does not reach it."""
    out = None if stream else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "labbook.jobs", json.dumps(job)],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True, cwd=job.get("cwd") or None)


class Deployment:
    """A submitted run: ``run_id`` (also ``job_name``), ``store``, ``status``, ``run`` (its
    :class:`~labbook.api.RunView`), ``get_param``, ``get_metric``, ``get_job_details``,
    ``wait``."""

    def __init__(self, run_id: Any, store: str, script: str | None = None):
        self.run_id = run_id
        self.store = store
        self.script = script
        self._api: Any = None
        self._process: subprocess.Popen | None = None
        self._future: Any = None
        self._launcher: Any = None

    def __repr__(self) -> str:
        return f"<Deployment of run {self.run_id} in {self._shown_store()}>"

    @property
    def job_name(self) -> Any:
        """The run's id (Foundations calls it the job's)."""
        return self.run_id

    def _shown_store(self) -> str:
        from labbook.stores import redact_url

        return redact_url(self.store)

    @property
    def run(self) -> Any:
        """The run as stored now (read again at each use)."""
        from labbook.api import Api

        if self._api is None:
            self._api = Api(self.store)
        return self._api.run(self.run_id)

    @property
    def status(self) -> str | None:
        """The run's status now (QUEUED, RUNNING, ..., DIED when its process is gone)."""
        return self.run.status

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Block until the run has ended; its final status. Raises :class:`JobTimeoutError`
        after ``timeout`` seconds (the run goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status in ENDED:
                self._release()
                return status
            if status == "QUEUED" and self._placed_job_ended():
                self._release()
                raise SubmitError(f"Run {self.run_id} is still queued in {self._shown_store()} "
                                  "but the process placed to execute it has ended without "
                                  "taking it; start one: labbook worker "
                                  f"{self.script or 'EXP.py'} --store URL")
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeoutError(f"Run {self.run_id} did not end within {timeout:g} s "
                                      f"(status {status}); it goes on.")
            time.sleep(poll)

    def _placed_job_ended(self) -> bool:
        if self._process is not None:
            return self._process.poll() is not None
        if self._future is not None:
            return bool(self._future.done())
        return False

    def _release(self) -> None:
        if self._process is not None:
            self._process.poll()  # reaped: no zombie
        if self._launcher is not None:
            self._launcher.close()
            self._launcher = None

    def get_param(self, name: str) -> Any:
        """The run's config entry ``name`` (a dotted path reaches into nested entries); known
        once the run is queued, so this does not wait."""
        config = self.run.config
        value: Any = config
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                raise SubmitError(f"Run {self.run_id} has no config entry {name!r}; its entries: "
                                  f"{', '.join(sorted(_paths(config))) or 'none'}.")
            value = value[part]
        return value

    def get_metric(self, name: str, timeout: float | None = None) -> Any:
        """The metric's summary (its last value, or what ``define_metric`` asked for) once the
        run has ended."""
        self.wait(timeout)
        summary = self.run.summary
        if name not in summary:
            raise SubmitError(f"Run {self.run_id} logged no metric {name!r}; it has: "
                              f"{', '.join(sorted(summary)) or 'none'}.")
        return summary[name]

    def get_job_details(self, timeout: float | None = None) -> dict:
        """What the run's row in a listing shows, once the run has ended: ``job_id``,
        ``project_name``, ``status``, ``start_time``, ``completed_time``, ``duration``, ``host``,
        ``params``, ``metrics``, ``tags``, ``result``, ``artifacts``."""
        self.wait(timeout)
        run = self.run
        return {"job_id": run.id, "project_name": run.experiment.get("name"),
                "status": run.status, "start_time": run.start_time,
                "completed_time": run.stop_time, "duration": run.duration,
                "host": (run.host or {}).get("hostname"), "params": run.config,
                "metrics": run.summary, "tags": list(run.meta.get("tags") or []),
                "result": run.result, "artifacts": list(run.artifacts)}

    def close(self) -> None:
        """Close the store's connections (and a launcher made for this run, stopping its
        engine: a run still going there is cut short)."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._launcher is not None:
            self._launcher.close()
            self._launcher = None


def _paths(config: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{prefix}{key}"
            out.append(path)
            if isinstance(value, dict):
                out.extend(_paths(value, path + "."))
    return out


if __name__ == "__main__":  # the detached process of a submitted run
    from labbook.launchers import execute_job

    outcome = execute_job(json.loads(sys.argv[1]))
    sys.exit(0 if outcome.get("status") == "COMPLETED" or not outcome.get("claimed") else 1)
