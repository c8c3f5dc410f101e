"""The run lifecycle and the event contract, asserted with a recording observer."""
import datetime
import logging
import os
import subprocess
import sys
import time

import pytest

from labbook import Experiment, LabbookInterrupt, TimeoutInterrupt
from labbook.errors import MetricValueError
from labbook.run import ArtifactNameError
from recording import RecordingObserver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make(main_body=None, observers=None):
    ex = Experiment("lifecycle")
    ex.add_config(a=1)
    ex.observers.extend(observers or [RecordingObserver()])

    @ex.main
    def main(a, _run):
        if main_body:
            return main_body(_run)
        return a + 1

    return ex


def test_completed_run_event_sequence_and_arguments():
    obs = RecordingObserver()
    run = make(observers=[obs]).run(options={"--comment": "first"})
    assert obs.events() == ["started_event", "log_metrics", "heartbeat_event",
                            "completed_event", "join"]
    started = obs.last("started_event")
    assert started["command"] == "main"
    assert started["config"]["a"] == 1 and "seed" in started["config"]
    assert started["ex_info"]["name"] == "lifecycle"
    assert "hostname" in started["host_info"]
    assert isinstance(started["start_time"], datetime.datetime)
    assert started["meta_info"]["comment"] == "first"
    assert started["meta_info"]["command"] == "main"
    assert started["_id"] is None
    completed = obs.last("completed_event")
    assert completed["result"] == 2
    assert completed["stop_time"] >= started["start_time"]
    assert run.status == "COMPLETED" and run.result == 2
    assert run.stop_time == completed["stop_time"]


def test_first_observer_by_priority_decides_the_id():
    low = RecordingObserver(priority=1, return_id="low")
    high = RecordingObserver(priority=10, return_id="high")
    none = RecordingObserver(priority=20, return_id=None)
    run = make(observers=[low, high, none]).run()
    assert run._id == "high"
    assert none.last("started_event")["_id"] is None
    assert high.last("started_event")["_id"] is None
    assert low.last("started_event")["_id"] == "high"


def test_id_option_overrides_observers():
    obs = RecordingObserver(return_id=5)
    run = make(observers=[obs]).run(options={"--id": 99})
    assert run._id == 99
    assert obs.last("started_event")["_id"] == 99


def test_failing_run_reports_filtered_trace_and_reraises():
    obs = RecordingObserver()

    def body(_run):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        make(body, [obs]).run()
    assert obs.events()[-2:] == ["failed_event", "join"]
    trace = obs.last("failed_event")["fail_trace"]
    text = "".join(trace)
    assert "ValueError: boom" in text
    assert "test_run.py" in text
    assert os.sep + "labbook" + os.sep + "run.py" not in text


def test_debug_keeps_labbook_frames():
    def body(_run):
        raise ValueError("boom")

    ex = make(body)
    with pytest.raises(ValueError):
        ex.run(options={"--debug": True})
    assert any(os.sep + "labbook" + os.sep in line for line in ex.current_run.fail_trace)


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), "INTERRUPTED"),
    (TimeoutInterrupt(), "TIMEOUT"),
])
def test_interrupts_set_their_status(exc, status):
    obs = RecordingObserver()

    def body(_run):
        raise exc

    ex = make(body, [obs])
    with pytest.raises(type(exc)):
        ex.run()
    assert obs.last("interrupted_event")["status"] == status
    assert ex.current_run.status == status


def test_custom_interrupt_status():
    class Diverged(LabbookInterrupt):
        STATUS = "DIVERGED"

    def body(_run):
        raise Diverged()

    ex = make(body)
    with pytest.raises(Diverged):
        ex.run()
    assert ex.current_run.status == "DIVERGED"


