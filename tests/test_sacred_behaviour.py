"""Details in which labbook behaves as Sacred 0.8.7 does (issue 13, "a true drop-in")."""
import pytest

from labbook import Experiment


# -- option hooks --------------------------------------------------------------------------------
def test_option_hook_sees_sacreds_dashed_keys_and_its_changes_count():
    ex = Experiment("opts")
    seen = {}

    @ex.option_hook
    def hook(options):
        seen.update(options)
        options["--name"] = "hooked"
        options["--beat-interval"] = 2.5

    @ex.main
    def main(_run):
        return _run.meta_info["name"], _run.meta_info["options"]["--beat-interval"]

    run = ex.run(options={"--comment": "hello", "--enforce_clean": False})
    assert seen["--comment"] == "hello"
    assert seen["--name"] is None and seen["--unobserved"] is False
    assert "--beat-interval" in seen and "--print-config" in seen and "--enforce_clean" in seen
    assert not [key for key in seen if not key.startswith("--")]
    assert run.result == ("hooked", 2.5)


def test_option_hook_on_the_command_line_sees_dashed_keys():
    ex = Experiment("opts_cli")
    seen = {}

    @ex.option_hook
    def hook(options):
        seen.update(options)

    @ex.main
    def main():
        return 1

    run = ex.run_commandline(["prog", "-c", "from the line", "-n", "nm"])
    assert run.result == 1
    assert seen["--comment"] == "from the line" and seen["--name"] == "nm"


def test_option_hook_adding_an_unknown_option_is_a_clear_error():
    from labbook.errors import OptionValueError

    ex = Experiment("opts_bad")

    @ex.option_hook
    def hook(options):
        options["--nmae"] = "x"

    @ex.main
    def main():
        return 1

    with pytest.raises(OptionValueError, match=r"Unknown run option '--nmae'\. Did you mean"):
        ex.run()


# -- the file store's layout ---------------------------------------------------------------------
def _file_experiment(tmp_path, name="fs"):
    from labbook.observers import FileStorageObserver

    ex = Experiment(name)
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))
    return ex


def test_cout_txt_exists_from_the_start_of_a_run(tmp_path):
    ex = _file_experiment(tmp_path)
    seen = {}

    @ex.main
    def main(_run):
        run_dir = tmp_path / "runs" / str(_run._id)
        seen["files"] = sorted(p.name for p in run_dir.iterdir())
        print("hello from the run")

    run = ex.run()
    assert "cout.txt" in seen["files"]
    cout = (tmp_path / "runs" / str(run._id) / "cout.txt").read_text()
    assert "hello from the run" in cout


def test_resources_directory_only_when_a_resource_is_added(tmp_path):
    ex = _file_experiment(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")

    @ex.main
    def main(_run, add=False):
        if add:
            _run.add_resource(str(data))

    ex.run()
    assert not (tmp_path / "runs" / "_resources").exists()
    run = ex.run(config_updates={"add": True})
    stored = list((tmp_path / "runs" / "_resources").iterdir())
    assert [p.read_text() for p in stored] == ["a,b\n1,2\n"]
    assert run.observers[0].store.get(run._id)["resources"][0][0] == str(data)


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_fail_trace_given_as_text_is_stored_as_text(tmp_path, kind, capsys):
    import json

    from labbook import Api
    from labbook.cli.main import main as labbook_main
    from labbook.clock import utcnow
    from labbook.observers.registry import observer_for_url

    if kind == "sqlite":
        pytest.importorskip("sqlalchemy")
    url = f"file://{tmp_path / 'runs'}" if kind == "file" else f"sqlite:///{tmp_path / 'l.db'}"
    observer = observer_for_url(url)
    trace = "Traceback (most recent call last):\nValueError: from a string\n"
    run_id = observer.started_event({"name": "raw", "sources": [], "dependencies": []}, "main",
                                    {"hostname": "h"}, utcnow(), {"x": 1}, {"command": "main"},
                                    None)
    observer.failed_event(utcnow(), trace)
    if kind == "file":
        stored = json.loads((tmp_path / "runs" / str(run_id) / "run.json").read_text())
        assert stored["fail_trace"] == trace
    assert observer.store.get(run_id)["fail_trace"] == trace  # not a list of its letters
    view = Api(url).run(run_id)
    assert view.fail_trace == trace and view.status == "FAILED"
    assert view.config == {"x": 1}
    assert labbook_main(["show", str(run_id), "--store", url]) == 0
    out = capsys.readouterr().out
    assert "    ValueError: from a string" in out


# -- experiment.dependencies ---------------------------------------------------------------------
_TWO_RUNS = '''
import json, sys
from labbook import Experiment
from labbook.observers import FileStorageObserver

ex = Experiment("deps")
ex.observers.append(FileStorageObserver(sys.argv[1]))

import labbook.sysmetrics  # noqa: E402
labbook.sysmetrics._PROC = False  # the sampler reads through psutil: imported by the run

@ex.main
def main(_run):
    import time
    time.sleep(0.3)  # a few system-metrics samples: the sampler imports its own packages

first = ex.run(options={"--beat-interval": 0.1}).experiment_info["dependencies"]
second = ex.run(options={"--beat-interval": 0.1}).experiment_info["dependencies"]
import markupsafe  # noqa: E402  an import of the main namespace between runs (a notebook)
third = ex.run(options={"--beat-interval": 0.1}).experiment_info["dependencies"]
print(json.dumps([first, second, third, "psutil" in sys.modules]))
'''


def test_dependencies_are_the_same_for_every_run_of_a_process(tmp_path):
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "two_runs.py"
    script.write_text(_TWO_RUNS)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second, third, sampled = json.loads(proc.stdout.splitlines()[-1])
    assert sampled  # the sampler did import psutil during the first run ...
    assert second == first  # ... and it does not join the second run's list
    assert not [d for d in first if d.lower().startswith("psutil")]
    assert [d for d in third if d not in first] == [
        d for d in third if d.lower().startswith("markupsafe")] != []
    stored = [json.loads((tmp_path / "runs" / str(i) / "run.json").read_text())
              ["experiment"]["dependencies"] for i in (1, 2)]
    assert stored == [first, first]


def test_option_hook_bare_names_reach_the_same_entries():
    ex = Experiment("opts_bare")

    @ex.option_hook
    def hook(options):
        assert "comment" in options and options["comment"] == options["--comment"] == "c"
        options["beat_interval"] = 3.0  # the entry '--beat-interval'
        del options["name"]
        assert "--name" not in options and options.get("name", "gone") == "gone"

    @ex.main
    def main(_run):
        return _run.meta_info["options"]["--beat-interval"], _run.meta_info.get("name")

    assert ex.run(options={"--comment": "c", "--name": "n"}).result == (3.0, None)
