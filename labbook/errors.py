"""Every error labbook raises on purpose, in one hierarchy under :class:`LabbookError`.

A message names what was wrong (key path, file and line, option), the value received and the
fix. The command line renders these as one line and an exit status; ``-d`` shows the traceback.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Sequence


def suggest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of ``word`` among ``candidates`` (for "did you mean" hints)."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``" Did you mean 'x'?"`` suffix, or an empty string when nothing is close."""
    close = suggest(word, candidates)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean '{close[0]}'?"
    return " Did you mean one of " + ", ".join(f"'{c}'" for c in close) + "?"


class LabbookError(Exception):
    """Base class of all errors labbook raises for a user's mistake."""

    #: exit status used by the command line for this kind of error
    exit_code = 2


# --- definition -------------------------------------------------------------------------------

class CircularDependencyError(LabbookError):
    """Ingredients use each other in a cycle."""

    def __init__(self, cycle: Sequence[str]):
        self.cycle = list(cycle)
        super().__init__(
            "Circular dependency between ingredients: " + " -> ".join(self.cycle)
            + ". An ingredient cannot (indirectly) use itself."
        )


# --- configuration ----------------------------------------------------------------------------

class ConfigError(LabbookError):
    """Something is wrong with the configuration; ``key`` is the dotted path when known."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


class ConfigAddedError(ConfigError):
    """Updates set keys that no config scope defines and no captured function uses."""

    def __init__(self, keys: Sequence[str], known: Iterable[str] = ()):
        self.keys = list(keys)
        known = sorted(set(known))
        plural = len(self.keys) > 1
        names = ", ".join(f"'{key}'" for key in self.keys)
        hints = []
        for key in self.keys:
            hint = did_you_mean(key, known).strip()
            if hint:
                hints.append(f"{hint[:1].lower()}{hint[1:]}" if not plural else
                             f"'{key}': {hint[:1].lower()}{hint[1:]}")
        hint_text = ""
        if hints:
            hint_text = " " + ("; ".join(hints) if plural else hints[0][:1].upper() + hints[0][1:])
        super().__init__(
            f"Added new config entr{'ies' if plural else 'y'} {names} that "
            f"{'are' if plural else 'is'} not used anywhere.{hint_text} Check the spelling, "
            f"or pass force=True (-f/--force on the command line) to add "
            f"{'them' if plural else 'it'} anyway.",
            key=self.keys[0] if self.keys else None,
        )


class ConfigFileError(ConfigError):
    """A config file cannot be read or parsed."""

    def __init__(self, filename: str, problem: str, line: int | None = None):
        self.filename = str(filename)
        self.line = line
        where = self.filename if line is None else f"{self.filename}, line {line}"
        super().__init__(f"Cannot load config file {where}: {problem}")


class UnserializableConfigError(ConfigError):
    """A config value cannot be stored (JSON or jsonpickle)."""

    def __init__(self, key: str, value: object, reason: str = ""):
        typename = type(value).__module__ + "." + type(value).__qualname__
        msg = (f"Config entry '{key}' has a value of type {typename} that cannot be stored "
               f"as JSON{': ' + reason if reason else ''}. Use plain numbers, strings, lists "
               "and dicts (or objects jsonpickle can encode), or name it with a leading "
               "underscore to keep it out of the config.")
        super().__init__(msg, key=key)


class InvalidConfigKeyError(ConfigError):
    """A config key that cannot be stored (not a string, contains '.', starts with '$')."""


class NamedConfigNotFoundError(ConfigError):
    """An unknown named config was requested."""

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        self.available = sorted(available)
        known = ", ".join(self.available) if self.available else "(none defined)"
        super().__init__(
            f"Named config '{name}' not found.{did_you_mean(name, self.available)} "
            f"Available named configs: {known}.",
            key=name,
        )


class ReadOnlyConfigError(ConfigError, TypeError):
    """Running code tried to change the resolved configuration."""

    def __init__(self, key: str, action: str = "change"):
        super().__init__(
            f"The configuration is read-only during a run: cannot {action} '{key}'. "
            "Pass a different value as a config update (ex.run(config_updates=...) or "
            "'with key=value'), or copy it first (copy.deepcopy / dict(...)).",
            key=key,
        )


class MissingConfigError(ConfigError, TypeError):
    """A captured function was called without an argument the config does not supply."""

    def __init__(self, function: str, missing: Sequence[str], searched: Sequence[str]):
        self.function = function
        self.missing = list(missing)
        self.searched = list(searched)
        names = ", ".join(f"'{m}'" for m in self.missing)
        where = ", ".join(f"'{s}'" for s in self.searched)
        super().__init__(
            f"{function}() is missing value(s) for {names}: not passed as an argument and "
            f"not found in the configuration (searched {where}). Add the entry to a config "
            "scope, or pass it explicitly.",
            key=self.searched[0] if self.searched else None,
        )


# --- running ----------------------------------------------------------------------------------

class CommandNotFoundError(LabbookError):
    """The requested command does not exist."""

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        self.available = sorted(available)
        super().__init__(
            f"Command '{name}' not found.{did_you_mean(name, self.available)} "
            f"Available commands: {', '.join(self.available) or '(none)'}."
        )


class NoRunError(LabbookError, RuntimeError):
    """A run-time method (log_scalar, add_artifact, info, ...) was used outside a run."""

    def __init__(self, what: str):
        super().__init__(
            f"{what} can only be used while a run is active (inside the main function, a "
            "command or a captured function called from them). Start a run with ex.run() or "
            "from the command line."
        )


class DirtyRepositoryError(LabbookError):
    """``enforce_clean`` was requested but the git repository has uncommitted changes."""


class ObserverError(LabbookError):
    """An observer was misconfigured (failures during a run are logged, never raised)."""


class RunExistsError(ObserverError, FileExistsError):
    """A run was to be created under an id that a stored run already has."""


class MetricValueError(LabbookError, TypeError):
    """A metric value is not a real number."""


class ConfigFileSaveError(ConfigFileError):
    """A config file cannot be written (``save_config``)."""

    def __init__(self, filename: str, problem: str):
        self.filename = str(filename)
        self.line = None
        ConfigError.__init__(self, f"Cannot save config file {self.filename}: {problem}")


class SourceNotFoundError(LabbookError, FileNotFoundError):
    """A source file given to ``add_source_file`` does not exist."""

    def __init__(self, filename: str, base_dir: str | None = None):
        self.filename = str(filename)
        hint = (f" Relative paths are taken relative to the experiment's base_dir '{base_dir}'."
                if base_dir else "")
        LabbookError.__init__(
            self, f"Source file '{self.filename}' not found.{hint} Fix the path passed to "
            "add_source_file, or remove the call.")

    def __str__(self) -> str:
        # OSError would render "[Errno None] None: ..." from its own fields
        return str(self.args[0])


# --- command line -----------------------------------------------------------------------------

class UsageError(LabbookError):
    """An experiment's command line could not be understood (exit status 2).

    The message says what was wrong and how to write it instead; the command line prints it
    without a traceback (unless ``-d``).
    """

    exit_code = 2


# --- stores -----------------------------------------------------------------------------------

class MongoConnectionError(LabbookError, ConnectionError):
    """MongoDB cannot be reached; the message names the URL (password hidden) and what to check."""

    def __init__(self, message: str, url: str = ""):
        self.url = url
        LabbookError.__init__(self, message)

    def __str__(self) -> str:
        # OSError would render its own fields instead of the message
        return str(self.args[0])
