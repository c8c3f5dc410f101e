"""The experiment command line as users meet it: real scripts run in subprocesses.

The scripts are the examples and the purpose-built ``tests/cli/scripts/cli_exp.py``.
"""
from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import pty
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")
CLI_EXP = os.path.join(HERE, "scripts", "cli_exp.py")

USAGE = ("Usage:\n"
         "  {p} [(with UPDATE...)] [--tag=TAG]... [options]\n"
         "  {p} help [COMMAND]\n"
         "  {p} (-h | --help)\n"
         "  {p} COMMAND [(with UPDATE...)] [--tag=TAG]... [options]\n"
         "Run '{p} --help' for the options and commands.\n")


def script_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LABBOOK_") and k not in ("RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = ROOT
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(script: str, *args: str, cwd=None, merge: bool = False, stdin: str | None = None):
    """Run ``script`` with ``args``; ``merge`` sends stderr into stdout (to check order)."""
    path = script if os.path.isabs(script) else os.path.join(EXAMPLES, script)
    return subprocess.run(
        [sys.executable, path, *args], cwd=cwd or ROOT, env=script_env(), text=True,
        input=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE, timeout=60)


def exp(*args: str, **kwargs):
    return run(CLI_EXP, *args, **kwargs)


def shown_config(proc) -> dict:
    """The config that the ``show`` command printed."""
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


DEFAULTS = {"value": 1, "msg": "hello", "nested": {"a": 1, "b": {"c": 2}}, "items": [1, 2],
            "flag": False, "nothing": None, "dataset": {"path": "data.csv", "size": 10}}


# --- log lines and their order ----------------------------------------------------------------

def test_log_lines_in_sacreds_order():
    # -C sys: with fd capture stdout and stderr are copied by separate threads, so their
    # interleaving in one pipe is not defined; each stream on its own is checked below.
    proc = run("hello_config_scope.py", "-C", "sys", merge=True)
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "WARNING - hello_cs - No observers have been added to this run",
        "INFO - hello_cs - Running command 'main'",
        "INFO - hello_cs - Started",
        "Hello world!",
        "INFO - hello_cs - Completed after 0:00:00",
    ]


def test_log_lines_with_the_default_capture_and_a_result():
    proc = exp("answer")
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "WARNING - cli_exp - No observers have been added to this run",
        "INFO - cli_exp - Running command 'answer'",
        "INFO - cli_exp - Started",
        "INFO - cli_exp - Result: 42",
        "INFO - cli_exp - Completed after 0:00:00",
    ]


