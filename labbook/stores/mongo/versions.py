"""The MongoDB store's ledger of versioned artifacts (see :mod:`labbook.stores.versions`).

Each entry is a document of ``<prefix>labbook_artifacts`` whose ``_id`` is the sha256 of its
collection and name: the unique ``_id`` index makes an exclusive create one ``insert_one``
that either lands or raises ``DuplicateKeyError``, so a version number is taken once however
many processes log at once. ``scope`` (indexed) lists a collection's entries of one kind.
Files go to GridFS once per content (by md5), like resources and sources; deleting a run
leaves them.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from pymongo.errors import DuplicateKeyError

from labbook.stores.mongo.connection import translated

__all__ = ["VersionsMixin"]


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


class VersionsMixin:
    """Ledger entries as documents, files in GridFS."""

    db: Any
    collection_prefix: str
    _store_blob: Any
    open_blob: Any

    @property
    def _ledger(self) -> Any:
        prefix = f"{self.collection_prefix}_" if self.collection_prefix else ""
        collection = self.db[prefix + "labbook_artifacts"]
        if not getattr(self, "_ledger_indexed", False):
            collection.create_index("scope", name="labbook_scope")
            self._ledger_indexed = True
        return collection

    @staticmethod
    def _ledger_doc(collection: str, entry: str, body: dict) -> dict:
        head = entry.split("/", 1)[0]
        return {"_id": _hash(collection, entry), "scope": _hash(collection, head),
                "collection": collection, "head": head, "entry": entry,
                "body": json.dumps(body)}

    @translated
    def _ledger_claim(self, collection: str, entry: str, body: dict) -> bool:
        try:
            self._ledger.insert_one(self._ledger_doc(collection, entry, body))
        except DuplicateKeyError:
            return False
        return True

    @translated
    def _ledger_put(self, collection: str, entry: str, body: dict) -> None:
        doc = self._ledger_doc(collection, entry, body)
        self._ledger.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    @translated
    def _ledger_get(self, collection: str, entry: str) -> dict | None:
        doc = self._ledger.find_one({"_id": _hash(collection, entry)}, projection={"body": 1})
        return None if doc is None else json.loads(doc["body"])

    @translated
    def _ledger_list(self, collection: str, prefix: str) -> dict[str, dict]:
        head = prefix.split("/", 1)[0]
        return {doc["entry"]: json.loads(doc["body"])
                for doc in self._ledger.find({"scope": _hash(collection, head)},
                                             projection={"entry": 1, "body": 1})
                if doc["entry"].startswith(prefix)}

    @translated
    def _ledger_collections(self) -> list[str]:
        return list(self._ledger.distinct("collection", {"head": "v"}))

    @translated
    def _version_blob_put(self, entry: dict, filename: str) -> None:
        self._store_blob(filename, entry["md5"], f"artifact-version://{entry['sha256']}")

    def _version_blob_open(self, entry: dict) -> BinaryIO:
        return self.open_blob(entry["md5"])
