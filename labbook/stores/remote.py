"""File stores on object storage: ``s3://bucket/prefix``, ``gs://bucket/prefix`` (also
``gcs://``) and ``memory://name``, through fsspec (``pip install 'labbook[remote]'``).

A remote file store is the :class:`~labbook.stores.file.FileStore` itself over an fsspec
filesystem (:class:`~labbook.stores.filesystem.RemoteFS`): the same layout under the prefix
(``<prefix>/<id>/run.json``, ``config.json``, ``metrics.jsonl``, ``_sources/``, ...), the same
reading, queries and read API. What differs:

- **Run ids** are taken by creating the marker object ``<prefix>/<id>/.labbook-claim`` with an
  exclusive create (S3 ``If-None-Match``, GCS ``ifGenerationMatch=0``, fsspec mode ``"xb"``):
  of two writers taking the same id, one wins and the other moves on to the next id, so no run
  is ever written over another. A filesystem without exclusive create falls back to
  check-then-write with a read-back of a random token, which catches most races but not all:
  there, give each prefix one writer at a time.
- Objects are written whole (one PUT each); ``metrics.jsonl`` cannot be appended to, so it is
  written again at each heartbeat from what the writer holds (the cost grows with the run's
  points; ``metrics.json`` is assembled at the end as locally).
- No index and no binary copy of long series (those are caches on local disk): queries read
  every run's files, fetched in concurrent batches (:meth:`RemoteFS.prefetch`).

URL options (the query string): ``endpoint_url`` (an S3-compatible server, or a GCS emulator),
``region``, ``profile`` (a named AWS profile) and ``anon`` (``true``: no credentials); ``gs://``
also takes ``project``. Credentials come from the usual places (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, ``GOOGLE_APPLICATION_CREDENTIALS``), never from the URL,
and no message shows a secret (:func:`labbook.stores.redact_url`).
"""
from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, BinaryIO, Iterable
from urllib.parse import parse_qsl, urlsplit

from labbook.errors import (ArtifactNameError, LabbookError, MissingExtraError, NoStoreError,
                            RemoteStoreError, StoredFileNotFoundError, StoreUnusableError,
                            StoreURLError)
from labbook.stores.file import FileStore
from labbook.stores.file_index import is_run_name
from labbook.stores.filesystem import RemoteFS

__all__ = ["RemoteFileStore", "parse_remote_url", "valid_bucket", "INSTALL"]

#: the pip command that adds what remote stores need
INSTALL = "pip install 'labbook[remote]'"
#: fsspec's protocol for each URL scheme, and the package that implements it
_PROTOCOLS = {"s3": ("s3", "s3fs"), "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs"),
              "memory": ("memory", None)}
_OPTIONS = {"s3": ("endpoint_url", "region", "profile", "anon"),
            "gs": ("endpoint_url", "project", "anon"),
            "gcs": ("endpoint_url", "project", "anon"),
            "memory": ()}
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]")


