"""Resuming a run: the same run id, reopened in its store, continued where it stopped.

``start_run(run_id=ID, resume="must"|"allow"|"never")`` and ``--resume`` with ``--id ID`` on
the experiment command line (which means ``"must"``). Before the run starts, the stored run is
read from the run's store:

* ``"must"``: it must exist (else :class:`RunNotFoundError`); ``"allow"``: resumed when it
  exists, a new run with that id otherwise; ``"never"``: an existing id is refused
  (:class:`RunExistsError`, as for any taken ``--id``).
* A run still alive (RUNNING with a recent heartbeat) is refused: two processes would write it.
* The run keeps its stored config; a value given now that differs is an error naming it.
* Metric step counters continue after the last stored step of each metric, ``log()``'s
  global step after the highest stored step; points are appended to the stored ones.
* ``info`` continues from the stored one; the captured output is appended to the stored one.
* ``meta.resumptions`` lists each resumption (when, and the status the run had).

The store observer reopens the run (status RUNNING again, no stop time or fail trace) instead
of creating it; a store observer recognises a resumed start by ``meta.resumptions``.
"""
from __future__ import annotations

from typing import Any

from labbook.errors import (ArgumentError, RunExistsError, RunNotFoundError, RunStateError,
                            RunValueError)

__all__ = ["MODES", "prepare_resume"]

#: the values of ``resume=``
MODES = (None, "allow", "must", "never")

_MISSING = object()


def _stored(store: Any, run_id: Any) -> dict | None:
    doc = store.get(run_id)
    if doc is None and isinstance(run_id, str) and run_id.strip().isdigit():
        doc = store.get(int(run_id))
    return doc


def prepare_resume(run: Any, mode: str | None, given_config: dict | None = None) -> bool:
    """Read the stored run and prepare ``run`` to continue it; False when a new run starts.

    ``given_config``: the config entries the caller chose explicitly (``start_run(config=)``
    or the command line's updates, dotted keys), checked against the stored config."""
    if mode not in MODES:
        raise ArgumentError(f"resume must be one of allow, must, never or None, not {mode!r}.")
    if mode is None:
        return False
    if run._id is None:
        if mode == "must":
            raise ArgumentError("resume='must' needs the id of the run to continue: "
                                "start_run(run_id=ID, resume='must') or --id ID --resume.")
        return False
    from labbook.run_files import run_store
    from labbook.stores import redact_url

    store = run_store(run)
    if store is None:
        raise RunStateError("Resuming needs a store to read the run from: give a store "
                            "(--store, -F, -s, -m, store=) or a store observer.")
    where = redact_url(getattr(store, "url", "") or type(store).__name__)
    doc = _stored(store, run._id)
    if doc is None:
        if mode == "must":
            raise RunNotFoundError(f"No run with id {run._id} in {where} to resume.")
        return False
    if mode == "never":
        raise RunExistsError(f"A run with id {run._id} already exists in {where} and "
                             "resume='never' was given.")
    from labbook.stores.query import reported_status

    status = reported_status(doc)
    if status == "RUNNING":
        raise RunStateError(f"Run {run._id} in {where} is still running (its heartbeat is "
                            "recent); resume it once its process has ended.")
    _check_config(doc.get("config") or {}, given_config or {}, run._id)
    _continue(run, store, doc, status)
    return True


def _check_config(stored: dict, given: dict, run_id: Any) -> None:
    from labbook.config.paths import get_path

    for key, value in given.items():
        if key == "seed":
            continue
        old = get_path(stored, key, _MISSING)
        if old is _MISSING:
            raise RunValueError(f"Run {run_id} has no config entry {key!r}; a resumed run "
                                "keeps its stored config.")
        if old != value:
            raise RunValueError(f"Run {run_id} was started with {key}={old!r}, not {value!r}; "
                                "a resumed run keeps its stored config.")


def _continue(run: Any, store: Any, doc: dict, status: Any) -> None:
    from labbook import clock
    from labbook.config.containers import freeze
    from labbook.run import RunConfig
    from labbook.serialize import copy_plain

    run._id = doc.get("_id", run._id)
    config = copy_plain(doc.get("config") or {})  # as stored (never unpickled on read)
    run.config = RunConfig(run, config) if isinstance(run.config, RunConfig) else freeze(config)
    run._config_cache.clear()
    if config.get("seed") is not None:
        run.seed = config["seed"]
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    run.info = dict(copy_plain(info), **run.info)
    previous = doc.get("captured_out") or ""
    run.previous_output = previous if previous.endswith("\n") or not previous \
        else previous + "\n"
    # steps continue after the stored ones
    last_steps = store.last_steps(doc.get("_id", run._id))
    metrics = run._metrics
    metrics._counters.update(last_steps)
    user = [step for name, step in last_steps.items() if not name.startswith("system.")]
    if user:
        metrics.global_step = max(user) + 1
    stored_meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    resumptions = list(stored_meta.get("resumptions") or [])
    resumptions.append({"time": clock.utcnow().isoformat(), "previous_status": status})
    meta = {k: v for k, v in stored_meta.items()
            if k in ("name", "tags", "notes", "group", "parent", "variant", "job_type",
                     "comment", "config_changes")}
    for key, value in run.meta_info.items():  # this start's command, options, ...
        if key != "tags" and value is not None:
            meta[key] = value
    tags = list(stored_meta.get("tags") or [])
    meta["tags"] = tags + [t for t in run.meta_info.get("tags") or [] if t not in tags]
    meta["resumptions"] = resumptions
    run.meta_info = meta
