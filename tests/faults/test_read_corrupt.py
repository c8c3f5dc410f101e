"""A damaged run never breaks, hides or silently changes the listing of a file store.

Every readable run is listed; a run whose ``run.json`` cannot be read is listed as BROKEN;
every damaged file is named in one ``Warning:`` line; what is readable is kept (the points of a
``metrics.jsonl`` before a truncated line); ``show`` of a BROKEN run is one ``Error:`` line,
exit 1. Nothing is written to the damaged run, and no broken entry lands in the index file.
"""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from labbook import Api
from labbook.cli.main import main
from labbook.errors import CorruptRunWarning
from labbook.stores.file import FileStore

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def _make_store(path) -> str:
    """Three COMPLETED runs with two heartbeats of metrics each, written by the file store."""
    store = FileStore(path)
    for n in range(3):
        run_id = store.create_run({
            "experiment": {"name": "exp"}, "command": "main", "host": {}, "meta": {},
            "config": {"lr": 0.1 * (n + 1)}, "status": "RUNNING", "start_time": T0,
            "resources": [], "artifacts": [], "captured_out": f"output {n}\n", "info": {},
            "heartbeat": None, "result": None})
        for beat in range(2):
            store.append_metrics(run_id, {"loss": {
                "steps": [2 * beat, 2 * beat + 1], "values": [1.0 + beat, 0.5 + beat],
                "timestamps": [T0, T0]}})
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0, "result": n})
    return str(path)


def _truncate(path, keep: int) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[:keep])


# each damage: (what it does to run 2, the warning naming it, run 2's status in the listing)
DAMAGES = {
    "run.json is []": (lambda d: open(d / "run.json", "w").write("[]"),
                       "run.json holds a list, not a JSON object", "BROKEN"),
    "run.json truncated": (lambda d: _truncate(d / "run.json", 40),
                           "run.json is not valid JSON (", "BROKEN"),
    "config.json broken": (lambda d: open(d / "config.json", "w").write('{"lr": '),
                           "config.json is not valid JSON (Expecting value: line 1 column 8)",
                           "COMPLETED"),
    "metrics.jsonl last line truncated": (
        lambda d: _truncate(d / "metrics.jsonl", os.path.getsize(d / "metrics.jsonl") - 12),
        "metrics.jsonl line 2 is not valid JSON (", "COMPLETED"),
}


@pytest.fixture(params=["index on", "index off"])
def index(request, monkeypatch):
    monkeypatch.setenv("LABBOOK_FILE_INDEX", "1" if request.param == "index on" else "0")
    return request.param


def _snapshot(directory) -> dict:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))
            if (directory / name).is_file()}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_ls_lists_every_run_and_names_the_damaged_file(tmp_path, capsys, index, damage):
    store = _make_store(tmp_path / "runs")
    damage_fn, problem, status = DAMAGES[damage]
    index_file = tmp_path / "runs" / ".labbook" / "index.jsonl"

    def indexed_entries_of_run_2():
        if not index_file.exists():
            return []
        return [line for line in index_file.read_text().splitlines()
                if json.loads(line)["id"] == "2"]

    if index == "index on":  # an index built while the run was healthy must not hide it
        assert main(["ls", store]) == 0
        capsys.readouterr()
    healthy = indexed_entries_of_run_2()
    damage_fn(tmp_path / "runs" / "2")
    before = _snapshot(tmp_path / "runs" / "2")
    assert main(["ls", store, "--order", "_id"]) == 0
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [
        ("1", "COMPLETED"), ("2", status), ("3", "COMPLETED")]
    lines = err.splitlines()
    if index == "index off" and damage.startswith("metrics"):
        assert lines == []  # without the index, ls reads no metrics: nothing broken was read
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith(f"Warning: run 2 in {store}: {problem}")
        # a second listing tells it again (the broken run is not cached as healthy)
        assert main(["ls", store]) == 0
        assert capsys.readouterr().err.splitlines() == lines
    # export lists it too (its summary reads the metrics), with one line
    assert main(["export", "--store", store, "--format", "json", "--order", "_id"]) == 0
    out, err = capsys.readouterr()
    assert [(r["id"], r["status"]) for r in json.loads(out)] == [
        (1, "COMPLETED"), (2, status), (3, "COMPLETED")]
    assert len(err.splitlines()) == 1
    assert err.startswith(f"Warning: run 2 in {store}: {problem}")
    # nothing was written to the damaged run, and the index holds no entry of it
    assert _snapshot(tmp_path / "runs" / "2") == before
    assert indexed_entries_of_run_2() == healthy


