"""Launchers: where the process of a queued run is placed (local processes, Dask, Ray, Slurm).

labbook does not schedule. A launcher takes *jobs*, each "execute the queued run ID of the
script S against the store U", and hands them to an engine the user already runs; the engine
starts :func:`execute_job` somewhere, which claims the run (``Store.claim_run``, atomic: a run
already taken by a worker or another job is left alone and the job ends cleanly), then runs
``python S`` in a fresh process with ``LABBOOK_WORKER_RUN`` naming the claimed run, as
``labbook worker`` does. The run records through the store like any run; the launcher only
hands back a small dict (run id, final status, exit status).

Specs (``--launcher``): ``local[:K]`` (K processes at a time on this machine, default the
number of CPUs), ``dask[:SCHEDULER]`` (``dask.distributed.Client(SCHEDULER)``; ``dask`` or
``dask:K``, a LocalCluster of K worker processes), ``ray[:ADDRESS]`` (``ray.init(ADDRESS)``;
``ray`` or ``ray:K``, a local Ray with K CPUs), and
``submitit[:slurm|local]`` (``submitit.AutoExecutor``; Slurm by default). The engines are
imported only when named; a missing one is one line with its ``pip install``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from labbook.errors import LauncherError

__all__ = ["Launcher", "LocalLauncher", "DaskLauncher", "RayLauncher", "SubmititLauncher",
           "parse_launcher", "make_job", "absolute_store", "execute_job", "child_env", "KINDS",
           "Progress", "wait_any", "run_queue"]

KINDS = ("local", "dask", "ray", "submitit")
#: environment variables that make a process part of another run (labbook.distributed): a
#: placed process starts its own run, so they are not passed on
_PARENT_RUN_VARS = ("LABBOOK_RUN_ID", "LABBOOK_RUN_STORE", "RANK", "LOCAL_RANK")
#: seconds between heartbeats of a claimed run whose process has not started it yet
_CLAIM_BEAT = 1.0
#: the last characters of a placed process's output kept when it fails before its run starts
_TAIL = 2000


# -- the job ---------------------------------------------------------------------------------------
def make_job(script: str, store: str, run_id: Any, env: dict | None = None) -> dict:
    """A job: run the queued run ``run_id`` of ``script`` against ``store`` (both made
    absolute when they are relative paths: an engine's worker may run elsewhere than here);
    ``env`` adds environment variables for the run's process."""
    return {"script": os.path.abspath(script), "store": absolute_store(store),
            "run_id": run_id, "env": dict(env or {}), "cwd": os.getcwd()}


def absolute_store(url: str) -> str:
    """``url`` with a relative SQLite file or store directory made absolute."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return os.path.abspath(os.path.expanduser(url))
    base = scheme.lower().split("+")[0]
    if base == "sqlite" and rest.startswith("/"):
        path, query_sep, query = rest[1:].partition("?")
        if path and path != ":memory:" and not path.startswith("/"):
            return f"{scheme}:///{os.path.abspath(os.path.expanduser(path))}{query_sep}{query}"
    if base == "file" and rest and not rest.startswith("/"):
        return f"{scheme}://{os.path.abspath(os.path.expanduser(rest))}"
    return url


def child_env(store: str, run_id: Any, worker: str, extra: dict | None = None) -> dict:
    """The environment of the process executing a claimed run: this one's, without the
    variables that would attach it to a parent run, with ``LABBOOK_WORKER_RUN`` set."""
    from labbook.commandline import WORKER_RUN_ENV

    env = {k: v for k, v in os.environ.items() if k not in _PARENT_RUN_VARS}
    env.update(extra or {})
    env[WORKER_RUN_ENV] = json.dumps({"store": store, "id": run_id, "worker": worker})
    return env


def execute_job(job: dict) -> dict:
    """Claim the job's run and execute it in a fresh ``python SCRIPT`` process (run by the
    engine, wherever it placed the job). Returns ``{"run_id", "status", "exit", "claimed"}``:
    ``claimed`` False (status as found) when the run was not queued any more."""
    from labbook import clock
    from labbook.stores import open_store

    run_id = job["run_id"]
    name = f"launcher:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    store = open_store(job["store"])
    try:
        doc = store.claim_run(run_id, name)
        if doc is None:
            found = store.get(run_id)
            return {"run_id": run_id, "status": None if found is None else found.get("status"),
                    "exit": None, "claimed": False}
        heartbeat = doc.get("heartbeat")
        cwd = job.get("cwd") if job.get("cwd") and os.path.isdir(job["cwd"]) else None
        with tempfile.TemporaryFile("w+b") as output:
            stream = bool(job.get("stream"))
            try:
                proc = subprocess.Popen([sys.executable, job["script"]], cwd=cwd,
                                        env=child_env(job["store"], run_id, name, job.get("env")),
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if stream else output,
                                        stderr=subprocess.STDOUT)
            except OSError as exc:
                _fail_claimed(store, run_id, heartbeat,
                              f"{name} could not start {sys.executable} {job['script']}: {exc}")
                return {"run_id": run_id, "status": "FAILED", "exit": None, "claimed": True}
            copier = _tee(proc.stdout, output) if stream else None
            started = False
            beat_at = time.monotonic()
            while proc.poll() is None:
                time.sleep(0.02)
                if not started and time.monotonic() - beat_at >= _CLAIM_BEAT:
                    beat_at = time.monotonic()
                    beat = clock.utcnow()
                    if store.update_if(run_id, {"status": "RUNNING", "start_time": None,
                                                "heartbeat": heartbeat}, {"heartbeat": beat}):
                        heartbeat = (store.get(run_id) or {}).get("heartbeat", beat)
                    else:
                        started = True
            code = proc.returncode
            if copier is not None:
                copier.join()
            doc = store.get(run_id) or {}
            if doc.get("status") == "RUNNING":
                output.seek(0, os.SEEK_END)
                output.seek(max(0, output.tell() - _TAIL))
                tail = output.read().decode("utf-8", "replace")
                if doc.get("start_time") is None:
                    why = f"exited with status {code} before starting the run"
                    expected = {"status": "RUNNING", "start_time": None,
                                "heartbeat": doc.get("heartbeat")}
                else:
                    why = f"ended with status {code} without ending the run"
                    expected = {"status": "RUNNING", "heartbeat": doc.get("heartbeat")}
                reason = f"{name}: python {job['script']} {why}; its last output:\n{tail}"
                store.update_if(run_id, expected, {"status": "FAILED",
                                                   "stop_time": clock.utcnow(),
                                                   "fail_trace": [reason + "\n"]})
                doc = store.get(run_id) or {}
        return {"run_id": run_id, "status": doc.get("status"), "exit": code, "claimed": True}
    finally:
        store.close()


def _tee(pipe: Any, keep: Any) -> Any:
    """A thread copying the run's output from ``pipe`` to this process's standard error (the
    caller's standard output stays its own) and into ``keep`` (for the tail a failed start
    reports): a job with ``stream`` set."""
    import threading

    def copy() -> None:
        out = getattr(sys.stderr, "buffer", None)
        for chunk in iter(lambda: pipe.read1(65536), b""):
            keep.write(chunk)
            if out is not None:
                try:
                    out.write(chunk)
                    out.flush()
                except (OSError, ValueError):  # stderr went away: keep the copy only
                    out = None
        pipe.close()

    thread = threading.Thread(target=copy, name="labbook-job-output", daemon=True)
    thread.start()
    return thread


def _fail_claimed(store: Any, run_id: Any, heartbeat: Any, reason: str) -> None:
    from labbook import clock

    store.update_if(run_id, {"status": "RUNNING", "start_time": None, "heartbeat": heartbeat},
                    {"status": "FAILED", "stop_time": clock.utcnow(),
                     "fail_trace": [reason + "\n"]})


# -- launchers -------------------------------------------------------------------------------------
class Launcher:
    """Places jobs (see :func:`make_job`). ``submit`` returns a future with ``done()``,
    ``result()`` and ``cancel()``; ``slots`` is how many jobs it runs at once."""

    kind = ""

    def __init__(self, target: str | None = None):
        self.target = target
        self.slots = 1

    def __repr__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    def submit(self, job: dict) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine's resources (a cluster started here is stopped)."""

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalLauncher(Launcher):
    """``local[:K]``: K jobs at a time, each a process on this machine."""

    kind = "local"

    def __init__(self, target: str | None = None):
        super().__init__(target)
        from concurrent.futures import ThreadPoolExecutor

        self.slots = _count(target, "local") if target else (os.cpu_count() or 1)
        # a thread per slot only waits on its job's process: the work is in the process
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="labbook-local")

    def submit(self, job: dict) -> Any:
        return self._pool.submit(execute_job, job)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskLauncher(Launcher):
    """``dask[:SCHEDULER]``: a task per job on a Dask distributed cluster (a LocalCluster of
    one single-threaded worker process per CPU when no scheduler address is given)."""

    kind = "dask"

    def __init__(self, target: str | None = None, workers: int | None = None):
        super().__init__(target)
        distributed = _engine("dask.distributed", "dask")
        self._cluster = None
        if target and target.isdigit():
            workers, target = _count(target, "dask"), None
        if target:
            self.client = distributed.Client(target)
        else:
            self._cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=None)
            self.client = distributed.Client(self._cluster)
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, job: dict) -> Any:
        return self.client.submit(execute_job, job, pure=False)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


