"""Launchers (labbook.launchers): sweep trials and queued runs placed as processes by local
processes, Dask, Ray and submitit, each recording through the store like any run."""
from __future__ import annotations

import importlib.util
import io
import itertools
import os
import subprocess
import sys

import pytest

import labbook
from labbook import Api, Experiment
from labbook.errors import LauncherError
from labbook.launchers import Progress, execute_job, make_job, parse_launcher, run_queue
from labbook.stores import open_store
from tests.api.conftest import STORE_KINDS, server_databases  # noqa: F401 (a fixture)
from tests.stores.mongo_server import mongo_server  # noqa: F401 (a fixture)

optuna = pytest.importorskip("optuna")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LRS = (0.001, 0.01, 0.1, 0.3)
BATCHES = (16, 32, 64)

SCRIPT = '''
import os
from labbook import Experiment

ex = Experiment("placed")


@ex.config
def cfg():
    lr = 0.1
    batch = 32
    steps = 3


def loss(lr, batch, step):
    return round(abs(lr - 0.01) * 10 + batch / 1000 + 0.1 / (step + 1), 6)


@ex.automain
def main(lr, batch, steps, _run):
    _run.info["pid"] = os.getpid()
    _run.info["parent_run"] = os.environ.get("LABBOOK_RUN_ID")
    for step in range(steps):
        _run.log_scalar("loss", loss(lr, batch, step), step)
    return loss(lr, batch, steps - 1)
'''


def _loss(lr, batch, step):
    return round(abs(lr - 0.01) * 10 + batch / 1000 + 0.1 / (step + 1), 6)


@pytest.fixture
def script(tmp_path) -> str:
    path = tmp_path / "exp.py"
    path.write_text(SCRIPT)
    return str(path)


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    env.pop("LABBOOK_STORE", None)
    env.update(extra)
    return env


def labbook_cli(*args, cwd, timeout=300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from labbook.cli.main import main; sys.exit(main())",
         *args], capture_output=True, text=True, cwd=cwd, env=_env(**env), timeout=timeout)


def queue(url: str, lrs) -> list:
    """Queue a run of the script's experiment per lr (from this process)."""
    ex = Experiment("placed")

    @ex.config
    def cfg():
        lr = 0.1  # noqa: F841
        batch = 32  # noqa: F841
        steps = 3  # noqa: F841

    @ex.main
    def main(lr, batch, steps):
        raise AssertionError("only queued here")

    return [ex.run(config_updates={"lr": lr},
                   options={"--store": url, "--queue": True, "--loglevel": "WARNING"})._id
            for lr in lrs]


