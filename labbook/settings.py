"""Process-wide settings: ``labbook.SETTINGS`` (a Munch, so ``SETTINGS.CAPTURE_MODE = "sys"``
works as in Sacred).

The Munch is built on first access (munch imports PyYAML: 15 ms per process). The code that
uses a setting never reads this module behind the caller's back: the experiment takes a
snapshot with :func:`current` when it creates a run and hands the values to the run, the
host-info gatherer and the random-number factory as arguments.
"""
from __future__ import annotations

import copy
import os
from typing import Any

from labbook.errors import LabbookWarning, SettingError

__all__ = ["SETTINGS", "SettingError", "current",  # noqa: F822 (SETTINGS: module __getattr__)
           "defaults"]

#: Sacred 0.8.7's settings that labbook does not act on: a Sacred script may still set them
#: (a warning says they change nothing); any other new name is a typo (SettingError)
SACRED_ONLY = {
    (): {"COMMAND_LINE", "DISCOVER_DEPENDENCIES", "DISCOVER_SOURCES", "DEFAULT_BEAT_INTERVAL"},
    ("CONFIG",): {"ENFORCE_KEYS_MONGO_COMPATIBLE", "ENFORCE_KEYS_JSONPICKLE_COMPATIBLE",
                  "ENFORCE_VALID_PYTHON_IDENTIFIER_KEYS", "ENFORCE_STRING_KEYS",
                  "ENFORCE_KEYS_NO_EQUALS", "IGNORED_COMMENTS"},
    ("HOST_INFO",): {"INCLUDE_CPU_INFO"},
    ("COMMAND_LINE",): {"STRICT_PARSING", "SHOW_DISABLED_OPTIONS"},
}
#: Sacred's groups of settings that labbook does not have: reading one gives an empty group
#: to set entries in (``SETTINGS.COMMAND_LINE.STRICT_PARSING = True`` warns, as above)
SACRED_ONLY_GROUPS = {(): {"COMMAND_LINE"}}


def defaults() -> dict[str, Any]:
    """The settings when the program has changed none, as plain dicts."""
    return {
        # fd | sys | no; None picks fd where supported
        "CAPTURE_MODE": os.environ.get("LABBOOK_CAPTURE_MODE") or None,
        "HOST_INFO": {
            # environment variables recorded in host_info["ENV"] (besides --capture-env)
            "CAPTURED_ENV": [],
            "INCLUDE_GPU_INFO": True,
        },
        # more name parts that mark a config key or option as a secret, masked before a run
        # is stored or journaled (see labbook.redact: password, token, api_key, ... always are)
        "SECRET_NAMES": [],
        # how store observers deliver (labbook.observers.durable): seconds a run waits for a
        # store before it stops waiting, seconds the end of a run waits for undelivered
        # events before journaling them into FAILURE_DIR, the first and longest pause
        # between retries
        "DELIVERY": {
            # None: $LABBOOK_FAILURE_DIR, else labbook_failed_runs in the working directory
            "FAILURE_DIR": None,
            "SYNC_WAIT": 30.0,
            "MAX_WAIT": 10.0,
            "BACKOFF": 0.1,
            "MAX_BACKOFF": 5.0,
        },
        "CONFIG": {
            # read-only containers for the running config
            "READ_ONLY_CONFIG": True,
            # _rnd: numpy's RandomState (True) or a Generator (False, Sacred 0.8's default)
            "NUMPY_RANDOM_LEGACY_API": False,
            # config files allowed to run code when loaded (pickle, jsonpickle object tags):
            # True for all, or a list of files and directories; LABBOOK_TRUSTED_CONFIG_FILES
            # is "1" or paths separated by os.pathsep
            "TRUSTED_FILES": _trusted_from_env(),
        },
    }


def _trusted_from_env() -> bool | list[str]:
    text = os.environ.get("LABBOOK_TRUSTED_CONFIG_FILES", "").strip()
    if text.lower() in ("1", "true", "yes"):
        return True
    return [p for p in text.split(os.pathsep) if p and text.lower() not in ("0", "false", "no")]


_SETTINGS: Any = None


def current() -> dict[str, Any]:
    """A plain copy of the settings as they are now (the defaults while ``SETTINGS`` was never
    touched, without building it)."""
    if _SETTINGS is None:
        return defaults()
    return copy.deepcopy(_plain(_SETTINGS))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def __getattr__(name: str) -> Any:
    if name != "SETTINGS":
        raise AttributeError(f"module 'labbook.settings' has no attribute {name!r}")
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = _settings_class()(defaults(), ())
    return _SETTINGS


def _settings_class() -> type:
    """A Munch that takes new values for its settings only (as Sacred's ``SETTINGS`` does)."""
    import warnings

    from munch import Munch

    class Settings(Munch):
        def __init__(self, values: dict[str, Any], path: tuple[str, ...]) -> None:
            super().__init__()
            object.__setattr__(self, "_path", path)
            for key, value in values.items():
                dict.__setitem__(self, key, Settings(value, path + (key,))
                                 if isinstance(value, dict) else value)

        def __setitem__(self, key: Any, value: Any) -> None:
            path = object.__getattribute__(self, "_path")
            name = ".".join(path + (str(key),))
            if key not in self:
                if key not in SACRED_ONLY.get(path, ()):
                    raise SettingError(f"Unknown setting: {name}. Possible keys are: "
                                       f"{sorted(self)}")
                warnings.warn(f"SETTINGS.{name} is a setting of Sacred that labbook does not "
                              "use; setting it changes nothing", LabbookWarning, stacklevel=3)
            elif isinstance(self[key], dict) and not isinstance(value, dict):
                raise SettingError(f"SETTINGS.{name} is a group of settings; set its entries "
                                   f"(SETTINGS.{name}.<entry>), not {value!r}")
            elif isinstance(self[key], dict):
                for item, entry in value.items():  # a dict for a group sets its entries
                    self[key][item] = entry
                return
            super().__setitem__(key, value)

        def __setattr__(self, key: str, value: Any) -> None:
            self[key] = value

        def __getattr__(self, key: str) -> Any:
            try:
                return super().__getattr__(key)
            except AttributeError:
                path = object.__getattribute__(self, "_path")
                if key not in SACRED_ONLY_GROUPS.get(path, ()):
                    raise
                group = Settings({}, path + (key,))
                dict.__setitem__(self, key, group)
                return group

        def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            for key, value in dict(*args, **kwargs).items():
                self[key] = value

        def __copy__(self) -> Any:
            return Settings(_plain(self), object.__getattribute__(self, "_path"))

        def __deepcopy__(self, memo: dict) -> Any:
            return Settings(copy.deepcopy(_plain(self), memo),
                            object.__getattribute__(self, "_path"))

        def setdefault(self, key: Any, default: Any = None) -> Any:
            if key not in self:
                self[key] = default
            return self[key]

    return Settings
