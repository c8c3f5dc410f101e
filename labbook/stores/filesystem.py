"""The file store's view of where its files live: a local directory or an fsspec filesystem.

:class:`~labbook.stores.file.FileStore` does all its I/O through one of these objects, so the
same code (layout, id allocation, reading and queries) serves ``file://DIR`` and the remote
schemes ``s3://``, ``gs://`` / ``gcs://`` and ``memory://``:

- :data:`LOCAL` calls ``os`` directly (the local file store is the hot path: no extra layer
  beyond one attribute lookup). Whole files are replaced atomically (temp file + rename), run
  directories are claimed with ``os.mkdir``.
- :class:`RemoteFS` wraps an fsspec filesystem. Objects are written whole with one PUT (an
  object store shows the old object or the new one, never half), "directories" are key
  prefixes, and what needs an atomic step (taking a run id, claiming a queued run) creates a
  marker object with an *exclusive create* (S3 and GCS conditional writes, fsspec's
  ``mode="create"``): of two writers, exactly one succeeds, the other gets
  ``FileExistsError`` and moves on.

Only the standard library is imported here; fsspec is imported by
:mod:`labbook.stores.remote`, which makes the filesystem.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import secrets
import shutil
import threading
from typing import IO, Any, BinaryIO, Callable, Iterator

from labbook.fileio import atomic_open, copy_atomic

__all__ = ["LocalFS", "LOCAL", "RemoteFS", "CLAIM_NAME"]

#: the marker object that claims a "directory" on an object store
CLAIM_NAME = ".labbook-claim"
#: errors of a remote filesystem that mean what they say about one path
_PASSED = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)


class LocalFS:
    """A local directory tree through ``os`` (see the module docstring)."""

    remote = False
    join = staticmethod(os.path.join)
    dirname = staticmethod(os.path.dirname)
    basename = staticmethod(os.path.basename)
    normpath = staticmethod(os.path.normpath)
    realpath = staticmethod(os.path.realpath)
    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    isfile = staticmethod(os.path.isfile)
    islink = staticmethod(os.path.islink)
    listdir = staticmethod(os.listdir)
    mkdir_exclusive = staticmethod(os.mkdir)

    @staticmethod
    def makedirs(path: str) -> None:
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def open_read(path: str) -> BinaryIO:
        return open(path, "rb")

    open_stream = open_read

    @staticmethod
    def replace_text(path: str, mode: str = "w") -> contextlib.AbstractContextManager[IO[Any]]:
        """A file whose content replaces ``path`` atomically when the block ends."""
        return atomic_open(path, mode)

    @staticmethod
    def write_text(path: str, text: str) -> None:
        """Overwrite ``path`` in place (cheaper than a rename, for files rewritten often)."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    @staticmethod
    def append_text(path: str, text: str) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)

    @staticmethod
    def copy_in(source: str, path: str, atomic: bool = False) -> None:
        """Copy the local file ``source`` to ``path`` (making its directory)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if atomic:
            copy_atomic(source, path)
        else:
            shutil.copyfile(source, path)

    @staticmethod
    def remove_tree(directory: str, doomed: str) -> None:
        """Remove ``directory``; it is renamed to ``doomed`` first, so that no reader sees a
        half-removed run."""
        os.replace(directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    @staticmethod
    def create_with(path: str, data: bytes) -> None:
        """Create ``path`` holding ``data`` unless it exists (FileExistsError then): written
        aside, then hard-linked into place, so a reader sees the whole file or none, and of
        two writers exactly one succeeds."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        aside = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.new"
        with open(aside, "wb") as fh:
            fh.write(data)
        try:
            os.link(aside, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (some network and FAT file systems)
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(descriptor, "wb") as fh:  # readers may see it empty for a moment
                fh.write(data)
        finally:
            os.remove(aside)

    @staticmethod
    def files_under(directory: str) -> list[str]:
        """The paths of the files under ``directory``, relative to it ('/'-separated)."""
        out = []
        for here, _, names in os.walk(directory):
            rel = os.path.relpath(here, directory)
            for name in names:
                if not name.endswith(".new"):
                    out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return out

    @staticmethod
    def probe(directory: str) -> None:
        """Make ``directory`` and write (and remove) a file in it; raises OSError when not."""
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".labbook-write-check-{os.getpid()}")
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)


