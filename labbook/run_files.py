"""Files a run keeps in step with its store: ``run.save`` (wandb), ``labbook.restore`` and
syncable directories (Foundations).

* ``run.save(glob, base_path=None, policy="live")`` stores the files matching ``glob`` as
  artifacts named by their path relative to ``base_path``: ``"now"`` once, at the call;
  ``"end"`` when the run ends; ``"live"`` at the call, again at every heartbeat for files that
  changed (size or modification time), and when the run ends (files created later that match
  the glob included).
* ``labbook.restore(name, run_path, root=".")`` downloads artifact ``name`` of a run.
* ``labbook.create_syncable_directory(key, local_path, source_run=None)`` pulls the directory
  ``key`` that run ``source_run`` pushed into ``local_path`` now, and pushes ``local_path`` as
  the artifacts ``key/<relative path>`` of the current run when it ends (or on ``upload()``).
"""
from __future__ import annotations

import glob as _glob
import logging
import os
from typing import Any, Callable

from labbook.errors import ArgumentError, MissingFileError, NoActiveRunError

__all__ = ["POLICIES", "SavedFiles", "SyncableDirectory", "run_store", "restore"]

log = logging.getLogger("labbook")

#: when run.save stores the matching files
POLICIES = ("now", "end", "live")


def _relative_name(path: str, base: str) -> str:
    rel = os.path.relpath(path, base)
    if rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
        raise ArgumentError(f"{path} is not inside the base path {base}; pass base_path= "
                            "a directory that holds the files.")
    return rel.replace(os.sep, "/")


def _glob_base(pattern: str) -> str:
    """The directory a glob's matches are named relative to: its part before the first
    wildcard (the current directory for a relative glob)."""
    if not os.path.isabs(pattern):
        return os.getcwd()
    parts = pattern.split(os.sep)
    plain = []
    for part in parts[:-1]:
        if _glob.has_magic(part):
            break
        plain.append(part)
    return os.sep.join(plain) or os.sep


class SavedFiles:
    """The globs a run keeps stored (see the module's docstring); one per run."""

    def __init__(self, add_artifact: Callable[..., None]):
        self._add = add_artifact
        self._globs: list[tuple[str, str, str]] = []  # (pattern, base, policy)
        self._sent: dict[str, tuple[int, int]] = {}  # file -> (size, mtime_ns) when stored

    def save(self, pattern: str, base_path: str | None = None, policy: str = "live"
             ) -> list[str]:
        if policy not in POLICIES:
            raise ArgumentError(f"run.save policy must be one of {', '.join(POLICIES)}, not "
                                f"{policy!r}.")
        pattern = os.fspath(pattern)
        base = os.path.abspath(base_path) if base_path is not None else _glob_base(pattern)
        absolute = pattern if os.path.isabs(pattern) else os.path.join(os.getcwd(), pattern)
        if policy != "end":
            stored = self._store(absolute, base, force=True)
            if not stored and not _glob.has_magic(pattern):
                raise MissingFileError(f"run.save: {absolute} does not exist.")
        else:
            stored = []
        if policy != "now":
            self._globs.append((absolute, base, policy))
        return stored

    def _store(self, pattern: str, base: str, force: bool) -> list[str]:
        stored = []
        for path in sorted(_glob.glob(pattern, recursive=True)):
            if not os.path.isfile(path):
                continue
            try:
                stat = os.stat(path)
            except OSError:  # gone since the glob
                continue
            mark = (stat.st_size, stat.st_mtime_ns)
            if not force and self._sent.get(path) == mark:
                continue
            name = _relative_name(path, base)
            self._add(path, name=name)
            self._sent[path] = mark
            stored.append(name)
        return stored

    def beat(self) -> None:
        """At a heartbeat: store the changed files of the ``live`` globs."""
        for pattern, base, policy in self._globs:
            if policy == "live":
                self._safely(pattern, base)

    def end(self) -> None:
        """When the run ends: the ``end`` globs, and what changed of the ``live`` ones."""
        for pattern, base, _policy in self._globs:
            self._safely(pattern, base)

    def _safely(self, pattern: str, base: str) -> None:
        try:
            self._store(pattern, base, force=False)
        except Exception:  # a file that vanished or cannot be read: say so, the run goes on
            log.warning("run.save could not store the files of %s", pattern, exc_info=True)


def run_store(run: Any) -> Any:
    """The store the run records into (its first store observer's, or, in a worker process
    attached to a parent run, the parent's), or None."""
    from labbook.stores.base import Store

    for observer in getattr(run, "observers", ()):
        store = getattr(getattr(observer, "observer", observer), "store", None)
        if isinstance(store, Store):
            return store
    return None


def _api(store: Any) -> Any:
    from labbook.api import Api

    if store is None:
        from labbook.context import current_run

        run = current_run()
        store = run_store(run) if run is not None else None
    return Api(store)


def restore(name: str, run_path: Any, root: str | os.PathLike = ".", replace: bool = False,
            store: Any = None) -> str:
    """Download artifact ``name`` of run ``run_path`` (its id) into ``root``; the path
    written. ``store``: a URL or Store; default: the active run's store, else
    ``$LABBOOK_STORE``, else the embedded default."""
    run_id = str(run_path).rsplit("/", 1)[-1]  # wandb's "entity/project/ID" works too
    return _api(store).run(run_id).file(name).download(root, replace=replace)


class SyncableDirectory:
    """A local directory kept as the artifacts ``key/...`` of runs (Foundations)."""

    def __init__(self, run: Any, key: str, local_path: str, source_run: Any = None):
        from labbook.run import validate_artifact_name

        validate_artifact_name(key, "Syncable directory key")
        self.key = key.strip("/")
        self.local_path = os.path.abspath(local_path)
        self.source_run = source_run
        self._run = run
        os.makedirs(self.local_path, exist_ok=True)

    def __repr__(self) -> str:
        return f"SyncableDirectory({self.key!r}, {self.local_path!r})"

    def download(self) -> list[str]:
        """Copy the files the source run pushed under this key into the directory."""
        if self.source_run is None:
            return []
        store = run_store(self._run)
        if store is None:
            raise NoActiveRunError("The run records into no store to download from.")
        view = _api(store).run(self.source_run)
        prefix = self.key + "/"
        names = [n for n in view.artifacts if n.startswith(prefix)]
        written = []
        for name in names:
            target = os.path.join(self.local_path, *name[len(prefix):].split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with view.file(name).open() as src, open(target + ".part", "wb") as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    dst.write(chunk)
            os.replace(target + ".part", target)
            written.append(target)
        return written

    def upload(self) -> list[str]:
        """Store every file of the directory as ``key/<relative path>`` of the current run."""
        stored = []
        for folder, _dirs, files in os.walk(self.local_path):
            for filename in sorted(files):
                path = os.path.join(folder, filename)
                name = f"{self.key}/{_relative_name(path, self.local_path)}"
                self._run.add_artifact(path, name=name)
                stored.append(name)
        return stored
