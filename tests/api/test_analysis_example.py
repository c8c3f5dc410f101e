"""examples/analysis.py runs as a script and prints what its analysis found."""
from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_analysis_example(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp_path))
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "analysis.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "runs with accuracy > 0.9: [4, 3]"
    assert lines[1] == "tagged fast: [3, 4]"
    assert lines[2].split() == ["id", "config.lr", "summary.accuracy"]
    assert [line.split() for line in lines[3:7]] == [
        ["1", "0.05", "0.6415"], ["2", "0.10", "0.8784"], ["3", "0.30", "0.9992"],
        ["4", "0.50", "1.0000"]]
    assert lines[7] == "run 4 loss at steps [0, 5, 10, 14, 19]"
    match = re.fullmatch(r"comparison written to (.+comparison\.html)", lines[8])
    assert match and match.group(1).startswith(str(tmp_path))
    with open(match.group(1), encoding="utf-8") as fh:
        page = fh.read()
    assert page.count('<img src="data:image/png;base64,') == 2  # accuracy and loss
    assert "Completed after 0:00:0" in proc.stderr
