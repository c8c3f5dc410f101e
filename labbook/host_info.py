"""Facts about the machine a run executes on (``host_info`` of every run).

Built-in entries: ``hostname``, ``os``, ``python_version``, ``cpu``, ``cpu_count``, ``gpus``
(only when an NVIDIA GPU is found), ``labbook_version`` and ``ENV`` (the captured environment
variables). More entries come from functions decorated with :func:`host_info_getter` or passed
as ``additional_host_info``. Every string is passed through :func:`redact` so passwords in
URLs and secret-looking environment variables never reach a store.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import threading
from typing import Any, Callable, Iterable, Mapping

from labbook.redact import redact_text

__all__ = [
    "IgnoreHostInfo",
    "await_prefetch",
    "get_host_info",
    "host_info_gatherers",
    "host_info_getter",
    "host_info_gatherer",
    "HostInfoGetter",
    "prefetch_host_info",
    "redact",
    "redact_env",
]

logger = logging.getLogger("labbook.host_info")

#: name -> zero-argument function; every entry becomes one key of the host info
host_info_gatherers: dict[str, Callable[[], Any]] = {}

#: what replaces a secret
MASK = "****"

# nvidia-smi can hang on a wedged driver; host info must not block a run for long
_NVIDIA_SMI_TIMEOUT = 5.0


class IgnoreHostInfo(Exception):
    """Raised by a getter to leave its entry out (e.g. no GPU) without a warning."""


def host_info_getter(func: Callable[[], Any] | None = None,
                     name: str | None = None) -> Callable:
    """Register a zero-argument function whose result is stored under ``name`` (or its name).

    Usable bare (``@host_info_getter``) or with a name (``@host_info_getter(name="x")``);
    returns the function unchanged.
    """
    if func is None:
        return functools.partial(host_info_getter, name=name)
    host_info_gatherers[name or func.__name__] = func
    return func


class HostInfoGetter:
    """A named host-info entry made by :func:`host_info_gatherer`: pass it to
    ``Experiment(additional_host_info=[...])``. Calling it returns the entry's value."""

    def __init__(self, getter_function: Callable[[], Any], name: str):
        self.getter_function = getter_function
        self.name = name
        self.__name__ = name

    def __call__(self) -> Any:
        return self.getter_function()

    def get_info(self) -> Any:
        return self.getter_function()

    def __repr__(self) -> str:
        return f"<HostInfoGetter {self.name!r}>"


def host_info_gatherer(name: str) -> Callable[[Callable[[], Any]], HostInfoGetter]:
    """Sacred 0.8's decorator: ``@host_info_gatherer("gpu_temp")`` turns a zero-argument
    function into a :class:`HostInfoGetter` stored under ``name`` by the experiments that
    list it in ``additional_host_info`` (unlike :func:`host_info_getter`, which registers
    the entry for every experiment)."""
    if not isinstance(name, str) or not name:
        from labbook.errors import DefinitionError

        raise DefinitionError(f"host_info_gatherer needs the entry's name as a non-empty "
                              f"string, got {name!r}; write @host_info_gatherer(\"name\").")

    def decorator(func: Callable[[], Any]) -> HostInfoGetter:
        return HostInfoGetter(func, name)
    return decorator


# --- redaction ---------------------------------------------------------------------------------

