"""The file store's ledger of versioned artifacts (see :mod:`labbook.stores.versions`).

Under ``<store>/_artifacts/`` (beside ``_resources`` and ``_sources``; Sacred's readers look
only at the numbered run directories)::

    blobs/<sha256[:2]>/<sha256>          each content once, copied in atomically
    names/<quoted name>/v/0000000003.json  a version, created exclusively
    names/<quoted name>/digest/<sha256>.json, alias/<alias>.json, logged|used/<digest>/<run>.json
    runs/<run>/logged|used/<quoted name>/<digest>.json   the run index

An exclusive create is ``os.link`` of a file written aside (local directories) or a
conditional write (object stores, as for run ids), so a version number is taken once however
many processes log at the same time, and every entry is seen whole or not at all.
"""
from __future__ import annotations

import json
import secrets
import urllib.parse
from typing import Any, BinaryIO

from labbook.errors import StoredFileNotFoundError
from labbook.stores.versions import RUN_INDEX

__all__ = ["FileVersionsMixin"]

_SUFFIX = ".json"


class FileVersionsMixin:
    """Part of :class:`~labbook.stores.file.FileStore`: ``fs``, ``basedir``."""

    fs: Any
    basedir: str

    def _ledger_dir(self, collection: str) -> str:
        root = self.fs.join(self.basedir, "_artifacts")
        if collection == RUN_INDEX:
            return self.fs.join(root, "runs")
        return self.fs.join(root, "names", urllib.parse.quote(collection, safe=""))

    def _ledger_path(self, collection: str, entry: str) -> str:
        return self.fs.join(self._ledger_dir(collection), *entry.split("/")) + _SUFFIX

    def _ledger_claim(self, collection: str, entry: str, body: dict) -> bool:
        data = json.dumps(dict(body, _token=secrets.token_hex(8))).encode("utf-8")
        try:
            self.fs.create_with(self._ledger_path(collection, entry), data)
        except FileExistsError:
            return False
        return True

    def _ledger_put(self, collection: str, entry: str, body: dict) -> None:
        path = self._ledger_path(collection, entry)
        self.fs.makedirs(self.fs.dirname(path))
        with self.fs.replace_text(path) as fh:
            fh.write(json.dumps(body))

    def _ledger_get(self, collection: str, entry: str) -> dict | None:
        try:
            with self.fs.open_read(self._ledger_path(collection, entry)) as fh:
                return _body(fh.read())
        except FileNotFoundError:
            return None

    def _ledger_list(self, collection: str, prefix: str) -> dict[str, dict]:
        directory = self._ledger_dir(collection)
        parts = prefix.split("/")
        # list the deepest directory the prefix names in full, then filter
        base = "/".join(parts[:-1])
        found = self.fs.files_under(self.fs.join(directory, *base.split("/")) if base
                                    else directory)
        out = {}
        for rel in found:
            if not rel.endswith(_SUFFIX):
                continue
            entry = (f"{base}/" if base else "") + rel[:-len(_SUFFIX)]
            if not entry.startswith(prefix):
                continue
            body = self._ledger_get(collection, entry)
            if body is not None:
                out[entry] = body
        return out

    def _ledger_collections(self) -> list[str]:
        try:
            names = self.fs.listdir(self.fs.join(self.basedir, "_artifacts", "names"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [urllib.parse.unquote(n) for n in names]

    def _blob_path(self, sha256: str) -> str:
        return self.fs.join(self.basedir, "_artifacts", "blobs", sha256[:2], sha256)

    def _version_blob_put(self, entry: dict, filename: str) -> None:
        path = self._blob_path(entry["sha256"])
        if not self.fs.exists(path):
            self.fs.copy_in(filename, path, atomic=True)

    def _version_blob_open(self, entry: dict) -> BinaryIO:
        try:
            return self.fs.open_stream(self._blob_path(entry["sha256"]))
        except FileNotFoundError:
            raise StoredFileNotFoundError(
                f"The file {entry.get('path')!r} (sha256 {entry['sha256']}) of a versioned "
                f"artifact is missing from {getattr(self, 'url', self.basedir)}.") from None


def _body(data: bytes) -> dict | None:
    """The entry's body; None while it is being written (only where hard links are missing:
    see ``LocalFS.create_with``)."""
    try:
        body = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    body.pop("_token", None)
    return body
