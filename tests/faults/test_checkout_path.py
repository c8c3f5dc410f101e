"""The suite passes whatever the checkout directory is called: ``git clone`` names it
``labbook``, which once made ``test_failed_run`` fail (it looked for ``/labbook/`` anywhere
in a traceback, and found the checkout's own name in the script's path)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_failed_run_passes_in_a_checkout_named_labbook(tmp_path):
    checkout = tmp_path / "labbook"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.join(ROOT, "labbook"), checkout / "labbook", ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "tests", "cli"), checkout / "tests" / "cli", ignore=ignore)
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), checkout / "tests" / "conftest.py")
    shutil.copy(os.path.join(ROOT, "setup.cfg"), checkout / "setup.cfg")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/cli/test_cli_scripts.py::test_failed_run"],
                          cwd=checkout, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