def check_grid(store: str, sweep_id: str, lrs, batches) -> None:
    sw = labbook.Sweep(sweep_id, store, "loss", "minimize")
    try:
        runs = list(sw.runs)
        assert sorted((r.config["lr"], r.config["batch"]) for r in runs) == \
            sorted(itertools.product(lrs, batches))
        for run in runs:
            assert run.status == "COMPLETED", (run.id, run.fail_trace)
            assert run.summary["loss"] == _loss(run.config["lr"], run.config["batch"], 2)
            assert run.meta["worker"].startswith("launcher:")
            assert f"sweep:{sweep_id}" in run.meta["tags"] and run.meta["group"] == sweep_id
            assert run.meta["sweep"]["id"] == sweep_id
        best = sw.best_run()
        expected = min(itertools.product(lrs, batches), key=lambda p: _loss(*p, 2))
        assert (best.config["lr"], best.config["batch"]) == expected
        study = sw.study
        assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * len(runs)
        assert study.best_value == best.summary["loss"]
        # each process ran one run: as many pids as runs
        assert len({r.info["pid"] for r in runs}) == len(runs)
    finally:
        sw.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_12_trial_grid_through_local_3(request, tmp_path, script, kind):
    store = STORE_KINDS[kind](request, tmp_path)
    proc = labbook_cli("sweep", script, "--param", f"lr=choice{LRS}",
                       "--param", f"batch=choice{BATCHES}", "--method", "grid",
                       "--metric", "loss", "--store", store, "--sweep-id", "g12",
                       "--launcher", "local:3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_grid(store, "g12", LRS, BATCHES)
    # progress: plain lines (stdout is not a terminal), never more than 3 running
    lines = [line for line in proc.stdout.splitlines() if line.startswith("sweep g12: ")]
    assert lines[-1].startswith("sweep g12: 12/12 done, 0 failed, 0 pruned, 0 running, "
                                f"best loss {_loss(0.01, 16, 2):.6g} (run ")
    running = [int(line.split(", ")[3].split()[0]) for line in lines]
    assert max(running) == 3
    assert "Best run" in proc.stdout and "'lr': 0.01, 'batch': 16" in proc.stdout


ENGINES = {"dask": ("dask.distributed", "dask:2"), "ray": ("ray", "ray:2"),
           "submitit": ("submitit", "submitit:local")}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_sweep_and_the_queue_through_an_engine(tmp_path, script, engine):
    module, spec = ENGINES[engine]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} is not installed (pip install 'labbook[{engine}]')")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    with parse_launcher(spec) as launcher:
        assert launcher.slots >= 1
        labbook.sweep(script, {"lr": [0.01, 0.3], "batch": [16, 64]}, method="grid",
                      metric="loss", store=store, sweep_id=f"via-{engine}", launcher=launcher,
                      parallel=2, progress=False)
        check_grid(store, f"via-{engine}", (0.01, 0.3), (16, 64))
        ids = queue(store, (0.1, 0.2, 0.5))
        board = run_queue(script, store, launcher, "placed", progress=False)
    assert (board.done, board.failed, board.running) == (3, 0, 0)
    api = Api(store)
    try:
        for run_id, lr in zip(ids, (0.1, 0.2, 0.5)):
            run = api.run(run_id)
            assert run.status == "COMPLETED" and run.config["lr"] == lr
            assert run.result == _loss(lr, 32, 2)
    finally:
        api.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql", "mongo", "file"])