def test_observer_that_always_raises_never_stops_the_run(caplog):
    broken = RecordingObserver(priority=5, fail_on=["*"])
    good = RecordingObserver()
    with caplog.at_level(logging.ERROR):
        run = make(observers=[broken, good]).run()
    assert run.status == "COMPLETED"
    assert broken.events() == ["started_event", "join"]
    assert good.events()[-2:] == ["completed_event", "join"]
    assert caplog.text.count("Observer RecordingObserver failed in started_event") == 1


def test_queue_only_fires_only_the_queued_event():
    obs = RecordingObserver(return_id=3)
    ran = []
    ex = make(lambda r: ran.append(1), [obs])
    run = ex.run(options={"--queue": True})
    # join: observers that deliver in the background (QueuedObserver) finish or journal
    assert obs.events() == ["queued_event", "join"]
    assert run.status == "QUEUED" and run._id == 3 and ran == []


def test_unobserved_runs_fire_nothing_and_warning_is_logged_once(caplog):
    obs = RecordingObserver()
    make(observers=[obs]).run(options={"--unobserved": True})
    assert obs.events() == []
    ex = Experiment("lonely")

    @ex.main
    def main():
        pass

    with caplog.at_level(logging.WARNING):
        ex.run()
    assert caplog.text.count("No observers have been added to this run") == 1


def test_heartbeats_carry_metrics_logged_between_beats():
    obs = RecordingObserver()

    def body(_run):
        _run.log_scalar("loss", 1.0)
        _run.info["epoch"] = 1
        time.sleep(0.35)
        _run.log_scalar("loss", 0.5)
        _run.log_scalar("acc", 0.9, step=10)
        time.sleep(0.35)
        return "done"

    make(body, [obs]).run(options={"--beat-interval": 0.25, "--no-system-metrics": True})
    beats = [kw for name, kw in obs.calls if name == "heartbeat_event"]
    assert len(beats) >= 3
    assert beats[0]["info"]["epoch"] == 1 and beats[0]["result"] is None
    assert beats[-1]["result"] == "done"
    metric_calls = [kw["metrics_by_name"] for name, kw in obs.calls if name == "log_metrics"]
    losses = [(s, v) for m in metric_calls if "loss" in m
              for s, v in zip(m["loss"]["steps"], m["loss"]["values"])]
    assert losses == [(0, 1.0), (1, 0.5)]
    assert len([m for m in metric_calls if "loss" in m]) == 2  # one point per beat
    acc = [m["acc"] for m in metric_calls if "acc" in m][0]
    assert acc["steps"] == [10] and isinstance(acc["timestamps"][0], datetime.datetime)
    # each series also carries its name, as Sacred's observers receive it
    assert all(series["name"] == name for m in metric_calls for name, series in m.items())
    events = obs.events()
    assert events.index("completed_event") > max(i for i, e in enumerate(events)
                                                 if e == "heartbeat_event")


def test_many_points_go_to_the_observers_before_the_next_beat(monkeypatch):
    # a fast loop between beats: once enough points wait, the heartbeat thread sends them
    # early (without a heartbeat), so memory does not hold a whole beat interval of points
    import labbook.run

    monkeypatch.setattr(labbook.run, "_FLUSH_POINTS", 50)
    obs = RecordingObserver()

    def body(_run):
        for i in range(60):
            _run.log_scalar("loss", float(i))
        deadline = time.monotonic() + 10
        while not any(name == "log_metrics" for name, _ in obs.calls):
            assert time.monotonic() < deadline, "no early delivery"
            time.sleep(0.02)
        _run.log_scalar("loss", 60.0)

    make(body, [obs]).run(options={"--beat-interval": 60, "--no-system-metrics": True})
    sent = [kw["metrics_by_name"]["loss"]["steps"] for name, kw in obs.calls
            if name == "log_metrics"]
    assert sent == [list(range(60)), [60]]  # early, then the rest at the last beat
    assert [name for name, _ in obs.calls].count("heartbeat_event") == 1  # only the last


