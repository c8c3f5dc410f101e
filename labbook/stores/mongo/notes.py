"""The note next to a run a MongoObserver saved in its ``failure_dir``: what the observer
writes (through :meth:`MongoStore.write_upload_note`) and :mod:`.upload` reads."""
from __future__ import annotations

import json
import os
from typing import Any

from labbook.stores import redact_url

__all__ = ["UPLOAD_NOTE", "write_note", "read_note", "save_note", "upload_hint"]

#: the note written next to a run saved in ``failure_dir``
UPLOAD_NOTE = "mongo_upload.json"


def write_note(run_dir: str, store_url: str, exc: BaseException, run_id: Any,
               overwrite: Any) -> None:
    """The store (password hidden), the run's id there (None: never stored), ``overwrite``,
    why the run was saved on disk; ``uploaded_as`` is filled in by the upload."""
    note = {"store": redact_url(store_url), "run_id": run_id,
            "overwrite": overwrite, "reason": str(exc).split(" Check that")[0],
            "uploaded_as": None}
    save_note(os.path.join(run_dir, UPLOAD_NOTE), note)


def read_note(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_note(path: str, note: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(note, fh, indent=2, default=str)


def upload_hint(store_url: str, failure_dir: str) -> str:
    """How to upload the runs saved in ``failure_dir`` to the store at ``store_url``."""
    url = redact_url(store_url)
    hint = (f"Once the server is back, upload it with: python -m labbook.stores.mongo "
            f"upload {failure_dir} '{url}'")
    if "****" in url:
        hint += " (with the real password in place of ****)"
    return hint + "."
