"""Sources, package dependencies and git information of an experiment."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import py_compile
import subprocess
import sys

import numpy
import pytest

from labbook.dependencies import (PackageDependency, Source, check_clean, gather_dependencies,
                                  gather_experiment_info, gather_sources, get_digest,
                                  get_git_info)
from labbook.errors import DirtyRepositoryError, LabbookError, SourceNotFoundError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def md5(path) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def git(cwd, *args: str) -> str:
    """Run git with an identity of its own, independent of the user's configuration."""
    cmd = ["git", "-c", "user.email=test@example.com", "-c", "user.name=Test",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path):
    """A project directory with a main file and an imported package (cleaned up after)."""
    proj = tmp_path / "proj"
    (proj / "lbt_helpers").mkdir(parents=True)
    (proj / "main.py").write_text("import lbt_helpers.util\n")
    (proj / "lbt_helpers" / "__init__.py").write_text("")
    (proj / "lbt_helpers" / "util.py").write_text("def f():\n    return 1\n")
    (proj / "lbt_gone.py").write_text("X = 1\n")
    # a virtualenv inside the project: its packages are dependencies, not sources
    (proj / "venv" / "site-packages").mkdir(parents=True)
    (proj / "venv" / "site-packages" / "lbt_installed.py").write_text("Y = 2\n")
    (proj / "data.txt").write_text("config data\n")
    sys.path.insert(0, str(proj))
    sys.path.insert(0, str(proj / "venv" / "site-packages"))
    importlib.invalidate_caches()
    for name in ("lbt_helpers.util", "lbt_gone", "lbt_installed"):
        importlib.import_module(name)
    yield proj
    sys.path.remove(str(proj))
    sys.path.remove(str(proj / "venv" / "site-packages"))
    for name in [m for m in sys.modules if m.split(".")[0] in
                 ("lbt_helpers", "lbt_gone", "lbt_installed")]:
        del sys.modules[name]


def relpaths(sources, base_dir):
    return {s.to_json(str(base_dir))[0]: s.to_json(str(base_dir))[1] for s in sources}


# --- sources -----------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_imported_module_files_are_judged_by_their_real_paths(tmp_path):
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    (proj / "pkgdir").mkdir(parents=True)
    outside.mkdir()
    (proj / "pkgdir" / "lbt_linked_in.py").write_text("A = 1\n")
    os.symlink(proj / "pkgdir", outside / "linkdir")  # imported through a linked directory
    (outside / "lbt_target.py").write_text("B = 2\n")
    os.symlink(outside / "lbt_target.py", proj / "lbt_linked_out.py")  # a linked file
    sys.path[:0] = [str(outside / "linkdir"), str(proj)]
    importlib.invalidate_caches()
    try:
        importlib.import_module("lbt_linked_in")
        importlib.import_module("lbt_linked_out")
        sources = gather_sources({}, str(proj), save_git_info=False)
    finally:
        del sys.path[:2]
        sys.modules.pop("lbt_linked_in", None)
        sys.modules.pop("lbt_linked_out", None)
    assert {s.to_json(str(proj))[0] for s in sources} == {"pkgdir/lbt_linked_in.py"}


def test_gather_sources_main_file_and_imported_modules(project):
    os.remove(project / "lbt_gone.py")  # imported, then deleted: nothing to hash
    sources = gather_sources({"__file__": str(project / "main.py")}, str(project))
    assert relpaths(sources, project) == {
        "main.py": md5(project / "main.py"),
        "lbt_helpers/__init__.py": md5(project / "lbt_helpers" / "__init__.py"),
        "lbt_helpers/util.py": md5(project / "lbt_helpers" / "util.py"),
    }
    for source in sources:
        assert os.path.isabs(source.filename)


def test_gather_sources_uses_py_for_a_pyc_main_file(project):
    pyc = importlib.util.cache_from_source(str(project / "main.py"))
    py_compile.compile(str(project / "main.py"), cfile=pyc)
    sources = gather_sources({"__file__": pyc}, str(project))
    assert "main.py" in relpaths(sources, project)
    assert not any(s.filename.endswith(".pyc") for s in sources)


def test_gather_sources_skips_labbook_itself():
    sources = gather_sources({}, ROOT, save_git_info=False)
    assert not any(p.startswith("labbook/") for p in relpaths(sources, ROOT))


def test_extra_files_relative_and_absolute(project, tmp_path):
    outside = tmp_path / "shared.cfg"
    outside.write_text("x")
    sources = gather_sources({}, str(project), extra_files=["data.txt", str(outside)])
    paths = relpaths(sources, project)
    assert paths["data.txt"] == md5(project / "data.txt")
    assert paths["../shared.cfg"] == md5(outside)


def test_missing_extra_file_raises_naming_it(project):
    with pytest.raises(SourceNotFoundError, match="nope/missing.py") as info:
        gather_sources({}, str(project), extra_files=["nope/missing.py"])
    assert isinstance(info.value, LabbookError)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.filename == "nope/missing.py"
    assert str(project) in str(info.value)  # says what relative paths are relative to


