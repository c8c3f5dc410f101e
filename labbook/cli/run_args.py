"""The command line of experiment scripts: ``python exp.py [COMMAND] [with UPDATE...] [OPTIONS]``.

Parsed with docopt-ng. Updates are ``key=value`` (dotted keys for nested entries and
ingredients) with values read by ``ast.literal_eval`` -- never ``eval`` -- falling back to the
raw text only for bare words; an update without ``=`` names a named config or a config file.

Exit statuses: 0 success, 1 failed run, 2 usage error, 3 interrupted run.
"""
from __future__ import annotations

import ast
import math
import os
import re
import shlex
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from labbook.errors import (LabbookError, MissingConfigError, UsageError,
                            did_you_mean)

if TYPE_CHECKING:
    from labbook.experiment import Experiment
    from labbook.run import Run

#: exit statuses of experiment scripts
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3

#: docopt needs a one-word program name; the real one is only shown to the user
_DOCOPT_PROG = "exp"
_HELP_COLUMN = 38
_HELP_WIDTH = 100
_CONFIG_FILE_EXTENSIONS = (".json", ".yaml", ".yml", ".pickle", ".pkl")


# --- options ----------------------------------------------------------------------------------

class CLIOption:
    """A command-line flag of an experiment, made with :func:`cli_option`.

    ``apply_function(value, run)`` is called with the flag's value (True for a switch) and the
    created run, before the run starts, whenever the flag is given.
    """

    def __init__(self, apply_function: Callable[[Any, Run], Any] | None,
                 short_flag: str | None, long_flag: str, is_flag: bool = False,
                 description: str | None = None, arg: str | None = None):
        if short_flag is not None and not re.fullmatch(r"-[A-Za-z0-9]", short_flag):
            raise ValueError(f"Short flag {short_flag!r} must be '-' and one letter, e.g. '-o'.")
        if not re.fullmatch(r"--[A-Za-z0-9][A-Za-z0-9_-]*", long_flag or ""):
            raise ValueError(f"Long flag {long_flag!r} must look like '--my-option'.")
        self.apply_function = apply_function
        self.short_flag = short_flag
        self.long_flag = long_flag
        self.is_flag = is_flag
        if description is None:
            doc = (getattr(apply_function, "__doc__", None) or "").strip()
            # the first paragraph, on one line: docopt reads the help text line by line
            description = " ".join(doc.split("\n\n")[0].split())
        self.description = description
        self.arg = None if is_flag else (arg or self.key.upper())

    @property
    def key(self) -> str:
        """The name in the options dict: ``--beat-interval`` -> ``beat_interval``."""
        return self.long_flag[2:].replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return not self.is_flag

    def get_flags(self) -> tuple[str | None, str]:
        return self.short_flag, self.long_flag

    def get_description(self) -> str:
        return self.description

    def apply(self, value: Any, run: Run) -> Any:
        if self.apply_function is not None:
            return self.apply_function(value, run)
        return None

    def usage_line(self) -> str:
        """The option's line in the help text, in the syntax docopt reads."""
        if self.is_flag:
            flags = f"{self.short_flag} {self.long_flag}" if self.short_flag else self.long_flag
        else:
            flags = f"{self.long_flag}={self.arg}"
            if self.short_flag:
                flags = f"{self.short_flag} {self.arg} {flags}"
        head = f"  {flags}"
        # docopt needs two spaces between the flags and their description
        head = head.ljust(_HELP_COLUMN) if len(head) <= _HELP_COLUMN - 2 else head + "  "
        return _wrap(head, self.description, len(head))

    def __repr__(self) -> str:
        return f"CLIOption({self.short_flag!r}, {self.long_flag!r}, is_flag={self.is_flag})"