class RayLauncher(Launcher):
    """``ray[:ADDRESS]``: a Ray task per job (a local Ray when no address is given)."""

    kind = "ray"

    def __init__(self, target: str | None = None, cpus: int | None = None):
        super().__init__(target)
        ray = _engine("ray", "ray")
        self._ray = ray
        if target and target.isdigit():
            cpus, target = _count(target, "ray"), None
        self._started = not ray.is_initialized()
        if self._started:
            if target:
                ray.init(address=target, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False,
                         logging_level="WARNING", log_to_driver=False)
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(num_cpus=1, max_retries=0)(execute_job)

    def submit(self, job: dict) -> Any:
        return _RayFuture(self._ray, self._task.remote(job))

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


class _RayFuture:
    def __init__(self, ray: Any, ref: Any):
        self._ray = ray
        self.ref = ref

    def done(self) -> bool:
        ready, _ = self._ray.wait([self.ref], timeout=0)
        return bool(ready)

    def result(self) -> Any:
        return self._ray.get(self.ref)

    def cancel(self) -> None:
        self._ray.cancel(self.ref, force=True)


class SubmititLauncher(Launcher):
    """``submitit[:slurm|local]``: a Slurm job per job through submitit (``local``: submitit's
    local executor, jobs as processes here). ``folder`` keeps submitit's files (logs, pickles):
    by default ``labbook-submitit/`` in the working directory for Slurm (it must be on a file
    system the nodes share), a temporary directory for local jobs."""

    kind = "submitit"

    def __init__(self, target: str | None = None, folder: str | None = None,
                 slots: int | None = None, **parameters: Any):
        cluster = target or "slurm"
        if cluster not in ("slurm", "local"):
            raise LauncherError(f"Unknown submitit cluster {cluster!r} in --launcher "
                                f"submitit:{cluster}: use submitit:slurm or submitit:local.")
        super().__init__(cluster)
        submitit = _engine("submitit", "slurm")
        self._tmp = None
        if folder is None:
            if cluster == "local":
                self._tmp = tempfile.TemporaryDirectory(prefix="labbook-submitit-")
                folder = self._tmp.name
            else:
                folder = os.path.abspath("labbook-submitit")
        self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        self.executor.update_parameters(timeout_min=parameters.pop("timeout_min", 24 * 60),
                                        **parameters)
        self.slots = slots or (os.cpu_count() or 1 if cluster == "local" else 16)

    def submit(self, job: dict) -> Any:
        return self.executor.submit(execute_job, job)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


