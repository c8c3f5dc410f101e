"""The README's quickstart commands work as written."""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", quickstart, re.S)


def test_quickstart_has_the_two_commands():
    install_and_run, test = readme_commands()
    assert install_and_run.startswith("python -m pip install . && ")
    assert test == 'python -m pip install -e ".[test]" && python -m pytest'
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as fh:
        assert 'python -m pip install -q -e ".[test]" && python -m pytest' in fh.read()


def test_quickstart_runs_an_experiment_and_shows_the_stored_run(tmp_path):
    install_and_run, _ = readme_commands()
    # The package is installed already (the test command installed it): run the rest.
    rest = install_and_run.split(" && ", 1)[1]
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples")
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PYTHONPATH=ROOT, PATH=bindir + os.pathsep + os.environ["PATH"])
    env.pop("LABBOOK_STORE", None)
    if not shutil.which("labbook", path=env["PATH"]):
        # not installed as a distribution (e.g. running from a bare checkout): same entry point
        rest = rest.replace("labbook ", f"{sys.executable} -m labbook.cli.main ")
    rest = rest.replace("python ", f"{sys.executable} ", 1)
    proc = subprocess.run(["bash", "-c", rest], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Hello Bob!" in proc.stdout
    assert "COMPLETED" in proc.stdout and "recipient = 'Bob'" in proc.stdout
