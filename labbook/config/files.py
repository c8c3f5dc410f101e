"""Config files: json, yaml and pickle, chosen by the file's extension.

* ``.json`` -- plain JSON, decoded as plain JSON. Values that JSON cannot hold (objects kept
  in the config because jsonpickle can restore them) are written in jsonpickle's tagged form
  (``{"py/object": ...}``). Restoring such tags imports and calls what they name (a
  ``py/reduce`` tag runs any function), so a file with tags other than ``py/tuple`` and
  ``py/set`` is refused unless it is *trusted*.
* ``.yaml`` / ``.yml`` -- read with ``yaml.safe_load`` only (no arbitrary Python objects), written
  with ``yaml.safe_dump``; values YAML cannot hold are refused when saving.
* ``.pickle`` / ``.pkl`` -- Python's pickle. Loading a pickle file executes code from the file,
  so pickle files are refused unless trusted.

A file is trusted when the caller says so (``add_config(path, trusted=True)``,
``load_config_file(path, trusted=True)``) or when ``labbook.SETTINGS.CONFIG.TRUSTED_FILES`` is
True or lists the file or a directory above it (its default comes from the environment
variable ``LABBOOK_TRUSTED_CONFIG_FILES``: ``1`` for every file, or paths separated by
``os.pathsep``).
"""
from __future__ import annotations

import os
from typing import Any

from labbook import serialize
from labbook.errors import ConfigFileError, ConfigFileSaveError, UntrustedConfigFileError
from labbook.fileio import write_atomic

__all__ = ["PathType", "load_config_file", "save_config_file"]

PathType = str | os.PathLike

_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".pickle": "pickle",
            ".pkl": "pickle"}
_UNSUPPORTED = "unsupported format '{}'; use .json, .yaml/.yml or .pickle"
_PLAIN_LEAVES = (str, int, float, bool, type(None))


def _format_of(filename: str, error: type[ConfigFileError]) -> str:
    ext = os.path.splitext(filename)[1]
    fmt = _FORMATS.get(ext.lower())
    if fmt is None:
        raise error(filename, _UNSUPPORTED.format(ext or "(no extension)"))
    return fmt


_TRUST_HOW = ("for a file you trust, use add_config(path, trusted=True) or list it in "
              "labbook.SETTINGS.CONFIG.TRUSTED_FILES (or LABBOOK_TRUSTED_CONFIG_FILES)")
#: jsonpickle tags that make plain containers only (no import, no call)
_HARMLESS_TAGS = {"py/tuple": tuple, "py/set": set}


def is_trusted(filename: str, trusted: bool | None = None) -> bool:
    """Whether ``filename`` may run code when loaded: ``trusted`` if given, else
    ``SETTINGS.CONFIG.TRUSTED_FILES`` (True, or a list of files and directories)."""
    if trusted is not None:
        return bool(trusted)
    from labbook.settings import current

    setting = current()["CONFIG"].get("TRUSTED_FILES")
    if setting is True:
        return True
    if not setting:
        return False
    if isinstance(setting, str | os.PathLike):
        setting = [setting]
    target = os.path.realpath(filename)
    for entry in setting:
        allowed = os.path.realpath(os.fsdecode(entry))
        if target == allowed or target.startswith(allowed.rstrip(os.sep) + os.sep):
            return True
    return False


