"""``TinyDbObserver`` and ``TinyDbReader``: runs in a TinyDB file, in the layout of Sacred's.

A store is a directory holding ``metadata.json`` (a TinyDB database whose table ``runs`` has
one document per run) and ``hashfs/`` (sources, resources and artifacts, content-addressed by
their MD5 digest, three levels of two-letter directories). Values JSON cannot hold are written
as Sacred's ``tinydb-serialization`` tags: ``"{TinyDate}:2024-01-02T03:04:05.000006"`` for a
time and ``"{TinyFile}:\\"<md5>\\""`` for a stored file, so Sacred's ``TinyDbReader`` reads
the runs labbook records and labbook's reader reads Sacred's (also its ``TinyArray``,
``TinyDataFrame`` and ``TinySeries`` values).

Beyond Sacred: metrics are kept, in the table ``metrics`` of the same file (one document per
run and metric name; Sacred's observer drops them); a run id that is taken is refused; every
write replaces ``metadata.json`` atomically while holding a lock (``.metadata.json.lock``), so
several processes on one machine may record into one directory (Sacred's observer is not made
for that). Every write rewrites the whole file, as TinyDB does: this store suits hundreds of
runs, not hundreds of thousands.

Needs the ``tinydb`` extra (``pip install 'labbook[tinydb]'``); both are imported lazily.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import os
import textwrap
import uuid
from typing import Any, Iterator

from labbook._version import __version__
from labbook.errors import (ArgumentError, MissingExtraError, MissingFileError, ObserverError,
                            RunExistsError)
from labbook import serialize
from labbook.observers.base import RunObserver

__all__ = ["TinyDbObserver", "TinyDbReader", "StoredFile"]

log = logging.getLogger("labbook.observers")

#: the ``format`` field of the runs this observer records
FORMAT = f"TinyDbObserver-labbook-{__version__}"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_DATE_TAG = "{TinyDate}:"
_FILE_TAG = "{TinyFile}:"
_ARRAY_TAG = "{TinyArray}:"
_FRAME_TAG = "{TinyDataFrame}:"
_SERIES_TAG = "{TinySeries}:"


def _need_extra(what: str) -> None:
    """Import tinydb and hashfs, or fail with the one line that says how to get them."""
    try:
        import hashfs  # noqa: F401
        import tinydb  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"{what} needs the packages tinydb and hashfs: "
                                "pip install 'labbook[tinydb]'") from None


def _hash_fs(root: str):
    from hashfs import HashFS

    # Sacred's settings: md5 digests, three levels of two-letter directories
    return HashFS(os.path.join(root, "hashfs"), depth=3, width=2, algorithm="md5")


def encode_date(when: _dt.datetime) -> str:
    """A time as Sacred's TinyDB stores it (naive, microseconds always written)."""
    return _DATE_TAG + when.strftime(_DATE_FORMAT)


def encode_file(file_id: str) -> str:
    """A stored file's reference as Sacred's TinyDB stores it."""
    return _FILE_TAG + json.dumps(file_id)


class StoredFile:
    """A file of the store's ``hashfs/``, as the reader hands it out: a binary file object,
    opened when first read (``read``, ``readline``, ``seek``, iteration, ``with``), so reading
    many documents opens no files. ``hash`` is its MD5 digest, ``name`` its path."""

    def __init__(self, path: str, file_id: str):
        self.name = path
        self.hash = file_id
        self._fh: io.BufferedReader | None = None

    def _file(self) -> io.BufferedReader:
        if self._fh is None:
            try:
                self._fh = open(self.name, "rb")
            except FileNotFoundError:
                raise MissingFileError(f"The stored file {self.hash} is missing from the "
                                       f"store ({self.name}).") from None
        return self._fh

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._file(), attr)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._file())

    def __enter__(self) -> StoredFile:
        self._file()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def closed(self) -> bool:
        return self._fh is None or self._fh.closed

    def __repr__(self) -> str:
        return f"StoredFile({self.hash!r})"