def test_log_scalar_waits_for_a_slow_observer_once_too_many_points_wait(monkeypatch):
    # back-pressure: while the heartbeat thread sends points, a loop that logs faster than
    # the observer stores them is held at _HOLD_POINTS waiting points; nothing is lost
    import labbook.run

    monkeypatch.setattr(labbook.run, "_FLUSH_POINTS", 50)
    monkeypatch.setattr(labbook.run, "_HOLD_POINTS", 100)
    monkeypatch.setattr(labbook.run, "_HOLD_EVERY", 1)
    seen = {"waiting": [], "steps": []}
    state = {}

    class SlowObserver(RecordingObserver):
        def log_metrics(self, metrics_by_name, info):
            if "run" in state and not seen["waiting"]:
                time.sleep(0.5)  # a slow store: the loop runs on meanwhile
                seen["waiting"].append(state["run"]._metrics.size())
            seen["steps"] += metrics_by_name.get("loss", {}).get("steps", [])

    def body(_run):
        state["run"] = _run
        for i in range(60):
            _run.log_scalar("loss", float(i))
        deadline = time.monotonic() + 10
        while _run.log_scalar == _run._metrics.add:  # until the first send begins
            assert time.monotonic() < deadline, "no early delivery"
            time.sleep(0.01)
        for i in range(60, 5000):
            _run.log_scalar("loss", float(i))

    options = {"--beat-interval": 60, "--no-system-metrics": True}
    make(body, [SlowObserver()]).run(options=options)
    assert seen["waiting"] and seen["waiting"][0] <= 100
    assert seen["steps"] == list(range(5000))


def test_system_metrics_are_logged_by_default():
    obs = RecordingObserver()
    make(observers=[obs]).run()
    names = set()
    for name, kw in obs.calls:
        if name == "log_metrics":
            names |= set(kw["metrics_by_name"])
    assert "system.cpu_percent" in names and "system.memory_percent" in names


def test_log_scalar_validation_and_nan():
    def body(_run):
        _run.log_scalar("x", float("nan"))
        _run.log_scalar("x", float("inf"))
        _run.log_scalar("b", True)
        with pytest.raises(MetricValueError, match="Metric 'bad' must be a real number"):
            _run.log_scalar("bad", "high")
        return dict(_run.summary)

    obs = RecordingObserver()
    result = make(body, [obs]).run(options={"--no-system-metrics": True}).result
    assert result["x"] == float("inf") and result["b"] == 1
    values = obs.last("log_metrics")["metrics_by_name"]["x"]["values"]
    assert values[0] != values[0] and values[1] == float("inf")


def test_wandb_style_log_with_global_step_and_summary():
    def body(_run):
        _run.log({"loss": 1.0, "val": {"acc": 0.5}})
        _run.log({"loss": 0.5}, commit=False)
        _run.log({"extra": 3})
        _run.log({"loss": 0.1}, step=10)
        _run.summary["best"] = 0.99
        return dict(_run.summary)

    obs = RecordingObserver()
    run = make(body, [obs]).run(options={"--no-system-metrics": True})
    metrics = {}
    for name, kw in obs.calls:
        if name == "log_metrics":
            for key, series in kw["metrics_by_name"].items():
                metrics.setdefault(key, []).extend(zip(series["steps"], series["values"]))
    assert metrics["loss"] == [(0, 1.0), (1, 0.5), (10, 0.1)]
    assert metrics["val.acc"] == [(0, 0.5)]
    assert metrics["extra"] == [(1, 3)]
    assert run.result["loss"] == 0.1 and run.result["best"] == 0.99
    assert obs.last("heartbeat_event")["info"]["summary"] == {"best": 0.99}


