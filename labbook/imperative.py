"""Runs without decorators: ``start_run`` for notebooks and scripts, and module-level helpers.

``labbook.start_run(...)`` makes the same :class:`~labbook.run.Run` that ``ex.run()`` makes (an
:class:`~labbook.experiment.Experiment` holds its config, host info, sources and observers),
starts it where it is called, and returns it. The run ends with ``run.finish()``, at the end
of a ``with`` block, or when the process exits (COMPLETED, or FAILED when the interpreter
ends by an uncaught exception). The same events reach the same stores, so a notebook's run is
read back by the same ``Api``, ``labbook`` command and report as a decorated experiment's.

The helpers (``labbook.log``, ``log_scalar``, ``log_metric``, ``log_param(s)``, ``set_tag``,
``save_artifact``, ``log_text``, ``log_dict``, ``log_image``, ``log_figure``,
``load_parameters``) act on the active run: the one ``start_run`` began, or the run of the
decorated experiment whose code is running. Without one they raise :class:`NoActiveRunError`.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import struct
import sys
import tempfile
import zlib
from typing import Any, Iterator, Sequence

from labbook.context import current_run as _context_run
from labbook.errors import ArgumentTypeError, NoActiveRunError, RunStateError, RunValueError

__all__ = ["start_run", "init", "current_run", "finish", "end_run", "log", "log_scalar",
           "log_metric", "log_metrics", "define_metric", "log_param", "log_params",
           "set_tag", "set_tags", "save", "restore", "create_syncable_directory",
           "save_artifact", "log_text", "log_dict", "log_image", "log_figure", "load_parameters",
           "log_artifact", "use_artifact", "png_bytes"]

#: the run start_run began and that has not finished (one per process unless reinit=True)
_started: list[Any] = []
_CAPTURE_MODES = ("sys", "fd", "no")


def _default_experiment_name(caller_globals: dict) -> str:
    mainfile = caller_globals.get("__file__")
    if mainfile:
        return os.path.splitext(os.path.basename(mainfile))[0]
    if "IPython" in sys.modules or "ipykernel" in sys.modules:
        return "notebook"
    return "interactive"


def start_run(experiment: str | None = None, config: dict | None = None, *,
              name: str | None = None, tags: Sequence[str] | str | None = None,
              notes: str | None = None, group: str | None = None, parent: Any = None,
              store: str | None = None, observers: Sequence | None = None,
              run_id: Any = None, capture: str = "sys", beat_interval: float | None = None,
              reinit: bool = False, system_metrics: bool = True,
              job_type: str | None = None, variant: str | None = None,
              resume: str | None = None) -> Any:
    """Start a run here and return it (usable as a context manager; end it with
    ``run.finish()``).

    ``experiment`` names the experiment (default: the script's name, or ``notebook``);
    ``config`` is the run's configuration (a dict, or a json/yaml file's path; read it back
    as ``run.config``); ``job_type`` (wandb) is recorded as ``meta.job_type``, ``variant``
    (experiment_results_manager) as ``meta.variant``;
    ``name``, ``tags``, ``notes``, ``group`` and ``parent`` (another run's id) are recorded
    with the run. The run records into ``observers`` when given, else into ``store`` (a store
    URL or directory), else into ``$LABBOOK_STORE``, else into the embedded default store
    (``labbook.db`` in the current directory). ``capture`` is the output capture mode (``sys``
    suits notebooks). ``resume`` ("allow", "must", "never") with ``run_id`` continues a stored
    run (see :mod:`labbook.resume`). A second ``start_run`` while a run is active raises unless
    ``reinit=True``, which finishes that run first.
    """
    caller_globals = sys._getframe(1).f_globals
    if capture not in _CAPTURE_MODES:
        raise RunValueError(f"capture must be one of {', '.join(_CAPTURE_MODES)}, not "
                            f"{capture!r}.")
    if config is not None and not isinstance(config, dict | str | os.PathLike):
        raise RunValueError(f"config must be a dict or a config file's path, got "
                            f"{type(config).__name__}.")
    if _started:
        active = _started[-1]
        if not reinit:
            raise RunStateError(
                f"A run started with start_run is still active (id {active._id!r}); call "
                "run.finish() first, or start_run(..., reinit=True) to finish it and start "
                "another.")
        active.finish()
    if isinstance(tags, str):
        tags = [tags]
    claimed = _claimed()
    if claimed is not None:  # a process placed for a submitted run: that run starts here
        store, doc = claimed
        observers, run_id, resume = None, doc["_id"], None
        experiment = (doc.get("meta") or {}).get("project_name") or experiment or \
            (doc.get("experiment") or {}).get("name")
        config = _with_stored(config, doc.get("config") or {})
        queued = doc.get("meta") or {}
        tags = list(dict.fromkeys([*(queued.get("tags") or ()), *(tags or ())]))
        name = name if name is not None else queued.get("name")
        notes = notes if notes is not None else queued.get("notes")
        group = group if group is not None else queued.get("group")
    from labbook.experiment import Experiment

    ex = Experiment(experiment or _default_experiment_name(caller_globals),
                    interactive=True, _caller_globals=caller_globals)
    if isinstance(config, dict):
        if config:
            ex.add_config(dict(config))
    elif config is not None:
        ex.add_config(os.fspath(config))  # json / yaml, as wandb.init(config="file.yaml")

    def main() -> None:  # the command of a run started with start_run (never called)
        return None

    ex.main(main)
    options: dict[str, Any] = {"capture": capture}
    if observers is not None:
        ex.observers = list(observers)
    else:
        from labbook.stores import default_url

        options["store"] = store or default_url()
    for key, value in (("name", name), ("notes", notes), ("group", group), ("id", run_id),
                       ("beat_interval", beat_interval)):
        if value is not None:
            options[key] = value
    if tags:
        options["tag"] = [str(t) for t in tags]
    if not system_metrics:
        options["no_system_metrics"] = True
    meta = {key: value for key, value in (("parent", parent), ("job_type", job_type),
                                          ("variant", variant)) if value is not None} or None
    if claimed is not None:  # the queued run's bookkeeping stays with it
        kept = {k: v for k, v in (claimed[1].get("meta") or {}).items()
                if k in ("worker", "requeues", "config_updates", "project_name")}
        meta = {**kept, **(meta or {})} or None
    run = ex._create_run(options=options, meta_info=meta)
    from labbook.run import RunConfig
    from labbook.serialize import copy_plain

    run.config = RunConfig(run, copy_plain(run.config))  # changeable before the first metric
    if resume is not None:
        run.resume = resume
        run.resume_config = dict(config) if isinstance(config, dict) else {}
    run.start()
    _started.append(run)
    run._stack.callback(_forget, run)  # at finish() or the end of the with block
    return run


def _claimed() -> tuple[str, dict] | None:
    """The submitted run this process was placed to execute (``labbook.submit`` with a plain
    script: :data:`~labbook.commandline.WORKER_RUN_ENV` names it), taken out of the
    environment so the run's own subprocesses do not inherit it; None otherwise."""
    from labbook.commandline import WORKER_RUN_ENV, read_claim

    spec = os.environ.pop(WORKER_RUN_ENV, None)
    return None if spec is None else read_claim(spec)


def _with_stored(given: Any, stored: dict) -> dict:
    """The config of a submitted run: what the script gives, the submitted params over it."""
    from labbook.config.paths import dict_merge

    base: dict = {}
    if isinstance(given, dict):
        base = dict(given)
    elif given is not None:
        from labbook.config.files import load_config_file

        base = load_config_file(os.fspath(given))
    return dict_merge(base, stored)


def init(project: str | None = None, config: dict | str | None = None, *, id: Any = None,
         **kwargs: Any) -> Any:
    """wandb's spelling of :func:`start_run`: ``project`` is the experiment's name, ``id``
    the run's id; the other arguments are :func:`start_run`'s (``name``, ``tags``, ``notes``,
    ``group``, ``job_type``, ``reinit``, ...)."""
    caller = sys._getframe(1).f_globals
    if "experiment" in kwargs:
        project = kwargs.pop("experiment")
    if project is None:
        project = _default_experiment_name(caller)
    return start_run(project, config, run_id=id if id is not None else kwargs.pop(
        "run_id", None), **kwargs)


def _forget(run: Any) -> None:
    if run in _started:
        _started.remove(run)


@atexit.register
def _finish_at_exit() -> None:
    # an uncaught exception ending a script leaves it in sys.last_value (3.12: sys.last_exc);
    # in IPython a failed cell sets it too, and the kernel ending is no failure
    failed = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if "ipykernel" in sys.modules or "IPython" in sys.modules:
        failed = None
    for run in list(reversed(_started)):
        try:
            if isinstance(failed, BaseException):
                run.__exit__(type(failed), failed, failed.__traceback__)
            else:
                run.finish()
        except Exception:  # the interpreter is ending: say so, never hang or raise here
            import logging

            logging.getLogger("labbook").exception("Could not finish run %s at exit", run._id)


def current_run() -> Any:
    """The active run (started by start_run, or of a decorated experiment), or None."""
    return _context_run()


def _active() -> Any:
    run = _context_run()
    if run is None or run.start_time is None or run.stop_time is not None:
        raise NoActiveRunError(
            "No active run: start one with labbook.start_run(...) (or call this from the "
            "code of a running experiment).")
    return run


def finish(exit_code: int | None = None) -> None:
    """Finish the run start_run began (wandb's ``wandb.finish``)."""
    if not _started:
        raise NoActiveRunError("No run started with labbook.start_run is active.")
    _started[-1].finish(exit_code)


def end_run(status: str = "FINISHED") -> None:
    """MLflow's ``end_run``: ``FINISHED`` completes the run, ``FAILED`` fails it,
    ``KILLED`` marks it interrupted."""
    if not _started:
        raise NoActiveRunError("No run started with labbook.start_run is active.")
    run = _started[-1]
    if status == "FINISHED":
        run.finish()
    elif status == "FAILED":
        run.finish(exit_code=1)
    elif status == "KILLED":
        run.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
    else:
        raise RunValueError(f"end_run status must be FINISHED, FAILED or KILLED, not "
                            f"{status!r}.")


# -- metrics and parameters ---------------------------------------------------------------------
def log(data: dict, step: int | None = None, commit: bool = True) -> None:
    """Log a dict of metrics at the global step (wandb's ``log``)."""
    _active().log(data, step=step, commit=commit)  # numpy scalars: converted by the buffer


def log_scalar(name: str, value: Any, step: int | None = None) -> None:
    """Add a point to the metric ``name`` (Sacred's ``_run.log_scalar``)."""
    _active().log_scalar(name, value, step)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Foundations', experiment_results_manager's and MLflow's ``log_metric``: a number adds a
    point to the metric (repeated calls append; ``step`` as MLflow's, else the next step);
    text, or a list, is appended to ``info["text_metrics"][key]``."""
    run = _active()
    if isinstance(value, bool | int | float) or _is_numpy_scalar(value):
        run.log_scalar(key, value, step)
        return
    if isinstance(value, str):
        try:  # experiment_results_manager logs numbers as text: log_metric("rmse", "0.9")
            run.log_scalar(key, float(value), step)
            return
        except ValueError:
            pass
    if isinstance(value, str | list | tuple):
        _check_plain(key, value, "Metric")
        run.info.setdefault("text_metrics", {}).setdefault(key, []).append(
            list(value) if isinstance(value, tuple) else value)
        return
    raise ArgumentTypeError(f"Metric '{key}' has a value of type {type(value).__name__}; log "
                            "numbers, text or lists of them.")


def log_metrics(metrics: dict, step: int | None = None) -> None:
    """:func:`log_metric` for each entry (experiment_results_manager's and MLflow's
    ``log_metrics``)."""
    if not isinstance(metrics, dict):
        raise ArgumentTypeError(f"log_metrics takes a dict, got {type(metrics).__name__}.")
    for key, value in metrics.items():
        log_metric(key, value, step)


def define_metric(name: str, step_metric: str | None = None,
                  summary: str | None = None) -> None:
    """What the summary keeps for a metric: ``"min"``, ``"max"``, ``"mean"`` or ``"last"``
    (wandb's ``define_metric``; see :meth:`labbook.run.Run.define_metric`)."""
    _active().define_metric(name, step_metric=step_metric, summary=summary)


def log_param(key: str, value: Any) -> None:
    """Record an input parameter (``info["params"]``; the last call for a key wins)."""
    _active().log_param(key, _plain(key, value, "Parameter"))


def log_params(params: dict) -> None:
    if not isinstance(params, dict):
        raise ArgumentTypeError(f"log_params takes a dict, got {type(params).__name__}.")
    _active().log_params({key: _plain(key, value, "Parameter") for key, value in params.items()})


def set_tag(key: Any, value: Any = None) -> None:
    """Tag the active run (``set_tag("best")``, or a key with a value)."""
    _active().set_tag(key, value)


def set_tags(tags: dict) -> None:
    """:func:`set_tag` for each entry (MLflow's ``set_tags``)."""
    if not isinstance(tags, dict):
        raise ArgumentTypeError(f"set_tags takes a dict, got {type(tags).__name__}.")
    run = _active()
    for key, value in tags.items():
        run.set_tag(key, value)


def load_parameters() -> dict:
    """The active run's configuration as a plain dict (Foundations' ``load_parameters``)."""
    from labbook.serialize import copy_plain

    return copy_plain(_active().config)


def _is_numpy_scalar(value: Any) -> bool:
    return getattr(value, "ndim", None) == 0 and hasattr(value, "item")


def _from_numpy(value: Any) -> Any:
    """A numpy scalar or array as a Python number or list; anything else as it is."""
    if _is_numpy_scalar(value):
        return value.item()
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        return value.tolist()
    return value


def _plain(key: str, value: Any, what: str) -> Any:
    """numpy scalars and arrays as Python numbers and lists; other types: a TypeError."""
    value = _from_numpy(value)
    _check_plain(key, value, what)
    return value


def _check_plain(key: str, value: Any, what: str) -> None:
    from labbook.run import is_plain_param

    if is_plain_param(value):
        return
    raise ArgumentTypeError(f"{what} '{key}' has a value of type {type(value).__name__}; use "
                            "numbers, text, booleans or (nested) lists of them.")


# -- files kept in step with the store ------------------------------------------------------------
def save(glob_str: str, base_path: str | None = None, policy: str = "live") -> list[str]:
    """wandb's ``save``: :meth:`labbook.run.Run.save` on the active run."""
    return _active().save(glob_str, base_path=base_path, policy=policy)


def restore(name: str, run_path: Any, root: Any = ".", replace: bool = False,
            store: Any = None) -> str:
    """wandb's ``restore``: download artifact ``name`` of run ``run_path`` into ``root``;
    the path written (store: the active run's, else ``$LABBOOK_STORE`` / the default)."""
    from labbook.run_files import restore as _restore

    return _restore(name, run_path, root, replace=replace, store=store)


def create_syncable_directory(key: str, local_path: Any = None, source_run: Any = None, *,
                              directory_path: Any = None, source_job_id: Any = None) -> Any:
    """Foundations' syncable directory: the files run ``source_run`` pushed under ``key``
    are downloaded into ``local_path`` now, and ``local_path`` is pushed as the artifacts
    ``key/<relative path>`` of the active run when it ends (or on ``.upload()``).
    ``directory_path`` and ``source_job_id`` are Foundations' names of the two."""
    from labbook.run_files import SyncableDirectory

    run = _active()
    local_path = local_path if local_path is not None else directory_path
    source_run = source_run if source_run is not None else source_job_id
    directory = SyncableDirectory(run, key, os.fspath(local_path if local_path is not None
                                                      else key), source_run)
    directory.download()
    run.end_callbacks.append(directory.upload)
    return directory


# -- artifacts ----------------------------------------------------------------------------------
def save_artifact(filepath: Any, key: str | None = None) -> None:
    """Store a file the run made (Foundations' ``save_artifact``): named ``key`` (with the
    file's extension when ``key`` has none), else the file's name."""
    filepath = os.fspath(filepath)
    name = None
    if key is not None:
        name = str(key)
        ext = os.path.splitext(filepath)[1]
        if ext and not os.path.splitext(name)[1]:
            name += ext
    _active().add_artifact(filepath, name=name)


@contextlib.contextmanager
def _as_file(data: bytes, filename: str) -> Iterator[str]:
    """``data`` as the file ``filename`` in a temporary directory, removed afterwards: the
    observers have their copy when add_artifact / log_artifact return (durable delivery keeps
    one while the store is away)."""
    with tempfile.TemporaryDirectory(prefix="labbook-artifact-") as folder:
        path = os.path.join(folder, filename)
        with open(path, "wb") as handle:
            handle.write(data)
        yield path


def _add_bytes(run: Any, data: bytes, name: str, content_type: str | None = None) -> str:
    from labbook.run import validate_artifact_name

    validate_artifact_name(name)
    with _as_file(data, os.path.basename(name)) as path:
        run.add_artifact(path, name=name, content_type=content_type)
    return name


def _with_ext(name: str, ext: str) -> str:
    return name if os.path.splitext(name)[1] else name + ext


def log_text(text: str | bytes, name: str) -> str:
    """Store ``text`` as the artifact ``name`` (``.txt`` added when it has no extension);
    returns the artifact's name."""
    if isinstance(text, str):
        data = text.encode("utf-8")
    elif isinstance(text, bytes):
        data = text
    else:
        raise ArgumentTypeError(f"log_text takes str or bytes, got {type(text).__name__}.")
    return _add_bytes(_active(), data, _with_ext(str(name), ".txt"), "text/plain")


def log_dict(name: str, data: dict) -> str:
    """Store ``data`` as the JSON artifact ``name`` (``.json`` added when it has no
    extension); numpy values become numbers and lists; returns the artifact's name.
    MLflow's order, ``log_dict(data, name)``, works too."""
    if isinstance(name, dict) and not isinstance(data, dict):
        name, data = data, name
    if not isinstance(data, dict):
        raise ArgumentTypeError(f"log_dict takes a dict, got {type(data).__name__}.")
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=True, default=_json_default)
    except TypeError as exc:
        raise ArgumentTypeError(f"log_dict('{name}'): {exc}") from None
    return _add_bytes(_active(), text.encode("utf-8"), _with_ext(str(name), ".json"),
                      "application/json")


def _json_default(value: Any) -> Any:
    converted = _from_numpy(value)
    if converted is not value:
        return converted
    raise ArgumentTypeError(f"a value of type {type(value).__name__} is not JSON")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE_SIGNATURES = ((_PNG_SIGNATURE, ".png", "image/png"),
                     (b"\xff\xd8\xff", ".jpg", "image/jpeg"),
                     (b"GIF87a", ".gif", "image/gif"), (b"GIF89a", ".gif", "image/gif"))


def log_image(image: Any, name: str) -> str:
    """Store an image as the artifact ``name``: a file path, encoded bytes (PNG, JPEG, GIF),
    a PIL image or a numpy array (H×W grey, H×W×3 RGB or H×W×4 RGBA; floats in [0, 1] or
    integers 0-255), the last two as PNG. Returns the artifact's name."""
    run = _active()
    name = str(name)
    if isinstance(image, str | os.PathLike):
        path = os.fspath(image)
        ext = os.path.splitext(path)[1]
        run.add_artifact(path, name=_with_ext(name, ext or ".png"))
        return _with_ext(name, ext or ".png")
    if isinstance(image, bytes | bytearray):
        for signature, ext, content_type in _IMAGE_SIGNATURES:
            if bytes(image[:len(signature)]) == signature:
                return _add_bytes(run, bytes(image), _with_ext(name, ext), content_type)
        raise ArgumentTypeError(f"log_image('{name}'): the bytes are not a PNG, JPEG or GIF image.")
    if hasattr(image, "save") and hasattr(image, "mode") and hasattr(image, "size"):  # PIL
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return _add_bytes(run, buffer.getvalue(), _with_ext(name, ".png"), "image/png")
    if hasattr(image, "shape") and hasattr(image, "dtype"):
        return _add_bytes(run, png_bytes(image), _with_ext(name, ".png"), "image/png")
    raise ArgumentTypeError(f"log_image('{name}') takes a path, image bytes, a PIL image or a "
                            f"numpy array, got {type(image).__name__}.")


def png_bytes(array: Any) -> bytes:
    """Encode a numpy array (H×W, H×W×1, H×W×3 or H×W×4) as an 8-bit PNG."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise ArgumentTypeError(f"An image array must be H×W, H×W×3 or H×W×4, got shape {a.shape}.")
    if a.dtype.kind == "b":
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise RunValueError("An image array of floats must not hold NaN or infinity.")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise RunValueError("An image array of integers must hold values 0-255 (got "
                                f"{a.min()}..{a.max()}).")
        a = a.astype(np.uint8)
    else:
        raise ArgumentTypeError(f"An image array must hold numbers, got dtype {a.dtype}.")
    height, width = a.shape[:2]
    colour = {2: 0, 3: 2, 4: 6}[a.ndim if a.ndim == 2 else 2 + a.shape[2] - 2]
    # one filter byte (0: none) before each row
    rows = np.concatenate([np.zeros((height, 1), np.uint8), a.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (_PNG_SIGNATURE + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def log_figure(figure: Any, name: str) -> str:
    """Store a figure as the artifact ``name``: matplotlib (a Figure or Axes) as PNG, plotly
    as a standalone HTML page. Returns the artifact's name."""
    run = _active()
    name = str(name)
    if hasattr(figure, "get_figure") and not hasattr(figure, "savefig"):  # matplotlib Axes
        figure = figure.get_figure()
    if hasattr(figure, "savefig"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return _add_bytes(run, buffer.getvalue(), _with_ext(name, ".png"), "image/png")
    if hasattr(figure, "to_html") and hasattr(figure, "to_plotly_json"):
        html = figure.to_html(include_plotlyjs=True, full_html=True)
        return _add_bytes(run, html.encode("utf-8"), _with_ext(name, ".html"), "text/html")
    raise ArgumentTypeError(f"log_figure('{name}') takes a matplotlib Figure or Axes or a "
                            f"plotly Figure, got {type(figure).__name__}.")


def log_artifact(path: Any, name: str | None = None, type: str | None = None,
                 aliases: Any = None, metadata: dict | None = None, *,
                 artifact_id: str | None = None, filename: str | None = None) -> Any:
    """A new version of the named artifact ``name`` from a file or a directory, logged by the
    active run (wandb's ``log_artifact``; see :meth:`labbook.run.Run.log_artifact`).

    experiment_results_manager's form works too: ``log_artifact(pickle.dumps(model),
    artifact_id="model", filename="model.pickle")`` stores the bytes as the file
    ``filename`` (default: the name) of a version of ``artifact_id``."""
    run = _active()
    name = name if name is not None else artifact_id
    if not isinstance(path, bytes | bytearray):
        return run.log_artifact(path, name=name, type=type, aliases=aliases, metadata=metadata)
    if name is None and filename is None:
        raise ArgumentTypeError("log_artifact of bytes needs a name: log_artifact(data, "
                                "name='model') or artifact_id= / filename=.")
    from labbook.run import validate_artifact_name

    filename = validate_artifact_name(filename or name, "Artifact file name")
    if "/" in filename.replace("\\", "/"):
        raise ArgumentTypeError(f"filename {filename!r} must be a file name, not a path.")
    with _as_file(bytes(path), filename) as target:
        return run.log_artifact(target, name=name or os.path.splitext(filename)[0],
                                type=type, aliases=aliases, metadata=metadata)


def use_artifact(ref: str) -> Any:
    """The version ``ref`` names (``"model:best"``), recorded as an input of the active run
    (wandb's ``use_artifact``); ``.download()`` writes its files and returns the directory."""
    return _active().use_artifact(ref)
