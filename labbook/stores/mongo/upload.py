"""Uploading the runs a MongoObserver saved in its ``failure_dir`` (file-store dumps with an
upload note), and the command ``python -m labbook.stores.mongo upload DIR URL``."""
from __future__ import annotations

import os
import sys
from typing import Any

from labbook.errors import LabbookError
from labbook.fileio import file_md5
from labbook.stores.base import RUN_FIELDS
from labbook.stores.mongo.notes import UPLOAD_NOTE, read_note, save_note
from labbook.stores.mongo.store import MongoStore

__all__ = ["upload_failed_runs", "main"]


def upload_failed_runs(failure_dir: str | os.PathLike, url: str | None = None,
                       store: MongoStore | None = None) -> dict[str, Any]:
    """Upload every run a MongoObserver saved in ``failure_dir``; ``{run dir: MongoDB id}``.

    A run already uploaded (its note has ``uploaded_as``) is skipped, so this can be repeated.
    """
    from labbook.stores.file import FileStore

    base = os.path.abspath(os.fspath(failure_dir))
    files = FileStore(base)
    own = store is None
    if store is None:
        store = MongoStore(url)
    done: dict[str, Any] = {}
    try:
        for dump_id in files.run_ids():
            run_dir = os.path.join(base, str(dump_id))
            note_path = os.path.join(run_dir, UPLOAD_NOTE)
            if not os.path.exists(note_path):
                continue
            note = read_note(note_path)
            if note.get("uploaded_as") is not None:
                continue
            done[run_dir] = _upload_one(files, dump_id, note, store)
            note["uploaded_as"] = done[run_dir]
            save_note(note_path, note)
    finally:
        if own:
            store.close()
    return done


def _upload_one(files: Any, dump_id: int, note: dict, store: MongoStore) -> Any:
    doc = files.get(dump_id)
    run_dir = os.path.join(files.basedir, str(dump_id))
    fields = {k: doc[k] for k in RUN_FIELDS if k in doc and k not in ("artifacts", "resources")}
    run_id = note.get("run_id")
    if run_id is None:
        experiment = dict(doc.get("experiment") or {})
        base_dir = experiment.get("base_dir") or ""
        sources = []
        for relname, stored in experiment.get("sources", []):
            path = os.path.join(files.basedir, stored)
            sources.append([relname, store._store_blob(path, file_md5(path),
                                                       os.path.join(base_dir, relname))])
        experiment["sources"] = sources
        fields.update(experiment=experiment, artifacts=[], resources=[])
        overwrite = note.get("overwrite")
        run_id = store.create_run(fields, overwrite, overwrite=overwrite is not None)
    else:
        # the run exists: bring its changing fields up to date, leave the rest as stored
        progress = ("status", "stop_time", "heartbeat", "result", "fail_trace", "info",
                    "captured_out")
        store.update_run(run_id, {k: fields[k] for k in progress if k in fields})
    history = files.history(dump_id)
    if history:
        store.append_metrics(run_id, history)
    for name in doc.get("artifacts") or []:
        store.put_artifact(run_id, name, os.path.join(run_dir, name))
    for original, stored in doc.get("resources") or []:
        store.put_resource(run_id, os.path.join(files.basedir, stored), recorded_name=original)
    return run_id


def main(argv: list[str] | None = None) -> int:
    """``python -m labbook.stores.mongo upload FAILURE_DIR URL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "upload":
        print("usage: python -m labbook.stores.mongo upload FAILURE_DIR mongodb://host:port/db",
              file=sys.stderr)
        return 2
    try:
        done = upload_failed_runs(args[1], args[2])
    except LabbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for run_dir, run_id in done.items():
        print(f"{run_dir} -> run {run_id}")
    if not done:
        print(f"nothing to upload in {args[1]}")
    return 0
