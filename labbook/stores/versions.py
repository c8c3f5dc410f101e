"""Versioned artifacts with lineage: one ledger, kept by every store through five primitives.

A *named artifact* (``"model"``) has versions v0, v1, ... Each version is a set of files
(relative path, sha256, size) whose **digest** is the sha256 of the sorted ``path NUL sha256``
lines, so the same content always has the same digest. Logging content whose digest a version
of the name already has makes no new version: that version gets the aliases given and the run
is recorded as one more run that logged it. Files are stored by content (a store keeps each
content once, however many versions hold it).

The ledger is a set of small JSON entries per name, written through the store's primitives
(``Store._ledger_*``, :class:`~labbook.stores.base.Store`):

======================  =====================================================================
``v/<0000000003>``      the version: digest, type, metadata, files, created, run_id (the run
                        that first logged it). Taken with an *exclusive create*, so two
                        processes never get the same number; the loser takes the next one.
``digest/<sha256>``     which version holds this content, taken exclusively *before* the
                        number (``version`` null meanwhile): of two processes logging the same
                        new content at once, the second waits for the first one's number
                        (and takes over after :data:`CLAIM_WAIT` seconds if it died)
``alias/<alias>``       the version a user alias points at, replaced whole when it moves
                        (``latest`` is not stored: it is always the newest version)
``logged/<digest>/<run>``  a run that logged this content; ``used/<digest>/<run>`` one that used it
======================  =====================================================================

and, under the reserved collection :data:`RUN_INDEX`, ``<run>/logged|used/<name>/<digest>``
entries, so a run's inputs and outputs are found without looking at every name.

What a store provides: an exclusive create of an entry (``_ledger_claim``), a replace
(``_ledger_put``), a read of one entry and of all entries under a prefix, the names, and files
by content (``_version_blob_put`` / ``_version_blob_open``). The file store keeps entries as JSON
files (exclusive create: ``os.link`` locally, a conditional write on object stores), the SQL
stores as rows of ``artifact_entries`` (primary key), MongoDB as documents (``_id``).
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable

from labbook import clock
from labbook.errors import ArgumentError, ArtifactNameError, ArtifactNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from labbook.stores.base import Store

__all__ = ["LATEST", "RUN_INDEX", "CLAIM_WAIT", "VERSION_NUMBERS", "hash_file", "collect_files",
           "digest_of",
           "check_alias", "check_version_name", "parse_ref", "version_label", "log_version",
           "use_version", "list_versions", "resolve", "collections", "run_lineage",
           "download", "copy_versions", "default_root", "ArtifactVersion"]

LATEST = "latest"
#: the collection of the run index (no artifact name can start with "/")
RUN_INDEX = "/runs"
#: how many digits a version entry's number has (sorted as text = sorted as numbers)
VERSION_NUMBERS = 10
_CHUNK = 1 << 20
_VERSION = re.compile(r"v(\d+)")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


# -- the run's side: files and digests ----------------------------------------------------------

def hash_file(path: str) -> tuple[str, str, int]:
    """``(sha256, md5, size)`` of a file, read once in pieces."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(piece)
            md5.update(piece)
            size += len(piece)
    return sha.hexdigest(), md5.hexdigest(), size


