"""``FileStorageObserver``: runs in a directory, in the layout of Sacred's observer of that name
(the store itself is :class:`labbook.stores.file.FileStore`, opened through the registry)."""
from __future__ import annotations

import os

from labbook import serialize
from labbook.errors import ArtifactNameError, MissingFileError, ObserverError, StoreURLError
from labbook.observers.store_observer import StoreObserver
from labbook.stores import check_url, redact_url, store_class

__all__ = ["FileStorageObserver"]


class FileStorageObserver(StoreObserver):
    """Stores runs in a directory, in the layout of Sacred's FileStorageObserver, with its
    options: ``resource_dir`` and ``source_dir`` (default ``basedir/_resources`` and
    ``basedir/_sources``), ``copy_artifacts`` and ``copy_sources`` (False records the names
    only) and ``template``: a Mako template (default ``basedir/template.html`` when it
    exists) rendered into ``<run dir>/report.<ext>`` when the run ends, with ``run``,
    ``config``, ``info``, ``cout`` and ``savedir`` (needs the ``mako`` package)."""

    def __init__(self, basedir: str | os.PathLike, resource_dir: str | os.PathLike | None = None,
                 source_dir: str | os.PathLike | None = None,
                 template: str | os.PathLike | None = None, priority: int | None = None,
                 copy_artifacts: bool = True, copy_sources: bool = True):
        if isinstance(basedir, str) and (":" in basedir):
            # -F file://runs works; -F file:// (no directory) or another store's URL does not
            if basedir.startswith("file:"):
                check_url(basedir)
                basedir = basedir[len("file://"):]
            elif "://" in basedir:
                raise StoreURLError(f"FileStorageObserver (-F) takes a directory, not the URL "
                                    f"{redact_url(basedir)}; use --store URL for other stores.")
            else:  # sqlite:/x.db is a misspelled URL, not a directory 'sqlite:' to create
                check_url(basedir)
        file_store = store_class("file")
        super().__init__(file_store(basedir, resource_dir=resource_dir, source_dir=source_dir,
                                    copy_artifacts=copy_artifacts, copy_sources=copy_sources),
                         priority)
        self.basedir = self.store.basedir
        self.resource_dir = self.store.resource_dir
        self.source_dir = self.store.source_dir
        self.copy_artifacts = copy_artifacts
        self.copy_sources = copy_sources
        if template is not None:
            template = os.path.abspath(os.fspath(template))
            if not os.path.isfile(template):
                raise MissingFileError(f"The FileStorageObserver's template {template} does "
                                       "not exist.")
        else:
            default = os.path.join(self.basedir, "template.html")
            template = default if os.path.isfile(default) else None
        self.template = template

    def save_file(self, filename: str | os.PathLike, target_name: str | None = None) -> None:
        """Copy ``filename`` into the current run's directory as ``target_name`` (default: its
        base name), as Sacred's observer does for artifacts; labbook also lists it among the
        run's artifacts so that the read API and ``labbook show`` find it."""
        if self.run_id is None:
            raise ObserverError("FileStorageObserver.save_file needs a started run: call it "
                                "while the run is going (or use _run.add_artifact).")
        source = os.fspath(filename)
        if not os.path.isfile(source):
            raise MissingFileError(f"FileStorageObserver.save_file: {source} is not a file.")
        name = os.path.basename(source) if target_name is None else os.fspath(target_name)
        parts = name.replace("\\", "/").split("/")
        if not name or os.path.isabs(name) or any(p in ("", ".", "..") for p in parts):
            raise ArtifactNameError(f"FileStorageObserver.save_file: target name {name!r} must "
                                    "be a relative path inside the run's directory.")
        if parts[0].lower() in self.store.RUN_FILES:
            raise ArtifactNameError(
                f"FileStorageObserver.save_file: {name!r} is a file the store keeps for the run "
                f"itself ({', '.join(sorted(self.store.RUN_FILES))}); choose another name.")
        self.artifact_event(name, source)

    def completed_event(self, stop_time, result):
        super().completed_event(stop_time, result)
        self._render_report()

    def interrupted_event(self, interrupt_time, status):
        super().interrupted_event(interrupt_time, status)
        self._render_report()

    def failed_event(self, fail_time, fail_trace):
        super().failed_event(fail_time, fail_trace)
        self._render_report()

    def _render_report(self) -> None:
        if self.template is None or self.run_id is None:
            return
        try:
            from mako.template import Template
        except ImportError:
            import logging

            logging.getLogger("labbook.observers").warning(
                "The FileStorageObserver's template %s is not rendered: it needs Mako (pip "
                "install mako).", self.template)
            return
        doc = self.store.get(self.run_id) or {}
        # as in Sacred's run.json: times as ISO text (templates parse them with dateutil)
        run = serialize.flatten({k: v for k, v in doc.items()
                                 if k not in ("config", "info", "captured_out")})
        report = Template(filename=self.template).render(
            run=run, config=doc.get("config", {}), info=doc.get("info", {}),
            cout=doc.get("captured_out", ""), savedir=self.dir)
        extension = os.path.splitext(self.template)[1]
        with open(os.path.join(self.dir, "report" + extension), "w", encoding="utf-8") as fh:
            fh.write(report)

    @property
    def dir(self) -> str | None:
        """The directory of the current run (Sacred's ``observer.dir``)."""
        return None if self.run_id is None else os.path.join(self.basedir, str(self.run_id))
