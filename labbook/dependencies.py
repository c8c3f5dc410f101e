"""What a run's code consists of: source files (with md5), packages (with versions) and git state.

:func:`gather_experiment_info` builds the ``experiment`` entry observers store::

    {"name": ..., "base_dir": ..., "mainfile": "train.py",
     "sources": [["train.py", "<md5>"], ...], "dependencies": ["numpy==2.0.1", ...],
     "repositories": [{"url": ..., "commit": ..., "dirty": False}]}

GitPython is imported only when a source lies in a git work tree, and every git problem
(no binary, empty repository, "dubious ownership", ...) just means "no git information".
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import os
import sys
from types import ModuleType
from typing import Any, Iterable, Mapping

from labbook.errors import DirtyRepositoryError, SourceNotFoundError
from labbook.fileio import file_md5
from labbook.records import FrozenFields

__all__ = [
    "PackageDependency",
    "Source",
    "check_clean",
    "gather_dependencies",
    "gather_experiment_info",
    "gather_sources",
    "get_digest",
    "get_git_info",
]

logger = logging.getLogger("labbook.dependencies")

# the labbook package is the framework, not the experiment's code
_LABBOOK_DIR = os.path.dirname(os.path.realpath(__file__))
# directories whose modules are installed packages, recorded as dependencies instead
_INSTALL_DIRS = frozenset({"site-packages", "dist-packages"})
# imported by a .pth file in every process, so they say nothing about the experiment
_IMPLICIT_IMPORTS = frozenset({"__main__", "_distutils_hack", "_virtualenv"})
# check_clean names at most this many files per repository
_MAX_LISTED_FILES = 10


class Source(FrozenFields):
    """One source file: absolute ``filename``, md5 ``digest`` and the git state it comes from.

    ``repo`` is the root directory of the git work tree holding the file (None outside git or
    when git information is not collected); ``commit`` and ``is_dirty`` describe that tree.
    Immutable, hashable and compared by its fields.
    """

    __slots__ = ("filename", "digest", "repo", "commit", "is_dirty")
    filename: str
    digest: str
    repo: str | None
    commit: str | None
    is_dirty: bool | None

    def __init__(self, filename: str, digest: str, repo: str | None = None,
                 commit: str | None = None, is_dirty: bool | None = None) -> None:
        self._init(filename, digest, repo, commit, is_dirty)

    @classmethod
    def create(cls, filename: str, save_git_info: bool = True) -> Source:
        """The Source of an existing file (raises SourceNotFoundError when it is missing)."""
        if not os.path.isfile(filename):
            raise SourceNotFoundError(filename)
        return _make_source(os.path.realpath(filename), {} if save_git_info else None)

    @property
    def isdirty(self) -> bool | None:
        """Sacred's name for :attr:`is_dirty`."""
        return self.is_dirty

    def to_json(self, base_dir: str) -> list[str]:
        """``[path relative to base_dir with "/" separators, digest]``."""
        return [_relative(self.filename, base_dir), self.digest]


class PackageDependency(FrozenFields):
    """An installed distribution the experiment uses; ``version`` None when unknown.
    Immutable, hashable and compared by its fields."""

    __slots__ = ("name", "version")
    name: str
    version: str | None

    def __init__(self, name: str, version: str | None = None) -> None:
        self._init(name, version)

    def to_json(self) -> str:
        """``"name==version"``, or just ``"name"`` without a version."""
        return self.name if self.version is None else f"{self.name}=={self.version}"

    @classmethod
    def create(cls, module: Any) -> PackageDependency:
        """The distribution that installed ``module`` (a module object, as in Sacred): its
        name and version, or the module's top-level name and no version when no installed
        distribution provides it."""
        top = module.__name__.partition(".")[0]
        provided = _distributions_by_import_name().get(top)
        if not provided:
            return cls(top, None)
        name, version = provided[0]
        return cls(name, version)


#: Sacred's name for the md5 of a file
get_digest = file_md5


# --- sources -----------------------------------------------------------------------------------

def gather_sources(globs: Mapping[str, Any], base_dir: str, extra_files: Iterable[str] = (),
                   save_git_info: bool = True) -> set[Source]:
    """The main file (``globs["__file__"]``), every imported module file under ``base_dir``
    and ``extra_files`` (absolute or relative to ``base_dir``).

    Installed packages (site-packages / dist-packages) and labbook itself are left out.
    Raises SourceNotFoundError naming an extra file that does not exist.
    """
    return _collect_sources(globs, base_dir, extra_files, save_git_info)[0]


