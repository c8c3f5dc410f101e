"""The code on the documentation pages runs, and prints what the pages say it prints.

The ```python blocks of a page run in order in one namespace, in a fresh temporary directory,
as a reader would run them one after the other. Each block is written to a file and run from
there, as in a script or a notebook: config scopes read their own source, which code typed into
the plain ``python`` prompt does not have. A ```text block right after a python block is what
that block printed; the two are compared line by line (trailing spaces ignored). Shell commands
whose output a page shows run with this Python's ``labbook`` command (``python -m
labbook.cli.main``).

Blocks that need a server the tests do not have are skipped, saying why.
"""
from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
LABBOOK = [sys.executable, "-m", "labbook.cli.main"]


@dataclass
class Block:
    page: str
    index: int  # among the page's python blocks
    line: int  # where its fence opens
    code: str
    output: str | None  # the ```text block right after it, if any

    def __str__(self) -> str:
        return f"docs/{self.page} python block {self.index} (line {self.line})"


def read_page(page: str) -> str:
    with open(os.path.join(DOCS, page), encoding="utf-8") as fh:
        return fh.read()


def fences(page: str) -> list[tuple[str, str, int, int, int]]:
    """Every fenced block: (language, body, line, start offset, end offset)."""
    text = read_page(page)
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, m.start(), m.end())
            for m in FENCE.finditer(text)]


def python_blocks(page: str) -> list[Block]:
    text = read_page(page)
    found = fences(page)
    blocks = []
    for i, (lang, body, line, _, end) in enumerate(found):
        if lang != "python":
            continue
        output = None
        if i + 1 < len(found):
            next_lang, next_body, _, next_start, _ = found[i + 1]
            if next_lang == "text" and not text[end:next_start].strip():
                output = next_body
        blocks.append(Block(page, len(blocks), line, body, output))
    return blocks


def shown_output(page: str, first_command: str, adjacent: bool = True
                 ) -> tuple[list[str], str | None]:
    """The command lines of the shell block starting with ``first_command``, and the text
    block right after it (with ``adjacent=False``, the next text block, after some prose)."""
    text = read_page(page)
    found = fences(page)
    for i, (lang, body, _, _, end) in enumerate(found):
        if lang in ("bash", "sh", "console") and body.startswith(first_command):
            output = None
            if i + 1 < len(found) and found[i + 1][0] == "text" \
                    and (not adjacent or not text[end:found[i + 1][3]].strip()):
                output = found[i + 1][1]
            return [c for c in body.splitlines() if c.strip()], output
    raise AssertionError(f"docs/{page} has no shell block starting with {first_command!r}")


