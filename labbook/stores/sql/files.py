"""Files in the SQL store: artifacts, resources and sources, each content stored once.

``blobs (md5, size)`` names a file's content; ``blob_chunks (md5, seq, data)`` holds its bytes
in pieces of at most :data:`BLOB_CHUNK_SIZE`, written piece by piece from the file and read
back chunk by chunk (:class:`ChunkReader`), so a large file is never held in memory at once.
``artifacts``, ``run_resources`` and ``run_sources`` point at blobs by md5; a blob goes once
nothing points at it.

:class:`FilesMixin` is part of :class:`~labbook.stores.sql.store.SqlStore`; it uses the store's
transactions (``_read``/``_write``), ``_insert_ignore`` and ``_chunk_size``.
"""
from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import os
from typing import Any, BinaryIO, Iterable, Iterator

import sqlalchemy as sa

from labbook import serialize
from labbook.errors import ArgumentError, SqlStoreError, StoredFileNotFoundError
from labbook.fileio import file_md5
from labbook.stores.sql.engine import retry_deadlocks
from labbook.stores.sql.schema import (artifacts, blob_chunks, blobs, run_resources,
                                       run_sources, runs, version_blobs)
from labbook.stores.sql.values import as_run_id

__all__ = ["BLOB_CHUNK_SIZE", "pieces", "FilesMixin", "ChunkReader"]

#: largest piece of a stored file in one row (MariaDB refuses statements larger than
#: ``max_allowed_packet``; the store uses a quarter of that when it is smaller)
BLOB_CHUNK_SIZE = 1024 * 1024


def pieces(filename: str, size: int) -> Iterator[bytes]:
    """The bytes of ``filename`` in pieces of ``size``; none when it is empty."""
    with open(filename, "rb") as fh:
        yield from iter(lambda: fh.read(size), b"")