class _Decoder:
    """Turns Sacred's serialization tags back into values (times, files, arrays, frames)."""

    def __init__(self, fs: Any):
        self.fs = fs

    def value(self, text: str) -> Any:
        if not text.startswith("{Tiny"):
            return text
        try:
            return self._decode(text)
        except ValueError:  # a text that only looks like a tag stays as it is
            return text

    def _decode(self, text: str) -> Any:
        if text.startswith(_DATE_TAG):
            return _dt.datetime.strptime(text[len(_DATE_TAG):], _DATE_FORMAT)
        if text.startswith(_FILE_TAG):
            file_id = json.loads(text[len(_FILE_TAG):])
            return StoredFile(self.fs.idpath(file_id), file_id)
        if text.startswith(_ARRAY_TAG):
            values = json.loads(text[len(_ARRAY_TAG):])
            try:
                import numpy
            except ImportError:  # the numbers, as lists
                return values
            return numpy.array(values)
        for tag, typ in ((_FRAME_TAG, "frame"), (_SERIES_TAG, "series")):
            if text.startswith(tag):
                encoded = text[len(tag):]
                try:
                    import pandas
                except ImportError:  # the data, as pandas' JSON gives it
                    return json.loads(encoded)
                return pandas.read_json(io.StringIO(encoded), typ=typ)
        return text

    def walk(self, element: Any) -> Any:
        if isinstance(element, str):
            return self.value(element)
        if isinstance(element, dict):
            for key, item in element.items():
                element[key] = self.walk(item)
        elif isinstance(element, list):
            for index, item in enumerate(element):
                element[index] = self.walk(item)
        return element


