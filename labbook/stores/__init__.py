"""Stores: one back-end per URL scheme, opened with :func:`open_store`.

``file://DIR`` (or a plain directory path), ``sqlite:///file.db``, ``postgresql://...``,
``mysql://...`` / ``mariadb://...``, ``mongodb://.../db``, and file stores on object storage
``s3://bucket/prefix``, ``gs://bucket/prefix`` (``gcs://``) and ``memory://name`` (fsspec,
:mod:`labbook.stores.remote`). Third-party back-ends register a
``Store`` subclass in the ``labbook.stores`` entry-point group under their scheme.
"""
from __future__ import annotations

import importlib
import os
import re
from typing import TYPE_CHECKING

from labbook.errors import StoreURLError, UnknownStoreError, suggest

if TYPE_CHECKING:
    from labbook.stores.base import Store

__all__ = ["DEFAULT_URL", "default_url", "scheme_of", "store_class", "open_store",
           "check_url", "redact_url"]

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
    "s3": ("labbook.stores.remote", "RemoteFileStore"),
    "gs": ("labbook.stores.remote", "RemoteFileStore"),
    "gcs": ("labbook.stores.remote", "RemoteFileStore"),
    "memory": ("labbook.stores.remote", "RemoteFileStore"),
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
        f"a plain directory path means a file store.{_did_you_mean(url, scheme)}")


def open_store(url: str | None = None, *, must_exist: bool = False) -> Store:
    """Open the store at ``url`` (default: :func:`default_url`).

    ``must_exist``: for reading. A store that does not exist (no directory, no SQLite file, a
    database without labbook's tables) raises :class:`~labbook.errors.NoStoreError` and
    nothing is created."""
    url = url or default_url()
    check_url(url, writing=not must_exist)
    cls = store_class(url)
    if must_exist and hasattr(cls, "open_existing"):
        return cls.open_existing(url)
    if hasattr(cls, "from_url"):
        return cls.from_url(url)
    return cls(url)


# -- misspelled URLs -----------------------------------------------------------------------------
#: ``scheme:rest`` without ``//``: a URL with its slashes missing (``sqlite:x.db``), which
#: would otherwise be taken for a directory path. One-letter schemes are Windows drives.
_SCHEME_WITHOUT_SLASHES = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):(?!//)(?P<rest>.*)",
                                     re.DOTALL)


def _spelled(scheme: str, rest: str) -> str:
    """``rest`` (a path or host part) under ``scheme`` with the slashes it needs."""
    if scheme == "sqlite":
        return "sqlite:///" + (rest.lstrip("/") or "labbook.db")
    return f"{scheme}://{rest.lstrip('/')}"


def _did_you_mean(url: str, scheme: str) -> str:
    close = suggest(scheme, _REGISTRY, n=1)
    if not close:
        return ""
    rest = url.split(":", 1)[1].lstrip("/") if ":" in url else ""
    return f" Did you mean {redact_url(_spelled(close[0], rest))}?"


def check_url(url: str, writing: bool = True) -> None:
    """Refuse a misspelled store URL with the right spelling, before anything is created:
    ``sqlite:/x.db`` and ``sqlite:x.db`` (would be a directory), ``sqlite://x.db`` (x.db
    would be a host name), ``file://`` (no directory: the current one), ``sqlite://`` (in
    memory: the runs vanish with the process) and unknown schemes close to a known one."""
    if not isinstance(url, str) or not url.strip():
        raise StoreURLError(f"No store URL given ({url!r}). Write a directory, file://DIR, "
                            "sqlite:///file.db, postgresql://user@host/db, "
                            "mysql://user@host/db, mongodb://host/db or "
                            "s3://bucket/prefix.")
    shown = redact_url(url)
    match = _SCHEME_WITHOUT_SLASHES.fullmatch(url)
    if match and "://" not in url:
        scheme = match["scheme"].split("+", 1)[0].lower()
        known = scheme if scheme in _REGISTRY else next(iter(suggest(scheme, _REGISTRY, 1)), None)
        if known is not None:
            spelled = redact_url(_spelled(known, match["rest"]))
            raise StoreURLError(f"'{shown}' is not a store URL (it would be taken for a directory "
                                f"path): did you mean {spelled}?")
        return
    if "://" not in url:
        return  # a directory path: the file store
    scheme = scheme_of(url)
    rest = url.split("://", 1)[1]
    if scheme not in _REGISTRY:
        store_class(url)  # a third-party back-end, or UnknownStoreError with a suggestion
        return
    if scheme == "file" and not rest.strip():
        raise StoreURLError("'file://' names no directory (it would write into the current "
                            "one): write file://DIR, file:///absolute/dir or just the "
                            "directory, e.g. file://runs.")
    if scheme in ("s3", "gs", "gcs", "memory"):
        from labbook.stores.remote import parse_remote_url

        parse_remote_url(url)  # no bucket, an invalid bucket name, an unknown option
        return
    if scheme == "sqlite":
        path = rest.partition("?")[0]
        if path.strip("/") in ("", ":memory:") or "mode=memory" in rest:
            what = ("would discard the run when the process ends" if writing
                    else "holds no runs to read")
            raise StoreURLError(f"'{shown}' is an in-memory SQLite database, which {what}: "
                                "use a file, sqlite:///path/to/labbook.db.")
        if not path.startswith("/"):
            raise StoreURLError(f"'{shown}' names a host, not a file: did you mean "
                                f"{redact_url(_spelled('sqlite', path))}?")


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:****@host`` (and secret query
    parameters such as ``?password=...``; the rules are :mod:`labbook.redact`'s)."""
    from labbook.redact import redact_url as redact

    return redact(url)
