"""Observers receive the events of a run; the built-in ones store them.

Store-backed observers load lazily so that ``import labbook.observers`` stays cheap.
"""
from __future__ import annotations

from labbook._lazy import lazy_names
from labbook.observers.base import RunObserver

__all__ = ["RunObserver", "QueuedObserver", "DurableObserver", "FileStorageObserver",
           "StoreObserver", "MongoObserver", "SqlObserver", "QueueObserver",
           "QueuedMongoObserver", "TinyDbObserver", "TinyDbReader", "SlackObserver",
           "TelegramObserver", "S3Observer", "GoogleCloudStorageObserver", "create",
           "observers_from_options"]

__getattr__ = lazy_names(globals(), {
    "QueuedObserver": "labbook.observers.queued",
    "DurableObserver": "labbook.observers.durable",
    "FileStorageObserver": "labbook.observers.file",
    "StoreObserver": "labbook.observers.store_observer",
    "MongoObserver": "labbook.observers.mongo",
    "SqlObserver": "labbook.observers.sql",
    "QueueObserver": "labbook.observers.queue",
    "QueuedMongoObserver": "labbook.observers.queue",
    "TinyDbObserver": "labbook.observers.tinydb",
    "TinyDbReader": "labbook.observers.tinydb",
    "SlackObserver": "labbook.observers.notify",
    "TelegramObserver": "labbook.observers.notify",
    "S3Observer": "labbook.observers.remote",
    "GoogleCloudStorageObserver": "labbook.observers.remote",
})


def create(url: str, priority: int | None = None) -> RunObserver:
    """The observer that records into the store at ``url``, chosen by its scheme:
    ``file://DIR`` or a directory, ``sqlite:///x.db``, ``postgresql://...``, ``mysql://...``,
    ``mongodb://host/db``, ``s3://bucket/prefix``, ``gs://bucket/prefix``. ``--store URL``
    on the command line does the same.

    >>> ex.observers.append(create("sqlite:///labbook.db"))  # doctest: +SKIP
    """
    from labbook.observers.registry import observer_for_url

    return observer_for_url(url, priority)


def observers_from_options(options: dict) -> list[RunObserver]:
    """Observers asked for on the command line (``-F DIR``, ``-s URL``, ``-m DB``)."""
    from labbook.observers.registry import observers_from_options as from_options

    return from_options(options)