def test_the_readable_points_before_a_truncated_line_are_kept(tmp_path, capsys, index):
    store = _make_store(tmp_path / "runs")
    DAMAGES["metrics.jsonl last line truncated"][0](tmp_path / "runs" / "2")
    assert main(["show", "2", "--store", store]) == 0
    out, err = capsys.readouterr()
    assert "    loss = 0.5  (2 points)" in out.splitlines()
    assert err.splitlines() == [
        f"Warning: run 2 in {store}: metrics.jsonl line 2 is not valid JSON (Unterminated "
        "string starting at: line 1 column 88), truncated; its points are left out"]
    with pytest.warns(CorruptRunWarning, match="metrics.jsonl line 2"):
        history = Api(store).run(2).history(pandas=False)
    assert [row["loss"] for row in history] == [1.0, 0.5]


@pytest.mark.parametrize("damage", ["run.json is []", "run.json truncated"])
def test_show_of_a_broken_run_is_one_error_line(tmp_path, capsys, index, damage):
    store = _make_store(tmp_path / "runs")
    damage_fn, problem, _ = DAMAGES[damage]
    damage_fn(tmp_path / "runs" / "2")
    assert main(["show", "2", "--store", store]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"Error: run 2 in {store}: {problem}")
    assert main(["show", "3", "--store", store]) == 0  # the others still show
    assert capsys.readouterr().err == ""


def test_show_of_a_run_with_a_broken_config_shows_the_rest(tmp_path, capsys, index):
    store = _make_store(tmp_path / "runs")
    DAMAGES["config.json broken"][0](tmp_path / "runs" / "2")
    assert main(["show", "2", "--store", store]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "Run 2 of exp (main): COMPLETED"
    assert err == (f"Warning: run 2 in {store}: config.json is not valid JSON (Expecting value:"
                   " line 1 column 8)\n")


def test_binary_output_is_shown_with_replacement_characters(tmp_path, capsys, index):
    store = _make_store(tmp_path / "runs")
    (tmp_path / "runs" / "2" / "cout.txt").write_bytes(b"ok \xff\xfe end\n")
    assert main(["ls", store, "--order", "_id"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["COMPLETED"] * 3
    assert main(["export", "--store", store, "--format", "csv"]) == 0
    capsys.readouterr()
    with pytest.warns(CorruptRunWarning, match=r"run 2 in .*: cout.txt is not UTF-8 text "
                                               r"\(byte 3\)"):
        text = Api(store).run(2).captured_out
    assert text == "ok \ufffd\ufffd end\n"
    assert (tmp_path / "runs" / "2" / "cout.txt").read_bytes() == b"ok \xff\xfe end\n"


def test_the_api_lists_a_broken_run_with_a_warning(tmp_path, index):
    store = _make_store(tmp_path / "runs")
    DAMAGES["run.json truncated"][0](tmp_path / "runs" / "2")
    with pytest.warns(CorruptRunWarning, match="run 2 in .*: run.json is not valid JSON"):
        runs = Api(store).runs(order="_id")
        listed = [(r.id, r.status) for r in runs]
    assert listed == [(1, "COMPLETED"), (2, "BROKEN"), (3, "COMPLETED")]
    with pytest.warns(CorruptRunWarning, match="run 2 in .*: run.json is not valid JSON"):
        assert [r.id for r in Api(store).runs({"status": "BROKEN"})] == [2]


def test_sync_copies_the_readable_runs_and_names_the_damaged_ones(tmp_path, capsys, index):
    store = _make_store(tmp_path / "runs")
    DAMAGES["config.json broken"][0](tmp_path / "runs" / "2")
    dst = f"file://{tmp_path / 'copy'}"
    assert main(["sync", store, dst]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].endswith("copied 2 new run(s), updated 0, 0 unchanged (8 metric "
                                        "point(s), 0 file(s)); 1 damaged run(s) not copied: 2")
    assert err.startswith(f"Warning: run 2 in {store}: config.json is not valid JSON")
    assert [r.doc["config"] for r in Api(dst).runs(order="_id")] == [{"lr": 0.1},
                                                                     {"lr": 0.30000000000000004}]
