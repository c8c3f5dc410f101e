"""Config files that would run code when loaded (jsonpickle object tags, pickle) are refused
unless trusted; plain JSON is read as plain JSON."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from labbook import Experiment
from labbook.config.files import load_config_file
from labbook.errors import UntrustedConfigFileError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _evil_json(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"lr": 0.1, "opt": {"py/reduce": [
        {"py/function": "os.makedirs"}, {"py/tuple": [str(marker)]}]}}
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path, marker


class _Opener:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _evil_pickle(tmp_path, ext=".pickle"):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{ext}"
    path.write_bytes(pickle.dumps({"lr": 0.1, "x": _Opener(str(marker))}))
    return path, marker


def test_json_with_reduce_tag_is_refused_and_never_runs(tmp_path):
    path, marker = _evil_json(tmp_path)
    with pytest.raises(UntrustedConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (
        f"Cannot load config file {path}: entry 'opt' holds the jsonpickle tag 'py/reduce', "
        "which runs code when restored, so the file is refused; for a file you trust, use "
        "add_config(path, trusted=True) or list it in labbook.SETTINGS.CONFIG.TRUSTED_FILES "
        "(or LABBOOK_TRUSTED_CONFIG_FILES)")
    assert not marker.exists()


@pytest.mark.parametrize("ext", [".pickle", ".pkl"])
def test_pickle_is_refused_and_never_runs(tmp_path, ext):
    path, marker = _evil_pickle(tmp_path, ext)
    with pytest.raises(UntrustedConfigFileError) as info:
        load_config_file(path)
    assert str(info.value).startswith(
        f"Cannot load config file {path}: pickle files run code when loaded, so they are "
        "refused; for a file you trust, use add_config(path, trusted=True)")
    assert not marker.exists()


def test_trusted_argument_and_setting_allow_the_file(tmp_path, monkeypatch):
    path, marker = _evil_pickle(tmp_path)
    assert load_config_file(path, trusted=True)["lr"] == 0.1
    assert marker.exists()
    marker.rmdir()
    import labbook

    monkeypatch.setitem(labbook.SETTINGS.CONFIG, "TRUSTED_FILES", [str(tmp_path)])
    assert load_config_file(path)["lr"] == 0.1
    assert marker.exists()
    monkeypatch.setitem(labbook.SETTINGS.CONFIG, "TRUSTED_FILES", [str(tmp_path / "other")])
    with pytest.raises(UntrustedConfigFileError):
        load_config_file(path)


def test_plain_json_with_tuple_and_set_tags_loads_without_trust(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"a": {"py/tuple": [1, 2]}, "b": {"py/set": ["x"]},
                                "c": [{"d": "py/reduce"}]}), encoding="utf-8")
    assert load_config_file(path) == {"a": (1, 2), "b": {"x"}, "c": [{"d": "py/reduce"}]}


def test_add_config_refuses_at_run_and_trusted_keyword_allows(tmp_path):
    path, marker = _evil_json(tmp_path)
    ex = Experiment("evil")
    ex.add_config(str(path))

    @ex.main
    def main(lr):
        return lr

    with pytest.raises(UntrustedConfigFileError):
        ex.run()
    assert not marker.exists()
    ok = Experiment("trusted")
    ok.add_config(str(path), trusted=True)
    ok.main(lambda lr: lr)
    assert ok.run().result == 0.1
    assert marker.exists()
    # without a file, 'trusted' is an ordinary config entry
    plain = Experiment("plain")
    plain.add_config(trusted=True)
    plain.main(lambda trusted: trusted)
    assert plain.run().result is True


@pytest.mark.parametrize("command", ["print_config", "main"])
def test_command_line_with_evil_file(tmp_path, command):
    path, marker = _evil_json(tmp_path)
    script = tmp_path / "exp.py"
    script.write_text(textwrap.dedent("""
        from labbook import Experiment
        ex = Experiment("cli")

        @ex.config
        def cfg():
            lr = 0.0
            opt = None

        @ex.automain
        def main(lr):
            return lr
    """), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_TRUSTED_CONFIG_FILES", None)
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.run([sys.executable, str(script), command, "with", str(path), "-u"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == UntrustedConfigFileError.exit_code
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: Cannot load config file {path}: entry 'opt' holds the "
                           "jsonpickle tag 'py/reduce'"), proc.stderr
    assert not marker.exists()
    env["LABBOOK_TRUSTED_CONFIG_FILES"] = str(path)
    proc = subprocess.run([sys.executable, str(script), "print_config", "with", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


@pytest.mark.parametrize("ext", [".pkl", ".pickle", ".yaml"])
@pytest.mark.parametrize("command", ["print_config", "main"])
def test_command_line_with_a_pickle_or_a_yaml_object_tag(tmp_path, command, ext):
    if ext == ".yaml":  # PyYAML's tag for "call this function" (its unsafe loader obeys it)
        marker = tmp_path / "pwned"
        path = tmp_path / "evil.yaml"
        path.write_text(f"lr: !!python/object/apply:os.makedirs ['{marker}']\n",
                        encoding="utf-8")
    else:
        path, marker = _evil_pickle(tmp_path, ext)
    script = tmp_path / "exp.py"
    script.write_text("from labbook import Experiment\nex = Experiment('cli')\n\n"
                      "@ex.config\ndef cfg():\n    lr = 0.0\n    x = None\n\n"
                      "@ex.automain\ndef main(lr):\n    return lr\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    proc = subprocess.run([sys.executable, str(script), command, "with", str(path), "-u"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"Error: Cannot load config file {path}"), proc.stderr
    assert not marker.exists()