def test_run_queue_on_the_command_line(request, tmp_path, script, kind):
    store = STORE_KINDS[kind](request, tmp_path)
    ids = queue(store, (0.1, 0.2, 0.3, 0.4, 0.5))
    proc = labbook_cli("run-queue", script, "--store", store, "--launcher", "local:2",
                       "--max-runs", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == \
        "Done: queue placed: 4 done, 0 failed, 0 pruned, 0 running"
    reader = open_store(store)
    try:
        statuses = [reader.get(i)["status"] for i in ids]
        assert statuses == ["COMPLETED"] * 4 + ["QUEUED"]  # oldest first, at most 4
    finally:
        reader.close()
    proc = labbook_cli("run-queue", script, "--store", store, cwd=tmp_path)
    assert proc.returncode == 0 and "Done: queue placed: 1 done" in proc.stdout
    proc = labbook_cli("run-queue", script, "--store", store, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(
        "No queued runs of experiment 'placed'.")


def test_run_queue_exits_1_naming_the_runs_that_failed(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text(SCRIPT.replace('    _run.info["pid"] = os.getpid()\n',
                                   '    if lr < 0:\n        raise ValueError("lr must be '
                                   'positive")\n    _run.info["pid"] = os.getpid()\n'))
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    ok, bad = queue(store, (0.1, -1.0))
    proc = labbook_cli("run-queue", str(path), "--store", store, "--launcher", "local:2",
                       cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == \
        "Done: queue placed: 1 done, 1 failed, 0 pruned, 0 running"
    assert proc.stderr.splitlines()[-1] == (
        f"Error: 1 of the queued runs did not complete (runs {bad}); `labbook show ID` shows "
        "each one's status and fail_trace.")
    reader = open_store(store)
    try:  # both runs stay stored as they ended
        assert reader.get(ok)["status"] == "COMPLETED"
        failed = reader.get(bad)
        assert failed["status"] == "FAILED" and "lr must be positive" in "".join(
            failed["fail_trace"])
    finally:
        reader.close()


def test_placed_processes_start_their_own_runs_not_a_parents(tmp_path, script):
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    ids = queue(store, (0.1, 0.2))
    # as if run-queue were started from inside a recorded run of a distributed job
    proc = labbook_cli("run-queue", script, "--store", store, "--launcher", "local:2",
                       cwd=tmp_path, LABBOOK_RUN_ID="999", LABBOOK_RUN_STORE=store, RANK="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = Api(store)
    try:
        for run_id in ids:
            run = api.run(run_id)
            # its own id, exported while it runs (not the 999 it was started under)
            assert run.status == "COMPLETED" and run.info["parent_run"] == str(run_id)
            assert list(run.history("loss")["_step"]) == [0, 1, 2]
        assert len(api.runs()) == 2
    finally:
        api.close()


def test_a_job_whose_run_was_taken_leaves_it_alone(tmp_path, script):
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    [run_id] = queue(store, (0.1,))
    writer = open_store(store)
    try:
        assert writer.claim_queued("someone-else", experiment="placed")["_id"] == run_id
        outcome = execute_job(make_job(script, store, run_id))
        assert outcome == {"run_id": run_id, "status": "RUNNING", "exit": None,
                           "claimed": False}
        doc = writer.get(run_id)
        assert doc["meta"]["worker"] == "someone-else" and doc.get("start_time") is None
        assert execute_job(make_job(script, store, 12345))["claimed"] is False  # no such run
    finally:
        writer.close()


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_a_process_that_ends_before_its_run_starts_fails_it_with_its_output(
        request, tmp_path, script, kind):
    store = STORE_KINDS[kind](request, tmp_path)
    [run_id] = queue(store, (0.1,))
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('cannot load the data set')\nsys.exit(3)\n")
    outcome = execute_job(make_job(str(broken), store, run_id))
    assert outcome == {"run_id": run_id, "status": "FAILED", "exit": 3, "claimed": True}
    reader = open_store(store)
    try:
        trace = "".join(reader.get(run_id)["fail_trace"])
    finally:
        reader.close()
    assert "exited with status 3 before starting the run" in trace
    assert "cannot load the data set" in trace


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_pruning_from_the_placed_processes(request, tmp_path, script, kind):
    store = STORE_KINDS[kind](request, tmp_path)
    path = tmp_path / "curve.py"
    # the loss is lr at every step: past the 5 trials the median pruner waits for, the worse
    # half is pruned at its first step (one at a time, so the order is the grid's)
    path.write_text(SCRIPT.replace("return round(abs(lr - 0.01) * 10 + batch / 1000 + 0.1 / "
                                   "(step + 1), 6)", "return lr"))
    lrs = [round(0.1 * k, 1) for k in range(1, 9)]
    sw = labbook.sweep(str(path), {"lr": lrs}, method="grid", metric="loss", store=store,
                       prune="median", sweep_id="pr", launcher="local:1", progress=False)
    runs = sorted(sw.runs, key=lambda r: r.meta["sweep"]["trial"])
    assert [r.status for r in runs[:5]] == ["COMPLETED"] * 5
    pruned = [r for r in runs if r.status == "PRUNED"]
    assert pruned and all(r.config["lr"] > 0.3 for r in pruned)
    assert all(list(r.history("loss")["_step"]) == [0] for r in pruned)  # stopped at step 0
    states = {t.user_attrs["labbook_run_id"]: t for t in sw.study.trials}
    for run in runs:
        trial = states[run.id]
        assert trial.state.name == {"COMPLETED": "COMPLETE", "PRUNED": "PRUNED"}[run.status]
        assert trial.intermediate_values[0] == run.config["lr"]  # reported by the run
    sw.close()


def test_pruning_is_refused_when_the_study_is_in_memory(tmp_path, script):
    with pytest.raises(LauncherError, match="keeps it in memory") as info:
        labbook.sweep(script, {"lr": [0.1, 0.2]}, method="grid", metric="loss",
                      store="mongodb://me:s3cret@127.0.0.1:1/nowhere", prune="median",
                      launcher="local:2", progress=False)
    assert "\n" not in str(info.value) and "s3cret" not in str(info.value)


@pytest.mark.parametrize("spec, message", [
    ("slurm", "Unknown launcher 'slurm' in 'slurm': use local[:K], dask[:SCHEDULER]"),
    ("local:0", "--launcher local:0: local takes a number of processes above 0, e.g. local:4."),
    ("local:many", "local takes a number of processes above 0"),
    ("dask:", "--launcher dask:: nothing after ':' (write dask alone for its default)."),
    ("submitit:pbs", "Unknown submitit cluster 'pbs' in --launcher submitit:pbs"),
    ("ray:0", "--launcher ray:0: ray takes a number of processes above 0"),
])
def test_bad_launcher_specs_are_one_line_errors(tmp_path, script, spec, message):
    with pytest.raises(LauncherError) as info:
        parse_launcher(spec)
    assert message in str(info.value) and "\n" not in str(info.value)
    proc = labbook_cli("run-queue", script, "--store", f"sqlite:///{tmp_path / 'r.db'}",
                       "--launcher", spec, cwd=tmp_path)
    assert proc.returncode == LauncherError.exit_code
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


@pytest.mark.parametrize("engine, spec, extra", [("dask.distributed", "dask", "dask"),
                                                 ("ray", "ray", "ray"),
                                                 ("submitit", "submitit:local", "slurm")])
def test_a_missing_engine_names_its_extra(monkeypatch, engine, spec, extra):
    monkeypatch.setitem(sys.modules, engine, None)  # import fails as when not installed
    with pytest.raises(LauncherError) as info:
        parse_launcher(spec)
    assert str(info.value) == (f"The {extra} launcher needs {engine.split('.')[0]}: "
                               f"pip install 'labbook[{extra}]'.")


def test_progress_plain_lines():
    out = io.StringIO()
    board = Progress("sweep s", total=4, metric="loss", stream=out, live=True)
    board.started(2)
    board.ended("COMPLETED", 0.5, run_id=1)
    board.started()
    board.ended("PRUNED", run_id=2)
    board.ended("COMPLETED", 0.25, run_id=3)
    board.started()
    board.ended("FAILED", run_id=4)
    assert out.getvalue().splitlines() == [
        "sweep s: 0/4 done, 0 failed, 0 pruned, 2 running, best -",
        "sweep s: 1/4 done, 0 failed, 0 pruned, 1 running, best loss 0.5 (run 1)",
        "sweep s: 1/4 done, 0 failed, 0 pruned, 2 running, best loss 0.5 (run 1)",
        "sweep s: 1/4 done, 0 failed, 1 pruned, 1 running, best loss 0.5 (run 1)",
        "sweep s: 2/4 done, 0 failed, 1 pruned, 0 running, best loss 0.25 (run 3)",
        "sweep s: 2/4 done, 0 failed, 1 pruned, 1 running, best loss 0.25 (run 3)",
        "sweep s: 2/4 done, 1 failed, 1 pruned, 0 running, best loss 0.25 (run 3)",
    ]
    queue_board = Progress("queue q", stream=out, live=False)
    queue_board.started()
    queue_board.ended(None)
    assert queue_board.line() == "queue q: 0 done, 0 failed, 0 pruned, 0 running, " \
                                 "1 taken elsewhere"


def test_an_in_process_sweep_shows_progress_too(tmp_path, capsys):
    ex = Experiment("inproc")

    @ex.config
    def cfg():
        lr = 0.1  # noqa: F841

    @ex.main
    def main(lr, _run):
        _run.log_scalar("loss", lr)

    store = f"sqlite:///{tmp_path / 'r.db'}"
    labbook.sweep(ex, {"lr": [0.2, 0.1]}, method="grid", metric="loss", store=store,
                  sweep_id="ip", progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sweep")]
    best = Api(store).runs({"config.lr": 0.1})[0].id
    assert lines == [
        "sweep ip: 0/2 done, 0 failed, 0 pruned, 1 running, best -",
        lines[1],  # the first trial's value is the best so far
        "sweep ip: 1/2 done, 0 failed, 0 pruned, 1 running, " + lines[1].split(", ")[4],
        f"sweep ip: 2/2 done, 0 failed, 0 pruned, 0 running, best loss 0.1 (run {best})"]
    # a library call off a terminal prints nothing unless asked
    labbook.sweep(ex, {"lr": [0.2, 0.1]}, method="grid", metric="loss", store=store,
                  sweep_id="quiet")
    assert "sweep quiet" not in capsys.readouterr().out


def test_a_worker_shows_its_counts(tmp_path, script):
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    queue(store, (0.1, 0.2))
    proc = labbook_cli("worker", script, "--store", store, "--idle-exit", "0.5", "--poll",
                       "0.2", "--name", "w1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("worker w1: ")]
    assert lines[0] == "worker w1: 0 done, 0 failed, 0 pruned, 1 running"
    assert lines[-1] == "worker w1: 2 done, 0 failed, 0 pruned, 0 running"


def test_a_launcher_that_fails_stops_the_sweep_and_fails_the_trials_out(tmp_path, script):
    from labbook.launchers import LocalLauncher

    class Flaky(LocalLauncher):
        taken = 0

        def submit(self, job):
            if self.taken == 2:
                raise RuntimeError("scheduler gone\nsecond line")
            self.taken += 1
            return super().submit(job)

    store = f"sqlite:///{tmp_path / 'runs.db'}"
    with Flaky("3") as launcher, pytest.raises(LauncherError) as info:
        labbook.sweep(script, {"lr": [0.01, 0.1, 0.3]}, method="grid", metric="loss",
                      store=store, sweep_id="flaky", launcher=launcher, progress=False)
    assert str(info.value).endswith(": RuntimeError: scheduler gone; the run stays queued "
                                    "(labbook run-queue or a worker can execute it).")
    sw = labbook.Sweep("flaky", store)
    try:
        assert sorted(t.state.name for t in sw.study.trials) == ["FAIL"] * 3
        statuses = sorted(r.status for r in sw.runs)
        # the two placed runs ran (or were stopped) as their jobs went; the third waits
        assert statuses.count("QUEUED") == 1 and len(statuses) == 3
    finally:
        sw.close()


def test_jobs_name_the_script_and_the_store_absolutely(tmp_path, monkeypatch):
    from labbook.launchers import absolute_store

    monkeypatch.chdir(tmp_path)
    here = str(tmp_path)
    assert absolute_store("sqlite:///runs.db") == f"sqlite:///{here}/runs.db"
    assert absolute_store("sqlite:///runs.db?timeout=5") == f"sqlite:///{here}/runs.db?timeout=5"
    assert absolute_store("sqlite:////abs/runs.db") == "sqlite:////abs/runs.db"
    assert absolute_store("sqlite:///:memory:") == "sqlite:///:memory:"
    assert absolute_store("runs") == f"{here}/runs"
    assert absolute_store("file://runs") == f"file://{here}/runs"
    assert absolute_store("postgresql://u@h/db") == "postgresql://u@h/db"
    job = make_job("exp.py", "sqlite:///runs.db", 7, {"A": "1"})
    assert job == {"script": f"{here}/exp.py", "store": f"sqlite:///{here}/runs.db",
                   "run_id": 7, "env": {"A": "1"}, "cwd": here}
