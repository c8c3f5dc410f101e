import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _journals_under_tmp_path(tmp_path, monkeypatch):
    """Store observers journal what an unreachable store missed (labbook_failed_runs in the
    working directory by default): in tests, under the test's own tmp_path."""
    monkeypatch.setenv("LABBOOK_FAILURE_DIR", str(tmp_path / "labbook_failed_runs"))


@pytest.fixture(autouse=True)
def _no_run_left_active():
    """A test that fails between labbook.start_run and the run's end must not leave the run
    active for the tests after it (the helpers and captured output would find it)."""
    yield
    imperative = sys.modules.get("labbook.imperative")
    if imperative is not None:
        for run in list(imperative._started):
            try:
                run.finish()
            except Exception:
                imperative._started.remove(run)
