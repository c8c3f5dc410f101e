"""The experiment command line, in-process: values, updates, options, help text, formatting."""
from __future__ import annotations

import ast
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labbook import Experiment, Ingredient
from labbook.arg_parser import parse_argv, parse_updates, parse_value, usage_text
from labbook.commandline import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from labbook.commandline_options import BUILTIN_OPTIONS, CLIOption, cli_option
from labbook.commands import format_dependencies, format_named_configs
from labbook.config.text import format_config
from labbook.config.summary import ConfigSummary
from labbook.errors import LabbookError, UsageError


def make_experiment(**kwargs) -> Experiment:
    ex = Experiment("parsing", **kwargs)

    @ex.config
    def cfg():
        lr = 0.1

    @ex.main
    def main(lr):
        return lr

    return ex


# --- values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("-2", -2), ("+3", 3), ("1_000", 1000), ("0x10", 16), ("2.5", 2.5),
    ("1e-3", 0.001), ("-1.5e3", -1500.0), ("1+2j", 1 + 2j), ("True", True), ("False", False),
    ("None", None), ("'hi there'", "hi there"), ('"x"', "x"), ("''", ""), ("[1, 'a']", [1, "a"]),
    ("(1, 2)", (1, 2)), ("{'a': {'b': [1]}}", {"a": {"b": [1]}}), ("{1, 2}", {1, 2}),
    (" 7 ", 7), ("inf", math.inf), ("-inf", -math.inf), ("[inf, 1]", [math.inf, 1]),
    # bare words stay strings
    ("adam", "adam"), ("data/train.csv", "data/train.csv"), ("bert-base-uncased",
                                                             "bert-base-uncased"),
    ("1.2.3", "1.2.3"), ("2024-01-01", "2024-01-01"),
    ("http://host:80/a?b=c", "http://host:80/a?b=c"),
    ("true", "true"), ("~/x", "~/x"), ("a=b", "a=b"), ("x.y", "x.y"),
    # text with spaces, as Sacred's docs pass it (`with message='Ciao world!'` in a shell)
    ("Ciao world!", "Ciao world!"), ("hi there", "hi there"), ("a, b and c", "a, b and c"),
])
def test_parse_value(text, expected):
    value = parse_value(text, "key")
    assert value == expected and type(value) is type(expected)


def test_parse_value_nan():
    assert math.isnan(parse_value("nan"))


@pytest.mark.parametrize("text, fragment", [
    ("[1,", "'[' was never closed"),
    ("{'a': ", "was never closed"),
    ("'abc", "unterminated string literal"),
    ("f(x) + 1", "For a string, quote it: with \"key='f(x) + 1'\""),
    ("f(1)", "not a literal; names, calls and operators are not evaluated"),
    ("__import__('os').system('true')", "not a literal"),
    ("{[1]: 2}", "unhashable type: 'list'"),
    ("0777", "leading zeros"),
    ("1_", "invalid decimal literal"),
    ("9" * 5000, "beyond Python's limit of"),
    ("=1", "Cannot parse the value of 'key'"),
    ("", "Missing value for 'key' in 'key='. Give a value, or write \"key=''\""),
    ("[" * 300 + "]" * 300, "nested"),
])
def test_parse_value_errors(text, fragment):
    with pytest.raises(UsageError) as info:
        parse_value(text, "key")
    assert fragment in str(info.value)
    assert "0x" not in str(info.value)  # no object addresses from ast's messages


def test_parse_value_error_message_in_full():
    with pytest.raises(UsageError) as info:
        parse_value("[1,", "x")
    assert str(info.value) == (
        "Cannot parse the value of 'x': '[1,' ('[' was never closed). Values are Python "
        "literals: numbers, 'strings', [lists], {dicts}, True/False/None; words and text "
        "without quotes or brackets are strings.")


def test_parse_value_never_evaluates(tmp_path):
    marker = tmp_path / "touched"
    with pytest.raises(UsageError):
        parse_value(f"open({str(marker)!r}, 'w')")
    assert not marker.exists()


# --- updates ----------------------------------------------------------------------------------

def test_parse_updates_splits_entries_and_named_configs():
    updates, named = parse_updates(["a=1", "big", "b.c='x'", "dataset.small", "conf.json",
                                    " d = [1] ", "a=2"])
    assert updates == {"a": 2, "b.c": "x", "d": [1]}
    assert named == ["big", "dataset.small", "conf.json"]