def _collect_sources(globs: Mapping[str, Any], base_dir: str, extra_files: Iterable[str],
                     save_git_info: bool) -> tuple[set[Source], dict[str, dict]]:
    """The sources plus the git information of each work tree they lie in (keyed by root)."""
    return _begin_sources(globs, base_dir, extra_files, save_git_info).finish()


def _begin_sources(globs: Mapping[str, Any], base_dir: str, extra_files: Iterable[str],
                   save_git_info: bool) -> _PendingSources:
    """Find the source files and start the git queries of their work trees; the digests are
    taken (and the rest of the experiment info gathered) while git works."""
    files: set[str] = set()
    main = _main_file(globs)
    if main is not None:
        files.add(main)
    files.update(_module_files(os.path.realpath(base_dir)))
    for extra in extra_files:
        extra = os.fsdecode(extra)
        path = extra if os.path.isabs(extra) else os.path.join(base_dir, extra)
        if not os.path.isfile(path):
            raise SourceNotFoundError(extra, base_dir)
        files.add(os.path.realpath(path))
    roots: dict[str, str | None] = {}
    queries: dict[str, _GitQuery] = {}
    if save_git_info:
        for filename in files:  # one git query per work tree, not per file
            root = roots[filename] = _work_tree_root(filename)
            if root is not None and root not in queries:
                queries[root] = _GitQuery(root)
    return _PendingSources(files, roots, queries)


class _PendingSources:
    """Source files whose work trees are being queried (see :func:`_begin_sources`)."""

    def __init__(self, files: set[str], roots: dict[str, str | None],
                 queries: dict[str, _GitQuery]):
        self.files, self.roots, self.queries = files, roots, queries

    def finish(self) -> tuple[set[Source], dict[str, dict]]:
        """The sources (digests taken now) and the git information of their work trees."""
        try:
            digests = {f: get_digest(f) for f in self.files}
        except BaseException:
            self.close()
            raise
        infos = {root: query.result() for root, query in self.queries.items()}
        sources = set()
        for filename, digest in digests.items():
            info = infos.get(self.roots.get(filename))  # type: ignore[arg-type]
            if info is None:
                sources.add(Source(filename, digest))
            else:
                sources.add(Source(filename, digest, repo=self.roots[filename],
                                   commit=info["commit"], is_dirty=info["dirty"]))
        return sources, {root: info for root, info in infos.items() if info}

    def close(self) -> None:
        """Stop the git queries whose answers are not wanted (an error came first)."""
        for query in self.queries.values():
            query.close()


def _make_source(filename: str, git_infos: dict[str, dict | None] | None) -> Source:
    digest = get_digest(filename)
    if git_infos is None:
        return Source(filename, digest)
    root = _work_tree_root(filename)
    if root is None:
        return Source(filename, digest)
    if root not in git_infos:
        git_infos[root] = get_git_info(root)
    info = git_infos[root]
    if info is None:
        return Source(filename, digest)
    return Source(filename, digest, repo=root, commit=info["commit"], is_dirty=info["dirty"])


def _main_file(globs: Mapping[str, Any]) -> str | None:
    filename = globs.get("__file__") if globs else None
    if not isinstance(filename, str):
        return None  # interactive session: there is no main file
    if filename.endswith(".pyc"):
        filename = _py_from_pyc(filename)
    filename = os.path.realpath(filename)
    return filename if os.path.isfile(filename) else None


def _py_from_pyc(filename: str) -> str:
    try:
        return importlib.util.source_from_cache(filename)
    except ValueError:  # a legacy foo.pyc next to foo.py, not in __pycache__
        return filename[:-1]


def _module_files(base_real: str) -> Iterable[str]:
    """The .py files of imported modules that lie under ``base_real``."""
    for module in list(sys.modules.values()):  # a copy: other threads may import meanwhile
        try:
            filename = getattr(module, "__file__", None)
        except Exception:  # lazy modules can raise from __getattr__
            continue
        if not isinstance(filename, str):
            continue
        if filename.endswith(".pyc"):
            filename = _py_from_pyc(filename)
        if not filename.endswith(".py"):
            continue  # extension modules, zip imports: not source we can hash meaningfully
        real = _REALPATHS.get(filename)
        if real is None:
            if os.path.isabs(filename):  # a relative one depends on the working directory
                real = _REALPATHS[filename] = _real_file(filename)
            else:
                real = os.path.realpath(filename)
        if not _is_under(real, base_real) or _is_under(real, _LABBOOK_DIR):
            continue
        # relative parts only, so an experiment that itself lives in site-packages still works
        if _INSTALL_DIRS.intersection(os.path.relpath(real, base_real).split(os.sep)):
            continue
        if os.path.isfile(real):
            yield real