class _JsonFileStorage:
    """TinyDB's storage of ``metadata.json``: the JSON TinyDB's own storage writes, written
    atomically (a crash leaves the old file or the new one). With ``fs`` it decodes Sacred's
    serialization tags when reading; without, values pass through untouched, so a writer never
    changes the documents of other runs."""

    def __init__(self, path: str, fs: Any = None, create: bool = True):
        self.path = path
        self.decoder = None if fs is None else _Decoder(fs)
        self.create = create

    def read(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ObserverError(f"{self.path} is not a TinyDB database (invalid JSON at line "
                                f"{exc.lineno}: {exc.msg}).") from None
        if self.decoder is not None:
            for table in data.values():
                self.decoder.walk(table)
        return data

    def write(self, data: dict) -> None:
        from labbook.fileio import write_atomic

        write_atomic(self.path, json.dumps(data))

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _locked(root: str) -> Iterator[None]:
    """Hold the store's write lock (POSIX ``flock``; elsewhere no lock: one writer at a time)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(os.path.join(root, ".metadata.json.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class TinyDbObserver(RunObserver):
    """Records runs into the directory ``path`` (created if needed), in the layout of Sacred's
    TinyDbObserver: ``metadata.json`` (TinyDB, table ``runs``) and ``hashfs/`` for sources,
    resources and artifacts. Metrics go to the table ``metrics``. ``overwrite``: the ``_id`` of
    a stored run (or its document) that this run replaces, taking its id and place.

    >>> ex.observers.append(TinyDbObserver("runs_db"))  # doctest: +SKIP
    """

    VERSION = FORMAT

    @classmethod
    def create(cls, path: str | os.PathLike = "./runs_db", overwrite: Any = None
               ) -> TinyDbObserver:
        """Sacred 0.7's constructor spelling (deprecated there too)."""
        import warnings

        warnings.warn("TinyDbObserver.create(...) is deprecated; use TinyDbObserver(...).",
                      DeprecationWarning, stacklevel=2)
        return cls(path, overwrite)

    def __init__(self, path: str | os.PathLike = "./runs_db", overwrite: Any = None,
                 priority: int | None = None):
        _need_extra("TinyDbObserver")
        self.root = os.path.abspath(os.fspath(path))
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise ObserverError(f"TinyDbObserver cannot create {self.root}: "
                                f"{exc.strerror}.") from None
        self.fs = _hash_fs(self.root)
        self.db_path = os.path.join(self.root, "metadata.json")
        self.overwrite = overwrite
        if priority is not None:
            self.priority = priority
        self.run_entry: dict = {}
        self.db_run_id: int | None = None
        self._metric_docs: dict[str, int] = {}
        self._metrics: dict[str, dict[str, list]] = {}

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        """The database, opened afresh under the lock: what other processes wrote is seen."""
        from tinydb import TinyDB

        with _locked(self.root):
            db = TinyDB(self.db_path, storage=_JsonFileStorage)
            try:
                yield db
            finally:
                db.close()

    def _encoded_entry(self) -> dict:
        entry = dict(self.run_entry)
        for key in ("start_time", "queue_time", "stop_time", "heartbeat"):
            if isinstance(entry.get(key), _dt.datetime):
                entry[key] = encode_date(entry[key])
        return entry

    def save(self) -> None:
        """Insert or update the current run's document."""
        from tinydb import Query

        entry = self._encoded_entry()
        with self._db() as db:
            runs = db.table("runs")
            if self.db_run_id is not None:
                runs.update(entry, doc_ids=[self.db_run_id])
                return
            if self.overwrite is not None:
                wanted = self.overwrite.get("_id") if isinstance(self.overwrite, dict) \
                    else self.overwrite
                found = runs.get(Query()._id == wanted)
                if found is None:
                    raise ObserverError(f"TinyDbObserver: no run {wanted!r} to overwrite in "
                                        f"{self.root}.")
                runs.remove(doc_ids=[found.doc_id])
                from tinydb.table import Document

                runs.insert(Document(entry, doc_id=found.doc_id))
                self.db_run_id = found.doc_id
                return
            if runs.contains(Query()._id == entry["_id"]):
                raise RunExistsError(f"A run with id {entry['_id']!r} exists already in "
                                     f"{self.root}.")
            self.db_run_id = runs.insert(entry)

    def _put(self, filename: str) -> str:
        return self.fs.put(os.fspath(filename)).id

    def _save_sources(self, ex_info: dict) -> list:
        base_dir = ex_info.get("base_dir") or ""
        saved = []
        for name, md5 in ex_info.get("sources", []):
            path = os.path.expandvars(os.path.expanduser(os.path.join(base_dir, name)))
            known = self.fs.get(md5)
            if known is not None:
                file_id = known.id
            elif os.path.isfile(path):
                file_id = self._put(path)
            else:
                log.warning("TinyDbObserver: the source %s is gone; its name and digest are "
                            "recorded without its content.", path)
                saved.append([name, md5])
                continue
            saved.append([name, file_id, encode_file(file_id)])
        return saved

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        raise ObserverError("TinyDbObserver cannot record queued runs (nor can Sacred's); "
                            "use a file, SQL or MongoDB store to queue.")

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self.db_run_id = None
        self._metric_docs = {}
        self._metrics = {}
        experiment = serialize.flatten(ex_info)
        self.run_entry = {
            "experiment": experiment,
            "format": self.VERSION,
            "command": command,
            "host": serialize.flatten(host_info),
            "start_time": start_time,
            "config": serialize.flatten(config),
            "meta": serialize.flatten(meta_info),
            "status": "RUNNING",
            "resources": [],
            "artifacts": [],
            "captured_out": "",
            "info": {},
            "heartbeat": None,
            "_id": _id,
        }
        if _id is None:  # the run replacing another takes its id, as with Sacred's MongoObserver
            overwritten = self.overwrite.get("_id") if isinstance(self.overwrite, dict) \
                else self.overwrite
            self.run_entry["_id"] = uuid.uuid4().hex if overwritten is None else overwritten
        experiment["sources"] = self._save_sources(experiment)
        self.save()
        return self.run_entry["_id"]

    def heartbeat_event(self, info, captured_out, beat_time, result):
        self.run_entry.update(info=serialize.flatten(info), captured_out=captured_out,
                              heartbeat=beat_time, result=serialize.flatten(result))
        self.save()

    def completed_event(self, stop_time, result):
        self.run_entry.update(stop_time=stop_time, result=serialize.flatten(result),
                              status="COMPLETED")
        self.save()

    def interrupted_event(self, interrupt_time, status):
        self.run_entry.update(stop_time=interrupt_time, status=status)
        self.save()

    def failed_event(self, fail_time, fail_trace):
        trace = fail_trace if isinstance(fail_trace, str) or fail_trace is None \
            else list(fail_trace)
        self.run_entry.update(stop_time=fail_time, status="FAILED", fail_trace=trace)
        self.save()

    def resource_event(self, filename):
        file_id = self._put(filename)
        resource = [os.fspath(filename), file_id, encode_file(file_id)]
        if resource not in self.run_entry["resources"]:
            self.run_entry["resources"].append(resource)
            self.save()

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        file_id = self._put(filename)
        artifact = [name, os.fspath(filename), file_id, encode_file(file_id)]
        if artifact not in self.run_entry["artifacts"]:
            self.run_entry["artifacts"].append(artifact)
            self.save()

    def log_metrics(self, metrics_by_name, info):
        """Each metric's points go to the table ``metrics`` (one document per run and name:
        ``run_id``, ``name``, ``steps``, ``values``, ``timestamps``)."""
        if not metrics_by_name:
            return
        for name, series in metrics_by_name.items():
            kept = self._metrics.setdefault(name, {"steps": [], "values": [], "timestamps": []})
            kept["steps"].extend(serialize.flatten(list(series["steps"])))
            kept["values"].extend(serialize.flatten(list(series["values"])))
            kept["timestamps"].extend(encode_date(t) for t in series["timestamps"])
        with self._db() as db:
            table = db.table("metrics")
            for name in metrics_by_name:
                doc = {"run_id": self.run_entry["_id"], "name": name, **self._metrics[name]}
                if name in self._metric_docs:
                    table.update(doc, doc_ids=[self._metric_docs[name]])
                else:
                    self._metric_docs[name] = table.insert(doc)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TinyDbObserver):
            return other.root == self.root
        return False

    __hash__ = RunObserver.__hash__


