"""Sacred's ``S3Observer`` and ``GoogleCloudStorageObserver``: runs in a bucket, in the file
store's layout (``<basedir>/<id>/run.json`` ...), readable with ``labbook.Api("s3://bucket/
basedir")`` like any store. The store is :mod:`labbook.stores.remote`'s, opened through the
registry; it needs ``pip install 'labbook[remote]'``."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from labbook.observers.store_observer import StoreObserver
from labbook.stores import store_class

__all__ = ["DEFAULT_S3_PRIORITY", "DEFAULT_GCS_PRIORITY", "S3Observer",
           "GoogleCloudStorageObserver"]

#: Sacred's default priorities of these observers
DEFAULT_S3_PRIORITY = 20
DEFAULT_GCS_PRIORITY = 20


def _bucket_url(scheme: str, bucket: str, basedir: Any, options: dict[str, Any]) -> str:
    prefix = str(basedir or "").strip("/")
    query = urlencode({k: v for k, v in options.items() if v}, safe=":/")
    return f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else "") + \
        (f"?{query}" if query else "")


class _BucketObserver(StoreObserver):
    """A store observer on ``scheme://bucket/basedir``."""

    scheme = ""

    def __init__(self, bucket: str, basedir: Any, resource_dir: Any = None,
                 source_dir: Any = None, priority: int | None = None,
                 options: dict[str, Any] | None = None):
        self.bucket = bucket
        self.basedir = str(basedir or "").strip("/")
        url = _bucket_url(self.scheme, bucket, basedir, options or {})
        store = store_class(url)(url, resource_dir=resource_dir, source_dir=source_dir)
        super().__init__(store, priority)
        self.resource_dir = resource_dir or "/".join(p for p in (self.basedir, "_resources") if p)
        self.source_dir = source_dir or "/".join(p for p in (self.basedir, "_sources") if p)

    @property
    def dir(self) -> str | None:
        """The key prefix of the current run (Sacred's ``observer.dir``)."""
        if self.run_id is None:
            return None
        return "/".join(p for p in (self.basedir, str(self.run_id)) if p)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.bucket, self.basedir) == (other.bucket, other.basedir)  # type: ignore

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.bucket, self.basedir))


class S3Observer(_BucketObserver):
    """Stores runs in the S3 bucket ``bucket`` under ``basedir`` (Sacred's ``S3Observer``):
    the bucket is created when it does not exist (in ``region``), as Sacred does. Credentials
    come from the usual AWS places (environment, ``~/.aws``); ``endpoint_url`` (labbook's
    addition, also ``$AWS_ENDPOINT_URL``) names an S3-compatible server."""

    scheme = "s3"

    def __init__(self, bucket: str, basedir: Any, resource_dir: Any = None,
                 source_dir: Any = None, priority: int | None = DEFAULT_S3_PRIORITY,
                 region: str | None = None, *, endpoint_url: str | None = None):
        self.region = region
        super().__init__(bucket, basedir, resource_dir, source_dir, priority,
                         {"endpoint_url": endpoint_url, "region": region})

    def preflight(self) -> None:
        self.store.create_bucket(self.region)
        super().preflight()


class GoogleCloudStorageObserver(_BucketObserver):
    """Stores runs in the Cloud Storage bucket ``bucket`` under ``basedir`` (Sacred's
    ``GoogleCloudStorageObserver``; the bucket must exist). Credentials come from
    ``GOOGLE_APPLICATION_CREDENTIALS`` or the environment's default account."""

    scheme = "gs"

    def __init__(self, bucket: str, basedir: Any, resource_dir: Any = None,
                 source_dir: Any = None, priority: int | None = DEFAULT_GCS_PRIORITY, *,
                 endpoint_url: str | None = None):
        super().__init__(bucket, basedir, resource_dir, source_dir, priority,
                         {"endpoint_url": endpoint_url})
