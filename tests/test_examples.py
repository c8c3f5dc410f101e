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
