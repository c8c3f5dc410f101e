"""Reading an experiment's command line: ``[COMMAND] [with UPDATE...] [OPTIONS]``.

Parsed with docopt-ng. Updates are ``key=value`` (dotted keys for nested entries and
ingredients) with values read by ``ast.literal_eval`` -- never ``eval`` -- falling back to the
raw text only for bare words; an update without ``=`` names a named config or a config file.
Everything wrong is a :class:`~labbook.errors.UsageError` saying what and how to write it.
"""
from __future__ import annotations

import ast
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from labbook.commandline_options import (BUILTIN_OPTIONS, CLIOption, _wrap, all_options,
                                         check_option_values)
from labbook.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from labbook.experiment import Experiment

#: docopt needs a one-word program name; the real one is only shown to the user
_DOCOPT_PROG = "exp"
_CONFIG_FILE_EXTENSIONS = (".json", ".yaml", ".yml", ".pickle", ".pkl")
#: options that may be given more than once
_REPEATABLE = {"--tag"}

__all__ = ["ParsedArgs", "parse_argv", "parse_updates", "parse_value", "usage_text",
           "help_for_command", "looks_like_config_file", "program_name"]


def _usage_lines(prog: str) -> str:
    pattern = "[(with UPDATE...)] [--tag=TAG]... [options]"
    return (
        "Usage:\n"
        f"  {prog} {pattern}\n"
        f"  {prog} help [COMMAND]\n"
        f"  {prog} (-h | --help)\n"
        f"  {prog} COMMAND {pattern}"
    )


def _options_section(ex: Experiment) -> str:
    return "Options:\n" + "\n".join(o.usage_line() for o in all_options(ex))


def _docopt_text(ex: Experiment) -> str:
    # Only usage and options: docopt would read stray '-' lines or a second "usage:" in the
    # user's docstring as part of the grammar.
    return f"{_usage_lines(_DOCOPT_PROG)}\n\n{_options_section(ex)}\n"


def usage_text(ex: Experiment, program_name: str | None = None) -> str:
    """The full help text of ``ex`` in Sacred's order: usage, docstring, options, arguments and
    commands (built-in ones first, then the experiment's and its ingredients' in the order
    they were defined)."""
    prog = program_name or program_name()
    commands = list(ex.gather_commands())
    width = max([len(n) for n, _ in commands] + [8])
    command_lines = []
    for name, cmd in commands:
        summary = _first_line(cmd)
        if name == ex.default_command:
            summary = ("(default) " + summary).strip()
        command_lines.append(_wrap(f"  {name:<{width}}  ", summary, width + 4))
    doc = (ex.doc or "").strip()
    return (
        f"{_usage_lines(prog)}\n\n"
        f"{doc + chr(10) + chr(10) if doc else ''}"
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

    prog = prog or program_name()
    doc = inspect.getdoc(getattr(func, "uncaptured_function", func)) or "(no description)"
    lines = [f"Usage: {prog} {name} [with UPDATE...] [options]", "", doc]
    signature = getattr(func, "signature", None)
    if signature is not None:
        from labbook.captured import SPECIAL_ARGS
        from labbook.config.paths import join_path

        reads = [join_path(getattr(func, "ingredient_path", ""), getattr(func, "prefix", None), a)
                 for a in signature.fillable if a not in SPECIAL_ARGS]
        if reads:
            lines += ["", "Config entries it reads: " + ", ".join(reads)]
    return "\n".join(lines)


def _first_line(func: Callable) -> str:
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def program_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "experiment"


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
        value = _literal(text)
    except _LITERAL_ERRORS as exc:
        return _text_or_error(text, key, exc)
    if "#" in text and _has_comment(text):
        # Python reads '1#2' as 1 followed by a comment: never what a command line meant
        raise _value_error(key, text, SyntaxError("'#' outside quotes starts a comment, which "
                                                  "would drop the rest"))
    _check_int_size(value, key)
    return value


_LITERAL_ERRORS = (SyntaxError, ValueError, TypeError, OverflowError, MemoryError,
                   RecursionError)


#: digits of the longest integer a store can write (Python's int-to-text limit)
def _int_digit_limit() -> int:
    import sys

    get = getattr(sys, "get_int_max_str_digits", None)
    return get() if get is not None else 0


def _check_int_size(value: Any, key: str) -> None:
    """Integers beyond Python's int-to-text limit cannot be printed or stored as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        limit = _int_digit_limit()
        # a cheap bound first: bit_length * log10(2) is the number of decimal digits
        if limit and value.bit_length() * 0.30103 > limit - 1:
            try:
                str(value)
            except ValueError:
                raise UsageError(
                    f"The value of '{key}' is an integer of about "
                    f"{int(value.bit_length() * 0.30103) + 1} decimal digits, beyond Python's "
                    f"limit of {limit} digits for integers as text, so it can be neither "
                    "printed nor stored. Quote it to keep it as a string.") from None
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_int_size(item, key)
    elif isinstance(value, dict):
        for item in value.values():
            _check_int_size(item, key)


def _has_comment(text: str) -> bool:
    import io
    import tokenize

    try:
        for token in tokenize.generate_tokens(io.StringIO(text.strip()).readline):
            if token.type == tokenize.COMMENT:
                return True
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return False


def _text_or_error(text: str, key: str, exc: BaseException) -> Any:
    """A bare word or plain text as a string, or the error saying how to write the value."""
    stripped = text.strip()
    if (_BARE_WORD.fullmatch(stripped) or _PLAIN_TEXT.fullmatch(stripped)) \
            and not _INTEGER_LIKE.fullmatch(stripped):
        return stripped
    raise _value_error(key, text, exc) from None


def _value_error(key: str, text: str, exc: BaseException) -> UsageError:
    if "integer string conversion" in str(exc):
        reason = (f"an integer beyond Python's limit of {_int_digit_limit()} digits for "
                  "integers as text, which can be neither printed nor stored")
    elif isinstance(exc, SyntaxError):
        reason = exc.msg
    elif isinstance(exc, (MemoryError, RecursionError)):
        reason = "too deeply nested"
    elif isinstance(exc, TypeError):
        reason = str(exc)
    else:  # ValueError: a name, call or operator; its message shows an object address
        reason = "not a literal; names, calls and operators are not evaluated"
    stripped = text.strip()
    if len(text) > 80:
        text = text[:60] + f"... ({len(text)} characters)"
    if not stripped:
        return UsageError(
            f"Missing value for '{key}' in '{key}='. Give a value, or write "
            f"\"{key}=''\" for an empty string.")
    message = (f"Cannot parse the value of '{key}': {text!r} ({reason}). Values are Python "
               "literals: numbers, 'strings', [lists], {dicts}, True/False/None; words and "
               "text without quotes or brackets are strings.")
    if not stripped.startswith(_STRUCTURED) and len(stripped) <= 80:
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


def looks_like_config_file(name: str) -> bool:
    return name.lower().endswith(_CONFIG_FILE_EXTENSIONS)


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

    prog = prog or program_name()
    options_list = all_options(ex)
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
    check_option_values(options)
    return ParsedArgs(args.get("COMMAND"), config_updates, named, options, custom=custom)


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