def cli_option(short_flag: str | None, long_flag: str | None = None, is_flag: bool = False,
               *, description: str | None = None, arg: str | None = None):
    """Decorator turning ``func(value, run)`` into a :class:`CLIOption` (Sacred's spelling).

    >>> @cli_option("-o", "--own-flag", is_flag=True)
    ... def own_flag(value, run):
    ...     '''Remember that the flag was given.'''
    ...     run.info["own_flag"] = value

    The description in the help text is the docstring's first paragraph. ``cli_option("--x")``
    makes an option without a short form.
    """
    if long_flag is None and short_flag is not None and short_flag.startswith("--"):
        short_flag, long_flag = None, short_flag

    def decorate(func: Callable) -> CLIOption:
        return CLIOption(func, short_flag, long_flag or "", is_flag, description, arg)
    return decorate


def _builtin(short: str | None, long: str, description: str, arg: str | None = None
             ) -> CLIOption:
    return CLIOption(None, short, long, is_flag=arg is None, description=description, arg=arg)


BUILTIN_OPTIONS = [
    _builtin("-h", "--help", "Show this help message and exit."),
    _builtin("-d", "--debug", "Show full tracebacks, labbook's frames included."),
    _builtin("-D", "--pdb", "Start the post-mortem debugger when the run fails."),
    _builtin("-l", "--loglevel", "Log level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a "
             "number.", "LEVEL"),
    _builtin("-c", "--comment", "A comment stored with the run.", "COMMENT"),
    _builtin("-b", "--beat-interval", "Seconds between heartbeats (default 10).", "SECONDS"),
    _builtin("-u", "--unobserved", "Ignore all observers for this run."),
    _builtin("-q", "--queue", "Only queue the run (for a worker to execute)."),
    _builtin("-f", "--force", "Accept suspicious config changes (new entries nothing uses)."),
    _builtin("-P", "--priority", "Priority of a queued run (an integer).", "PRIORITY"),
    _builtin("-e", "--enforce_clean", "Refuse to run when the git repository is dirty."),
    _builtin("-p", "--print-config", "Print the configuration before running."),
    _builtin("-i", "--id", "Use this id for the run.", "ID"),
    _builtin("-n", "--name", "A name for this run.", "NAME"),
    _builtin("-C", "--capture", "Output capture mode: fd, sys or no.", "MODE"),
    _builtin("-t", "--tag", "Tag the run (repeatable).", "TAG"),
    _builtin(None, "--notes", "Notes stored with the run.", "NOTES"),
    _builtin("-F", "--file_storage", "Store the run in this directory (file store).", "DIR"),
    _builtin("-s", "--sql", "Store the run in this SQL database URL.", "URL"),
    _builtin("-m", "--mongo_db", "Store the run in MongoDB: [host:port:]db or a mongodb:// "
             "URL.", "DB"),
    _builtin(None, "--store", "Store the run in the store at this URL (file://, sqlite:///, "
             "postgresql://, mysql://, mongodb://).", "URL"),
    # no short flag: Sacred's -q is --queue (queue the run only), something else entirely
    _builtin(None, "--queued", "Deliver observer events from a background thread, retrying; "
             "journal what cannot be delivered."),
    _builtin(None, "--no-system-metrics", "Do not sample CPU/memory/GPU metrics."),
    _builtin(None, "--capture-env", "Comma-separated environment variables to record.",
             "VARS"),
]
#: options that may be given more than once
_REPEATABLE = {"--tag"}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_CAPTURE_MODES = ("fd", "sys", "no")


def custom_options(ex: Experiment) -> list[CLIOption]:
    """The experiment's own options, checked against the built-in ones."""
    taken = {flag: opt for opt in BUILTIN_OPTIONS for flag in opt.get_flags() if flag}
    result = []
    for opt in ex.additional_cli_options:
        if not isinstance(opt, CLIOption):
            raise LabbookError(
                f"additional_cli_options contains {opt!r}; give options made with the "
                "@cli_option decorator (from labbook.cli.run_args import cli_option).")
        for flag in opt.get_flags():
            if flag and flag in taken:
                raise LabbookError(
                    f"The option {flag} of {opt!r} is already taken by {taken[flag].long_flag}; "
                    "choose another flag.")
            if flag:
                taken[flag] = opt
        result.append(opt)
    return result