def collect_files(path: str) -> list[dict]:
    """The files of an artifact: ``path`` itself, or every file under the directory ``path``
    (recursively, symbolic links followed), each as ``{"path": relative POSIX path, "sha256",
    "md5", "size", "source": absolute path}``, sorted by path."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isfile(path):
        found = [(os.path.basename(path), path)]
    else:
        found = []
        for directory, dirs, names in os.walk(path, followlinks=True):
            dirs.sort()
            for name in names:
                full = os.path.join(directory, name)
                if os.path.isfile(full):
                    found.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    files = []
    for rel, full in sorted(found):
        sha, md5, size = hash_file(full)
        files.append({"path": rel, "sha256": sha, "md5": md5, "size": size, "source": full})
    return files


def digest_of(files: Iterable[dict]) -> str:
    """The content digest of a version: sha256 of the sorted ``path NUL sha256 LF`` lines."""
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda f: f["path"]):
        digest.update(f"{entry['path']}\x00{entry['sha256']}\n".encode("utf-8"))
    return digest.hexdigest()


# -- names and references -----------------------------------------------------------------------

def check_version_name(name: Any) -> str:
    """A name of versioned artifacts as far as the ledger needs it: a non-empty string without
    NUL and without ``:`` (it separates the alias or version in ``model:best``). A run checks
    the rest (the checks of artifact names) where the name is given."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ArtifactNameError(f"Artifact name must be a non-empty string, got {name!r}.")
    if ":" in name:
        raise ArtifactNameError(f"Artifact name {name!r} contains ':', which separates the "
                                "version or alias in a reference ('model:v2', 'model:best').")
    return name


def check_alias(alias: Any) -> str:
    """A user alias: letters, digits, ``_ . -`` (a letter or digit first), at most 64; not a
    version number ``vN``."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ArgumentError(f"Artifact alias {alias!r} must be 1 to 64 letters, digits, '_', "
                            "'.' or '-', starting with a letter or digit.")
    if _VERSION.fullmatch(alias):
        raise ArgumentError(f"Artifact alias {alias!r} looks like a version number; version "
                            "numbers are given by the store.")
    return alias


def parse_ref(ref: Any) -> tuple[str, str]:
    """``"model:best"`` -> ``("model", "best")``; ``"model"`` means ``model:latest``."""
    if not isinstance(ref, str) or not ref:
        raise ArgumentError(f"An artifact reference is 'name', 'name:alias' or 'name:vN', got "
                            f"{ref!r}.")
    name, sep, which = ref.rpartition(":")
    if not sep:
        name, which = ref, LATEST
    return check_version_name(name), which or LATEST


def version_label(number: int) -> str:
    return f"v{number}"


def _entry_number(number: int) -> str:
    return f"v/{number:0{VERSION_NUMBERS}d}"


def _run_key(run_id: Any) -> str:
    return urllib.parse.quote(str(run_id), safe="")


# -- the ledger ---------------------------------------------------------------------------------

def _now() -> str:
    return clock.utcnow().isoformat()


def _versions(store: Store, name: str) -> dict[int, dict]:
    """``{number: entry}`` of the name's versions."""
    return {int(entry[2:]): body for entry, body in store._ledger_list(name, "v/").items()}


def log_version(store: Store, run_id: Any, name: str, files: list[dict], type: str | None,
                metadata: dict | None, aliases: Iterable[str]) -> dict:
    """Record a version of ``name`` holding ``files`` (each with its ``source`` on this
    machine) as logged by ``run_id``; return the version (see :func:`list_versions`)."""
    name = check_version_name(name)
    aliases = [check_alias(a) for a in aliases if a != LATEST]
    digest = digest_of(files)
    versions = _versions(store, name)
    known_type = next((v.get("type") for _, v in sorted(versions.items())), None)
    if versions and type is not None and known_type is not None and type != known_type:
        raise ArgumentError(f"Artifact {name!r} has type {known_type!r}; a version of type "
                            f"{type!r} cannot join it. Use another name.")
    record = {"digest": digest, "type": type if type is not None else known_type,
              "metadata": metadata, "created": _now(), "run_id": run_id,
              "files": [{k: f[k] for k in ("path", "sha256", "md5", "size")} for f in files]}
    number = _number_of(store, name, digest)
    if number is None:
        # the files first: a digest entry means its files are stored (nothing to upload then)
        for entry in files:
            store._version_blob_put(entry, entry["source"])
        if store._ledger_claim(name, f"digest/{digest}", {"version": None, "since": _now()}):
            number = _take_number(store, name, record, max(versions, default=-1) + 1)
        else:  # another process logs this content right now: its number is ours
            number = _wait_for_number(store, name, digest, record)
    for alias in aliases:
        store._ledger_put(name, f"alias/{alias}", {"version": number, "time": _now()})
    _record(store, "logged", run_id, name, digest)
    return _described(store, name, number)