class FilesMixin:
    """Stored files and the rows that point at them."""

    def _put_blob(self, conn: sa.Connection, md5: str, filename: str) -> None:
        """Store a file's bytes once per md5, in chunks, read from ``filename`` piece by
        piece."""
        found = conn.execute(sa.select(blobs.c.md5).where(blobs.c.md5 == md5)).first()
        if found is not None:
            return
        size = 0
        digest = hashlib.md5()
        for seq, piece in enumerate(pieces(filename, self._chunk_size)):
            # concurrent writers of the same new file: the second one's rows are ignored
            conn.execute(self._insert_ignore(blob_chunks, {"md5": md5, "seq": seq,
                                                           "data": piece}))
            digest.update(piece)
            size += len(piece)
        if digest.hexdigest() != md5:  # the transaction is rolled back: nothing half-stored
            raise SqlStoreError(f"The file {filename} changed while it was being stored in "
                                f"{self._redacted}; nothing was stored.")
        conn.execute(self._insert_ignore(blobs, {"md5": md5, "size": size}))

    @retry_deadlocks
    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        rid = self._existing_id(run_id)
        md5 = file_md5(filename)
        row = {"md5": md5, "content_type": content_type,
               "metadata": serialize.flatten(metadata) if metadata is not None else None}
        with self._write() as conn:
            self._put_blob(conn, md5, filename)
            found = conn.execute(sa.select(artifacts.c.id).where(
                artifacts.c.run_id == rid, artifacts.c.name == name)).first()
            if found is None:
                conn.execute(artifacts.insert().values(run_id=rid, name=name, **row))
            else:  # the same name again replaces the content, like a file overwritten
                conn.execute(artifacts.update().where(artifacts.c.id == found[0]).values(**row))
            names = conn.execute(sa.select(artifacts.c.name).where(artifacts.c.run_id == rid)
                                 .order_by(artifacts.c.id)).scalars().all()
            conn.execute(runs.update().where(runs.c.id == rid).values(artifacts=list(names)))

    @retry_deadlocks
    def put_resource(self, run_id: Any, filename: str) -> None:
        rid = self._existing_id(run_id)
        md5 = file_md5(filename)
        with self._write() as conn:
            self._put_blob(conn, md5, filename)
            current = conn.execute(sa.select(runs.c.resources)
                                   .where(runs.c.id == rid)).scalar() or []
            if [filename, md5] not in current:
                conn.execute(runs.update().where(runs.c.id == rid)
                             .values(resources=[*current, [filename, md5]]))
                conn.execute(run_resources.insert().values(run_id=rid, name=filename[:1024],
                                                           md5=md5))

    @retry_deadlocks
    def put_sources(self, experiment_info: dict) -> dict:
        info = dict(experiment_info)
        base_dir = info.get("base_dir") or ""
        stored = []
        paths: dict[str, str] = {}
        for relname, _md5sum in info.get("sources", []):
            path = os.path.join(base_dir, relname)
            if os.path.isfile(path):
                md5 = file_md5(path)
                paths[md5] = path
                stored.append([relname, md5])
        if paths:
            with self._write() as conn:
                for md5, path in paths.items():
                    self._put_blob(conn, md5, path)
        info["sources"] = stored
        return info

    @staticmethod
    def _blobs_of_run(conn: sa.Connection, rid: int) -> set[str]:
        """The md5s of the run's artifacts, resources and sources."""
        md5s: set[str] = set()
        for table in (artifacts, run_resources, run_sources):
            md5s.update(conn.execute(sa.select(table.c.md5).where(table.c.run_id == rid)
                                     ).scalars().all())
        return md5s

    def _drop_unreferenced_blobs(self, conn: sa.Connection, md5s: Iterable[str]) -> None:
        """Delete the blobs among ``md5s`` that no artifact, resource or source refers to."""
        for md5 in set(md5s):
            if self._blob_referenced(conn, md5):
                continue
            conn.execute(blobs.delete().where(blobs.c.md5 == md5))
            conn.execute(blob_chunks.delete().where(blob_chunks.c.md5 == md5))

    @staticmethod
    def _blob_referenced(conn: sa.Connection, md5: str) -> bool:
        if conn.execute(sa.select(version_blobs.c.md5).where(version_blobs.c.md5 == md5)
                        ).first() is not None:
            return True  # a version of an artifact holds it
        return any(conn.execute(sa.select(table.c.id).where(table.c.md5 == md5).limit(1)
                                ).first() is not None
                   for table in (artifacts, run_resources, run_sources))

    def _blob_reader(self, md5: str | None, missing: str) -> BinaryIO:
        chunks: list = []
        size = None
        if md5 is not None:
            with self._read() as conn:
                size = conn.execute(sa.select(blobs.c.size).where(blobs.c.md5 == md5)).scalar()
                if size is not None:
                    chunks = conn.execute(
                        sa.select(blob_chunks.c.seq, sa.func.length(blob_chunks.c.data))
                        .where(blob_chunks.c.md5 == md5).order_by(blob_chunks.c.seq)).all()
        if size is None:
            raise StoredFileNotFoundError(missing)
        lengths = [int(length) for _, length in chunks]
        if [seq for seq, _ in chunks] != list(range(len(chunks))) or sum(lengths) != size:
            raise SqlStoreError(f"The stored file {md5} in {self._redacted} is incomplete "
                                f"({sum(lengths)} of {size} bytes in {len(chunks)} chunks).")
        return io.BufferedReader(ChunkReader(self, md5, lengths),
                                 buffer_size=io.DEFAULT_BUFFER_SIZE)

    def _read_chunk(self, md5: str, seq: int) -> bytes:
        with self._read() as conn:
            data = conn.execute(sa.select(blob_chunks.c.data).where(
                blob_chunks.c.md5 == md5, blob_chunks.c.seq == seq)).scalar()
        if data is None:
            raise SqlStoreError(f"The stored file {md5} in {self._redacted} lost its chunk "
                                f"{seq} while being read.")
        return bytes(data)

    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        """The artifact as a read-only, seekable binary file that fetches its chunks as it
        is read (a 50 MB artifact is never held in memory at once unless read at once)."""
        rid = as_run_id(run_id)
        md5 = None
        if rid is not None:
            with self._read() as conn:
                md5 = conn.execute(sa.select(artifacts.c.md5).where(
                    artifacts.c.run_id == rid, artifacts.c.name == name)).scalar()
        return self._blob_reader(md5, f"Run {run_id!r} in {self._redacted} has no artifact "
                                      f"{name!r}.")

    def open_blob(self, md5: str) -> BinaryIO:
        """A stored source or resource file by its md5 (as listed in the run document)."""
        return self._blob_reader(md5, f"No file with md5 {md5} in {self._redacted}.")


class ChunkReader(io.RawIOBase):
    """The bytes of one stored blob, fetched chunk by chunk from the database."""

    def __init__(self, store: FilesMixin, md5: str, lengths: list[int]):
        super().__init__()
        self._store = store
        self._md5 = md5
        self._starts = list(itertools.accumulate(lengths, initial=0))
        self._size = self._starts[-1]
        self._pos = 0
        self._cached: tuple[int, memoryview] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ArgumentError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _chunk(self, index: int) -> memoryview:
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, memoryview(self._store._read_chunk(self._md5, index)))
        return self._cached[1]

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        chunk = self._chunk(index)
        offset = self._pos - self._starts[index]
        n = min(len(buffer), len(chunk) - offset)
        memoryview(buffer).cast("B")[:n] = chunk[offset:offset + n]
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = []
        while self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            offset = self._pos - self._starts[index]
            parts.append(self._chunk(index)[offset:])
            self._pos = self._starts[index + 1]
        self._cached = None
        return b"".join(parts)
