"""Built-in commands of every experiment: print_config, print_dependencies, save_config,
print_named_configs."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

from labbook.config.signature import captured_function

if TYPE_CHECKING:
    from labbook.config.summary import ConfigSummary
    from labbook.experiment import Experiment

SEED_DOC = "the random seed for this experiment"
_COLOURS = {"added": "\033[32m", "modified": "\033[34m", "typechanged": "\033[31m",
            "doc": "\033[2m"}
_RESET = "\033[0m"


def _paint(text: str, kind: str | None, colour: bool) -> str:
    if not colour or kind is None:
        return text
    return f"{_COLOURS[kind]}{text}{_RESET}"


def format_config(config: dict, summary: ConfigSummary | None = None,
                  colour: bool | None = None) -> str:
    """The config as ``key = value`` lines with doc comments; changed entries are marked
    (and coloured when ``colour``, by default when stdout is a terminal)."""
    if colour is None:
        colour = sys.stdout.isatty()
    docs = dict(getattr(summary, "docs", {}) or {})
    docs.setdefault("seed", SEED_DOC)
    legend = ", ".join(_paint(k, k, colour) for k in ("modified", "added", "typechanged"))
    lines = [f"Configuration ({legend}, {_paint('doc', 'doc', colour)}):"]
    entries: list[tuple[str, str, str | None]] = []
    _collect(config, "", 1, summary, entries)
    width = max((len(text) for text, _, _ in entries), default=0)
    for text, path, kind in entries:
        marker = {"added": " (added)", "modified": " (modified)",
                  "typechanged": " (type changed)"}.get(kind or "", "")
        if colour:
            marker = ""
        line = _paint(text, kind, colour) + marker
        doc = docs.get(path)
        if doc:
            line += " " * (width - len(text) + 2 if not marker else 2) + \
                _paint(f"# {doc}", "doc", colour)
        lines.append(line.rstrip())
    return "\n".join(lines)


def _collect(value: dict, prefix: str, depth: int, summary, out: list) -> None:
    indent = "  " * depth
    for key in sorted(value):
        item = value[key]
        path = f"{prefix}.{key}" if prefix else str(key)
        kind = summary.status_of(path) if summary is not None else None
        if isinstance(item, dict) and item:
            out.append((f"{indent}{key}:", path, kind))
            _collect(item, path, depth + 1, summary, out)
        else:
            out.append((f"{indent}{key} = {_plain_repr(item)}", path, kind))


def _plain_repr(value: Any) -> str:
    if isinstance(value, dict):
        return repr({k: _plain(v) for k, v in value.items()})
    return repr(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def print_config(_run):
    """Print the configuration (entries with their doc comments; changes marked)."""
    print(format_config(_run.config, _run.config_modifications))


def print_dependencies(_run):
    """Print the sources (with md5), package dependencies and git repositories."""
    info = _run.experiment_info
    lines = ["Dependencies:"]
    lines += [f"  {dep}" for dep in info.get("dependencies", [])]
    lines.append("Sources:")
    lines += [f"  {name:<40}  {digest}" for name, digest in info.get("sources", [])]
    repos = info.get("repositories", [])
    if repos:
        lines.append("Git:")
        for repo in repos:
            state = "dirty" if repo.get("dirty") else "clean"
            lines.append(f"  {repo.get('url') or '(no remote)'}  {repo.get('commit')}  {state}")
    print("\n".join(lines))


def save_config(_config, _log, config_filename="config.json"):
    """Write the configuration to a file (config_filename=..., json/yaml/pickle)."""
    from labbook.config.containers import thaw
    from labbook.config.files import save_config_file

    config = thaw(_config)
    config.pop("config_filename", None)
    save_config_file(config, config_filename)
    _log.info("Saved config to %s", config_filename)


def make_print_named_configs(ex: Experiment) -> Callable:
    def print_named_configs(_run):
        """Print the available named configs."""
        lines = ["Named Configurations (doc):"]
        names = list(ex.gather_named_configs())
        if not names:
            lines.append("  No named configs")
        for name, conf in names:
            doc = _scope_doc(conf)
            lines.append(f"  {name}" + (f"  # {doc}" if doc else ""))
        print("\n".join(lines))
    return print_named_configs


def _scope_doc(conf: Any) -> str:
    func = getattr(conf, "func", None) or getattr(conf, "_func", None)
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def builtin_commands(ex: Experiment) -> dict[str, Callable]:
    commands = {}
    for func in (print_config, print_dependencies, save_config, make_print_named_configs(ex)):
        captured = captured_function(func, "", None)
        captured.unobserved = True
        commands[func.__name__] = captured
    return commands
