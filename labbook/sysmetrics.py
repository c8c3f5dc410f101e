"""System metrics sampled at every heartbeat (CPU, memory, the run's process, NVIDIA GPUs).

>>> metrics = SystemMetrics()
>>> metrics.sample()  # doctest: +SKIP
{'system.cpu_percent': 12.5, 'system.memory_percent': 41.0, 'system.proc_rss_mb': 88.1,
 'system.proc_cpu_percent': 99.0, 'system.gpu.0.utilization': 97.0,
 'system.gpu.0.memory_percent': 63.2}

Machine and process values are read from ``/proc`` on Linux (no psutil import on the run's
path) and through psutil elsewhere; both give psutil's definitions of the four values.
GPUs are read through pynvml (nvidia-ml-py) when it imports and initialises, else through
``nvidia-smi``. Only the GPUs in ``CUDA_VISIBLE_DEVICES`` are reported, numbered as the process
sees them. Without a GPU there are simply no ``system.gpu.*`` keys.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Sequence

__all__ = ["SystemMetrics", "parse_nvidia_smi_csv", "visible_gpu_indices"]

logger = logging.getLogger("labbook.sysmetrics")

# a heartbeat must not stall on a wedged driver
_NVIDIA_SMI_TIMEOUT = 5.0
_QUERY = "index,uuid,utilization.gpu,memory.used,memory.total"


def visible_gpu_indices(value: str | None, count: int, uuids: Sequence[str] = ()) -> list[int]:
    """Physical GPU indices the process sees, in its order, from ``CUDA_VISIBLE_DEVICES``.

    ``value`` None means every GPU (``range(count)``). Entries are indices or (prefixes of)
    ``GPU-`` UUIDs; like the CUDA runtime, the list ends at the first entry that is invalid,
    out of range, ambiguous or repeated (so ``""`` and ``"-1"`` hide all GPUs). MIG devices are
    not mapped and end the list too. Numeric entries are taken in nvidia-smi's (PCI bus) order.
    """
    if value is None:
        return list(range(count))
    indices: list[int] = []
    for token in value.split(","):
        token = token.strip()
        if token.isdigit():
            index = int(token)
            if index >= count:
                break
        elif token.upper().startswith("GPU-"):
            matches = [i for i, uuid in enumerate(uuids)
                       if uuid.lower().startswith(token.lower())]
            if len(matches) != 1:
                break
            index = matches[0]
        else:
            break
        if index in indices:
            break
        indices.append(index)
    return indices


def parse_nvidia_smi_csv(text: str) -> list[dict[str, Any]]:
    """Rows of ``nvidia-smi --query-gpu=index,uuid,utilization.gpu,memory.used,memory.total
    --format=csv,noheader,nounits``: ``index``, ``uuid``, ``utilization``, ``memory_used``,
    ``memory_total`` (None where nvidia-smi prints "N/A" or "[Not Supported]")."""
    rows = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 5:
            continue
        index = _number(fields[0])
        if index is None:
            continue
        rows.append({"index": int(index), "uuid": fields[1], "utilization": _number(fields[2]),
                     "memory_used": _number(fields[3]), "memory_total": _number(fields[4])})
    return rows


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _memory_percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return 100.0 * used / total


class _NvmlReader:
    """GPU readings through pynvml; raises from __init__ when NVML is unusable."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
        visible = visible_gpu_indices(os.environ.get("CUDA_VISIBLE_DEVICES"), count, uuids)
        self._handles = [handles[i] for i in visible]

    def read(self) -> list[tuple[float | None, float | None]]:
        readings = []
        for handle in self._handles:
            utilization = float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            readings.append((utilization, _memory_percent(memory.used, memory.total)))
        return readings

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def _text(value: Any) -> str:
    # older pynvml versions return bytes
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _NvidiaSmiReader:
    """GPU readings by running nvidia-smi at each sample."""

    def __init__(self, executable: str) -> None:
        self._executable = executable

    def read(self) -> list[tuple[float | None, float | None]]:
        out = subprocess.run(
            [self._executable, f"--query-gpu={_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT, check=True).stdout
        rows = sorted(parse_nvidia_smi_csv(out), key=lambda r: r["index"])
        visible = visible_gpu_indices(os.environ.get("CUDA_VISIBLE_DEVICES"), len(rows),
                                      [r["uuid"] for r in rows])
        return [(rows[i]["utilization"],
                 _memory_percent(rows[i]["memory_used"], rows[i]["memory_total"]))
                for i in visible]

    def close(self) -> None:
        pass


#: (PATH, what sys.modules holds for pynvml) when the last probe found neither pynvml nor
#: nvidia-smi: a machine without GPUs then skips the failed import and the PATH search at
#: every run (both are probed again when either changes)
_no_gpu_for: tuple | None = None


def _gpu_reader() -> _NvmlReader | _NvidiaSmiReader | None:
    global _no_gpu_for
    key = (os.environ.get("PATH"), sys.modules.get("pynvml"))
    if _no_gpu_for is not None and _no_gpu_for[0] == key[0] and _no_gpu_for[1] is key[1]:
        return None
    try:
        return _NvmlReader()
    except Exception as exc:  # not installed, no driver, no device
        logger.debug("pynvml unavailable for GPU metrics: %s", exc)
    executable = shutil.which("nvidia-smi")
    if executable:
        return _NvidiaSmiReader(executable)
    # sys.modules read again: a pynvml that imported but found no driver is there now
    _no_gpu_for = (key[0], sys.modules.get("pynvml"))
    return None


class _ProcReader:
    """Machine and process values read from Linux's ``/proc``, computed as psutil computes
    them (``cpu_percent``, ``virtual_memory().percent``, ``memory_info().rss``,
    ``Process.cpu_percent``), without importing psutil: its import costs a process 12-25 ms,
    a third of a first run's own work. Each instance keeps its own previous CPU readings, so
    runs sampling side by side do not reset each other's percentages. A process that is gone
    raises OSError."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stat_path = f"/proc/{pid}/stat"
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._cpu_last: tuple[float, float] | None = None
        self._proc_last: tuple[float, float] | None = None

    def cpu_percent(self) -> float:
        with open("/proc/stat", "rb") as fh:
            times = [float(x) for x in fh.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal [guest guest_nice]: the guests are
        # counted in user and nice already; iowait is idle time that Linux counts apart
        total = sum(times[:8])
        idle = times[3] + (times[4] if len(times) > 4 else 0.0)
        last, self._cpu_last = self._cpu_last, (total, idle)
        if last is None or total <= last[0]:
            return 0.0
        busy = (total - last[0]) - (idle - last[1])
        return round(min(max(100.0 * busy / (total - last[0]), 0.0), 100.0), 1)

    @staticmethod
    def memory_percent() -> float:
        fields = {}
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                key, _, rest = line.partition(b":")
                fields[key] = int(rest.split()[0])
        total = fields[b"MemTotal"]
        available = fields.get(b"MemAvailable")
        if available is None:  # kernels before 3.14: psutil's estimate
            available = fields.get(b"MemFree", 0) + fields.get(b"Buffers", 0) + \
                fields.get(b"Cached", 0)
        return round(100.0 * (total - available) / total, 1) if total else 0.0

    def process(self) -> tuple[int, float]:
        """(resident bytes, CPU percent of one core since the previous call) of the process."""
        with open(self._stat_path, "rb") as fh:
            data = fh.read()
        now = time.monotonic()
        fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": state is [0]
        cpu = (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime
        rss = int(fields[21]) * self._page
        last, self._proc_last = self._proc_last, (now, cpu)
        if last is None or now <= last[0]:
            return rss, 0.0
        return rss, round(100.0 * (cpu - last[1]) / (now - last[0]), 1)


class _PsutilReader:
    """The same values through psutil, where there is no ``/proc``."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process(pid)

    def cpu_percent(self) -> float:
        return float(self._psutil.cpu_percent(interval=None))

    def memory_percent(self) -> float:
        return float(self._psutil.virtual_memory().percent)

    def process(self) -> tuple[int, float]:
        try:
            with self._process.oneshot():
                return (self._process.memory_info().rss,
                        float(self._process.cpu_percent(interval=None)))
        except self._psutil.Error as exc:  # ended, or not ours to read
            raise ProcessLookupError(str(exc)) from exc


#: read /proc directly (Linux) rather than through psutil
_PROC = sys.platform.startswith("linux") and os.path.isfile("/proc/self/stat")


class SystemMetrics:
    """Samples machine and process metrics; ``pid`` defaults to the current process."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self._reader: Any = _ProcReader(self.pid) if _PROC else _PsutilReader(self.pid)
        self._process_readable = True
        self._gpu = _gpu_reader()

    def prime(self) -> None:
        """Start the CPU counters, so the next :meth:`sample` gives percentages since now; the
        other values (memory, GPUs: a ``nvidia-smi`` process each time) are read only then."""
        self._reader.cpu_percent()
        self._read_process()

    def _read_process(self) -> tuple[int, float] | None:
        if not self._process_readable:
            return None
        try:
            return self._reader.process()
        except (OSError, ValueError, IndexError) as exc:  # ended, or not ours to read
            logger.debug("Cannot read process %s: %s", self.pid, exc)
            self._process_readable = False
            return None

    def sample(self) -> dict[str, float]:
        """The current values; CPU percentages are since the previous call (0.0 the first time)."""
        values: dict[str, float] = {
            "system.cpu_percent": float(self._reader.cpu_percent()),
            "system.memory_percent": float(self._reader.memory_percent()),
        }
        process = self._read_process()
        if process is not None:
            values["system.proc_rss_mb"] = process[0] / 2**20
            values["system.proc_cpu_percent"] = float(process[1])
        values.update(self._sample_gpus())
        return values

    def _sample_gpus(self) -> dict[str, float]:
        if self._gpu is None:
            return {}
        try:
            readings = self._gpu.read()
        except Exception as exc:
            # one failure (timeout, driver reset) is likely to repeat; stop asking
            logger.debug("GPU metrics disabled after a failed reading: %s", exc)
            self.close()
            return {}
        values = {}
        for i, (utilization, memory_percent) in enumerate(readings):
            if utilization is not None:
                values[f"system.gpu.{i}.utilization"] = float(utilization)
            if memory_percent is not None:
                values[f"system.gpu.{i}.memory_percent"] = float(memory_percent)
        return values

    def close(self) -> None:
        """Release the GPU library (sampling continues without GPU metrics)."""
        if self._gpu is not None:
            try:
                self._gpu.close()
            except Exception:
                pass
            self._gpu = None