def run_block(block: Block, namespace: dict, directory: str, filename: str | None = None):
    """Run a block as a file in ``directory``: (what it printed, the exception or None)."""
    path = os.path.join(directory, filename or
                        f"{block.page.replace('.md', '')}_block{block.index}.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(block.code)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(block.code, path, "exec"), namespace)
    except Exception as exc:
        exc.formatted = traceback.format_exc()
        return printed.getvalue(), exc
    return printed.getvalue(), None


def differences(claimed: str, actual: str) -> str:
    """'' when the printed text is the one the page shows (trailing spaces ignored)."""
    want = [line.rstrip() for line in claimed.rstrip("\n").splitlines()]
    got = [line.rstrip() for line in actual.rstrip("\n").splitlines()]
    if want == got:
        return ""
    return "\n".join(difflib.unified_diff(want, got, "the page shows", "the code printed",
                                          lineterm=""))


def report(key: str, problem: str) -> None:
    """Fail with ``problem`` (``key`` names the page and the block, for the reader)."""
    pytest.fail(f"{key}: {problem}")


def labbook(*args: str, cwd, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    return subprocess.run([*LABBOOK, *args], cwd=cwd, env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=120)


def is_server_error(exc: BaseException) -> bool:
    return type(exc).__name__ in ("SqlConnectionError", "MongoConnectionError")


# -- docs/analysis.md --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    """The whole page run top to bottom in an empty directory, as the page says it was.

    Section 1 records the runs every later section reads (the file store ``runs/``)."""
    workdir = tmp_path_factory.mktemp("analysis_page")
    namespace: dict = {"__name__": "analysis_page"}
    results = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.delenv("LABBOOK_STORE", raising=False)
        for block in python_blocks("analysis.md"):
            printed, error = run_block(block, namespace, str(workdir))
            results.append((block, printed, error))
    return SimpleNamespace(dir=workdir, ns=namespace, results=results)


def test_analysis_page_has_its_blocks():
    blocks = python_blocks("analysis.md")
    assert len(blocks) >= 10
    assert "ex.run(" in blocks[0].code and blocks[0].output is None  # the setup
    assert sum(block.output is not None for block in blocks) >= 9  # they show what they print


def test_analysis_blocks_run(analysis):
    failed = [f"{block}:\n{error.formatted}" for block, _, error in analysis.results if error]
    assert not failed, "\n".join(failed)


def test_analysis_blocks_print_what_the_page_shows(analysis):
    problems = []
    for block, printed, error in analysis.results:
        if block.output is not None and not error:
            diff = differences(block.output, printed)
            if diff:
                problems.append(f"{block}:\n{diff}")
    assert not problems, "\n\n".join(problems)


def test_analysis_key_statements(analysis):
    ns = analysis.ns
    assert [run.id for run in ns["runs"]] == [6, 4] and len(ns["runs"]) == 2
    # "The columns are id, name, status, start_time, duration (seconds), then the flattened
    # config.* and summary.*"
    columns = list(ns["df"].columns)
    assert columns[:5] == ["id", "name", "status", "start_time", "duration"]
    rest = columns[5:]
    kinds = [c.split(".", 1)[0] for c in rest]
    assert kinds == sorted(kinds) and set(kinds) == {"config", "summary"}, rest
    assert {"config.lr", "config.optimizer", "config.epochs", "summary.accuracy",
            "summary.loss"} <= set(rest)
    assert ns["df"]["duration"].dtype.kind == "f" and len(ns["df"]) == 6
    assert (ns["best"].id, ns["best"].config.optimizer) == (6, "adam")
    assert len(ns["rows"]) == 30 and ns["rows"][-1]["_step"] == 29


def test_analysis_tags_and_notes_are_written_to_the_store(analysis):
    from labbook.stores import open_store

    doc = open_store(str(analysis.dir / "runs")).get(6)
    assert "best" in doc["meta"]["tags"]
    assert doc["meta"]["notes"] == "highest accuracy of the sweep"


def test_analysis_comparison_page_is_self_contained(analysis):
    with open(analysis.dir / "lr-0.1.html", encoding="utf-8") as fh:
        page = fh.read()
    assert page == analysis.ns["html"] and "http" not in page
    assert page.count('<img src="data:image/png;base64,') >= 2  # loss and accuracy


def test_analysis_all_jobs_columns(analysis):
    from labbook import get_metrics_for_all_jobs

    # "One row per run, oldest first: job_id, status, start_time, completed_time, the summary
    # metrics and, with include_input_params, the flattened config"
    frame = get_metrics_for_all_jobs("sweep", include_input_params=True,
                                     store=str(analysis.dir / "runs"))
    assert list(frame.columns[:4]) == ["job_id", "status", "start_time", "completed_time"]
    assert set(frame.columns[4:6]) == {"accuracy", "loss"}
    assert {"lr", "optimizer", "epochs", "seed"} <= set(frame.columns[6:])
    assert frame["job_id"].tolist() == [1, 2, 3, 4, 5, 6]
    plain = get_metrics_for_all_jobs("sweep", store=str(analysis.dir / "runs"))
    assert list(plain.columns) == list(frame.columns[:6])
    # "An experiment without runs is a ValueError naming it."
    with pytest.raises(ValueError, match="'no_such_experiment'"):
        get_metrics_for_all_jobs("no_such_experiment", store=str(analysis.dir / "runs"))


def test_analysis_api_without_url_uses_the_embedded_default(tmp_path, monkeypatch):
    from labbook import Api

    from labbook.errors import NoStoreError
    from labbook.stores import open_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    with pytest.raises(NoStoreError, match="No store at sqlite:///labbook.db"):
        Api()  # reading creates nothing
    open_store().check()  # what recording the first run does
    assert Api().url == "sqlite:///labbook.db"
    monkeypatch.setenv("LABBOOK_STORE", "runs")
    os.mkdir(tmp_path / "runs")
    assert Api().url == "file://" + str(tmp_path / "runs")


def test_analysis_shell_listing_prints_what_the_page_shows(analysis):
    commands, output = shown_output("analysis.md", "labbook ls runs")
    argv = shlex.split(commands[0], comments=True)
    proc = labbook(*argv[1:], cwd=analysis.dir)
    assert proc.returncode == 0, proc.stderr
    assert output is not None
    diff = differences(output, proc.stdout)
    assert not diff, f"docs/analysis.md section 8, {commands[0]}:\n{diff}"


def test_analysis_shell_commands_run(analysis):
    commands, _ = shown_output("analysis.md", "labbook ls runs")
    by_name = {shlex.split(c, comments=True)[1]: shlex.split(c, comments=True) for c in commands}
    assert set(by_name) == {"ls", "compare", "export", "plot", "open", "rm"}
    cwd = analysis.dir
    for name in ("compare", "export", "plot", "open"):
        proc = labbook(*by_name[name][1:], cwd=cwd)
        assert proc.returncode == 0, f"{' '.join(by_name[name])}: {proc.stderr}"
    assert (cwd / "cmp.html").exists() and (cwd / "loss.png").exists()
    assert len((cwd / "runs.csv").read_text().splitlines()) == 7  # a header and six runs
    opened = labbook(*by_name["open"][1:], cwd=cwd).stdout
    assert str(cwd / "runs" / "6") in opened
    # "labbook rm refuses to delete without --yes when standard input is not a terminal"
    refused = labbook(*by_name["rm"][1:], cwd=cwd)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert (cwd / "runs" / "2" / "run.json").exists()
    # "An unknown id is an error with exit status 1."
    assert labbook("show", "99", "--store", "runs", cwd=cwd).returncode == 1


def test_analysis_sync_says_what_it_did_as_the_page_shows(analysis):
    commands, output = shown_output("analysis.md", "labbook sync runs sqlite:///team.db",
                                    adjacent=False)  # "It says what it did, for example"
    assert output is not None
    need_servers = [c for c in commands if re.search(r"postgresql://|mongodb://", c)]
    print("not run (needs a PostgreSQL or MongoDB server):", *need_servers, sep="\n  ")
    # the page's sample output, as a pattern: the same words, any numbers
    summary = re.escape(output.splitlines()[0])
    summary = re.sub(r"\d+", r"\\d+", summary)
    first = shlex.split(commands[0], comments=True)
    proc = labbook(*first[1:], cwd=analysis.dir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.fullmatch(summary, lines[0]), (lines[0], output)
    assert "copied 6 new run(s), updated 0, 0 unchanged" in lines[0]
    assert lines[1:] == [f"  new: run {i} -> {i}" for i in range(1, 7)]
    again = labbook(*first[1:], cwd=analysis.dir)  # "a second sync copies nothing"
    assert re.fullmatch(summary, again.stdout.splitlines()[0])
    assert "copied 0 new run(s), updated 0, 6 unchanged (0 metric point(s)" in again.stdout

    from labbook.stores import open_store
    from labbook.sync import sync

    copies = open_store("sqlite:///" + str(analysis.dir / "team.db")).find()
    assert sorted(d["meta"]["synced_from"]["id"] for d in copies) == [1, 2, 3, 4, 5, 6]
    assert {d["meta"]["synced_from"]["store"] for d in copies} == \
        {"file://" + str(analysis.dir / "runs")}
    # "From Python: labbook.sync.sync(src, dst, filter=None, dry_run=False) returns the same
    # counts."
    result = sync(str(analysis.dir / "runs"), "sqlite:///" + str(analysis.dir / "team.db"))
    assert (len(result.created), len(result.updated), len(result.unchanged)) == (0, 0, 6)


# -- docs/observers.md -------------------------------------------------------------------------

SERVER_URL = re.compile(r"""(["'])(postgresql|postgres|mysql|mariadb|mongodb)://[^"']*\1""")


def test_observers_page_python_blocks(tmp_path, monkeypatch):
    from labbook import Experiment

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    # the snippets add observers to the reader's experiment, ``ex``
    namespace = {"__name__": "observers_page", "ex": Experiment("observers_page")}
    skipped = []
    for block in python_blocks("observers.md"):
        printed, error = run_block(block, namespace, str(tmp_path))
        if error is not None and is_server_error(error):
            # the rest of the block must work: run it again with SQLite in place of the server
            needs = str(error).splitlines()[0]
            substitute = f'"sqlite:///{tmp_path / "substitute.db"}"'
            stand_in = Block(block.page, block.index, block.line,
                             SERVER_URL.sub(substitute, block.code), block.output)
            printed, error = run_block(stand_in, namespace, str(tmp_path),
                                       f"observers_block{block.index}_sqlite.py")
            skipped.append(f"{block} needs a database server the tests do not have ({needs}); "
                           "it was run with a SQLite URL in its place")
        if error is not None:
            report(f"observers.md: python block {block.index}",
                   f"{block} fails:\n{error.formatted}")
        if block.output is not None:
            diff = differences(block.output, printed)
            if diff:
                report(f"observers.md: python block {block.index}", f"{block}:\n{diff}")
    for note in skipped:  # what ran in place of the server, for the reader of the log
        print(note)


# -- docs/quickstart.md ------------------------------------------------------------------------

def test_quickstart_python_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    blocks = python_blocks("quickstart.md")
    assert len(blocks) == 3
    namespace = {"__name__": "hello"}  # imported, not run as a script: automain does nothing
    printed, error = run_block(blocks[0], namespace, str(tmp_path), "hello.py")  # "Save as"
    assert error is None, error and error.formatted
    for block in blocks[1:]:
        printed, error = run_block(block, namespace, str(tmp_path))
        assert error is None, f"{block}:\n{error.formatted}"
    # "From Python, ex.run() returns the finished Run"
    run = namespace["run"]
    assert (run.result, run.status, run.config["message"], run.summary["length"]) == \
        (10, "COMPLETED", "Hello Ana!", 10)


def console_sessions(page: str) -> list[tuple[str, list[str]]]:
    """(``$ command``, the lines shown after it) from the page's console blocks."""
    sessions = []
    for lang, body, _, _, _ in fences(page):
        if lang != "console":
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                sessions.append((line[2:], []))
            elif sessions:
                sessions[-1][1].append(line)
    return sessions


LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")


def normalized(line: str) -> str:
    """A printed line with the random seed and runs of spaces evened out."""
    line = re.sub(r"seed = \d+", "seed = N", line.rstrip())
    return re.sub(r"(?<=\S)  +", "  ", line)


def shown_matches(shown: list[str], actual: list[str]) -> bool:
    """The lines are the same, or, where the page elides with '...', appear in that order."""
    shown = [normalized(line) for line in shown]
    actual = [normalized(line) for line in actual]
    if "..." not in shown:
        return shown == actual
    wanted = iter(actual)
    return all(any(line == got for got in wanted) for line in shown if line != "...")


@pytest.mark.parametrize("command, shown", console_sessions("quickstart.md"),
                         ids=[c for c, _ in console_sessions("quickstart.md")])
def test_quickstart_console_output(tmp_path, command, shown):
    hello = python_blocks("quickstart.md")[0]
    (tmp_path / "hello.py").write_text(hello.code, encoding="utf-8")
    argv = shlex.split(command)
    assert argv[:2] == ["python", "hello.py"], command
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # the page shows the terminal: log lines come on stderr, the program's output on stdout
    shown_logs = [line for line in shown if LOG_LINE.match(line)]
    shown_out = [line for line in shown if not LOG_LINE.match(line)]
    problems = []
    if not shown_matches(shown_out, proc.stdout.splitlines()):
        problems.append(f"stdout:\n{proc.stdout}")
    if shown_logs and not shown_matches(shown_logs + ["..."] * ("..." in shown),
                                        proc.stderr.splitlines()):
        problems.append(f"stderr:\n{proc.stderr}")
    if problems:
        report(f"quickstart.md: $ {command}",
               f"docs/quickstart.md shows for `$ {command}`:\n" + "\n".join(shown) +
               "\n\nbut it printed\n" + "\n".join(problems))


# -- docs/examples.md --------------------------------------------------------------------------

def example_rows() -> list[tuple[str, list[str]]]:
    """(example, the commands of its row, in order) from the table of docs/examples.md."""
    rows = []
    for row in read_page("examples.md").splitlines():
        cells = row.split("|")
        if row.startswith("| [") and len(cells) >= 5:
            name = re.match(r" \[([^\]]+)\]", cells[1]).group(1)
            rows.append((name, re.findall(r"`([^`]*python examples/[^`]*)`", cells[-2])))
    return rows


@pytest.mark.parametrize("name, commands", example_rows(), ids=[n for n, _ in example_rows()])
def test_examples_page_commands_run(request, tmp_path, name, commands):
    """Each command of docs/examples.md runs as written, from a copy of the checkout's root
    (a MongoDB URL in a command is pointed at the test suite's own server)."""
    assert commands, f"docs/examples.md gives no command for {name}"
    if any("LABBOOK_EXAMPLE_MONGO_URL=" in command for command in commands):
        url = request.getfixturevalue("mongo_url")
        commands = [re.sub(r"LABBOOK_EXAMPLE_MONGO_URL=\S+",
                           f"LABBOOK_EXAMPLE_MONGO_URL={shlex.quote(url)}", c) for c in commands]
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples")
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp_path),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("LABBOOK_STORE", None)
    for command in commands:
        shell_command = re.sub(r"(^|&& |; )python ", rf"\g<1>{shlex.quote(sys.executable)} ",
                               command)
        proc = subprocess.run(["bash", "-c", shell_command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
        assert proc.stdout.strip(), f"{command} printed nothing"


# -- docs/artifacts.md -------------------------------------------------------------------------

def test_artifacts_page_python_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    namespace = {"__name__": "artifacts_page"}
    blocks = python_blocks("artifacts.md")
    assert blocks, "docs/artifacts.md has no python block"
    for block in blocks:
        printed, error = run_block(block, namespace, str(tmp_path))
        if error is not None:
            report(f"artifacts.md: python block {block.index}",
                   f"{block} fails:\n{error.formatted}")
        if block.output is not None:
            diff = differences(block.output, printed)
            if diff:
                report(f"artifacts.md: python block {block.index}", f"{block}:\n{diff}")
