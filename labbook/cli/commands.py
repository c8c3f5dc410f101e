"""Built-in commands of every experiment: print_config, print_dependencies, save_config,
print_named_configs."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

from labbook.config.signature import captured_function
from labbook.serialize import copy_plain

if TYPE_CHECKING:
    from labbook.config.summary import ConfigSummary
    from labbook.experiment import Experiment

SEED_DOC = "the random seed for this experiment"
_COLOURS = {"added": "\033[32m", "modified": "\033[34m", "typechanged": "\033[31m",
            "doc": "\033[2m"}
_RESET = "\033[0m"
_LEGEND = ("modified", "added", "typechanged")


def _paint(text: str, kind: str | None, colour: bool) -> str:
    if not colour or kind is None:
        return text
    return f"{_COLOURS[kind]}{text}{_RESET}"


def _aligned(rows: list[tuple[str, str, str]], gap: int = 2) -> list[str]:
    """``(shown, plain, comment)`` rows with the comments in one column; ``plain`` is
    ``shown`` without colour codes, so the padding is measured on what the user sees."""
    width = max((len(plain) for _, plain, comment in rows if comment), default=0)
    lines = []
    for shown, plain, comment in rows:
        if comment:
            shown += " " * (width - len(plain) + gap) + comment
        lines.append(shown)
    return lines


def format_config(config: dict, summary: ConfigSummary | None = None,
                  colour: bool | None = None) -> str:
    """The config as ``key = value`` lines with their doc comments.

    Entries the updates added, modified or changed the type of are coloured when ``colour``
    (by default: when stdout is a terminal) and marked ``(added)`` etc. otherwise.
    """
    if colour is None:
        colour = _isatty(sys.stdout)
    docs = dict(getattr(summary, "docs", {}) or {})
    docs.setdefault("seed", SEED_DOC)
    legend = ", ".join(_paint(k, k, colour) for k in _LEGEND)
    header = f"Configuration ({legend}, {_paint('doc', 'doc', colour)}):"
    entries: list[tuple[str, str, str | None]] = []
    _collect(config, "", 1, summary, entries)
    rows = []
    for text, path, kind in entries:
        plain = text if colour or kind is None else f"{text} ({kind})"
        shown = _paint(text, kind, colour) if colour else plain
        doc = docs.get(path)
        rows.append((shown, plain, _paint(f"# {doc}", "doc", colour) if doc else ""))
    return "\n".join([header, *_aligned(rows)])


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _collect(value: dict, prefix: str, depth: int, summary: ConfigSummary | None,
             out: list) -> None:
    indent = "  " * depth
    for key in sorted(value, key=str):
        item = value[key]
        path = f"{prefix}.{key}" if prefix else str(key)
        kind = summary.status_of(path) if summary is not None else None
        if isinstance(item, dict) and item:
            out.append((f"{indent}{key}:", path, kind))
            _collect(item, path, depth + 1, summary, out)
        else:
            out.append((f"{indent}{key} = {_plain_repr(item)}", path, kind))


def _plain_repr(value: Any) -> str:
    # the run's config is frozen (read-only containers); show it as plain dicts and lists
    return repr(copy_plain(value))


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
    _log.info("Saved config to %s", config_filename)


def format_named_configs(ex: Experiment) -> str:
    """The ``print_named_configs`` text: every named config (dotted for ingredients) with the
    first line of its docstring."""
    rows = [(name, name, f"# {doc}" if doc else "")
            for name, conf in ex.gather_named_configs() for doc in [_scope_doc(conf)]]
    lines = ["Named Configurations (doc):"]
    if not rows:
        lines.append("  No named configs")
    lines += [f"  {line}" for line in _aligned(rows)]
    return "\n".join(lines)


def make_print_named_configs(ex: Experiment) -> Callable:
    def print_named_configs():
        """Print the available named configs."""
        print(format_named_configs(ex))
    return print_named_configs


def _scope_doc(conf: Any) -> str:
    func = getattr(conf, "func", None)
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def builtin_commands(ex: Experiment) -> dict[str, Callable]:
    """The built-in commands, captured and unobserved (they record no run)."""
    commands = {}
    for func in (print_config, print_dependencies, save_config, make_print_named_configs(ex)):
        captured = captured_function(func, "", None)
        captured.unobserved = True
        commands[func.__name__] = captured
    return commands