_LAUNCHERS = {"local": LocalLauncher, "dask": DaskLauncher, "ray": RayLauncher,
              "submitit": SubmititLauncher}
_EXTRAS = {"dask": "dask", "ray": "ray", "submitit": "slurm"}


def _engine(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LauncherError(f"The {extra} launcher needs {module.split('.')[0]}: "
                            f"pip install 'labbook[{extra}]'.") from None


def _count(text: str, kind: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise LauncherError(f"--launcher {kind}:{text}: {kind} takes a number of processes "
                            f"above 0, e.g. {kind}:4.")
    return count


def parse_launcher(spec: Any) -> Launcher:
    """The launcher of a spec ``local[:K]``, ``dask[:SCHEDULER]``, ``ray[:ADDRESS]`` or
    ``submitit[:slurm|local]`` (a :class:`Launcher` is returned as it is)."""
    if isinstance(spec, Launcher):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise LauncherError(f"Bad launcher {spec!r}: use local[:K], dask[:SCHEDULER], "
                            "ray[:ADDRESS] or submitit[:slurm|local].")
    kind, sep, target = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in _LAUNCHERS:
        raise LauncherError(f"Unknown launcher {kind!r} in {spec!r}: use local[:K], "
                            "dask[:SCHEDULER], ray[:ADDRESS] or submitit[:slurm|local].")
    if sep and not target:
        raise LauncherError(f"--launcher {spec}: nothing after ':' (write {kind} alone for "
                            "its default).")
    if target and (kind == "local" or target.isdigit()):
        _count(target, kind)
    elif kind == "submitit" and target not in ("", "slurm", "local"):
        raise LauncherError(f"Unknown submitit cluster {target!r} in --launcher {spec}: use "
                            "submitit:slurm or submitit:local.")
    return _LAUNCHERS[kind](target or None)


# -- the queue -------------------------------------------------------------------------------------
def run_queue(script: str, store: str, launcher: Any, experiment: str,
              max_runs: int | None = None, progress: bool | None = None,
              parallel: int | None = None) -> Progress:
    """Execute the queued runs of ``experiment`` (defined by ``script``) in ``store`` through
    ``launcher``: ``parallel`` jobs at a time (default its slots), the next queued run (highest
    priority, then oldest) placed as each ends, until none is queued or ``max_runs`` were
    placed. Runs queued meanwhile are taken too. Returns the final counts."""
    from labbook.stores import open_store
    from labbook.stores.base import claim_order

    if max_runs is not None and (not isinstance(max_runs, int) or max_runs < 0):
        raise LauncherError(f"--max-runs takes a whole number, not below 0, got {max_runs!r}.")
    owned = not isinstance(launcher, Launcher)
    placer = parse_launcher(launcher)
    slots = parallel or placer.slots
    board = Progress(f"queue {experiment}", live=progress)  # see Progress for None
    reader = open_store(store)
    pending: dict[Any, Any] = {}
    placed: set = set()
    try:
        while True:
            fresh = 0
            if len(pending) < slots and (max_runs is None or len(placed) < max_runs):
                queued = sorted(reader.find({"status": "QUEUED",
                                             "experiment.name": experiment}), key=claim_order)
                for doc in queued:
                    if len(pending) >= slots or (max_runs is not None
                                                 and len(placed) >= max_runs):
                        break
                    if doc["_id"] in placed:
                        continue
                    placed.add(doc["_id"])
                    pending[placer.submit(make_job(script, store, doc["_id"]))] = doc["_id"]
                    fresh += 1
            if fresh:
                board.started(fresh)
            if not pending:
                return board
            for future in wait_any(list(pending)):
                run_id = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the engine lost the job; the store has the run
                    print(f"labbook run-queue: the job of run {run_id} failed in the "
                          f"launcher: {type(exc).__name__}: {exc}", file=sys.stderr)
                    found = reader.get(run_id) or {}
                    outcome = {"status": found.get("status"), "claimed": True}
                board.ended(outcome.get("status") if outcome.get("claimed") else None,
                            run_id=run_id)
    finally:
        for future in pending:
            try:
                future.cancel()
            except Exception:  # an engine that cannot cancel: its job finds the run taken
                pass
        reader.close()
        board.close()
        if owned:
            placer.close()


# -- progress --------------------------------------------------------------------------------------
class Progress:
    """Counts of a sweep's trials or a queue's runs (done, failed, pruned, running) and the best
    value so far, shown live: a tqdm bar when ``stream`` is a terminal; otherwise, with
    ``live=True``, a plain line per change::

        sweep 1a2b: 3 done, 1 failed, 0 pruned, 2 running, best loss 0.125 (run 7)

    ``live=None`` shows the bar on a terminal and nothing otherwise; ``live=False`` nothing
    (the counts stay readable)."""

    def __init__(self, title: str, total: int | None = None, metric: str | None = None,
                 goal: str = "minimize", stream: Any = None, live: bool | None = None):
        self.title = title
        self.total = total
        self.metric = metric
        self.goal = goal
        self.done = self.failed = self.pruned = self.running = self.skipped = self.requeued = 0
        self.failed_runs: list = []  # ids of the runs counted as failed, when given
        self.best: float | None = None
        self.best_run: Any = None
        self._stream = stream if stream is not None else sys.stdout
        self._live = live
        self._bar: Any = None
        self._last = ""
        if live is not False and _is_terminal(self._stream):
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=title, file=self._stream, unit="run",
                                 dynamic_ncols=True)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.pruned

    def started(self, n: int = 1) -> None:
        self.running += n
        self._show()

    def ended(self, status: str | None, value: Any = None, run_id: Any = None) -> None:
        """One job ended with the run's ``status`` (None: not run, e.g. taken by another)."""
        self.running = max(0, self.running - 1)
        if status == "COMPLETED":
            self.done += 1
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and value == value and (self.best is None or (
                        value < self.best if self.goal == "minimize" else value > self.best)):
                self.best, self.best_run = float(value), run_id
        elif status == "PRUNED":
            self.pruned += 1
        elif status == "QUEUED":  # a dead run put back in the queue
            self.requeued += 1
        elif status is None or status == "RUNNING":
            self.skipped += 1
        else:
            self.failed += 1
            if run_id is not None:
                self.failed_runs.append(run_id)
        if self._bar is not None and status is not None:
            self._bar.update(1)
        self._show()

    def line(self) -> str:
        parts = [f"{self.done} done", f"{self.failed} failed", f"{self.pruned} pruned",
                 f"{self.running} running"]
        if self.requeued:
            parts.append(f"{self.requeued} re-queued")
        if self.skipped:
            parts.append(f"{self.skipped} taken elsewhere")
        if self.total is not None:
            parts[0] = f"{self.done}/{self.total} done"
        if self.metric is not None:
            parts.append("best -" if self.best is None else
                         f"best {self.metric} {self.best:.6g} (run {self.best_run})")
        return f"{self.title}: " + ", ".join(parts)

    def _show(self) -> None:
        if self._live is False:
            return
        text = self.line()
        if self._bar is not None:
            self._bar.set_postfix_str(text.partition(": ")[2], refresh=True)
        elif self._live and text != self._last:
            print(text, file=self._stream, flush=True)
        self._last = text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def wait_any(futures: list, poll: float = 0.05) -> list:
    """The futures of ``futures`` that are done, waiting until one is."""
    while True:
        ready = [future for future in futures if future.done()]
        if ready or not futures:
            return ready
        time.sleep(poll)
