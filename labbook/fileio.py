"""Files written whole or not at all, and their fingerprints.

:func:`atomic_open` is the one way labbook replaces a file: the content goes to a temporary
file in the same directory, which is renamed over the target only when writing succeeded, so a
crash or a full disk leaves the old content or the new one, never half of either.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
from typing import IO, Any, BinaryIO, Iterator
from labbook.errors import ArgumentError

__all__ = ["atomic_open", "write_atomic", "copy_atomic", "file_md5"]

_CHUNK = 1 << 20


def _temporary(path: str) -> tuple[int, str]:
    """A new temporary file next to ``path`` with the mode a plain ``open(path, "w")`` would
    give ``path`` (its current mode when it exists, else 0o666 less the umask), unlike
    ``tempfile.mkstemp``'s 0o600: a file replaced atomically is as readable as one written in
    place (Sacred's files, ``cout.txt``, the index)."""
    directory = os.path.dirname(path) or "."
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    prefix = os.path.join(directory, ".tmp-" + os.path.basename(path)[:40])
    while True:  # 64 random bits: a name taken already is all but impossible
        tmp = f"{prefix}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)  # the umask applies, as for any new file
        except FileExistsError:
            continue
        if mode is not None:
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)
        return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO[Any]]:
    """A file to write ``path``'s new content to; it replaces ``path`` when the block ends
    without an exception, and is removed otherwise. ``mode`` is ``"w"`` or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ArgumentError(f"atomic_open writes with mode 'w' or 'wb', not {mode!r}")
    path = os.fspath(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) atomically."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)


def copy_atomic(source: str | os.PathLike | BinaryIO, path: str | os.PathLike) -> None:
    """Copy a file (a path or a binary stream) to ``path`` atomically."""
    with atomic_open(path, "wb") as out:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as fh:
                shutil.copyfileobj(fh, out, _CHUNK)
        else:
            shutil.copyfileobj(source, out, _CHUNK)


def file_md5(path: str | os.PathLike) -> str:
    """The hex md5 of a file's content, read in pieces (a fingerprint, not a security
    measure)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
