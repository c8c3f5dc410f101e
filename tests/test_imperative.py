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
