"""A Run: one execution of a command with a resolved configuration.

Status machine: QUEUED -> RUNNING -> COMPLETED | FAILED | INTERRUPTED | TIMEOUT (or the STATUS
of a custom interrupt). Everything that happens is broadcast to the observers through the event
bus: started (or queued), heartbeats with info / captured output / metrics, resources,
artifacts, and one terminal event. A final heartbeat precedes the terminal event so nothing
logged is lost at the end.
"""
from __future__ import annotations

import datetime as _dt
import logging
import mimetypes
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Sequence

from labbook.clock import utcnow
from labbook.config.containers import ReadOnlyDict, freeze
from labbook.config.paths import get_path
from labbook.context import activate, deactivate
from labbook.errors import (ArtifactNameError, MissingFileError, RunExistsError,
                            RunIdRefusedError, RunStateError, RunValueError)
from labbook.events import EventBus
from labbook.interrupts import LabbookInterrupt
from labbook.metrics import MetricBuffer
from labbook.randomness import SeedStream, set_global_seed
from labbook.redact import redact_text, redact_value, secret_paths
from labbook.serialize import unencodable

__all__ = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT",
           "NAME_COMPONENT_BYTES", "NAME_CHARS", "RESERVED_NAMES",
           "validate_artifact_name", "validate_resource_path", "elapsed_since",
           "format_fail_trace", "with_filtered_header", "FILTERED_TRACEBACK_HEADER", "Run",
           "RunConfig"]

_LABBOOK_DIR = os.path.dirname(os.path.abspath(__file__))
#: between beats, how often (seconds) the heartbeat thread looks at how many points wait, and
#: how many make it send them early (about 50 MB of points in memory)
_POLL = 0.1
_FLUSH_POINTS = 250_000
#: while points are being sent, ``log_scalar`` waits for the send to end once this many new
#: points wait (back-pressure: a loop that logs faster than the stores write stays bounded)
_HOLD_POINTS = 500_000
#: the most points one ``log_metrics`` event carries (a longer backlog goes in several)
_SEND_POINTS = 250_000
#: how many calls the held ``log_scalar`` lets pass between two counts of the waiting points
_HOLD_EVERY = 256

