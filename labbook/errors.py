"""Every error labbook raises on purpose, in one hierarchy under :class:`LabbookError`.

A message names what was wrong (key path, file and line, option, run id), the value received
and the fix; the data is kept as attributes too. Where an error resembles a builtin it
inherits that builtin as well, so ``except KeyError`` and friends keep working. The command
lines render these once, at the edge, as one line and an exit status (``exit_code``); ``-d``
shows the traceback.

::

    LabbookError
    ├── DefinitionError                 (ValueError) an experiment or ingredient misdefined
    │   ├── CircularDependencyError     ingredients use each other in a cycle
    │   ├── InteractiveSessionError     (RuntimeError) needs a name / a file to run from
    │   ├── DuplicateNameError          (KeyError) a named config defined twice
    │   └── SignatureError              (KeyError) a hook lacks a required argument
    ├── ConfigError                     .key: the dotted path
    │   ├── ConfigAddedError            an update sets a key nothing uses (typo check)
    │   ├── ConfigFileError             a config file cannot be read (.filename, .line)
    │   │   ├── ConfigFileSaveError     ... or written
    │   │   └── UntrustedConfigFileError  ... would run code (pickle, jsonpickle tags)
    │   ├── UnserializableConfigError   a value no store can hold
    │   ├── InvalidConfigKeyError       a key no store can hold
    │   ├── NamedConfigNotFoundError    .available
    │   ├── ReadOnlyConfigError         (TypeError) running code changed the config
    │   └── MissingConfigError          (TypeError) a captured function lacks a value
    ├── CommandNotFoundError            .available
    ├── UsageError                      a command line that cannot be understood
    ├── OptionValueError                (ValueError) a run option with an impossible value
    ├── CommandError                    exit status 1: a labbook command cannot do it
    ├── NoRunError                      (RuntimeError) run-time API used outside a run
    ├── RunStateError                   (RuntimeError) a Run started twice
    ├── RunValueError                   (TypeError) a param or tag that cannot be stored
    ├── MetricValueError                (TypeError) a metric that is no real number
    ├── MetricNameError                 (ValueError) a metric name no store can hold
    ├── ArtifactNameError               (ValueError) a name escaping the run's storage
    ├── MissingFileError                (FileNotFoundError) a file the user named is absent
    │   └── SourceNotFoundError         add_source_file
    ├── DirtyRepositoryError            --enforce_clean with uncommitted changes
    ├── ObserverError                   an observer misconfigured
    │   └── RunExistsError              (FileExistsError) the run id is taken
    ├── StoreError                      exit status 1
    │   ├── UnknownStoreError           (ValueError) no back-end for the URL's scheme
    │   ├── InvalidRunIdError           (ValueError) an id the store cannot hold
    │   ├── RunNotFoundError            (KeyError) no run with that id
    │   ├── StoredFileNotFoundError     (FileNotFoundError) no such artifact or stored file
    │   ├── ArtifactNotFoundError       (KeyError) no such artifact version or alias
    │   ├── StoreUnsupportedError       (NotImplementedError) a back-end lacks a feature
    │   ├── StoreConnectionError        (ConnectionError) a server cannot be reached
    │   │   ├── MongoConnectionError    .url (password hidden)
    │   │   └── SqlConnectionError      (SqlStoreError too)
    │   └── SqlStoreError
    │       └── SqlSchemaError          a database labbook cannot use or migrate
    ├── QueryError                      (ValueError) a filter or order that makes no sense
    ├── ArgumentError                   (ValueError) an argument outside what is accepted
    │   └── ArgumentTypeError           (TypeError) ... or of the wrong kind
    ├── ExperimentNotFoundError         (ValueError) no runs of that experiment
    └── SyncError                       exit status 1: labbook sync cannot copy

    LabbookWarning                      (UserWarning) an answer that may not be what was meant
"""
from __future__ import annotations

