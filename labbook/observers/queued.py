"""QueuedObserver: any observer behind a background thread, with retries and a journal.

The user's code never waits on a slow or dead store: events are put on a queue that a worker
thread delivers, retrying with exponential backoff. ``started_event``/``queued_event`` are
delivered synchronously because the run's id is negotiated from their return value; if that
fails, the run goes on and the start is journaled too. When the run ends, ``join()`` waits a
bounded time for the queue to drain, then appends every undelivered event to an append-only
journal in ``failure_dir`` (files the events refer to are copied next to it), and logs how to
replay it: ``labbook sync FAILURE_DIR --store URL``. Replaying is idempotent: the journal
records how far it was delivered and to which run id.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from typing import Any

from labbook import serialize
from labbook.observers.base import RunObserver

log = logging.getLogger("labbook.observers.queued")

_SYNC_EVENTS = ("started_event", "queued_event")
_TIME_ARGS = ("start_time", "queue_time", "beat_time", "stop_time", "interrupt_time",
              "fail_time")
JOURNAL = "events.jsonl"
PROGRESS = "delivered.json"


class QueuedObserver(RunObserver):
    """Deliver ``observer``'s events from a background thread; journal what cannot be sent."""

    def __init__(self, observer: RunObserver, failure_dir: str | os.PathLike | None = None,
                 max_wait: float = 10.0, backoff: float = 0.1, max_backoff: float = 5.0):
        self.observer = observer
        self.priority = getattr(observer, "priority", 0)
        self.failure_dir = os.path.abspath(os.fspath(failure_dir or "labbook_failed_runs"))
        self.max_wait = max_wait
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: queue.Queue = queue.Queue()
        self._pending: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._run_id: Any = None
        self._journal: list[tuple[str, dict]] = []  # start events that failed synchronously

    # -- synchronous start ---------------------------------------------------------------------
    def _start(self, event: str, kwargs: dict) -> Any:
        try:
            self._run_id = getattr(self.observer, event)(**kwargs)
        except Exception as exc:
            log.warning("%s could not record the start of the run (%s); events are kept and "
                        "journaled if they cannot be delivered later.",
                        type(self.observer).__name__, exc)
            self._journal.append((event, kwargs))
        self._ensure_thread()
        return self._run_id

    def started_event(self, **kwargs):  # type: ignore[override]
        return self._start("started_event", kwargs)

    def queued_event(self, **kwargs):  # type: ignore[override]
        return self._start("queued_event", kwargs)

    # -- queued events -------------------------------------------------------------------------
    def _put(self, event: str, kwargs: dict) -> None:
        if self._journal:  # the start never reached the store: keep order, deliver nothing
            self._journal.append((event, kwargs))
            return
        self._ensure_thread()
        self._queue.put((event, kwargs))

    def heartbeat_event(self, info, captured_out, beat_time, result):
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

    def resource_event(self, filename):
        self._put("resource_event", {"filename": filename})

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self._put("artifact_event", {"name": name, "filename": filename, "metadata": metadata,
                                     "content_type": content_type})

    # -- the worker ----------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True,
                                            name="labbook-queued-observer")
            self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                self._pending.append(item)
            delay = self.backoff
            while True:
                event, kwargs = item
                try:
                    getattr(self.observer, event)(**kwargs)
                    break
                except Exception as exc:
                    if self._stop.is_set():
                        return  # join() gave up waiting: leave it pending for the journal
                    log.debug("Delivering %s failed (%s); retrying in %.1f s", event, exc,
                              delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.max_backoff)
            with self._lock:
                self._pending.remove(item)
            self._queue.task_done()

    def join(self) -> None:
        deadline = time.monotonic() + self.max_wait
        while time.monotonic() < deadline and (not self._queue.empty() or self._pending):
            time.sleep(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        undelivered = list(self._journal)
        with self._lock:
            undelivered += list(self._pending)
            self._pending.clear()
        while not self._queue.empty():
            undelivered.append(self._queue.get_nowait())
        self._journal = []
        self._stop.clear()
        if undelivered:
            path = write_journal(self.failure_dir, self._run_id, undelivered)
            log.warning(
                "%d event(s) of this run could not be delivered to %s; they are saved in %s. "
                "Upload them later with: labbook sync %s --store URL", len(undelivered),
                type(self.observer).__name__, path, self.failure_dir)
        try:
            self.observer.join()
        except Exception:
            log.debug("join of the wrapped observer failed", exc_info=True)


def _encode(event: str, kwargs: dict, files_dir: str) -> dict:
    data = {}
    for key, value in kwargs.items():
        if isinstance(value, _dt.datetime):
            value = {"$time": value.isoformat()}
        elif key == "metrics_by_name":
            value = {name: {"steps": s["steps"], "values": s["values"],
                            "timestamps": [t.isoformat() if hasattr(t, "isoformat") else t
                                           for t in s["timestamps"]]}
                     for name, s in value.items()}
        elif key == "filename" and isinstance(value, str) and os.path.isfile(value):
            # the file may be gone by the time the journal is replayed: keep a copy
            os.makedirs(files_dir, exist_ok=True)
            copy = os.path.join(files_dir, f"{uuid.uuid4().hex}_{os.path.basename(value)}")
            shutil.copyfile(value, copy)
            data["original_filename"] = value
            value = copy
        else:
            value = serialize.flatten(value)
        data[key] = value
    return {"event": event, "kwargs": data}


def _decode(record: dict) -> tuple[str, dict]:
    kwargs = {}
    for key, value in record["kwargs"].items():
        if key == "original_filename":
            continue
        if isinstance(value, dict) and set(value) == {"$time"}:
            value = serialize.parse_time(value["$time"])
        elif key == "metrics_by_name":
            for series in value.values():
                series["timestamps"] = [serialize.parse_time(t) for t in series["timestamps"]]
        kwargs[key] = value
    if record["event"] == "resource_event" and "original_filename" in record["kwargs"]:
        kwargs["filename"] = record["kwargs"]["filename"]
    return record["event"], kwargs


def write_journal(failure_dir: str, run_id: Any, events: list[tuple[str, dict]]) -> str:
    """Append ``events`` to the journal of ``run_id`` (a new journal when the id is unknown)."""
    name = f"run_{run_id}" if run_id is not None else f"run_unknown_{uuid.uuid4().hex[:12]}"
    directory = os.path.join(failure_dir, name)
    os.makedirs(directory, exist_ok=True)
    meta_path = os.path.join(directory, "journal.json")
    if not os.path.exists(meta_path):
        with open(meta_path, "w") as fh:
            json.dump({"run_id": run_id, "created": _dt.datetime.now().isoformat()}, fh)
    with open(os.path.join(directory, JOURNAL), "a", encoding="utf-8") as fh:
        for event, kwargs in events:
            fh.write(json.dumps(_encode(event, kwargs, os.path.join(directory, "files")),
                                allow_nan=True) + "\n")
    return directory


def replay(failure_dir: str | os.PathLike, store_url: str) -> list[tuple[str, Any, int]]:
    """Deliver every journal under ``failure_dir`` to the store at ``store_url``.

    Returns ``(journal, run id, events delivered now)`` per journal. Safe to run again: a
    journal remembers how many events reached which run id.
    """
    from labbook.observers.store_observer import observer_for_url

    results = []
    root = os.fspath(failure_dir)
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        journal = os.path.join(directory, JOURNAL)
        if not os.path.isfile(journal):
            continue
        with open(os.path.join(directory, "journal.json")) as fh:
            meta = json.load(fh)
        progress_path = os.path.join(directory, PROGRESS)
        progress = {"count": 0, "run_id": meta.get("run_id")}
        if os.path.exists(progress_path):
            with open(progress_path) as fh:
                progress = json.load(fh)
        with open(journal, encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        observer = observer_for_url(store_url)
        observer.run_id = progress["run_id"]
        delivered = 0
        for index, record in enumerate(records):
            if index < progress["count"]:
                continue
            event, kwargs = _decode(record)
            if event in _SYNC_EVENTS:
                kwargs["_id"] = progress["run_id"]
                progress["run_id"] = getattr(observer, event)(**kwargs)
            else:
                getattr(observer, event)(**kwargs)
            delivered += 1
            progress["count"] = index + 1
            with open(progress_path + ".tmp", "w") as fh:
                json.dump(progress, fh)
            os.replace(progress_path + ".tmp", progress_path)
        results.append((name, progress["run_id"], delivered))
    return results
