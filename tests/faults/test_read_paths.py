"""Read commands never leave the store, and the ``labbook`` command ends cleanly.

Run ids given on the command line (``../victim``, absolute paths) and artifact or resource
names read from a stored run (``../../x``, links pointing out) are refused with one line; the
index gets the permission mode of the runs it copies; ``labbook ls | head -1`` ends quietly;
``plot`` writes the format asked; without matplotlib, ``plot`` and ``compare --html`` stop with
one line and leave no file.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import warnings

import pytest

from labbook import Api
from labbook.cli.main import main
from labbook.errors import ArtifactNameError
from labbook.stores.file import FileStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    return env


def _store(path, runs: int = 2) -> FileStore:
    store = FileStore(path)
    for n in range(runs):
        run_id = store.create_run({
            "experiment": {"name": "exp"}, "command": "main", "host": {}, "meta": {},
            "config": {"lr": 0.5}, "status": "RUNNING", "start_time": T0, "resources": [],
            "artifacts": [], "captured_out": "", "info": {}, "heartbeat": None,
            "result": None})
        store.append_metrics(run_id, {"loss": {"steps": [0, 1], "values": [1.0, 0.5],
                                               "timestamps": [T0, T0]}})
        store.update_run(run_id, {"status": "COMPLETED", "stop_time": T0, "result": n})
    return store


@pytest.fixture
def victim(tmp_path):
    """A run-like directory next to the store, and the store."""
    _store(tmp_path / "runs")
    outside = tmp_path / "victim"
    outside.mkdir()
    for name in ("run.json", "config.json", "metrics.jsonl"):
        (outside / name).write_bytes((tmp_path / "runs" / "1" / name).read_bytes())
    return tmp_path


@pytest.mark.parametrize("command", [["show", "{id}"], ["open", "{id}"],
                                     ["compare", "{id}", "1"], ["rm", "{id}", "--yes"],
                                     ["plot", "{id}", "--metric", "loss"]])
@pytest.mark.parametrize("run_id", ["../victim", "{tmp}/victim"])
def test_run_ids_that_leave_the_store_are_refused(victim, capsys, command, run_id):
    store = str(victim / "runs")
    run_id = run_id.format(tmp=victim)
    before = sorted(os.listdir(victim / "victim"))
    argv = [part.format(id=run_id) for part in command] + ["--store", store]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"Error: {run_id!r} is not a run id of the file store {store}: an id names "
                   "one directory inside the store.\n")
    assert sorted(os.listdir(victim / "victim")) == before  # nothing read as a run, or deleted
    assert not (victim / "loss.png").exists()


def _plant(store_dir, run_id: int, artifacts: list) -> None:
    path = store_dir / str(run_id) / "run.json"
    doc = json.loads(path.read_text())
    doc["artifacts"] = artifacts
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("name", ["../../secret.txt", "{tmp}/secret.txt", "link.txt"])
def test_artifact_names_planted_in_a_run_are_refused(tmp_path, capsys, name):
    _store(tmp_path / "runs")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", tmp_path / "runs" / "1" / "link.txt")
    name = name.format(tmp=tmp_path)
    _plant(tmp_path / "runs", 1, [name])
    store = str(tmp_path / "runs")
    assert main(["open", "1", "--store", store]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"Error: Run 1 names an artifact {name!r} that points outside its "
                   f"directory in {store}; refused.\n")
    view = Api(store).run(1)
    with pytest.raises(ArtifactNameError, match="points outside its directory"):
        view.file(name).read_bytes()
    with pytest.raises(ArtifactNameError):
        view.file(name).download(tmp_path / "out")
    # the HTML comparison lists the name as refused and reads nothing
    assert main(["compare", "1", "2", "--store", store, "--html", str(tmp_path / "c.html")]) == 0
    page = (tmp_path / "c.html").read_text()
    assert "(refused: it points outside the run&#x27;s directory)" in page \
        or "(refused: it points outside the run's directory)" in page
    assert "secret" not in page.replace("secret.txt", "")
    assert (tmp_path / "secret.txt").read_text() == "secret"


def test_resources_recorded_outside_the_store_are_not_read(tmp_path):
    _store(tmp_path / "runs")
    (tmp_path / "secret.txt").write_text("secret")
    path = tmp_path / "runs" / "1" / "run.json"
    doc = json.loads(path.read_text())
    doc["resources"] = [["data.txt", "../secret.txt"], ["abs.txt", str(tmp_path / "secret.txt")]]
    path.write_text(json.dumps(doc))
    for resource in Api(str(tmp_path / "runs")).run(1).resources:
        with pytest.raises(ArtifactNameError, match="outside the store .*; refused"):
            resource.read_bytes()


def test_the_index_has_the_mode_of_the_runs_it_indexes(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        _store(tmp_path / "runs")
        assert main(["ls", str(tmp_path / "runs")]) == 0
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "runs" / "1" / "run.json").stat().st_mode)
    assert mode == 0o640  # the umask applies to files replaced atomically as to others
    assert stat.S_IMODE((tmp_path / "runs" / "1" / "metrics.jsonl").stat().st_mode) == 0o640
    index = tmp_path / "runs" / ".labbook"
    assert stat.S_IMODE((index / "index.jsonl").stat().st_mode) == mode
    assert stat.S_IMODE(index.stat().st_mode) == \
        stat.S_IMODE((tmp_path / "runs" / "1").stat().st_mode) == 0o750


def test_a_private_store_gets_a_private_index(tmp_path, capsys):
    _store(tmp_path / "runs")
    for directory in (tmp_path / "runs" / "1", tmp_path / "runs" / "2"):
        directory.chmod(0o700)
        for name in os.listdir(directory):
            (directory / name).chmod(0o600)
    assert main(["ls", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["2", "exp", "COMPLETED"]
    index = tmp_path / "runs" / ".labbook"
    assert stat.S_IMODE((index / "index.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE(index.stat().st_mode) == 0o700


def test_a_closed_standard_output_ends_quietly(tmp_path):
    """``labbook ls | head -1``: the reader went away; no BrokenPipeError traceback."""
    _store(tmp_path / "runs")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before labbook writes a byte
    try:
        proc = subprocess.run([sys.executable, "-m", "labbook.cli.main", "ls",
                               str(tmp_path / "runs")], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141


def test_an_unknown_command_is_named_with_the_close_match(capsys):
    assert main(["lst"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("Error: unknown command 'lst'; did you mean 'ls'? Run 'labbook --help' for "
                   "the commands.\n")


@pytest.mark.parametrize("argv, line", [
    (["ls", "--limt=3"], "Error: 'labbook ls' has no option '--limt'; did you mean '--limit'?"),
    (["export", "runs"], "Error: 'labbook export' does not take the argument 'runs'."),
    (["show"], "Error: 'labbook show' needs more arguments."),
    (["compare", "1"], "Error: 'labbook compare' needs more arguments."),
    (["rm", "1", "2"], "Error: 'labbook rm' does not take the argument '2'."),
])
def test_a_known_command_used_wrongly_names_the_mistake_and_its_usage(capsys, argv, line):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == line
    assert lines[1] == "Usage:" and lines[2].startswith(f"  labbook {argv[0]} ")
    assert not [x for x in lines[2:] if x.startswith("  labbook ") and
                not x.startswith(f"  labbook {argv[0]} ")]  # only this command's usage


def test_help_of_one_command_is_its_usage(capsys):
    assert main(["show", "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[:2] == ["Usage:", "  labbook show (ID | latest) [--store=URL]"]


MAGIC = {"png": b"\x89PNG\r\n", "pdf": b"%PDF-", "svg": b"<?xml", "html": b"<!DOCTYPE html>"}


@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_plot_writes_the_format_its_suffix_names(tmp_path, capsys, fmt):
    _store(tmp_path / "runs")
    out = tmp_path / f"loss.{fmt}"
    assert main(["plot", "1", "2", "--metric", "loss", "--store", str(tmp_path / "runs"),
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"Wrote {out}\n"
    data = out.read_bytes()
    assert data.startswith(MAGIC[fmt])
    if fmt in ("svg", "html"):
        assert b"<svg" in data and b"data:image/png" not in data


def test_plot_refuses_a_suffix_it_cannot_write(tmp_path, capsys):
    _store(tmp_path / "runs")
    out = tmp_path / "loss.jpg"
    assert main(["plot", "1", "--metric", "loss", "--store", str(tmp_path / "runs"),
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"Error: --out {out}: plot writes .png, .svg, .pdf, "
                                       ".html files; name one of those.\n")
    assert not out.exists()


WITHOUT_MATPLOTLIB = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
    "            raise ImportError('No module named ' + repr(name))\n"
    "sys.meta_path.insert(0, Block())\n"
    "from labbook.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


@pytest.mark.parametrize("command,what", [
    (["plot", "1", "--metric", "loss", "--out", "{tmp}/out.png"], "labbook plot"),
    (["plot", "1", "--metric", "loss"], "labbook plot"),
    (["compare", "1", "2", "--html", "{tmp}/out.html"], "compare --html")])
def test_without_matplotlib_one_line_and_no_file(tmp_path, command, what):
    _store(tmp_path / "runs")
    argv = [part.format(tmp=tmp_path) for part in command] + ["--store", str(tmp_path / "runs")]
    before = sorted(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_MATPLOTLIB] + argv,
                          capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"Error: {what} needs matplotlib: pip install 'labbook[plot]'\n"
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("index", ["1", "0"])
def test_a_run_directory_linking_out_of_the_store_is_not_read(victim, capsys, monkeypatch,
                                                              index):
    monkeypatch.setenv("LABBOOK_FILE_INDEX", index)
    store = str(victim / "runs")
    os.symlink(victim / "victim", victim / "runs" / "7")
    assert main(["ls", store, "--order", "_id"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [
        ["1", "exp", "COMPLETED"], ["2", "exp", "COMPLETED"], ["7", "-", "BROKEN"]]
    assert err == (f"Warning: run 7 in {store}: the run's directory is a link to "
                   f"{os.path.realpath(victim / 'victim')}, outside the store; not read\n")
    assert main(["show", "7", "--store", store]) == 1
    assert capsys.readouterr().err.startswith(f"Error: run 7 in {store}: the run's directory")
    # nothing behind the link is read: no metrics, no artifact
    file_store = FileStore(store, index=index == "1")
    with pytest.warns(Warning):
        assert file_store.get(7)["status"] == "BROKEN"
    assert file_store.read_history(7) == ({}, [])
    with pytest.raises(ValueError, match="outside the store"):
        file_store.open_artifact(7, "run.json")
    with pytest.raises(ValueError, match="outside the store"):
        list(file_store.iter_series(7, "loss"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the index warns again as it builds the entry
        assert file_store.last_values([7]) == {7: {}}


@pytest.mark.parametrize("field,entry,what", [
    ("resources", [["data.txt", "../secret.txt"]], "'../secret.txt'"),
    ("artifacts", ["../../secret.txt"], "'../../secret.txt'")])
def test_sync_never_copies_a_file_from_outside_the_store(tmp_path, capsys, field, entry, what):
    _store(tmp_path / "runs")
    (tmp_path / "secret.txt").write_text("secret")
    path = tmp_path / "runs" / "1" / "run.json"
    doc = json.loads(path.read_text())
    doc[field] = entry
    path.write_text(json.dumps(doc))
    assert main(["sync", str(tmp_path / "runs"), f"file://{tmp_path / 'copy'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: Run 1 could not be copied to ") and what in err \
        and "refused" in err and len(err.splitlines()) == 1
    found = [p for p, _, files in os.walk(tmp_path / "copy") for f in files
             if open(os.path.join(p, f), "rb").read() == b"secret"]
    assert found == []
