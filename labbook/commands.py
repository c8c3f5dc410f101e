"""Built-in commands of every experiment: print_config, print_dependencies, save_config,
print_named_configs."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from labbook.captured import captured_function
from labbook.config.text import _isatty, _paint, format_config

if TYPE_CHECKING:
    from labbook.experiment import Experiment

__all__ = ["ConfigEntry", "PathEntry", "help_for_command", "print_config",
           "format_dependencies", "print_dependencies", "save_config",
           "format_named_configs", "make_print_named_configs", "print_named_configs",
           "builtin_commands"]


class ConfigEntry(NamedTuple):
    """One config value as ``print_config`` shows it (Sacred's field names)."""

    key: str
    value: Any
    added: bool
    modified: bool
    typechanged: Any
    doc: str | None


class PathEntry(NamedTuple):
    """One dict of the config (a path above values) as ``print_config`` shows it."""

    key: str
    added: bool
    modified: bool
    typechanged: Any
    doc: str | None


def help_for_command(command: Callable) -> str:
    """The help text of a command: its name and signature, then its docstring."""
    import inspect

    func = getattr(command, "__wrapped__", command)
    name = getattr(func, "__name__", repr(func))
    try:
        signature = str(inspect.signature(func))
    except (TypeError, ValueError):
        signature = "(...)"
    doc = inspect.getdoc(func) or ""
    body = "\n".join(f"    {line}" if line else "" for line in doc.splitlines())
    return f"{name}{signature}" + (f"\n{body}" if body else "")


def print_config(_run):
    """Print the configuration (entries with their doc comments; changes marked)."""
    print(format_config(_run.config, _run.config_modifications))


def format_dependencies(info: dict) -> str:
    """The ``print_dependencies`` text: packages, sources with md5, git repositories."""
    lines = ["Dependencies:"]
    deps = [dep.partition("==") for dep in info.get("dependencies", [])]
    width = max((len(name) for name, _, _ in deps), default=0)
    lines += [f"  {name:<{width}}  == {version or '<unknown>'}" for name, _, version in deps]
    if not deps:
        lines.append("  (none)")
    lines += ["", "Sources:"]
    sources = list(info.get("sources", []))
    width = max((len(name) for name, _ in sources), default=0)
    lines += [f"  {name:<{width}}  {digest}" for name, digest in sources]
    if not sources:
        lines.append("  (none)")
    repos = info.get("repositories", [])
    if repos:
        lines += ["", "Version Control:"]
        for repo in repos:
            state = "dirty" if repo.get("dirty") else "clean"
            lines.append(f"  {repo.get('url') or '(no remote)'}  {repo.get('commit')}  {state}")
    return "\n".join(lines)


def print_dependencies(_run):
    """Print the sources (with md5), package dependencies and git repositories."""
    print(format_dependencies(_run.experiment_info))


def save_config(_config, _log, config_filename="config.json"):
    """Write the configuration to a file (config_filename=..., json/yaml/pickle)."""
    from labbook.config.containers import thaw
    from labbook.config.files import save_config_file

    config = thaw(_config)
    # the command's own argument is not part of the experiment's configuration
    config.pop("config_filename", None)
    save_config_file(config, config_filename)
    _log.info('Saving config to "%s"', config_filename)


def format_named_configs(ex: Experiment, colour: bool | None = None) -> str:
    """The ``print_named_configs`` text, as Sacred prints it: every named config (dotted for
    ingredients) with its docstring, three spaces after the name (a docstring of several lines
    in triple quotes below it); the docstrings are dimmed on a terminal (or with ``colour``)."""
    if colour is None:
        colour = _isatty(sys.stdout)
    lines = [f"Named Configurations ({_paint('doc', 'doc', colour)}):"]
    for name, conf in ex.gather_named_configs():
        doc = _scope_doc(conf)
        if not doc:
            lines.append(f"  {name}")
        elif "\n" not in doc:
            lines.append(f"  {name}" + _paint(f"   # {doc}", "doc", colour))
        else:
            quoted = '"""' + doc.replace("\n", "\n  ") + '"""'
            lines.append(f"  {name}" + _paint(f"\n    {quoted}", "doc", colour))
    if len(lines) == 1:
        lines.append("  No named configs")
    return "\n".join(lines)


def make_print_named_configs(ex: Experiment) -> Callable:
    def print_named_configs():
        """Print the available named configs."""
        print(format_named_configs(ex))
    return print_named_configs


#: Sacred's name: ``print_named_configs(ex)`` makes the command for experiment ``ex``
print_named_configs = make_print_named_configs


def _scope_doc(conf: Any) -> str:
    func = getattr(conf, "func", None)
    return (getattr(func, "__doc__", None) or "").strip()


def builtin_commands(ex: Experiment) -> dict[str, Callable]:
    """The built-in commands, captured and unobserved (they record no run)."""
    commands = {}
    for func in (print_config, print_dependencies, save_config, make_print_named_configs(ex)):
        captured = captured_function(func, "", None)
        captured.unobserved = True
        commands[func.__name__] = captured
    return commands
