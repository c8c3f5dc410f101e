"""Every example in examples/ runs as a script, as a user would run it."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(name, *args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    return proc


def test_every_example_is_covered():
    covered = {name for name, *_ in CASES}
    scripts = {n for n in os.listdir(EXAMPLES) if n.endswith(".py")}
    assert scripts <= covered, f"examples without a test: {sorted(scripts - covered)}"


CASES = [
    ("hello_world.py", (), "Hello world!"),
    ("hello_config_dict.py", (), "Hello world!"),
    ("hello_config_dict.py", ("with", "message='Hi there!'"), "Hi there!"),
    ("hello_config_scope.py", (), "Hello world!"),
    ("hello_config_scope.py", ("with", "recipient=Bob"), "Hello Bob!"),
    ("captured_functions.py", ("with", "optimizer.lr=0.5"), "lr=0.5 momentum=0.9"),
    ("commands.py", ("scream",), "HELLO!"),
    ("commands.py", ("whisper", "with", "message='PSST'"), "psst..."),
    ("named_configs.py", ("with", "large"), "12 layers x 512 units = 6144"),
    ("named_configs.py", ("with", "large", "layers=2"), "2 layers x 512 units = 1024"),
    ("named_configs.py", ("with", "tiny"), "1 layers x 8 units = 8"),
    ("ingredients.py", (), "loading data.csv"),
    ("ingredients.py", ("with", "dataset.small"), "loading small.csv"),
    ("randomness.py", ("with", "seed=123"), "seed: 123"),
    ("metrics_and_artifacts.py", ("with", "epochs=3"), "final loss 0.7290"),
    ("custom_observer.py", (), "[observer] loss: [0.5, 0.25, 0.16666666666666666]"),
    ("analysis.py", (), "runs with accuracy > 0.9: [4, 3]"),
]


@pytest.mark.parametrize("name, args, expected", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CASES])
def test_example_runs(name, args, expected):
    proc = run_example(name, *args)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert "INFO - " in proc.stderr and "Completed after 0:00:0" in proc.stderr


def test_randomness_example_is_reproducible():
    first = run_example("randomness.py", "with", "seed=5").stdout
    second = run_example("randomness.py", "with", "seed=5").stdout
    third = run_example("randomness.py", "with", "seed=6").stdout
    assert first == second and first != third


def test_metrics_example_records_into_a_file_store(tmp_path):
    import json

    proc = run_example("metrics_and_artifacts.py", "-F", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert 'Started run with ID "1"' in proc.stderr
    run = json.loads((tmp_path / "1" / "run.json").read_text())
    assert run["status"] == "COMPLETED" and run["artifacts"] == ["model.json"]
    metrics = json.loads((tmp_path / "1" / "metrics.json").read_text())
    assert metrics["train.loss"]["steps"] == [0, 1, 2, 3, 4]
    assert metrics["val.acc"]["steps"] == [0, 1, 2, 3, 4]
    info = json.loads((tmp_path / "1" / "info.json").read_text())
    assert info["summary"] == {"best_acc": run["result"]}
    assert info["params"] == {"optimizer": "sgd", "batch_size": 32}
    assert json.loads((tmp_path / "1" / "model.json").read_text())["weights"][0] == 0.1