def load_config_file(path: PathType, trusted: bool | None = None) -> dict:
    """Read a config dict from a ``.json``, ``.yaml``/``.yml`` or ``.pickle``/``.pkl`` file.

    Raises :class:`~labbook.errors.ConfigFileError` naming the file (and the line, for parse
    errors) when the file is missing, unreadable, malformed, of an unknown format or does not
    hold a mapping at the top level. Pickle files and JSON files with jsonpickle object tags
    run code when loaded: they raise :class:`~labbook.errors.UntrustedConfigFileError` unless
    ``trusted`` (or the ``CONFIG.TRUSTED_FILES`` setting, see :func:`is_trusted`) allows them.
    """
    filename = os.fsdecode(path)
    fmt = _format_of(filename, ConfigFileError)
    try:
        if fmt == "pickle":
            data = _load_pickle(filename, trusted)
        else:
            with open(filename, encoding="utf-8") as f:
                data = (_load_json(filename, f, trusted) if fmt == "json"
                        else _load_yaml(filename, f))
    except FileNotFoundError as exc:
        raise ConfigFileError(filename, "file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(filename, f"not UTF-8 text ({exc.reason} at byte "
                                        f"{exc.start})") from exc
    except OSError as exc:
        raise ConfigFileError(filename, exc.strerror or str(exc)) from exc
    if not isinstance(data, dict):
        raise ConfigFileError(filename,
                              f"top level must be a mapping, got {type(data).__name__}")
    return data


def _load_json(filename: str, f: Any, trusted: bool | None = None) -> Any:
    import json

    try:
        data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(filename, f"invalid JSON: {exc.msg} (column {exc.colno})",
                              line=exc.lineno) from exc
    tag = _code_tag(data, "")
    if tag is None:
        return _restore_plain(data)
    if not is_trusted(filename, trusted):
        where, name = tag
        raise UntrustedConfigFileError(
            filename, f"entry '{where}' holds the jsonpickle tag '{name}', which runs code when "
                      f"restored, so the file is refused; {_TRUST_HOW}")
    # the jsonpickle-tagged values written by save_config_file
    try:
        return serialize.restore(data)
    except Exception as exc:
        raise ConfigFileError(
            filename, f"cannot restore a jsonpickle-encoded value ({type(exc).__name__}: "
                      f"{exc})") from exc


def _code_tag(value: Any, path: str) -> tuple[str, str] | None:
    """``(entry, tag)`` of the first jsonpickle tag that imports or calls something (any
    ``py/`` key but py/tuple and py/set, or a ``json://`` key), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("py/") and key not in _HARMLESS_TAGS or key.startswith("json://"):
                return path or "(top level)", key
            found = _code_tag(item, f"{path}.{key}" if path and not key.startswith("py/")
                              else path if key.startswith("py/") else key)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _code_tag(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _restore_plain(value: Any) -> Any:
    """JSON data with the harmless tags (``py/tuple``, ``py/set``) made tuples and sets."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, item), = value.items()
            if key in _HARMLESS_TAGS and isinstance(item, list):
                return _HARMLESS_TAGS[key](_restore_plain(v) for v in item)
        return {k: _restore_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_plain(v) for v in value]
    return value


def _load_yaml(filename: str, f: Any) -> Any:
    import yaml

    try:
        data = yaml.safe_load(f)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if mark is None:
            raise ConfigFileError(filename, f"invalid YAML: {problem}") from exc
        raise ConfigFileError(filename, f"invalid YAML: {problem} (column {mark.column + 1})",
                              line=mark.line + 1) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(filename, f"invalid YAML: {exc}") from exc
    # An empty document is an empty config rather than an error.
    return {} if data is None else data


def _load_pickle(filename: str, trusted: bool | None) -> Any:
    import pickle

    with open(filename, "rb") as f:
        if not is_trusted(filename, trusted):
            raise UntrustedConfigFileError(
                filename, f"pickle files run code when loaded, so they are refused; "
                          f"{_TRUST_HOW}")
        try:
            return pickle.load(f)
        except Exception as exc:  # unpickling can fail with almost any exception type
            raise ConfigFileError(
                filename, f"cannot unpickle ({type(exc).__name__}: {exc})") from exc


def save_config_file(config: dict, path: PathType) -> None:
    """Write ``config`` to a ``.json``, ``.yaml``/``.yml`` or ``.pickle``/``.pkl`` file.

    JSON holds objects in jsonpickle's tagged form so that :func:`load_config_file` restores
    them; YAML refuses them (it is read with ``safe_load``). Raises
    :class:`~labbook.errors.ConfigFileSaveError` when the file cannot be written.
    """
    filename = os.fsdecode(path)
    fmt = _format_of(filename, ConfigFileSaveError)
    try:
        if fmt == "json":
            import json

            text = json.dumps(serialize.flatten(config, exact=True), indent=2,
                              sort_keys=False) + "\n"
            _write(filename, text)
        elif fmt == "yaml":
            import yaml

            _check_yaml_safe(filename, config, "")
            _write(filename, yaml.safe_dump(config, default_flow_style=False,
                                            sort_keys=False, allow_unicode=True))
        else:
            import pickle

            try:
                data = pickle.dumps(config)
            except Exception as exc:
                raise ConfigFileSaveError(
                    filename, f"cannot pickle the config ({type(exc).__name__}: {exc})") from exc
            write_atomic(filename, data)
    except OSError as exc:
        raise ConfigFileSaveError(filename, exc.strerror or str(exc)) from exc


def _write(filename: str, text: str) -> None:
    # Encode first, so a failure never leaves a truncated file behind.
    write_atomic(filename, text.encode("utf-8"))


def _check_yaml_safe(filename: str, value: Any, path: str) -> None:
    if type(value) in _PLAIN_LEAVES:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_yaml_safe(filename, item, f"{path}.{key}" if path else str(key))
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_yaml_safe(filename, item, f"{path}[{i}]")
        return
    raise ConfigFileSaveError(
        filename, f"entry '{path}' of type {type(value).__name__} cannot be written as YAML; "
                  "save to .json or .pickle instead")