#: module file -> its real path: resolving every imported module's path (a stat per
#: component) was most of an experiment's first gathering; an imported file keeps its place
_REALPATHS: dict[str, str] = {}
#: directory -> its real path (a few dozen directories hold all imported modules)
_REALDIRS: dict[str, str] = {}


def _real_file(filename: str) -> str:
    """``os.path.realpath`` of an absolute file name, resolving its directory once per process:
    the real directory plus the name, unless the file itself is a link."""
    directory, name = os.path.split(filename)
    real_dir = _REALDIRS.get(directory)
    if real_dir is None:
        real_dir = _REALDIRS[directory] = os.path.realpath(directory)
    path = os.path.join(real_dir, name)
    return os.path.realpath(path) if os.path.islink(path) else path


def _is_under(path: str, root: str) -> bool:
    path, root = os.path.normcase(path), os.path.normcase(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _relative(filename: str, base_dir: str) -> str:
    try:
        rel = os.path.relpath(os.path.realpath(filename), os.path.realpath(base_dir))
    except ValueError:  # Windows: another drive has no relative path
        rel = filename
    return rel.replace(os.sep, "/")


# --- packages ----------------------------------------------------------------------------------

@functools.cache
def _index_dir(directory: str) -> dict[str, tuple[tuple[str, str | None], ...]]:
    """Import name -> ((distribution, version), ...) from the metadata folders in one
    directory of sys.path.

    Read straight from ``*.dist-info``/``*.egg-info`` folder names and their
    ``top_level.txt``: ``importlib.metadata.packages_distributions()`` costs ~45 ms per process
    (import plus reading every RECORD), a quarter of a short experiment's wall time.
    """
    index: dict[str, list[tuple[str, str | None]]] = {}
    try:
        entries = os.listdir(directory)
    except OSError:
        return {}
    for entry in entries:
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        stem = entry.rsplit(".", 1)[0]
        dist, _, version = stem.partition("-")
        if not version:  # a development egg-info ("name.egg-info"): the version is inside
            version = _metadata_version(os.path.join(directory, entry))
        names: list[str] = []
        try:
            with open(os.path.join(directory, entry, "top_level.txt"), encoding="utf-8") as fh:
                names = [line.strip() for line in fh if line.strip()]
        except OSError:
            pass
        if not names:
            names = [dist.replace("-", "_").lower(), dist]
        for name in dict.fromkeys(names):
            index.setdefault(name.replace("/", "."), []).append((dist, version or None))
    return {name: tuple(dists) for name, dists in index.items()}


def _metadata_version(folder: str) -> str:
    for name in ("PKG-INFO", "METADATA"):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return ""


def _distributions_by_import_name() -> dict[str, tuple[tuple[str, str | None], ...]]:
    merged: dict[str, tuple[tuple[str, str | None], ...]] = {}
    for directory in sys.path:
        if directory and os.path.isdir(directory):
            for name, dists in _index_dir(os.path.abspath(directory)).items():
                merged.setdefault(name, dists)
    return merged


def gather_dependencies(globs: Mapping[str, Any] | None = None,
                        extra: Iterable[PackageDependency] = ()) -> set[PackageDependency]:
    """The installed distributions of every imported top-level module, plus ``extra``.

    Standard library modules and modules without a distribution are left out. An import name
    provided by several distributions (namespace packages) records all of them. An ``extra``
    entry replaces the detected one of the same name. Imports are read from ``sys.modules``,
    the same for every run of a process (see :func:`_imported_names`); ``globs`` is the main
    file's namespace.
    """
    by_import = _distributions_by_import_name()
    found: dict[str, PackageDependency] = {}
    for name in sorted(_imported_names(globs or {})):
        if name in sys.stdlib_module_names or name in _IMPLICIT_IMPORTS:
            continue
        for dist, version in by_import.get(name, ()):
            found.setdefault(_normalize(dist), PackageDependency(dist, version))
    for dep in extra:
        found[_normalize(dep.name)] = dep
    return set(found.values())


#: the top-level modules imported when this process first gathered its dependencies
_FIRST_GATHERED: frozenset[str] | None = None


def _imported_names(globs: Mapping[str, Any]) -> set[str]:
    """The top-level import names whose packages a run of this process depends on.

    Every run of a process lists the same packages: those imported when the process first
    gathered them (before its first run starts), plus packages imported later that the main
    file's namespace refers to (``import torch`` in a notebook cell between two runs). A
    package imported later by anything else (labbook's own system-metrics sampler, a store's
    migration tool) is not the experiment's and does not join from the second run on.
    """
    global _FIRST_GATHERED
    names = {name for name in list(sys.modules) if "." not in name}
    if _FIRST_GATHERED is None:
        _FIRST_GATHERED = frozenset(names)
        return names
    referenced = set()
    for value in list(globs.values()):
        try:
            module = value.__name__ if isinstance(value, ModuleType) else \
                getattr(value, "__module__", None)
        except Exception:  # lazy objects can raise from __getattr__
            continue
        if isinstance(module, str):
            referenced.add(module.partition(".")[0])
    return (names & _FIRST_GATHERED) | (names & referenced)


def _normalize(dist: str) -> str:
    # PEP 503: "GitPython", "gitpython" and "git_python" are one distribution
    return dist.lower().replace("_", "-").replace(".", "-")


# --- git ---------------------------------------------------------------------------------------

def _work_tree_root(path: str) -> str | None:
    """The nearest directory at or above ``path`` holding a ``.git`` entry (dir or file)."""
    current = path if os.path.isdir(path) else os.path.dirname(path)
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def get_git_info(path: str) -> dict | None:
    """``{"url", "commit", "dirty", "dirty_files"}`` of the git work tree containing ``path``.

    ``url`` is the origin remote (password masked) or None; ``dirty_files`` are paths relative
    to the work tree root of modified, staged, deleted or untracked files. Returns None when
    there is no usable repository; never raises.
    """
    root = _work_tree_root(os.path.abspath(path))
    if root is None:
        # checked before importing GitPython, which is slow to import
        logger.debug("%s is not in a git work tree; no git information recorded", path)
        return None
    return _GitQuery(root).result()


class _GitQuery:
    """The git information of one work tree, asked through GitPython in two steps: creating
    the query reads HEAD and the origin URL from the repository's files and starts
    ``git status`` (the one git process of a query); :meth:`result` waits for it. A run
    takes its file digests and scans its imports while ``git status`` works.

    HEAD is resolved from the ref files (``SymbolicReference.dereference_recursive``), not
    through ``repo.head.commit``, which starts a ``git cat-file`` process per query.
    """

    def __init__(self, root: str):
        self.root = root
        self._repo: Any = None
        self._status: Any = None
        self._info: dict | None = None
        try:
            import git
        except Exception as exc:  # GitPython raises ImportError when no git binary is found
            logger.debug("GitPython is unavailable (%s); no git information recorded", exc)
            return
        try:
            self._repo = git.Repo(root)
            try:
                commit = git.SymbolicReference.dereference_recursive(self._repo, "HEAD")
            except ValueError:  # HEAD names a branch without commits
                logger.debug("git repository %s has no commits; no git information recorded",
                             root)
                self.close()
                return
            # --no-optional-locks: reading status must not take index.lock from the user's git
            self._status = self._repo.git(no_optional_locks=True).status(
                "--porcelain", "-z", as_process=True)
            self._info = {"url": _origin_url(self._repo), "commit": commit}
        except Exception as exc:
            self._failed(exc)

    def result(self) -> dict | None:
        """``get_git_info``'s answer (None when the repository is unusable); never raises."""
        if self._info is None or self._status is None:
            return None
        info, status, self._status = self._info, self._status, None
        try:
            out, err = status.communicate()
            status.wait(stderr=err)  # raises GitCommandError naming stderr on failure
        except Exception as exc:
            self._failed(exc)
            return None
        finally:
            self.close()
        from git.compat import safe_decode

        from labbook.host_info import redact

        dirty_files = _parse_porcelain(safe_decode(out))
        url = info["url"]
        return {"url": redact(url) if url else None, "commit": info["commit"],
                "dirty": bool(dirty_files), "dirty_files": dirty_files}

    def _failed(self, exc: Exception) -> None:
        self._info = None
        self.close()
        if "dubious ownership" in str(exc):
            logger.debug("git refuses %s (dubious ownership; see `git config --global --add "
                         "safe.directory`); no git information recorded", self.root)
        else:
            logger.debug("Cannot read git information of %s: %s", self.root, exc)

    def close(self) -> None:
        status, self._status = self._status, None
        if status is not None:
            try:
                status.proc.kill()
                status.communicate()
            except Exception:  # already ended
                pass
        repo, self._repo = self._repo, None
        if repo is not None:
            repo.close()


def _origin_url(repo: Any) -> str | None:
    try:
        return repo.remote("origin").url
    except Exception:  # no remote named origin
        return None


def _parse_porcelain(status: str) -> list[str]:
    """Paths from ``git status --porcelain -z`` (renames give the new path)."""
    files = []
    entries = iter(status.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        files.append(entry[3:])
        if entry[0] in "RC":
            next(entries, None)  # the original path of a rename/copy follows
    return files


# --- experiment info ---------------------------------------------------------------------------

# (url, commit) -> (work tree root, dirty files) of repositories seen by gather_experiment_info;
# the stored entries hold only url/commit/dirty (Sacred's format), check_clean names the files
_REPOSITORY_DETAILS: dict[tuple[str | None, str], tuple[str, list[str]]] = {}


def gather_experiment_info(name: str, base_dir: str | None, globs: Mapping[str, Any] | None,
                           extra_sources: Iterable[str] = (),
                           extra_dependencies: Iterable[PackageDependency] = (),
                           save_git_info: bool = True) -> dict[str, Any]:
    """Name, base_dir, sources, dependencies, git repositories and main file of an experiment.

    ``sources`` and ``dependencies`` are sorted; ``repositories`` has one entry per distinct
    work tree of the sources (empty when ``save_git_info`` is False).
    """
    globs = globs or {}
    main = _main_file(globs)
    if base_dir is None:
        base_dir = os.path.dirname(main) if main else os.getcwd()
    pending = _begin_sources(globs, base_dir, extra_sources, save_git_info)
    try:
        deps = gather_dependencies(globs, extra_dependencies)  # while git status works
    except BaseException:
        pending.close()
        raise
    sources, git_infos = pending.finish()
    repositories = []
    for root, info in git_infos.items():
        _REPOSITORY_DETAILS[(info["url"], info["commit"])] = (root, list(info["dirty_files"]))
        repositories.append({"url": info["url"], "commit": info["commit"],
                             "dirty": info["dirty"]})
    repositories.sort(key=lambda r: (r["url"] or "", r["commit"]))
    return {
        "name": name,
        "base_dir": base_dir,
        "sources": sorted(s.to_json(base_dir) for s in sources),
        "dependencies": sorted(d.to_json() for d in deps),
        "repositories": repositories,
        "mainfile": _relative(main, base_dir) if main else None,
    }


def check_clean(experiment_info: Mapping[str, Any]) -> None:
    """Raise DirtyRepositoryError naming the changed files when any repository is dirty.

    The file names come from a ``"dirty_files"`` key of the repository entry when present,
    else from what :func:`gather_experiment_info` saw in this process.
    """
    if not experiment_info.get("repositories"):
        # Sacred refuses too: "clean" cannot be checked without version control.
        raise DirtyRepositoryError(
            "enforce_clean (-e) needs the experiment's sources in a git repository, but none "
            "was found (or git information is turned off with save_git_info=False).")
    problems = []
    dirty_repos = []
    for repo in experiment_info.get("repositories") or ():
        if not repo.get("dirty"):
            continue
        root, files = _REPOSITORY_DETAILS.get((repo.get("url"), repo.get("commit")),
                                              (None, []))
        files = list(repo.get("dirty_files", files))
        where = repo.get("url") or root or f"at commit {repo.get('commit')}"
        message = f"git repository {where} has uncommitted changes"
        if files:
            shown = ", ".join(files[:_MAX_LISTED_FILES])
            more = len(files) - _MAX_LISTED_FILES
            message += f": {shown}" + (f" and {more} more" if more > 0 else "")
        problems.append(message)
        dirty_repos.append({**repo, "dirty_files": files})
    if problems:
        error = DirtyRepositoryError(
            "; ".join(problems) + ". Commit them or run without enforce_clean (-e).")
        error.repositories = dirty_repos
        raise error