QUEUED, RUNNING, COMPLETED, FAILED, INTERRUPTED, TIMEOUT = (
    "QUEUED", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT")


#: the longest path component the file store can create (NAME_MAX of Linux and macOS), in
#: UTF-8 bytes
NAME_COMPONENT_BYTES = 255
#: the longest artifact or resource name the SQL stores keep (``artifacts.name``, VARCHAR)
NAME_CHARS = 1024
#: the file store's own files in a run's directory (Sacred's layout), which an artifact of the
#: same name would overwrite (compared without case: macOS and Windows file systems)
RESERVED_NAMES = frozenset({"run.json", "config.json", "info.json", "cout.txt", "metrics.json",
                            "metrics.jsonl"})


def validate_artifact_name(name: str, what: str = "Artifact name") -> str:
    """``name`` if every store can hold it as a file's name inside the run, else
    :class:`ArtifactNameError` naming the value and the limit."""
    if not isinstance(name, str) or not name:
        raise ArtifactNameError(f"{what} must be a non-empty string, got {name!r}.")
    if "\x00" in name:
        raise ArtifactNameError(f"{what} {name!r} contains a NUL character.")
    bad = unencodable(name)
    if bad is not None:
        raise ArtifactNameError(
            f"{what} {name!r} is not valid Unicode text (character {bad} is a lone surrogate, "
            "as Python decodes bytes that are not UTF-8); stores keep UTF-8 names. Give the "
            "name explicitly: add_artifact(path, name='...').")
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArtifactNameError(
            f"{what} {name!r} is an absolute path; give a relative name "
            "(add_artifact(path, name='model.pt')).")
    parts = normalized.split("/")
    if ".." in parts:
        raise ArtifactNameError(
            f"{what} {name!r} contains '..'; artifact names must stay inside the run.")
    if "." in parts or "" in parts:
        raise ArtifactNameError(
            f"{what} {name!r} has an empty or '.' path component (a trailing '/', '//' or "
            "'/./'); name a file, e.g. 'plots/loss.png'.")
    if parts[0].lower() in RESERVED_NAMES:
        raise ArtifactNameError(
            f"{what} {name!r} is the name of a file the file store keeps for the run itself "
            f"({', '.join(sorted(RESERVED_NAMES))}); choose another name, e.g. "
            f"'outputs/{parts[-1]}'.")
    if len(name) > NAME_CHARS:
        raise ArtifactNameError(
            f"{what} {name[:40]!r}... is {len(name)} characters long; the SQL stores keep "
            f"names of at most {NAME_CHARS} characters.")
    for part in parts:
        size = len(part.encode("utf-8"))
        if size > NAME_COMPONENT_BYTES:
            raise ArtifactNameError(
                f"{what} {name[:40]!r}... has a path component of {size} bytes; the file store "
                f"keeps at most {NAME_COMPONENT_BYTES} bytes per file or directory name.")
    return name


def validate_resource_path(filename: str) -> str:
    """An absolute resource path every store can record (its stored copy is named
    ``<stem>_<md5><ext>``, 33 bytes longer than the file's own name)."""
    bad = unencodable(filename)
    if bad is not None:
        raise ArtifactNameError(
            f"Resource path {filename!r} is not valid Unicode text (character {bad} is a lone "
            "surrogate, as Python decodes bytes that are not UTF-8); stores keep UTF-8 names. "
            "Rename the file.")
    if len(filename) > NAME_CHARS:
        raise ArtifactNameError(
            f"Resource path {filename[:40]!r}... is {len(filename)} characters long; the SQL "
            f"stores keep paths of at most {NAME_CHARS} characters.")
    size = len(os.path.basename(filename).encode("utf-8")) + 33
    if size > NAME_COMPONENT_BYTES:
        raise ArtifactNameError(
            f"Resource file name {os.path.basename(filename)[:40]!r}... makes a stored copy "
            f"name of {size} bytes (the name plus '_' and its md5); the file store keeps at "
            f"most {NAME_COMPONENT_BYTES} bytes per file name.")
    return filename


def elapsed_since(start: _dt.datetime, stop: _dt.datetime) -> _dt.timedelta:
    return _dt.timedelta(seconds=round((stop - start).total_seconds()))


#: what a traceback printed without labbook's frames starts with (Sacred names itself there)
FILTERED_TRACEBACK_HEADER = "Traceback (most recent calls WITHOUT labbook internals):\n"
_TRACEBACK_HEADER = "Traceback (most recent call last):\n"


def with_filtered_header(lines: list[str]) -> list[str]:
    """``lines`` of a filtered traceback, each header saying that labbook's frames are left
    out (as Sacred prints on the command line; stored traces keep Python's header)."""
    return [FILTERED_TRACEBACK_HEADER if line == _TRACEBACK_HEADER else line for line in lines]


def format_fail_trace(exc_type, exc_value, tb, filter_frames: bool = True) -> list[str]:
    """The traceback as a list of strings, without labbook's own frames unless asked."""
    if filter_frames:
        frames = []
        while tb is not None:
            if not tb.tb_frame.f_code.co_filename.startswith(_LABBOOK_DIR):
                frames.append(tb)
            tb = tb.tb_next
        # Re-link the kept frames: a traceback's tb_next is writable since Python 3.7.
        for i in range(len(frames) - 1):
            frames[i].tb_next = frames[i + 1]
        if frames:
            frames[-1].tb_next = None
        tb = frames[0] if frames else None
    return traceback.format_exception(exc_type, exc_value, tb)


class Run:
    """Represents and manages a single run of an experiment (see ``ex.run()``)."""

    def __init__(self, config: dict, config_modifications, main_function: Callable,
                 observers: Sequence, root_logger: logging.Logger, run_logger: logging.Logger,
                 experiment_info: dict, host_info: dict, pre_run_hooks: Sequence[Callable] = (),
                 post_run_hooks: Sequence[Callable] = (), captured_out_filter=None,
                 command: str = "main", meta_info: dict | None = None,
                 info: dict | None = None, seed: int | None = None,
                 fixtures: dict[str, dict] | None = None, read_only_config: bool = True,
                 capture_mode: str | None = None, numpy_random_legacy: bool = False):
        self._id: Any = None
        # the settings arrive as values (the experiment's snapshot of labbook.SETTINGS).
        # Sacred's switch: SETTINGS.CONFIG.READ_ONLY_CONFIG = False hands out plain containers.
        self.config = freeze(config) if read_only_config else config
        self._default_capture = capture_mode
        #: SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API when the run was made (the kind of ``_rnd``)
        self.numpy_random_legacy = numpy_random_legacy
        self.config_modifications = config_modifications
        self.main_function = main_function
        self.observers = list(observers)
        self.root_logger = root_logger
        self.run_logger = run_logger
        self.experiment_info = experiment_info
        self.host_info = host_info
        self.pre_run_hooks = list(pre_run_hooks)
        self.post_run_hooks = list(post_run_hooks)
        self.captured_out_filter = captured_out_filter
        self.command = command
        self.meta_info: dict = dict(meta_info or {})
        self.info: dict = dict(info or {})
        self.seed = seed if seed is not None else config.get("seed")
        self.result: Any = None
        self.status: str | None = None
        self.start_time: _dt.datetime | None = None
        self.stop_time: _dt.datetime | None = None
        self.fail_trace: list[str] | None = None
        self.captured_out: str = ""
        self.beat_interval: float = 10.0
        self.capture_mode: str | None = None
        self.debug = False
        self.pdb = False
        self.queue_only = False
        self.unobserved = False
        self.force = False
        self.system_metrics = True
        self._metrics = MetricBuffer()
        self._summary_overrides: dict[str, Any] = {}
        #: define_metric: name -> [kind, aggregate, count] of the summary kept for the metric
        self._defined: dict[str, list] = {}
        #: run.save's globs (labbook.run_files.SavedFiles), and what runs when the run ends
        #: (syncable directories push their files)
        self._saved: Any = None
        self.end_callbacks: list[Callable[[], Any]] = []
        #: resume=: None, "allow", "must" or "never" (see labbook.resume); what a resumed run
        #: had captured before (its new output is appended)
        self.resume: str | None = None
        self.resume_config: dict | None = None
        self.previous_output = ""
        self._config_cache: dict[tuple, Any] = {}
        self._fixtures = {path: freeze(value, path) for path, value in (fixtures or {}).items()}
        self._seed_streams: dict[str, SeedStream] = {}
        #: the experiment whose tree Sacred's seed chain runs over (set by ``ex.run``)
        self.seed_root: Any = None
        self._function_streams: dict[int, Any] | None = None
        self._bus: EventBus | None = None
        self._output = None
        self._beat_thread: threading.Thread | None = None
        self._beat_stop = threading.Event()
        self._beat_lock = threading.Lock()
        #: set except while the heartbeat thread sends points (see _send_points)
        self._sent = threading.Event()
        self._sent.set()
        self._hold_check = 0  # calls of _log_scalar_held until it counts the waiting points
        self._sysmetrics = None
        self._warned_unobserved = False
        self._announced = False
        self.is_worker = False
        #: more name parts that mark a secret (SETTINGS.SECRET_NAMES; see labbook.redact)
        self.secret_names: tuple[str, ...] = ()
        #: how store observers deliver (``labbook.SETTINGS.DELIVERY``); None: as they are
        self.delivery: dict | None = {}
        self._unexport: Callable[[], None] | None = None
        #: what a run started with start() closes at finish(): output capture, activation
        self._stack: Any = None
        # Bound once: the hot path of log_scalar is then a single attribute lookup.
        self.log_scalar = self._metrics.add  # type: ignore[method-assign]

    # -- access for captured functions ---------------------------------------------------------
    def config_for(self, ingredient_path: str, prefix: str | None) -> Any:
        key = (ingredient_path, prefix)
        try:
            return self._config_cache[key]
        except KeyError:
            pass
        fixture = self._fixtures.get(ingredient_path) if ingredient_path else None
        if fixture is not None:
            value = get_path(fixture, prefix, None) if prefix else fixture
            path = ".".join(p for p in (ingredient_path, prefix) if p)
        else:
            path = ".".join(p for p in (ingredient_path, prefix) if p)
            value = get_path(self.config, path, None) if path else self.config
        if not isinstance(value, dict):
            value = ReadOnlyDict({}, path)
        self._config_cache[key] = value
        return value

    def logger_for(self, name: str) -> logging.Logger:
        """The logger of a captured function (``name`` is its dotted ingredient path and
        function name): as in Sacred, a child of the base logger (``ex.logger`` or the root
        logger), not of the experiment-named run logger."""
        return self.root_logger.getChild(name)

    @property
    def debug_logging(self) -> bool:
        """Whether the run logs at DEBUG (captured functions then log their calls)."""
        return self.run_logger.isEnabledFor(logging.DEBUG)

    def seed_stream(self, name: str, function: Any = None) -> Any:
        """The seed stream of a captured function: Sacred's chain over the experiment's tree
        (see :mod:`labbook.randomness`), or, for a function outside it, one derived from the
        run's seed and ``name``."""
        if function is not None and self.seed_root is not None and self.seed is not None:
            if self._function_streams is None:
                from labbook.randomness import function_streams

                self._function_streams = function_streams(
                    self.seed_root, self.seed, self.numpy_random_legacy,
                    lambda ing: self.config_for(ing.config_path, None).get("seed"))
            found = self._function_streams.get(id(function))
            if found is not None:
                return found
        stream = self._seed_streams.get(name)
        if stream is None:
            stream = self._seed_streams[name] = SeedStream(self.seed or 0, name)
        return stream

    # -- the user's logging API ----------------------------------------------------------------
    def log_scalar(self, metric_name: str, value: Any, step: int | None = None) -> None:
        """Add a measurement of ``metric_name`` (step defaults to a per-metric counter)."""
        self._metrics.add(metric_name, value, step)  # replaced per instance, see __init__

    def log(self, data: dict, step: int | None = None, commit: bool = True) -> None:
        """Log a dict of metrics at the global step (wandb-style); nested dicts get dotted
        names; ``commit=False`` keeps adding to the same step."""
        self._metrics.log(data, step, commit)

    @property
    def summary(self) -> dict:
        """Last value of every metric, overridden by values set with ``summary[k] = v``."""
        return _Summary(self)

    def define_metric(self, name: str, step_metric: str | None = None,
                      summary: str | None = None) -> None:
        """Choose what the summary keeps for ``name`` (wandb's ``define_metric``): ``"min"``,
        ``"max"``, ``"mean"`` or ``"last"`` (the default) of its points; ``step_metric``
        names the metric that is its x-axis in charts. Recorded in
        ``info["metric_definitions"]``; the summary value goes to ``info["summary"]`` at each
        beat, where the read API, ``labbook ls`` and the report read it. A value set with
        ``run.summary[name] = v`` wins."""
        from labbook.metrics import check_metric_name

        check_metric_name(name)
        if summary not in _SUMMARY_KINDS:
            raise RunValueError(f"define_metric summary must be one of "
                                f"{', '.join(k for k in _SUMMARY_KINDS if k)}, not {summary!r}.")
        if step_metric is not None:
            check_metric_name(step_metric)
        definition = {"summary": summary or "last"}
        if step_metric is not None:
            definition["step_metric"] = step_metric
        with self._beat_lock:  # the heartbeat thread folds drained points in under it
            self.info.setdefault("metric_definitions", {})[name] = definition
            if summary in ("min", "max", "mean"):
                self._defined[name] = [summary, None, 0]
            else:
                self._defined.pop(name, None)

    def update_config(self, updates: dict) -> None:
        """Change top-level entries of the config of a run started with
        ``labbook.start_run``, before it logs its first metric (``run.config["x"] = 1`` and
        ``run.config.update(...)`` call this). The stored config follows, and
        ``meta["config_changes"]`` records each changed key ``{"from": old, "to": new}``."""
        if not isinstance(self.config, RunConfig):
            raise RunStateError(
                "The config of a run made by an Experiment is read-only; change it with config "
                "updates (ex.run(config_updates=...) or 'with key=value').")
        logged = sorted(n for n in self._metrics.latest() if not n.startswith("system."))
        if logged:
            raise RunStateError(
                f"run.config cannot change once metrics are logged (this run logged "
                f"{logged[0]!r}); set it before the first metric.")
        changes = self.meta_info.setdefault("config_changes", {})
        for key, value in updates.items():
            if not isinstance(key, str):
                raise RunValueError(f"Config keys must be strings, got {key!r}.")
            change = changes.get(key)
            if change is None:
                change = changes[key] = {} if key not in self.config \
                    else {"from": self.config[key]}
            change["to"] = value
            dict.__setitem__(self.config, key, freeze(value, key))
        self._config_cache.clear()
        if self._bus is not None and self.start_time is not None:
            extra = self.secret_names
            self._bus.emit("config_event", config=redact_value(dict(self.config), extra),
                           changes=redact_value(changes, extra))

    def _fold_summaries(self, metrics: dict) -> None:
        """Fold drained points into the summaries of defined metrics (the beat lock held)."""
        for name, state in self._defined.items():
            series = metrics.get(name)
            if not series or not series["values"]:
                continue
            values = series["values"]
            kind, current, count = state
            if kind == "min":
                low = min(values)
                state[1] = low if current is None or low < current else current
            elif kind == "max":
                high = max(values)
                state[1] = high if current is None or high > current else current
            else:
                total = (current or 0.0) * count + sum(values)
                state[2] = count + len(values)
                state[1] = total / state[2]
        self._store_summary()

    def _summary_entries(self) -> dict[str, Any]:
        """What the run states as its summary beyond the last values: the defined metrics'
        min / max / mean so far, then the values set with ``run.summary[k] = v``."""
        summary = {name: state[1] for name, state in self._defined.items()
                   if state[1] is not None}
        summary.update(self._summary_overrides)
        return summary

    def _store_summary(self) -> None:
        summary = self._summary_entries()
        if summary:  # entries put in info["summary"] by hand stay
            self.info["summary"] = dict(self.info.get("summary") or {}, **summary)

    def log_param(self, key: str, value: Any) -> None:
        """Record an input parameter (kept in ``info["params"]``; last call wins)."""
        _check_param(key, value)
        self.info.setdefault("params", {})[key] = value

    def log_params(self, params: dict) -> None:
        for key, value in params.items():
            _check_param(key, value)
        self.info.setdefault("params", {}).update(params)

    def set_tag(self, key: str, value: Any = None) -> None:
        """Tag the run: a plain tag (``set_tag("best")``) or a key with a value."""
        if not isinstance(key, str | int | float):
            raise RunValueError(f"Tag names must be strings or numbers, got {type(key).__name__}.")
        self.info.setdefault("tags", {})[str(key)] = value
        tags = self.meta_info.setdefault("tags", [])
        if str(key) not in tags:
            tags.append(str(key))

    def add_resource(self, filename) -> None:
        """Record a file the run used (stored once per content by the observers)."""
        filename = validate_resource_path(os.path.abspath(os.fspath(filename)))
        if self._bus is not None:
            self._bus.emit("resource_event", filename=filename)

    def open_resource(self, filename, mode: str = "r"):
        """Open a file and record it as a resource."""
        self.add_resource(filename)
        return open(filename, mode)

    def add_artifact(self, filename, name: str | None = None, metadata: dict | None = None,
                     content_type: str | None = None) -> None:
        """Store a file the run produced (name defaults to the file's base name)."""
        filename = os.path.abspath(os.fspath(filename))
        if not os.path.isfile(filename):
            raise MissingFileError(f"Artifact file {filename} does not exist.")
        name = validate_artifact_name(os.path.basename(filename) if name is None else name)
        if content_type is None:
            content_type = mimetypes.guess_type(name)[0] or mimetypes.guess_type(filename)[0]
        if self._bus is not None:
            self._bus.emit("artifact_event", name=name, filename=filename, metadata=metadata,
                           content_type=content_type)

    def save(self, glob_str: str, base_path: str | None = None, policy: str = "live"
             ) -> list[str]:
        """Store the files matching ``glob_str`` as artifacts named by their path relative to
        ``base_path`` (wandb's ``run.save``): ``policy="now"`` once, ``"end"`` when the run
        ends, ``"live"`` now, again at each heartbeat for changed files, and at the end.
        Returns the names stored now."""
        if self._saved is None:
            from labbook.run_files import SavedFiles

            self._saved = SavedFiles(self.add_artifact)
        return self._saved.save(glob_str, base_path, policy)

    def _before_end(self) -> None:
        """What runs while the run ends, before its final events: the end callbacks
        (syncable directories push), then run.save's ``end`` and ``live`` globs."""
        for callback in list(self.end_callbacks):
            try:
                callback()
            except Exception:  # the run still ends, and says what did not happen
                self.run_logger.warning("%s failed as the run ended", callback,
                                        exc_info=True)
        if self._saved is not None:
            self._saved.end()

    def log_artifact(self, path: Any, name: str | None = None, type: str | None = None,
                     aliases: Any = None, metadata: dict | None = None) -> Any:
        """Store a file or a directory (recursively) as the next version of the named artifact
        ``name`` (default: the file's or directory's base name): v0, v1, ... per name and store,
        numbered atomically. The same content as an existing version makes no new version
        (that one is returned, gets the ``aliases`` and records this run too); ``latest`` is
        always on the newest version, a user alias ("best") on one version per name. Returns
        the :class:`~labbook.stores.versions.ArtifactVersion` (``name``, ``version``,
        ``digest``, ``aliases``, ``type``, ``metadata``, ``files``). See docs/artifacts.md."""
        from labbook.artifact_versions import log_artifact
        from labbook.stores.versions import check_version_name

        if name is None:
            name = os.path.basename(os.path.abspath(os.fspath(path)).rstrip(os.sep))
        name = check_version_name(validate_artifact_name(name))
        return log_artifact(self, path, name, type, aliases, metadata)

    def use_artifact(self, ref: str) -> Any:
        """The version ``ref`` names (``"model"``, ``"model:best"``, ``"model:v2"``), recorded
        as an input of this run (lineage); ``.download(root=None)`` writes its files to
        ``./artifacts/<name>-<version>/`` (or ``root``) and returns that directory."""
        from labbook.artifact_versions import use_artifact

        return use_artifact(self, ref)

    def announce(self) -> None:
        """Log Sacred's opening lines once: the unobserved warning, then the command."""
        if self._announced:
            return
        self._announced = True
        self.warn_if_unobserved()
        self.run_logger.debug('Using capture mode "%s"', self._capture_mode_now())
        self.run_logger.info("Running command '%s'", self.command)

    def _capture_mode_now(self) -> str:
        """The capture mode a start now would use: the chosen one, else ``fd`` (``sys``
        where descriptors cannot be captured) for an observed run and ``no`` otherwise."""
        mode = self.capture_mode or self._default_capture
        if mode is None:
            from labbook.output import default_capture_mode

            observed = bool(self._bus) if self._bus is not None \
                else bool(self.observers) and not self.unobserved
            mode = default_capture_mode() if observed else "no"
        return mode

    def warn_if_unobserved(self) -> None:
        if not self.observers and not self.debug and not self.unobserved \
                and not self._warned_unobserved:
            self._warned_unobserved = True
            self.run_logger.warning("No observers have been added to this run")

    def _start_arguments(self) -> dict:
        """What the start (or queue) event tells the observers, with secrets masked (see
        :mod:`labbook.redact`): passwords in URLs, secret-looking config keys and options.
        The running code keeps the real values; ``meta_info["redacted"]`` lists what was
        masked, so a masked value is never a silent loss."""
        extra = self.secret_names
        masked = [f"config.{p}" for p in secret_paths(self.config, extra)]
        for key in ("options", "config_updates"):
            masked += [f"{key}.{p}" for p in secret_paths(self.meta_info.get(key), extra)]
        meta = redact_value(dict(self.meta_info), extra)
        if masked:
            meta["redacted"] = masked
        return {"ex_info": redact_value(self.experiment_info, extra), "command": self.command,
                "host_info": redact_value(self.host_info, extra),
                "config": redact_value(self.config, extra), "meta_info": meta}

    # -- lifecycle -----------------------------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        if self.start_time is not None or self._stack is not None:
            raise RunStateError("A run can only be started once; create a new one with ex.run().")
        if not self.queue_only:
            self._prepare_resume()
        self._open_bus()
        if self.queue_only:
            self._queue()
            return None

        token = activate(self)
        try:
            with self._capture() as self._output:
                self._execute(args)
        finally:
            deactivate(self, token)
            self._output = None
        return self.result

    def _open_bus(self) -> None:
        observers = [] if self.unobserved else self.observers
        if observers and self.delivery is not None and not self.is_worker:
            # store observers retry, then journal: an outage loses nothing (run.observers
            # keeps the user's objects, as in Sacred)
            from labbook.observers.durable import make_durable

            observers = make_durable(observers, self.delivery)
        self._bus = EventBus(observers, self.run_logger)
        self.announce()
        if self.seed is not None:
            set_global_seed(self.seed)

    def _prepare_resume(self) -> None:
        if self.resume is not None:
            from labbook.resume import prepare_resume

            prepare_resume(self, self.resume, self.resume_config)

    def _queue(self) -> None:
        self.status = QUEUED
        self._id = self._bus.start("queued_event", _id=self._id, queue_time=utcnow(),
                                   **self._start_arguments())
        self.run_logger.info("Queued run with ID \"%s\"", self._id) if self._id is not None \
            else self.run_logger.info("Queued")
        self._bus.join()  # observers that deliver in the background finish (or journal)

    def _capture(self) -> Any:
        from labbook.output import capture_output

        out_filter = self.captured_out_filter
        if out_filter is None:
            from labbook.output import apply_backspaces_and_linefeeds as out_filter
        return capture_output(self._capture_mode_now(), out_filter)

    def _execute(self, args) -> None:
        self._begin()
        try:
            for hook in self.pre_run_hooks:
                hook()
            self.result = self.main_function(*args)
            for hook in self.post_run_hooks:
                hook()
        except (LabbookInterrupt, KeyboardInterrupt) as exc:
            self._end_interrupted(exc)
            raise
        except BaseException:
            exc_type, exc_value, tb = sys.exc_info()
            self._end_failed(exc_type, exc_value, tb.tb_next)
            if self.pdb:
                import pdb

                pdb.post_mortem(tb)
            raise
        self._end_completed()

    def _begin(self) -> None:
        """Status RUNNING, the started event, the heartbeat: what precedes the user's code."""
        self.status = RUNNING
        self.start_time = utcnow()
        # readers report the run DIED after 3 missed beats of its own interval
        self.meta_info["beat_interval"] = float(self.beat_interval or 0)
        try:
            self._id = self._bus.start("started_event", _id=self._id,
                                       start_time=self.start_time, **self._start_arguments())
        except (RunExistsError, RunIdRefusedError):  # the chosen id is taken: main never runs
            self.status = FAILED
            self.stop_time = utcnow()
            raise
        if not self.is_worker:
            from labbook.distributed import export_parent

            self._unexport = export_parent(self._id, self._bus.active)
        if self._id is None:
            self.run_logger.info("Started")
        elif self.meta_info.get("resumptions"):
            self.run_logger.info('Resumed run with ID "%s"', self._id)
        else:
            self.run_logger.info('Started run with ID "%s"', self._id)
        self._start_heartbeat()

    def _end_interrupted(self, exc: BaseException) -> None:
        self._before_end()
        self.status = getattr(exc, "STATUS", INTERRUPTED)
        self.stop_time = utcnow()
        self._stop_heartbeat()
        self.run_logger.warning("Aborted after %s!",
                                elapsed_since(self.start_time, self.stop_time))
        self._bus.emit("interrupted_event", interrupt_time=self.stop_time, status=self.status)
        self._finish()

    def _end_failed(self, exc_type: Any, exc_value: Any, tb: Any,
                    fail_trace: list[str] | None = None) -> None:
        self._before_end()
        self.status = FAILED
        self.stop_time = utcnow()
        self.fail_trace = fail_trace if fail_trace is not None else format_fail_trace(
            exc_type, exc_value, tb, filter_frames=not self.debug)
        self._stop_heartbeat()
        self.run_logger.error("Failed after %s!", elapsed_since(self.start_time, self.stop_time))
        self._bus.emit("failed_event", fail_time=self.stop_time,
                       fail_trace=[redact_text(line, self.secret_names)
                                   for line in self.fail_trace])
        self._finish()

    def _end_completed(self) -> None:
        self._before_end()
        self.status = COMPLETED
        self.stop_time = utcnow()
        if self.result is not None:
            self.run_logger.info("Result: %s", self.result)
        self.run_logger.info("Completed after %s", elapsed_since(self.start_time, self.stop_time))
        self._stop_heartbeat()
        self._bus.emit("completed_event", stop_time=self.stop_time, result=self.result)
        self._finish()

    # -- without a main function: start_run ----------------------------------------------------
    def start(self) -> Run:
        """Start the run here and return it: the started event goes out, the heartbeat and
        output capture begin, and the run is the active one until :meth:`finish` (or the end
        of a ``with`` block). This is what :func:`labbook.start_run` calls."""
        if self.start_time is not None or self._stack is not None:
            raise RunStateError("A run can only be started once; start a new one with "
                                "labbook.start_run().")
        import contextlib

        self._prepare_resume()
        self._open_bus()
        stack = contextlib.ExitStack()
        token = activate(self)
        stack.callback(deactivate, self, token)
        try:
            self._output = stack.enter_context(self._capture())
            self._begin()
        except BaseException:
            stack.close()
            self._output = None
            raise
        self._stack = stack
        return self

    @property
    def finished(self) -> bool:
        """Whether the run has ended (completed, failed or interrupted)."""
        return self.stop_time is not None

    def finish(self, exit_code: int | None = None, result: Any = None) -> None:
        """End a run started with :meth:`start`: COMPLETED, or FAILED for a non-zero
        ``exit_code`` (wandb's ``finish(exit_code=1)``). Finishing twice does nothing."""
        if self._stack is None:
            if self.start_time is None:
                raise RunStateError("This run has not been started; use labbook.start_run().")
            return  # already finished
        if exit_code is not None and not isinstance(exit_code, int):
            raise RunValueError(f"exit_code must be an integer, got {exit_code!r}.")
        if result is not None:
            self.result = result
        try:
            if exit_code:
                self._end_failed(None, None, None,
                                 fail_trace=[f"The run finished with exit code {exit_code}.\n"])
            else:
                self._end_completed()
        finally:
            self._close_stack()

    def _close_stack(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        self._output = None

    def __enter__(self) -> Run:
        if self.start_time is None:
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, tb: Any) -> None:
        if self._stack is None:
            return
        if exc_type is None:
            self.finish()
            return
        try:
            if issubclass(exc_type, LabbookInterrupt | KeyboardInterrupt):
                self._end_interrupted(exc_value)
            else:
                self._end_failed(exc_type, exc_value, tb)
        finally:
            self._close_stack()

    def _finish(self) -> None:
        if self._unexport is not None:
            self._unexport()
            self._unexport = None
        self._bus.join()
        failed = self._bus.failed_names()
        if failed:
            self.run_logger.warning(
                "Observer(s) %s failed during this run; what they received before failing is "
                "kept, later events were not delivered to them.", ", ".join(failed))

    # -- heartbeats ----------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        if self.system_metrics and self._bus:
            try:
                from labbook.sysmetrics import SystemMetrics

                self._sysmetrics = SystemMetrics()
                self._sysmetrics.prime()  # the CPU percentages of the first beat start here
            except Exception:  # never fail a run for a missing sensor
                self.run_logger.debug("System metrics unavailable", exc_info=True)
                self._sysmetrics = None
        if self.beat_interval and self.beat_interval > 0:
            self.run_logger.debug("Starting Heartbeat")
            self._beat_stop.clear()
            self._beat_thread = threading.Thread(target=self._beat_loop, daemon=True,
                                                 name="labbook-heartbeat")
            self._beat_thread.start()

    def _beat_loop(self) -> None:
        """A beat every ``beat_interval`` seconds; between beats, every :data:`_POLL` seconds,
        the points logged so far go to the observers early once there are
        :data:`_FLUSH_POINTS` of them, so a fast loop never holds millions of points in
        memory (the check is here, not in ``log_scalar``, which stays a bare append)."""
        next_beat = time.monotonic() + self.beat_interval
        while not self._beat_stop.wait(max(0.0, min(_POLL, next_beat - time.monotonic()))):
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self.beat_interval
            elif self._metrics.size() >= _FLUSH_POINTS:
                self._flush_points()

    def _flush_points(self) -> None:
        """Send the points logged since the last beat (no heartbeat)."""
        with self._beat_lock:
            self._send_points()

    def _send_points(self) -> None:
        """Drain the metric buffer into ``log_metrics`` events of at most
        :data:`_SEND_POINTS` points (the beat lock held).

        Sent from the heartbeat thread, the points are written while the run goes on logging;
        for that time ``run.log_scalar`` is :meth:`_log_scalar_held`, which makes the run wait
        once :data:`_HOLD_POINTS` new points wait, and is the bare append again afterwards."""
        if self._bus is None:
            return
        held = threading.current_thread() is self._beat_thread
        if held:
            self._sent.clear()
            self.log_scalar = self._log_scalar_held  # type: ignore[method-assign]
        try:
            # what waits now, in events of at most _SEND_POINTS points: the conversions of
            # one event (times, JSON, rows) are what the send holds in memory
            self._metrics.commit()
            left = self._metrics.size()
            while left > 0:
                metrics = self._metrics.drain(min(left, _SEND_POINTS))
                if not metrics:
                    break
                left -= sum(len(series["steps"]) for series in metrics.values())
                if self._defined:
                    self._fold_summaries(metrics)
                self._bus.emit("log_metrics", metrics_by_name=metrics, info=self.info)
        finally:
            if held:
                self.log_scalar = self._metrics.add  # type: ignore[method-assign]
                self._sent.set()

    def _log_scalar_held(self, metric_name: str, value: Any, step: int | None = None) -> None:
        """``log_scalar`` while points are being sent: as fast as the bare one until
        :data:`_HOLD_POINTS` points wait, then it waits for the send to end."""
        self._metrics.add(metric_name, value, step)
        self._hold_check -= 1
        if self._hold_check <= 0:  # counting the points of every metric: once in a while
            self._hold_check = _HOLD_EVERY
            if self._metrics.size() >= _HOLD_POINTS:
                self._sent.wait()

    def _stop_heartbeat(self) -> None:
        if self._beat_thread is not None:
            self.run_logger.debug("Stopping Heartbeat")
            self._beat_stop.set()
            self._beat_thread.join(timeout=max(self.beat_interval, 10.0))
            self._beat_thread = None
        with self._bus.deferred():  # the end event, sent next, waits for this beat's delivery
            self._beat()

    def _beat(self) -> None:
        """Send the metrics logged since the last beat, then a heartbeat."""
        with self._beat_lock:
            if self._sysmetrics is not None:
                try:
                    for name, value in self._sysmetrics.sample().items():
                        self._metrics.add(name, value)
                except Exception:
                    self.run_logger.debug("System metrics sampling failed", exc_info=True)
            self._store_summary()
            if self._output is not None:
                self._output.flush()
                self.captured_out = self.previous_output + self._output.get()
            self._send_points()
            if self._saved is not None and self.stop_time is None:
                self._saved.beat()
            if self._bus is not None:
                self._bus.emit("heartbeat_event", info=self.info,
                               captured_out=self.captured_out, beat_time=utcnow(),
                               result=self.result)


_SUMMARY_KINDS = (None, "min", "max", "mean", "last")


class RunConfig(dict):
    """The config of a run started with ``labbook.start_run``: changeable before its first
    metric (wandb's ``run.config["x"] = 1``, ``run.config.update(...)``); each change is
    stored (see :meth:`Run.update_config`)."""

    def __init__(self, run: Run, config: dict):
        # nested entries are read-only: a change inside one would not be recorded
        super().__init__({key: freeze(value, key) for key, value in config.items()})
        self._run = run

    def __setitem__(self, key: Any, value: Any) -> None:
        self._run.update_config({key: value})

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._run.update_config(dict(*args, **kwargs))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self._run.update_config({key: default})
        return self[key]

    def __delitem__(self, key: Any) -> None:
        raise RunStateError("Config entries cannot be removed; set the entry to a new value.")

    def pop(self, *args: Any) -> Any:
        raise RunStateError("Config entries cannot be removed; set the entry to a new value.")

    popitem = clear = pop

    def __reduce__(self):  # pickles (and copies) as a plain dict
        return (dict, (dict(self),))


class _Summary(dict):
    """A snapshot of the summary whose item assignment writes through to the run."""

    def __init__(self, run: Run):
        if run._defined:  # min / max / mean over every point: the waiting ones go out first
            run._flush_points()
        super().__init__(run._metrics.latest())
        dict.update(self, run._summary_entries())
        self.update_overrides = run._summary_overrides

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        self.update_overrides[key] = value


_PLAIN = (str, int, float, bool, type(None))


def is_plain_param(value: Any) -> bool:
    """Whether ``value`` is what parameters hold: numbers, text, booleans, None, or (nested
    once) lists of them."""
    if isinstance(value, _PLAIN):
        return True
    return isinstance(value, list | tuple) and all(
        isinstance(v, _PLAIN) or (isinstance(v, list | tuple)
                                  and all(isinstance(w, _PLAIN) for w in v))
        for v in value)


def _check_param(key: Any, value: Any) -> None:
    if not isinstance(key, str):
        raise RunValueError(f"Parameter names must be strings, got {key!r}.")
    if is_plain_param(value):
        return
    raise RunValueError(
        f"Parameter '{key}' has a value of type {type(value).__name__}; parameters must be "
        "numbers, strings, booleans or (nested) lists of them.")
