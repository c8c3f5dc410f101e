"""QueuedObserver: any observer behind a background thread, with retries and a journal.

``QueuedObserver(observer)`` (``options={"--queued": True}`` or ``--queued`` on the command
line wraps every observer of a run) hands each event to a background thread that delivers it
to ``observer`` in order, retrying with exponential backoff. Your code never waits on a slow or
dead store:

* **Start.** A store hands out the run's id in ``started_event``/``queued_event``, so the run
  waits for that answer, but at most ``start_wait`` seconds (default 2). When the store fails
  or has not answered in time, the run goes on without an id from it (another observer may
  still decide it) and the thread keeps delivering the start; nothing else of the run is
  delivered before it. A refusal within that time -- an :class:`~labbook.errors.ObserverError`
  such as a taken ``--id`` -- is raised as if the observer were not queued.
* **End.** ``join()`` waits at most ``max_wait`` seconds for the queue to drain, then appends
  every undelivered event to an append-only journal under ``failure_dir`` (files the events
  refer to are copied next to it) and logs how to replay it:
  ``labbook sync FAILURE_DIR --store URL``. Replay is idempotent: ``delivered.json`` records
  how many events reached which run id, so running it again sends nothing twice.

While the store is away
-----------------------
The first failure logs one WARNING (the store's URL, password hidden, and why), the store's
return another. A heartbeat waiting in the queue is replaced by a newer one (it sets whole
fields), so a long outage keeps one copy of the captured output, not one per beat; metric
batches, artifacts and resources all wait. An artifact file is copied aside while its event
waits (the run may delete it; the copies go at the end). The end's warning is ONE line: how many
events (and metric points) of which run wait in which journal, and the ``labbook sync`` command
naming the store without its password. A journal never holds a password (the run masks
secrets before any observer sees its events) and names its store, and a journal of run N of
one store is never replayed into another store.

:class:`~labbook.observers.durable.DurableObserver`, the default wrapper of store observers, is
this class waiting for each delivery while the store answers.

Each event is delivered or journaled, never both
------------------------------------------------
When ``join()`` gives up while the thread is *inside* a call to the store, nobody can know yet
whether that call will land. Waiting for it would break the bounded wait, interrupting it is
impossible, and leaving it out of the journal would lose it if the call fails or the process
ends. So the event is journaled marked ``"in_doubt": true`` and the thread finishes the call
(it is not retried). When the call returns, the thread writes its outcome into
``in_flight.json`` next to the journal: delivered (with the run id, for a start) or failed.
Replay follows it: a delivered event is skipped, a failed one delivered.

The outcome stays unknown only when the process ended before the call returned (the thread
does not keep a finished program alive). Replay then asks the target store: a start counts as
stored when the store has a run with the same command, host and start time (its id is taken
over); a batch of metrics when every one of its series in the store ends with the batch's
steps; heartbeats, resources, artifacts and the end of the run set the same fields again, so
they are simply delivered again. Either way no event is lost and none is stored twice.

One thread serves all the runs of an observer, in order: a call still under way when a run
ended finishes before the next run's start is sent, so two runs never share the wrapped
observer at the same time. Replay after the run's process has ended; a replay while it still
runs could race the thread.
"""
from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from typing import Any

from labbook import clock, serialize
from labbook.errors import LabbookError, ObserverError
from labbook.fileio import write_atomic
from labbook.observers.base import RunObserver
from labbook.records import Fields

__all__ = ["log", "JOURNAL", "PROGRESS", "IN_FLIGHT", "DEFAULT_FAILURE_DIR", "QueuedObserver",
           "sync_url", "write_journal", "record_outcome", "replay"]

log = logging.getLogger("labbook.observers.queued")

_SYNC_EVENTS = ("started_event", "queued_event")
#: where journals go when neither the observer nor the settings say otherwise (relative to the
#: working directory of the run)
DEFAULT_FAILURE_DIR = "labbook_failed_runs"
JOURNAL = "events.jsonl"
PROGRESS = "delivered.json"
IN_FLIGHT = "in_flight.json"
#: seconds an idle worker thread lingers before it ends (a new one starts with the next event)
_IDLE_EXIT = 1.0
#: seconds the worker waits for join() to finish writing the journal it must annotate
_JOURNAL_WAIT = 60.0


