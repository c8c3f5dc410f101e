"""labbook.submit: a run queued in the store and executed by a process placed for it; the
Deployment reads it back (Foundations' get_param / get_metric / get_job_details, plus wait)."""
import os
import textwrap

import pytest

import labbook
from labbook.errors import ConfigAddedError, JobTimeoutError, SubmitError, UsageError

SCRIPT = textwrap.dedent('''
    import os, time
    from labbook import Experiment

    ex = Experiment("submitted")

    @ex.config
    def cfg():
        lr = 0.01
        model = {"depth": 2}
        gate = ""        # a file to wait for before ending
        fail = False

    @ex.automain
    def main(lr, model, gate, fail, _run):
        for step in range(3):
            _run.log_scalar("loss", lr * (3 - step), step)
        _run.log_scalar("depth", model["depth"])
        while gate and not os.path.exists(gate):
            time.sleep(0.05)
        if fail:
            raise RuntimeError("the model diverged")
        return lr * 10
''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return str(path)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_submitted_run_is_executed_by_a_process_of_its_own(script, url):
    job = labbook.submit(script, params={"lr": 0.5, "model.depth": 4}, store=url,
                         tags=["submitted"], name="first")
    try:
        # the config is stored when the run is queued: no waiting for it
        assert job.get_param("lr") == 0.5 and job.get_param("model.depth") == 4
        assert job.get_param("model") == {"depth": 4}
        assert job.wait(timeout=120) == "COMPLETED"
        assert job.get_metric("loss") == pytest.approx(0.5)
        assert job.get_metric("depth") == 4
        details = job.get_job_details()
        assert details["job_id"] == job.run_id == job.job_name
        assert details["project_name"] == "submitted" and details["status"] == "COMPLETED"
        assert details["params"]["lr"] == 0.5 and details["result"] == pytest.approx(5.0)
        assert details["metrics"]["loss"] == pytest.approx(0.5)
        assert "submitted" in details["tags"] and details["duration"] >= 0
        # the run is an ordinary run of the store, executed once, under the queued id
        runs = labbook.Api(url).runs()
        assert [r.id for r in runs] == [job.run_id]
        assert runs[0].meta.get("name") == "first"
        assert list(runs[0].history("loss")["loss"]) == pytest.approx([1.5, 1.0, 0.5])
    finally:
        job.close()


def test_a_launcher_places_the_process(script, url):
    job = labbook.submit(script, params={"lr": 0.2}, store=url, launcher="local:1")
    try:
        assert job.wait(timeout=120) == "COMPLETED"
        assert job.get_metric("loss") == pytest.approx(0.2)
    finally:
        job.close()


def test_a_failed_run_is_reported_and_its_missing_metric_named(script, url):
    job = labbook.submit(script, params={"fail": True}, store=url)
    try:
        assert job.wait(timeout=120) == "FAILED"
        assert "the model diverged" in job.run.fail_trace
        with pytest.raises(SubmitError, match="logged no metric 'accuracy'; it has: depth, "
                                              "loss"):
            job.get_metric("accuracy")
        with pytest.raises(SubmitError, match="has no config entry 'model.width'; its "
                                              "entries: fail, gate, lr, model, model.depth"):
            job.get_param("model.width")
    finally:
        job.close()


def test_waiting_is_bounded_and_the_run_goes_on(script, url, tmp_path):
    gate = tmp_path / "go"
    job = labbook.submit(script, params={"gate": str(gate)}, store=url)
    try:
        with pytest.raises(JobTimeoutError, match=r"did not end within 0.3 s \(status "
                                                  r"(QUEUED|RUNNING)\); it goes on"):
            job.wait(timeout=0.3)
        gate.write_text("")
        assert job.wait(timeout=120) == "COMPLETED"
    finally:
        job.close()


def test_bad_submissions_are_refused_and_nothing_is_queued(script, url, tmp_path):
    from labbook import Experiment

    with pytest.raises(SubmitError, match="takes the path of an experiment script, got "
                                          "Experiment"):
        labbook.submit(Experiment("x"), store=url)
    with pytest.raises(SubmitError, match="params must be a dict"):
        labbook.submit(script, params=[("lr", 1)], store=url)
    with pytest.raises(UsageError, match="No experiment file .*nosuch.py"):
        labbook.submit(str(tmp_path / "nosuch.py"), store=url)
    with pytest.raises(ConfigAddedError):
        labbook.submit(script, params={"lrr": 0.1}, store=url)
    assert not os.path.exists(tmp_path / "runs.db") or not labbook.Api(url).runs()


PLAIN = textwrap.dedent('''
    import labbook

    labbook.start_run("atlas-project", config={"learning_rate": 0.1, "layers": [4]})
    params = labbook.load_parameters()
    for epoch in range(3):
        labbook.log_metric("accuracy", params["learning_rate"] * (epoch + 1))
    labbook.log_param("layers_used", len(params["layers"]))
''')


def test_a_plain_script_gets_its_params_from_load_parameters(tmp_path, url):
    # Foundations' way: the job script calls start_run and load_parameters; the submitted
    # params override what the script gives itself
    path = tmp_path / "job.py"
    path.write_text(PLAIN)
    job = labbook.submit(str(path), params={"learning_rate": 0.25, "layers": [8, 8]},
                         store=url, tags=["atlas"])
    try:
        assert job.get_param("learning_rate") == 0.25
        assert job.wait(timeout=120) == "COMPLETED", job.run.fail_trace
        assert job.get_metric("accuracy") == pytest.approx(0.75)
        details = job.get_job_details()
        assert details["project_name"] == "atlas-project"
        assert details["params"]["layers"] == [8, 8] and "atlas" in details["tags"]
        assert job.run.info["params"] == {"layers_used": 2}
        assert [r.id for r in labbook.Api(url).runs()] == [job.run_id]
    finally:
        job.close()
    named = labbook.submit(str(path), store=url, project_name="renamed")
    try:
        assert named.wait(timeout=120) == "COMPLETED"
        assert named.get_job_details()["project_name"] == "renamed"
        assert named.get_param("learning_rate") == 0.1   # the script's own value
    finally:
        named.close()


def test_a_plain_script_that_starts_no_run_fails_its_run_with_its_output(tmp_path, url):
    path = tmp_path / "forgot.py"
    path.write_text("print('training without a run')\n")
    job = labbook.submit(str(path), params={"lr": 1}, store=url)
    try:
        assert job.wait(timeout=120) == "FAILED"
        trace = job.run.fail_trace
        assert "exited with status 0 before starting the run" in trace
        assert "training without a run" in trace
    finally:
        job.close()
