"""Files in GridFS: artifacts, sources and resources (stored once per content), spilled
fields, and :class:`_GridFSReader`, which reads a file in bounded batches."""
from __future__ import annotations

import io
import logging
import os
from typing import Any, BinaryIO

import bson
import gridfs
from bson import ObjectId
from pymongo.errors import ConnectionFailure

from labbook.errors import StoredFileNotFoundError
from labbook.fileio import file_md5
from labbook.stores.mongo.codec import _from_bson, _to_bson
from labbook.stores.mongo.connection import translated

__all__ = ["log", "BlobsMixin"]

log = logging.getLogger("labbook.stores.mongo")


class _GridFSReader(io.RawIOBase):
    """A GridFS file read chunk by chunk, asking the server for a few chunks per reply
    (``read(n)`` returns ``n`` bytes unless the file ends; GridOut's attributes are kept).

    pymongo's ``GridOut`` leaves the batch size to the server. A server that answers the
    chunks query with every chunk at once (mongoeco does; MongoDB stops at 16 MiB) then sends
    one reply above the wire protocol's 48 MB limit for any larger file, and the read fails.
    """

    BATCH_BYTES = 8 * 1024 * 1024

    def __init__(self, chunks: Any, file_doc: dict):
        super().__init__()
        self._chunks = chunks
        self._file_id = file_doc["_id"]
        self.length = int(file_doc.get("length") or 0)
        self.chunk_size = max(1, int(file_doc.get("chunkSize") or gridfs.DEFAULT_CHUNK_SIZE))
        self._id = file_doc["_id"]
        self.filename = file_doc.get("filename")
        self.upload_date = file_doc.get("uploadDate")
        self.content_type = file_doc.get("contentType")
        self.metadata = file_doc.get("metadata")
        self._cursor: Any = None
        self._next_n = 0
        self._data = memoryview(b"")
        self._offset = 0
        self._position = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Load the next chunk when the current one is used up; False at the end."""
        if self._offset < len(self._data):
            return True
        if self._position >= self.length:
            return False
        if self._cursor is None:
            self._cursor = self._chunks.find(
                {"files_id": self._file_id, "n": {"$gte": self._next_n}}, sort=[("n", 1)],
                batch_size=max(1, self.BATCH_BYTES // self.chunk_size))
        doc = next(self._cursor, None)
        if doc is None or doc.get("n") != self._next_n:
            raise gridfs.errors.CorruptGridFile(
                f"GridFS file {self._file_id}: chunk {self._next_n} is missing.")
        self._next_n += 1
        self._data, self._offset = memoryview(bytes(doc["data"])), 0
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._data) - self._offset)
        buffer[:n] = self._data[self._offset:self._offset + n]
        self._offset += n
        self._position += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        parts = []
        while size > 0 and self._fill():
            take = min(size, len(self._data) - self._offset)
            parts.append(self._data[self._offset:self._offset + take].tobytes())
            self._offset += take
            self._position += take
            size -= take
        return b"".join(parts)

    def readall(self) -> bytes:
        parts = []
        while self._fill():
            parts.append(self._data[self._offset:].tobytes())
            self._position += len(self._data) - self._offset
            self._offset = len(self._data)
        return b"".join(parts)

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
        super().close()


class BlobsMixin:
    """The GridFS side of :class:`~labbook.stores.mongo.MongoStore`."""

    def _delete_file(self, file_id: Any) -> None:
        if file_id is None:
            return
        try:
            self.fs.delete(file_id)
        except ConnectionFailure:
            raise
        except Exception:  # a file already gone is what we wanted
            log.debug("could not delete GridFS file %s", file_id, exc_info=True)

    def _put_spill(self, run_id: Any, name: str, value: Any) -> Any:
        if name == "captured_out":
            data = (value or "").encode("utf-8")
        else:
            data = bson.encode({"v": value})
        return self.fs.put(data, filename=f"{name}://{self.runs.name}/{run_id}",
                           metadata={"run_id": run_id, "field": name})

    def _read_spill(self, name: str, file_id: Any) -> Any:
        data = self.fs.get(file_id).read()
        if name == "captured_out":
            return data.decode("utf-8")
        return _from_bson(bson.decode(data)["v"])

    @translated
    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        # Sacred's artifact files always carry "metadata" (null without any)
        extra: dict = {"metadata": None if metadata is None else _to_bson(metadata)}
        if content_type is not None:
            extra["contentType"] = content_type  # where Sacred and Omniboard look
        with open(filename, "rb") as fh:
            file_id = self.fs.put(fh, filename=f"artifact://{self.runs.name}/{run_id}/{name}",
                                  **extra)
        state = self._state.get(run_id)
        if state is None or name in state.artifacts:
            # same name again: point the existing entry at the new file, keeping its place
            old = self.runs.find_one_and_update(
                {"_id": run_id, "artifacts.name": name},
                {"$set": {"artifacts.$.file_id": file_id}}, projection={"artifacts": 1})
            if old is not None:
                previous = next((a.get("file_id") for a in old.get("artifacts") or []
                                 if isinstance(a, dict) and a.get("name") == name), None)
                self._delete_file(previous)
                return
        self.runs.update_one({"_id": run_id},
                             {"$push": {"artifacts": {"name": name, "file_id": file_id}}})
        if state is not None:
            state.artifacts.add(name)

    def _store_blob(self, path: str, md5: str, recorded_name: str | None = None) -> Any:
        """The GridFS id of this content, uploading it only when no file has the same md5."""
        found = self.files.find_one({"md5": md5}, projection={"_id": 1})
        if found is not None:
            return found["_id"]
        with open(path, "rb") as fh:
            return self.fs.put(fh, filename=recorded_name or os.path.abspath(path), md5=md5)

    @translated
    def put_resource(self, run_id: Any, filename: str, recorded_name: str | None = None) -> None:
        """Store the file once per content; the run records ``recorded_name or filename``."""
        md5 = file_md5(filename)
        self._store_blob(filename, md5, recorded_name)
        self.runs.update_one({"_id": run_id},
                             {"$addToSet": {"resources": [recorded_name or filename, md5]}})

    @translated
    def put_sources(self, experiment_info: dict) -> dict:
        info = dict(experiment_info)
        base_dir = info.get("base_dir") or ""
        sources = []
        for relname, *_ in info.get("sources", []):
            path = os.path.join(base_dir, relname)
            if os.path.isfile(path):
                sources.append([relname, self._store_blob(path, file_md5(path))])
        info["sources"] = sources
        return info

    def _open_file(self, file_id: Any) -> BinaryIO:
        """A stored GridFS file, read in bounded batches (see :class:`_GridFSReader`)."""
        doc = self.files.find_one({"_id": file_id})
        if doc is None:
            raise gridfs.errors.NoFile(f"No GridFS file with id {file_id!r}.")
        return _GridFSReader(self.db["fs.chunks"], doc)  # self.files is fs.files

    @translated
    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        raw = self._find_raw(run_id, projection={"artifacts": 1})
        if raw is None:
            raise StoredFileNotFoundError(f"No run with id {run_id!r} in "
                                          f"{self.db_name}.{self.runs.name}.")
        entries = [a for a in raw.get("artifacts") or [] if isinstance(a, dict)]
        for entry in reversed(entries):
            if entry.get("name") == name:
                return self._open_file(entry["file_id"])
        known = ", ".join(repr(a.get("name")) for a in entries) or "none"
        raise StoredFileNotFoundError(f"Run {run_id!r} has no artifact named {name!r} "
                                      f"(it has: {known}).")

    @translated
    def open_blob(self, stored: Any) -> BinaryIO:
        """A stored source (by its GridFS id, as the run lists it) or resource (by md5)."""
        if isinstance(stored, ObjectId) or (isinstance(stored, str)
                                            and ObjectId.is_valid(stored)):
            try:
                return self._open_file(ObjectId(stored))
            except gridfs.errors.NoFile:
                pass
        found = self.files.find_one({"md5": str(stored)}, projection={"_id": 1})
        if found is None:
            raise StoredFileNotFoundError(f"No stored file {stored!r} in {self.db_name}.")
        return self._open_file(found["_id"])