class _StartWaiter(Fields):
    """The answer to a start, handed from the worker to the run's thread."""

    __slots__ = ("done", "result", "error", "gave_up")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Exception | None = None
        self.gave_up = False  # the run stopped waiting; the worker keeps retrying on its own


class _Handoff(Fields):
    """Where the worker records the outcome of the call join() could not wait for."""

    __slots__ = ("ready", "directory", "index")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.directory: str | None = None
        self.index = 0


class _Item:
    """One event on its way to the wrapped observer (compared by identity)."""

    __slots__ = ("event", "kwargs", "generation", "waiter", "settled", "delivered", "result",
                 "abandoned", "handoff")

    def __init__(self, event: str, kwargs: dict, generation: int,
                 waiter: _StartWaiter | None = None) -> None:
        self.event = event
        self.kwargs = kwargs
        self.generation = generation  # which run: the observer is reused by later runs
        self.waiter = waiter
        #: set by the worker after the first attempt (delivered or not): a caller may wait
        self.settled = threading.Event()
        self.delivered = False
        self.result: Any = None  # what the wrapped observer returned (set before settled)
        self.abandoned = False  # journaled by join() while no call was under way
        self.handoff: _Handoff | None = None  # journaled "in doubt" while a call was under way

    def __repr__(self) -> str:
        return f"_Item({self.event!r}, generation={self.generation})"


