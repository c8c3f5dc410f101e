"""The file store's index: a cache of what queries need, so ``find`` does not parse every run.

``DIR/.labbook/index.jsonl`` holds one JSON line per indexed state of a run::

    {"v": 1, "id": "3", "sig": [[mtime_ns, size] | null, ...], "at": ns, "w": false,
     "doc": {...the run document without captured_out...},
     "last": {metric: last value}, "n": {metric: number of points}}

Later lines win. The name starts with a dot and is no integer, so Sacred's tools (and the file
store itself) never take it for a run.

The index is a cache and is never trusted blindly:

- **Staleness** is checked on every read: each run directory's ``run.json``, ``config.json``,
  ``info.json``, ``metrics.jsonl`` and ``metrics.json`` are stat'ed (one ``scandir`` of the run
  directory) and their ``(mtime_ns, size)`` compared with the entry's ``sig``. A run added,
  changed or deleted by another process, or by Sacred itself (which knows nothing of the
  index), is re-read; a directory without an index is indexed on first read.
- **Racy entries**: a file rewritten within the same mtime tick with the same size would keep
  its signature, so an entry built by a *reader* whose files changed less than
  ``RACY_SECONDS`` before it was built is not trusted later and is rebuilt (git's "racily
  clean" rule). Entries appended by the *writer* at the end of a run describe exactly what it
  just wrote and are trusted.
- **Concurrent writers** only ever append whole lines with one ``write`` on an ``O_APPEND``
  descriptor; a reader skips lines that do not parse (a torn or damaged line), and ignores a
  trailing line without its newline until it is complete.
- **Compaction** rewrites the file (temp file + ``os.replace``) when it holds more than twice
  as many lines as runs. A line appended by another process during the rewrite may be lost:
  that run is simply re-read on the next query.
- **A read-only directory** (or any error writing the index) keeps the index in memory only.
"""
from __future__ import annotations

import datetime
import json
import os
import stat
import time
from typing import TYPE_CHECKING, Any

from labbook import clock, serialize
from labbook.fileio import write_atomic
from labbook.serialize import gc_paused

if TYPE_CHECKING:
    from labbook.stores.file import FileStore

#: the document key listing what could not be read (``labbook.stores.file.PROBLEMS_KEY``)
PROBLEMS_KEY = "problems"

__all__ = ["INDEX_DIR", "INDEX_NAME", "VERSION", "SIGNATURE_FILES", "RACY_SECONDS", "signature",
           "metric_tails", "FileIndex"]

INDEX_DIR = ".labbook"
INDEX_NAME = "index.jsonl"
VERSION = 1
#: files whose (mtime, size) make up a run's signature
SIGNATURE_FILES = ("run.json", "config.json", "info.json", "metrics.jsonl", "metrics.json")
_OTHER_SIGNATURE_FILES = SIGNATURE_FILES[1:]
#: an entry built by a reader less than this long after its files changed is rebuilt later
RACY_SECONDS = 2.0
_TIME_KEYS = ("start_time", "stop_time", "heartbeat", "queue_time")
_fromisoformat = datetime.datetime.fromisoformat


def is_run_name(name: str) -> bool:
    """Whether a name in the store's directory may be a run's directory: ``5``, or an id the
    user chose (``--id baseline``); names starting with ``_`` or ``.`` are the store's own
    (``_sources``, ``_resources``, the index)."""
    return bool(name) and not name.startswith(("_", "."))


