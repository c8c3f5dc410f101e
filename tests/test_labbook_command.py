"""The ``labbook`` console script (ls, show, --version) over a file store."""
import json

import pytest

from labbook import Experiment, __version__
from labbook.cli.main import main
from labbook.observers import FileStorageObserver


@pytest.fixture
def store(tmp_path):
    ex = Experiment("cli_store")
    ex.add_config(lr=0.1)
    ex.observers.append(FileStorageObserver(tmp_path))

    @ex.main
    def main_(lr, _run):
        _run.log_scalar("loss", lr)
        return lr * 10

    ex.run(options={"--no-system-metrics": True})
    ex.run(config_updates={"lr": 0.5}, options={"--no-system-metrics": True})
    return tmp_path


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"labbook {__version__}"


def test_ls_lists_runs_newest_first(store, capsys):
    assert main(["ls", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "START", "DURATION", "RESULT"]
    assert [line.split()[0] for line in lines[1:]] == ["2", "1"]
    assert "COMPLETED" in lines[1] and lines[1].rstrip().endswith("5.0")


def test_ls_filter_and_bad_filter(store, capsys):
    assert main(["ls", str(store), "--filter", json.dumps({"config.lr": {"$lt": 0.2}})]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["1"]
    assert main(["ls", str(store), "--filter", "{oops"]) == 2
    assert "--filter is not valid JSON" in capsys.readouterr().err
    assert main(["ls", str(store), "--filter", '{"config.lr": {"$almost": 1}}']) == 2
    assert "Unknown operator '$almost' on 'config.lr'" in capsys.readouterr().err


def test_show_a_run_and_an_unknown_id(store, capsys):
    assert main(["show", "2", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Run 2 of cli_store (main_): COMPLETED")
    assert "lr = 0.5" in out and "loss = 0.5  (1 points)" in out
    assert main(["show", "9", "--store", str(store)]) == 1
    assert capsys.readouterr().err.strip() == f"Error: No run with id 9 in {store}."


def test_usage_error(capsys):
    # an unknown command is named in one line; a known one used wrongly names the mistake
    # and shows its usage
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err == ("Error: unknown command 'frobnicate'. Run 'labbook "
                                       "--help' for the commands.\n")
    assert main(["ls", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: 'labbook ls' has no option '--bogus'") and "Usage:" in err