class QueuedObserver(RunObserver):
    """Deliver ``observer``'s events from a background thread; journal what cannot be sent.

    ``start_wait``: seconds the start of a run waits for the store's answer (its id).
    ``max_wait``: seconds the end of a run waits for the queue to drain before journaling.
    ``backoff``/``max_backoff``: the first and the longest pause between retries.
    """

    def __init__(self, observer: RunObserver, failure_dir: str | os.PathLike | None = None,
                 max_wait: float = 10.0, backoff: float = 0.1, max_backoff: float = 5.0,
                 start_wait: float = 2.0):
        self.observer = observer
        self.priority = getattr(observer, "priority", 0)
        # MongoObserver(failure_dir=...) names where its journals go
        failure_dir = (failure_dir or getattr(observer, "failure_dir", None)
                       or os.environ.get("LABBOOK_FAILURE_DIR"))
        self.failure_dir = os.path.abspath(os.fspath(failure_dir or DEFAULT_FAILURE_DIR))
        self.max_wait = max_wait
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.start_wait = start_wait
        # One lock guards the queue and the state of the delivery under way; the worker and
        # join() hand events over to each other under it, so no event is in both hands.
        self._cond = threading.Condition()
        self._items: collections.deque[_Item] = collections.deque()
        self._current: _Item | None = None
        self._calling = False  # the worker is inside a call to the wrapped observer
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._run_id: Any = None
        #: the error of the last failed attempt while the store is away (None: healthy)
        self._outage: Exception | None = None
        #: copies of artifact files waiting for delivery
        self._spool: str | None = None

    @property
    def store(self) -> Any:
        """The wrapped observer's store (None for an observer without one)."""
        return getattr(self.observer, "store", None)

    def describe(self) -> str:
        """The wrapped observer's store URL (password hidden), or its class name."""
        url = getattr(self.store, "url", None)
        if url:
            from labbook.stores import redact_url

            return redact_url(str(url))
        return type(self.observer).__name__

    def preflight(self) -> None:
        """Check the wrapped observer's store before the run; an unusable store does not stop
        the run (that is what ``--queued`` asks for): its events are retried and journaled."""
        check = getattr(self.observer, "preflight", None)
        if check is None:
            return
        try:
            check()
        except LabbookError as exc:
            log.warning("%s; the run goes on and its events are retried in the background, or "
                        "saved to %s (labbook sync %s --store URL replays them).",
                        str(exc).rstrip("."), self.failure_dir, self.failure_dir)

    # -- the start -----------------------------------------------------------------------------
    def started_event(self, **kwargs):  # type: ignore[override]
        return self._start("started_event", kwargs)[0]

    def queued_event(self, **kwargs):  # type: ignore[override]
        run_id, answered = self._start("queued_event", kwargs)
        if not answered:
            # A queue-only run ends here and is never joined: flush now, without waiting.
            self._flush(wait=0.0)
        return run_id

    def _start(self, event: str, kwargs: dict) -> tuple[Any, bool]:
        """Queue the start and wait up to ``start_wait`` for it; ``(id, answered)``."""
        waiter = _StartWaiter()
        with self._cond:
            self._generation += 1
            self._run_id = None
            self._enqueue(_Item(event, _snapshot_start(kwargs), self._generation, waiter))
        waiter.done.wait(self.start_wait)
        with self._cond:
            waiter.gave_up = True
            answered, error, result = waiter.done.is_set(), waiter.error, waiter.result
        name = type(self.observer).__name__
        if answered and error is None:
            return result, True
        if isinstance(error, ObserverError):
            raise error  # a refusal, not an outage: retrying would not help
        if error is not None:
            log.warning("%s could not record the start of the run (%s: %s); the run goes on and "
                        "its events are retried in the background, or saved to %s if the store "
                        "does not come back by the end of the run.", name,
                        type(error).__name__, error, self.failure_dir)
        else:
            log.warning("%s did not record the start of the run within %.1f s (start_wait); "
                        "the run goes on without waiting and its events are delivered in the "
                        "background, or saved to %s if the store does not answer by the end of "
                        "the run.", name, self.start_wait, self.failure_dir)
        return None, False

    # -- queued events -------------------------------------------------------------------------
    def _put(self, event: str, kwargs: dict) -> Any:
        with self._cond:
            self._enqueue(_Item(event, kwargs, self._generation))
        return None

    def _enqueue(self, item: _Item) -> None:
        """Append ``item`` and make sure a worker runs (call with the lock held)."""
        if item.event == "heartbeat_event" and self._items:
            # a heartbeat sets whole fields (info, output, beat time, result): the newest one
            # replaces those still waiting, so a long outage does not pile up copies of the output
            kept: collections.deque[_Item] = collections.deque()
            for waiting in self._items:
                if waiting.event == "heartbeat_event" and waiting.generation == item.generation:
                    waiting.settled.set()
                else:
                    kept.append(waiting)
            self._items = kept
        self._items.append(item)
        self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True,
                                            name="labbook-queued-observer")
            self._thread.start()

    def heartbeat_event(self, info, captured_out, beat_time, result):
        # info keeps changing while the event waits in the queue: send it as it is now
        self._put("heartbeat_event", {"info": json.loads(serialize.dumps(info, None)),
                                      "captured_out": captured_out, "beat_time": beat_time,
                                      "result": result})

    def log_metrics(self, metrics_by_name, info):
        self._put("log_metrics", {"metrics_by_name": metrics_by_name, "info": {}})

    def completed_event(self, stop_time, result):
        self._put("completed_event", {"stop_time": stop_time, "result": result})

    def interrupted_event(self, interrupt_time, status):
        self._put("interrupted_event", {"interrupt_time": interrupt_time, "status": status})

    def failed_event(self, fail_time, fail_trace):
        self._put("failed_event", {"fail_time": fail_time, "fail_trace": fail_trace})

    def config_event(self, config, changes):
        self._put("config_event", {"config": json.loads(serialize.dumps(config, None)),
                                   "changes": json.loads(serialize.dumps(changes, None))})

    def resource_event(self, filename):
        self._put("resource_event", {"filename": filename})

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        # the run may delete the file once the event is sent: keep a copy while it waits
        self._put("artifact_event", {"name": name, "filename": self._copy_of(filename),
                                     "metadata": metadata, "content_type": content_type})

    def artifact_version_event(self, name, files, type=None, metadata=None, aliases=()):
        # the files may change or go once the run goes on: copies wait in the queue
        files = [dict(f, source=self._copy_of(f["source"])) for f in files]
        self._put("artifact_version_event", {"name": name, "files": files, "type": type,
                                             "metadata": metadata, "aliases": list(aliases)})
        return {"pending": True}

    def artifact_use_event(self, name, digest):
        self._put("artifact_use_event", {"name": name, "digest": digest})

    def _copy_of(self, filename: Any) -> Any:
        """A private copy of an artifact file that waits for delivery (removed at the end)."""
        if not isinstance(filename, str | os.PathLike) or not os.path.isfile(filename):
            return filename
        with self._cond:
            if self._spool is None:
                self._spool = tempfile.mkdtemp(prefix="labbook-queued-")
            spool = self._spool
        directory = tempfile.mkdtemp(dir=spool)
        copy = os.path.join(directory, os.path.basename(os.fspath(filename)))
        shutil.copyfile(filename, copy)
        return copy

    def _drop_spool(self) -> None:
        with self._cond:
            spool, self._spool = self._spool, None
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)

    # -- the worker ----------------------------------------------------------------------------
    def _work(self) -> None:
        """Deliver events until the queue stays empty; nothing escapes this thread."""
        try:
            while True:
                item = self._next_item()
                if item is None:
                    return
                self._deliver(item)
        except BaseException:  # nothing may escape a thread: report it, hand the event back
            log.error("The delivery thread of QueuedObserver(%s) stopped unexpectedly; the "
                      "events it still had are journaled when the run ends.",
                      type(self.observer).__name__, exc_info=True)
            self._orphan_current()

    def _next_item(self) -> _Item | None:
        """The next event to deliver, None when the worker should end (idle)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, timeout=_IDLE_EXIT):
                self._thread = None
                return None
            item = self._current = self._items.popleft()
            return item

    def _orphan_current(self) -> None:
        """After a crash: put the event under way back so join() journals it."""
        with self._cond:
            item, self._current, self._calling = self._current, None, False
            if item is not None and not item.abandoned and item.handoff is None:
                self._items.appendleft(item)
            if self._thread is threading.current_thread():
                self._thread = None
            self._cond.notify_all()

    def _deliver(self, item: _Item) -> None:
        """Call the wrapped observer until it succeeds or join() takes the event over."""
        delay = self.backoff
        while True:
            with self._cond:
                if item.abandoned:  # journaled by join() while we waited to retry
                    self._finish_current()
                    return
                self._calling = True
            try:
                returned, error = getattr(self.observer, item.event)(**item.kwargs), None
            except Exception as exc:
                returned, error = None, exc
            with self._cond:
                self._calling = False
                verdict = self._after_attempt(item, returned, error)
            if verdict == "settle":
                self._settle(item, error is None, returned)
                return
            if verdict == "done":
                return
            log.debug("Delivering %s to %s failed (%s); retrying in %.2f s", item.event,
                      type(self.observer).__name__, error, delay)
            with self._cond:
                self._cond.wait_for(lambda: item.abandoned, timeout=delay)
            delay = min(delay * 2, self.max_backoff)

    def _after_attempt(self, item: _Item, returned: Any, error: Exception | None) -> str:
        """Book one call's result (lock held): ``"done"``, ``"settle"`` or ``"retry"``."""
        if item.handoff is not None:  # join() journaled it in doubt meanwhile
            self._finish_current()
            return "settle"
        waiter = item.waiter
        if error is None:
            if waiter is not None:
                self._run_id = waiter.result = returned
                waiter.done.set()
            self._finish_current()
            item.result = returned
            item.delivered = True
            item.settled.set()
            if self._outage is not None and not self._items:
                self._outage = None
                log.warning("%s answers again; the events of the run that waited meanwhile are "
                            "delivered.", self.describe())
            return "done"
        waiting = waiter is not None and not waiter.gave_up  # _start reports it
        if not (waiting and isinstance(error, ObserverError)):  # a refusal raises instead
            if self._outage is None and not waiting:
                log.warning("%s failed (%s: %s); the run goes on, its events wait and are "
                            "retried in the background, and are saved in %s if the store is not "
                            "back by the end of the run.", self.describe(),
                            type(error).__name__, _first_line(error), self.failure_dir)
            self._outage = error
        item.settled.set()
        if waiter is not None and not waiter.gave_up:
            waiter.error = error
            waiter.done.set()  # the run stops waiting at the first failure
            if isinstance(error, ObserverError):
                self._finish_current()  # raised in the run's thread: the run does not start
                return "done"
        return "retry"

    def _finish_current(self) -> None:
        self._current = None
        self._cond.notify_all()

    def _settle(self, item: _Item, delivered: bool, returned: Any) -> None:
        """Record in the journal how the call join() did not wait for ended."""
        handoff = item.handoff
        if handoff is None:
            return
        name = type(self.observer).__name__
        how = f"reached {name}" if delivered else f"failed in {name}"
        if not handoff.ready.wait(_JOURNAL_WAIT) or handoff.directory is None:
            log.warning("%s of this run %s after the run ended, but its journal could not be "
                        "annotated; replaying the journal may deliver it again.", item.event,
                        how)
        else:
            run_id = returned if item.event in _SYNC_EVENTS else None
            try:
                record_outcome(handoff.directory, handoff.index, delivered, run_id)
            except OSError as exc:
                log.warning("Could not note in %s that %s %s (%s); replaying the journal may "
                            "deliver it again.", handoff.directory, item.event, how, exc)
                return
            log.info("%s, still under way when the run ended, %s; the journal %s knows, so "
                     "replaying it does not store it twice.", item.event, how,
                     handoff.directory)
        self._join_wrapped()

    # -- the end -------------------------------------------------------------------------------
    def join(self) -> None:
        """Wait at most ``max_wait`` for the queue to drain, then journal what is left."""
        self._flush(self.max_wait)

    def _flush(self, wait: float) -> None:
        with self._cond:
            generation = self._generation
            self._cond.wait_for(lambda: not self._pending(generation), timeout=wait)
            undelivered, handoff = self._abandon(generation)
            run_id, busy = self._run_id, self._calling
        try:
            if undelivered:
                self._journal(run_id, undelivered, handoff)
        finally:
            if handoff is not None:
                handoff.ready.set()
        if not busy:
            # With a call under way the wrapped observer is not ours to touch: the worker
            # joins it when that call returns.
            self._join_wrapped()
            if not undelivered or handoff is None:
                self._drop_spool()  # the journal has its own copies

    def _open_current(self, generation: int) -> _Item | None:
        """The event under way if it is run ``generation``'s and still the worker's."""
        current = self._current
        if current is not None and current.generation == generation \
                and not current.abandoned and current.handoff is None:
            return current
        return None

    def _pending(self, generation: int) -> bool:
        """Whether events of run ``generation`` wait or are being delivered (lock held)."""
        return self._open_current(generation) is not None \
            or any(item.generation == generation for item in self._items)

    def _abandon(self, generation: int) -> tuple[list[_Item], _Handoff | None]:
        """Take every undelivered event of the run from the worker (lock held)."""
        undelivered: list[_Item] = []
        handoff = None
        current = self._open_current(generation)
        if current is not None:
            if self._calling:
                handoff = current.handoff = _Handoff()
            else:
                current.abandoned = True
            undelivered.append(current)
        kept: collections.deque[_Item] = collections.deque()
        for item in self._items:
            if item.generation == generation:
                item.abandoned = True
                undelivered.append(item)
            else:
                kept.append(item)
        self._items = kept
        self._cond.notify_all()
        return undelivered, handoff

    def _journal(self, run_id: Any, undelivered: list[_Item], handoff: _Handoff | None) -> None:
        name = type(self.observer).__name__
        target = self.describe()
        # the journal names its store by an absolute URL: sync may run in another directory
        directory, first = write_journal(
            self.failure_dir, run_id, [(item.event, item.kwargs) for item in undelivered],
            in_doubt=handoff is not None, observer=name,
            store=sync_url(target) if "://" in target else target)
        if handoff is not None:
            handoff.directory, handoff.index = directory, first
        points = sum(len(series["steps"]) for item in undelivered if item.event == "log_metrics"
                     for series in item.kwargs["metrics_by_name"].values())
        url = getattr(self.store, "url", None)
        doubt = (" (the first was still being sent; replay checks whether it arrived)"
                 if handoff is not None else "")
        log.warning(
            "%s of %s (%s) could not reach %s; they wait in %s%s. Upload them with: labbook sync "
            "%s --store %s", _count(len(undelivered), "event"),
            f"run {run_id}" if run_id is not None else "this run (no id yet)",
            _count(points, "metric point"), target, directory, doubt, self.failure_dir,
            sync_url(str(url)) if url else "URL")

    def _join_wrapped(self) -> None:
        try:
            self.observer.join()
        except Exception:
            log.debug("join of the wrapped observer failed", exc_info=True)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _snapshot_start(kwargs: dict) -> dict:
    """The start's arguments as they are now: tags added later must not leak into it."""
    kwargs = dict(kwargs)
    kwargs["meta_info"] = serialize.copy_plain(kwargs["meta_info"])
    return kwargs


