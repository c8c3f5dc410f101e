"""System metrics: machine and process values, GPUs through nvidia-smi or pynvml."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import types
from types import SimpleNamespace

import pytest

from labbook.sysmetrics import SystemMetrics, parse_nvidia_smi_csv, visible_gpu_indices

BASE_KEYS = {"system.cpu_percent", "system.memory_percent", "system.proc_rss_mb",
             "system.proc_cpu_percent"}

# what the fake nvidia-smi prints: index, uuid, utilization %, memory used / total MiB
CSV = """0, GPU-aaaa1111-0000-0000-0000-000000000000, 10, 1024, 4096
1, GPU-bbbb2222-0000-0000-0000-000000000000, 55, 2048, 8192
2, GPU-cccc3333-0000-0000-0000-000000000000, [N/A], 300, 1000
"""


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))


@pytest.fixture
def fake_nvidia_smi(monkeypatch, tmp_path):
    """Put an nvidia-smi printing ``CSV`` (or failing) first on PATH; pynvml hidden."""
    if sys.platform == "win32":
        pytest.skip("the fake nvidia-smi is a shell script")

    def install(output: str = CSV, exit_code: int = 0) -> None:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        script = bindir / "nvidia-smi"
        script.write_text(f"#!/bin/sh\necho \"$@\" >> '{tmp_path}/calls'\n"
                          f"cat <<'EOF'\n{output}EOF\nexit {exit_code}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setitem(sys.modules, "pynvml", None)
        monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))

    return install


def test_sample_keys_are_floats_without_gpu(no_gpu, reader):
    metrics = SystemMetrics()
    metrics.sample()  # primes the CPU counters
    values = metrics.sample()
    assert set(values) == BASE_KEYS
    assert all(type(v) is float for v in values.values())
    assert 0.0 <= values["system.cpu_percent"] <= 100.0
    assert 0.0 < values["system.memory_percent"] <= 100.0
    assert values["system.proc_rss_mb"] > 1.0  # a Python process is several MiB
    assert values["system.proc_cpu_percent"] >= 0.0


def test_prime_starts_the_cpu_counters_without_reading_gpus(fake_nvidia_smi, tmp_path):
    fake_nvidia_smi()
    metrics = SystemMetrics()
    metrics.prime()  # what a run does at its start: no nvidia-smi process for nothing
    assert not (tmp_path / "calls").exists()
    values = metrics.sample()
    assert 0.0 <= values["system.cpu_percent"] <= 100.0
    assert values["system.proc_cpu_percent"] >= 0.0
    assert values["system.gpu.0.utilization"] == 10.0


@pytest.fixture(params=["proc", "psutil"])
def reader(request, monkeypatch):
    """Both ways of reading: /proc (Linux) and psutil (elsewhere, and here too on request)."""
    import labbook.sysmetrics as sysmetrics

    if request.param == "proc":
        if not sysmetrics._PROC:
            pytest.skip("no /proc here: psutil is the only reader")
    else:
        monkeypatch.setattr(sysmetrics, "_PROC", False)
    return request.param


def test_values_match_psutil(no_gpu, reader):
    import psutil

    metrics = SystemMetrics()
    metrics.prime()
    psutil.cpu_percent(interval=None)
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:  # busy: this process uses one core meanwhile
        pass
    values = metrics.sample()
    rss_mb = psutil.Process().memory_info().rss / 2**20
    assert values["system.proc_rss_mb"] == pytest.approx(rss_mb, rel=0.2)
    assert values["system.memory_percent"] == pytest.approx(
        psutil.virtual_memory().percent, abs=5.0)
    assert 50.0 <= values["system.proc_cpu_percent"] <= 100.0 * (os.cpu_count() or 1) + 5
    busy = 100.0 / (os.cpu_count() or 1)  # one core of all of them, at least, was busy
    assert busy * 0.5 <= values["system.cpu_percent"] <= 100.0
    assert all(type(v) is float for v in values.values())


def test_a_run_on_linux_does_not_import_psutil(tmp_path):
    import labbook.sysmetrics as sysmetrics

    if not sysmetrics._PROC:
        pytest.skip("no /proc here: psutil reads the values")
    script = ("import json, sys\n"
              "from labbook import Experiment\n"
              "from labbook.observers import FileStorageObserver\n"
              "ex = Experiment('no_psutil')\n"
              "ex.observers.append(FileStorageObserver(sys.argv[1]))\n"
              "@ex.main\n"
              "def main():\n"
              "    pass\n"
              "run = ex.run()\n"
              "history = run.observers[0].store.history(run._id)\n"
              "print(json.dumps(['psutil' in sys.modules,\n"
              "                  sorted(k for k in history if k.startswith('system.'))]))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "runs")],
                          env=dict(os.environ, PYTHONPATH=root), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported, sampled = json.loads(proc.stdout.splitlines()[-1])
    assert not imported
    assert set(sampled) >= BASE_KEYS  # sampled all the same, from /proc


def test_other_process_and_its_end(no_gpu, reader):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        metrics = SystemMetrics(pid=child.pid)
        assert metrics.pid == child.pid
        assert set(metrics.sample()) == BASE_KEYS
    finally:
        child.kill()
        child.wait()
    values = metrics.sample()  # the process is gone: machine values only, no error
    assert set(values) == {"system.cpu_percent", "system.memory_percent"}


def test_gpus_from_nvidia_smi(fake_nvidia_smi, monkeypatch, tmp_path):
    fake_nvidia_smi()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    values = SystemMetrics().sample()
    assert values["system.gpu.0.utilization"] == 10.0
    assert values["system.gpu.0.memory_percent"] == 25.0
    assert values["system.gpu.1.utilization"] == 55.0
    assert values["system.gpu.1.memory_percent"] == 25.0
    assert "system.gpu.2.utilization" not in values  # nvidia-smi said N/A
    assert values["system.gpu.2.memory_percent"] == 30.0
    calls = (tmp_path / "calls").read_text()
    assert "utilization.gpu,memory.used,memory.total" in calls
    assert "--format=csv,noheader,nounits" in calls


def test_nvidia_smi_respects_cuda_visible_devices(fake_nvidia_smi, monkeypatch):
    fake_nvidia_smi()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    values = SystemMetrics().sample()
    gpu_keys = {k for k in values if k.startswith("system.gpu.")}
    assert gpu_keys == {"system.gpu.0.utilization", "system.gpu.0.memory_percent",
                        "system.gpu.1.utilization", "system.gpu.1.memory_percent"}
    assert values["system.gpu.0.utilization"] == 55.0  # process GPU 0 is physical GPU 1
    assert values["system.gpu.1.utilization"] == 10.0


def test_nvidia_smi_with_no_visible_device(fake_nvidia_smi, monkeypatch):
    fake_nvidia_smi()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert set(SystemMetrics().sample()) == BASE_KEYS


def test_failing_nvidia_smi_gives_no_gpu_keys_and_is_not_retried(fake_nvidia_smi, tmp_path):
    fake_nvidia_smi("NVIDIA-SMI has failed\n", exit_code=9)
    metrics = SystemMetrics()
    assert set(metrics.sample()) == BASE_KEYS
    assert set(metrics.sample()) == BASE_KEYS
    assert len((tmp_path / "calls").read_text().splitlines()) == 1


def _fake_pynvml(devices):
    """A stand-in for pynvml: ``devices`` are (uuid, utilization, used, total) tuples."""
    module = types.ModuleType("pynvml")
    module.calls = []
    module.nvmlInit = lambda: module.calls.append("init")
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    module.nvmlDeviceGetUUID = lambda h: h[0].encode()  # old versions return bytes
    module.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=h[1], memory=0)
    module.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=h[2], total=h[3],
                                                               free=h[3] - h[2])
    return module


def test_gpus_from_pynvml(monkeypatch):
    fake = _fake_pynvml([("GPU-aaaa", 5, 1, 4), ("GPU-bbbb", 80, 3, 4)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bb")  # a UUID prefix
    metrics = SystemMetrics()
    values = metrics.sample()
    assert values["system.gpu.0.utilization"] == 80.0
    assert values["system.gpu.0.memory_percent"] == 75.0
    assert not any(k.startswith("system.gpu.1") for k in values)
    metrics.close()
    assert fake.calls == ["init", "shutdown"]
    assert set(metrics.sample()) == BASE_KEYS  # after close: no GPU, no error


def test_pynvml_that_cannot_initialise_falls_back(monkeypatch, tmp_path, fake_nvidia_smi):
    fake_nvidia_smi()
    fake = _fake_pynvml([])

    def fail():
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert SystemMetrics().sample()["system.gpu.1.utilization"] == 55.0


def test_a_machine_without_gpus_is_probed_once_per_path(monkeypatch, tmp_path, no_gpu,
                                                        fake_nvidia_smi):
    import labbook.sysmetrics as sysmetrics

    searched = []
    which = sysmetrics.shutil.which
    monkeypatch.setattr(sysmetrics.shutil, "which",
                        lambda name, *a, **k: searched.append(name) or which(name, *a, **k))
    for _ in range(3):  # runs of one process: the PATH search happens for the first only
        assert set(SystemMetrics().sample()) == BASE_KEYS
    assert searched == ["nvidia-smi"]
    monkeypatch.setenv("PATH", os.defpath)  # the fake's sh needs cat
    fake_nvidia_smi()  # a new PATH holding nvidia-smi: probed again, and found
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert SystemMetrics().sample()["system.gpu.0.utilization"] == 10.0
    assert searched == ["nvidia-smi", "nvidia-smi"]
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml([("GPU-aaaa", 42, 1, 4)]))  # pynvml appears: used
    assert SystemMetrics().sample()["system.gpu.0.utilization"] == 42.0


@pytest.mark.parametrize("value, count, expected", [
    (None, 3, [0, 1, 2]),
    ("", 3, []),
    ("-1", 3, []),
    ("0", 3, [0]),
    ("2,0", 3, [2, 0]),
    (" 1 , 2 ", 3, [1, 2]),
    ("0,5,1", 3, [0]),  # out of range ends the list
    ("0,-1,1", 3, [0]),  # an invalid entry ends the list
    ("1,1,2", 3, [1]),  # a repeated entry ends the list
    ("0,MIG-1234,1", 3, [0]),
    ("none", 3, []),
    (None, 0, []),
])
def test_visible_gpu_indices(value, count, expected):
    assert visible_gpu_indices(value, count) == expected


def test_visible_gpu_indices_with_uuids():
    uuids = ["GPU-aa11", "GPU-ab22", "GPU-cc33"]
    assert visible_gpu_indices("GPU-cc33,GPU-aa11", 3, uuids) == [2, 0]
    assert visible_gpu_indices("gpu-CC,0", 3, uuids) == [2, 0]  # unique prefix, any case
    assert visible_gpu_indices("GPU-a,1", 3, uuids) == []  # ambiguous prefix
    assert visible_gpu_indices("GPU-ffff", 3, uuids) == []


def test_parse_nvidia_smi_csv():
    rows = parse_nvidia_smi_csv(CSV + "garbage line\n\n")
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[1] == {"index": 1, "uuid": "GPU-bbbb2222-0000-0000-0000-000000000000",
                       "utilization": 55.0, "memory_used": 2048.0, "memory_total": 8192.0}
    assert rows[2]["utilization"] is None