def test_file_storage_gives_an_id_and_writes_sacreds_layout(tmp_path):
    proc = run("hello_config_scope.py", "-F", "runs", "with", "recipient=Bob", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello Bob!\n"
    assert proc.stderr.splitlines() == [
        "INFO - hello_cs - Running command 'main'",
        'INFO - hello_cs - Started run with ID "1"',
        "INFO - hello_cs - Completed after 0:00:00",
    ]
    run_dir = tmp_path / "runs" / "1"
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "COMPLETED" and doc["command"] == "main"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipient"] == "Bob" and config["message"] == "Hello Bob!"
    assert "Hello Bob!" in (run_dir / "cout.txt").read_text()
    # the next run gets the next id; --file_storage is the long form
    proc = run("hello_world.py", "--file_storage=runs", cwd=tmp_path)
    assert 'Started run with ID "2"' in proc.stderr
    assert json.loads((tmp_path / "runs" / "2" / "run.json").read_text())["status"] == \
        "COMPLETED"


def test_run_metadata_options_reach_the_stored_run(tmp_path):
    proc = exp("-F", "runs", "-c", "a comment", "-n", "nm", "--notes", "some notes", "--tag", "a",
               "--tag", "b", "-P", "3", "-i", "7", "-b", "0.05", "--capture-env", "HOME",
               "with", "value=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'Started run with ID "7"' in proc.stderr
    doc = json.loads((tmp_path / "runs" / "7" / "run.json").read_text())
    meta = doc["meta"]
    assert (meta["comment"], meta["name"], meta["notes"], meta["priority"]) == \
        ("a comment", "nm", "some notes", 3)
    assert meta["tags"] == ["a", "b"] and meta["command"] == "main"
    assert meta["options"]["--beat-interval"] == 0.05  # Sacred's spelling of this key
    assert meta["config_updates"] == {"value": 5} and meta["named_configs"] == []
    assert json.loads((tmp_path / "runs" / "7" / "config.json").read_text())["value"] == 5


def test_unobserved_and_queue(tmp_path):
    proc = exp("-u", "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "msg='hello' value=1\n"
    assert proc.stderr.splitlines() == ["INFO - cli_exp - Running command 'main'",
                                        "INFO - cli_exp - Started",
                                        "INFO - cli_exp - Completed after 0:00:00"]
    assert not (tmp_path / "runs").exists()
    proc = exp("-q", "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""  # queued, not run
    assert proc.stderr.splitlines()[-1] == 'INFO - cli_exp - Queued run with ID "1"'
    assert json.loads((tmp_path / "runs" / "1" / "run.json").read_text())["status"] == "QUEUED"


def test_loglevel():
    proc = exp("answer", "-l", "WARNING")
    assert proc.stderr == "WARNING - cli_exp - No observers have been added to this run\n"
    proc = exp("answer", "--loglevel=ERROR")
    assert proc.returncode == 0 and proc.stderr == ""
    proc = exp("answer", "-l", "debug")
    assert "INFO - cli_exp - Result: 42" in proc.stderr


def doc(entry: str, comment: str) -> str:
    """A print_config line with a doc comment, where Sacred puts it: two spaces after the
    entry padded to 35 characters."""
    return f"{entry:<35}  # {comment}"


def test_print_config_option_prints_before_running():
    proc = run("hello_config_scope.py", "-p", "-C", "sys", "with", "recipient=Bob", "seed=1",
               merge=True)
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "WARNING - hello_cs - No observers have been added to this run",
        "INFO - hello_cs - Running command 'main'",
        "Configuration (modified, added, typechanged, doc):",
        doc("  message = 'Hello Bob!'", "the whole greeting"),
        doc("  recipient = 'Bob' (modified)", "who gets greeted"),
        doc("  seed = 1 (modified)", "the random seed for this experiment"),
        "-" * 79,
        "INFO - hello_cs - Started",
        "Hello Bob!",
        "INFO - hello_cs - Completed after 0:00:00",
    ]


@pytest.mark.parametrize("mode", ["fd", "sys", "no"])
def test_capture_modes(mode, tmp_path):
    proc = exp("-C", mode, "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "msg='hello' value=1\n"
    cout = (tmp_path / "runs" / "1" / "cout.txt").read_text()
    assert ("msg='hello' value=1" in cout) == (mode != "no")


def test_force_accepts_new_entries_with_a_warning():
    proc = exp("show", "-f", "with", "newkey=3")
    assert shown_config(proc) == {**DEFAULTS, "newkey": 3}
    # on the experiment's base logger (the root logger here), as Sacred logs its warnings
    assert proc.stderr.splitlines()[0] == \
        'WARNING - root - Added new config entry "newkey" that is not used anywhere'


def test_custom_options_are_applied_and_listed(tmp_path):
    proc = exp("-o", "--extra", "5", "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["own_flag=True", "extra='5'", "msg='hello' value=1"]
    info = json.loads((tmp_path / "runs" / "1" / "info.json").read_text())
    assert info == {"own_flag": True}
    help_text = exp("--help").stdout
    assert "  -o --own-flag                       A switch of this experiment (records " \
           "itself in run.info).\n" in help_text
    assert "  -x EXTRA --extra=EXTRA              An option of this experiment that takes a " \
           "value.\n" in help_text


def test_pdb_on_failure():
    proc = exp("fail", "-D", stdin="p value\nq\n")
    assert proc.returncode == 1
    assert "(Pdb)" in proc.stdout and "-> return value / 0" in proc.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_enforce_clean(tmp_path):
    shutil.copy(os.path.join(EXAMPLES, "hello_world.py"), tmp_path)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=tmp_path, check=True)
    script = str(tmp_path / "hello_world.py")
    proc = run(script, "-e", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "Hello world!\n"
    with open(script, "a") as f:
        f.write("# changed\n")
    proc = run(script, "--enforce_clean", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"Error: git repository {tmp_path} has uncommitted changes: "
                           "hello_world.py. Commit them or run without enforce_clean (-e).\n")


# --- failures and interrupts ------------------------------------------------------------------

def test_failed_run(tmp_path):
    proc = exp("fail", "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[:3] == ["INFO - cli_exp - Running command 'fail'",
                         'INFO - cli_exp - Started run with ID "1"',
                         "ERROR - cli_exp - Failed after 0:00:00!"]
    assert lines[3] == "Traceback (most recent calls WITHOUT labbook internals):"
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert 'cli_exp.py", line' in proc.stderr and "in divide" in proc.stderr
    # labbook's frames are filtered: no frame is a file of the package (the checkout itself
    # may sit in a directory named labbook, as git clone names it)
    package = os.path.join(ROOT, "labbook") + os.sep
    frames = re.findall(r'File "([^"]+)"', proc.stderr)
    assert frames and not [f for f in frames if f.startswith(package)]
    doc = json.loads((tmp_path / "runs" / "1" / "run.json").read_text())
    assert doc["status"] == "FAILED"
    # -d shows every frame
    proc = exp("fail", "-d")
    assert proc.returncode == 1
    assert os.path.join("labbook", "captured.py") in proc.stderr


def test_missing_value_deep_inside_is_a_failed_run():
    proc = exp("needs_deep")
    assert proc.returncode == 1
    assert "ERROR - cli_exp - Failed after 0:00:00!" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(
        "labbook.errors.MissingConfigError: helper() is missing value(s) for "
        "'another_undefined'")


def test_error_in_config_code_is_a_failure_with_a_traceback():
    proc = exp("with", "broken")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent calls WITHOUT labbook internals):\n")
    assert "in broken\n    value = 1 / 0" in proc.stderr
    assert proc.stderr.endswith("ZeroDivisionError: division by zero\n")


@pytest.mark.parametrize("command", ["interrupt", "timeout"])
def test_interrupted_runs(command, tmp_path):
    proc = exp(command, "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[-1] == "WARNING - cli_exp - Aborted after 0:00:00!"
    status = json.loads((tmp_path / "runs" / "1" / "run.json").read_text())["status"]
    assert status == {"interrupt": "INTERRUPTED", "timeout": "TIMEOUT"}[command]


# --- usage errors -----------------------------------------------------------------------------

P = "cli_exp.py"
NAMED = "big, broken, dataset.small, from_dict, from_file"
# Sacred's order: built-in commands, then the experiment's and its ingredients' as defined
COMMANDS = ("print_config, print_dependencies, save_config, print_named_configs, show, answer, "
            "fail, interrupt, timeout, needs, needs_deep, main, dataset.describe")
USAGE_ERRORS = [
    (["--foo"], "Unknown option '--foo'. Did you mean '--force'?\n" + USAGE.format(p=P)),
    (["-Z"], "Unknown option '-Z'.\n" + USAGE.format(p=P)),
    (["frobnicate"], f'Command "frobnicate" not found. Available commands are: {COMMANDS}\n'),
    (["anser"], f'Command "anser" not found. Available commands are: {COMMANDS}\n'
                "Did you mean 'answer'?\n"),
    (["help", "nope"], f'Command "nope" not found. Available commands are: {COMMANDS}\n'),
    (["with", "x=[1,"], "Cannot parse the value of 'x': '[1,' ('[' was never closed). Values "
                        "are Python literals: numbers, 'strings', [lists], {dicts}, "
                        "True/False/None; words and text without quotes or brackets are "
                        "strings.\n"),
    (["with", "msg=f(x) + 1"], "Cannot parse the value of 'msg': 'f(x) + 1' (not a literal; "
                               "names, calls and operators are not evaluated). Values are "
                               "Python literals: numbers, 'strings', [lists], {dicts}, "
                               "True/False/None; words and text without quotes or brackets "
                               "are strings. For a string, quote it: with \"msg='f(x) + 1'\"\n"),
    (["with", "bigg"], f"Named config not found: \"bigg\". Available config values are: "
                       f"{tuple(NAMED.split(', '))!r}\nDid you mean 'big'? Available named "
                       f"configs: {NAMED}.\n"),
    (["with", "dataset.smal"], f"Named config not found: \"dataset.smal\". Available config "
                               f"values are: {tuple(NAMED.split(', '))!r}\nDid you mean "
                               f"'dataset.small'? Available named configs: {NAMED}.\n"),
    (["with", "missing.yaml"], "Config file 'missing.yaml' not found (relative paths are read "
                               "from the current directory, {cwd}).\n"),
    (["with", "show"], "'show' is a command, not a named config: the command goes before "
                       "'with': cli_exp.py show with ...\n"),
    (["needs"], "needs() is missing value(s) for 'undefined_entry': not passed as an argument "
                "and not found in the configuration (searched 'undefined_entry'). Add the "
                "entry to a config scope, or pass it explicitly. On the command line: "
                "cli_exp.py needs with undefined_entry=VALUE\n"),
    (["main", "value=3"], "Unexpected argument 'value=3'. Config updates follow the word "
                          "'with': cli_exp.py main with value=3\n" + USAGE.format(p=P)),
    (["with"], "'with' must be followed by at least one update: key=value, the name of a "
               "named config, or a config file.\n" + USAGE.format(p=P)),
    (["-l", "loud"], "Unknown log level 'loud' for -l/--loglevel. Use DEBUG, INFO, WARNING, "
                     "ERROR, CRITICAL or a number.\n"),
    (["-C", "tee"], "Invalid capture mode 'tee' for -C/--capture: use fd, sys or no.\n"),
]


@pytest.mark.parametrize("argv, message", USAGE_ERRORS, ids=[" ".join(a) for a, _ in
                                                             USAGE_ERRORS])
def test_usage_errors(argv, message, tmp_path):
    proc = exp(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "Error: " + message.replace("{cwd}", str(tmp_path))


def test_config_typo():
    proc = exp("with", "valeu=3")
    assert proc.returncode == 2 and proc.stdout == ""
    message = proc.stderr
    # Sacred's lines first, then labbook's hints
    assert message.splitlines()[:4] == ["Error: Added new config entry that is not used anywhere",
                                        "Conflicting configuration values:", "  valeu=3",
                                        "Did you mean 'value'?"]
    assert "-f/--force" in message and "Traceback" not in message


def test_debug_shows_the_traceback_of_a_usage_error():
    proc = exp("-d", "with", "valeu=3")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Traceback (most recent call last):\n")
    assert "labbook.errors.ConfigAddedError: " in proc.stderr
    assert "\nError: Added new config entry that is not used anywhere\n" in proc.stderr


# --- updates ----------------------------------------------------------------------------------

def test_updates_of_every_literal_type():
    proc = exp("show", "with", "value=2.5", "msg=adam", "items=[1, (2, 3), 'x']",
               "nested={'a': 5, 'b': {'c': None}}", "flag=True", "nothing=-7", "dataset.size=1e3",
               "dataset.path=data/train.csv")
    assert shown_config(proc) == {
        **DEFAULTS, "value": 2.5, "msg": "adam", "items": [1, [2, 3], "x"],
        "nested": {"a": 5, "b": {"c": None}}, "flag": True, "nothing": -7,
        "dataset": {"path": "data/train.csv", "size": 1000.0}}
    proc = exp("show", "with", "value=None", "msg=''", "flag=False", "items=[]", "nothing={}",
               "dataset.size=-0x10")
    assert shown_config(proc) == {**DEFAULTS, "value": None, "msg": "", "flag": False,
                                  "items": [], "nothing": {},
                                  "dataset": {"path": "data.csv", "size": -16}}


def test_quoting_as_users_type_it():
    # the argv a shell makes from:  with "msg='hi there'" 'nested.b.c="x y"' value='"7"'
    proc = exp("show", "with", "msg='hi there'", 'nested.b.c="x y"', 'value="7"',
               "dataset.path='a=b c'")
    config = shown_config(proc)
    assert config["msg"] == "hi there" and config["nested"]["b"]["c"] == "x y"
    assert config["value"] == "7" and config["dataset"]["path"] == "a=b c"


def test_nested_and_ingredient_updates_reach_the_functions():
    proc = exp("dataset.describe", "with", "dataset.path='x.csv'", "dataset.size=3")
    assert proc.returncode == 0 and proc.stdout == "dataset x.csv with 3 rows\n"
    proc = run("captured_functions.py", "with", "optimizer.lr=0.5", "name=Bob")
    expected = ["Hello, Bob!", "Hello, Alice?", "lr=0.5 momentum=0.9"]
    assert proc.stdout.splitlines()[:3] == expected


def test_named_configs_from_code_dicts_files_and_ingredients():
    assert shown_config(exp("show", "with", "big"))["value"] == 100
    assert shown_config(exp("show", "with", "from_dict"))["msg"] == "from a dict"
    config = shown_config(exp("show", "with", "from_file"))
    assert (config["msg"], config["value"]) == ("from a yaml file", 7)
    assert shown_config(exp("show", "with", "dataset.small"))["dataset"]["size"] == 2
    # later named configs win, explicit updates win over all of them
    config = shown_config(exp("show", "with", "big", "from_file", "msg=last"))
    assert (config["msg"], config["value"]) == ("last", 7)
    proc = run("named_configs.py", "with", "large", "layers=2")
    assert proc.stdout == "2 layers x 512 units = 1024\n"


def test_config_files_as_updates(tmp_path):
    (tmp_path / "upd.yaml").write_text("value: 3\ndataset:\n  size: 4\n")
    json_file = os.path.join(HERE, "scripts", "updates.json")
    config = shown_config(exp("show", "with", "upd.yaml", json_file, "value=9", cwd=tmp_path))
    assert config["value"] == 9 and config["dataset"]["size"] == 4
    assert config["msg"] == "from json" and config["nested"]["b"]["c"] == 30


# --- commands ---------------------------------------------------------------------------------

def test_print_config_marks_changes():
    proc = exp("print_config", "-f", "with", "value='x'", "dataset.path=1", "newkey=3",
               "msg=hi", "seed=5")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        # Sacred's order: plain values first, then dicts, each sorted by key
        "Configuration (modified, added, typechanged, doc):",
        "  flag = False",
        "  items = [1, 2]",
        doc("  msg = 'hi' (modified)", "a message"),
        "  newkey = 3 (added)",
        "  nothing = None",
        doc("  seed = 5 (modified)", "the random seed for this experiment"),
        doc("  value = 'x' (typechanged)", "any value"),
        "  dataset:",
        doc("    path = 1 (typechanged)", "where the data lives"),
        doc("    size = 10", "number of rows"),
        doc("  nested:", "a nested dict"),
        "    a = 1",
        "    b:",
        "      c = 2"]
    assert proc.stderr.splitlines() == [
        # as Sacred: ingredient by ingredient (the experiment last), on the ingredient's
        # logger with the path inside it
        'WARNING - dataset - Changed type of config entry "path" from str to int',
        'WARNING - root - Changed type of config entry "value" from int to str',
        'WARNING - root - Added new config entry "newkey" that is not used anywhere',
        "INFO - cli_exp - Running command 'print_config'",
        "INFO - cli_exp - Started",
        "INFO - cli_exp - Completed after 0:00:00",
    ]


def test_print_config_of_the_example():
    proc = run("hello_config_scope.py", "print_config", "with", "seed=1")
    assert proc.stdout.splitlines() == [
        "Configuration (modified, added, typechanged, doc):",
        doc("  message = 'Hello world!'", "the whole greeting"),
        doc("  recipient = 'world'", "who gets greeted"),
        doc("  seed = 1 (modified)", "the random seed for this experiment")]


def test_print_config_is_coloured_on_a_terminal():
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, CLI_EXP, "print_config", "with", "msg=hi"],
                            stdout=slave, stderr=subprocess.DEVNULL, env=script_env(),
                            cwd=ROOT)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = output.decode()
    assert text.startswith("Configuration (\x1b[34mmodified\x1b[0m, \x1b[32madded\x1b[0m, "
                           "\x1b[31mtypechanged\x1b[0m, \x1b[2mdoc\x1b[0m):")
    # Sacred's colouring: the whole line, with the dimmed doc comment inside it
    entry = "  msg = 'hi'"
    assert f"\x1b[34m{entry:<35}  \x1b[2m# a message\x1b[0m\x1b[0m" in text
    assert "(modified)" not in text


def test_print_dependencies(tmp_path):
    shutil.copy(os.path.join(EXAMPLES, "hello_world.py"), tmp_path)
    script = tmp_path / "hello_world.py"
    digest = hashlib.md5(script.read_bytes()).hexdigest()
    proc = run(str(script), "print_dependencies", cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0] == "Dependencies:"
    assert all(re.fullmatch(r"  \S+ +== \S+|  \(none\)", line)
               for line in lines[1:lines.index("")])
    assert lines[lines.index("Sources:") + 1] == f"  hello_world.py  {digest}"
    if not os.path.isdir(os.path.join(ROOT, ".git")):
        return
    # in a git repository (this project's checkout) the commit is listed
    proc = run("hello_world.py", "print_dependencies")
    vc = proc.stdout.split("Version Control:\n", 1)[1]
    assert re.fullmatch(r"  \S.* [0-9a-f]{40}  (clean|dirty)\n", vc)


def test_save_config(tmp_path):
    proc = exp("save_config", "with", "value=4", "seed=2", cwd=tmp_path)
    assert proc.returncode == 0
    # Sacred's line, on the command's own logger
    assert proc.stderr.splitlines()[-2] == 'INFO - save_config - Saving config to "config.json"'
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {**DEFAULTS, "value": 4, "seed": 2}
    proc = exp("save_config", "with", "config_filename=out.yaml", "seed=2", cwd=tmp_path)
    assert proc.returncode == 0
    saved = (tmp_path / "out.yaml").read_text()
    assert "config_filename" not in saved and "seed: 2" in saved
    # a saved config is a valid update
    saved_json = str(tmp_path / "config.json")
    assert shown_config(exp("show", "with", saved_json))["value"] == 4


def test_print_named_configs():
    proc = exp("print_named_configs")
    # Sacred's layout: the docstring three spaces after the name
    assert proc.stdout == ("Named Configurations (doc):\n"
                           "  big   # A big value.\n"
                           "  broken   # A named config with a bug.\n"
                           "  from_dict\n"
                           "  from_file\n"
                           "  dataset.small   # Only two rows.\n")
    proc = run("named_configs.py", "print_named_configs")
    assert proc.stdout == ("Named Configurations (doc):\n"
                           "  large   # A bigger network.\n"
                           "  tiny\n")


def test_user_and_ingredient_commands():
    proc = run("commands.py", "scream", "with", "message='psst'")
    assert proc.returncode == 0 and proc.stdout == "PSST!\n"
    assert "No observers" in proc.stderr
    proc = run("commands.py", "whisper")  # unobserved=True: no warning
    assert proc.stdout == "hello...\n" and "No observers" not in proc.stderr
    proc = exp("dataset.describe", "with", "dataset.small")
    assert proc.stdout == "dataset data.csv with 2 rows\n"
    assert "INFO - cli_exp - Running command 'dataset.describe'" in proc.stderr


def test_help():
    proc = run("commands.py", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    # Sacred's order: usage first, then the docstring, options, arguments and commands
    assert text.startswith("Usage:\n  commands.py [(with UPDATE...)] [--tag=TAG]... [options]\n")
    assert "[options]\n\nCommands: functions runnable by name besides the main function." in text
    assert text.index("\nOptions:\n") < text.index("\nArguments:\n") < text.index(
        "\nCommands:\n  print_config ")
    # built-in commands first, then the experiment's in the order they were defined
    names = [line.split()[0] for line in text.split("\nCommands:\n")[1].splitlines() if line]
    assert names == ["print_config", "print_dependencies", "save_config",
                     "print_named_configs", "scream", "whisper", "main"]
    assert "  main                 (default)\n" in text
    assert "  scream               Say the message loudly.\n" in text
    assert "  -F DIR --file_storage=DIR           Store the run in this directory" in text
    assert run("commands.py", "-h").stdout == text
    assert run("commands.py", "help").stdout == text
    proc = run("commands.py", "help", "whisper")
    assert proc.returncode == 0
    # Sacred's text: the signature, then the docstring indented
    assert proc.stdout == ("whisper(message)\n"
                           "    Say the message quietly (never recorded by observers).\n\n")
    proc = exp("help", "dataset.describe")
    assert proc.stdout == "describe(path, size)\n    Describe the dataset.\n\n"


# --- --queued ---------------------------------------------------------------------------------

QUEUED_SCRIPT = '''"""An experiment that shows which observers its run has."""
from labbook import Experiment

ex = Experiment("queued_cli")


@ex.automain
def main(_run):
    print("observers:", [type(o).__name__ for o in _run.observers])
    return 7
'''


def test_queued_wraps_the_observers_of_a_script_run(tmp_path):
    script = tmp_path / "queued_exp.py"
    script.write_text(QUEUED_SCRIPT)
    proc = run(str(script), "--queued", "-F", "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "observers: ['QueuedObserver']\n"
    assert 'INFO - queued_cli - Started run with ID "1"' in proc.stderr
    doc = json.loads((tmp_path / "runs" / "1" / "run.json").read_text())
    assert doc["status"] == "COMPLETED" and doc["result"] == 7
    assert doc["meta"]["options"]["--queued"] is True
    assert not (tmp_path / "labbook_failed_runs").exists()  # everything was delivered
    # without the flag the observer is used as it is; -q stays --queue
    proc = run(str(script), "-F", "runs", cwd=tmp_path)
    assert proc.stdout == "observers: ['FileStorageObserver']\n"
    assert json.loads((tmp_path / "runs" / "2" / "run.json").read_text()
                      )["meta"]["options"]["--queued"] is False


def test_queued_is_in_the_help(tmp_path):
    script = tmp_path / "queued_exp.py"
    script.write_text(QUEUED_SCRIPT)
    for args in (["--help"], ["help"]):
        text = run(str(script), *args, cwd=tmp_path).stdout
        assert ("  --queued                            Deliver observer events from a background "
                "thread, retrying;\n") in text
        assert "journal what cannot be delivered." in text


# -- Sacred's habits: text values, logging on the root logger -----------------------------------

LOGGING_SCRIPT = '''
import logging, sys
from labbook import Experiment

ex = Experiment("logs")
if "--own-logger" in sys.argv:
    sys.argv.remove("--own-logger")
    ex.logger = logging.getLogger("mine")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s - %(name)s - %(message)s"))
    ex.logger.addHandler(handler)
    ex.logger.setLevel(logging.INFO)
ex.add_config(message="hello")


@ex.capture
def helper(message):
    return message


@ex.automain
def main(message, _log):
    logging.getLogger("my.module").info("module says %s", message)
    _log.info("main says %s", helper())
    return message
'''


def test_text_with_spaces_is_a_string_as_in_sacred(tmp_path):
    script = tmp_path / "logs.py"
    script.write_text(LOGGING_SCRIPT)
    proc = run(str(script), "with", "message=Ciao world!")
    assert proc.returncode == 0, proc.stderr
    assert "INFO - main - main says Ciao world!" in proc.stderr
    assert "INFO - logs - Result: Ciao world!" in proc.stderr


def test_logging_goes_through_the_root_logger_as_in_sacred(tmp_path):
    script = tmp_path / "logs.py"
    script.write_text(LOGGING_SCRIPT)
    proc = run(str(script))
    lines = proc.stderr.splitlines()
    # the program's own module loggers print in the same format
    assert "INFO - my.module - module says hello" in lines
    # captured functions log on the base logger's child named after them, as in Sacred
    assert "INFO - main - main says hello" in lines
    assert not any(line.startswith("DEBUG") for line in lines)
    # -l sets the level for everything; DEBUG shows Sacred's lines around captured calls
    debug = run(str(script), "-l", "DEBUG").stderr.splitlines()
    for line in ('DEBUG - logs - Using capture mode "no"', "DEBUG - logs - Starting Heartbeat",
                 "DEBUG - main - Started", "DEBUG - helper - Started",
                 "DEBUG - helper - Finished after 0:00:00.",
                 "DEBUG - logs - Stopping Heartbeat"):
        assert line in debug, line
    quiet = run(str(script), "-l", "WARNING").stderr.splitlines()
    assert quiet == ["WARNING - logs - No observers have been added to this run"]
    # ex.logger: the run logs on its child named after the experiment, as in Sacred
    own = run(str(script), "--own-logger").stderr.splitlines()
    assert "INFO - mine.logs - Running command 'main'" in own
    assert "INFO - mine.main - main says hello" in own
    # a named run (-n) logs under its name, as Sacred's does; its functions keep theirs
    named = run(str(script), "-n", "trial-3").stderr.splitlines()
    assert "INFO - trial-3 - Running command 'main'" in named
    assert "INFO - trial-3 - Completed after 0:00:00" in named
    assert "INFO - main - main says hello" in named


INGREDIENT_LOGGING_SCRIPT = '''
from labbook import Experiment, Ingredient

data = Ingredient("data")


@data.config
def data_cfg(_log):
    _log.info("data scope runs")
    rows = 3


@data.capture
def load(rows, _log):
    _log.info("loading %d rows", rows)


ex = Experiment("logs", ingredients=[data])


@ex.config
def cfg(_log):
    _log.info("experiment scope runs")
    size = 1


@ex.automain
def main(size):
    load()
'''


def test_loggers_of_scopes_and_ingredient_functions_are_named_as_in_sacred(tmp_path):
    script = tmp_path / "logs.py"
    script.write_text(INGREDIENT_LOGGING_SCRIPT)
    lines = run(str(script), "-l", "DEBUG").stderr.splitlines()
    # a config scope logs on the base logger (the root logger here), an ingredient's on its
    # child named after the ingredient; an ingredient's function on "<ingredient>.<function>"
    assert lines[:2] == ["INFO - data - data scope runs", "INFO - root - experiment scope runs"]
    # Sacred says which capture mode it uses before it names the command
    assert lines[2:5] == ["WARNING - logs - No observers have been added to this run",
                          'DEBUG - logs - Using capture mode "no"',
                          "INFO - logs - Running command 'main'"]
    assert lines.index("DEBUG - data.load - Started") < lines.index(
        "INFO - data.load - loading 3 rows") < lines.index(
        "DEBUG - data.load - Finished after 0:00:00.")


def test_the_log_level_of_one_run_does_not_stick_to_the_next():
    from labbook import Experiment

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []  # as in a script that configured no logging
    try:
        ex = Experiment("sticky")
        ex.main(lambda: None)
        ex.run(options={"--loglevel": "WARNING"})
        assert root.level == logging.WARNING
        ex.run()
        assert root.level == logging.INFO  # each run starts from INFO, as Sacred's do
    finally:
        root.handlers, level = saved
        root.setLevel(level)


WARNINGS_SCRIPT = '''
from labbook import Experiment, Ingredient

data = Ingredient("data")


@data.config
def data_cfg():
    rows = 3


@data.capture
def load(rows, extra=None):
    return rows


ex = Experiment("warns", ingredients=[data])


@ex.config
def cfg():
    name = "x"


@ex.automain
def main(name):
    load()
'''


def test_config_warnings_come_from_the_entrys_ingredient_as_in_sacred(tmp_path):
    script = tmp_path / "warns.py"
    script.write_text(WARNINGS_SCRIPT)
    proc = run(str(script), "with", "name=3", "data.rows=many", "data.extra=1", "-l", "WARNING")
    assert proc.returncode == 0, proc.stderr
    # the ingredient's entries first (added, then changed types), on its logger with the
    # path inside it; the experiment's last, on the base (root) logger
    assert proc.stderr.splitlines() == [
        'WARNING - data - Added new config entry: "extra"',
        'WARNING - data - Changed type of config entry "rows" from int to str',
        'WARNING - root - Changed type of config entry "name" from str to int',
        "WARNING - warns - No observers have been added to this run"]
