"""Sweeps (labbook.sweep, labbook sweep): Optuna chooses each trial's config, labbook runs it."""
import itertools
import os
import subprocess
import sys

import pytest

import labbook
from labbook import Api, Experiment
from labbook.errors import SweepError
from labbook.sweeps import parse_param, parse_spec, study_storage_url
from tests.stores.conftest import mysql_database, postgresql_database  # noqa: F401 (fixtures)

optuna = pytest.importorskip("optuna")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LRS = (0.001, 0.01, 0.1)
BATCHES = (16, 32, 64, 128)


def _loss(lr, batch, epoch):
    return round(abs(lr - 0.01) * 10 + batch / 1000 + 0.1 / (epoch + 1), 6)


def _grid_experiment():
    ex = Experiment("grid_sweep")

    @ex.config
    def cfg():
        lr = 0.1
        batch = 32
        epochs = 3

    @ex.main
    def train(lr, batch, epochs, _run):
        for epoch in range(epochs):
            _run.log_scalar("loss", _loss(lr, batch, epoch), epoch)
        return _loss(lr, batch, epochs - 1)

    return ex


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_12_trial_grid_runs_each_point_once_and_finds_the_best(tmp_path, kind):
    store = str(tmp_path / "runs") if kind == "file" else f"sqlite:///{tmp_path / 'runs.db'}"
    sw = labbook.sweep(_grid_experiment(), {"lr": f"choice{LRS}", "batch": list(BATCHES)},
                       method="grid", metric="loss", goal="minimize", store=store,
                       sweep_id="grid1")
    runs = list(sw.runs)
    assert len(runs) == 12
    points = sorted((r.config["lr"], r.config["batch"]) for r in runs)
    assert points == sorted(itertools.product(LRS, BATCHES))
    assert all(r.status == "COMPLETED" and "sweep:grid1" in r.meta["tags"]
               and r.meta["group"] == "grid1" for r in runs)
    assert all(r.config["epochs"] == 3 for r in runs)  # not swept: the config's value
    best = sw.best_run()
    assert (best.config["lr"], best.config["batch"]) == (0.01, 16)
    assert best.summary["loss"] == _loss(0.01, 16, 2)
    # the study saw the same values, and names the runs
    trials = sw.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 12
    assert sw.study.best_value == best.summary["loss"]
    assert sw.study.best_trial.user_attrs["labbook_run_id"] == best.id
    # by an explicit order: the highest batch first
    assert sw.best_run(order="-config.batch").config["batch"] == 128
    frame = sw.to_dataframe()
    assert len(frame) == 12 and {"config.lr", "config.batch", "summary.loss"} <= set(frame)
    # the study lives beside the store
    where = study_storage_url(store)
    assert optuna.load_study(study_name="grid1", storage=where).best_value == sw.study.best_value


def test_maximize_picks_the_highest(tmp_path):
    sw = labbook.sweep(_grid_experiment(), {"lr": "choice(0.001, 0.1)", "batch": 16},
                       method="grid", metric="loss", goal="maximize",
                       store=str(tmp_path / "runs"))
    assert len(sw.runs) == 2 and sw.best_run().config["lr"] == 0.1


def _pruned_experiment():
    ex = Experiment("tpe_sweep")

    @ex.config
    def cfg():
        lr = 0.1

    @ex.main
    def train(lr, _run):
        for step in range(10):
            _run.log_scalar("loss", lr * (10 - step))

    return ex


