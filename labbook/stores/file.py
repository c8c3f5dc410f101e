"""The file store, in the layout of Sacred 0.8's FileStorageObserver.

::

    DIR/<id>/run.json       everything but config, info, output and metrics
    DIR/<id>/config.json
    DIR/<id>/info.json
    DIR/<id>/cout.txt
    DIR/<id>/metrics.json   Sacred's {name: {steps, timestamps, values}}, written when the run ends
    DIR/<id>/metrics.jsonl  one line per heartbeat with the points of that beat (appended)
    DIR/<id>/<artifact>     artifacts, under their names
    DIR/_sources/<name>_<md5>.<ext>
    DIR/_resources/<name>_<md5>.<ext>

Ids are allocated with ``os.mkdir`` (atomic): the next free integer wins, a collision moves on
to the next one. JSON files are replaced atomically (temp file + ``os.replace``). Metrics are
appended at every beat; ``metrics.json`` is assembled once at the end, so the total cost is
linear in the number of points.

All I/O goes through ``self.fs`` (:mod:`labbook.stores.filesystem`): ``os`` for a local
directory, an fsspec filesystem for the remote stores of :mod:`labbook.stores.remote`
(``s3://``, ``gs://``, ``memory://``), which keep the same layout.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Any, BinaryIO, Iterable, Iterator

from labbook import clock, serialize
from labbook.errors import (ArtifactNameError, CorruptRunWarning, InvalidRunIdError,
                            RunIdRefusedError,
                            NoStoreError, RunExistsError, RunNotFoundError,
                            StoreUnusableError)
from labbook.fileio import file_md5
from labbook.stores import file_series
from labbook.stores.file_versions import FileVersionsMixin
from labbook.stores.file_index import is_run_name, run_order
from labbook.stores.filesystem import LOCAL
from labbook.stores.base import (LAST_KEY, Store, claim_order, replaceable, sample_positions,
                                 sample_series)

__all__ = ["write_json_atomic", "BROKEN", "PROBLEMS_KEY", "FileStore"]

_RUN_JSON_EXCLUDE = ("config", "info", "captured_out", "_id", "problems")
#: the status reported for a run whose ``run.json`` cannot be read
BROKEN = "BROKEN"
#: the key of a read document listing what could not be read ("config.json is not valid JSON
#: ..."); only documents with a problem have it
PROBLEMS_KEY = "problems"


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"is not UTF-8 text (byte {exc.start})"
    return f"cannot be read ({exc})"


def _is_series(series: Any) -> bool:
    return isinstance(series, dict) and all(
        isinstance(series.get(k), list) for k in ("steps", "values", "timestamps")) and \
        len(series["steps"]) == len(series["values"]) == len(series["timestamps"])


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _relative_resource(entry: Any) -> Any:
    """``[name, stored]`` with a stored path ending in ``_resources/<file>`` (Sacred writes the
    store's directory in front) made relative to the store, so a copied store still reads."""
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str):
        head, tail = os.path.split(entry[1])
        if os.path.basename(head) == "_resources":
            return [entry[0], "_resources/" + tail]
    return entry


def write_json_atomic(path: str, data: Any, long_lists: bool = False, fs: Any = LOCAL) -> None:
    """Write ``data`` as Sacred writes its JSON files (sorted keys, indent 2, non-ASCII as
    ``\\u`` escapes), to a temporary file renamed into place (on ``fs``: one object written
    whole). ``long_lists``: the data holds long lists (metrics.json): their items go through
    the C encoder, in pieces."""
    with fs.replace_text(path) as fh:
        if long_lists:
            for piece in serialize.iter_pretty(data):
                fh.write(piece)
        else:  # small documents: the json module in one call is quicker
            fh.write(json.dumps(data, default=serialize.flatten, indent=2, sort_keys=True,
                                allow_nan=True))


