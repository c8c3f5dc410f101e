"""Misspelled store URLs fail with the right spelling shown, for writing and for reading, and
create nothing (``sqlite:/x.db`` used to make a directory, ``file://`` wrote into the current
directory, ``sqlite://`` discarded the run)."""
from __future__ import annotations

import os

import pytest

import labbook
from labbook.errors import StoreURLError, UnknownStoreError
from tests.faults.safety_support import error_lines, run_labbook, run_script, user_code_ran

TYPOS = [
    ("sqlite:/x.db", "Error: 'sqlite:/x.db' is not a store URL (it would be taken for a "
                     "directory path): did you mean sqlite:///x.db?"),
    ("sqlite:x.db", "Error: 'sqlite:x.db' is not a store URL (it would be taken for a "
                    "directory path): did you mean sqlite:///x.db?"),
    ("sqlite://x.db", "Error: 'sqlite://x.db' names a host, not a file: did you mean "
                      "sqlite:///x.db?"),
    ("file://", "Error: 'file://' names no directory (it would write into the current one): "
                "write file://DIR, file:///absolute/dir or just the directory, e.g. "
                "file://runs."),
    ("sqllite:///x.db", "Error: No store for URL scheme 'sqllite' (in sqllite:///x.db). Known "
                        "schemes: file, gcs, gs, mariadb, memory, mongodb, mysql, postgres, "
                        "postgresql, s3, sqlite; "
                        "a plain directory path means a file store. Did you mean "
                        "sqlite:///x.db?"),
    ("postgressql://u:secretpw@h/db", "Error: No store for URL scheme 'postgressql' (in "
                                      "postgressql://u:****@h/db). Known schemes: file, "
                                      "gcs, gs, mariadb, memory, mongodb, mysql, postgres, "
                                      "postgresql, s3, sqlite; "
                                      "a plain directory path means a file store. Did you "
                                      "mean postgresql://u:****@h/db?"),
]


@pytest.mark.parametrize("flag", ["--store", "-s"])
@pytest.mark.parametrize("url,line", TYPOS, ids=[t[0] for t in TYPOS])
def test_a_misspelled_url_stops_the_run_with_the_spelling(tmp_path, flag, url, line):
    proc = run_script(tmp_path, flag, url)
    assert proc.returncode == 1, proc.stderr
    assert error_lines(proc) == [line]
    assert not user_code_ran(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["safety_exp.py"]  # nothing created


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_for_writing(tmp_path, url):
    proc = run_script(tmp_path, "--store", url)
    assert proc.returncode == 1
    assert error_lines(proc) == [
        f"Error: '{url}' is an in-memory SQLite database, which would discard the run when "
        "the process ends: use a file, sqlite:///path/to/labbook.db."]
    assert not user_code_ran(tmp_path)
    with pytest.raises(StoreURLError):
        labbook.observers.create(url)
    with pytest.raises(StoreURLError):
        labbook.observers.SqlObserver(url)


def test_file_url_without_directory_on_F_and_in_env(tmp_path):
    proc = run_script(tmp_path, "-F", "file://")
    assert proc.returncode == 1 and error_lines(proc)[0].startswith("Error: 'file://' names no")
    # -F takes a directory, but 'sqlite:/x.db' there is a misspelled URL, not a directory
    proc = run_script(tmp_path, "-F", "sqlite:/x.db")
    assert proc.returncode == 1
    assert error_lines(proc) == [TYPOS[0][1]]
    proc = run_script(tmp_path, env={"LABBOOK_STORE": "sqlite:/x.db"})
    assert proc.returncode == 1
    assert error_lines(proc) == [TYPOS[0][1]]
    assert sorted(os.listdir(tmp_path)) == ["safety_exp.py"]


@pytest.mark.parametrize("url,line", TYPOS, ids=[t[0] for t in TYPOS])
def test_reading_a_misspelled_url_fails_too(tmp_path, url, line):
    proc = run_labbook(tmp_path, "ls", url)
    assert proc.returncode == 1
    assert error_lines(proc) == [line]
    with pytest.raises((StoreURLError, UnknownStoreError)) as info:
        labbook.Api(url)
    assert f"Error: {info.value}" == line
    assert os.listdir(tmp_path) == []


def test_the_right_spelling_works(tmp_path):
    # what the message proposes records the run (and the data is there to read)
    proc = run_script(tmp_path, "--store", "sqlite:///x.db")
    assert proc.returncode == 0, proc.stderr
    with labbook.Api(f"sqlite:///{tmp_path / 'x.db'}") as api:
        assert [run.doc["config"]["x"] for run in api.runs()] == [1]