def _all_options(ex: Experiment) -> list[CLIOption]:
    return BUILTIN_OPTIONS + custom_options(ex)


# --- help text --------------------------------------------------------------------------------

def _wrap(head: str, text: str, indent: int) -> str:
    """``head`` followed by ``text`` wrapped at the help width, continuation lines indented
    (they never start with '-', so docopt keeps them as description)."""
    import textwrap

    if not text:
        return head.rstrip()
    lines = textwrap.wrap(text, max(_HELP_WIDTH - indent, 30), break_on_hyphens=False) or [""]
    return head + lines[0] + "".join("\n" + " " * indent + line for line in lines[1:])


def _usage_lines(prog: str) -> str:
    pattern = "[(with UPDATE...)] [-t TAG]... [options]"
    return (
        "Usage:\n"
        f"  {prog} {pattern}\n"
        f"  {prog} help [COMMAND]\n"
        f"  {prog} (-h | --help)\n"
        f"  {prog} COMMAND {pattern}"
    )


def _options_section(ex: Experiment) -> str:
    return "Options:\n" + "\n".join(o.usage_line() for o in _all_options(ex))


def _docopt_text(ex: Experiment) -> str:
    # Only usage and options: docopt would read stray '-' lines or a second "usage:" in the
    # user's docstring as part of the grammar.
    return f"{_usage_lines(_DOCOPT_PROG)}\n\n{_options_section(ex)}\n"


def usage_text(ex: Experiment, program_name: str | None = None) -> str:
    """The full help text of ``ex``: docstring, usage, options, arguments and commands."""
    prog = program_name or _program_name()
    commands = sorted(ex.gather_commands())
    width = max([len(n) for n, _ in commands] + [8])
    command_lines = []
    for name, cmd in commands:
        summary = _first_line(cmd)
        if name == ex.default_command:
            summary = ("(default) " + summary).strip()
        command_lines.append(_wrap(f"  {name:<{width}}  ", summary, width + 4))
    doc = (ex.doc or "").strip()
    return (
        f"{doc + chr(10) + chr(10) if doc else ''}"
        f"{_usage_lines(prog)}\n\n"
        f"{_options_section(ex)}\n\n"
        "Arguments:\n"
        "  COMMAND   Name of a command to run (default: the main function).\n"
        "  UPDATE    key=value config updates (dotted keys for nested entries and\n"
        "            ingredients), names of named configs, or paths of .json/.yaml\n"
        "            config files.\n\n"
        "Commands:\n" + "\n".join(command_lines) + "\n"
    )


def help_for_command(name: str, func: Callable, prog: str | None = None) -> str:
    """``help COMMAND``: how to call the command, its docstring and the config it reads."""
    import inspect

    prog = prog or _program_name()
    doc = inspect.getdoc(getattr(func, "uncaptured_function", func)) or "(no description)"
    lines = [f"Usage: {prog} {name} [with UPDATE...] [options]", "", doc]
    signature = getattr(func, "signature", None)
    if signature is not None:
        from labbook.config.signature import SPECIAL_ARGS, join_path

        reads = [join_path(getattr(func, "ingredient_path", ""), getattr(func, "prefix", None), a)
                 for a in signature.fillable if a not in SPECIAL_ARGS]
        if reads:
            lines += ["", "Config entries it reads: " + ", ".join(reads)]
    return "\n".join(lines)


def _first_line(func: Callable) -> str:
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _program_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "experiment"


# --- updates ----------------------------------------------------------------------------------