# scheme://user:password@host: greedy up to the last "@" of the authority, so a password
# containing "@" (not percent-encoded) is masked whole
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*):(?P<pw>[^\s/]*)@")
# substrings that make an environment variable name secret wherever they appear
_SECRET_SUBSTRINGS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "CREDENTIAL")
# parts that must be a whole word of the name: KEY matches SSH_KEY but not MONKEY or KEYBOARD
_SECRET_WORDS = frozenset({"KEY", "KEYS"})


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    if any(part in upper for part in _SECRET_SUBSTRINGS):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def redact(value: Any) -> Any:
    """Mask passwords in URLs in every string of ``value`` (recursing into dicts and lists).

    In dicts, a string value whose key looks like a secret name is masked entirely (see
    :func:`redact_env`). Other types are returned unchanged.
    """
    if isinstance(value, str):
        return redact_text(_URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", value))
    if isinstance(value, dict):
        return {k: redact_env(k, v) if isinstance(k, str) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def redact_env(name: str, value: Any) -> Any:
    """``"****"`` when ``name`` looks like a secret (TOKEN, SECRET, PASSWORD, KEY, ...), else
    ``redact(value)``."""
    if isinstance(value, str) and _is_secret_name(name):
        return MASK
    return redact(value)


# --- built-in getters --------------------------------------------------------------------------

@host_info_getter
def hostname() -> str:
    """The network name of this machine."""
    if hasattr(os, "uname"):  # what gethostname() returns on POSIX, without importing socket
        return os.uname().nodename
    import socket

    return socket.gethostname()


@host_info_getter(name="os")
def _os_info() -> list[str]:
    # platform caches both; the first platform() of a process runs `uname -p`
    return [platform.system(), platform.platform()]


@host_info_getter
def python_version() -> str:
    """The running interpreter's version, e.g. ``"3.11.7"``."""
    return platform.python_version()


@host_info_getter
def cpu() -> str:
    """The CPU model name."""
    return _cpu_model()


@host_info_getter
def cpu_count() -> int | None:
    """The number of logical CPUs."""
    return os.cpu_count()


@host_info_getter
def gpus() -> dict:
    """Driver version and model, memory (MiB) and persistence mode of each NVIDIA GPU."""
    info = _gpu_info()
    if info is None:
        raise IgnoreHostInfo
    return info


@host_info_getter
def labbook_version() -> str:
    """The labbook version (``labbook._version``, kept equal to the distribution's by a test;
    importlib.metadata would cost 6 ms per process)."""
    from labbook._version import __version__

    return __version__


# cached: runs started in a loop call get_host_info each time and the model cannot change
@functools.cache
def _cpu_model() -> str:
    system = platform.system()
    if system == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "model name" and value.strip():
                        return value.strip()
        except OSError:
            pass
    elif system == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=2, check=True)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    # ARM Linux has no "model name" line and platform.processor() may be empty there
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def _gpu_info() -> dict | None:
    """GPU facts from pynvml, else from ``nvidia-smi -q -x``; None without NVIDIA GPUs."""
    info = _gpu_info_from_pynvml()
    if info is None:
        info = _gpu_info_from_nvidia_smi()
    return info


def _gpu_info_from_pynvml() -> dict | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no device: NVMLError in many flavours
        return None
    try:
        gpu_list = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            persistence = pynvml.nvmlDeviceGetPersistenceMode(handle)
            gpu_list.append({
                "model": _text(pynvml.nvmlDeviceGetName(handle)),
                "total_memory": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20),
                "persistence_mode": persistence == getattr(pynvml, "NVML_FEATURE_ENABLED", 1),
            })
        return {"driver_version": _text(pynvml.nvmlSystemGetDriverVersion()), "gpus": gpu_list}
    except Exception:
        logger.debug("Reading GPU information through pynvml failed", exc_info=True)
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _text(value: Any) -> str:
    # older pynvml versions return bytes
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _gpu_info_from_nvidia_smi() -> dict | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-q", "-x"], capture_output=True, text=True,
                             timeout=_NVIDIA_SMI_TIMEOUT, check=True).stdout
        return parse_nvidia_smi_xml(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        logger.debug("nvidia-smi -q -x failed: %s", exc)
        return None


def parse_nvidia_smi_xml(text: str) -> dict:
    """Turn the output of ``nvidia-smi -q -x`` into the ``gpus`` host info entry.

    Raises ValueError when ``text`` is not such a document.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"nvidia-smi printed invalid XML: {exc}") from exc
    gpu_list = []
    for gpu in root.iter("gpu"):
        total = (gpu.findtext("fb_memory_usage/total") or "").split()
        gpu_list.append({
            "model": (gpu.findtext("product_name") or "").strip(),
            "total_memory": int(float(total[0])) if total and _is_number(total[0]) else None,
            "persistence_mode": (gpu.findtext("persistence_mode") or "").strip() == "Enabled",
        })
    return {"driver_version": (root.findtext("driver_version") or "").strip(), "gpus": gpu_list}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- the facts that cost a process, found in the background -----------------------------------

_prefetch: threading.Thread | None = None
_prefetched = False
_prefetch_lock = threading.Lock()


def prefetch_host_info(settings: Mapping[str, Any] | None = None) -> None:
    """Start finding the facts of this machine that cost the first run of a process a child
    process: ``platform.platform()`` runs ``uname -p``, the GPU facts ``nvidia-smi``. A thread
    fills their per-process caches while the run resolves its config and asks git;
    :func:`get_host_info` waits for it. Once per process; ``settings`` as for get_host_info.
    """
    global _prefetch
    if _prefetched:
        return
    if settings is None:
        from labbook.settings import current

        settings = current()["HOST_INFO"]
    gpus = bool(settings.get("INCLUDE_GPU_INFO", True))
    with _prefetch_lock:
        if _prefetched or _prefetch is not None:
            return
        _prefetch = threading.Thread(target=_fill_caches, args=(gpus,), daemon=True,
                                     name="labbook-host-info")
        _prefetch.start()


def _fill_caches(gpus: bool) -> None:
    global _prefetched
    try:
        platform.platform()
        _cpu_model()
        if gpus:
            _gpu_info()
    except Exception:  # the getters run again in get_host_info and report their failure there
        logger.debug("Prefetching host info failed", exc_info=True)
    with _prefetch_lock:
        _prefetched = True


def await_prefetch() -> None:
    """Wait for a :func:`prefetch_host_info` under way (at once when none is)."""
    global _prefetch
    with _prefetch_lock:
        thread = _prefetch
    if thread is not None:
        thread.join()
        with _prefetch_lock:
            _prefetch = None


# --- assembling --------------------------------------------------------------------------------

def _getters(additional: Iterable[Callable] | Mapping[str, Callable] | Callable | None
             ) -> dict[str, Callable[[], Any]]:
    if additional is None:
        return {}
    if isinstance(additional, Mapping):
        return dict(additional)
    if callable(additional):
        return {additional.__name__: additional}
    return {func.__name__: func for func in additional}


def get_host_info(additional_host_info: Iterable[Callable] | Mapping[str, Callable] | None = None,
                  capture_env: Iterable[str] = (), settings: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Collect the host info of this machine.

    ``additional_host_info`` is a list of getters (named by ``__name__``) or a dict
    name -> getter; ``capture_env`` names environment variables to record under ``ENV``.
    A getter that raises (or returns something JSON cannot store) is logged and skipped.
    ``settings`` is ``SETTINGS.HOST_INFO`` as plain values (default: as they are now).
    """
    if settings is None:
        from labbook.settings import current

        settings = current()["HOST_INFO"]
    await_prefetch()  # the getters below read what it put in the caches
    getters = dict(host_info_gatherers)
    if not settings.get("INCLUDE_GPU_INFO", True):
        getters.pop("gpus", None)
    getters.update(_getters(additional_host_info))

    names = list(dict.fromkeys([*capture_env, *settings.get("CAPTURED_ENV", ())]))
    info: dict[str, Any] = {"ENV": {n: os.environ[n] for n in names if n in os.environ}}
    for name, getter in getters.items():
        try:
            value = getter()
        except IgnoreHostInfo:
            continue
        except Exception as exc:  # a broken getter must not stop the run
            logger.warning("Host info getter '%s' failed and is left out: %s: %s",
                           name, type(exc).__name__, exc)
            continue
        try:
            # round trip: stores keep plain JSON, so tuples become lists here already
            value = json.loads(json.dumps(value))
        except (TypeError, ValueError) as exc:
            logger.warning("Host info getter '%s' returned a value that cannot be stored as "
                           "JSON and is left out: %s", name, exc)
            continue
        info[name] = value
    # ENV last so the built-in keys come first, as in Sacred's host info
    info["ENV"] = info.pop("ENV")
    return redact(info)