import difflib
from typing import Iterable, Mapping, Sequence

__all__ = ["suggest", "did_you_mean", "LabbookError", "DefinitionError", "CircularDependencyError",
           "InteractiveSessionError", "DuplicateNameError", "SignatureError", "ConfigError",
           "ConfigAddedError", "ConfigFileError", "ConfigFileSaveError",
           "UnserializableConfigError", "InvalidConfigKeyError", "NamedConfigNotFoundError",
           "ReadOnlyConfigError", "MissingConfigError", "CommandNotFoundError", "UsageError",
           "OptionValueError", "CommandError", "NoRunError", "RunStateError", "RunValueError",
           "MetricValueError", "ArtifactNameError", "MissingFileError", "SourceNotFoundError",
           "DirtyRepositoryError", "ObserverError", "RunExistsError", "StoreError",
           "UnknownStoreError", "InvalidRunIdError", "RunNotFoundError", "StoredFileNotFoundError",
           "StoreUnsupportedError", "StoreConnectionError", "MongoConnectionError", "SqlStoreError",
           "SqlConnectionError", "SqlSchemaError", "QueryError", "ArgumentError",
           "ArgumentTypeError", "ExperimentNotFoundError", "SyncError", "CorruptRunWarning",
           "CorruptRunError", "MissingExtraError"]


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

    #: exit status used by the command lines for this kind of error
    exit_code = 2


class _PlainMessage:
    """For errors that also inherit a builtin with its own ``__str__``: KeyError would quote
    the message, OSError would render ``[Errno None] None: ...`` from its own fields."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- definition -------------------------------------------------------------------------------

class DefinitionError(LabbookError, ValueError):
    """An experiment, ingredient, decorator or option is defined in a way that cannot work."""


class CircularDependencyError(DefinitionError):
    """Ingredients use each other in a cycle."""

    def __init__(self, cycle: Sequence[str]):
        self.cycle = list(cycle)
        super().__init__(
            "Circular dependency detected: " + " -> ".join(self.cycle)
            + "\nAn ingredient cannot (indirectly) use itself."
        )


class InteractiveSessionError(DefinitionError, RuntimeError):
    """Something that needs a script file was used in an interactive session."""


class DuplicateNameError(_PlainMessage, DefinitionError, KeyError):
    """A name (a named config) is defined twice."""


class SignatureError(_PlainMessage, DefinitionError, KeyError):
    """A decorated function lacks an argument labbook passes to it."""


# --- configuration ----------------------------------------------------------------------------

class ConfigError(LabbookError):
    """Something is wrong with the configuration; ``key`` is the dotted path when known."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


class ConfigAddedError(ConfigError):
    """Updates set keys that no config scope defines and no captured function uses.

    The first lines are Sacred's (the message and the conflicting values); labbook's hints
    follow."""

    def __init__(self, keys: Sequence[str], known: Iterable[str] = (),
                 config: Mapping | None = None):
        self.keys = list(keys)
        known = sorted(set(known))
        plural = len(self.keys) > 1
        lines = ["Added new config entry that is not used anywhere",
                 "Conflicting configuration values:"]
        for key in self.keys:
            lines.append(f"  {key}={_value_at(config, key)}" if config is not None
                         else f"  {key}")
        hints = []
        for key in self.keys:
            hint = did_you_mean(key, known).strip()
            if hint:
                hints.append(hint if not plural else f"'{key}': {hint[:1].lower()}{hint[1:]}")
        if hints:
            lines.append("; ".join(hints))
        lines.append(f"Check the spelling, or pass force=True (-f/--force on the command line) "
                     f"to add {'them' if plural else 'it'} anyway.")
        super().__init__("\n".join(lines), key=self.keys[0] if self.keys else None)


