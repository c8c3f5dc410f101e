"""Host info: built-in keys, custom getters, captured environment, GPUs and redaction."""
from __future__ import annotations

import json
import logging
import os
import platform
import stat
import sys

import pytest

import labbook
from labbook import host_info
from labbook.host_info import (IgnoreHostInfo, get_host_info, host_info_gatherers,
                               host_info_getter, parse_nvidia_smi_xml, redact, redact_env)

NVIDIA_SMI_XML = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
  <timestamp>Mon Jan  1 00:00:00 2024</timestamp>
  <driver_version>535.104.05</driver_version>
  <cuda_version>12.2</cuda_version>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA GeForce RTX 3090</product_name>
    <persistence_mode>Enabled</persistence_mode>
    <fb_memory_usage><total>24576 MiB</total><used>1 MiB</used></fb_memory_usage>
  </gpu>
  <gpu id="00000000:02:00.0">
    <product_name>Tesla T4</product_name>
    <persistence_mode>Disabled</persistence_mode>
    <fb_memory_usage><total>15360 MiB</total><used>0 MiB</used></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
"""


@pytest.fixture
def registry():
    """Restore the getter registry after a test adds to it."""
    saved = dict(host_info_gatherers)
    yield host_info_gatherers
    host_info_gatherers.clear()
    host_info_gatherers.update(saved)


@pytest.fixture
def fresh_gpu_cache():
    host_info._gpu_info.cache_clear()
    yield
    host_info._gpu_info.cache_clear()


def test_builtin_keys_and_types():
    info = get_host_info()
    assert isinstance(info["hostname"], str) and info["hostname"]
    assert info["os"] == [platform.system(), platform.platform()]
    assert info["python_version"] == platform.python_version()
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cpu_count"] == os.cpu_count()
    assert isinstance(info["labbook_version"], str)
    assert info["labbook_version"] in {labbook.__version__, _installed_version()}
    assert info["ENV"] == {}
    json.dumps(info)  # storable as is


def _installed_version():
    from importlib import metadata

    try:
        return metadata.version("labbook")
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_cpu_is_the_model_name_from_proc_cpuinfo():
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    expected = names[0] if names else (platform.processor() or platform.machine())
    assert get_host_info()["cpu"] == expected


def test_cpu_lookup_is_cached():
    host_info._cpu_model.cache_clear()
    get_host_info()
    get_host_info()
    assert host_info._cpu_model.cache_info().hits >= 1


def test_no_gpu_means_no_gpus_key(monkeypatch, tmp_path, fresh_gpu_cache):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on it
    assert "gpus" not in get_host_info()


def _fake_nvidia_smi(directory, output: str, exit_code: int = 0) -> None:
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(sys.platform == "win32", reason="fake nvidia-smi is a shell script")
def test_gpus_from_nvidia_smi(monkeypatch, tmp_path, fresh_gpu_cache):
    _fake_nvidia_smi(tmp_path, NVIDIA_SMI_XML)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert get_host_info()["gpus"] == {
        "driver_version": "535.104.05",
        "gpus": [
            {"model": "NVIDIA GeForce RTX 3090", "total_memory": 24576, "persistence_mode": True},
            {"model": "Tesla T4", "total_memory": 15360, "persistence_mode": False},
        ],
    }


@pytest.mark.skipif(sys.platform == "win32", reason="fake nvidia-smi is a shell script")
def test_failing_nvidia_smi_leaves_gpus_out(monkeypatch, tmp_path, fresh_gpu_cache, caplog):
    _fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed", exit_code=9)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with caplog.at_level(logging.WARNING, logger="labbook.host_info"):
        info = get_host_info()
    assert "gpus" not in info
    assert not caplog.records  # a machine without GPUs is not worth a warning


def test_parse_nvidia_smi_xml_rejects_garbage():
    with pytest.raises(ValueError):
        parse_nvidia_smi_xml("not xml")


def test_host_info_getter_bare_and_named(registry):
    @host_info_getter
    def answer():
        return 42

    @host_info_getter(name="greeting")
    def whatever():
        return {"text": "hi", "pair": (1, 2)}

    assert answer() == 42 and whatever()["text"] == "hi"  # functions come back unchanged
    assert registry["answer"] is answer and registry["greeting"] is whatever
    info = get_host_info()
    assert info["answer"] == 42
    assert info["greeting"] == {"text": "hi", "pair": [1, 2]}  # stored as JSON would


def test_failing_getter_is_logged_and_skipped(registry, caplog):
    @host_info_getter
    def broken():
        raise RuntimeError("sensor offline")

    with caplog.at_level(logging.WARNING, logger="labbook.host_info"):
        info = get_host_info()
    assert "broken" not in info
    assert "hostname" in info
    [record] = [r for r in caplog.records if r.name == "labbook.host_info"]
    assert record.levelno == logging.WARNING
    assert "broken" in record.getMessage() and "sensor offline" in record.getMessage()


def test_unserializable_result_is_logged_and_skipped(caplog):
    def handle():
        return object()

    with caplog.at_level(logging.WARNING, logger="labbook.host_info"):
        info = get_host_info([handle])
    assert "handle" not in info
    assert any("handle" in r.getMessage() for r in caplog.records)


def test_ignore_host_info_leaves_the_entry_out_quietly(caplog):
    def optional():
        raise IgnoreHostInfo

    with caplog.at_level(logging.DEBUG, logger="labbook.host_info"):
        info = get_host_info([optional])
    assert "optional" not in info
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_additional_host_info_as_list_and_dict():
    def disk():
        return "ssd"

    assert get_host_info([disk])["disk"] == "ssd"
    info = get_host_info({"storage": disk, "hostname": lambda: "override"})
    assert info["storage"] == "ssd"
    assert "disk" not in info
    assert info["hostname"] == "override"  # explicit getters win over the built-ins


def test_capture_env(monkeypatch):
    monkeypatch.setenv("LABBOOK_TEST_VAR", "value")
    monkeypatch.delenv("LABBOOK_TEST_UNSET", raising=False)
    info = get_host_info(capture_env=["LABBOOK_TEST_VAR", "LABBOOK_TEST_UNSET"])
    assert info["ENV"] == {"LABBOOK_TEST_VAR": "value"}


def test_captured_env_setting_is_honoured(monkeypatch):
    from labbook.settings import SETTINGS

    monkeypatch.setitem(SETTINGS.HOST_INFO, "CAPTURED_ENV", ["LABBOOK_FROM_SETTINGS"])
    monkeypatch.setenv("LABBOOK_FROM_SETTINGS", "1")
    assert get_host_info()["ENV"] == {"LABBOOK_FROM_SETTINGS": "1"}


def test_captured_env_is_redacted(monkeypatch):
    secrets = {
        "HF_TOKEN": "hf_abc", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "DB_PASSWORD": "pw",
        "SMTP_PASSWD": "pw", "OPENAI_API_KEY": "sk-1", "SSH_KEY": "k",
        "GOOGLE_APPLICATION_CREDENTIALS": "/creds.json", "github_token": "gh",
    }
    plain = {"KEYBOARD_LAYOUT": "us", "MONKEY": "banana", "LABBOOK_MODE": "fast"}
    for name, value in {**secrets, **plain}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgres://alice:hunter2@db.example.com:5432/runs")
    info = get_host_info(capture_env=[*secrets, *plain, "DATABASE_URL"])
    env = info["ENV"]
    for name in secrets:
        assert env[name] == "****", name
    for name, value in plain.items():
        assert env[name] == value
    assert env["DATABASE_URL"] == "postgres://alice:****@db.example.com:5432/runs"
    assert "hunter2" not in json.dumps(info)


def test_every_string_is_redacted():
    def remotes():
        return {"urls": ["https://bob:pw123@git.example.com/repo.git", "https://plain.org/x"],
                "nested": {"api_key": "abc"}}

    info = get_host_info([remotes])
    assert info["remotes"] == {
        "urls": ["https://bob:****@git.example.com/repo.git", "https://plain.org/x"],
        "nested": {"api_key": "****"},
    }


@pytest.mark.parametrize("text, expected", [
    ("https://user:secret@host/path", "https://user:****@host/path"),
    ("redis://:secret@localhost:6379/0", "redis://:****@localhost:6379/0"),
    ("git+ssh://me:p@ss@host/repo", "git+ssh://me:****@host/repo"),
    ("see mongodb://u:p@h1 and http://v:q@h2", "see mongodb://u:****@h1 and http://v:****@h2"),
    ("https://host:8080/path?mail=a@b", "https://host:8080/path?mail=a@b"),
    ("ssh://git@github.com/org/repo", "ssh://git@github.com/org/repo"),
    ("no url here", "no url here"),
])
def test_redact_url_passwords(text, expected):
    assert redact(text) == expected


def test_redact_keeps_other_types_and_structure():
    assert redact(3) == 3
    assert redact(None) is None
    assert redact(("http://a:b@c",)) == ("http://a:****@c",)
    assert redact_env("PATH", "/usr/bin") == "/usr/bin"
    assert redact_env("MY_TOKEN", "t") == "****"
    assert redact_env("PROXY", "http://u:p@proxy:3128") == "http://u:****@proxy:3128"