LOCAL = LocalFS()


class _ObjectWriter(io.StringIO):
    """Text gathered in memory and stored as one object when the block ends well."""


#: fsspec's in-memory filesystem keeps every object in one dict per process and lists it by
#: iterating that dict, which another thread's write can change under the listing
#: ("dictionary changed size during iteration"): its calls take turns
_MEMORY_LOCK = threading.RLock()


def _in_memory(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", ())
    return "memory" in ((protocol,) if isinstance(protocol, str) else tuple(protocol))


class RemoteFS:
    """An fsspec filesystem seen as the file store needs it (see the module docstring).

    ``exclusive``: the filesystem honours an exclusive create (``pipe_file(...,
    mode="create")``, fsspec's ``"xb"``: create only when absent) atomically. When it does
    not, a claim is a check followed by a write and a read-back of a random token: that
    detects most races but not all, so such a prefix must have one writer at a time."""

    remote = True
    join = staticmethod(posixpath.join)
    dirname = staticmethod(posixpath.dirname)
    basename = staticmethod(posixpath.basename)
    normpath = staticmethod(posixpath.normpath)
    realpath = staticmethod(posixpath.normpath)

    def __init__(self, fs: Any, exclusive: bool = True,
                 failure: Callable[[str, BaseException], Exception] | None = None):
        self.fs = fs
        self.exclusive = exclusive
        #: what this process last wrote to each appended object: appends need no download
        self._appended: dict[str, bytes] = {}
        #: turns a failure of the service into the error raised (see :meth:`_call`)
        self.failure = failure
        #: objects fetched ahead by :meth:`prefetch` (None: known to be absent)
        self._fetched: dict[str, bytes | None] = {}
        self._lock = _MEMORY_LOCK if _in_memory(fs) else contextlib.nullcontext()

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``self.fs.<method>(...)``; a missing or existing object stays the OSError it is,
        any other failure (no connection, access refused, a timeout) becomes
        ``self.failure(what, exc)``: never taken for a missing or unreadable file."""
        try:
            with self._lock:
                return getattr(self.fs, method)(*args, **kwargs)
        except _PASSED:
            raise
        except Exception as exc:
            if self.failure is None:
                raise
            raise self.failure(what, exc) from exc

    # -- reading ------------------------------------------------------------------------------
    def prefetch(self, paths: list[str]) -> None:
        """Fetch many objects in one concurrent batch; until :meth:`forget`, reading them (or
        asking whether they exist) costs no request. An object that is absent is remembered
        as absent; any other failure raises, so nothing is taken for missing by mistake."""
        wanted = [p for p in paths if p not in self._fetched]
        if not wanted:
            return
        got = self._call("read", "cat", wanted, on_error="return")
        if not isinstance(got, dict):
            got = {wanted[0]: got}
        for path in wanted:
            value = got.get(path)
            if isinstance(value, bytes):
                self._fetched[path] = value
            elif isinstance(value, FileNotFoundError):
                self._fetched[path] = None
            elif isinstance(value, BaseException):
                if isinstance(value, _PASSED) or self.failure is None:
                    raise value
                raise self.failure("read", value) from value
            # a path the filesystem answered under another name: read it as usual

    def forget(self) -> None:
        """Drop what :meth:`prefetch` fetched (it may be stale by now)."""
        self._fetched.clear()

    def exists(self, path: str) -> bool:
        if path in self._fetched:
            return self._fetched[path] is not None
        return bool(self._call("read", "exists", path))

    def isdir(self, path: str) -> bool:
        return bool(self._call("read", "isdir", path))

    def isfile(self, path: str) -> bool:
        return bool(self._call("read", "isfile", path))

    @staticmethod
    def islink(path: str) -> bool:
        return False  # object stores have no links

    def listdir(self, path: str) -> list[str]:
        try:
            entries = self._call("list", "ls", path, detail=False)
        except FileNotFoundError:
            return []  # a prefix holding nothing: an empty directory of an object store
        base = path.rstrip("/")
        return [posixpath.basename(str(e).rstrip("/")) for e in entries
                if str(e).rstrip("/") != base]

    def open_read(self, path: str) -> BinaryIO:
        # the whole object in one GET: the store's files are read whole anyway
        if path in self._fetched:
            data = self._fetched[path]
            if data is None:
                raise FileNotFoundError(path)
            return io.BytesIO(data)
        return io.BytesIO(self._call("read", "cat_file", path))

    def open_stream(self, path: str) -> BinaryIO:
        """A file read in pieces as it is consumed (artifacts can be large)."""
        return self._call("read", "open", path, "rb")

    # -- writing ------------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        """Object stores have no directories: nothing to make."""

    def put_bytes(self, path: str, data: bytes) -> None:
        self._call("write to", "pipe_file", path, data)
        self._appended.pop(path, None)

    @contextlib.contextmanager
    def replace_text(self, path: str, mode: str = "w") -> Iterator[IO[Any]]:
        buffer: IO[Any] = io.BytesIO() if "b" in mode else _ObjectWriter()
        yield buffer
        data = buffer.getvalue()
        self.put_bytes(path, data if isinstance(data, bytes) else data.encode("utf-8"))

    def write_text(self, path: str, text: str) -> None:
        self.put_bytes(path, text.encode("utf-8"))

    def append_text(self, path: str, text: str) -> None:
        """Object stores cannot append: the object is written again whole, from what this
        process wrote last (downloaded once when another process began it)."""
        held = self._appended.get(path)
        if held is None:
            try:
                held = self._call("read", "cat_file", path)
            except FileNotFoundError:
                held = b""
        data = held + text.encode("utf-8")
        self._call("write to", "pipe_file", path, data)
        self._appended[path] = data

    def copy_in(self, source: str, path: str, atomic: bool = False) -> None:
        self._call("write to", "put_file", source, path)  # one object, visible only when complete
        self._appended.pop(path, None)

    def remove_tree(self, directory: str, doomed: str) -> None:
        self._call("delete from", "rm", directory, recursive=True)
        self.drop_appended(directory)

    def drop_appended(self, directory: str) -> None:
        """Forget what this process appended under ``directory`` (a run that ended)."""
        for key in [k for k in self._appended if k.startswith(directory.rstrip("/") + "/")]:
            del self._appended[key]

    def mkdir_exclusive(self, path: str) -> None:
        """Claim the "directory" ``path``: FileExistsError when it holds anything already or
        another writer claimed it first."""
        if self.exists(path):
            raise FileExistsError(path)
        self.create_exclusive(posixpath.join(path, CLAIM_NAME))

    def create_with(self, path: str, data: bytes) -> None:
        """Create the object ``path`` holding ``data`` (which must differ from any other
        writer's: callers put a random token in it) unless it exists: FileExistsError."""
        self.create_exclusive(path, data)

    def files_under(self, directory: str) -> list[str]:
        try:
            found = self._call("list", "find", directory)
        except FileNotFoundError:
            return []
        base = directory.rstrip("/") + "/"
        return [str(p)[len(base):] for p in found if str(p).startswith(base)
                and posixpath.basename(str(p)) != CLAIM_NAME]

    def create_exclusive(self, path: str, data: bytes | None = None) -> None:
        token = data if data is not None else f"{os.getpid()}-{secrets.token_hex(8)}".encode()
        if self.exclusive:
            try:
                with self._lock:
                    self.fs.pipe_file(path, token, mode="create")
                return
            except (ValueError, NotImplementedError, TypeError):
                self.exclusive = False  # the filesystem has no exclusive create
            except _PASSED:
                raise
            except Exception as exc:
                if self.failure is None:
                    raise
                raise self.failure("write to", exc) from exc
        if self.exists(path):
            raise FileExistsError(path)
        self._call("write to", "pipe_file", path, token)
        if self._call("read", "cat_file", path) != token:  # another writer's claim overwrote ours
            raise FileExistsError(path)

    def probe(self, directory: str) -> None:
        path = posixpath.join(directory, f".labbook-write-check-{os.getpid()}")
        self._call("write to", "pipe_file", path, b"")
        self._call("write to", "rm_file", path)