def _value_at(config: Mapping | None, path: str) -> object:
    value: object = config
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class ConfigFileError(ConfigError):
    """A config file cannot be read or parsed."""

    def __init__(self, filename: str, problem: str, line: int | None = None):
        self.filename = str(filename)
        self.line = line
        where = self.filename if line is None else f"{self.filename}, line {line}"
        super().__init__(f"Cannot load config file {where}: {problem}")


class ConfigFileSaveError(ConfigFileError):
    """A config file cannot be written (``save_config``)."""

    def __init__(self, filename: str, problem: str):
        self.filename = str(filename)
        self.line = None
        ConfigError.__init__(self, f"Cannot save config file {self.filename}: {problem}")


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
        hint = did_you_mean(name, self.available).strip()
        # Sacred's line first (it shows the names as a tuple), then labbook's
        super().__init__(
            f'Named config not found: "{name}". Available config values are: '
            f"{tuple(self.available)!r}\n" + (f"{hint} " if hint else "")
            + f"Available named configs: {known}.",
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
        self.available = list(available)
        # Sacred's line (the commands in the order they were defined), then labbook's hint
        hint = did_you_mean(name, self.available).strip()
        super().__init__(
            f'Command "{name}" not found. Available commands are: '
            f"{', '.join(self.available) or '(none)'}" + (f"\n{hint}" if hint else "")
        )


class UsageError(LabbookError):
    """A command line could not be understood (exit status 2).

    The message says what was wrong and how to write it instead; the command line prints it
    without a traceback (unless ``-d``).
    """

    exit_code = 2


class OptionValueError(LabbookError, ValueError):
    """A run option (``ex.run(options=...)``) has a value it cannot take."""


class CommandError(LabbookError):
    """A ``labbook`` command cannot do what was asked (exit status 1)."""

    exit_code = 1


class NoRunError(LabbookError, RuntimeError):
    """A run-time method (log_scalar, add_artifact, info, ...) was used outside a run."""

    def __init__(self, what: str):
        super().__init__(
            f"{what} can only be used while a run is active (inside the main function, a "
            "command or a captured function called from them). Start a run with ex.run() or "
            "from the command line."
        )


class RunStateError(LabbookError, RuntimeError):
    """A run was asked to do something its state does not allow (start twice)."""


class RunValueError(LabbookError, TypeError):
    """A parameter or tag of a run cannot be stored."""


class MetricValueError(LabbookError, TypeError):
    """A metric value is not a real number."""


class ArtifactNameError(LabbookError, ValueError):
    """An artifact name that would escape the run's storage."""


class MissingFileError(_PlainMessage, LabbookError, FileNotFoundError):
    """A file the user named (an artifact, a template) does not exist."""


class SourceNotFoundError(MissingFileError):
    """A source file given to ``add_source_file`` does not exist."""

    def __init__(self, filename: str, base_dir: str | None = None):
        self.filename = str(filename)
        hint = (f" Relative paths are taken relative to the experiment's base_dir '{base_dir}'."
                if base_dir else "")
        LabbookError.__init__(
            self, f"Source file '{self.filename}' not found.{hint} Fix the path passed to "
            "add_source_file, or remove the call.")


class DirtyRepositoryError(LabbookError):
    """``enforce_clean`` was requested but the git repository has uncommitted changes."""


class ObserverError(LabbookError):
    """An observer was misconfigured (failures during a run are logged, never raised)."""


class RunExistsError(_PlainMessage, ObserverError, FileExistsError):
    """A run was to be created under an id that a stored run already has."""


# --- stores -----------------------------------------------------------------------------------

class StoreError(LabbookError):
    """A store cannot do what was asked."""

    exit_code = 1


class UnknownStoreError(StoreError, ValueError):
    """No back-end serves the URL's scheme."""


class InvalidRunIdError(StoreError, ValueError):
    """A run id the store cannot hold (it would name something else in it)."""


class RunNotFoundError(_PlainMessage, StoreError, KeyError):
    """No run with the requested id."""


class StoredFileNotFoundError(_PlainMessage, StoreError, FileNotFoundError):
    """A run has no artifact of that name, or the store lacks a file a run refers to."""


class StoreUnsupportedError(StoreError, NotImplementedError):
    """The back-end does not offer this operation."""


class StoreConnectionError(_PlainMessage, StoreError, ConnectionError):
    """A database server cannot be reached; the message names the URL (password hidden)."""

    def __init__(self, message: str, url: str = ""):
        self.url = url
        LabbookError.__init__(self, message)


class MongoConnectionError(StoreConnectionError):
    """MongoDB cannot be reached; the message names the URL (password hidden) and what to check."""


class SqlStoreError(StoreError):
    """An SQL database refused or could not store something."""


class SqlConnectionError(SqlStoreError, StoreConnectionError):
    """The SQL database cannot be reached."""


class SqlSchemaError(SqlStoreError):
    """The database holds a schema labbook cannot use or migrate."""


# --- reading back -----------------------------------------------------------------------------

class QueryError(LabbookError, ValueError):
    """A filter or order that cannot be understood; the message says where and how to fix it."""


class ArgumentError(LabbookError, ValueError):
    """A function got an argument outside what it accepts; the message names the argument."""


class ArgumentTypeError(ArgumentError, TypeError):
    """A function got an argument of a kind it does not take."""


class ExperimentNotFoundError(LabbookError, ValueError):
    """No runs of the named experiment in the store."""


class SyncError(LabbookError):
    """``labbook sync`` cannot copy between the two stores."""

    exit_code = 1


class LabbookWarning(UserWarning):
    """Something is probably not what was meant or not whole (a query on a field no run has, a
    damaged stored run); the answer is still given. The ``labbook`` command prints each as one
    ``Warning:`` line."""


# --- stores checked before use (issue 12: nothing lost, nothing leaked) -------------------------
# StoreError
# ├── StoreUnusableError     a store that cannot record at all, found before the run starts
# ├── StoreURLError          (ValueError) a misspelled store URL; the message shows the spelling
# └── NoStoreError           a read command named a store that does not exist (nothing created)

class StoreUnusableError(StoreError):
    """A store cannot be written to at all (missing or unwritable directory, server or database
    that cannot be reached, invalid database name): found before the run starts, so none of
    the user's code runs. The message names the store (password hidden) and the cause."""

    def __init__(self, message: str, url: str = ""):
        self.url = url
        super().__init__(message)


class StoreURLError(StoreError, ValueError):
    """A store URL that is misspelled or cannot hold runs (``sqlite:/x.db``, ``file://``,
    ``sqlite://``); the message shows the right spelling."""


class NoStoreError(StoreError):
    """A command that reads runs named a store that does not exist; nothing was created."""

    def __init__(self, message: str, url: str = ""):
        self.url = url
        super().__init__(message)


__all__ += ["StoreUnusableError", "StoreURLError", "NoStoreError"]


# -- the read side: damaged stored runs ---------------------------------------------------------
class CorruptRunWarning(LabbookWarning):
    """A stored run's file could not be read (a truncated ``run.json``, a damaged
    ``metrics.jsonl`` line, ...): the run is still listed, what was readable is kept, and the
    message names the run, the file and the problem. The ``labbook`` command prints it as
    one ``Warning:`` line."""


class CorruptRunError(StoreError):
    """A command needs a stored run that cannot be read (its ``run.json`` is damaged)."""


class MissingExtraError(LabbookError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the
    ``pip install 'labbook[...]'`` that adds it."""

    exit_code = 1


# --- issue 12: values a store cannot hold, untrusted config files, unknown fields ---------------

class UntrustedConfigFileError(ConfigFileError):
    """A config file that would run code when loaded (pickle, jsonpickle object tags) and is
    not trusted; the message names the file and how to trust it."""


class MetricNameError(LabbookError, ValueError):
    """A metric name that a store cannot hold (empty, too long, not text)."""


__all__ += ["UntrustedConfigFileError", "MetricNameError", "LabbookWarning"]


# --- issue 13: Sacred's config behaviour ------------------------------------------------------

class ConfigScopeArgumentError(_PlainMessage, ConfigError, KeyError):
    """A config scope takes a parameter that nothing available at its turn provides. The first
    line is Sacred's KeyError text; a KeyError, as in Sacred."""

    def __init__(self, scope: str, name: str, available: Iterable[str]):
        self.scope = scope
        self.available = sorted(set(available))
        shown = "{" + ", ".join(repr(a) for a in self.available) + "}" if self.available \
            else "set()"
        super().__init__(
            f"'{name}' not in preset for ConfigScope. Available options are: {shown}\n"
            f"Config scope '{scope}' reads '{name}', which neither the config updates, the named "
            "configs given before it, the earlier config scopes of its ingredient nor the configs "
            f"of the ingredients it uses provide; define '{name}' there or remove the parameter.",
            key=name)


__all__ += ["ConfigScopeArgumentError"]


# --- remote file stores (s3://, gs://, memory://) ----------------------------------------------

class RemoteStoreError(StoreError):
    """A remote file store (``s3://``, ``gs://``) failed: its server cannot be reached, access
    is refused, the bucket is missing. Deliberately no OSError, so that an outage is never
    taken for one unreadable file; the message names the store (secrets hidden) and the
    cause in one line."""

    def __init__(self, message: str, url: str = "", reason: str = ""):
        self.url = url
        self.reason = reason or message
        super().__init__(message)


__all__ += ["RemoteStoreError"]


class NoActiveRunError(RunStateError):
    """A helper such as ``labbook.log`` was called with no run active."""


__all__ += ["NoActiveRunError"]


class ArtifactNotFoundError(_PlainMessage, StoreError, KeyError):
    """No versioned artifact of that name, version or alias; the message lists what exists."""


__all__ += ["ArtifactNotFoundError"]


class RunIdRefusedError(ObserverError, InvalidRunIdError):
    """A store cannot record a run under the id chosen for it (``--id``, ``run_id=``): the SQL
    stores number runs with integers, the file store keeps ``_``/``.`` names for itself. A
    refusal, not an outage: the run does not start, nothing is journaled."""


class SqlRunIdError(SqlStoreError, RunIdRefusedError):
    """The SQL stores number runs with integers."""


__all__ += ["RunIdRefusedError", "SqlRunIdError"]


class SweepError(UsageError, ValueError):
    """A sweep cannot start as asked: a bad parameter spec, an unknown method or goal, a grid
    over a continuous parameter, Optuna missing (``pip install labbook[sweep]``)."""


__all__ += ["SweepError"]


class SettingError(LabbookError):
    """A write to ``labbook.SETTINGS`` that names no setting (a typo: ``SETTINGS.CAPTUR_MODE``)
    or puts a plain value where a group of settings is (``SETTINGS.CONFIG = 1``); Sacred's
    ``sacred.settings.SettingError``."""


__all__ += ["SettingError"]


class LauncherError(UsageError, ValueError):
    """A launcher cannot be used as asked: an unknown or malformed ``--launcher`` spec, its
    engine not installed (the message gives the ``pip install`` fix), pruning asked of a
    sweep whose study the placed processes cannot reach."""


__all__ += ["LauncherError"]


class SubmitError(UsageError, ValueError):
    """``labbook.submit`` cannot do what was asked, or a deployment cannot answer: not a
    script's path, params that are no dict, a config entry or metric the run does not have, a
    run left queued after the process placed for it ended."""


class JobTimeoutError(LabbookError, TimeoutError):
    """A submitted run did not end within the ``timeout`` given to ``wait`` (it goes on)."""


__all__ += ["SubmitError", "JobTimeoutError"]