def test_a_tpe_sweep_with_median_pruning_on_sqlite_keeps_its_study_with_the_runs(tmp_path):
    db = tmp_path / "runs.db"
    store = f"sqlite:///{db}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3)
    sw = labbook.sweep(_pruned_experiment(), ["lr=loguniform(1e-3, 1)"], method="tpe",
                       trials=15, metric="loss", store=store, prune=pruner, seed=0,
                       sweep_id="tpe1")
    runs = list(sw.runs)
    assert len(runs) == 15
    pruned = [r for r in runs if r.status == "PRUNED"]
    completed = [r for r in runs if r.status == "COMPLETED"]
    assert pruned and len(pruned) + len(completed) == 15
    for run in pruned:  # stopped early, the point that decided it kept
        assert 1 <= len(run.history(["loss"])) < 10
    for run in completed:
        assert len(run.history(["loss"])) == 10
    # the study, opened with Optuna itself from the storage beside the runs' database
    assert study_storage_url(store) == f"sqlite:///{db}"  # the study is in the store's database
    study = optuna.load_study(study_name="tpe1", storage=f"sqlite:///{db}")
    states = {t.user_attrs["labbook_run_id"]: t.state for t in study.trials}
    assert {rid for rid, s in states.items() if s == optuna.trial.TrialState.PRUNED} == \
        {r.id for r in pruned}
    assert {rid for rid, s in states.items() if s == optuna.trial.TrialState.COMPLETE} == \
        {r.id for r in completed}
    assert sw.best_run().status == "COMPLETED"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_the_study_lives_in_the_stores_own_database(request, tmp_path, backend):
    import sqlalchemy as sa

    store = f"sqlite:///{tmp_path}/runs.db" if backend == "sqlite" else \
        request.getfixturevalue(f"{backend}_database")
    sw = labbook.sweep(_grid_experiment(), {"lr": "choice(0.001, 0.01)", "batch": 16},
                       method="grid", metric="loss", store=store, sweep_id=f"on-{backend}")
    where = study_storage_url(store)
    assert sa.engine.make_url(where).database == sa.engine.make_url(store).database
    assert len(sw.runs) == 2 and sw.best_run().config["lr"] == 0.01
    study = optuna.load_study(study_name=f"on-{backend}", storage=where)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.best_value == sw.best_run().summary["loss"]
    sw.close()
    # one database holds both: Optuna's tables beside labbook's, each with its own revision
    engine = sa.create_engine(where)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"runs", "metrics", "labbook_alembic_version", "studies", "trials",
                "alembic_version"} <= tables
    finally:
        engine.dispose()
    again = labbook.Api(store)
    assert len(again.runs(f"group = 'on-{backend}'")) == 2
    again.close()


def test_the_median_pruner_by_name_and_a_second_process_joining(tmp_path):
    store = str(tmp_path / "runs")
    first = labbook.sweep(_pruned_experiment(), {"lr": "uniform(0.01, 1)"}, method="random",
                          trials=3, metric="loss", store=store, prune="median", seed=1,
                          sweep_id="joined")
    second = labbook.sweep(_pruned_experiment(), {"lr": "uniform(0.01, 1)"}, method="random",
                           trials=2, metric="loss", store=store, prune="median", seed=2,
                           sweep_id="joined")
    assert len(second.study.trials) == 5 and len(first.runs) == 5


def test_a_failing_trial_fails_in_the_study_and_the_sweep_goes_on(tmp_path):
    ex = Experiment("flaky")

    @ex.config
    def cfg():
        x = 1

    @ex.main
    def main(x, _run):
        if x == 2:
            raise ValueError("two is bad")
        _run.log_scalar("score", x)

    sw = labbook.sweep(ex, {"x": "choice(1, 2, 3)"}, method="grid", metric="score",
                       goal="maximize", store=str(tmp_path / "runs"))
    states = sorted(t.state.name for t in sw.study.trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]
    assert sorted(r.status for r in sw.runs) == ["COMPLETED", "COMPLETED", "FAILED"]
    assert sw.best_run().config["x"] == 3


def test_a_run_without_the_metric_fails_its_trial_with_a_warning(tmp_path):
    with pytest.warns(labbook.errors.LabbookWarning, match="no number for accuracy"):
        sw = labbook.sweep(_grid_experiment(), {"lr": "choice(0.1)", "batch": 16},
                           method="grid", metric="accuracy", store=str(tmp_path / "runs"))
    assert [t.state.name for t in sw.study.trials] == ["FAIL"]
    assert sw.best_run() is None


@pytest.mark.parametrize("spec, kind, args", [
    ("uniform(0, 1)", "uniform", (0.0, 1.0)),
    ("loguniform(1e-4,1e-1)", "loguniform", (1e-4, 1e-1)),
    ("int(1, 8)", "int", (1, 8)),
    ("choice(32, 64)", "choice", (32, 64)),
    ("choice(adam, 'sgd', 0.5)", "choice", ("adam", "sgd", 0.5)),
    ("0.5", "value", (0.5,)),
    ("adam", "value", ("adam",)),
])
def test_parameter_specs(spec, kind, args):
    param = parse_param(f"p={spec}")
    assert (param.name, param.kind, param.args) == ("p", kind, args)