class TinyDbReader:
    """Reads a TinyDB store (one labbook or Sacred wrote): ``search`` with a TinyDB query,
    ``fetch_metadata``, ``fetch_files``, ``fetch_report`` (Sacred's methods) and
    ``fetch_metrics``. Stored files come back as :class:`StoredFile` objects (binary files,
    opened when first read)."""

    def __init__(self, path: str | os.PathLike):
        _need_extra("TinyDbReader")
        self.root = os.path.abspath(os.fspath(path))
        if not os.path.isdir(self.root):
            raise MissingFileError(f"TinyDbReader: {self.root} does not exist.")
        self.fs = _hash_fs(self.root)
        self.db_path = os.path.join(self.root, "metadata.json")

    def _table(self, name: str) -> Any:
        from tinydb import TinyDB

        # read only: opened on each call so that runs recorded since are seen
        return TinyDB(self.db_path, self.fs, storage=_JsonFileStorage).table(name)

    @property
    def runs(self) -> Any:
        """The table ``runs`` (TinyDB), read now."""
        return self._table("runs")

    def search(self, *args: Any, **kwargs: Any) -> list:
        """TinyDB's ``search`` on the table ``runs``."""
        return self.runs.search(*args, **kwargs)

    def fetch_metadata(self, exp_name: str | None = None, query: Any = None,
                       indices: int | list[int] | tuple[int, ...] | None = None) -> list:
        """The documents of the runs whose experiment name matches the regular expression
        ``exp_name``, or that match a TinyDB ``query``, or at the positions ``indices`` (in
        the order they were recorded)."""
        from tinydb import Query

        runs = self.runs
        if query is not None:
            return runs.search(query)
        if exp_name:
            return runs.search(Query().experiment.name.search(exp_name))
        if indices is None:
            raise ArgumentError("TinyDbReader: give an experiment name, indices or a query.")
        if not isinstance(indices, (list, tuple)):
            indices = [indices]
        everything = runs.all()
        for index in indices:
            if not isinstance(index, int) or not -len(everything) <= index < len(everything):
                raise ArgumentError(f"TinyDbReader: index {index!r} is out of range: the store "
                                    f"holds {len(everything)} runs.")
        return [everything[index] for index in indices]

    def fetch_files(self, exp_name: str | None = None, query: Any = None,
                    indices: Any = None) -> list[dict]:
        """Per matching run: ``exp_name``, ``exp_id``, ``date`` (start time) and, when there
        are any, ``sources``, ``resources`` and ``artifacts`` as ``{name: file}``."""
        found = []
        for doc in self.fetch_metadata(exp_name, query, indices):
            record: dict[str, Any] = {"exp_name": doc["experiment"]["name"],
                                      "exp_id": doc["_id"], "date": doc.get("start_time")}
            groups = {
                "sources": {s[0]: s[2] for s in doc["experiment"].get("sources", [])
                            if len(s) > 2},
                "resources": {r[0]: r[2] for r in doc.get("resources", [])},
                "artifacts": {a[0]: a[3] for a in doc.get("artifacts", [])},
            }
            record.update({key: files for key, files in groups.items() if files})
            found.append(record)
        return found

    def fetch_report(self, exp_name: str | None = None, query: Any = None,
                     indices: Any = None) -> list[str]:
        """Per matching run, Sacred's plain-text report: name, id, date and duration,
        parameters, result, dependencies, resources, sources and outputs."""
        return [_report(doc) for doc in self.fetch_metadata(exp_name, query, indices)]

    def fetch_metrics(self, exp_id: Any) -> dict[str, dict[str, list]]:
        """The metrics of run ``exp_id``: ``{name: {"steps", "values", "timestamps"}}``
        (labbook's addition; runs Sacred recorded have none)."""
        from tinydb import Query

        return {doc["name"]: {"steps": doc["steps"], "values": doc["values"],
                              "timestamps": doc["timestamps"]}
                for doc in self._table("metrics").search(Query().run_id == exp_id)}