def valid_bucket(scheme: str, bucket: str) -> str | None:
    """Why ``bucket`` is not a valid bucket name on ``scheme`` (None when it is valid)."""
    if scheme == "s3":
        if not _S3_BUCKET.fullmatch(bucket) or ".." in bucket or ".-" in bucket \
                or "-." in bucket:
            return "an S3 bucket name has 3 to 63 lowercase letters, digits, '.' and '-', " \
                   "starting and ending with a letter or digit"
    elif not _GCS_BUCKET.fullmatch(bucket) or ".." in bucket or \
            any(len(part) > 63 for part in bucket.split(".")):
        return "a Cloud Storage bucket name has 3 to 63 lowercase letters, digits, '-', '_' " \
               "and '.', starting and ending with a letter or digit"
    elif bucket.startswith("goog") or "google" in bucket or "g00gle" in bucket:
        return "a Cloud Storage bucket name may not start with 'goog' nor contain 'google'"
    try:
        ipaddress.ip_address(bucket)
    except ValueError:
        return None
    return "a bucket name may not be an IP address"


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_remote_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``(scheme, path without the query, options)`` of a remote store URL; a URL without a
    bucket, with an invalid bucket name or with an unknown option is a
    :class:`~labbook.errors.StoreURLError`."""
    from labbook.stores import redact_url

    scheme = url.split("://", 1)[0].lower()
    if scheme not in _PROTOCOLS:
        raise StoreURLError(f"{redact_url(url)} is not a remote store URL (s3://, gs://, "
                            "gcs:// or memory://).")
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS[scheme]))
    if unknown:
        known = ", ".join(_OPTIONS[scheme]) or "none"
        raise StoreURLError(f"{redact_url(url)}: unknown option {', '.join(unknown)} for a "
                            f"{scheme}:// store (options: {known}).")
    bucket = parts.netloc
    if not bucket:
        what = "bucket" if scheme != "memory" else "name"
        raise StoreURLError(f"{redact_url(url)} names no {what}: write {scheme}://"
                            f"{'BUCKET/PREFIX' if scheme != 'memory' else 'NAME'}.")
    if scheme != "memory":
        why = valid_bucket(scheme, bucket)
        if why is not None:
            raise StoreURLError(f"{redact_url(url)}: {bucket!r} is not a valid bucket name "
                                f"({why}).")
    path = f"{scheme}://{bucket}{parts.path}".rstrip("/")
    return scheme, path, options


def _filesystem(scheme: str, options: dict[str, str]) -> Any:
    protocol, package = _PROTOCOLS[scheme]
    try:
        import fsspec

        cls = fsspec.get_filesystem_class(protocol)
        if protocol == "gcs" and options.get("endpoint_url"):
            # gcsfs's default class first asks for the bucket's type over gRPC, which a GCS
            # emulator does not answer: 60 s lost at every store opened; the plain one skips it
            from gcsfs.core import GCSFileSystem as cls
    except ImportError as exc:
        needs = "fsspec" + (f" and {package}" if package else "")
        raise MissingExtraError(f"{scheme}:// stores need {needs} ({exc.name or exc}): "
                                f"{INSTALL}") from None
    kwargs: dict[str, Any] = {}
    if protocol != "memory":
        kwargs["use_listings_cache"] = False  # other writers add runs: list afresh
        kwargs["skip_instance_cache"] = True
    if options.get("anon"):
        kwargs["anon"] = _flag(options["anon"])
    if options.get("endpoint_url"):
        kwargs["endpoint_url"] = options["endpoint_url"]
    if options.get("profile"):
        kwargs["profile"] = options["profile"]
    if options.get("project"):
        kwargs["project"] = options["project"]
    if options.get("region"):
        kwargs["client_kwargs"] = {"region_name": options["region"]}
    if protocol == "s3":
        # a server that does not answer is an outage for durable delivery to retry and
        # journal, not something to wait for here: few quick attempts per call
        kwargs["config_kwargs"] = {"connect_timeout": 10, "read_timeout": 60,
                                   "retries": {"max_attempts": 2, "mode": "standard"}}
    return cls(**kwargs)


class RemoteFileStore(FileStore):
    """The file store on object storage (see the module docstring)."""

    schemes = ("s3", "gs", "gcs", "memory")

    def __init__(self, url: str, resource_dir: str | None = None, source_dir: str | None = None,
                 copy_artifacts: bool = True, copy_sources: bool = True,
                 filesystem: Any = None):
        """``resource_dir`` / ``source_dir``: keys inside the bucket (as Sacred's S3Observer
        takes them), default ``<prefix>/_resources`` and ``<prefix>/_sources``."""
        self.scheme, path, self.options = parse_remote_url(url)
        fs = filesystem if filesystem is not None else _filesystem(self.scheme, self.options)
        self.fs = RemoteFS(fs, failure=self.failure)
        self.bucket = urlsplit(url).netloc
        #: the bucket's root as the filesystem names paths (``bucket``, ``/name`` in memory)
        self.root = fs._strip_protocol(f"{self.scheme}://{self.bucket}").rstrip("/")
        self.basedir = fs._strip_protocol(path).rstrip("/") or "/"
        self.url = url
        keys = [self.fs.join(self.root, os.fspath(d).strip("/")) if d else None
                for d in (resource_dir, source_dir)]
        super().__init__(self.basedir, index=False, resource_dir=keys[0], source_dir=keys[1],
                         copy_artifacts=copy_artifacts, copy_sources=copy_sources)

    def open_blob(self, stored: Any) -> BinaryIO:
        """A stored source or resource by the path its run records (relative to the store);
        one leading out of the bucket is refused."""
        path = self.fs.normpath(self.fs.join(self.basedir, str(stored)))
        if not (path + "/").startswith(self.root + "/"):
            raise ArtifactNameError(f"{stored!r} is recorded outside the bucket of "
                                    f"{self.shown}; refused.")
        try:
            return self.fs.open_stream(path)
        except FileNotFoundError:
            raise StoredFileNotFoundError(f"No stored file {stored!r} in {self.shown}.") \
                from None

    @property
    def shown(self) -> str:
        """The store's URL as messages show it (secrets masked)."""
        from labbook.stores import redact_url

        return redact_url(self.url)

    @classmethod
    def from_url(cls, url: str) -> RemoteFileStore:
        return cls(url)

    @classmethod
    def open_existing(cls, url: str) -> RemoteFileStore:
        """The store at ``url`` for reading: a prefix holding nothing is a
        :class:`~labbook.errors.NoStoreError` (nothing is created)."""
        store = cls.from_url(url)
        try:
            there = store.fs.exists(store.basedir)
        except LabbookError:
            raise
        except Exception as exc:
            raise store.failure("read", exc) from None
        if not there:
            raise NoStoreError(f"No store at {store.shown} (nothing is stored under that "
                               "prefix).", store.shown)
        return store

    def failure(self, doing: str, exc: BaseException) -> RemoteStoreError:
        """One line saying what failed on the remote store, and why."""
        if isinstance(exc, RemoteStoreError):
            return exc
        reason = _reason(self.bucket, exc)
        return RemoteStoreError(f"Cannot {doing} the store {self.shown}: {reason}", self.shown,
                                reason)

    def check(self) -> None:
        """A probe object can be written and removed under the prefix (the bucket must exist:
        :class:`~labbook.observers.S3Observer` creates it, ``--store`` does not)."""
        if self._checked:
            return
        try:
            self.fs.probe(self.basedir)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, RemoteStoreError) \
                else _reason(self.bucket, exc)
            raise StoreUnusableError(f"Cannot record runs in {self.shown}: {reason}",
                                     self.shown) from None
        self._checked = True

    def create_bucket(self, region: str | None = None) -> None:
        """Create the store's bucket when it does not exist (what Sacred's S3Observer does)."""
        if self.scheme == "memory":
            return
        try:
            if self.fs.fs.exists(self.bucket):
                return
            kwargs = {"region_name": region} if region and self.scheme == "s3" else {}
            self.fs.fs.mkdir(self.bucket, create_parents=True, **kwargs)
        except FileExistsError:
            return
        except Exception as exc:
            raise StoreUnusableError(f"Cannot create the bucket {self.bucket!r} of "
                                     f"{self.shown}: {_reason(self.bucket, exc)}",
                                     self.shown) from None

    def _problem(self, run_id: Any, text: str) -> str:
        return f"run {run_id} in {self.shown}: {text}"

    def update_run(self, run_id: Any, fields: dict) -> None:
        super().update_run(run_id, fields)
        if fields.get("status") not in (None, "RUNNING", "QUEUED"):
            self.fs.drop_appended(self._dir(run_id))  # the run ended: its metrics leave memory

    # -- reading many runs: their files fetched in one concurrent batch, not one GET at a time
    def _ahead(self, run_ids: Iterable[Any], names: Iterable[str]) -> None:
        names = list(names)
        paths = [self.fs.join(self.basedir, str(i), name) for i in run_ids
                 if is_run_name(str(i)) for name in names]
        self.fs.prefetch(paths)

    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False) -> list[dict]:
        exclude = tuple(exclude)
        names = ["run.json", "config.json", "info.json"]
        if "captured_out" not in exclude:
            names.append("cout.txt")
        try:
            self._ahead(self.run_ids(), names)
            return super().find(filter, order, limit, exclude=exclude, with_last=with_last)
        finally:
            self.fs.forget()

    def history_many(self, run_ids: Iterable[Any], names: Iterable[str] | None = None
                     ) -> dict[Any, dict[str, dict[str, list]]]:
        run_ids = list(run_ids)
        try:
            self._ahead(run_ids, ("metrics.jsonl", "metrics.json"))
            return super().history_many(run_ids, names)
        finally:
            self.fs.forget()

    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        run_ids = list(run_ids)
        try:
            self._ahead(run_ids, ("metrics.jsonl", "metrics.json"))
            return super().metric_counts(run_ids)
        finally:
            self.fs.forget()


def _reason(bucket: str, exc: BaseException) -> str:
    """What went wrong, in one line: a missing bucket, refused access, no connection."""
    from labbook.stores import redact_url

    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, FileNotFoundError) and ("bucket" in text.lower() or not text):
        return f"the bucket {bucket!r} does not exist (create it first)."
    if isinstance(exc, PermissionError):
        return f"access denied ({redact_url(text) or 'check the credentials'})."
    name = type(exc).__name__
    if "Connect" in name or "Endpoint" in name or isinstance(exc, ConnectionError):
        return f"cannot reach the server ({redact_url(text) or name})."
    if "Credential" in name:
        return f"no credentials found ({redact_url(text) or name})."
    return f"{name}: {redact_url(text)}"