@pytest.mark.parametrize("text, message", [
    ("lr", "write NAME=SPEC"),
    ("lr=normal(0, 1)", "unknown distribution 'normal'"),
    ("lr=uniform(1)", "takes two bounds"),
    ("lr=uniform(1, 0)", "needs low < high"),
    ("lr=loguniform(0, 1)", "bounds above 0"),
    ("n=int(1.5, 3)", "takes whole numbers"),
    ("lr=uniform(a, b)", "cannot read"),
    ("lr=choice()", "has no choices"),
    ("1x=choice(1,2)", "Bad parameter name '1x'"),
])
def test_bad_specs_are_named_in_the_error(text, message):
    with pytest.raises(SweepError, match=message):
        parse_param(text)


def test_bad_sweeps_fail_before_any_run(tmp_path):
    ex = _grid_experiment()
    store = str(tmp_path / "runs")
    cases = [
        (dict(params={"lr": "uniform(0, 1)"}, method="grid"), "grid takes choice"),
        (dict(params={"lr": "uniform(0, 1)"}, method="bayes"), "Unknown sweep method"),
        (dict(params={"lr": "uniform(0, 1)"}, goal="lowest", trials=1), "Unknown goal"),
        (dict(params={"lr": "uniform(0, 1)"}, method="tpe"), "needs a number of trials"),
        (dict(params={"lr": 0.1}, trials=1), "at least one parameter to vary"),
        (dict(params={"lr": "uniform(0, 1)"}, trials=1, prune="hyperband"), "Unknown pruner"),
        (dict(params=["lr=choice(1,2)", "lr=choice(3)"], trials=1), "given twice"),
    ]
    for kwargs, message in cases:
        with pytest.raises(SweepError, match=message):
            labbook.sweep(ex, metric="loss", store=store, **kwargs)
    with pytest.raises(SweepError, match="No experiment file"):
        labbook.sweep(str(tmp_path / "nope.py"), {"lr": "choice(1, 2)"}, method="grid",
                      store=store)
    assert not os.path.exists(store) or not Api(store).runs()


def test_where_studies_live(tmp_path):
    assert study_storage_url(f"file://{tmp_path}/new") == \
        f"sqlite:///{tmp_path}/new/_optuna.db"
    assert os.path.isdir(tmp_path / "new")
    assert study_storage_url("sqlite:////data/runs.db") == "sqlite:////data/runs.db"
    assert study_storage_url("sqlite://") is None
    assert study_storage_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert study_storage_url("mysql://u@h:3306/db?charset=utf8mb4") == \
        "mysql+pymysql://u@h:3306/db?charset=utf8mb4"
    assert study_storage_url("mongodb://h/db") is None


def test_spec_from_a_list_and_a_fixed_value():
    assert parse_spec("b", [1, 2]).kind == "choice"
    assert parse_spec("b", 3).args == (3,)


EXPERIMENT = '''
from labbook import Experiment
ex = Experiment("cli_sweep")

@ex.config
def cfg():
    lr = 0.1
    opt = "sgd"

@ex.main
def main(lr, opt, _run):
    for i in range(3):
        _run.log_scalar("loss", lr * (3 - i) + (opt == "sgd"))
'''