@pytest.mark.parametrize("item, fragment", [
    ("=1", "Invalid config key '' in update '=1'"),
    ("a b=1", "Invalid config key 'a b'"),
    ("a..b=1", "Invalid config key 'a..b'"),
    (".a=1", "Invalid config key '.a'"),
    ("'a'=1", "Invalid config key \"'a'\""),
    ("$a=1", "Invalid config key '$a'"),
    ("", "Empty update after 'with'"),
    ("  ", "Empty update after 'with'"),
])
def test_parse_updates_errors(item, fragment):
    with pytest.raises(UsageError) as info:
        parse_updates([item])
    assert fragment in str(info.value)


# Python literals as repr() writes them: the values an update can carry.
literals = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (st.lists(children, max_size=4)
                      | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=5) | st.integers(), children,
                                        max_size=4)),
    max_leaves=12)


def same(a, b) -> bool:
    """Equality that treats nan as equal to itself and tells 1, 1.0 and True apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(literals)
def test_repr_of_any_literal_round_trips(value):
    assert same(parse_value(repr(value), "key"), value)


def is_literal(value) -> bool:
    """Built only from the types ``ast.literal_eval`` produces."""
    if isinstance(value, list | tuple | set):
        return all(is_literal(v) for v in value)
    if isinstance(value, dict):
        return all(is_literal(k) and is_literal(v) for k, v in value.items())
    return value is None or isinstance(value, bool | int | float | complex | str | bytes)


@settings(max_examples=500, deadline=None)
@given(st.text() | st.from_regex(r"[\[\]{}(),:'\"0-9a-z.+\-_ =]{0,20}", fullmatch=True))
def test_parse_value_of_any_text_is_a_literal_the_text_or_a_usage_error(text):
    try:
        value = parse_value(text, "key")
    except UsageError:
        return
    if isinstance(value, str) and value == text.strip():
        return  # a bare word, or a quoted string that reads as itself
    assert is_literal(value)
    assert same(parse_value(repr(value), "key"), value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12) | st.builds(lambda k, v: f"{k}={v}", st.text(max_size=8),
                                                 st.text(max_size=8)), max_size=5))
def test_parse_updates_of_any_items_is_correct_or_a_usage_error(items):
    try:
        updates, named = parse_updates(items)
    except UsageError:
        return
    expected_updates = {}
    expected_named = []
    for item in items:
        key, eq, text = item.partition("=")
        if eq:
            expected_updates[key.strip()] = parse_value(text, key.strip())
        else:
            expected_named.append(item.strip())
    assert named == expected_named
    assert updates.keys() == expected_updates.keys()
    assert all(same(updates[k], expected_updates[k]) for k in updates)
    for key in updates:
        assert key and not key.startswith(".") and " " not in key and ".." not in key


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}",
                                     fullmatch=True), literals, max_size=4))
def test_updates_written_with_repr_come_back(entries):
    updates, named = parse_updates([f"{k}={v!r}" for k, v in entries.items()])
    assert named == [] and updates.keys() == entries.keys()
    assert all(same(updates[k], entries[k]) for k in entries)


# --- options ----------------------------------------------------------------------------------

def test_exit_statuses_are_distinct():
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 3)
    assert UsageError.exit_code == EXIT_USAGE


def test_every_option_parses_into_the_options():
    ex = make_experiment()
    parsed = parse_argv(ex, [
        "print_config", "with", "lr=0.5", "big", "-d", "-D", "-l", "debug", "-c", "a comment",
        "-b", "2.5", "-u", "-q", "-f", "-P", "4", "-e", "-p", "-i", "run7", "-n", "name",
        "-C", "sys", "--tag", "a", "--tag=b", "--notes", "some notes", "-F", "dir", "-s",
        "sqlite:///x.db", "-m", "host:27017:db", "-t", "tiny", "-S", "s3://bkt/runs", "-G",
        "gs://bkt/runs", "--store", "file:///tmp/s",
        "--no-system-metrics", "--capture-env", "HOME,PATH"])
    assert parsed.command == "print_config"
    assert parsed.config_updates == {"lr": 0.5} and parsed.named_configs == ["big"]
    options = parsed.options
    expected = {
        "debug": True, "pdb": True, "loglevel": "DEBUG", "comment": "a comment",
        "beat_interval": 2.5, "unobserved": True, "queue": True, "force": True, "priority": 4,
        "enforce_clean": True, "print_config": True, "id": "run7", "name": "name",
        "capture": "sys", "tag": ["a", "b"], "notes": "some notes", "file_storage": "dir",
        "sql": "sqlite:///x.db", "mongo_db": "host:27017:db", "tiny_db": "tiny",
        "s3": "s3://bkt/runs", "gcs": "gs://bkt/runs", "store": "file:///tmp/s",
        "no_system_metrics": True, "capture_env": ["HOME", "PATH"], "help": False,
    }
    assert {k: options[k] for k in expected} == expected


def test_long_forms_and_defaults():
    ex = make_experiment()
    parsed = parse_argv(ex, ["--loglevel=20", "--comment=c", "--beat-interval=0",
                             "--priority=-1", "--id=3", "--name=n", "--capture=no",
                             "--file_storage=d", "--sql=postgresql://h/db", "--mongo_db=db",
                             "--debug", "--pdb", "--unobserved", "--queue", "--force",
                             "--enforce_clean", "--print-config"])
    assert parsed.command is None and parsed.config_updates == {}
    assert parsed.options["loglevel"] == 20 and parsed.options["beat_interval"] == 0.0
    assert parsed.options["priority"] == -1 and parsed.options["sql"] == "postgresql://h/db"
    defaults = parse_argv(ex, []).options
    assert defaults["tag"] == [] and defaults["store"] is None and defaults["force"] is False


def test_tags_in_every_spelling_and_position():
    ex = make_experiment()
    parsed = parse_argv(ex, ["main", "--tag", "a", "with", "lr=1", "x=2", "-p", "--tag=b",
                             "--tag", "c", "--ta=d", "-c", "--tag"])
    # docopt alone would repeat tags here; '-c --tag' is a comment that reads "--tag"
    assert parsed.options["tag"] == ["a", "b", "c", "d"]
    assert parsed.options["comment"] == "--tag" and parsed.options["print_config"]
    assert parsed.config_updates == {"lr": 1, "x": 2}
    # -t is Sacred's --tiny_db, never a tag
    parsed = parse_argv(ex, ["-t", "runs_db"])
    assert parsed.options["tiny_db"] == "runs_db" and parsed.options["tag"] == []


def test_short_flags_bundle():
    parsed = parse_argv(make_experiment(), ["-pufl", "WARNING"])
    assert parsed.options["print_config"] and parsed.options["unobserved"]
    assert parsed.options["force"] and parsed.options["loglevel"] == "WARNING"


def test_help_forms():
    ex = make_experiment()
    assert parse_argv(ex, ["-h"]).help and parse_argv(ex, ["--help"]).help
    parsed = parse_argv(ex, ["help", "main"])
    assert parsed.help and parsed.help_command == "main"
    assert parse_argv(ex, ["help"]).help_command is None


USAGE = ("Usage:\n"
         "  prog [(with UPDATE...)] [--tag=TAG]... [options]\n"
         "  prog help [COMMAND]\n"
         "  prog (-h | --help)\n"
         "  prog COMMAND [(with UPDATE...)] [--tag=TAG]... [options]\n"
         "Run 'prog --help' for the options and commands.")


@pytest.mark.parametrize("argv, problem", [
    (["--foo"], "Unknown option '--foo'. Did you mean '--force'?"),
    (["--forse"], "Unknown option '--forse'. Did you mean one of '--force', '--store'?"),
    (["-x"], "Unknown option '-x'."),
    (["-U"], "Unknown option '-U'. Did you mean '-u'? (flags are case-sensitive)"),
    (["-pz"], "Unknown option '-z' (in '-pz')."),
    (["--c"], "Option '--c' is ambiguous: it could be --capture, --capture-env, --comment."),
    (["-l"], "Option -l needs a value: -l LEVEL."),
    (["--loglevel"], "Option --loglevel needs a value: --loglevel=LEVEL."),
    (["--force=1"], "Option --force is a switch and takes no value (got '--force=1')."),
    (["-c", "a", "--comment", "b"], "Option --comment is given more than once."),
    (["main", "lr=1"], "Unexpected argument 'lr=1'. Config updates follow the word 'with': "
                       "prog main with lr=1"),
    (["main", "other"], "Unexpected argument 'other'. Config updates follow the word 'with': "
                        "prog main with other"),
    (["help", "a", "b"], "'help' takes at most one command: prog help [COMMAND]."),
])
def test_usage_errors_name_the_problem_and_show_the_usage(argv, problem):
    with pytest.raises(UsageError) as info:
        parse_argv(make_experiment(), argv, "prog")
    assert str(info.value) == f"{problem}\n{USAGE}"


def test_lone_with():
    with pytest.raises(UsageError) as info:
        parse_argv(make_experiment(), ["with"], "prog")
    assert str(info.value).startswith(
        "'with' must be followed by at least one update: key=value, the name of a named "
        "config, or a config file.\nUsage:\n  prog [(with UPDATE...)]")
    with pytest.raises(UsageError) as info:
        parse_argv(make_experiment(), ["main", "with"], "prog")
    assert str(info.value).startswith("'with' must be followed by at least one update")


@pytest.mark.parametrize("argv, message", [
    (["-l", "loud"], "Unknown log level 'loud' for -l/--loglevel. Use DEBUG, INFO, WARNING, "
                     "ERROR, CRITICAL or a number."),
    (["-l", "DEBG"], "Unknown log level 'DEBG' for -l/--loglevel. Did you mean 'DEBUG'? Use "
                     "DEBUG, INFO, WARNING, ERROR, CRITICAL or a number."),
    (["-C", "tee"], "Invalid capture mode 'tee' for -C/--capture: use fd, sys or no."),
    (["-b", "soon"], "-b/--beat-interval takes a number of seconds (0 or more), got 'soon'."),
    (["-b", "-1"], "-b/--beat-interval takes a number of seconds (0 or more), got '-1'."),
    (["-b", "inf"], "-b/--beat-interval takes a number of seconds (0 or more), got 'inf'."),
    (["-P", "high"], "-P/--priority takes an integer, got 'high'."),
    (["-i", "../x"], "-i/--id takes a plain name or number, got '../x'."),
    (["--id=.."], "-i/--id takes a plain name or number, got '..'."),
    (["with", "x=[1,"], "Cannot parse the value of 'x': '[1,' ('[' was never closed)."),
])
def test_invalid_option_values(argv, message):
    with pytest.raises(UsageError) as info:
        parse_argv(make_experiment(), argv, "prog")
    assert str(info.value).startswith(message)


# --- custom options ---------------------------------------------------------------------------

def test_cli_option_with_sacreds_signature():
    @cli_option("-o", "--own-flag", is_flag=True)
    def own_flag(value, run):
        """Remember the flag.

        More text that is not part of the help."""
        run.append(("own_flag", value))

    @cli_option("-w", "--own-value")
    def own_value(value, run):
        """Take a value."""
        run.append(("own_value", value))

    @cli_option("--long-only", arg="N")
    def long_only(value, run):
        """Only a long form."""

    assert isinstance(own_flag, CLIOption)
    assert own_flag.get_flags() == ("-o", "--own-flag") and own_flag.is_flag
    assert own_flag.get_description() == "Remember the flag."
    assert own_value.arg == "OWN_VALUE" and long_only.get_flags() == (None, "--long-only")
    ex = make_experiment(additional_cli_options=[own_flag, own_value, long_only])
    help_text = usage_text(ex, "prog")
    assert "  -o --own-flag" in help_text and "Remember the flag." in help_text
    assert "  -w OWN_VALUE --own-value=OWN_VALUE" in help_text
    assert "  --long-only=N" in help_text
    parsed = parse_argv(ex, ["-o", "-w", "3", "with", "lr=1"])
    assert parsed.custom == {"--own-flag": True, "--own-value": "3"}
    calls = []
    for opt in (own_flag, own_value):
        opt.apply(parsed.custom[opt.long_flag], calls)
    assert calls == [("own_flag", True), ("own_value", "3")]
    assert parse_argv(ex, []).custom == {}


@pytest.mark.parametrize("short, long", [("o", "--x"), ("-oo", "--x"), ("-o", "x"),
                                         ("-o", "-x"), ("-o", "")])
def test_cli_option_rejects_malformed_flags(short, long):
    with pytest.raises(ValueError):
        cli_option(short, long)(lambda value, run: None)


def test_custom_option_clashing_with_a_builtin_is_reported():
    @cli_option("-c", "--config-file")
    def clash(value, run):
        """Clashes with -c/--comment."""

    ex = make_experiment(additional_cli_options=[clash])
    with pytest.raises(LabbookError, match="The option -c of .* is already taken by --comment"):
        parse_argv(ex, [])
    ex = make_experiment(additional_cli_options=[object()])
    with pytest.raises(LabbookError, match="give options made with the @cli_option decorator"):
        parse_argv(ex, [])


# --- help text --------------------------------------------------------------------------------

def test_usage_text_lists_every_option_and_command():
    ex = make_experiment()

    @ex.command
    def evaluate():
        """Evaluate the model.

        Details."""

    text = usage_text(ex, "prog")
    for opt in BUILTIN_OPTIONS:
        assert opt.long_flag in text and (opt.short_flag is None or opt.short_flag in text)
    assert "  evaluate             Evaluate the model.\n" in text
    assert "  main                 (default)\n" in text
    assert ex.get_usage("prog") == text


def test_docstrings_with_dashes_or_usage_do_not_confuse_docopt():
    ex = make_experiment()
    ex.doc = "Notes:\n- a bullet that looks like an option\nUsage: not the real usage\n"
    assert "[options]\n\nNotes:\n- a bullet" in usage_text(ex, "prog")
    assert parse_argv(ex, ["with", "lr=2"]).config_updates == {"lr": 2}


def test_ingredient_commands_are_listed_dotted():
    data = Ingredient("data")

    @data.command
    def fetch():
        """Download the data."""

    ex = make_experiment(ingredients=[data])
    assert "  data.fetch           Download the data.\n" in usage_text(ex, "prog")
    assert parse_argv(ex, ["data.fetch"]).command == "data.fetch"


# --- formatting of the built-in commands ------------------------------------------------------

def test_format_config_plain_and_coloured():
    config = {"a": 1, "b": "x", "seed": 3, "sub": {"c": [1, 2]}}
    summary = ConfigSummary(config, added={"sub.c"}, modified={"a"},
                            typechanged={"b": (int, str)}, docs={"a": "the a"})
    # doc comments where Sacred puts them: two spaces after the entry padded to 35 characters
    assert format_config(config, summary, colour=False) == (
        "Configuration (modified, added, typechanged, doc):\n"
        f"{'  a = 1 (modified)':<35}  # the a\n"
        "  b = 'x' (typechanged)\n"
        f"{'  seed = 3':<35}  # the random seed for this experiment\n"
        "  sub:\n"
        "    c = [1, 2] (added)")
    coloured = format_config(config, summary, colour=True)
    # as Sacred colours it: the whole line, the dimmed comment inside
    assert f"\033[34m{'  a = 1':<35}  \033[2m# the a\033[0m\033[0m" in coloured
    assert "\033[31m  b = 'x'\033[0m" in coloured and "\033[32m    c = [1, 2]\033[0m" in coloured
    assert "(modified)" not in coloured
    # colour follows the terminal by default; a pytest capture is not one
    assert format_config(config, summary) == format_config(config, summary, colour=False)
    # an entry longer than 35 characters gets its comment four spaces after it
    long = {"a_rather_long_name": "with a long value"}
    text = format_config(long, ConfigSummary(long, docs={"a_rather_long_name": "doc"}),
                         colour=False)
    assert "  a_rather_long_name = 'with a long value'    # doc" in text


def test_format_dependencies():
    info = {"dependencies": ["numpy==1.26.0", "torch==2.1", "odd"],
            "sources": [["exp.py", "abc"], ["lib/util.py", "def"]],
            "repositories": [{"url": "git@host:r.git", "commit": "c0ffee", "dirty": True}]}
    assert format_dependencies(info) == (
        "Dependencies:\n"
        "  numpy  == 1.26.0\n"
        "  torch  == 2.1\n"
        "  odd    == <unknown>\n"
        "\n"
        "Sources:\n"
        "  exp.py       abc\n"
        "  lib/util.py  def\n"
        "\n"
        "Version Control:\n"
        "  git@host:r.git  c0ffee  dirty")
    assert format_dependencies({}) == "Dependencies:\n  (none)\n\nSources:\n  (none)"


def test_format_named_configs_without_any():
    assert format_named_configs(make_experiment()) == (
        "Named Configurations (doc):\n  No named configs")


# --- run_commandline in-process ---------------------------------------------------------------

def test_run_commandline_returns_the_run_and_exits_with_the_status(capsys):
    ex = make_experiment()

    @ex.command
    def boom():
        raise RuntimeError("boom")

    @ex.command
    def stop():
        raise KeyboardInterrupt

    run = ex.run_commandline("prog with 'lr=0.5' -u -C no")
    assert run.status == "COMPLETED" and run.result == 0.5
    assert ex.run_commandline(["prog", "help"]) is None
    assert "Usage:\n  prog [(with UPDATE...)]" in capsys.readouterr().out
    for argv, status, stderr in [
            (["prog", "--nope"], EXIT_USAGE, "Error: Unknown option '--nope'."),
            (["prog", "boom", "-u", "-C", "no"], EXIT_FAILED,
             "Traceback (most recent calls WITHOUT labbook internals):\n"),
            (["prog", "stop", "-u", "-C", "no"], EXIT_INTERRUPTED, "")]:
        with pytest.raises(SystemExit) as info:
            ex.run_commandline(argv)
        assert info.value.code == status
        assert capsys.readouterr().err.startswith(stderr)
