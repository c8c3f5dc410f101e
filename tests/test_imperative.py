"""Runs without decorators: labbook.start_run and the module-level helpers."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zlib

import pytest

import labbook
from labbook import Api, Experiment
from labbook.errors import NoActiveRunError, RunStateError
from labbook.imperative import png_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def no_leftover_run():
    yield
    from labbook import imperative

    for run in list(imperative._started):  # a failing test must not leave a run active
        run.finish()


def series(got, key):
    """(steps, values) of one metric of a run read back."""
    frame = got.history(key, samples=None)
    return list(frame["_step"]), list(frame[key])


def values(got, key):
    return series(got, key)[1]


def read_back(store):
    api = Api(str(store))
    return api, api.runs()


def test_a_with_block_records_config_metrics_params_and_artifacts(tmp_path):
    store = tmp_path / "runs"
    with labbook.start_run("nb", config={"lr": 0.1, "layers": [1, 2]}, name="first try",
                           tags=["baseline", "cpu"], notes="trying things", group="fold-A",
                           store=str(store), system_metrics=False) as run:
        assert labbook.current_run() is run
        print("inside the block")
        for step in range(3):
            labbook.log({"loss": 1.0 / (step + 1), "acc": {"train": step * 0.1}})
        labbook.log_scalar("lr", 0.1)
        labbook.log_param("optimizer", "adam")
        labbook.log_params({"batch": 32, "dims": [3, 4]})
        labbook.set_tag("promising")
        assert labbook.load_parameters() == {"lr": 0.1, "layers": [1, 2],
                                             "seed": run.config["seed"]}
    assert run.status == "COMPLETED" and labbook.current_run() is None
    api, runs = read_back(store)
    assert len(runs) == 1
    got = runs[0]
    assert got.status == "COMPLETED"
    assert got.config["lr"] == 0.1 and got.config["layers"] == [1, 2]
    assert got.name == "first try" and got.notes == "trying things"
    assert got.tags == ["baseline", "cpu", "promising"]
    assert got.meta["group"] == "fold-A"
    assert got.info["params"] == {"optimizer": "adam", "batch": 32, "dims": [3, 4]}
    assert series(got, "loss")[0] == [0, 1, 2]
    assert values(got, "acc.train") == [0.0, 0.1, 0.2]
    assert values(got, "lr") == [0.1]
    assert "inside the block" in got.captured_out
    assert got.experiment["name"] == "nb"


def test_finish_ends_the_run_and_a_second_finish_does_nothing(tmp_path):
    run = labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False)
    labbook.log_scalar("x", 1.5)
    run.finish()
    run.finish()
    assert run.status == "COMPLETED"
    with pytest.raises(NoActiveRunError, match=r"No active run: start one with "
                                               r"labbook.start_run"):
        labbook.log_scalar("x", 2.0)
    _, runs = read_back(tmp_path / "runs")
    assert values(runs[0], "x") == [1.5]


def test_a_non_zero_exit_code_marks_the_run_failed(tmp_path):
    run = labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False)
    labbook.finish(exit_code=3)
    assert run.status == "FAILED"
    _, runs = read_back(tmp_path / "runs")
    assert runs[0].status == "FAILED"
    assert runs[0].fail_trace == "The run finished with exit code 3.\n"


def test_an_exception_in_the_block_fails_the_run_and_is_raised(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False) as run:
            labbook.log_scalar("x", 1)
            1 / 0
    assert run.status == "FAILED"
    _, runs = read_back(tmp_path / "runs")
    assert runs[0].status == "FAILED"
    assert runs[0].fail_trace.endswith("ZeroDivisionError: division by zero\n")
    assert values(runs[0], "x") == [1]  # what was logged before is kept


def test_keyboard_interrupt_in_the_block_marks_the_run_interrupted(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False):
            raise KeyboardInterrupt
    _, runs = read_back(tmp_path / "runs")
    assert runs[0].status == "INTERRUPTED"


def test_one_active_run_unless_reinit(tmp_path):
    store = str(tmp_path / "runs")
    first = labbook.start_run(store=store, system_metrics=False)
    with pytest.raises(RunStateError, match=r"A run started with start_run is still active "
                                            r"\(id 1\); call run.finish\(\) first, or "
                                            r"start_run\(\.\.\., reinit=True\)"):
        labbook.start_run(store=store)
    second = labbook.start_run(store=store, reinit=True, system_metrics=False)
    assert first.status == "COMPLETED" and second.status == "RUNNING"
    second.finish()
    assert [r.status for r in read_back(store)[1]] == ["COMPLETED", "COMPLETED"]


def test_bad_arguments_get_clear_errors(tmp_path):
    with pytest.raises(labbook.LabbookError, match=r"capture must be one of sys, fd, no, "
                                                   r"not 'tee'"):
        labbook.start_run(store=str(tmp_path), capture="tee")
    with pytest.raises(labbook.LabbookError, match=r"config must be a dict or a config "
                                                   r"file's path, got list"):
        labbook.start_run(store=str(tmp_path), config=[1])
    assert not os.listdir(tmp_path)  # nothing was recorded


@pytest.mark.parametrize("call", [
    lambda: labbook.log({"a": 1}), lambda: labbook.log_scalar("a", 1),
    lambda: labbook.log_metric("a", 1), lambda: labbook.log_param("a", 1),
    lambda: labbook.log_params({"a": 1}), lambda: labbook.set_tag("a"),
    lambda: labbook.save_artifact(__file__), lambda: labbook.log_text("t", "a"),
    lambda: labbook.log_dict("a", {}), lambda: labbook.load_parameters(),
    lambda: labbook.log_artifact(__file__), lambda: labbook.use_artifact("model:best"),
], ids=["log", "log_scalar", "log_metric", "log_param", "log_params", "set_tag",
        "save_artifact", "log_text", "log_dict", "load_parameters", "log_artifact",
        "use_artifact"])
def test_helpers_without_an_active_run_say_so(call):
    with pytest.raises(NoActiveRunError, match=r"^No active run: start one with "
                                               r"labbook.start_run\(\.\.\.\) \(or call this "
                                               r"from the code of a running experiment\)\.$"):
        call()


def test_helpers_act_on_a_decorated_experiments_run(tmp_path):
    ex = Experiment("decorated", interactive=True)

    @ex.config
    def cfg():
        width = 3

    @ex.main
    def main(width):
        labbook.log({"loss": 0.5})
        labbook.log_metric("acc", 0.9)
        labbook.log_param("width_seen", width)
        labbook.log_text("hello", "greeting")
        return labbook.load_parameters()["width"]

    run = ex.run(options={"--store": str(tmp_path / "runs"), "--group": "sweep-1"})
    assert run.result == 3
    got = read_back(tmp_path / "runs")[1][0]
    assert values(got, "loss") == [0.5]
    assert values(got, "acc") == [0.9]
    assert got.info["params"] == {"width_seen": 3}
    assert got.artifacts == ["greeting.txt"]
    assert got.meta["group"] == "sweep-1"


def test_log_metric_appends_numbers_and_keeps_text(tmp_path):
    with labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False):
        labbook.log_metric("accuracy", 0.90)
        labbook.log_metric("accuracy", 0.93)
        labbook.log_metric("rmse", "0.9")  # experiment_results_manager logs numbers as text
        labbook.log_metric("verdict", "good")
        labbook.log_metric("verdict", ["still", "good"])
        with pytest.raises(TypeError, match=r"Metric 'bad' has a value of type dict; log "
                                            r"numbers, text or lists of them\."):
            labbook.log_metric("bad", {"a": 1})
    got = read_back(tmp_path / "runs")[1][0]
    assert values(got, "accuracy") == [0.90, 0.93]
    assert series(got, "accuracy")[0] == [0, 1]
    assert values(got, "rmse") == [0.9]
    assert got.info["text_metrics"] == {"verdict": ["good", ["still", "good"]]}


def test_numpy_values_are_converted_and_other_types_named(tmp_path):
    np = pytest.importorskip("numpy")
    with labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False):
        labbook.log({"loss": np.float32(0.25), "n": np.int64(4)})
        labbook.log_param("shape", np.array([2, 3]))
        labbook.log_param("alpha", np.float64(0.5))
        with pytest.raises(TypeError, match=r"Parameter 'model' has a value of type object; "
                                            r"use numbers, text, booleans or \(nested\) lists "
                                            r"of them\."):
            labbook.log_param("model", object())
        labbook.log_dict("stats", {"mean": np.float64(1.5), "hist": np.arange(3)})
    got = read_back(tmp_path / "runs")[1][0]
    assert values(got, "loss") == [0.25]
    assert got.info["params"] == {"shape": [2, 3], "alpha": 0.5}
    assert json.loads(got.file("stats.json").read_bytes()) == {"mean": 1.5, "hist": [0, 1, 2]}


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, colour type, raw rows) of an unfiltered 8-bit PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length:pos + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    width, height = int.from_bytes(chunks[b"IHDR"][:4], "big"), \
        int.from_bytes(chunks[b"IHDR"][4:8], "big")
    return width, height, chunks[b"IHDR"][9], zlib.decompress(chunks[b"IDAT"])


def test_png_bytes_encodes_grey_rgb_and_rgba_arrays():
    np = pytest.importorskip("numpy")
    grey = np.array([[0, 255], [128, 1]], dtype=np.uint8)
    assert _decode_png(png_bytes(grey)) == (2, 2, 0, b"\x00\x00\xff\x00\x80\x01")
    rgb = np.zeros((1, 2, 3))
    rgb[0, 1] = [1.0, 0.5, 0.0]
    assert _decode_png(png_bytes(rgb)) == (2, 1, 2, b"\x00" + bytes([0, 0, 0, 255, 128, 0]))
    rgba = np.full((1, 1, 4), 7, dtype=np.int64)
    assert _decode_png(png_bytes(rgba)) == (1, 1, 6, b"\x00\x07\x07\x07\x07")
    with pytest.raises(TypeError, match=r"An image array must be H×W, H×W×3 or H×W×4, got "
                                        r"shape \(2, 2, 2\)\."):
        png_bytes(np.zeros((2, 2, 2)))
    with pytest.raises(labbook.LabbookError, match=r"values 0-255 \(got 0\.\.300\)"):
        png_bytes(np.array([[0, 300]]))
    with pytest.raises(labbook.LabbookError, match="must not hold NaN"):
        png_bytes(np.array([[np.nan]]))


def test_images_and_figures_become_artifacts(tmp_path):
    np = pytest.importorskip("numpy")
    pytest.importorskip("matplotlib")
    from PIL import Image

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_file = tmp_path / "on_disk.png"
    Image.new("RGB", (3, 2), (10, 20, 30)).save(png_file)
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with labbook.start_run(store=str(tmp_path / "runs"), system_metrics=False):
        assert labbook.log_image(np.ones((4, 6)), "ones") == "ones.png"
        assert labbook.log_image(Image.new("L", (5, 5), 9), "pil") == "pil.png"
        assert labbook.log_image(png_file.read_bytes(), "raw") == "raw.png"
        assert labbook.log_image(str(png_file), "from_path") == "from_path.png"
        assert labbook.log_figure(fig, "curve") == "curve.png"
        assert labbook.log_figure(ax, "curve_axes") == "curve_axes.png"
        labbook.save_artifact(str(png_file), "Loss_Curve")
        with pytest.raises(TypeError, match=r"log_image\('x'\): the bytes are not a PNG, "
                                            r"JPEG or GIF image\."):
            labbook.log_image(b"hello", "x")
        with pytest.raises(TypeError, match=r"log_figure\('x'\) takes a matplotlib Figure or "
                                            r"Axes or a plotly Figure, got str\."):
            labbook.log_figure("not a figure", "x")
    plt.close(fig)
    got = read_back(tmp_path / "runs")[1][0]
    assert sorted(got.artifacts) == ["Loss_Curve.png", "curve.png", "curve_axes.png",
                                     "from_path.png", "ones.png", "pil.png", "raw.png"]
    assert Image.open(io.BytesIO(got.file("ones.png").read_bytes())).size == (6, 4)
    assert Image.open(io.BytesIO(got.file("pil.png").read_bytes())).getpixel((0, 0)) == 9
    assert got.file("raw.png").read_bytes() == png_file.read_bytes()
    assert Image.open(io.BytesIO(got.file("curve.png").read_bytes())).format == "PNG"


def test_the_default_store_is_labbook_store_then_the_embedded_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    with labbook.start_run(system_metrics=False):
        labbook.log_scalar("x", 1)
    assert (tmp_path / "labbook.db").exists()
    assert Api("sqlite:///" + str(tmp_path / "labbook.db")).runs()[0].status == "COMPLETED"
    monkeypatch.setenv("LABBOOK_STORE", str(tmp_path / "elsewhere"))
    with labbook.start_run(system_metrics=False):
        pass
    assert Api(str(tmp_path / "elsewhere")).runs()[0].status == "COMPLETED"


def _script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def test_a_script_that_never_calls_finish_completes_at_exit(tmp_path):
    proc = _script(tmp_path, """
        import labbook
        run = labbook.start_run(config={"k": 2}, store="runs")
        labbook.log_scalar("x", 7)
        print("done")
    """)
    assert proc.returncode == 0, proc.stderr
    got = read_back(tmp_path / "runs")[1][0]
    assert got.status == "COMPLETED" and values(got, "x") == [7]
    assert got.experiment["name"] == "script"
    assert "done" in got.captured_out


def test_a_script_ended_by_an_exception_records_the_failure(tmp_path):
    proc = _script(tmp_path, """
        import labbook
        labbook.start_run(store="runs")
        labbook.log_scalar("x", 1)
        raise RuntimeError("the data is gone")
    """)
    assert proc.returncode == 1
    assert "RuntimeError: the data is gone" in proc.stderr
    got = read_back(tmp_path / "runs")[1][0]
    assert got.status == "FAILED"
    assert got.fail_trace.endswith("RuntimeError: the data is gone\n")
    assert values(got, "x") == [1]


def test_a_notebook_runs_headless_and_its_run_is_read_back(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        "import labbook",
        f"run = labbook.start_run('notebook-demo', config={{'lr': 0.3}}, "
        f"store={str(tmp_path / 'runs')!r}, tags=['nb'])",
        "for step in range(4):\n    labbook.log({'loss': 1 / (step + 1)})\nprint('trained')",
        "labbook.log_param('optimizer', 'sgd')\nlabbook.log_text('a note', 'note')",
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    pass  # a failing cell's error "
        "does not end the run",
        "run.finish()\nprint(run.status)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # the kernel is a new process: it imports labbook from this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", [])]
    assert "COMPLETED\n" in outputs
    got = read_back(tmp_path / "runs")[1][0]
    assert got.status == "COMPLETED"
    assert got.experiment["name"] == "notebook-demo"
    assert got.config["lr"] == 0.3 and got.tags == ["nb"]
    assert values(got, "loss") == [1.0, 0.5, 1 / 3, 0.25]
    assert got.info["params"] == {"optimizer": "sgd"}
    assert got.artifacts == ["note.txt"]
    assert "trained" in got.captured_out


def test_define_metric_chooses_what_the_summary_keeps(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.start_run(store=store, system_metrics=False) as run:
        labbook.define_metric("loss", summary="min")
        labbook.define_metric("acc", summary="max", step_metric="epoch")
        run.define_metric("lr", summary="mean")
        for step, (loss, acc, lr) in enumerate([(0.9, 0.5, 0.1), (0.2, 0.8, 0.2),
                                                (0.4, 0.7, 0.3)]):
            labbook.log({"loss": loss, "acc": acc, "lr": lr, "epoch": step})
            if step == 1:  # the live summary counts the points not sent yet
                assert run.summary["loss"] == 0.2 and run.summary["acc"] == 0.8
        labbook.log_scalar("plain", 3.0)
        run.summary["lr"] = 42  # set by hand: wins over the definition
        with pytest.raises(labbook.LabbookError, match=r"define_metric summary must be one "
                                                       r"of min, max, mean, last, not 'median'"):
            labbook.define_metric("x", summary="median")
    got = read_back(store)[1][0]
    assert got.summary["loss"] == 0.2  # min, not the last 0.4
    assert got.summary["acc"] == 0.8
    assert got.summary["lr"] == 42
    assert got.summary["plain"] == 3.0
    assert got.info["metric_definitions"] == {
        "loss": {"summary": "min"}, "acc": {"summary": "max", "step_metric": "epoch"},
        "lr": {"summary": "mean"}}
    frame = Api(store).runs().to_dataframe()
    assert frame.loc[0, "summary.loss"] == 0.2


def test_define_metric_mean_over_many_beats(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.start_run(store=store, system_metrics=False) as run:
        labbook.define_metric("x", summary="mean")
        for i in range(10):
            labbook.log_scalar("x", float(i))
            run._flush_points()  # each point in its own drain
    assert read_back(store)[1][0].summary["x"] == pytest.approx(4.5)


def test_the_config_changes_before_the_first_metric_and_the_change_is_stored(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.start_run(config={"lr": 0.1, "optim": {"name": "sgd"}}, store=store,
                           system_metrics=False) as run:
        run.config["lr"] = 0.05
        run.config.update({"batch": 64}, width=3)
        run.config["lr"] = 0.01
        with pytest.raises(labbook.LabbookError, match="read-only"):
            run.config["optim"]["name"] = "adam"  # a change inside would not be recorded
        with pytest.raises(RunStateError, match="Config entries cannot be removed"):
            del run.config["lr"]
        assert labbook.load_parameters()["lr"] == 0.01
        labbook.log_scalar("loss", 1.0)
        with pytest.raises(RunStateError, match=r"run.config cannot change once metrics are "
                                                r"logged \(this run logged 'loss'\); set it "
                                                r"before the first metric\."):
            run.config["lr"] = 1.0
    got = read_back(store)[1][0]
    assert got.config["lr"] == 0.01 and got.config["batch"] == 64 and got.config["width"] == 3
    assert got.config["optim"] == {"name": "sgd"}
    assert got.meta["config_changes"] == {"lr": {"from": 0.1, "to": 0.01},
                                          "batch": {"to": 64}, "width": {"to": 3}}


def test_a_decorated_runs_config_stays_read_only(tmp_path):
    ex = Experiment("ro", interactive=True)
    ex.add_config(lr=0.1)

    @ex.main
    def main(_run):
        with pytest.raises(RunStateError, match="read-only"):
            _run.update_config({"lr": 0.2})
        return _run.config["lr"]

    assert ex.run(options={"--store": str(tmp_path / "runs")}).result == 0.1


def test_a_config_change_goes_through_a_queued_observer(tmp_path):
    """The change is an event like the others (queued; journaled and replayed by
    ``labbook sync`` as every other event when the store is away)."""
    from labbook.observers.queued import QueuedObserver
    from labbook.observers import FileStorageObserver

    target = FileStorageObserver(str(tmp_path / "runs"))
    queued = QueuedObserver(target, failure_dir=str(tmp_path / "journal"), max_wait=5)
    with labbook.start_run(observers=[queued], system_metrics=False) as run:
        run.config["lr"] = 0.5
        labbook.log_scalar("x", 1)
    got = read_back(tmp_path / "runs")[1][0]
    assert got.config["lr"] == 0.5 and got.meta["config_changes"] == {"lr": {"to": 0.5}}


def test_run_save_now_end_and_live(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "runs")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_text("a0")
    (tmp_path / "config.yaml").write_text("lr: 1")
    with labbook.start_run(store=store, system_metrics=False, beat_interval=0.05) as run:
        assert run.save("config.yaml", policy="now") == ["config.yaml"]
        assert labbook.save("ckpt/*.pt") == ["ckpt/a.pt"]  # live, base: the current dir
        run.save(str(tmp_path / "logs" / "*.log"), policy="end")
        (tmp_path / "ckpt" / "a.pt").write_text("a1 changed")
        import time
        deadline = time.monotonic() + 10
        view = Api(store)
        while view.run(run._id).file("ckpt/a.pt").read_bytes() != b"a1 changed":
            assert time.monotonic() < deadline, "a live file was not stored again at a beat"
            time.sleep(0.05)
        (tmp_path / "ckpt" / "b.pt").write_text("b")  # new, matching: stored at the latest
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "train.log").write_text("done")
        (tmp_path / "config.yaml").write_text("lr: 2")  # "now": not stored again
        with pytest.raises(labbook.LabbookError, match=r"run.save policy must be one of now, "
                                                       r"end, live, not 'always'"):
            run.save("x", policy="always")
        with pytest.raises(labbook.LabbookError, match=r"run.save: .*missing.txt does not "
                                                       r"exist\."):
            run.save("missing.txt", policy="now")
    got = read_back(store)[1][0]
    assert sorted(got.artifacts) == ["ckpt/a.pt", "ckpt/b.pt", "config.yaml", "train.log"]
    assert got.file("config.yaml").read_bytes() == b"lr: 1"
    assert got.file("train.log").read_bytes() == b"done"


def test_restore_downloads_a_runs_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "runs")
    (tmp_path / "model.bin").write_bytes(b"weights")
    with labbook.start_run(store=store, system_metrics=False) as first:
        labbook.save("model.bin", policy="now")
    (tmp_path / "model.bin").unlink()
    with labbook.start_run(store=store, system_metrics=False):
        path = labbook.restore("model.bin", run_path=first._id, root=str(tmp_path / "back"))
    assert open(path, "rb").read() == b"weights"
    path = labbook.restore("model.bin", run_path=f"team/project/{first._id}",
                           root=str(tmp_path / "again"), store=store)
    assert open(path, "rb").read() == b"weights"
    with pytest.raises(labbook.LabbookError, match=r"Run 1 has no artifact 'nope\.bin' "
                                                   r"\(it has: model\.bin\)\."):
        labbook.restore("nope.bin", run_path=first._id, store=store)


def test_a_syncable_directory_goes_from_run_to_run(tmp_path):
    store = str(tmp_path / "runs")
    with labbook.start_run(store=store, system_metrics=False) as first:
        directory = labbook.create_syncable_directory("search_state", str(tmp_path / "s1"))
        (tmp_path / "s1" / "sub").mkdir()
        (tmp_path / "s1" / "hello.csv").write_text("1,2,3\n")
        (tmp_path / "s1" / "sub" / "best.txt").write_text("0.9")
    assert repr(directory) == f"SyncableDirectory('search_state', '{tmp_path / 's1'}')"
    with labbook.start_run(store=store, system_metrics=False):
        labbook.create_syncable_directory("search_state", directory_path=str(tmp_path / "s2"),
                                          source_job_id=first._id)
        assert (tmp_path / "s2" / "hello.csv").read_text() == "1,2,3\n"
        assert (tmp_path / "s2" / "sub" / "best.txt").read_text() == "0.9"
        (tmp_path / "s2" / "hello.csv").write_text("4,5,6\n")
    runs = {r.id: r for r in read_back(store)[1]}
    assert sorted(runs[first._id].artifacts) == ["search_state/hello.csv",
                                                 "search_state/sub/best.txt"]
    second = runs[first._id + 1]
    assert second.file("search_state/hello.csv").read_bytes() == b"4,5,6\n"


def test_a_killed_process_leaves_its_run_died(tmp_path, monkeypatch):
    """A notebook kernel that dies (here: a process killed with SIGKILL) stops the heartbeat;
    readers report the run DIED once it misses three beats."""
    import signal
    import time

    script = tmp_path / "kernel.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import labbook
        run = labbook.start_run("nb", store="runs", beat_interval=0.2)
        labbook.log_scalar("x", 1)
        print("started", flush=True)
        time.sleep(600)
    """))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n"
        time.sleep(0.5)  # a beat stores the point
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    monkeypatch.setattr("labbook.stores.query.MIN_SILENCE", 0.5)
    deadline = time.monotonic() + 30
    while read_back(tmp_path / "runs")[1][0].status != "DIED":
        assert time.monotonic() < deadline, "the run was never reported DIED"
        time.sleep(0.2)
    got = read_back(tmp_path / "runs")[1][0]
    assert got.stored_status == "RUNNING"
    assert values(got, "x") == [1]


def test_the_helpers_inside_an_automain_script(tmp_path):
    script = tmp_path / "auto.py"
    script.write_text(textwrap.dedent("""
        import labbook
        from labbook import Experiment
        ex = Experiment("auto")

        @ex.config
        def cfg():
            epochs = 2

        @ex.automain
        def main(epochs):
            for epoch in range(epochs):
                labbook.log({"loss": 1.0 / (epoch + 1)})
            labbook.log_param("epochs_seen", epochs)
            labbook.set_tag("automain")
            labbook.log_text("from the helpers", "note")
            return labbook.current_run().config["epochs"]
    """))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.run([sys.executable, str(script), "with", "epochs=3", "-F", "runs"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = read_back(tmp_path / "runs")[1][0]
    assert got.result == 3
    assert values(got, "loss") == [1.0, 0.5, 1 / 3]
    assert got.info["params"] == {"epochs_seen": 3} and "automain" in got.tags
    assert got.artifacts == ["note.txt"]