def _labbook(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    return subprocess.run([sys.executable, "-m", "labbook.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_command_line_sweeps_by_params_and_by_a_sweep_file(tmp_path):
    (tmp_path / "exp.py").write_text(EXPERIMENT)
    (tmp_path / "sweep.yaml").write_text(
        "method: grid\nmetric: {name: loss, goal: minimize}\n"
        "parameters:\n  lr: {values: [0.2, 0.3]}\n  opt: {value: adam}\n")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = _labbook("sweep", "exp.py", "--param", "lr=choice(0.1,0.01)",
                    "--param=opt=choice(adam,sgd)", "--method", "grid", "--metric", "loss",
                    "--store", store, "--sweep-id", "s1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Sweep s1: 4 complete trial(s)" in proc.stdout
    assert "loss = 0.01 with {'lr': 0.01, 'opt': 'adam'}" in proc.stdout
    proc = _labbook("sweep", "exp.py", "--config", "sweep.yaml", "--store", store,
                    "--sweep-id", "s2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "loss = 0.2 with {'lr': 0.2, 'opt': 'adam'}" in proc.stdout
    listed = _labbook("ls", "--sweep", "s2", "--store", store, "--columns", "config.lr,status",
                      cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.strip().splitlines()[1:]
    assert sorted(r.split() for r in rows) == [["0.2", "COMPLETED"], ["0.3", "COMPLETED"]]
    bad = _labbook("sweep", "exp.py", "--param", "lr=uniform(0,1)", "--method", "grid",
                   "--store", store, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("Error: A grid takes choice(...) parameters only; lr vary "
                                  "continuously (use --method random or tpe, or choices).")


def test_the_sweeps_page_python_blocks_print_what_it_shows(tmp_path, monkeypatch):
    from tests.test_docs import differences, python_blocks, report, run_block

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    namespace = {"__name__": "sweeps_page"}
    blocks = python_blocks("sweeps.md")
    assert len(blocks) == 3
    for block in blocks:
        printed, error = run_block(block, namespace, str(tmp_path))
        if error is not None:
            report(f"sweeps.md: python block {block.index}", f"{block} fails:\n{error.formatted}")
        if block.output is not None:
            diff = differences(block.output, printed)
            if diff:
                report(f"sweeps.md: python block {block.index}", f"{block}:\n{diff}")


def test_the_sweep_file_of_the_page_reads_as_labbook_sweep_arguments(tmp_path):
    from labbook.cli.main import _sweep_file
    from tests.test_docs import fences

    yaml_text = [body for lang, body, *_ in fences("sweeps.md") if lang == "yaml"]
    assert len(yaml_text) == 1
    (tmp_path / "sweep.yaml").write_text(yaml_text[0])
    settings = _sweep_file(str(tmp_path / "sweep.yaml"))
    assert settings == {
        "method": "tpe", "metric": "loss", "goal": "minimize", "trials": 30, "prune": "median",
        "params": {"lr": [0.001, 0.01, 0.1], "batch": "int(16, 128)",
                   "dropout": "uniform(0.0, 0.5)", "wd": "loguniform(1e-06, 0.01)",
                   "optimizer": "'adam'"}}
    params = {p.name: p for p in labbook.sweeps.parse_params(settings["params"])}
    assert params["optimizer"].args == ("adam",) and params["wd"].kind == "loguniform"


def test_plots_and_a_reopened_sweep(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    ex = _grid_experiment()
    sw = labbook.sweep(ex, ["lr=choice(0.001, 0.01, 0.1)", "batch=choice(16, 'x')"],
                       method="grid", metric="loss", store=store, sweep_id="plotted")
    # batch='x' fails in the experiment (x / 1000): 3 completed trials of 6
    assert sorted(t.state.name for t in sw.study.trials) == ["COMPLETE"] * 3 + ["FAIL"] * 3
    figure = sw.plot()
    ax = figure.axes[0]
    assert ax.get_xlabel() == "trial" and len(ax.lines[0].get_xdata()) == 3
    parallel = sw.plot(kind="parallel").axes[0]
    assert [t.get_text() for t in parallel.get_xticklabels()] == ["batch", "lr", "loss"]
    assert len(parallel.lines) == 3
    with pytest.raises(SweepError, match="Unknown plot"):
        sw.plot(kind="pie")
    sw.close()
    again = labbook.Sweep("plotted", store, "loss")
    assert again.best_run().id == sw.best_run().id
    assert len(again.study.trials) == 6
    again.close()


class _PruneAtStep2(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.last_step is not None and trial.last_step >= 2


@pytest.mark.parametrize("how", ["log_scalar", "log_scalar_stepless", "log", "ex.log_scalar"])
def test_every_way_of_logging_the_metric_reports_it_to_the_pruner(tmp_path, how):
    ex = Experiment("reporting")

    @ex.config
    def cfg():
        lr = 0.1

    @ex.main
    def main(lr, _run):
        for step in range(6):
            _run.log_scalar("other", step)
            if how == "log_scalar":
                _run.log_scalar("loss", lr * step, step)
            elif how == "log_scalar_stepless":
                _run.log_scalar("loss", lr * step)
            elif how == "log":
                _run.log({"loss": lr * step, "acc": step})
            else:
                ex.log_scalar("loss", lr * step)

    sw = labbook.sweep(ex, {"lr": "choice(0.1)"}, method="grid", metric="loss",
                       store=str(tmp_path / "runs"), prune=_PruneAtStep2())
    (run,) = sw.runs
    assert run.status == "PRUNED"
    history = run.history(["loss"])
    assert list(history["_step"]) == [0, 1, 2]  # the point that decided it is kept
    assert sw.study.trials[0].state.name == "PRUNED"
    assert sorted(sw.study.trials[0].intermediate_values) == [0, 1, 2]