# one dotted key: no spaces, quotes or brackets (those are typos of a value), no leading '$'
_KEY_PART = r"[^\s=.'\"()\[\]{}$][^\s=.'\"()\[\]{}]*"
_KEY = re.compile(rf"{_KEY_PART}(\.{_KEY_PART})*")
# a bare word stays a string: no spaces, quotes, brackets or commas, and no leading '='
_BARE_WORD = re.compile(r"[^\s'\"()\[\]{},=][^\s'\"()\[\]{},]*")
# integers Python refuses (leading zeros, stray '_', too many digits) are typos, not words
_INTEGER_LIKE = re.compile(r"[+-]?\d[\d_]*")
# words with spaces and no quotes or brackets are text, as Sacred reads them: its docs run
# `with message='Ciao world!'`, which the shell hands over as message=Ciao world!
_PLAIN_TEXT = re.compile(r"[^\s'\"()\[\]{}=][^'\"()\[\]{}]*\s[^'\"()\[\]{}]*")
_STRUCTURED = ("[", "{", "(", "'", '"')


class _FloatNames(ast.NodeTransformer):
    """Reads the names ``inf`` and ``nan`` as floats, so every float's repr parses back; an
    Ellipsis is no config value (``...`` stays a bare word)."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if node.value is Ellipsis:
            raise ValueError("Ellipsis")
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("inf", "nan"):
            return ast.copy_location(ast.Constant(float(node.id)), node)
        return node


def _literal(text: str) -> Any:
    import warnings

    with warnings.catch_warnings():
        # the parser warns about odd input ("1if", "'\\d'") on stderr; we report it ourselves
        warnings.simplefilter("ignore")
        tree = ast.parse(text.strip(), mode="eval")
    return ast.literal_eval(_FloatNames().visit(tree).body)


def parse_value(text: str, key: str = "value") -> Any:
    """An update's value: a Python literal (``ast.literal_eval``, plus ``inf``/``nan``), or
    the raw text when it is a bare word (``adam``, ``data/train.csv``) or plain text without
    quotes or brackets (``Ciao world!``, as Sacred reads it).

    Anything else (an unclosed bracket or quote, a call, an integer with leading zeros)
    raises :class:`UsageError` saying how to write it.
    """
    try:
        return _literal(text)
    except (SyntaxError, ValueError, TypeError, OverflowError, MemoryError,
            RecursionError) as exc:
        stripped = text.strip()
        if (_BARE_WORD.fullmatch(stripped) or _PLAIN_TEXT.fullmatch(stripped)) \
                and not _INTEGER_LIKE.fullmatch(stripped):
            return stripped
        raise _value_error(key, text, exc) from None


def _value_error(key: str, text: str, exc: BaseException) -> UsageError:
    if isinstance(exc, SyntaxError):
        reason = exc.msg
    elif isinstance(exc, (MemoryError, RecursionError)):
        reason = "too deeply nested"
    elif isinstance(exc, TypeError):
        reason = str(exc)
    else:  # ValueError: a name, call or operator; its message shows an object address
        reason = "not a literal; names, calls and operators are not evaluated"
    stripped = text.strip()
    if not stripped:
        return UsageError(
            f"Missing value for '{key}' in '{key}='. Give a value, or write "
            f"\"{key}=''\" for an empty string.")
    message = (f"Cannot parse the value of '{key}': {text!r} ({reason}). Values are Python "
               "literals: numbers, 'strings', [lists], {dicts}, True/False/None; words and "
               "text without quotes or brackets are strings.")
    if not stripped.startswith(_STRUCTURED):
        suggestion = f"{key}={stripped!r}"
        if not re.search(r"[\"$`\\!]", suggestion):
            message += f" For a string, quote it: with \"{suggestion}\""
    return UsageError(message)


def parse_updates(updates: Sequence[str]) -> tuple[dict, list[str]]:
    """Split ``with`` arguments into ``(config_updates, named_configs)``.

    ``key=value`` becomes an entry of ``config_updates`` (the last one of a key wins); anything
    else is the name of a named config or a config file, in order.
    """
    config_updates: dict[str, Any] = {}
    named: list[str] = []
    for item in updates:
        key, eq, text = item.partition("=")
        if not eq:
            name = item.strip()
            if not name:
                raise UsageError("Empty update after 'with': give key=value, the name of a "
                                 "named config, or a config file.")
            named.append(name)
            continue
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise UsageError(
                f"Invalid config key {key!r} in update {item!r}: use a name or a dotted path "
                "such as 'lr=0.1' or 'optimizer.lr=0.1'.")
        config_updates[key] = parse_value(text, key)
    return config_updates, named


def _looks_like_config_file(name: str) -> bool:
    return name.lower().endswith(_CONFIG_FILE_EXTENSIONS)


# --- parsing the command line -----------------------------------------------------------------

@dataclass
class ParsedArgs:
    """An understood command line."""

    command: str | None
    config_updates: dict
    named_configs: list[str]
    options: dict
    help: bool = False
    help_command: str | None = None
    #: values of the experiment's own options by long flag (only those given)
    custom: dict = field(default_factory=dict)


def parse_argv(ex: Experiment, argv: Sequence[str], prog: str | None = None) -> ParsedArgs:
    """Parse an experiment command line (without the program name); raises UsageError."""
    from docopt import DocoptExit, DocoptLanguageError, docopt

    prog = prog or _program_name()
    options_list = _all_options(ex)
    # docopt repeats the values of a repeated option when 'with UPDATE...' is matched too
    # (-t a -t b with x=1 gives ['a', 'b', 'b']), so the tags are taken out beforehand.
    rest, tags = _take_tags(options_list, argv)
    try:
        args = docopt(_docopt_text(ex), argv=rest, default_help=False, version=None)
    except (DocoptExit, DocoptLanguageError) as exc:
        raise UsageError(_usage_failure(ex, options_list, argv, prog, exc)) from None
    if args.get("COMMAND") == "with":  # docopt took a lone 'with' for a command's name
        raise UsageError(_with_usage(
            "'with' must be followed by at least one update: key=value, the name of a named "
            "config, or a config file.", prog))
    if args.get("--help"):
        return ParsedArgs(None, {}, [], {}, help=True)
    if args.get("help"):
        return ParsedArgs(None, {}, [], {}, help=True, help_command=args.get("COMMAND"))
    config_updates, named = parse_updates(args.get("UPDATE") or [])
    options: dict[str, Any] = {}
    for key, value in args.items():
        if key.startswith("--"):
            options[key[2:].replace("-", "_")] = value
    custom = {}
    for opt in options_list[len(BUILTIN_OPTIONS):]:
        value = args.get(opt.long_flag)
        if value not in (None, False):
            custom[opt.long_flag] = value
    options["tag"] = tags
    _check_option_values(options)
    return ParsedArgs(args.get("COMMAND"), config_updates, named, options, custom=custom)


def _check_option_values(options: dict) -> None:
    """Convert and check typed option values in place (UsageError naming the option)."""
    level = options.get("loglevel")
    if level is not None and not level.isdigit():
        if level.upper() not in _LOG_LEVELS:
            raise UsageError(
                f"Unknown log level '{level}' for -l/--loglevel."
                f"{did_you_mean(level.upper(), _LOG_LEVELS)} Use DEBUG, INFO, WARNING, ERROR, "
                "CRITICAL or a number.")
        options["loglevel"] = level.upper()
    elif level is not None:
        options["loglevel"] = int(level)
    capture = options.get("capture")
    if capture is not None and capture not in _CAPTURE_MODES:
        raise UsageError(f"Invalid capture mode '{capture}' for -C/--capture: use fd, sys or no.")
    if options.get("beat_interval") is not None:
        text = options["beat_interval"]
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise UsageError(f"-b/--beat-interval takes a number of seconds (0 or more), got "
                             f"'{text}'.")
        options["beat_interval"] = seconds
    if options.get("priority") is not None:
        try:
            options["priority"] = int(options["priority"])
        except ValueError:
            raise UsageError(f"-P/--priority takes an integer, got '{options['priority']}'.") \
                from None
    run_id = options.get("id")
    if run_id is not None and (not run_id.strip() or re.search(r"[/\\]", run_id)
                               or run_id in (".", "..")):
        # stores use the id as a directory or key name; it must not point elsewhere
        raise UsageError(f"-i/--id takes a plain name or number, got '{run_id}'.")
    if options.get("capture_env"):
        options["capture_env"] = [v for v in options["capture_env"].split(",") if v]


def _long_flag(flag: str, by_flag: dict[str, CLIOption]) -> CLIOption | None:
    """The option ``--flag`` names, exactly or as a unique prefix (as docopt accepts)."""
    if flag in by_flag:
        return by_flag[flag]
    matches = {o.long_flag for f, o in by_flag.items() if f.startswith("--") and
               f.startswith(flag)}
    return by_flag[matches.pop()] if len(matches) == 1 else None


def _take_tags(options: list[CLIOption], argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into the arguments without ``-t/--tag TAG`` and the tags, in order.

    Anything malformed is left in place for docopt (and the error message) to see.
    """
    by_flag = {flag: o for o in options for flag in o.get_flags() if flag}
    rest: list[str] = []
    tags: list[str] = []
    argv = list(argv)
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token.startswith("--") and len(token) > 2:
            flag, eq, value = token.partition("=")
            opt = _long_flag(flag, by_flag)
            if opt is not None and opt.long_flag == "--tag" and (eq or i < len(argv)):
                if not eq:
                    value = argv[i]
                    i += 1
                tags.append(value)
                continue
            rest.append(token)
            if opt is not None and opt.takes_value and not eq and i < len(argv):
                rest.append(argv[i])  # the option's value, even when it looks like a flag
                i += 1
        elif token.startswith("-") and len(token) > 1 and token != "--":
            # a bundle of short flags (-pu, -ltDEBUG, -pt TAG): the first one that takes a
            # value ends it, with the rest of the token or the next argument as the value
            kept, value_follows = "", False
            for j in range(1, len(token)):
                opt = by_flag.get("-" + token[j])
                if opt is None or not opt.takes_value:
                    kept += token[j]
                    continue
                attached = token[j + 1:]
                if opt.long_flag == "--tag" and (attached or i < len(argv)):
                    if not attached:
                        attached = argv[i]
                        i += 1
                    tags.append(attached)
                else:
                    kept += token[j:]
                    value_follows = not attached
                break
            if kept:
                rest.append("-" + kept)
            if value_follows and i < len(argv):
                rest.append(argv[i])
                i += 1
        else:
            rest.append(token)
    return rest, tags


