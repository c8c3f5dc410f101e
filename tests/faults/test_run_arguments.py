"""Command-line values and ex.run options that were read wrongly without a word: '1#2' (a
comment), integers beyond Python's int-to-text limit, --capture-env as text, unknown options."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from labbook import Experiment
from labbook.arg_parser import parse_value
from labbook.errors import OptionValueError, UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    from labbook import Experiment
    ex = Experiment("values")

    @ex.config
    def cfg():
        v = 0

    @ex.automain
    def main(v):
        print("v =", repr(v))
""")


def _script(tmp_path, *args):
    path = tmp_path / "exp.py"
    path.write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABBOOK_")}
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, str(path), *args, "-F", str(tmp_path / "runs")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_hash_after_a_literal_is_refused_with_how_to_quote(tmp_path):
    proc = _script(tmp_path, "with", "v=1#2")
    assert proc.returncode == UsageError.exit_code == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: Cannot parse the value of 'v': '1#2' ('#' outside quotes starts a comment, "
        "which would drop the rest). Values are Python literals: numbers, 'strings', [lists], "
        "{dicts}, True/False/None; words and text without quotes or brackets are strings. For a "
        "string, quote it: with \"v='1#2'\"")
    assert not (tmp_path / "runs").exists()  # refused before any run was recorded
    quoted = _script(tmp_path, "with", "v='1#2'")
    assert quoted.returncode == 0, quoted.stderr
    assert "v = '1#2'" in quoted.stdout


@pytest.mark.parametrize("text, expected", [
    ("run#3", "run#3"),        # a bare word keeps its '#'
    ("'a#b'", "a#b"),
    ("['x#y', 1]", ["x#y", 1]),
    ("#", "#"),
])
def test_hash_inside_words_and_strings_is_kept(text, expected):
    assert parse_value(text, "v") == expected


@pytest.mark.parametrize("text", ["[1, 2] # more", "1 #2", "{'a': 1}#"])
def test_comment_after_structured_literals_is_refused(text):
    with pytest.raises(UsageError, match="'#' outside quotes starts a comment"):
        parse_value(text, "v")


def test_5000_digit_hex_literal_is_a_clear_error_not_a_traceback(tmp_path):
    text = "0x" + "f" * 5000
    proc = _script(tmp_path, "with", f"v={text}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: The value of 'v' is an integer of about 6021 decimal digits, beyond Python's "
        f"limit of {sys.get_int_max_str_digits()} digits for integers as text, so it can be "
        "neither printed nor stored. Quote it to keep it as a string.")
    assert not (tmp_path / "runs").exists()


def test_5000_digit_decimal_literal_is_a_short_clear_error():
    with pytest.raises(UsageError) as info:
        parse_value("9" * 5000, "v")
    message = str(info.value)
    assert message.startswith("Cannot parse the value of 'v': '" + "9" * 60 + "... (5000 "
                              "characters)' (an integer beyond Python's limit of ")
    assert len(message) < 500


def test_big_integers_within_the_limit_are_exact():
    assert parse_value("0x" + "f" * 100, "v") == int("f" * 100, 16)
    assert parse_value("[" + "9" * 300 + "]", "v") == [int("9" * 300)]


def _env_experiment():
    ex = Experiment("env")

    @ex.main
    def main(_run):
        return _run.host_info.get("ENV")
    return ex


def test_capture_env_text_in_ex_run_is_a_comma_list(monkeypatch):
    monkeypatch.setenv("LB_A", "1")
    monkeypatch.setenv("LB_B", "2")
    run = _env_experiment().run(options={"--capture-env": "LB_A,LB_B",
                                         "--no-system-metrics": True})
    assert run.result == {"LB_A": "1", "LB_B": "2"}
    assert run.meta_info["options"]["--capture_env"] == ["LB_A", "LB_B"]


@pytest.mark.parametrize("option, hint", [
    ("--colour", ""),
    ("--launcher", ""),
    ("--beat-intervl", " Did you mean '--beat-interval'?"),
    ("unobservd", " Did you mean '--unobserved'?"),
])
def test_unknown_run_options_are_refused_with_close_matches(option, hint):
    ex = _env_experiment()
    with pytest.raises(OptionValueError) as info:
        ex.run(options={option: True})
    assert str(info.value).startswith(f"Unknown run option '{option}'.{hint} Run options are "
                                      "the command line's long flags: --help, --debug,")
    assert ex.current_run is None  # refused before a run was created


def test_experiment_own_options_are_accepted_in_ex_run():
    from labbook import cli_option

    @cli_option("-o", "--own-flag", is_flag=True)
    def own_flag(value, run):
        """A switch."""

    ex = _env_experiment()
    ex.additional_cli_options.append(own_flag)
    assert ex.run(options={"--own-flag": True, "--no-system-metrics": True}).status == "COMPLETED"
