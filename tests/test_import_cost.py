"""``import labbook`` stays light: heavy libraries load only where they are used."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ["pymongo", "sqlalchemy", "git", "pandas", "numpy", "matplotlib", "jsonpickle", "yaml",
         "psutil", "docopt"]


def test_import_labbook_loads_no_heavy_module():
    code = ("import sys, json, labbook, labbook.observers, labbook.utils; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert json.loads(out) == []


def test_defining_an_experiment_loads_no_heavy_module():
    code = ("import sys, json\n"
            "from labbook import Experiment, Ingredient\n"
            "ing = Ingredient('data', interactive=True)\n"
            "ex = Experiment('x', ingredients=[ing], interactive=True)\n"
            "@ex.config\n"
            "def cfg():\n"
            "    a = 1\n"
            "@ex.main\n"
            "def main(a):\n"
            "    return a\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert json.loads(out) == []


def test_package_version_matches_the_distribution():
    import tomllib

    import labbook

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        assert tomllib.load(fh)["project"]["version"] == labbook.__version__


def test_import_labbook_loads_only_the_standard_library():
    # an allow-list, not a deny-list: any third-party module is a regression
    code = ("import sys, json\n"
            "before = set(sys.modules)\n"
            "import labbook, labbook.observers, labbook.utils, labbook.errors\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(json.dumps(sorted(m for m in new if m != 'labbook'\n"
            "                        and m.lstrip('_') not in sys.stdlib_module_names\n"
            "                        and m not in sys.stdlib_module_names)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert json.loads(out) == []
