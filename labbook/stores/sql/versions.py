"""The SQL store's ledger of versioned artifacts (see :mod:`labbook.stores.versions`).

Each entry is a row of ``artifact_entries`` keyed by the sha256 of its collection and name:
an exclusive create is a plain INSERT that either commits or violates the primary key, the
same guarantee on SQLite, PostgreSQL and MariaDB. Files are the store's content-addressed
``blobs`` (by md5, in chunks); ``version_blobs`` keeps them when runs are deleted.

:class:`VersionsMixin` is part of :class:`~labbook.stores.sql.store.SqlStore`.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

import sqlalchemy as sa

from labbook.errors import SqlStoreError
from labbook.stores.sql.engine import retry_deadlocks
from labbook.stores.sql.schema import artifact_entries, version_blobs

__all__ = ["VersionsMixin"]


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _row(collection: str, entry: str, body: dict) -> dict:
    head = entry.split("/", 1)[0]
    return {"key": _hash(collection, entry), "scope": _hash(collection, head),
            "collection": collection, "head": head, "entry": entry,
            "body": json.dumps(body)}


class VersionsMixin:
    """Ledger entries as rows, files as blobs."""

    @retry_deadlocks
    def _ledger_claim(self, collection: str, entry: str, body: dict) -> bool:
        try:
            with self._write() as conn:
                conn.execute(artifact_entries.insert().values(**_row(collection, entry, body)))
        except SqlStoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False  # another process holds this entry
            raise
        return True

    @retry_deadlocks
    def _ledger_put(self, collection: str, entry: str, body: dict) -> None:
        row = _row(collection, entry, body)
        if self.dialect_name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
            stmt = insert(artifact_entries).values(**row)
            stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                              set_={"body": stmt.excluded.body})
        elif self.dialect_name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
            stmt = insert(artifact_entries).values(**row)
            stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                              set_={"body": stmt.excluded.body})
        else:
            from sqlalchemy.dialects import mysql
            stmt = mysql.insert(artifact_entries).values(**row)
            stmt = stmt.on_duplicate_key_update(body=stmt.inserted.body)
        with self._write() as conn:
            conn.execute(stmt)

    def _ledger_get(self, collection: str, entry: str) -> dict | None:
        with self._read() as conn:
            body = conn.execute(sa.select(artifact_entries.c.body).where(
                artifact_entries.c.key == _hash(collection, entry))).scalar()
        return None if body is None else json.loads(body)

    def _ledger_list(self, collection: str, prefix: str) -> dict[str, dict]:
        head = prefix.split("/", 1)[0]
        with self._read() as conn:
            rows = conn.execute(sa.select(artifact_entries.c.entry, artifact_entries.c.body)
                                .where(artifact_entries.c.scope == _hash(collection, head))
                                ).all()
        return {entry: json.loads(body) for entry, body in rows if entry.startswith(prefix)}

    def _ledger_collections(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(sa.select(artifact_entries.c.collection).where(
                artifact_entries.c.head == "v").distinct()).scalars().all())

    @retry_deadlocks
    def _version_blob_put(self, entry: dict, filename: str) -> None:
        with self._write() as conn:
            self._put_blob(conn, entry["md5"], filename)
            conn.execute(self._insert_ignore(version_blobs, {"md5": entry["md5"]}))

    def _version_blob_open(self, entry: dict) -> BinaryIO:
        return self._blob_reader(entry["md5"], f"The file {entry.get('path')!r} (md5 "
                                               f"{entry['md5']}) of a versioned artifact is "
                                               f"missing from {self._redacted}.")

    _put_blob: Any
    _blob_reader: Any
    _insert_ignore: Any
    _write: Any
    _read: Any
    dialect_name: str
    _redacted: str
