"""Which observer records into which store, and the command-line flags that name one.

Each back-end contributes one row to :data:`STORE_FLAGS` (Sacred's ``-F``, ``-s``, ``-m``,
``-t``, ``-S``, ``-G`` and labbook's ``--store``); the experiment command line
(:mod:`labbook.commandline_options`) takes
its store options from here, so a back-end is added in one place. Observer classes are imported
only when a flag is used; the stores behind them are opened through :mod:`labbook.stores`.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from labbook.records import FrozenFields

if TYPE_CHECKING:
    from labbook.observers.base import RunObserver

__all__ = ["StoreFlag", "STORE_FLAGS", "observer_for_url", "observers_from_options"]


class StoreFlag(FrozenFields):
    """A command-line option naming a store: ``--long VALUE`` makes ``factory(VALUE)``;
    ``factory`` is the ``"module:attribute.path"`` of a callable taking the option's value."""

    __slots__ = ("short", "long", "arg", "description", "factory")
    short: str | None
    long: str
    arg: str
    description: str
    factory: str

    def __init__(self, short: str | None, long: str, arg: str, description: str,
                 factory: str) -> None:
        self._init(short, long, arg, description, factory)

    @property
    def key(self) -> str:
        """The key in the options dict: ``--file_storage`` -> ``file_storage``."""
        return self.long[2:].replace("-", "_")

    def observer(self, value: str) -> RunObserver:
        module, _, path = self.factory.partition(":")
        target: Any = importlib.import_module(module)
        for name in path.split("."):
            target = getattr(target, name)
        return target(value)


STORE_FLAGS: tuple[StoreFlag, ...] = (
    StoreFlag("-F", "--file_storage", "DIR", "Store the run in this directory (file store).",
              "labbook.observers.file:FileStorageObserver"),
    StoreFlag("-s", "--sql", "URL", "Store the run in this SQL database URL.",
              "labbook.observers.sql:SqlObserver.from_flag"),
    StoreFlag("-m", "--mongo_db", "DB", "Store the run in MongoDB: [host:port:]db or a "
              "mongodb:// URL.", "labbook.observers.mongo:MongoObserver.from_db_arg"),
    StoreFlag("-t", "--tiny_db", "PATH", "Store the run in a TinyDB database in this directory "
              "(Sacred's TinyDbObserver layout).", "labbook.observers.tinydb:TinyDbObserver"),
    StoreFlag("-S", "--s3", "URL", "Store the run in S3 at s3://BUCKET/PATH (file store "
              "layout).", "labbook.observers.registry:s3_observer"),
    StoreFlag("-G", "--gcs", "URL", "Store the run in Google Cloud Storage at gs://BUCKET/PATH "
              "(file store layout).", "labbook.observers.registry:gcs_observer"),
    StoreFlag(None, "--store", "URL", "Store the run in the store at this URL (file://, "
              "sqlite:///, postgresql://, mysql://, mongodb://, s3://, gs://).",
              "labbook.observers.registry:observer_for_url"),
)

#: observers by URL scheme for :func:`observer_for_url` (others: a StoreObserver on the store)
_BY_SCHEME: dict[str, Callable[[str, int | None], RunObserver]] = {}


def _file_observer(url: str, priority: int | None) -> RunObserver:
    from labbook.observers.file import FileStorageObserver

    path = url[len("file://"):] if url.startswith("file://") else url
    return FileStorageObserver(path, priority=priority)


def _mongo_observer(url: str, priority: int | None) -> RunObserver:
    # MongoObserver adds what a network store needs: retries and a failure directory
    from labbook.observers.mongo import MongoObserver

    if priority is None:
        return MongoObserver(url=url)
    return MongoObserver(url=url, priority=priority)


_BY_SCHEME.update({"file": _file_observer, "mongodb": _mongo_observer})


def observer_for_url(url: str, priority: int | None = None) -> RunObserver:
    """The observer that records into the store at ``url`` (``--store URL``), chosen by the
    URL's scheme; a back-end without an observer of its own gets the generic one."""
    from labbook.stores import check_url, open_store, scheme_of

    check_url(url)  # misspelled URLs fail here, with the right spelling
    make = _BY_SCHEME.get(scheme_of(url))
    if make is not None:
        return make(url, priority)
    from labbook.observers.store_observer import StoreObserver

    return StoreObserver(open_store(url), priority)


def _bucket_and_path(value: str, scheme: str, flag: str, example: str) -> tuple[str, str]:
    from labbook.errors import OptionValueError

    bucket, _, path = value[len(scheme) + 3:].partition("/") \
        if value.startswith(scheme + "://") else ("", "", "")
    if not bucket or not path.strip("/"):
        raise OptionValueError(f"{flag} takes {example}, got {value!r}.")
    return bucket, path


def s3_observer(value: str) -> RunObserver:
    """``-S s3://bucket/path``: Sacred's S3Observer (it creates the bucket when missing)."""
    from labbook.observers.remote import S3Observer

    bucket, path = _bucket_and_path(value, "s3", "-S/--s3", "s3://BUCKET/PATH")
    return S3Observer(bucket, path)


def gcs_observer(value: str) -> RunObserver:
    """``-G gs://bucket/path``: Sacred's GoogleCloudStorageObserver."""
    from labbook.observers.remote import GoogleCloudStorageObserver

    bucket, path = _bucket_and_path(value, "gs", "-G/--gcs", "gs://BUCKET/PATH")
    return GoogleCloudStorageObserver(bucket, path)


def observers_from_options(options: dict) -> list[RunObserver]:
    """Observers the command line asks for with ``-F``, ``-s`` and ``-m`` (``--store`` is the
    experiment's: it also falls back to ``$LABBOOK_STORE``)."""
    return [flag.observer(options[flag.key]) for flag in STORE_FLAGS
            if flag.long != "--store" and options.get(flag.key)]
