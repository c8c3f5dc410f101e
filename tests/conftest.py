import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _journals_under_tmp_path(tmp_path, monkeypatch):
    """Store observers journal what an unreachable store missed (labbook_failed_runs in the
    working directory by default): in tests, under the test's own tmp_path."""
    monkeypatch.setenv("LABBOOK_FAILURE_DIR", str(tmp_path / "labbook_failed_runs"))