def _dir_state(path: str) -> tuple:
    """What changes when an entry of directory ``path`` comes or goes: its modification time,
    and for the timestamps' coarse ticks (a few ms) its link count (one per subdirectory on
    most file systems) and size; the inode, for a directory made anew."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_nlink, st.st_size


class FileStore(FileVersionsMixin, Store):
    schemes = ("file",)
    takes_micros = True  # append_metrics: clock.to_iso and the pieces take clock.Micros
    #: the files this store keeps in a run's directory (labbook.run.RESERVED_NAMES, which
    #: artifact names may not take, is the same set; a test keeps them equal)
    RUN_FILES = frozenset({"run.json", "config.json", "info.json", "cout.txt", "metrics.json",
                           "metrics.jsonl"})
    #: where the files live (:mod:`labbook.stores.filesystem`); remote stores set their own
    fs: Any = LOCAL

    def __init__(self, basedir: str | os.PathLike, index: bool | None = None,
                 resource_dir: str | os.PathLike | None = None,
                 source_dir: str | os.PathLike | None = None,
                 copy_artifacts: bool = True, copy_sources: bool = True):
        if self.fs.remote:  # a remote store (labbook.stores.remote) set fs, basedir and url
            self.local_dir = None
            self.resource_dir = os.fspath(resource_dir) if resource_dir \
                else self.fs.join(self.basedir, "_resources")
            self.source_dir = os.fspath(source_dir) if source_dir \
                else self.fs.join(self.basedir, "_sources")
        else:
            self.basedir = os.path.abspath(os.fspath(basedir))
            self.local_dir = self.basedir
            self.url = "file://" + self.basedir
            # Sacred's options: where stored copies go, and whether to copy at all
            self.resource_dir = os.path.abspath(os.fspath(resource_dir)) if resource_dir \
                else os.path.join(self.basedir, "_resources")
            self.source_dir = os.path.abspath(os.fspath(source_dir)) if source_dir \
                else os.path.join(self.basedir, "_sources")
        self._checked = False  # check() has found the directory writable
        self.copy_artifacts = copy_artifacts
        self.copy_sources = copy_sources
        self._runs: dict[str, dict] = {}
        self._written: dict[tuple, Any] = {}
        #: per run id, the pieces of metrics.json kept as points arrive (file_metrics)
        self._pieces: dict[str, Any] = {}
        #: (the next id, basedir's stat just after this store made the run directory before
        #: it): while the stat is the same, no entry came or went, so no listing is needed
        self._id_hint: tuple[int, tuple] | None = None
        if index is None:  # LABBOOK_FILE_INDEX=0 turns the index off (see file_index.py)
            index = os.environ.get("LABBOOK_FILE_INDEX", "1").strip().lower() not in (
                "0", "false", "no", "off")
        self.use_index = bool(index) and not self.fs.remote  # the index is local-only
        self._index: Any = None

    @property
    def index(self) -> Any:
        """The :class:`~labbook.stores.file_index.FileIndex` of this store (None when off)."""
        if not self.use_index:
            return None
        if self._index is None:
            from labbook.stores.file_index import FileIndex

            self._index = FileIndex(self)
        return self._index

    @classmethod
    def from_url(cls, url: str) -> FileStore:
        path = url[len("file://"):] if url.startswith("file://") else url
        return cls(path)

    @classmethod
    def open_existing(cls, url: str) -> FileStore:
        """The store at ``url`` for reading: a missing directory is an error, never made."""
        store = cls.from_url(url)
        if not store.fs.isdir(store.basedir):
            what = "is not a directory" if store.fs.exists(store.basedir) else "does not exist"
            raise NoStoreError(f"No store at {url} (the directory {store.basedir} {what}).",
                               url)
        return store

    def check(self) -> None:
        """The directory exists (made if needed) and a file can be written into it. Probed
        once per store object: a directory that goes bad later is an outage, which durable
        delivery journals."""
        if self._checked:
            return
        try:
            self.fs.probe(self.basedir)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StoreUnusableError(
                f"Cannot record runs in the file store {self.basedir}: {reason} "
                f"({exc.filename or self.basedir}). Give a directory you can write to.",
                self.url) from None
        self._checked = True

    def _dir(self, run_id: Any) -> str:
        """The run's directory; an id that would name another place (``../x``, ``/x``, ``a/b``)
        is an :class:`InvalidRunIdError`: nothing outside the store is ever read or written."""
        name = str(run_id)
        if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name \
                or (os.altsep and os.altsep in name):
            raise InvalidRunIdError(f"{name!r} is not a run id of the file store {self.basedir}:"
                                    " an id names one directory inside the store.")
        return self.fs.join(self.basedir, name)

    def _inside(self, path: str, within: str) -> bool:
        """Whether ``path``, links resolved, lies inside the directory ``within``."""
        real, base = self.fs.realpath(path), self.fs.realpath(within)
        return real != base and os.path.commonpath([real, base]) == base

    def _links_out(self, run_id: Any) -> bool:
        """Whether the run's directory is a link to a place outside the store (never read)."""
        directory = self._dir(run_id)
        return self.fs.islink(directory) and not self._inside(directory, self.basedir)

    def _read_dir(self, run_id: Any) -> str:
        """The run's directory for reading its files; one linking out of the store is an
        :class:`InvalidRunIdError`."""
        if self._links_out(run_id):
            raise InvalidRunIdError(f"Run {run_id} in {self.basedir} is a link to a directory "
                                    "outside the store; not read.")
        return self._dir(run_id)

    def artifact_path(self, run_id: Any, name: Any) -> str:
        """Where the artifact ``name`` of the run lies; a name that leads out of the run's
        directory (``../../x``, an absolute path, a link pointing out) is an
        :class:`ArtifactNameError`."""
        directory = self._read_dir(run_id)
        if not isinstance(name, str) or not name or "\0" in name:
            raise ArtifactNameError(f"Run {run_id} in {self.basedir} names an artifact {name!r}"
                                    " that is no file name; refused.")
        path = self.fs.normpath(self.fs.join(directory, name))
        if os.path.isabs(name) or not self._inside(path, directory):
            raise ArtifactNameError(f"Run {run_id} in {self.basedir} names an artifact {name!r}"
                                    " that points outside its directory; refused.")
        return path

    # -- write side ----------------------------------------------------------------------------
    def create_run(self, doc: dict, run_id: Any = None, *, overwrite: bool = False) -> Any:
        self.fs.makedirs(self.basedir)
        if run_id is None:
            run_id = self._allocate_id()
        else:
            self._take_dir(run_id, overwrite)
        self._runs[str(run_id)] = dict(doc)
        self._write_all(run_id)
        return run_id

    def _take_dir(self, run_id: Any, overwrite: bool) -> None:
        """Make the directory of a run with a chosen id; an existing run is replaced only when
        it is QUEUED (being started now) or ``overwrite`` is set."""
        name = str(run_id)
        if not name or name in (".", "..") or "/" in name or os.sep in name \
                or name.startswith("_") or name.startswith("."):
            raise RunIdRefusedError(f"{name!r} cannot be a run id in a file store: it names the "
                                    "run's directory (no slashes, no leading '_' or '.').")
        directory = self._dir(run_id)
        try:
            self.fs.mkdir_exclusive(directory)
            return
        except FileExistsError:
            pass
        try:
            existing = self._read_json(self.fs.join(directory, "run.json"))
        except ValueError:
            existing = None
        existing = existing if isinstance(existing, dict) else {}
        if not overwrite and not replaceable(existing):
            raise RunExistsError(
                f"A run with id {name} already exists in {self.basedir}. Choose another id, or "
                "leave the id out to get the next free one.")
        # what the old run wrote must not mix with the new one: metrics, output, artifacts
        self.fs.remove_tree(directory,
                            self.fs.join(self.basedir, f".replaced-{name}-{os.getpid()}"))
        self.fs.mkdir_exclusive(directory)
        self._forget(name)
        stale = self._pieces.pop(name, None)
        if stale is not None:
            stale.close()

    def _allocate_id(self) -> int:
        """The next free id (the highest numbered directory + 1, as Sacred's), its directory
        made. A local store lists ``basedir`` only when an entry came or went since its own
        previous run: one ``stat`` instead of a listing that grows with the store."""
        hint = self._id_hint
        self._id_hint = None
        if hint is not None:
            try:
                if _dir_state(self.basedir) == hint[1]:
                    self.fs.mkdir_exclusive(self._dir(hint[0]))
                    self._hint_next(hint[0])
                    return hint[0]
            except OSError:  # taken meanwhile (FileExistsError), basedir gone: list it
                pass
        existing = [int(n) for n in self.fs.listdir(self.basedir) if n.isdigit()]
        candidate = max(existing, default=0) + 1
        while True:
            try:
                self.fs.mkdir_exclusive(self._dir(candidate))
                self._hint_next(candidate)
                return candidate
            except FileExistsError:
                candidate += 1

    def _hint_next(self, made: int) -> None:
        if self.fs is LOCAL:
            try:
                self._id_hint = (made + 1, _dir_state(self.basedir))
            except OSError:
                self._id_hint = None

    def _doc(self, run_id: Any) -> dict:
        doc = self._runs.get(str(run_id))
        if doc is None:
            doc = self.get(run_id) or {}
            self._runs[str(run_id)] = doc
        return doc

    def _write_all(self, run_id: Any) -> None:
        doc = self._doc(run_id)
        directory = self._dir(run_id)
        write_json_atomic(self.fs.join(directory, "config.json"), doc.get("config", {}),
                          fs=self.fs)
        self._write_run_json(run_id)
        if doc.get("info"):
            write_json_atomic(self.fs.join(directory, "info.json"), doc["info"], fs=self.fs)
        if doc.get("captured_out") or doc.get("status") == "RUNNING":
            # as Sacred's: a started run has its cout.txt from the start, empty until output
            self._write_cout(run_id, doc.get("captured_out") or "")

    def _write_run_json(self, run_id: Any) -> None:
        doc = self._doc(run_id)
        data = {k: v for k, v in doc.items() if k not in _RUN_JSON_EXCLUDE}
        write_json_atomic(self.fs.join(self._dir(run_id), "run.json"), data, fs=self.fs)

    def claim_queued(self, worker: str, experiment: str | None = None) -> dict | None:
        # os.mkdir of DIR/<id>/.claimed is the atomic step: one process wins each run (on
        # an object store: the exclusive create of its marker object)
        flt: dict = {"status": "QUEUED"}
        if experiment is not None:
            flt["experiment.name"] = experiment
        for doc in sorted(self.find(flt), key=claim_order):
            run_id = doc["_id"]
            try:
                self.fs.mkdir_exclusive(self.fs.join(self._dir(run_id), ".claimed"))
            except FileExistsError:
                continue  # another worker was quicker
            except FileNotFoundError:
                continue  # deleted meanwhile
            meta = dict(doc.get("meta") or {}, worker=worker)
            self._runs.pop(str(run_id), None)
            self.update_run(run_id, {"status": "RUNNING", "heartbeat": clock.utcnow(),
                                     "meta": meta})
            return self.get(run_id)
        return None

    def claim_run(self, run_id: Any, worker: str) -> dict | None:
        # the same atomic step as claim_queued: the exclusive create of DIR/<id>/.claimed
        doc = self.get(run_id)
        if doc is None or doc.get("status") != "QUEUED":
            return None
        try:
            self.fs.mkdir_exclusive(self.fs.join(self._dir(run_id), ".claimed"))
        except (FileExistsError, FileNotFoundError):
            return None
        self._runs.pop(str(run_id), None)
        doc = self.get(run_id)
        if doc is None or doc.get("status") != "QUEUED":
            return None
        meta = dict(doc.get("meta") or {}, worker=worker)
        self.update_run(run_id, {"status": "RUNNING", "heartbeat": clock.utcnow(),
                                 "meta": meta})
        return self.get(run_id)

    def update_if(self, run_id: Any, expected: dict, fields: dict) -> bool:
        # the exclusive create of DIR/<id>/.cas-<digest of the expected state> is the atomic
        # step: of the processes that saw the run in one state, one changes it (a worker's
        # beat and a re-queue compete for the same marker); the state is then read again
        import hashlib

        seen = json.dumps([str(run_id), sorted((k, str(v)) for k, v in expected.items())])
        marker = ".cas-" + hashlib.sha1(seen.encode("utf-8")).hexdigest()[:20]
        try:
            self.fs.mkdir_exclusive(self.fs.join(self._dir(run_id), marker))
        except (FileExistsError, FileNotFoundError):
            return False
        self._runs.pop(str(run_id), None)
        doc, _ = self.read_run(run_id, output=False)
        if doc is None or any(doc.get(k) != v for k, v in expected.items()):
            return False
        if fields.get("status") == "QUEUED":  # claimable again: the claim marker goes
            claimed = self.fs.join(self._dir(run_id), ".claimed")
            if self.fs.exists(claimed):
                self.fs.remove_tree(claimed, self.fs.join(
                    self.basedir, f".unclaimed-{run_id}-{os.getpid()}"))
        self._runs.pop(str(run_id), None)
        self.update_run(run_id, fields)
        return True

    def update_run(self, run_id: Any, fields: dict) -> None:
        doc = self._doc(run_id)
        doc.update(fields)
        directory = self._dir(run_id)
        if "config" in fields:
            write_json_atomic(self.fs.join(directory, "config.json"), fields["config"],
                              fs=self.fs)
        if "info" in fields and (fields["info"] or self._written.get((str(run_id), "info"))):
            if fields["info"] != self._written.get((str(run_id), "info")):
                write_json_atomic(self.fs.join(directory, "info.json"), fields["info"] or {},
                                  fs=self.fs)
                self._written[(str(run_id), "info")] = fields["info"]
        if "captured_out" in fields:
            self._write_cout(run_id, fields["captured_out"] or "")
        elif fields.get("status") == "RUNNING" and \
                not self.fs.exists(self.fs.join(directory, "cout.txt")):
            self._write_cout(run_id, doc.get("captured_out") or "")  # a queued run started
        if set(fields) - {"config", "info", "captured_out"}:
            self._write_run_json(run_id)
        if fields.get("status") not in (None, "RUNNING", "QUEUED"):
            self._end_metrics(run_id)
            # an ended run's document and output leave memory: a process running thousands
            # of runs keeps none of them (a later change reads the run from its files)
            self._forget(run_id)

    def _forget(self, run_id: Any) -> None:
        name = str(run_id)
        self._runs.pop(name, None)
        self._written.pop((name, "info"), None)
        self._written.pop((name, "cout"), None)

    def _write_cout(self, run_id: Any, text: str) -> None:
        # Plain text, rewritten in place like Sacred's cout.txt: creating a new file for an
        # atomic rename costs several times more than an overwrite, at every heartbeat.
        key = (str(run_id), "cout")
        if self._written.get(key) == text:
            return
        self.fs.write_text(self.fs.join(self._dir(run_id), "cout.txt"), text)
        self._written[key] = text

    def append_metrics(self, run_id: Any, metrics_by_name: dict[str, dict[str, list]]) -> None:
        if not metrics_by_name:
            return
        iso = {name: clock.to_iso(s["timestamps"]) for name, s in metrics_by_name.items()}
        # each list encoded once: for the line (json.dumps of the whole dict, piece by piece)
        # and for the pieces of metrics.json
        texts = {}
        for name, s in metrics_by_name.items():
            if name.__class__ is not str:
                texts = None
                break
            texts[name] = (json.dumps(s["steps"], allow_nan=True),
                           json.dumps(s["values"], allow_nan=True),
                           json.dumps(iso[name], allow_nan=True))
        if texts is None:
            line = json.dumps({name: {"steps": s["steps"], "values": s["values"],
                                      "timestamps": iso[name]}
                               for name, s in metrics_by_name.items()}, allow_nan=True)
        else:
            line = "{" + ", ".join(
                f'{json.dumps(name)}: {{"steps": {steps}, "values": {values}, '
                f'"timestamps": {stamps}}}' for name, (steps, values, stamps) in texts.items()
            ) + "}"
        path = self.fs.join(self._dir(run_id), "metrics.jsonl")
        pieces = self._pieces_for(run_id, path) if texts is not None else None
        if texts is None and str(run_id) in self._pieces:
            self._pieces[str(run_id)].valid = False
        try:
            self.fs.append_text(path, line + "\n")
        except BaseException:
            if pieces is not None:
                pieces.valid = False
            raise
        if pieces is not None:
            try:
                pieces.add(metrics_by_name, iso, texts, os.stat(path).st_size)
            except OSError:  # no room for the pieces: metrics.json from metrics.jsonl
                pieces.valid = False

    def _pieces_for(self, run_id: Any, path: str) -> Any:
        """The pieces of metrics.json kept for this run (see file_metrics); made when this
        writer creates metrics.jsonl, None when they cannot account for all of it."""
        if self.fs.remote:
            return None
        key = str(run_id)
        pieces = self._pieces.get(key)
        if pieces is not None:
            return pieces if pieces.matches() else None
        if os.path.exists(path):
            return None  # begun elsewhere (another process, an earlier store object)
        from labbook.stores.file_metrics import Pieces

        try:
            pieces = self._pieces[key] = Pieces(self._dir(run_id))
        except OSError:
            return None
        return pieces

    def _write_metrics_json(self, run_id: Any) -> dict | None:
        """Assemble metrics.json from metrics.jsonl; the raw history, None without points."""
        if not self.fs.exists(self.fs.join(self._dir(run_id), "metrics.jsonl")):
            return None
        history = self.history(run_id, raw=True)
        out = {name: {"steps": s["steps"], "timestamps": s["timestamps"], "values": s["values"]}
               for name, s in history.items()}
        write_json_atomic(self.fs.join(self._dir(run_id), "metrics.json"), out,
                          long_lists=True, fs=self.fs)
        return history

    def _end_metrics(self, run_id: Any) -> None:
        """The run has ended: write metrics.json, the binary copy of long series and the
        index line, from the pieces kept while it ran when they account for every point,
        else from metrics.jsonl."""
        pieces = self._pieces.pop(str(run_id), None)
        try:
            if pieces is not None and pieces.matches():
                directory = self._dir(run_id)
                with self.fs.replace_text(self.fs.join(directory, "metrics.json"), "wb") as fh:
                    pieces.write_json(fh)
                file_series.write_parts(directory, list(pieces.series),
                                        pieces.binary_series(file_series.WRITER_MIN_POINTS))
                if self.use_index:
                    self.index.record(str(run_id), tails=pieces.tails())
                return
        finally:
            if pieces is not None:
                pieces.close()
        history = self._write_metrics_json(run_id)
        if history and not self.fs.remote and \
                max(len(s["values"]) for s in history.values()) >= \
                file_series.WRITER_MIN_POINTS:
            file_series.write(self._dir(run_id), history, file_series.WRITER_MIN_POINTS)
        if self.use_index:  # the run ended: one index line, so readers need not parse it
            self.index.record(str(run_id), history)

    def put_artifact(self, run_id: Any, name: str, filename: str, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        if self.copy_artifacts:  # Sacred's copy_artifacts=False records the name only
            self.fs.copy_in(filename, self.fs.join(self._dir(run_id), name))
        doc = self._doc(run_id)
        artifacts = doc.setdefault("artifacts", [])
        if name not in artifacts:
            artifacts.append(name)
        self._write_run_json(run_id)

    def _store_blob(self, directory: str, filename: str, relname: str | None = None) -> str:
        """Copy ``filename`` once per content to ``directory/<name>_<md5>.<ext>``; the copy's
        absolute path."""
        md5 = file_md5(filename)
        base = os.path.basename(relname or filename)
        stem, ext = os.path.splitext(base)
        target = self.fs.join(directory, f"{stem}_{md5}{ext}")
        if not self.fs.exists(target):
            self.fs.copy_in(filename, target, atomic=True)
        return target

    def put_resource(self, run_id: Any, filename: str) -> None:
        # Sacred records the stored copy as DIR/_resources/<name>_<md5>.<ext> (DIR included);
        # get() turns such paths back into store-relative ones, so moved stores still read
        stored = self._store_blob(self.resource_dir, filename)
        doc = self._doc(run_id)
        resources = doc.setdefault("resources", [])
        if [filename, stored] not in resources:
            resources.append([filename, stored])
        self._write_run_json(run_id)

    def put_sources(self, experiment_info: dict) -> dict:
        info = dict(experiment_info)
        base_dir = info.get("base_dir") or ""
        sources = []
        self.fs.makedirs(self.basedir)
        for relname, _md5sum in info.get("sources", []):
            path = os.path.join(base_dir, relname)
            if os.path.isfile(path):
                # recorded relative to the store, as Sacred does; without copy_sources the
                # record points at the file where it is
                stored = self._store_blob(self.source_dir, path, relname) \
                    if self.copy_sources else os.path.abspath(path)
                # (a local file named by a remote store's run: its absolute path)
                sources.append([relname, stored if self.fs.remote and not self.copy_sources
                                else os.path.relpath(stored, self.basedir)])
        info["sources"] = sources
        return info

    # -- read side -----------------------------------------------------------------------------
    def _read_json(self, path: str, default: Any = None) -> Any:
        try:
            with self.fs.open_read(path) as fh:
                return json.loads(fh.read().decode("utf-8"))
        except FileNotFoundError:
            return default

    def _problem(self, run_id: Any, text: str) -> str:
        """``text`` (a file of run ``run_id`` and what is wrong with it) as one message."""
        return f"run {run_id} in {self.basedir}: {text}"

    @staticmethod
    def warn(problems: Iterable[str]) -> None:
        """Report what could not be read, one warning each (:class:`CorruptRunWarning`)."""
        for problem in problems:
            warnings.warn(problem, CorruptRunWarning, stacklevel=3)

    def _read_object(self, run_id: Any, name: str, problems: list[str],
                     default: Any = None) -> Any:
        """The JSON object of the run's file ``name``; ``default`` when the file is absent, or
        cannot be read (then the reason is added to ``problems``)."""
        try:
            value = self._read_json(self.fs.join(self._dir(run_id), name), default)
        except ValueError as exc:
            problems.append(self._problem(run_id, f"{name} {_json_problem(exc)}"))
            return default
        except OSError as exc:
            problems.append(self._problem(run_id, f"{name} cannot be read "
                                                  f"({exc.strerror or exc})"))
            return default
        if value is not default and not isinstance(value, dict):
            problems.append(self._problem(run_id, f"{name} holds {_kind(value)}, not a JSON "
                                                  "object"))
            return default
        return value

    def _read_cout(self, run_id: Any, problems: list[str] | None = None) -> str:
        path = self.fs.join(self._dir(run_id), "cout.txt")
        try:
            with self.fs.open_read(path) as fh:
                data = fh.read()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            if problems is not None:
                problems.append(self._problem(run_id, f"cout.txt cannot be read "
                                                      f"({exc.strerror or exc})"))
            return ""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if problems is not None:
                problems.append(self._problem(
                    run_id, f"cout.txt is not UTF-8 text (byte {exc.start}); undecodable bytes "
                            "are shown as U+FFFD"))
            return data.decode("utf-8", errors="replace")

    def get(self, run_id: Any) -> dict | None:
        """The run's document; None without a ``run.json``. What cannot be read is left out,
        listed under ``problems`` and reported as a :class:`CorruptRunWarning`; a run whose
        ``run.json`` cannot be read has the status ``BROKEN``."""
        run, problems = self.read_run(run_id)
        self.warn(problems)
        return run

    def read_run(self, run_id: Any, output: bool = True) -> tuple[dict | None, list[str]]:
        """:meth:`get` without the warnings: ``(document or None, problems)``; ``output``
        False leaves ``captured_out`` out (``cout.txt`` is not read)."""
        problems: list[str] = []
        directory = self._dir(run_id)
        if self.fs.islink(directory) and not self._inside(directory, self.basedir):
            problems.append(self._problem(run_id, f"the run's directory is a link to "
                                                  f"{os.path.realpath(directory)}, outside the "
                                                  "store; not read"))
            run = None
        else:
            run = self._read_object(run_id, "run.json", problems)
        if run is None and not problems:
            return None, []
        parsed_id = int(run_id) if str(run_id).isdigit() else run_id
        if run is None:  # run.json unreadable: the run is listed, marked, never hidden
            return {"_id": parsed_id, "status": BROKEN, "experiment": {}, "meta": {},
                    "host": {}, "config": {}, "info": {}, "captured_out": "",
                    "artifacts": [], "resources": [], PROBLEMS_KEY: problems}, problems
        run.pop(PROBLEMS_KEY, None)
        run["_id"] = parsed_id
        run["config"] = self._read_object(run_id, "config.json", problems, {})
        run["info"] = self._read_object(run_id, "info.json", problems, {})
        if output:
            run["captured_out"] = self._read_cout(run_id, problems)
        for key in ("start_time", "stop_time", "heartbeat", "queue_time"):
            if isinstance(run.get(key), str):
                try:
                    run[key] = clock.to_utc(run[key])
                except ValueError:
                    problems.append(self._problem(
                        run_id, f"run.json: {key} {run[key][:40]!r} is not a time"))
                    run[key] = None
        resources = run.get("resources")
        run["resources"] = [_relative_resource(e) for e in resources] \
            if isinstance(resources, list) else []
        if problems:
            run[PROBLEMS_KEY] = list(problems)
        return run, problems

    def run_ids(self) -> list:
        try:
            names = self.fs.listdir(self.basedir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        from labbook.stores.file_index import parse_run_name

        # a file (not a directory) among them is left out when it is read: no run.json
        chosen = sorted((n for n in names if is_run_name(n)), key=run_order)
        return [parse_run_name(n) for n in chosen]

    def find(self, filter: dict | None = None, order: str | None = None,
             limit: int | None = None, *, exclude: Iterable[str] = (),
             with_last: bool = False, shared: bool = False) -> list[dict]:
        """Runs matching ``filter`` (the query model of :mod:`labbook.stores.query`), sorted
        by ``order``; ``exclude``'d top-level fields (``captured_out``) are not read unless the
        filter or the order looks at them. Served from the index when it is on.

        ``shared``: the documents' values may be the index's own (each document is a new
        dict, what it holds is not copied), for callers that only read them, such as a
        table of the runs."""
        from labbook.stores.query import (canonical_order, evaluate, heads, parse, query_view,
                                          sort_runs)

        node = parse(filter)  # an invalid filter fails even on an empty store
        order = canonical_order(order)  # wandb's spellings (-created_at)
        looked_at = heads(node, order)
        skip_output = "captured_out" in exclude and "captured_out" not in looked_at
        summary = "summary" in looked_at
        # the index's entries are tens of thousands of new containers: collections while they
        # are made and filtered would walk them (and every older object) again and again
        with serialize.gc_paused():
            if self.use_index and "captured_out" not in looked_at:
                entries = self.index.refresh()
                pairs = [(entries[name]["doc"], entries[name]["last"])
                         for name in sorted(entries, key=run_order)]
            else:
                docs = []
                for run_id in self.run_ids():  # the output only where it is wanted
                    doc, problems = self.read_run(run_id, output=not skip_output)
                    self.warn(problems)
                    if doc is not None:
                        docs.append(doc)
                # summaries read from the metric files only where the filter or order needs them
                lasts = self.last_values([d["_id"] for d in docs]) if summary else {}
                pairs = [(d, lasts.get(d["_id"])) for d in docs]
            if filter or order:  # the query view only where something looks at it
                now = clock.utcnow()
                views = [(doc, last, query_view(doc, last if summary else None, now, looked_at))
                         for doc, last in pairs]
                if filter:
                    views = [item for item in views if evaluate(node, item[2])]
                if order:
                    views = sort_runs(views, order, view=lambda item: item[2])
                pairs = [(doc, last) for doc, last, _ in views]
        if limit is not None:
            pairs = pairs[:limit]
        out = []
        for doc, last in pairs:
            copy = dict(doc) if shared else serialize.copy_plain(doc)
            if with_last and last is not None:  # at hand: from the index (or the filter)
                copy[LAST_KEY] = dict(last)
            if not skip_output and "captured_out" not in copy:
                copy["captured_out"] = self._read_cout(doc["_id"])
            out.append(copy)
        return out

    def last_values(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        run_ids = list(run_ids)
        if not self.use_index:
            return super().last_values(run_ids)
        entries = self.index.lookup([str(i) for i in run_ids if is_run_name(str(i))])
        out: dict[Any, dict[str, Any]] = {}
        for run_id in run_ids:
            entry = entries.get(str(run_id))
            if entry is not None:
                out[run_id] = dict(entry["last"])
            else:
                out.update(super().last_values([run_id]))
        return out

    def metric_counts(self, run_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """``{run_id: {metric: number of points}}`` (from the index when it is on)."""
        run_ids = list(run_ids)
        entries = self.index.lookup([str(i) for i in run_ids if is_run_name(str(i))]) \
            if self.use_index else {}
        out: dict[Any, dict[str, int]] = {}
        for run_id in run_ids:
            entry = entries.get(str(run_id))
            if entry is not None:
                out[run_id] = dict(entry["n"])
            else:
                out[run_id] = {name: len(s["values"])
                               for name, s in self.history(run_id, raw=True).items()}
        return out

    def history(self, run_id: Any, names: Iterable[str] | None = None, raw: bool = False
                ) -> dict[str, dict[str, list]]:
        """The run's series; a line of ``metrics.jsonl`` that cannot be read (a truncated last
        line) is left out with a :class:`CorruptRunWarning`, the readable points are kept."""
        out, problems = self.read_history(run_id, names, raw)
        self.warn(problems)
        return out

    def read_history(self, run_id: Any, names: Iterable[str] | None = None, raw: bool = False,
                     micros: bool = False) -> tuple[dict[str, dict[str, list]], list[str]]:
        """:meth:`history` without the warnings: ``(history, problems)``; ``micros``: the
        series read from the binary copy keep their times as :class:`~labbook.clock.Micros`
        (the others come as datetimes)."""
        wanted = set(names) if names is not None else None
        out: dict[str, dict[str, list]] = {}
        problems: list[str] = []
        if self._links_out(run_id):  # reported by read_run; nothing of it is read
            return out, problems
        if not raw:
            found = self._history_from_copy(run_id, names)
            if found is not None:
                if not micros:
                    for series in found.values():
                        series["timestamps"] = clock.from_microseconds(series["timestamps"])
                return found, problems
        path = self.fs.join(self._dir(run_id), "metrics.jsonl")
        if not self.fs.exists(path):
            legacy = self._read_object(run_id, "metrics.json", problems, {})
            for name, series in legacy.items():
                if wanted is None or name in wanted:
                    if not _is_series(series):
                        problems.append(self._problem(
                            run_id, f"metrics.json: series {name!r} is not steps, values and "
                                    "timestamps of one length; left out"))
                        continue
                    out[name] = {"steps": list(series["steps"]), "values": list(series["values"]),
                                 "timestamps": list(series["timestamps"])}
        else:
            for name, series in self._jsonl_series(run_id, path, problems):
                if wanted is not None and name not in wanted:
                    continue
                target = out.setdefault(name, {"steps": [], "values": [], "timestamps": []})
                target["steps"].extend(series["steps"])
                target["values"].extend(series["values"])
                target["timestamps"].extend(series["timestamps"])
        if not raw:
            for name, series in out.items():
                try:
                    series["timestamps"] = clock.from_iso(series["timestamps"])
                except (ValueError, TypeError):
                    problems.append(self._problem(
                        run_id, f"metric {name!r} has timestamps that are no times; shown as "
                                "none"))
                    series["timestamps"] = [None] * len(series["timestamps"])
        return out, problems

    def _history_from_copy(self, run_id: Any, names: Iterable[str] | None
                           ) -> dict[str, dict[str, list]] | None:
        """The whole series from the binary copy of an ended run (``file_series``), when it
        is current and holds each of them; timestamps as :class:`~labbook.clock.Micros`."""
        if self.fs.remote:
            return None
        return file_series.read_all(self._dir(run_id),
                                    None if names is None else list(dict.fromkeys(names)))

    def history_for_copy(self, run_id: Any) -> dict[str, dict[str, list]]:
        out, problems = self.read_history(run_id, micros=True)
        self.warn(problems)
        return out

    def _jsonl_series(self, run_id: Any, path: str, problems: list[str]
                      ) -> Iterator[tuple[str, dict]]:
        """``(name, series)`` of each readable line of ``metrics.jsonl``; each line that is
        not (a truncated or damaged line) is added to ``problems``, its points left out."""
        try:
            fh = self.fs.open_read(path)
        except OSError as exc:
            problems.append(self._problem(run_id, f"metrics.jsonl cannot be read "
                                                  f"({exc.strerror or exc})"))
            return
        with fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    parsed = json.loads(line)
                    reason = None if isinstance(parsed, dict) and all(
                        _is_series(v) for v in parsed.values()) else "does not hold metric series"
                except ValueError as exc:
                    reason = _json_problem(exc)
                if reason is not None:
                    end = "" if line.endswith(b"\n") else ", truncated"
                    problems.append(self._problem(
                        run_id, f"metrics.jsonl line {number} {reason}{end}; its points are "
                                "left out"))
                    continue
                yield from parsed.items()

    def iter_series(self, run_id: Any, name: str, page_size: int = 1000, *,
                    times: bool = True) -> Iterator[dict[str, list]]:
        """Pages of one metric, read from ``metrics.jsonl`` a heartbeat's line at a time
        (``times`` False: without ``timestamps``, which are then not converted)."""
        path = self.fs.join(self._read_dir(run_id), "metrics.jsonl")
        if not self.fs.exists(path):
            yield from super().iter_series(run_id, name, page_size, times=times)
            return
        page: dict[str, list] = {"steps": [], "values": [], "timestamps": []} if times \
            else {"steps": [], "values": []}
        problems: list[str] = []
        for metric, series in self._jsonl_series(run_id, path, problems):
            if metric != name or not series:
                continue
            for key in page:
                page[key].extend(series[key])
            while len(page["steps"]) >= page_size:
                yield self._page(page, page_size)
        self.warn(problems)
        if page["steps"]:
            yield self._page(page, len(page["steps"]))

    @staticmethod
    def _page(page: dict[str, list], size: int) -> dict[str, list]:
        """Take the first ``size`` points off ``page`` (times parsed)."""
        if len(page["steps"]) == size:  # all of it: the lists themselves
            out = {key: page[key] for key in page}
            for key in page:
                page[key] = []
        else:
            out = {key: page[key][:size] for key in page}
            for key in page:
                del page[key][:size]
        if "timestamps" in out:
            out["timestamps"] = clock.from_iso(out["timestamps"])
        return out

    def history_sampled(self, run_id: Any, names: Iterable[str] | None = None,
                        samples: int | None = 500) -> dict[str, dict[str, list]]:
        """Long series of ended runs come from a binary copy (``file_series``): 500 samples
        of 10^6 points without parsing 10^6 JSON points."""
        if samples is None:
            return self.history(run_id, names)
        if self.fs.remote:  # no binary copy on an object store: sampled from the JSON
            return super().history_sampled(run_id, names, samples)
        wanted = None if names is None else list(names)
        directory = self._read_dir(run_id)
        found = file_series.read_sampled(directory, wanted,
                                         lambda n: sample_positions(n, samples))
        if found is not None:
            return found
        raw = self.history(run_id, wanted, raw=True)
        if raw and max(len(s["values"]) for s in raw.values()) >= file_series.MIN_POINTS \
                and not file_series.is_current(directory) and self._ended(run_id):
            # an ended run's long series, read for the first time: copy it for next time
            file_series.write(directory, raw if wanted is None else
                              self.history(run_id, raw=True))
        out = {}
        for name, series in raw.items():
            picked = sample_series(series, samples)
            picked["timestamps"] = clock.from_iso(picked["timestamps"])
            out[name] = picked
        return out

    def _ended(self, run_id: Any) -> bool:
        try:
            doc = self._read_json(self.fs.join(self._dir(run_id), "run.json"))
        except (ValueError, OSError):
            return False
        status = doc.get("status") if isinstance(doc, dict) else None
        return status not in (None, "RUNNING", "QUEUED")

    def open_artifact(self, run_id: Any, name: str) -> BinaryIO:
        return self.fs.open_stream(self.artifact_path(run_id, name))

    def delete_run(self, run_id: Any) -> None:
        """Remove the run's directory; ``_sources`` and ``_resources`` are shared, so they stay."""
        try:  # an id like "../x" must not reach outside the store
            directory = self.fs.normpath(self._dir(run_id))
        except InvalidRunIdError:
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.basedir}.") from None
        inside = self.fs.dirname(directory) == self.basedir
        if not inside or not self.fs.isfile(self.fs.join(directory, "run.json")):
            raise RunNotFoundError(f"No run with id {run_id!r} in {self.basedir}.")
        # rename first, so a reader never sees a half-deleted run
        self.fs.remove_tree(directory,
                            self.fs.join(self.basedir, f".deleted-{run_id}-{os.getpid()}"))
        self._forget(run_id)