#: seconds a process waits for another one that is numbering the same content; after that
#: the other one is taken to have died between its two steps and its claim is taken over
CLAIM_WAIT = 30.0


def _number_of(store: Store, name: str, digest: str) -> int | None:
    held = store._ledger_get(name, f"digest/{digest}")
    return None if held is None or held.get("version") is None else int(held["version"])


def _take_number(store: Store, name: str, record: dict, number: int) -> int:
    """Create the next free version entry from ``number`` on, then point the digest at it."""
    while not store._ledger_claim(name, _entry_number(number), record):
        number += 1
    store._ledger_put(name, f"digest/{record['digest']}", {"version": number})
    return number


def _wait_for_number(store: Store, name: str, digest: str, record: dict) -> int:
    import time

    deadline = time.monotonic() + CLAIM_WAIT
    delay = 0.01
    while time.monotonic() < deadline:
        number = _number_of(store, name, digest)
        if number is not None:
            return number
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    # the process that claimed this content never numbered it (it died): take over
    start = max(_versions(store, name), default=-1) + 1
    return _take_number(store, name, record, start)


def use_version(store: Store, run_id: Any, name: str, digest: str) -> None:
    """Record that ``run_id`` used the version of ``name`` with this ``digest``."""
    _record(store, "used", run_id, check_version_name(name), digest)


def _record(store: Store, role: str, run_id: Any, name: str, digest: str) -> None:
    if run_id is None:
        return
    # created once: the time of the first record stays (lineage is listed in that order)
    body = {"run_id": run_id, "name": name, "digest": digest, "time": _now()}
    store._ledger_claim(name, f"{role}/{digest}/{_run_key(run_id)}", body)
    store._ledger_claim(RUN_INDEX, f"{_run_key(run_id)}/{role}/"
                        f"{urllib.parse.quote(name, safe='')}/{digest}", body)


def list_versions(store: Store, name: str) -> list[dict]:
    """Every version of ``name``, oldest first: ``{"name", "version" ("v3"), "number",
    "digest", "type", "metadata", "files", "created", "aliases" (``latest`` on the newest),
    "logged_by", "used_by" (run ids)}``; [] when the name is unknown."""
    name = check_version_name(name)
    versions = _versions(store, name)
    if not versions:
        return []
    aliases: dict[int, list[str]] = {}
    for entry, body in sorted(store._ledger_list(name, "alias/").items()):
        aliases.setdefault(int(body["version"]), []).append(entry.split("/", 1)[1])
    lineage: dict[tuple[str, str], list] = {}
    for role in ("logged", "used"):
        for entry, body in sorted(store._ledger_list(name, f"{role}/").items(),
                                  key=lambda item: (item[1].get("time") or "", item[0])):
            lineage.setdefault((role, entry.split("/")[1]), []).append(body.get("run_id"))
    newest = max(versions)
    out = []
    for number in sorted(versions):
        body = versions[number]
        tags = aliases.get(number, [])
        out.append({"name": name, "version": version_label(number), "number": number,
                    "digest": body["digest"], "type": body.get("type"),
                    "metadata": body.get("metadata"), "files": list(body.get("files") or []),
                    "created": body.get("created"),
                    "aliases": ([LATEST] if number == newest else []) + tags,
                    "logged_by": lineage.get(("logged", body["digest"]), []),
                    "used_by": lineage.get(("used", body["digest"]), [])})
    return out


def _described(store: Store, name: str, number: int) -> dict:
    return next(v for v in list_versions(store, name) if v["number"] == number)


