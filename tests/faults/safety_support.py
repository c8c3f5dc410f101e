"""Shared by the tests of stores checked before use, URL typos, read commands and secrets:
an experiment script written into the test's directory and run as a user runs it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = '''\
import hashlib, os, sys
from labbook import Experiment
from labbook.commandline_options import cli_option


@cli_option("--password")
def password_option(value, run):
    """A password the program needs (only its use is shown here)."""
    run.info["password_given"] = bool(value)


ex = Experiment("safety", additional_cli_options=[password_option])


@ex.config
def cfg():
    x = 1
    db_password = "unset"


@ex.main
def main(x, db_password):
    # proof that the user's code ran, and with the real value (never the value itself)
    with open(os.environ["SAFETY_MARKER"], "w") as fh:
        fh.write(hashlib.sha256(db_password.encode()).hexdigest())
    return x


if __name__ == "__main__":
    ex.run_commandline()
'''


def write_script(directory) -> str:
    path = os.path.join(str(directory), "safety_exp.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(SCRIPT)
    return path


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LABBOOK_") and k not in ("RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = ROOT
    env.update(extra)
    return env


def run_script(directory, *args: str, env: dict | None = None, timeout: float = 120):
    """Run the experiment script in ``directory`` (its working directory) with ``args``."""
    script = write_script(directory)
    marker = os.path.join(str(directory), "user_code_ran")
    environment = clean_env(SAFETY_MARKER=marker, **(env or {}))
    return subprocess.run([sys.executable, script, *args], cwd=str(directory), env=environment,
                          text=True, capture_output=True, timeout=timeout)


def run_labbook(directory, *args: str, env: dict | None = None, timeout: float = 120):
    """The ``labbook`` console script, run from ``directory``."""
    code = "import sys; from labbook.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=str(directory),
                          env=clean_env(**(env or {})), text=True, capture_output=True,
                          timeout=timeout)


def user_code_ran(directory) -> bool:
    return os.path.exists(os.path.join(str(directory), "user_code_ran"))


def closed_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]