def _indent(text: str) -> str:
    wrapper = textwrap.TextWrapper(initial_indent="    ", subsequent_indent="    ", width=150)
    return "\n".join(wrapper.fill(line) for line in text.splitlines())


def _report(doc: dict) -> str:
    start = doc.get("start_time")
    stop = doc.get("stop_time")
    date = start.strftime("%a %d %b %Y") if isinstance(start, _dt.datetime) else "unknown"
    if isinstance(start, _dt.datetime) and isinstance(stop, _dt.datetime):
        hours, rest = divmod((stop - start).total_seconds(), 3600)
        minutes, seconds = divmod(rest, 60)
        duration = "%02d:%02d:%04.1f" % (hours, minutes, seconds)
    else:
        duration = "not finished"
    config = doc.get("config") or {}
    experiment = doc["experiment"]
    fields = {
        "Parameters": "\n".join(f"{k}: {config[k]}" for k in sorted(config)),
        "Result": repr(doc.get("result")),
        "Dependencies": "\n".join(experiment.get("dependencies", [])),
        "Resources": "\n".join(r[0] for r in doc.get("resources", [])),
        "Source Files": "\n".join(s[0] for s in experiment.get("sources", [])),
        "Outputs": "\n".join(a[0] for a in doc.get("artifacts", [])),
    }
    rule = "-" * 49
    lines = ["", rule, f"Experiment: {experiment['name']}", rule, f"ID: {doc['_id']}",
             f"Date: {date}    Duration: {duration}"]
    for title, text in fields.items():
        lines += ["", f"{title}:", _indent(text) or "    None"]
    return "\n".join(lines) + "\n"