def resolve(store: Store, ref: str) -> dict:
    """The version ``ref`` (``name``, ``name:alias``, ``name:vN``) names; an
    :class:`~labbook.errors.ArtifactNotFoundError` listing what exists when none."""
    name, which = parse_ref(ref)
    versions = list_versions(store, name)
    where = getattr(store, "url", "") or type(store).__name__
    if not versions:
        known = [c["name"] for c in collections(store)]
        raise ArtifactNotFoundError(
            f"No artifact named {name!r} in {where}; it has "
            + (", ".join(repr(k) for k in known) if known else "no versioned artifacts") + ".")
    match = _VERSION.fullmatch(which)
    for version in versions:
        if (match and version["number"] == int(match.group(1))) or \
                (not match and which in version["aliases"]):
            return version
    labels = sorted({a for v in versions for a in v["aliases"]}) + \
        [v["version"] for v in versions]
    raise ArtifactNotFoundError(f"Artifact {name!r} has no version or alias {which!r}; it has "
                                + ", ".join(labels) + ".")


def collections(store: Store, type: str | None = None) -> list[dict]:
    """``[{"name", "type", "versions"}]`` of every named artifact (of ``type`` when given)."""
    out = []
    for name in sorted(store._ledger_collections()):
        if name == RUN_INDEX:
            continue
        versions = _versions(store, name)
        if not versions:
            continue
        kind = versions[min(versions)].get("type")
        if type is None or kind == type:
            out.append({"name": name, "type": kind, "versions": len(versions)})
    return out


def run_lineage(store: Store, run_id: Any) -> dict[str, list[dict]]:
    """``{"logged": [...], "used": [...]}``: the versions a run logged and used, each
    ``{"name", "version", "digest"}`` (``version`` None when the store lacks that content)."""
    out: dict[str, list[dict]] = {"logged": [], "used": []}
    entries = store._ledger_list(RUN_INDEX, f"{_run_key(run_id)}/")
    by_name: dict[str, dict[str, str]] = {}
    for entry, body in sorted(entries.items(), key=lambda item: (item[1].get("time") or "",
                                                                 item[0])):
        role = entry.split("/")[1]
        name = body["name"]
        if name not in by_name:
            by_name[name] = {v["digest"]: v["version"] for v in list_versions(store, name)}
        out[role].append({"name": name, "version": by_name[name].get(body["digest"]),
                          "digest": body["digest"]})
    return out


def open_file(store: Store, entry: dict) -> BinaryIO:
    return store._version_blob_open(entry)