# -- the journal -------------------------------------------------------------------------------

def _encode(event: str, kwargs: dict, files_dir: str) -> dict:
    data = {}
    for key, value in kwargs.items():
        if key == "metrics_by_name":  # columns: one ISO text per point, not a tag each
            value = {name: {"steps": s["steps"], "values": s["values"],
                            "timestamps": clock.to_iso(s["timestamps"])}
                     for name, s in value.items()}
        elif key == "files" and event == "artifact_version_event":
            value = [dict(f, source=_journal_copy(f.get("source"), files_dir)) for f in value]
        elif key == "filename" and isinstance(value, str) and os.path.isfile(value):
            # the file may be gone by the time the journal is replayed: keep a copy
            os.makedirs(files_dir, exist_ok=True)
            copy_path = os.path.join(files_dir,
                                     f"{secrets.token_hex(16)}_{os.path.basename(value)}")
            shutil.copyfile(value, copy_path)
            data["original_filename"] = value
            value = copy_path
        else:  # times (start_time, ...) tagged, to come back as datetimes
            value = serialize.tag_special(value, times=True)
        data[key] = value
    return {"event": event, "kwargs": data}


def _journal_copy(path: Any, files_dir: str) -> Any:
    """A copy of the file ``path`` in the journal's ``files_dir`` (``path`` if it is none)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        return path
    os.makedirs(files_dir, exist_ok=True)
    copy_path = os.path.join(files_dir, f"{secrets.token_hex(16)}_{os.path.basename(path)}")
    shutil.copyfile(path, copy_path)
    return copy_path


def _decode(record: dict) -> tuple[str, dict]:
    kwargs = {}
    original = record["kwargs"].get("original_filename")
    for key, value in record["kwargs"].items():
        if key == "original_filename":
            continue
        if key == "filename" and record["event"] == "resource_event" and original \
                and os.path.isfile(original):
            value = original  # a resource is recorded under the path the run read
        if key == "metrics_by_name":
            for name, series in value.items():
                series["timestamps"] = clock.from_iso(series["timestamps"])
                series["name"] = name
        kwargs[key] = value
    return record["event"], kwargs


def _new_journal_dir(failure_dir: str, run_id: Any) -> str:
    """A directory of its own for one journal (``os.mkdir`` is atomic across processes)."""
    os.makedirs(failure_dir, exist_ok=True)
    base = f"run_{run_id}" if run_id is not None else "run_unknown"
    names = [base] if run_id is not None else []
    while True:
        name = names.pop() if names else f"{base}_{secrets.token_hex(6)}"
        directory = os.path.join(failure_dir, name)
        try:
            os.mkdir(directory)
            return directory
        except FileExistsError:
            continue  # another run (another store, another process) has this id: new name


def sync_url(url: str) -> str:
    """``url`` as ``labbook sync`` should be given it: no password (the user's tools supply it:
    ``~/.pgpass``, a URL of their own), and an absolute SQLite path."""
    from labbook.stores import redact_url

    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path, sep, query = url[len("sqlite:///"):].partition("?")
        if path and path != ":memory:" and not path.startswith("file:"):
            url = "sqlite:///" + os.path.abspath(path) + sep + query
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = redact_url(url).split("://", 1)
    creds, _, host = rest.rpartition("@")
    return f"{scheme}://{creds.split(':', 1)[0]}@{host}"


def write_journal(failure_dir: str, run_id: Any, events: list[tuple[str, dict]],
                  in_doubt: bool = False, observer: str | None = None,
                  store: str | None = None) -> tuple[str, int]:
    """Write ``events`` to a new journal of ``run_id`` under ``failure_dir``.

    ``in_doubt`` marks the first event as possibly delivered (see the module's docstring).
    Returns the journal's directory and the index of the first event in it.
    """
    directory = _new_journal_dir(failure_dir, run_id)
    write_atomic(os.path.join(directory, "journal.json"),
                 json.dumps({"run_id": run_id, "observer": observer, "store": store,
                             "created": clock.utcnow().isoformat()}))
    with open(os.path.join(directory, JOURNAL), "a", encoding="utf-8") as fh:
        for position, (event, kwargs) in enumerate(events):
            record = _encode(event, kwargs, os.path.join(directory, "files"))
            if in_doubt and position == 0:
                record["in_doubt"] = True
            fh.write(json.dumps(record, allow_nan=True) + "\n")
    return directory, 0


def _read_json(path: str, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def _write_json(path: str, data: Any) -> None:
    """Replace ``path`` atomically: a crash leaves the old or the new content, never half."""
    write_atomic(path, json.dumps(data))


def record_outcome(directory: str, index: int, delivered: bool, run_id: Any = None) -> None:
    """Note in journal ``directory`` how the in-doubt event ``index`` ended."""
    path = os.path.join(directory, IN_FLIGHT)
    outcomes = _read_json(path, {})
    outcomes[str(index)] = {"delivered": delivered, "run_id": run_id}
    _write_json(path, outcomes)


# -- replay ------------------------------------------------------------------------------------

def replay(failure_dir: str | os.PathLike, store_url: str) -> list[tuple[str, Any, int]]:
    """Deliver every journal under ``failure_dir`` to the store at ``store_url``.

    Returns ``(journal, run id, events delivered now)`` per journal. Safe to run again: a
    journal remembers how many events reached which run id, and an event that was being sent
    when its run ended is delivered only if it did not arrive (see the module's docstring).
    """
    from labbook.observers.registry import observer_for_url

    results = []
    root = os.fspath(failure_dir)
    target = _store_key(store_url)
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        if not os.path.isfile(os.path.join(directory, JOURNAL)):
            continue
        meta = _read_json(os.path.join(directory, "journal.json"), {})
        if meta.get("run_id") is not None and meta.get("store") \
                and "://" in meta["store"] and _store_key(meta["store"]) != target:
            # events of run N of one store must not land in run N of another
            log.warning("%s holds events of run %s of %s, not of %s; skipped (upload it with "
                        "labbook sync %s --store %s).", directory, meta["run_id"], meta["store"],
                        sync_url(store_url), root, sync_url(meta["store"]))
            continue
        run_id, delivered = _replay_journal(directory, observer_for_url(store_url))
        results.append((name, run_id, delivered))
    return results


#: URL parameters that name a part of a store (the others tune the connection: timeouts, TLS...)
_IDENTITY_PARAMETERS = ("collection_prefix",)


def _store_key(url: str) -> str:
    """What identifies a store in a URL: the scheme without its driver, the host and the
    database or absolute path, and the parameters that name a part of it. The account, the
    password and the connection's settings (``?timeout=``, ``?connectTimeoutMS=``) do not."""
    from urllib.parse import parse_qsl

    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    url = sync_url(url)
    scheme, rest = url.split("://", 1)
    scheme = scheme.split("+")[0]
    scheme = {"postgres": "postgresql", "mariadb": "mysql"}.get(scheme, scheme)
    rest, _, query = rest.partition("?")
    if scheme == "file":
        rest = os.path.abspath(rest)
    else:
        rest = rest.rpartition("@")[2]
    kept = sorted((key, value) for key, value in parse_qsl(query)
                  if key in _IDENTITY_PARAMETERS)
    suffix = "?" + "&".join(f"{key}={value}" for key, value in kept) if kept else ""
    return f"{scheme}://{rest.rstrip('/')}{suffix}"


def _replay_journal(directory: str, observer: Any) -> tuple[Any, int]:
    """Deliver the events of one journal not delivered before; ``(run id, count)``."""
    meta = _read_json(os.path.join(directory, "journal.json"), {})
    progress_path = os.path.join(directory, PROGRESS)
    progress = _read_json(progress_path, {"count": 0, "run_id": meta.get("run_id")})
    outcomes = _read_json(os.path.join(directory, IN_FLIGHT), {})
    with open(os.path.join(directory, JOURNAL), encoding="utf-8") as fh:
        records = [serialize.loads_strict(line) for line in fh if line.strip()]
    observer.run_id = progress["run_id"]
    delivered = 0
    for index, record in enumerate(records):
        if index < progress["count"]:
            continue
        event, kwargs = _decode(record)
        if record.get("in_doubt") and _arrived(observer, event, kwargs,
                                               outcomes.get(str(index)), progress):
            observer.run_id = progress["run_id"]
        else:
            _deliver_record(observer, event, kwargs, progress)
            delivered += 1
        progress["count"] = index + 1
        _write_json(progress_path, progress)
    return progress["run_id"], delivered


def _deliver_record(observer: Any, event: str, kwargs: dict, progress: dict) -> None:
    if event in _SYNC_EVENTS:
        kwargs["_id"] = progress["run_id"]  # the target store allocates the id
        progress["run_id"] = getattr(observer, event)(**kwargs)
    else:
        getattr(observer, event)(**kwargs)


def _arrived(observer: Any, event: str, kwargs: dict, outcome: dict | None,
             progress: dict) -> bool:
    """Whether an in-doubt event reached the store (a start's id goes into ``progress``)."""
    if outcome is not None:  # the worker lived to see the call return
        if outcome["delivered"] and event in _SYNC_EVENTS:
            progress["run_id"] = outcome["run_id"]
        return bool(outcome["delivered"])
    if event in _SYNC_EVENTS:
        found = _find_started_run(getattr(observer, "store", None), event, kwargs)
        if found is not None:
            progress["run_id"] = found
        return found is not None
    if event == "log_metrics":
        return _metrics_arrived(getattr(observer, "store", None), progress["run_id"],
                                kwargs["metrics_by_name"])
    return False  # the others set the same fields again: delivering twice changes nothing


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if isinstance(value, _dt.datetime) else value


def _find_started_run(store: Any, event: str, kwargs: dict) -> Any:
    """The id of the one stored run this start created, None when there is none (or two)."""
    if store is None:
        return None
    time_key = "start_time" if event == "started_event" else "queue_time"
    when = _naive(kwargs.get(time_key))
    hostname = (kwargs.get("host_info") or {}).get("hostname")
    name = (kwargs.get("ex_info") or {}).get("name")
    try:
        candidates = store.find({"command": kwargs.get("command")})
    except Exception:
        log.warning("Could not look up whether the start of this run reached the store; "
                    "delivering it again.", exc_info=True)
        return None
    matches = []
    for doc in candidates:
        stored = _naive(doc.get(time_key))
        if not isinstance(stored, _dt.datetime) or not isinstance(when, _dt.datetime):
            continue
        # stores keep times to the millisecond (MongoDB) or better
        if abs((stored - when).total_seconds()) <= 0.001 \
                and (doc.get("host") or {}).get("hostname") == hostname \
                and (doc.get("experiment") or {}).get("name") == name:
            matches.append(doc.get("_id"))
    return matches[0] if len(matches) == 1 else None


def _metrics_arrived(store: Any, run_id: Any, metrics_by_name: dict) -> bool:
    """Whether every series of the batch ends the stored series (it was appended last)."""
    if not metrics_by_name:
        return True
    if store is None or run_id is None:
        return False
    try:
        history = store.history(run_id, list(metrics_by_name))
    except Exception:
        log.warning("Could not read the metrics of run %s to check an in-doubt batch; "
                    "delivering it again.", run_id, exc_info=True)
        return False
    for name, series in metrics_by_name.items():
        steps = list(series["steps"])
        stored = list(history.get(name, {}).get("steps", []))
        if steps and stored[-len(steps):] != steps:
            return False
    return True
