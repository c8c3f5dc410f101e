"""Distributed training: worker processes attach to the parent's run instead of making new runs.

A process is a *worker* when ``RANK`` (or ``LOCAL_RANK``) is set and not 0 (torchrun,
``mp.spawn``) or when ``LABBOOK_RUN_ID`` is set. While a recorded run is active, its process
exports ``LABBOOK_RUN_ID`` and ``LABBOOK_RUN_STORE`` (the store's URL), so workers started
from it know where to write. A worker's metrics go into the parent run under the prefix
``rank{k}/`` (``pid{n}/`` when no rank is known), and its artifacts under ``rank{k}/<name>``.
A worker that cannot find its parent (no id or no store URL) records nothing, so a
distributed job never creates one run per rank.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable

from labbook.observers.attached import AttachedObserver
from labbook.observers.base import RunObserver

__all__ = ["log", "RUN_ID_ENV", "RUN_STORE_ENV", "worker_rank", "is_worker", "worker_prefix",
           "attached_observers", "export_parent"]

log = logging.getLogger("labbook.distributed")

RUN_ID_ENV = "LABBOOK_RUN_ID"
RUN_STORE_ENV = "LABBOOK_RUN_STORE"


def worker_rank() -> int | None:
    """This process's rank when it is a non-zero rank of a distributed job, else None."""
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            rank = int(value)
            return rank if rank != 0 else None
    return None


def is_worker() -> bool:
    return worker_rank() is not None or bool(os.environ.get(RUN_ID_ENV))


def worker_prefix() -> str:
    rank = worker_rank()
    if rank is None:
        for name in ("RANK", "LOCAL_RANK"):
            if (os.environ.get(name) or "").strip().isdigit():
                rank = int(os.environ[name])
                break
    return f"rank{rank}/" if rank is not None else f"pid{os.getpid()}/"


def attached_observers() -> list[RunObserver]:
    """Observers for a worker process: the attachment to its parent run, or nothing."""
    run_id = os.environ.get(RUN_ID_ENV)
    url = os.environ.get(RUN_STORE_ENV) or os.environ.get("LABBOOK_STORE")
    if not run_id or not url:
        log.info("Worker process (%s) without a parent run to attach to (%s and %s must be "
                 "set); recording nothing.", worker_prefix().rstrip("/"), RUN_ID_ENV,
                 RUN_STORE_ENV)
        return []
    parsed: Any = int(run_id) if run_id.isdigit() else run_id
    return [AttachedObserver.for_url(url, parsed, worker_prefix())]


def export_parent(run_id: Any, observers: list) -> Callable[[], None]:
    """Publish the run for worker processes; returns a function that undoes it."""
    store_url = next((getattr(getattr(o, "store", None), "url", None) for o in observers
                      if getattr(getattr(o, "store", None), "url", None)), None)
    if run_id is None or store_url is None:
        return lambda: None
    saved = {k: os.environ.get(k) for k in (RUN_ID_ENV, RUN_STORE_ENV)}
    os.environ[RUN_ID_ENV] = str(run_id)
    os.environ[RUN_STORE_ENV] = store_url

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return restore