def _usage_failure(ex: Experiment, options: list[CLIOption], argv: Sequence[str], prog: str,
                   exc: BaseException) -> str:
    """The message for a command line docopt rejected: what is wrong, then the usage."""
    problem = _diagnose(options, argv, prog)
    if not problem:
        text = str(getattr(exc, "code", None) or exc)
        first = text.split("\n", 1)[0].strip()
        problem = first if first and not first.lower().startswith("usage") \
            and "unmatched" not in first else "Cannot understand the command line."
    return _with_usage(problem, prog)


def _with_usage(problem: str, prog: str) -> str:
    return f"{problem}\n{_usage_lines(prog)}\nRun '{prog} --help' for the options and commands."


def _diagnose(options: list[CLIOption], argv: Sequence[str], prog: str) -> str:
    """Find the first thing wrong in ``argv``, in words ("" when nothing specific is)."""
    by_flag = {flag: o for o in options for flag in o.get_flags() if flag}
    longs = sorted(o.long_flag for o in options)
    seen: set[str] = set()
    positionals: list[str] = []
    i = 0

    def once(opt: CLIOption) -> str:
        if opt.long_flag in seen and opt.long_flag not in _REPEATABLE:
            return f"Option {opt.long_flag} is given more than once."
        seen.add(opt.long_flag)
        return ""

    while i < len(argv):
        token = argv[i]
        i += 1
        if token.startswith("--") and len(token) > 2:
            flag, eq, _ = token.partition("=")
            if flag not in by_flag:
                # docopt accepts unique prefixes of long options
                matches = [f for f in longs if f.startswith(flag)]
                if not matches:
                    return f"Unknown option '{flag}'.{did_you_mean(flag, longs)}"
                if len(matches) > 1:
                    return f"Option '{flag}' is ambiguous: it could be {', '.join(matches)}."
                flag = matches[0]
            opt = by_flag[flag]
            if opt.takes_value and not eq:
                if i >= len(argv):
                    return f"Option {flag} needs a value: {flag}={opt.arg}."
                i += 1
            elif not opt.takes_value and eq:
                return f"Option {flag} is a switch and takes no value (got '{token}')."
            problem = once(opt)
            if problem:
                return problem
        elif token.startswith("-") and len(token) > 1 and token != "--":
            rest = token[1:]
            while rest:
                flag, rest = "-" + rest[0], rest[1:]
                opt = by_flag.get(flag)
                if opt is None:
                    swapped = flag[0] + flag[1].swapcase()
                    hint = f" Did you mean '{swapped}'? (flags are case-sensitive)" \
                        if swapped in by_flag else ""
                    inside = f" (in '{token}')" if len(token) > 2 else ""
                    return f"Unknown option '{flag}'{inside}.{hint}"
                problem = once(opt)
                if problem:
                    return problem
                if opt.takes_value:
                    if not rest:
                        if i >= len(argv):
                            return f"Option {flag} needs a value: {flag} {opt.arg}."
                        i += 1
                    break
        else:
            positionals.append(token)
    if not positionals:
        return ""
    if positionals[0] == "help":
        if len(positionals) > 2:
            return f"'help' takes at most one command: {prog} help [COMMAND]."
        return ""
    after = positionals if positionals[0] == "with" else positionals[1:]
    command = "" if positionals[0] == "with" else positionals[0] + " "
    if after and after[0] != "with":
        return (f"Unexpected argument '{after[0]}'. Config updates follow the word 'with': "
                f"{prog} {command}with {' '.join(shlex.quote(a) for a in after)}")
    if after == ["with"]:
        return ("'with' must be followed by at least one update: key=value, the name of a "
                "named config, or a config file.")
    return ""


