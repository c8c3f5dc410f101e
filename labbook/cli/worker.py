"""``labbook worker EXP.py --store URL``: execute the queued runs of an experiment.

The worker claims queued runs of the script's experiment (``Store.claim_queued``: highest
priority first, then the oldest) and runs each in a child process, ``python EXP.py`` with
the environment variable ``LABBOOK_WORKER_RUN`` set to ``{"store", "id", "worker"}`` (see
:func:`labbook.commandline._claimed_run_args`): the child executes the stored command with the
queued run's updates, seed and options, and records into the same run (its start replaces the
claimed document, as a queued run's start does), so the run goes QUEUED -> RUNNING ->
COMPLETED / FAILED / INTERRUPTED under its id. A crash ends the child, not the worker.

Until its child has started the run, the worker heartbeats the claimed run. Before each claim it
looks for dead runs of the experiment (RUNNING, reported DIED: heartbeat stale) and re-queues
each, at most ``--max-requeues`` times (``meta.requeues``), then marks it FAILED. Both go
through ``Store.update_if``, a compare-and-set on the run's status and heartbeat: of the workers
that noticed one death, one re-queues it.

SIGTERM: stop claiming, let the children finish, exit 0. A second SIGTERM sends the children
SIGINT (their runs end INTERRUPTED) and the worker exits with 3 once they have ended. SIGINT
(Ctrl-C, which a terminal sends to the children too): no more claims, exit 3 once they end.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from labbook.errors import LabbookError, StoreUnusableError, UsageError

__all__ = ["Worker", "experiment_name", "cmd_worker"]

#: seconds between the worker's heartbeats of a claimed run whose child has not started it
CLAIM_BEAT = 1.0
#: seconds between two looks for dead runs
DEAD_SCAN = 2.0
#: exit status after the children were interrupted
EXIT_INTERRUPTED = 3


def experiment_name(script: str) -> str:
    """The name of the experiment defined by ``script`` (executed once, not as ``__main__``,
    so ``@ex.automain`` does not run it)."""
    from labbook.experiment import experiment_in_script

    return experiment_in_script(script, "__labbook_worker__", "labbook worker").name


@dataclass
class _Child:
    run_id: Any
    proc: subprocess.Popen
    heartbeat: Any  # the claimed run's heartbeat as last written (None once started)
    beat_at: float = field(default_factory=time.monotonic)
    started: bool = False


class Worker:
    """One worker process: claims, runs children, re-queues dead runs (see the module doc)."""

    def __init__(self, script: str, url: str, *, name: str | None = None,
                 max_runs: int | None = None, idle_exit: float | None = None,
                 concurrency: int = 1, max_requeues: int = 3, poll: float = 1.0,
                 log: Callable[[str], None] | None = None, progress: bool | None = None):
        if concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {concurrency}.")
        if max_requeues < 0 or (max_runs is not None and max_runs < 0):
            raise UsageError("--max-runs and --max-requeues cannot be negative.")
        if poll <= 0 or (idle_exit is not None and idle_exit < 0):
            raise UsageError("--poll must be positive and --idle-exit not negative.")
        self.script = script
        self.url = url
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.max_runs = max_runs
        self.idle_exit = idle_exit
        self.concurrency = concurrency
        self.max_requeues = max_requeues
        self.poll = poll
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.children: list[_Child] = []
        self.claimed = 0
        self.stopping = False
        self.interrupting = False
        self.store: Any = None
        self.experiment = ""
        #: counts of the runs this worker executed (labbook.launchers.Progress): a live bar on
        #: a terminal, a plain line on standard output per change otherwise; False: none
        self.show_progress = progress
        self.progress: Any = None

    def log(self, text: str) -> None:
        self._log(f"labbook worker {self.name}: {text}")

    # -- setup -------------------------------------------------------------------------------------
    def open(self) -> None:
        from labbook.stores import open_store, redact_url

        self.experiment = experiment_name(self.script)
        try:
            self.store = open_store(self.url)
            self.store.check()
        except LabbookError:
            raise
        except Exception as exc:  # a driver's own error: one line, without the password
            raise StoreUnusableError(
                f"Cannot use the store {redact_url(self.url)}: {type(exc).__name__}: "
                f"{redact_url(str(exc).splitlines()[0] if str(exc) else '')}",
                self.url) from None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM and not self.stopping:
            self.stopping = True
            self.log("SIGTERM: no more claims; waiting for the current run(s) to finish "
                     "(SIGTERM again interrupts them)")
            return
        self.stopping = True
        if signum == signal.SIGINT:
            # Ctrl-C in a terminal reaches the whole process group, the children included: a
            # second SIGINT from here could cut short their recording of the interruption
            if not self.interrupting:
                self.interrupting = True
                self.log("SIGINT: no more claims; the current run(s) end INTERRUPTED")
            return
        if not self.interrupting:
            self.interrupting = True
            self.log("interrupting the current run(s)")
            for child in self.children:
                if child.proc.poll() is None:
                    try:
                        child.proc.send_signal(signal.SIGINT)
                    except OSError:
                        pass

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Work until told to stop, idle for ``idle_exit`` or done ``max_runs``; the exit
        status."""
        if self.store is None:
            self.open()
        from labbook.launchers import Progress

        self.progress = Progress(f"worker {self.name}", live=self.show_progress)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop()
        finally:
            self.progress.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.store.close()

    def _loop(self) -> int:
        idle_since = time.monotonic()
        next_claim = 0.0
        next_scan = 0.0
        said_idle = False
        while True:
            self._reap()
            self._beat_claims()
            done = self.max_runs is not None and self.claimed >= self.max_runs
            if (self.stopping or done) and not self.children:
                if self.interrupting:
                    return EXIT_INTERRUPTED
                self.log(f"exiting after {self.claimed} run(s)")
                return 0
            now = time.monotonic()
            if not self.stopping and not done and len(self.children) < self.concurrency \
                    and now >= next_claim:
                if now >= next_scan:
                    self.requeue_dead()
                    next_scan = now + DEAD_SCAN
                doc = self.store.claim_queued(self.name, experiment=self.experiment)
                if doc is not None:
                    self._spawn(doc)
                    idle_since = now
                    said_idle = False
                    continue
                next_claim = now + self.poll
                if not self.children:
                    if not said_idle:
                        self.log(f"nothing queued for experiment {self.experiment!r}")
                        said_idle = True
                    if self.idle_exit is not None and now - idle_since >= self.idle_exit:
                        self.log(f"idle for {self.idle_exit:g} s; exiting after "
                                 f"{self.claimed} run(s)")
                        return 0
            else:
                if self.children:
                    idle_since = now
            # a finished child is noticed within 10 ms (the next run waits on it); idle, 50 ms
            time.sleep(0.01 if self.children else 0.05)

    def _spawn(self, doc: dict) -> None:
        from labbook.launchers import child_env

        run_id = doc["_id"]
        # without the variables of a parent run: the child starts the claimed run itself
        env = child_env(self.url, run_id, self.name)
        self.claimed += 1
        requeues = (doc.get("meta") or {}).get("requeues")
        again = f", re-queued {requeues} time(s) before" if requeues else ""
        self.log(f"claimed run {run_id} ({doc.get('command')}{again})")
        try:
            proc = subprocess.Popen([sys.executable, self.script], env=env)
        except OSError as exc:
            self._fail_claim(run_id, doc.get("heartbeat"),
                             f"labbook worker {self.name} could not start {sys.executable} "
                             f"{self.script}: {exc}")
            return
        self.children.append(_Child(run_id, proc, doc.get("heartbeat")))
        if self.progress is not None:
            self.progress.started()

    def _beat_claims(self) -> None:
        """Heartbeat the claimed runs whose child has not started them yet (compare-and-set on
        the beat last written: once the child's start replaced the run, nothing is written)."""
        from labbook.clock import utcnow

        now = time.monotonic()
        for child in self.children:
            if child.started or now - child.beat_at < CLAIM_BEAT:
                continue
            beat = utcnow()
            child.beat_at = now
            if self.store.update_if(child.run_id, {"status": "RUNNING", "start_time": None,
                                                   "heartbeat": child.heartbeat},
                                    {"heartbeat": beat}):
                child.heartbeat = self._stored_beat(child.run_id, beat)
            else:
                child.started = True

    def _stored_beat(self, run_id: Any, beat: Any) -> Any:
        """The heartbeat as the store gives it back (Mongo keeps milliseconds)."""
        doc = self.store.get(run_id)
        return beat if doc is None else doc.get("heartbeat")

    def _reap(self) -> None:
        for child in list(self.children):
            code = child.proc.poll()
            if code is None:
                continue
            self.children.remove(child)
            doc = self.store.get(child.run_id) or {}
            status = doc.get("status")
            if status == "RUNNING" and doc.get("start_time") is None and \
                    (doc.get("meta") or {}).get("worker") == self.name:
                # the child ended before starting the run
                if self.interrupting:
                    self._put_back(child.run_id, doc)
                else:
                    self._fail_claim(child.run_id, doc.get("heartbeat"),
                                     f"labbook worker {self.name}: python {self.script} exited "
                                     f"with status {code} before starting run {child.run_id}; "
                                     "its error is in the worker's output.")
                    status = "FAILED"
            elif status == "RUNNING":
                # the child died without ending the run (killed): re-queue it now
                self._requeue_or_fail(doc, reason=f"its process ended with status {code} "
                                                  "without ending the run")
                status = (self.store.get(child.run_id) or {}).get("status")
            self.log(f"run {child.run_id} finished: {status} (exit status {code})")
            if self.progress is not None:
                self.progress.ended(status, run_id=child.run_id)

    def _put_back(self, run_id: Any, doc: dict) -> None:
        meta = dict(doc.get("meta") or {})
        meta.pop("worker", None)
        if self.store.update_if(run_id, {"status": "RUNNING", "start_time": None,
                                         "heartbeat": doc.get("heartbeat")},
                                {"status": "QUEUED", "heartbeat": None, "meta": meta}):
            self.log(f"run {run_id} was not started; queued again")

    def _fail_claim(self, run_id: Any, heartbeat: Any, reason: str) -> None:
        from labbook.clock import utcnow

        self.store.update_if(run_id, {"status": "RUNNING", "start_time": None,
                                      "heartbeat": heartbeat},
                             {"status": "FAILED", "stop_time": utcnow(),
                              "fail_trace": [reason + "\n"]})

    # -- dead runs ---------------------------------------------------------------------------------
    def requeue_dead(self) -> None:
        """Re-queue (or fail, past ``max_requeues``) the experiment's runs reported DIED."""
        from labbook.stores.query import reported_status

        mine = {child.run_id for child in self.children}
        for doc in self.store.find({"status": "DIED", "experiment.name": self.experiment}):
            if doc["_id"] in mine or reported_status(doc) != "DIED":
                continue
            self._requeue_or_fail(doc, reason="its heartbeat stopped (its worker or process "
                                              "died)")

    def _requeue_or_fail(self, doc: dict, reason: str) -> None:
        from labbook.clock import utcnow

        run_id = doc["_id"]
        meta = dict(doc.get("meta") or {})
        requeues = meta.get("requeues") if isinstance(meta.get("requeues"), int) else 0
        expected = {"status": "RUNNING", "heartbeat": doc.get("heartbeat")}
        if requeues >= self.max_requeues:
            trace = (f"labbook worker {self.name}: run {run_id} {reason} after being re-queued "
                     f"{requeues} time(s); not re-queued again (--max-requeues "
                     f"{self.max_requeues}).\n")
            if self.store.update_if(run_id, expected, {"status": "FAILED",
                                                       "stop_time": utcnow(),
                                                       "fail_trace": [trace]}):
                self.log(f"run {run_id} {reason}; re-queued {requeues} time(s) already: "
                         "marked FAILED")
            return
        meta.pop("worker", None)
        meta["requeues"] = requeues + 1
        if self.store.update_if(run_id, expected, {"status": "QUEUED", "heartbeat": None,
                                                   "start_time": None, "stop_time": None,
                                                   "result": None, "meta": meta}):
            self.log(f"run {run_id} {reason}: queued again ({requeues + 1} of "
                     f"{self.max_requeues})")


def cmd_worker(script: str, url: str | None, *, name: str | None = None,
               max_runs: int | None = None, idle_exit: float | None = None,
               concurrency: int = 1, max_requeues: int = 3, poll: float = 1.0) -> int:
    """``labbook worker``: the exit status."""
    from labbook.stores import default_url

    worker = Worker(script, url or default_url(), name=name, max_runs=max_runs,
                    idle_exit=idle_exit, concurrency=concurrency, max_requeues=max_requeues,
                    poll=poll, progress=True)
    worker.open()
    worker.log(f"executing queued runs of {worker.experiment!r} from "
               f"{_redacted(worker.url)} ({worker.concurrency} at a time)")
    return worker.run()


def _redacted(url: str) -> str:
    from labbook.stores import redact_url

    return redact_url(url)
