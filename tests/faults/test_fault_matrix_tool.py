"""tools/fault_matrix.py: the tables it prints from what the fault tests measured, and the
figures the outage and secret tests hand it (run here on the file store, no server needed)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        "fault_matrix", os.path.join(ROOT, "tools", "fault_matrix.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_are_ordered_by_store_and_moment_and_count_what_was_lost():
    tool = _tool()
    rows = [
        {"store": "mongo", "when": "end", "recovers": "no", "logged": 300, "journaled": 0,
         "stored": 300, "same_as_undisturbed": True},
        {"store": "file", "when": "mid", "recovers": "no", "logged": 300, "journaled": 200,
         "stored": 299, "same_as_undisturbed": False},
        {"store": "file", "when": "start", "recovers": "yes", "logged": 300, "journaled": 0,
         "stored": 300, "same_as_undisturbed": True},
    ]
    lines = tool.outage_table(rows)
    assert lines[2:5] == ["| file | start | yes | 300 | 0 | 300 | yes |",
                          "| file | mid | no | 300 | 200 | 299 | NO |",
                          "| mongo | end | no | 300 | 0 | 300 | yes |"]
    assert lines[-1] == "\n3 outages, 900 points logged, 1 lost."
    assert tool.secret_table([{"secret": "file (-F)", "bytes": 12345, "hits": 0}])[2] == \
        "| file (-F) | 12,345 | 0 |"


def test_the_file_store_tests_hand_their_figures_to_the_tool(tmp_path):
    figures = tmp_path / "figures.jsonl"
    env = dict(os.environ, LABBOOK_FAULT_FIGURES=str(figures),
               LABBOOK_OUTAGE_POINTS_PER_PHASE="5")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/faults/test_outages.py::test_file_store_directory_unwritable[mid-no]",
         "tests/faults/test_secrets_not_stored.py::test_file_store"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in figures.read_text().splitlines()]
    # phases 2 and 3 at least (phase 1's points normally reached the store before it went)
    assert rows[0].pop("journaled") in (20, 30) and rows[0].pop("events_journaled") >= 1
    assert rows[0] == {"store": "file", "when": "mid", "recovers": "no", "logged": 30,
                       "stored": 30, "same_as_undisturbed": True, "status": "COMPLETED"}
    assert rows[1]["secret"].startswith("file (-F") and rows[1]["hits"] == 0
    assert rows[1]["bytes"] > 1000