# --- running ----------------------------------------------------------------------------------

def run_commandline(ex: Experiment, argv: str | Sequence[str] | None = None) -> Run | None:
    """Run ``ex`` from a command line (``argv[0]`` is the program); return the finished run,
    or None after help. Errors end the process with the statuses listed in the module doc."""
    if argv is None:
        argv = sys.argv
    elif isinstance(argv, str):
        argv = shlex.split(argv)
    argv = list(argv)
    prog = os.path.basename(argv[0]) if argv and argv[0] else _program_name()
    args = argv[1:]
    # Known before parsing, so that errors while parsing can show their traceback too.
    debug = "-d" in args or "--debug" in args
    parsed: ParsedArgs | None = None
    try:
        parsed = parse_argv(ex, args, prog)
        debug = debug or bool(parsed.options.get("debug"))
        if parsed.help:
            _print_help(ex, parsed.help_command, prog)
            return None
        run = _prepare_run(ex, parsed, prog)
    except KeyboardInterrupt:
        if debug:
            _print_traceback(True)
        sys.exit(EXIT_INTERRUPTED)
    except LabbookError as exc:
        if debug:
            _print_traceback(True)
        print(f"Error: {_message_for(exc, parsed, prog)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception:
        # a bug in the user's config code, an option hook or a custom option
        _print_traceback(debug)
        sys.exit(EXIT_FAILED)

    from labbook.interrupts import LabbookInterrupt

    try:
        run()
    except (KeyboardInterrupt, LabbookInterrupt):
        # the run logged "Aborted after ...!" and told its observers
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except BaseException:
        exc = sys.exc_info()[1]
        if run.fail_trace:
            print("".join(run.fail_trace), file=sys.stderr, end="")
        elif isinstance(exc, LabbookError) and not debug:
            # refused before the main function started (e.g. --id of a stored run)
            print(f"Error: {exc}", file=sys.stderr)
        else:  # failed before the main function started (e.g. an observer's start)
            _print_traceback(debug)
        sys.exit(EXIT_FAILED)
    return run


def _print_help(ex: Experiment, command: str | None, prog: str) -> None:
    if command is None:
        print(usage_text(ex, prog))
        return
    commands = dict(ex.gather_commands())
    if command not in commands:
        from labbook.errors import CommandNotFoundError

        raise CommandNotFoundError(command, commands)
    print(help_for_command(command, commands[command], prog))


def _prepare_run(ex: Experiment, parsed: ParsedArgs, prog: str) -> Run:
    """Create the run of a parsed command line; everything that can still be a usage error
    is found here, before the run starts."""
    _check_named_configs(ex, parsed, prog)
    run = ex._create_run(parsed.command, parsed.config_updates, parsed.named_configs,
                         options=parsed.options)
    for opt in custom_options(ex):
        if opt.long_flag in parsed.custom:
            opt.apply(parsed.custom[opt.long_flag], run)
    _check_missing_config(run)
    run.announce()
    if parsed.options.get("print_config"):
        from labbook.cli.commands import format_config

        print(format_config(run.config, run.config_modifications))
        print("-" * 79)
    return run


def _check_named_configs(ex: Experiment, parsed: ParsedArgs, prog: str) -> None:
    """Clearer errors than "named config not found" for missing files and misplaced commands."""
    available = {name for name, _ in ex.gather_named_configs()}
    commands = {name for name, _ in ex.gather_commands()}
    for name in parsed.named_configs:
        if name in available:
            continue
        if _looks_like_config_file(name):
            if not os.path.isfile(name):
                raise UsageError(f"Config file '{name}' not found (relative paths are read from "
                                 f"the current directory, {os.getcwd()}).")
        elif name in commands:
            raise UsageError(f"'{name}' is a command, not a named config: the command goes "
                             f"before 'with': {prog} {name} with ...")


def _check_missing_config(run: Run) -> None:
    """Fail before starting when the command itself needs a value nothing supplies."""
    command = run.main_function
    signature = getattr(command, "signature", None)
    if signature is None:
        return
    from labbook.config.signature import SPECIAL_ARGS, join_path

    path = getattr(command, "ingredient_path", "")
    prefix = getattr(command, "prefix", None)
    config = run.config_for(path, prefix)
    missing = [a for a in signature.fillable if a not in signature.defaults
               and a not in SPECIAL_ARGS and a not in config]
    if missing:
        raise MissingConfigError(signature.name, missing,
                                 [join_path(path, prefix, m) for m in missing])


def _message_for(exc: LabbookError, parsed: ParsedArgs | None, prog: str) -> str:
    message = str(exc)
    if isinstance(exc, MissingConfigError) and parsed is not None:
        command = f"{parsed.command} " if parsed.command else ""
        updates = " ".join(f"{key}=VALUE" for key in exc.searched)
        message += f" On the command line: {prog} {command}with {updates}"
    return message


def _print_traceback(full: bool) -> None:
    """The current exception's traceback on stderr, without labbook's frames unless ``full``."""
    from labbook.run import format_fail_trace

    exc_type, exc, tb = sys.exc_info()
    if full:
        lines = traceback.format_exception(exc_type, exc, tb)
    else:
        lines = format_fail_trace(exc_type, exc, tb)
    print("".join(lines), file=sys.stderr, end="")