def test_params_and_tags():
    def body(_run):
        _run.log_param("lr", 0.1)
        _run.log_params({"batch": 32, "layers": [1, 2]})
        _run.set_tag("best")
        _run.set_tag("owner", "ana")
        with pytest.raises(TypeError, match="Parameter 'model'"):
            _run.log_param("model", object())

    obs = RecordingObserver()
    run = make(body, [obs]).run(options={"--tag": ["cli"]})
    info = obs.last("heartbeat_event")["info"]
    assert info["params"] == {"lr": 0.1, "batch": 32, "layers": [1, 2]}
    assert info["tags"] == {"best": None, "owner": "ana"}
    assert run.meta_info["tags"] == ["cli", "best", "owner"]


def test_artifacts_and_resources(tmp_path):
    data = tmp_path / "plot.png"
    data.write_bytes(b"\x89PNG")
    res = tmp_path / "input.txt"
    res.write_text("hello")

    def body(_run):
        _run.add_artifact(str(data))
        _run.add_artifact(data, name="figures/loss.png", metadata={"k": 1})
        with _run.open_resource(res) as fh:
            assert fh.read() == "hello"
        for bad in ("../escape", "/abs/path", "a\x00b"):
            with pytest.raises(ArtifactNameError):
                _run.add_artifact(data, name=bad)

    obs = RecordingObserver()
    make(body, [obs]).run()
    arts = [kw for name, kw in obs.calls if name == "artifact_event"]
    assert arts[0] == {"name": "plot.png", "filename": str(data), "metadata": None,
                       "content_type": "image/png"}
    assert arts[1]["name"] == "figures/loss.png" and arts[1]["metadata"] == {"k": 1}
    assert obs.last("resource_event")["filename"] == str(res)


def test_captured_output_reaches_heartbeats_and_run():
    obs = RecordingObserver()

    def body(_run):
        print("progress 10%\rprogress 100%")
        print("done")

    run = make(body, [obs]).run(options={"--capture": "sys"})
    assert "progress 100%\ndone\n" in run.captured_out
    assert "progress 10%" not in run.captured_out
    assert "done" in obs.last("heartbeat_event")["captured_out"]


def test_fd_capture_includes_subprocess_output(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(
        "import subprocess, sys\n"
        "sys.path.insert(0, %r)\n"
        "from labbook import Experiment\n"
        "from labbook.observers import RunObserver\n"
        "class Obs(RunObserver):\n"
        "    out = ''\n"
        "    def heartbeat_event(self, info, captured_out, beat_time, result):\n"
        "        Obs.out = captured_out\n"
        "ex = Experiment('fdcap')\n"
        "ex.observers.append(Obs())\n"
        "@ex.main\n"
        "def main():\n"
        "    subprocess.run(['echo', 'from child'])\n"
        "ex.run(options={'--capture': 'fd'})\n"
        "open(%r, 'w').write(Obs.out)\n" % (ROOT, str(tmp_path / "out.txt")))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "from child" in (tmp_path / "out.txt").read_text()
    assert "from child" in proc.stdout


def test_a_run_starts_only_once():
    ex = make()
    run = ex._create_run()
    run()
    with pytest.raises(RuntimeError, match="only be started once"):
        run()


def test_a_long_backlog_reaches_the_observers_in_events_of_bounded_size(monkeypatch):
    import labbook.run

    monkeypatch.setattr(labbook.run, "_SEND_POINTS", 40)
    obs = RecordingObserver()

    def body(_run):
        for i in range(100):
            _run.log_scalar("loss", float(i))
        for i in range(30):
            _run.log_scalar("acc", i, i)
        _run.log({"wide": 1.0}, commit=False)

    make(body, [obs]).run(options={"--beat-interval": 60, "--no-system-metrics": True})
    sent = [kw["metrics_by_name"] for name, kw in obs.calls if name == "log_metrics"]
    assert [sum(len(s["steps"]) for s in m.values()) for m in sent] == [40, 40, 40, 11]
    steps = {}
    for m in sent:
        for key, series in m.items():
            steps.setdefault(key, []).extend(series["steps"])
    assert steps == {"loss": list(range(100)), "acc": list(range(30)), "wide": [0]}
