"""Resuming a run after its process was killed: start_run(run_id=, resume=) and --resume, on
every store kind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import labbook
from labbook import Api
from labbook.errors import RunExistsError, RunNotFoundError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FIRST = """
import os, time
import labbook
run = labbook.start_run("resumable", config={"lr": 0.1}, store=os.environ["STORE"],
                        run_id=int(os.environ["RUN_ID"]), beat_interval=0.1,
                        tags=["first"], system_metrics=False)
for i in range(4):
    labbook.log({"loss": 1.0 / (i + 1)})
    labbook.log_scalar("epoch_time", 10 + i)
labbook.log_param("phase", 1)
print("part one", flush=True)
time.sleep(0.6)  # beats store everything
print("stored", flush=True)
time.sleep(600)
"""

EXPERIMENT = """
import labbook
from labbook import Experiment
ex = Experiment("resumable")

@ex.config
def cfg():
    lr = 0.1

@ex.automain
def main(_run, lr):
    print("part two, lr", lr)
    for i in range(2):
        _run.log({"loss": 0.1})
        _run.log_scalar("epoch_time", 20 + i)
    return "done"
"""


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, **extra)
    env.pop("LABBOOK_STORE", None)
    return env


def crash_a_run(tmp_path, url: str, run_id: int) -> None:
    """A process starts run ``run_id``, logs, and is killed with SIGKILL."""
    script = tmp_path / "first.py"
    script.write_text(FIRST)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            env=_env(STORE=url, RUN_ID=str(run_id)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "part one\n", proc.stderr.read()
        assert proc.stdout.readline() == "stored\n"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def quick_death(monkeypatch):
    """Runs silent for 0.5 s (3 beats of 0.1 s) count as DIED."""
    monkeypatch.setattr("labbook.stores.query.MIN_SILENCE", 0.5)
    time.sleep(0.6)


def series(view, key):
    frame = view.history(key, samples=None)
    return list(frame["_step"]), list(frame[key])


def crash_in_process(url: str, run_id: int) -> None:
    """The first part of FIRST in this process, then the run abandoned as a killed process
    leaves it: no final events, the heartbeat stopped (a memory:// store lives in one
    process, so no other process can resume from it)."""
    from labbook import imperative

    run = labbook.start_run("resumable", config={"lr": 0.1}, store=url, run_id=run_id,
                            beat_interval=0.1, tags=["first"], system_metrics=False)
    for i in range(4):
        labbook.log({"loss": 1.0 / (i + 1)})
        labbook.log_scalar("epoch_time", 10 + i)
    labbook.log_param("phase", 1)
    print("part one")
    run._beat_stop.set()
    run._beat_thread.join()
    run._beat()  # what the beats had stored before the kill
    run._stack.pop_all()  # leave the run without ending it ...
    run._output = None
    run._unexport()  # (its id was exported for worker processes)
    imperative._started.remove(run)
    from labbook.context import _active, _current

    _active.remove(run)  # ... and no longer the active one, as after a kill
    _current.set(None)


def test_start_run_resumes_a_killed_run_on_every_store(empty_url, tmp_path, monkeypatch):
    if empty_url.startswith("memory://"):
        crash_in_process(empty_url, 41)
    else:
        crash_a_run(tmp_path, empty_url, 41)
    monkeypatch.setattr("labbook.stores.query.MIN_SILENCE", 0.5)
    time.sleep(0.6)
    assert Api(empty_url).run(41).status == "DIED"
    with labbook.start_run("resumable", store=empty_url, run_id=41, resume="must",
                           config={"lr": 0.1}, tags=["second"], system_metrics=False) as run:
        assert run.config["lr"] == 0.1
        print("part two")
        labbook.log({"loss": 0.1})
        labbook.log_scalar("epoch_time", 20)
    got = Api(empty_url).run(41)
    assert got.status == "COMPLETED"
    assert series(got, "loss") == ([0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.1])
    assert series(got, "epoch_time") == ([0, 1, 2, 3, 4], [10, 11, 12, 13, 20])
    assert got.info["params"] == {"phase": 1}
    assert got.tags == ["first", "second"]
    assert [r["previous_status"] for r in got.meta["resumptions"]] == ["DIED"]
    out = got.captured_out
    assert out.index("part one") < out.index("part two")
    assert len(Api(empty_url).runs()) == 1


def test_the_command_line_resumes_with_id_and_resume(tmp_path):
    url = str(tmp_path / "runs")
    crash_a_run(tmp_path, url, 5)
    from labbook.stores.query import MIN_SILENCE

    time.sleep(MIN_SILENCE + 0.5)  # the resuming process sees the run DIED
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    proc = subprocess.run([sys.executable, str(script), "--id", "5", "--resume", "-F", url],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'Resumed run with ID "5"' in proc.stderr
    got = Api(url).run(5)
    assert got.status == "COMPLETED" and got.result == "done"
    assert series(got, "loss")[0] == [0, 1, 2, 3, 4, 5]
    assert series(got, "epoch_time") == ([0, 1, 2, 3, 4, 5], [10, 11, 12, 13, 20, 21])
    # a value that differs from the stored config is refused before anything runs
    proc = subprocess.run([sys.executable, str(script), "--id", "5", "--resume", "-F", url,
                           "with", "lr=0.5"], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "Run 5 was started with lr=0.1, not 0.5; a resumed run keeps its stored config." \
        in proc.stderr
    assert Api(url).run(5).status == "COMPLETED"  # untouched
    assert series(Api(url).run(5), "loss")[0] == [0, 1, 2, 3, 4, 5]


def test_resume_modes_and_their_errors(tmp_path, quick_death):
    url = str(tmp_path / "runs")
    with pytest.raises(RunNotFoundError, match=r"No run with id 9 in .* to resume\."):
        labbook.start_run(store=url, run_id=9, resume="must")
    with pytest.raises(labbook.LabbookError, match=r"resume='must' needs the id of the run"):
        labbook.start_run(store=url, resume="must")
    with pytest.raises(labbook.LabbookError, match=r"resume must be one of allow, must, "
                                                   r"never or None, not 'yes'"):
        labbook.start_run(store=url, run_id=9, resume="yes")
    with labbook.start_run(store=url, run_id=9, resume="allow", system_metrics=False):
        labbook.log_scalar("x", 1)  # no run 9 yet: a new one
    with pytest.raises(RunExistsError, match=r"A run with id 9 already exists in .* and "
                                             r"resume='never' was given\."):
        labbook.start_run(store=url, run_id=9, resume="never")
    with labbook.start_run(store=url, run_id=9, resume="allow", system_metrics=False):
        labbook.log_scalar("x", 2)  # exists: continued
    got = Api(url).run(9)
    assert series(got, "x") == ([0, 1], [1, 2])
    assert [r["previous_status"] for r in got.meta["resumptions"]] == ["COMPLETED"]
    with pytest.raises(labbook.LabbookError, match=r"Run 9 was started with x=.*|Run 9 has no "
                                                   r"config entry 'lr'"):
        labbook.start_run(store=url, run_id=9, resume="must", config={"lr": 1})


def test_a_live_run_is_not_resumed(tmp_path):
    url = str(tmp_path / "runs")
    run = labbook.start_run(store=url, run_id=3, system_metrics=False)
    try:  # another process tries to resume run 3 while it runs here
        proc = subprocess.run(
            [sys.executable, "-c", "import labbook; labbook.start_run(store=%r, run_id=3, "
             "resume='must')" % url], cwd=tmp_path, env=_env(), capture_output=True,
            text=True, timeout=120)
    finally:
        run.finish()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "Run 3 in file://%s is still running (its heartbeat is recent); resume it once its "
        "process has ended." % url)
    assert Api(url).run(3).status == "COMPLETED"
    assert "resumptions" not in Api(url).run(3).meta
