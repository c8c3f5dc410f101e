"""Stores: one back-end per URL scheme, opened with :func:`open_store`.

``file://DIR`` (or a plain directory path), ``sqlite:///file.db``, ``postgresql://...``,
``mysql://...`` / ``mariadb://...``, ``mongodb://.../db``. Third-party back-ends register a
``Store`` subclass in the ``labbook.stores`` entry-point group under their scheme.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from labbook.errors import UnknownStoreError

if TYPE_CHECKING:
    from labbook.stores.base import Store

__all__ = ["DEFAULT_URL", "default_url", "scheme_of", "store_class", "open_store",
           "redact_url"]

#: the embedded default store, used where a store URL is expected and none is given
DEFAULT_URL = "sqlite:///labbook.db"

_REGISTRY: dict[str, tuple[str, str]] = {
    "file": ("labbook.stores.file", "FileStore"),
    "sqlite": ("labbook.stores.sql", "SqlStore"),
    "postgresql": ("labbook.stores.sql", "SqlStore"),
    "postgres": ("labbook.stores.sql", "SqlStore"),
    "mysql": ("labbook.stores.sql", "SqlStore"),
    "mariadb": ("labbook.stores.sql", "SqlStore"),
    "mongodb": ("labbook.stores.mongo", "MongoStore"),
}


def default_url() -> str:
    """``$LABBOOK_STORE``, else the embedded SQLite file ``labbook.db`` in the current dir."""
    return os.environ.get("LABBOOK_STORE") or DEFAULT_URL


def scheme_of(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def store_class(url: str) -> type[Store]:
    scheme = scheme_of(url)
    target = _REGISTRY.get(scheme)
    if target is not None:
        module = importlib.import_module(target[0])
        return getattr(module, target[1])
    from importlib.metadata import entry_points

    for ep in entry_points(group="labbook.stores"):
        if ep.name == scheme:
            return ep.load()
    known = ", ".join(sorted(_REGISTRY))
    raise UnknownStoreError(
        f"No store for URL scheme '{scheme}' (in {redact_url(url)}). Known schemes: {known}; "
        "a plain directory path means a file store.")


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: :func:`default_url`)."""
    url = url or default_url()
    cls = store_class(url)
    if hasattr(cls, "from_url"):
        return cls.from_url(url)
    return cls(url)


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:****@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:****@{host}"
    return url