def test_source_to_json_and_create(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "a.py"
    path.write_text("a = 1\n")
    source = Source.create(str(path), save_git_info=False)
    assert source == Source(str(path.resolve()), md5(path))
    assert source.to_json(str(tmp_path)) == ["sub/a.py", md5(path)]
    with pytest.raises(SourceNotFoundError):
        Source.create(str(tmp_path / "missing.py"))


def test_get_digest_reads_large_files(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(300_000))  # several chunks
    assert get_digest(str(path)) == md5(path)


# --- packages ----------------------------------------------------------------------------------

def test_package_dependency_to_json():
    assert PackageDependency("numpy", "1.26.0").to_json() == "numpy==1.26.0"
    assert PackageDependency("mylib", None).to_json() == "mylib"


def test_gather_dependencies_finds_numpy_and_no_stdlib():
    deps = {d.name: d.version for d in gather_dependencies({})}
    assert deps["numpy"] == numpy.__version__
    for stdlib in ("os", "sys", "json", "subprocess", "hashlib"):
        assert stdlib not in deps
    assert "labbook" not in deps or deps["labbook"]  # only as an installed distribution


def test_gather_dependencies_adds_and_overrides_extra():
    extra = [PackageDependency("my-private-lib", "0.3"), PackageDependency("numpy", None)]
    deps = gather_dependencies({}, extra)
    assert PackageDependency("my-private-lib", "0.3") in deps
    assert [d for d in deps if d.name == "numpy"] == [PackageDependency("numpy", None)]


# --- git ---------------------------------------------------------------------------------------

@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('train')\n")
    (path / "lib.py").write_text("X = 1\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_git_info_of_a_clean_repository(repo):
    info = get_git_info(str(repo / "train.py"))
    assert info == {"url": None, "commit": git(repo, "rev-parse", "HEAD"), "dirty": False,
                    "dirty_files": []}


def test_git_info_of_a_dirty_repository(repo):
    (repo / "lib.py").write_text("X = 2\n")
    (repo / "scratch.py").write_text("untracked\n")
    info = get_git_info(str(repo))
    assert info["dirty"] is True
    assert sorted(info["dirty_files"]) == ["lib.py", "scratch.py"]


def test_untracked_file_alone_makes_it_dirty(repo):
    (repo / "notes.txt").write_text("todo\n")
    info = get_git_info(str(repo))
    assert info["dirty"] is True and info["dirty_files"] == ["notes.txt"]


def test_git_info_from_a_subdirectory(repo):
    (repo / "pkg").mkdir()
    (repo / "pkg" / "m.py").write_text("")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pkg")
    info = get_git_info(str(repo / "pkg" / "m.py"))
    assert info["commit"] == git(repo, "rev-parse", "HEAD") and info["dirty"] is False


def test_remote_url_password_is_redacted(repo):
    git(repo, "remote", "add", "origin", "https://user:pw@example.com/r.git")
    assert get_git_info(str(repo))["url"] == "https://user:****@example.com/r.git"


def test_empty_repository_gives_none(tmp_path):
    git(tmp_path, "init", "-q")
    assert get_git_info(str(tmp_path)) is None


def test_dubious_ownership_gives_none(repo, monkeypatch):
    # git's own test switch: behave as if another user owned the repository
    monkeypatch.setenv("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")
    assert subprocess.run(["git", "status"], cwd=repo, capture_output=True).returncode != 0
    assert get_git_info(str(repo)) is None


def test_missing_git_binary_gives_none(repo, monkeypatch, tmp_path):
    import git as gitpython  # noqa: F401  (imported while git was still on PATH)

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert get_git_info(str(repo)) is None


def test_missing_git_binary_in_a_fresh_process_gives_none(repo, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    code = ("import sys, labbook.dependencies as d; "
            "print(d.get_git_info(sys.argv[1]) is None)")
    env = {**os.environ, "PATH": str(empty)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    out = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True,
                         text=True, cwd=ROOT, check=True, env=env).stdout
    assert out.strip() == "True"


def test_outside_a_repository_gives_none_without_importing_gitpython(tmp_path):
    code = ("import sys, labbook.dependencies as d; "
            "print(d.get_git_info(sys.argv[1]) is None, 'git' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["True", "False"]


def test_outside_a_repository_logs_at_debug(tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="labbook.dependencies"):
        assert get_git_info(str(tmp_path)) is None
    assert any("not in a git work tree" in r.getMessage() for r in caplog.records)


def test_sources_carry_their_git_state(repo):
    sources = gather_sources({"__file__": str(repo / "train.py")}, str(repo))
    [source] = sources
    assert source.repo == str(repo.resolve())
    assert source.commit == git(repo, "rev-parse", "HEAD")
    assert source.is_dirty is False


# --- experiment info and check_clean -----------------------------------------------------------

def test_gather_experiment_info(repo):
    git(repo, "remote", "add", "origin", "https://example.com/r.git")
    info = gather_experiment_info("exp", str(repo), {"__file__": str(repo / "train.py")},
                                  extra_sources=["lib.py"],
                                  extra_dependencies=[PackageDependency("extra-pkg", "1.0")])
    assert info["name"] == "exp"
    assert info["base_dir"] == str(repo)
    assert info["mainfile"] == "train.py"
    assert info["sources"] == [["lib.py", md5(repo / "lib.py")],
                               ["train.py", md5(repo / "train.py")]]
    assert info["dependencies"] == sorted(info["dependencies"])
    assert "extra-pkg==1.0" in info["dependencies"]
    assert f"numpy=={numpy.__version__}" in info["dependencies"]
    assert info["repositories"] == [{"url": "https://example.com/r.git",
                                     "commit": git(repo, "rev-parse", "HEAD"), "dirty": False}]
    json.dumps(info)
    check_clean(info)  # clean: no error


def test_gather_experiment_info_without_git(repo):
    info = gather_experiment_info("exp", str(repo), {"__file__": str(repo / "train.py")},
                                  save_git_info=False)
    assert info["repositories"] == []
    assert info["sources"] == [["train.py", md5(repo / "train.py")]]


def test_gather_experiment_info_outside_git_and_interactive(tmp_path):
    info = gather_experiment_info("exp", str(tmp_path), {})
    assert info["mainfile"] is None
    assert info["sources"] == [] and info["repositories"] == []


def test_check_clean_names_dirty_files(repo):
    git(repo, "remote", "add", "origin", "https://user:pw@example.com/r.git")
    (repo / "lib.py").write_text("X = 3\n")
    (repo / "new.py").write_text("")
    info = gather_experiment_info("exp", str(repo), {"__file__": str(repo / "train.py")})
    assert info["repositories"][0]["dirty"] is True
    assert set(info["repositories"][0]) == {"url", "commit", "dirty"}
    with pytest.raises(DirtyRepositoryError) as error:
        check_clean(info)
    assert str(error.value) == (
        "git repository https://user:****@example.com/r.git has uncommitted changes: "
        "lib.py, new.py. Commit them or run without enforce_clean (-e).")


def test_check_clean_without_remote_names_the_path(repo):
    (repo / "lib.py").write_text("X = 4\n")
    info = gather_experiment_info("exp", str(repo), {"__file__": str(repo / "train.py")})
    with pytest.raises(DirtyRepositoryError, match=f"git repository {repo.resolve()} has "
                                                   "uncommitted changes: lib.py"):
        check_clean(info)


def test_check_clean_with_stored_info():
    # experiment info read back from a store: no process-local details, but still an error
    info = {"repositories": [{"url": "https://h/x.git", "commit": "0" * 40, "dirty": True,
                              "dirty_files": ["a.py", "b.py"]},
                             {"url": "https://h/y.git", "commit": "1" * 40, "dirty": True},
                             {"url": "https://h/z.git", "commit": "2" * 40, "dirty": False}]}
    with pytest.raises(DirtyRepositoryError) as error:
        check_clean(info)
    message = str(error.value)
    assert "git repository https://h/x.git has uncommitted changes: a.py, b.py" in message
    assert "git repository https://h/y.git has uncommitted changes" in message
    assert "z.git" not in message
    for no_repo in ({"repositories": []}, {}):
        with pytest.raises(DirtyRepositoryError, match="needs the experiment's sources in a git "
                                                       "repository"):
            check_clean(no_repo)


def test_sources_and_dependencies_are_values():
    import copy
    import pickle

    source = Source("/x/a.py", "0" * 32, repo="/x", commit="abc", is_dirty=False)
    same = Source("/x/a.py", "0" * 32, repo="/x", commit="abc", is_dirty=False)
    assert source == same and hash(source) == hash(same) and len({source, same}) == 1
    assert source != Source("/x/a.py", "0" * 32)  # another git state: another value
    for copied in (pickle.loads(pickle.dumps(source)), copy.deepcopy(source)):
        assert copied == source and copied.repo == "/x" and copied.isdirty is False
    with pytest.raises(AttributeError, match="Source is immutable"):
        source.digest = "1" * 32
    dependency = PackageDependency("numpy", "1.26.0")
    assert dependency == PackageDependency("numpy", "1.26.0") != PackageDependency("numpy")
    assert repr(dependency) == "PackageDependency(name='numpy', version='1.26.0')"
    with pytest.raises(AttributeError, match="immutable"):
        dependency.version = None


def test_a_first_run_makes_no_dataclass(tmp_path):
    # each @dataclass costs 0.3-1 ms to make; the classes a run needs are made without it
    script = ("import dataclasses, sys\n"
              "made = []\n"
              "process = dataclasses._process_class\n"
              "def spy(cls, *args, **kwargs):\n"
              "    made.append(cls.__module__ + '.' + cls.__qualname__)\n"
              "    return process(cls, *args, **kwargs)\n"
              "dataclasses._process_class = spy\n"
              "from labbook import Experiment\n"
              "from labbook.observers import FileStorageObserver\n"
              "ex = Experiment('first')\n"
              "ex.observers.append(FileStorageObserver(sys.argv[1]))\n"
              "ex.main(lambda: 1)\n"
              "ex.run()\n"
              "print([name for name in made if name.startswith('labbook')])\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "runs")], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=root), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