def download(store: Store, version: dict, root: str) -> str:
    """Write the files of ``version`` under ``root`` (made when missing), each checked against
    its sha256; return ``root``."""
    root = os.path.abspath(os.fspath(root))
    for entry in version["files"]:
        target = os.path.join(root, *entry["path"].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        sha = hashlib.sha256()
        partial = f"{target}.{os.getpid()}.part"
        with store._version_blob_open(entry) as src, open(partial, "wb") as dst:
            for piece in iter(lambda: src.read(_CHUNK), b""):
                sha.update(piece)
                dst.write(piece)
        if sha.hexdigest() != entry["sha256"]:
            os.remove(partial)
            raise ArtifactNotFoundError(
                f"The stored file {entry['path']!r} of artifact {version['name']}:"
                f"{version['version']} does not match its sha256 (the store holds other bytes).")
        os.replace(partial, target)
    return root


def default_root(version: dict) -> str:
    """Where a version is downloaded when no root is given: ``./artifacts/<name>-<version>``
    (a ``/`` in the name becomes ``-``)."""
    return os.path.join("artifacts", f"{version['name'].replace('/', '-')}-{version['version']}")


class ArtifactVersion:
    """One version of a named artifact, as a store recorded it.

    ``name``, ``version`` (``"v3"``, None while it waits for an unreachable store), ``digest``,
    ``aliases`` (``latest`` on the newest version), ``type``, ``metadata``, ``files`` (``{"path",
    "sha256", "size"}`` each), ``created`` (ISO text, UTC); :meth:`download` writes its files,
    :meth:`versions` lists all versions of the name, :meth:`logged_by` / :meth:`used_by` the
    ids of the runs that logged and used it (the read API's versions give run views).
    """

    def __init__(self, record: dict, store: Store | None = None):
        self._record = record
        self._store = store
        self.name: str = record["name"]
        self.version: str | None = record.get("version")
        self.digest: str = record["digest"]
        self.aliases: list[str] = list(record.get("aliases") or [])
        self.type: str | None = record.get("type")
        self.metadata: Any = record.get("metadata")
        self.files: list[dict] = [{k: f[k] for k in ("path", "sha256", "size") if k in f}
                                  for f in record.get("files") or []]
        self.created: str | None = record.get("created")

    @property
    def ref(self) -> str:
        """``name:vN``, the reference that names exactly this version."""
        return f"{self.name}:{self.version}"

    def _needs_store(self) -> Store:
        if self._store is None or self.version is None:
            raise ArtifactNotFoundError(
                f"Artifact {self.name!r} (digest {self.digest[:12]}) has not reached a store "
                "yet; it is delivered when the store answers again (or by labbook sync).")
        return self._store

    def download(self, root: str | os.PathLike | None = None) -> str:
        """Write the files under ``root`` (default ``./artifacts/<name>-<version>``), each
        checked against its sha256, and return that directory."""
        store = self._needs_store()
        return download(store, self._record, os.fspath(root) if root is not None
                        else default_root(self._record))

    def open(self, path: str) -> BinaryIO:
        """One file of the version (its relative ``path``) as a binary file object."""
        store = self._needs_store()
        for entry in self._record["files"]:
            if entry["path"] == path:
                return store._version_blob_open(entry)
        raise ArtifactNotFoundError(f"Artifact {self.ref} has no file {path!r}; it has "
                                    + ", ".join(repr(f["path"]) for f in self.files) + ".")

    def versions(self) -> list[ArtifactVersion]:
        """Every version of this name, oldest first."""
        store = self._needs_store()
        return [type(self)(v, store) for v in list_versions(store, self.name)]

    def logged_by(self) -> list:
        """Ids of the runs that logged this content (the first one made the version)."""
        return list(self._record.get("logged_by") or [])

    def used_by(self) -> list:
        """Ids of the runs that used this version."""
        return list(self._record.get("used_by") or [])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and (self.name, self.version, self.digest) \
            == (other.name, other.version, other.digest)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.digest))

    def __repr__(self) -> str:
        return (f"<ArtifactVersion {self.name}:{self.version} aliases={self.aliases} "
                f"files={len(self.files)} digest={self.digest[:12]}>")


def copy_versions(source: Store, target: Store, run_ids: dict | None = None) -> int:
    """Copy every version of every name from ``source`` into ``target``: content the target
    holds already is not copied again, and numbers are the target's (the same as the
    source's when the target had no versions of that name). Lineage follows ``run_ids``
    (source run id -> target run id): the runs of the target that are copies of a logging or
    using run are recorded (again, harmlessly, on every call). Returns how many versions were
    new to the target."""
    import tempfile

    made = 0
    mapped = {str(k): v for k, v in (run_ids or {}).items() if v is not None}
    for found in collections(source):
        name = found["name"]
        known = {v["digest"] for v in list_versions(target, name)}
        for version in list_versions(source, name):
            logged = [mapped[str(r)] for r in version["logged_by"] if str(r) in mapped]
            if version["digest"] not in known:
                with tempfile.TemporaryDirectory(prefix="labbook-copy-") as tmp:
                    download(source, version, tmp)
                    files = [dict(f, source=os.path.join(tmp, *f["path"].split("/")))
                             for f in version["files"]]
                    log_version(target, logged[0] if logged else None, name, files,
                                version["type"], version["metadata"],
                                [a for a in version["aliases"] if a != LATEST])
                made += 1
            for run in logged:
                _record(target, "logged", run, name, version["digest"])
            for run in version["used_by"]:
                if str(run) in mapped:
                    _record(target, "used", mapped[str(run)], name, version["digest"])
    return made
