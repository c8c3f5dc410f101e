#!/usr/bin/env python3
"""Run Sacred's own examples under Sacred and under labbook and show where the output differs.

    python tools/sacred_examples.py SACRED_EXAMPLES --sacred-python /path/to/sacred-venv/bin/python

``SACRED_EXAMPLES`` is a Sacred checkout (its ``examples/`` folder is used) or a folder holding
Sacred's example scripts. Each example is copied twice into a fresh temporary folder: once as it
is (run by ``--sacred-python``, an interpreter with ``sacred==0.8.7`` installed), once with its
``sacred`` imports rewritten to ``labbook`` (run by ``--labbook-python``, this interpreter by
default). Both copies run with the same command lines, the ones each example's docstring
suggests; their stdout and stderr are normalised (durations, temporary paths, random seeds,
host names, ids and times) and compared. The table at the end says, per command line, ``same``
or ``differs``; ``--diff`` prints a unified diff under each one that differs.

Nothing of Sacred's is stored in this repository: the examples are read from the folder given.
docs/sacred_compatibility.md ("How this is checked") lists the table of the last pass.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# example file -> command lines (after the script name) its docstring or purpose suggests
INVOCATIONS: dict[str, list[list[str]]] = {
    "01_hello_world.py": [[], ["-l", "WARNING"], ["print_config"], ["help"], ["-h"],
                          ["-F", "my_runs"], ["-u"], ["-d"], ["-n", "first"], ["save_config"],
                          ["-c", "a comment", "-l", "WARNING"], ["nonsense_command"],
                          ["with", "typo=1"]],
    "02_hello_config_dict.py": [[], ["with", "message=Ciao world!"], ["print_config"],
                                ["print_config", "with", "message=Ciao world!"]],
    "03_hello_config_scope.py": [[], ["with", "message=Ciao world!"], ["with", "recipient=Bob"],
                                 ["print_config", "with", "recipient=Bob"],
                                 ["-p", "with", "recipient=Bob"], ["with", "recipient=3"],
                                 ["with", "recipient"], ["with", "recipient=[1, 2]"]],
    "04_captured_functions.py": [["-l", "WARNING"], [], ["print_config"]],
    "05_my_commands.py": [["greet"], ["shout"], ["greet", "with", "name=Jane", "-l", "WARNING"],
                          ["main"], ["help", "greet"], ["help", "shout"], ["-h"]],
    "06_randomness.py": [["with", "seed=12345", "-l", "WARNING"],
                         ["with", "seed=12345", "numbers=3", "-l", "WARNING"],
                         ["with", "seed=12345", "reverse=True", "numbers=3", "-l", "WARNING"],
                         ["print_config", "with", "seed=12345"]],
    "07_magic.py": [["print_config"], ["print_config", "with", "C=2.0"],
                    ["-l", "WARNING"], ["with", "kernel=linear", "-l", "WARNING"]],
    "08_less_magic.py": [[]],
    "ingredient.py": [[], ["print_config"], ["dataset.stats"],
                      ["dataset.stats", "with", "dataset.foo=3"],
                      ["with", "dataset.normalize=False"]],
    "named_config.py": [[], ["with", "rude"], ["print_config", "with", "rude"],
                        ["print_named_configs"], ["with", "rude", "recipient=you"],
                        ["with", "polite"]],
    "modular.py": [[], ["print_config"], ["with", "dataset.paths.base=/data/"]],
    "captured_out_filter.py": [[]],
    "log_example.py": [[], ["with", "got_gizmo=True"], ["with", "got_gizmo=True", "-l", "DEBUG"],
                       ["-l", "ERROR"]],
}
# files an example reads from its own folder
DATA_FILES = ("config.json",)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
IMPORT = re.compile(r"^(\s*)(from|import)(\s+)sacred\b", re.MULTILINE)
NORMALISE = [
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?"), "TIME"),   # timestamps
    (re.compile(r"\d+:\d\d:\d\d(\.\d+)?"), "H:MM:SS"),                       # durations
    # a seed in print_config's column (its width depends on the number's digits)
    (re.compile(r"(seed = )\d+(?!\d)( +(?=\S))?"),
     lambda m: m.group(1) + "SEED" + ("  " if m.group(2) else "")),
    (re.compile(r"(seed\s*[=:]\s*)\d+"), r"\1SEED"),                         # random seeds
    (re.compile(r"0x[0-9a-f]{6,}"), "0xADDR"),                               # object addresses
    (re.compile(r"(Result:\s*)\S+"), r"\1RESULT"),                           # scores that vary
    (re.compile(r"[ \t]+$", re.MULTILINE), ""),
]


def rewrite_imports(text: str) -> str:
    """The example's text with ``sacred`` imports turned into ``labbook`` imports."""
    return IMPORT.sub(r"\1\2\3labbook", text)