def run_order(name: str) -> tuple:
    """Sort key of run directory names: numbers in numeric order, then chosen ids by name."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def parse_run_name(name: str) -> Any:
    """The run id a directory name stands for: ``"5"`` -> 5, ``"baseline"`` -> "baseline"."""
    return int(name) if name.isdigit() else name


def signature(directory: str) -> tuple | None:
    """``((mtime_ns, size) | None, ...)`` of ``SIGNATURE_FILES``; None without a run.json.

    One ``stat`` per file by its path: listing the directory first (``scandir``) cost a
    third more, and this runs for every run each time a store is listed. ``metrics.json``
    counts only for a run without ``metrics.jsonl`` (Sacred's layout): the points are read
    from ``metrics.jsonl`` when there is one, so it is not looked at (a fifth fewer calls)."""
    prefix = directory + os.sep
    stat = os.stat
    try:
        st = stat(prefix + "run.json")
    except (FileNotFoundError, NotADirectoryError):
        return None
    found: list = [(st.st_mtime_ns, st.st_size)]
    for name in _OTHER_SIGNATURE_FILES:
        if name == "metrics.json" and found[-1] is not None:
            found.append(None)  # metrics.jsonl is there: metrics.json is not read
            continue
        try:
            st = stat(prefix + name)
        except (FileNotFoundError, NotADirectoryError):
            found.append(None)
        else:
            found.append((st.st_mtime_ns, st.st_size))
    return tuple(found)


def metric_tails(history: dict[str, dict[str, list]]) -> tuple[dict, dict]:
    """``({name: last value}, {name: number of points})`` of a history."""
    last = {name: s["values"][-1] for name, s in history.items() if s["values"]}
    counts = {name: len(s["values"]) for name, s in history.items()}
    return last, counts


def _dump_doc(doc: dict) -> Any:
    return {k: v for k, v in doc.items() if k != "captured_out"}


def _load_doc(doc: dict) -> dict:
    for key in _TIME_KEYS:
        text = doc.get(key)
        if text.__class__ is str:
            try:  # what the store writes: naive UTC ISO text, one C call
                when = _fromisoformat(text)
                doc[key] = when if when.tzinfo is None else clock.to_utc(when)
            except ValueError:
                try:
                    doc[key] = clock.to_utc(text)
                except ValueError:
                    pass
    return doc


class FileIndex:
    """The index of one file store; ``refresh()`` returns ``{run id (str): entry}``."""

    def __init__(self, store: FileStore):
        self.store = store
        self.basedir = store.basedir
        self.directory = os.path.join(self.basedir, INDEX_DIR)
        self.path = os.path.join(self.directory, INDEX_NAME)
        self.entries: dict[str, dict] = {}  # what the index file says (plus our own entries)
        self.live: dict[str, dict] = {}  # validated by the last refresh
        self._file_key: tuple | None = None
        self._offset = 0
        self._lines = 0
        self.writable = True
        self._modes_checked = False
        #: this process has read the index: it keeps the entries it writes (a process that
        #: only writes runs keeps none, so a long sweep's memory does not grow with its runs)
        self._reading = False

    # -- the index file ---------------------------------------------------------------------
    def _read_new_lines(self) -> None:
        self._reading = True
        try:
            st = os.stat(self.path)
        except OSError:
            self._file_key, self._offset, self._lines = None, 0, 0
            return
        key = (st.st_dev, st.st_ino)
        if key != self._file_key or st.st_size < self._offset:
            # a new file (first read, compacted or replaced by another process): from the start
            self._file_key, self._offset, self._lines = key, 0, 0
        if st.st_size == self._offset:
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return  # only a partial line so far
        self._offset += end + 1
        lines = data[:end].split(b"\n")
        self._lines += len(lines)
        with gc_paused():
            for raw in self._parse_lines(lines):
                entry = self._entry(raw)
                if entry is not None:
                    self.entries[entry["id"]] = entry

    @staticmethod
    def _parse_lines(lines: list[bytes]) -> list[Any]:
        """The JSON value of each line: all lines in one parse (one JSON array), or line by
        line when that fails (a torn or damaged line: ``None`` for it)."""
        if len(lines) > 1:
            try:
                values = json.loads(b"[" + b",".join(lines) + b"]")
            except ValueError:
                pass
            else:
                # one value per line, or a damaged line held a comma: parse them one by one
                if len(values) == len(lines):
                    return values
        values = []
        for line in lines:
            try:
                values.append(json.loads(line))
            except ValueError:
                values.append(None)
        return values

    @staticmethod
    def _entry(raw: Any) -> dict | None:
        """The entry a parsed line describes; None for anything else (a damaged line: that run
        is re-read)."""
        try:
            if raw.get("v") != VERSION:
                return None
            sig = tuple([None if s is None else tuple(s) for s in raw["sig"]])
            if len(sig) != len(SIGNATURE_FILES) or not isinstance(raw["doc"], dict):
                return None
            return {"id": str(raw["id"]), "sig": sig, "at": int(raw["at"]),
                    "w": bool(raw.get("w")), "doc": _load_doc(raw["doc"]),
                    "last": dict(raw.get("last") or {}), "n": dict(raw.get("n") or {})}
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    @staticmethod
    def _line(entry: dict) -> bytes:
        raw = {"v": VERSION, "id": entry["id"], "sig": entry["sig"], "at": entry["at"],
               "w": entry["w"], "doc": _dump_doc(entry["doc"]), "last": entry["last"],
               "n": entry["n"]}
        return (serialize.dumps(raw, indent=None) + "\n").encode("utf-8")

    def _append(self, entries: list[dict]) -> None:
        if not entries or not self.writable:
            return
        lines = []
        for entry in entries:
            try:
                lines.append(self._line(entry))
            except (ValueError, TypeError):  # not storable as JSON text: stays in memory only
                continue
        if not lines:
            return
        data = b"".join(lines)
        try:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            except FileNotFoundError:  # no .labbook directory yet
                os.makedirs(self.directory, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                written = os.write(fd, data)  # one write: appends never interleave
            finally:
                os.close(fd)
            if written != len(data):
                raise OSError("short write to the index")
        except OSError:
            self.writable = False  # read-only store or full disk: keep the index in memory
            return
        # our own lines are already in memory (when we read the index); do not parse them again
        try:
            st = os.stat(self.path)
            if self._file_key is None and self._offset == 0 and st.st_size == len(data):
                self._match_modes(st, [e["id"] for e in entries])  # we created it
                if not self._reading:
                    return
                self._file_key = (st.st_dev, st.st_ino)
            if self._file_key == (st.st_dev, st.st_ino) and \
                    self._offset + len(data) == st.st_size:
                self._offset = st.st_size
                self._lines += len(lines)
        except OSError:
            pass

    def _compact(self) -> None:
        keep = [e for e in self.live.values() if self._worth_writing(e)]
        if not self.writable:
            return
        try:
            write_atomic(self.path, b"".join(self._line(e) for e in keep))
        except OSError:
            return
        self.entries = {e["id"]: e for e in keep}
        try:  # what the new file holds is in memory already: do not parse it again
            st = os.stat(self.path)
            self._match_modes(st)
            self._file_key, self._offset = (st.st_dev, st.st_ino), st.st_size
            self._lines = len(keep)
        except OSError:
            self._file_key, self._offset, self._lines = None, 0, 0

    def _match_modes(self, st: os.stat_result, names: list[str] | None = None) -> None:
        """Give the index the permission mode of the runs it copies (a run's ``run.json``; its
        ``.labbook`` directory that of the run's directory): it holds their documents, so it
        must be no more readable than they are, and no less for those who may read them."""
        for name in list(self.entries) if names is None else names:
            try:
                run_mode = stat.S_IMODE(os.stat(os.path.join(self.basedir, name, "run.json"))
                                        .st_mode)
                dir_mode = stat.S_IMODE(os.stat(os.path.join(self.basedir, name)).st_mode)
            except OSError:
                continue
            try:
                if stat.S_IMODE(st.st_mode) != run_mode:
                    os.chmod(self.path, run_mode)
                if stat.S_IMODE(os.stat(self.directory).st_mode) != dir_mode:
                    os.chmod(self.directory, dir_mode)
            except OSError:
                pass  # not ours to change (another user's store): left as it is
            return

    # -- entries ----------------------------------------------------------------------------
    @staticmethod
    def _trusted(entry: dict) -> bool:
        if entry["w"]:
            return True
        newest = max((s[0] for s in entry["sig"] if s is not None), default=0)
        return newest < entry["at"] - RACY_SECONDS * 1e9

    def build(self, name: str, sig: tuple | None = None, history: dict | None = None,
              written: bool = False, tails: tuple | None = None) -> dict | None:
        """A fresh entry for run ``name`` read from its files (None when it is not a run)."""
        at = time.time_ns()
        directory = os.path.join(self.basedir, name)
        if sig is None:
            sig = signature(directory)
            if sig is None:
                return None
        doc, problems = self.store.read_run(name)
        if doc is None:
            return None
        if history is None and tails is None:
            history, more = self.store.read_history(name, raw=True)
            problems += [p for p in more if p not in problems]
        # what cannot be read is reported, and marked on the document; such an entry stays in
        # memory only (see _worth_writing), so every reader of the store is told again
        self.store.warn(problems)
        if problems:
            doc[PROBLEMS_KEY] = problems
        doc.pop("captured_out", None)
        last, counts = tails if tails is not None else metric_tails(history or {})
        return {"id": name, "sig": sig, "at": at, "w": written, "doc": doc, "last": last,
                "n": counts}

    def _worth_writing(self, entry: dict) -> bool:
        """Trusted entries of runs whose files all read are appended to the index file."""
        return self._trusted(entry) and PROBLEMS_KEY not in entry["doc"]

    def record(self, name: str, history: dict | None = None, tails: tuple | None = None
               ) -> None:
        """Called by the writer when a run ended: append its entry (``tails``: the last
        values and counts of its metrics, when the writer has them without the history)."""
        entry = self.build(name, history=history, written=True, tails=tails)
        if entry is None:
            return
        # the files may change after our signature (another process): then it is stale anyway
        if self._reading:
            self.entries[name] = entry
        if PROBLEMS_KEY not in entry["doc"]:
            self._append([entry])

    def refresh(self) -> dict[str, dict]:
        """Validate the index against the run directories; re-read what changed."""
        self._read_new_lines()
        if not self._modes_checked and self._file_key is not None:
            # once per reader: runs made private since the index was written make it private
            self._modes_checked = True
            try:
                self._match_modes(os.stat(self.path))
            except OSError:
                pass
        try:
            with os.scandir(self.basedir) as it:
                names = [e.name for e in it if is_run_name(e.name)]
        except FileNotFoundError:
            names = []
        fresh: list[dict] = []
        live = self._validated(names, fresh)
        self.live = live
        for gone in set(self.entries) - set(live):
            del self.entries[gone]
        self._append(fresh)
        if self._lines > 2 * len(live) + 100:
            self._compact()
        return live

    def lookup(self, names: list[str]) -> dict[str, dict]:
        """Validated entries of the runs ``names`` only (no scan of the whole store)."""
        self._read_new_lines()
        fresh: list[dict] = []
        out = self._validated(names, fresh)
        self._append(fresh)
        return out

    def _validated(self, names: list[str], fresh: list[dict]) -> dict[str, dict]:
        """The entries of the runs ``names`` as their files are now: kept when their
        signature still holds, rebuilt otherwise (those worth writing go to ``fresh``)."""
        out: dict[str, dict] = {}
        for name in names:
            sig = signature(os.path.join(self.basedir, name))
            if sig is None:
                continue
            entry = self.entries.get(name)
            if entry is None or entry["sig"] != sig or not self._trusted(entry):
                entry = self.build(name, sig)
                if entry is None:
                    continue
                self.entries[name] = entry
                if self._worth_writing(entry):
                    fresh.append(entry)
            out[name] = entry
        return out

    @staticmethod
    def document(entry: dict) -> dict:
        """A copy of the entry's document, safe for the caller to change."""
        return serialize.copy_plain(entry["doc"])
