"""The package's structure is checked, not only described: the import contracts in
pyproject.toml (run by import-linter), the public surface, and no module reaching back into
the package root."""
import ast
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys

import pytest

import labbook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "labbook")


def _lint_imports(cwd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter", reason="import-linter is in the [test] extra")
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout
    for name in ("Layers", "Stores import no observer", "The read side imports no run machinery",
                 "Back-ends are reached only through the registry"):
        assert name in result.stdout, name
    assert result.stdout.count(" KEPT") == 4


def _copy_as(tmp_path, name: str) -> str:
    """The package and its contracts, renamed so that the copy cannot be confused with the
    installed labbook."""
    target = tmp_path / name
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _, files in os.walk(target):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(dirpath, file)
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(re.sub(r"\blabbook\b", name, text))
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as fh:
        config = fh.read()
    config = config[config.index("[tool.importlinter]"):]
    (tmp_path / ".importlinter.toml").write_text(re.sub(r"\blabbook\b", name, config))
    return str(tmp_path)


@pytest.mark.parametrize("module, line, contract", [
    ("stores/base.py", "from {pkg}.observers import base as _backward",
     "Stores import no observer"),
    ("api.py", "from {pkg} import run as _backward", "The read side imports no run machinery"),
    ("events.py", "from {pkg} import experiment as _backward", "Layers"),
    ("api.py", "from {pkg}.stores import sql as _backward", "reached only through the registry"),
])
def test_a_backward_import_breaks_a_contract(tmp_path, module, line, contract):
    pkg = "lbcopy"
    where = _copy_as(tmp_path, pkg)
    path = os.path.join(where, pkg, module)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n" + line.format(pkg=pkg) + "  # noqa\n")
    env = dict(os.environ, PYTHONPATH=where)
    pytest.importorskip("importlinter")
    code = ("import sys; from importlinter.cli import lint_imports_command; "
            "lint_imports_command()")
    result = subprocess.run([sys.executable, "-c", code, "--no-cache", "--config",
                             ".importlinter.toml"], cwd=where, capture_output=True, text=True,
                            env=env, timeout=300)
    broken = result.stdout.split("Broken contracts")[-1]
    assert result.returncode != 0, result.stdout + result.stderr
    assert contract in broken, result.stdout + result.stderr
    assert module.replace("/", ".").removesuffix(".py") in broken


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(labbook.__path__, "labbook."):
        if ".migrations.versions" in info.name or info.name.endswith("migrations.env"):
            continue  # Alembic revision scripts run only inside Alembic
        names.append(info.name)
    return names


def test_no_module_imports_the_package_root_for_a_name():
    """``import labbook`` inside the package (for ``__version__`` or a lazy name) couples a
    low module to everything the root loads; submodules are imported by their own name."""
    submodules = {name.split(".")[1] for name in _modules()}
    offenders = []
    for dirpath, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith(".py") or os.path.join(PACKAGE, "__init__.py") == \
                    os.path.join(dirpath, file):
                continue
            path = os.path.join(dirpath, file)
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import) and any(a.name == "labbook" for a in node.names):
                    offenders.append(f"{path}:{node.lineno}: import labbook")
                if isinstance(node, ast.ImportFrom) and node.module == "labbook" \
                        and node.level == 0:
                    offenders += [f"{path}:{node.lineno}: from labbook import {a.name}"
                                  for a in node.names if a.name not in submodules]
    assert offenders == []


PUBLIC_PACKAGES = ["labbook", "labbook.observers", "labbook.stores", "labbook.config",
                   "labbook.cli", "labbook.stores.sql", "labbook.stores.mongo"]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_every_public_name_resolves_and_nothing_private_leaks(name):
    if name.endswith(".sql"):
        pytest.importorskip("sqlalchemy")
    if name.endswith(".mongo"):
        pytest.importorskip("pymongo")
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and module.__all__, f"{name} has no __all__"
    assert len(set(module.__all__)) == len(module.__all__)
    for public in module.__all__:
        assert not public.startswith("_") or public == "__version__", f"{name}.{public}"
        assert getattr(module, public) is not None, f"{name}.{public} does not resolve"


def test_every_module_declares_its_public_names():
    missing = []
    for name in _modules():
        if name.startswith(("labbook.stores.sql", "labbook.stores.mongo")) and \
                importlib.util.find_spec("pymongo" if "mongo" in name else "sqlalchemy") is None:
            continue
        module = importlib.import_module(name)
        if not hasattr(module, "__all__"):
            missing.append(name)
    assert missing == []


def test_the_package_ships_its_type_information():
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        data = tomllib.load(fh)["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data.get("labbook", [])


#: builtin exceptions labbook may still raise, each for a reason: protocols Python defines
#: (a file's write(), a mapping's missing key, a module's missing attribute) and internal
#: signals caught a few lines away. Everything a user can cause raises a class of
#: labbook.errors (they subclass the builtins, so ``except ValueError`` still works).
ALLOWED_BUILTIN_RAISES = {
    ("output.py", "TypeError"), ("output.py", "ValueError"),  # the io.TextIOBase protocol
    ("config/scope.py", "KeyError"), ("config/paths.py", "KeyError"),  # mappings
    ("stores/file_series.py", "ValueError"),  # "aware time": caught, encoded another way
    ("stores/file_index.py", "OSError"),  # a short write: caught, the index is rebuilt
    ("stores/filesystem.py", "FileExistsError"),  # os.mkdir's protocol: caught, next id
    ("stores/filesystem.py", "FileNotFoundError"),  # open()'s protocol: caught, file absent
    ("host_info.py", "ValueError"),  # nvidia-smi output: caught, the GPU info is skipped
    ("arg_parser.py", "ValueError"),  # '...' in a value: caught, read as a bare word
    ("stores/sql/migrations/env.py", "RuntimeError"),  # Alembic run by hand on the folder
    ("stores/query.py", "AssertionError"),
}
BUILTINS = {"ValueError", "KeyError", "TypeError", "RuntimeError", "FileNotFoundError",
            "NotImplementedError", "FileExistsError", "OSError", "IOError", "Exception",
            "AssertionError", "LookupError", "PermissionError"}


def test_user_facing_errors_come_from_labbook_errors():
    found = set()
    for dirpath, _, files in os.walk(PACKAGE):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(dirpath, file)
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                        and isinstance(node.exc.func, ast.Name) \
                        and node.exc.func.id in BUILTINS:
                    rel = os.path.relpath(path, PACKAGE).replace(os.sep, "/")
                    if "/versions/" not in rel:
                        found.add((rel, node.exc.func.id))
    assert found - ALLOWED_BUILTIN_RAISES == set()
