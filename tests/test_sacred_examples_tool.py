"""tools/sacred_examples.py: what it changes in an example and what it normalises away.

Running Sacred itself needs Sacred's interpreter; docs/sacred_compatibility.md shows the table
of the last pass. These tests cover the tool's own logic with labbook alone.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "sacred_examples_tool", os.path.join(ROOT, "tools", "sacred_examples.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_imports_of_sacred_are_rewritten():
    tool = load_tool()
    text = ("from sacred import Experiment\n"
            "from sacred.observers import FileStorageObserver\n"
            "    import sacred.utils as su\n"
            "import sacredness\n"
            "print('sacred stays in text')\n")
    assert tool.rewrite_imports(text) == (
        "from labbook import Experiment\n"
        "from labbook.observers import FileStorageObserver\n"
        "    import labbook.utils as su\n"
        "import sacredness\n"
        "print('sacred stays in text')\n")


def test_what_differs_between_two_runs_is_normalised(tmp_path):
    tool = load_tool()
    folder = str(tmp_path)
    text = (f'File "{folder}/ex.py", line 3\n'
            "INFO - ex - Completed after 0:00:01\n"
            "  seed = 912345678\n"
            "  seed = 42                       # the random seed\n"
            "started 2026-12-06T23:59:01.123456\n"
            "INFO - ex - Result: 0.9736842105263158\n"
            "<object at 0x7f3a2b1c9d40>   \n")
    assert tool.normalise(text, folder) == (
        'File "DIR/ex.py", line 3\n'
        "INFO - ex - Completed after H:MM:SS\n"
        "  seed = SEED\n"
        "  seed = SEED  # the random seed\n"
        "started TIME\n"
        "INFO - ex - Result: RESULT\n"
        "<object at 0xADDR>\n")


def test_a_folder_without_examples_is_refused(tmp_path, capsys):
    tool = load_tool()
    assert tool.main([str(tmp_path), "--sacred-python", sys.executable]) == 2
    assert capsys.readouterr().err == f"no Sacred examples found in {tmp_path}\n"


def test_both_runs_compared_and_tabled(tmp_path, capsys):
    # an "example" without Sacred imports runs the same under both interpreters
    (tmp_path / "01_hello_world.py").write_text("import sys\nprint('hi', sys.argv[1:])\n")
    tool = load_tool()
    assert tool.main([str(tmp_path), "--sacred-python", sys.executable,
                      "--only", "01_hello_world.py"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^01_hello_world.py -l WARNING +same$", out, re.M)
    count = len(tool.INVOCATIONS["01_hello_world.py"])
    assert f"{count} of {count} command lines give the same output" in out