def normalise(text: str, folder: str) -> str:
    """Text with what differs from run to run (paths, times, seeds, hosts) replaced by names."""
    text = text.replace(os.path.realpath(folder), "DIR").replace(folder, "DIR")
    host = os.uname().nodename
    if host:
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "HOST", text)
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def run_once(python: str, script_text: str, name: str, args: list[str], source: Path,
             timeout: float) -> str:
    """Run one copy of the example in a fresh folder; its normalised exit code and output."""
    with tempfile.TemporaryDirectory(prefix="sacred-example-") as folder:
        for data in DATA_FILES:
            if (source / data).is_file():
                shutil.copy(source / data, folder)
        Path(folder, name).write_text(script_text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LABBOOK_", "PYTHONPATH", "COLUMNS"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            proc = subprocess.run([python, name, *args], cwd=folder, env=env, text=True,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"TIMEOUT after {timeout:.0f} s\n"
        text = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        return normalise(text, folder)


def _uncoloured(text: str) -> str:
    """Text without colour codes, labbook's words for them and the padding they shift."""
    text = re.sub(r" \((modified|added|typechanged)\)", "", ANSI.sub("", text))
    return re.sub(r" {2,}", "  ", text)


def reason(sacred_out: str, labbook_out: str) -> str:
    """A short cause for the table: the first line that differs."""
    if _uncoloured(sacred_out) == _uncoloured(labbook_out):
        return "only colour codes (Sacred's even without a terminal)"
    for line in difflib.unified_diff(sacred_out.splitlines(), labbook_out.splitlines(),
                                     lineterm="", n=0):
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            return ANSI.sub("", line)[:70]
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sacred_examples", type=Path,
                        help="a Sacred checkout or a folder of Sacred's example scripts")
    parser.add_argument("--sacred-python", required=True,
                        help="an interpreter with sacred==0.8.7 installed")
    parser.add_argument("--labbook-python", default=sys.executable,
                        help="an interpreter with labbook installed (default: this one)")
    parser.add_argument("--only", default="", help="comma-separated example file names")
    parser.add_argument("--diff", action="store_true", help="print a diff for each difference")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    args = parser.parse_args(argv)

    source = args.sacred_examples
    if (source / "examples").is_dir():
        source = source / "examples"
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    names = [n for n in INVOCATIONS if (source / n).is_file() and (not only or n in only)]
    if not names:
        print(f"no Sacred examples found in {source}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        original = (source / name).read_text(encoding="utf-8")
        rewritten = rewrite_imports(original)
        for cmd in INVOCATIONS[name]:
            theirs = run_once(args.sacred_python, original, name, cmd, source, args.timeout)
            ours = run_once(args.labbook_python, rewritten, name, cmd, source, args.timeout)
            label = " ".join([name, *cmd])
            rows.append((label, theirs == ours, reason(theirs, ours)))
            print(f"{'same' if theirs == ours else 'DIFFERS':8} {label}", flush=True)
            if theirs != ours and args.diff:
                sys.stdout.writelines(difflib.unified_diff(
                    theirs.splitlines(keepends=True), ours.splitlines(keepends=True),
                    fromfile="sacred", tofile="labbook"))
    width = max(len(label) for label, _, _ in rows)
    print()
    print(f"{'example and command line':{width}}  result")
    for label, same, why in rows:
        print(f"{label:{width}}  {'same' if same else 'differs: ' + why}")
    differing = sum(1 for _, same, _ in rows if not same)
    print(f"\n{len(rows) - differing} of {len(rows)} command lines give the same output")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
