"""Captured output: the backspace/CR filter and the ``fd``, ``sys`` and ``no`` capture modes.

Descriptor capture is tested mostly in child processes, where fds 1 and 2 are plain pipes we
control and pytest's own capturing cannot interfere.
"""
from __future__ import annotations

import io
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import threading

import pytest

from labbook.output import (CapturedOutput, apply_backspaces_and_linefeeds, capture_output,
                            default_capture_mode)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSIX = pytest.mark.skipif(os.name != "posix", reason="descriptor capture needs POSIX")

CHILD_HEADER = textwrap.dedent("""\
    import io, json, os, subprocess, sys, threading, time
    sys.path.insert(0, {root!r})
    from labbook.output import capture_output, default_capture_mode
    RESULT = {result!r}
    def save(value):
        with open(RESULT, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
    """)


def run_child(tmp_path, body: str):
    """Run ``body`` in a fresh interpreter; return (stdout bytes, stderr bytes, saved value)."""
    result = tmp_path / "result.json"
    script = tmp_path / "child.py"
    script.write_text(CHILD_HEADER.format(root=ROOT, result=str(result))
                      + textwrap.dedent(body), encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)   # the flush paths are part of what is tested
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60,
                          cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc.stdout, proc.stderr, json.loads(result.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# apply_backspaces_and_linefeeds
# --------------------------------------------------------------------------------------------

def reference_filter(text: str) -> str:
    """A slow, obviously correct version of the same rules, to compare against."""
    lines = []
    for line in text.split("\n"):
        buf: list[str] = []
        cursor = 0
        for ch in line:
            if ch == "\r":
                cursor = 0
            elif ch == "\b":
                cursor = max(0, cursor - 1)
            else:
                if cursor < len(buf):
                    buf[cursor] = ch
                else:
                    buf.append(ch)
                cursor += 1
        lines.append("".join(buf))
    return "\n".join(lines) + ("\r" if text.endswith("\r") else "")


@pytest.mark.parametrize("raw, expected", [
    ("10%\r20%\r100%\n", "100%\n"),                        # a tqdm bar
    ("loss 0.9\rloss 0.5\rloss 0.1\ndone\n", "loss 0.1\ndone\n"),
    ("abc\bd", "abd"),
    ("ab\b\b\bc", "cb"),                                   # extra backspaces stop at the start
    ("abc\b", "abc"),                                     # a backspace moves, deletes nothing
    ("\b\bx", "x"),
    ("a\r\nb\r\n", "a\nb\n"),                              # CRLF is an ordinary newline
    ("", ""),
    ("\n\n", "\n\n"),
    ("abc\r", "abc\r"),                                    # a trailing CR is kept, once
    ("abc\r\r\r", "abc\r"),
    ("a\rb\r", "b\r"),
    ("hello\rHE", "HEllo"),                                # a shorter overwrite keeps the rest
    ("ab\n\bc", "ab\nc"),                                  # backspace never crosses a newline
    ("abcdef\rxy\bz", "xzcdef"),
    ("|\b/\b-\b\\", "\\"),                                 # a spinner
    ("plain text\nwith lines\n", "plain text\nwith lines\n"),
    ("héllo\r😀", "😀éllo"),
])
def test_filter_cases(raw, expected):
    assert apply_backspaces_and_linefeeds(raw) == expected
    assert reference_filter(raw) == expected


def test_filter_matches_reference_on_random_text():
    rng = random.Random(1234)
    alphabet = "ab\r\b\n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert apply_backspaces_and_linefeeds(text) == reference_filter(text), repr(text)


def test_filter_text_without_control_characters_is_returned_as_is():
    text = "nothing to do\n" * 10
    assert apply_backspaces_and_linefeeds(text) is text


def test_filter_handles_large_inputs():
    # Timing is not asserted; this exercises the worst cases for a quadratic implementation.
    bar = "".join(f"{i % 100:3d}% |{'#' * (i % 50):50s}|\r" for i in range(20000)) + "done\n"
    assert apply_backspaces_and_linefeeds(bar).startswith("done")
    many_cr = "x" * 100000 + "\ra" * 200000
    assert apply_backspaces_and_linefeeds(many_cr) == "a" + "x" * 99999
    backspaces = "y" * 300000 + "\b" * 299999 + "z"
    assert apply_backspaces_and_linefeeds(backspaces) == "yz" + "y" * 299998
    lines = "row\r\n" * 200000
    assert apply_backspaces_and_linefeeds(lines) == "row\n" * 200000


# --------------------------------------------------------------------------------------------
# "no" mode and argument checks
# --------------------------------------------------------------------------------------------

def test_no_mode_captures_nothing_and_leaves_streams_alone(capsys):
    before = sys.stdout
    with capture_output("no") as out:
        assert sys.stdout is before
        print("visible")
        out.flush()
    assert out.mode == "no"
    assert out.get() == ""
    assert capsys.readouterr().out == "visible\n"


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="capture mode"):
        with capture_output("tee"):
            pass


# --------------------------------------------------------------------------------------------
# "sys" mode
# --------------------------------------------------------------------------------------------

def test_sys_mode_tees_and_captures(capsys):
    original_out, original_err = sys.stdout, sys.stderr
    with capture_output("sys") as out:
        assert sys.stdout is not original_out
        print("to stdout")
        print("to stderr", file=sys.stderr)
        sys.stdout.writelines(["a", "b\n"])
        print("10%\r100%")
    assert out.mode == "sys"
    assert sys.stdout is original_out and sys.stderr is original_err
    assert out.get() == "to stdout\nto stderr\nab\n100%\n"
    seen = capsys.readouterr()
    assert seen.out == "to stdout\nab\n10%\r100%\n"     # the terminal gets the raw text
    assert seen.err == "to stderr\n"


def test_sys_mode_restores_streams_on_exception(capsys):
    original_out, original_err = sys.stdout, sys.stderr
    with pytest.raises(KeyError):
        with capture_output("sys") as out:
            print("before the crash")
            raise KeyError("boom")
    assert sys.stdout is original_out and sys.stderr is original_err
    assert out.get() == "before the crash\n"


def test_sys_mode_without_filter_keeps_raw_text(capsys):
    with capture_output("sys", filter=None) as out:
        print("10%\r100%\b")
    assert out.get() == "10%\r100%\b\n"


def test_custom_filter_is_applied(capsys):
    with capture_output("sys", filter=str.upper) as out:
        print("shout")
    assert out.get() == "SHOUT\n"


def test_tee_behaves_like_a_text_file(capsys, monkeypatch):
    class Terminal(io.StringIO):
        encoding = "latin-1"
        errors = "backslashreplace"

        def isatty(self):
            return True

        def fileno(self):
            return 42

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with capture_output("sys") as out:
        tee = sys.stdout
        assert tee.isatty() is True
        assert tee.fileno() == 42
        assert tee.encoding == "latin-1"
        assert tee.errors == "backslashreplace"
        assert tee.writable() and not tee.readable()
        assert tee.write("xyz") == 3
        tee.flush()
        with pytest.raises(TypeError):
            tee.write(b"bytes")
        assert tee.getvalue() == "xyz"          # other attributes come from the original
    assert terminal.getvalue() == "xyz"
    assert out.get() == "xyz"


def test_user_closing_or_replacing_sys_stdout_is_harmless(capsys):
    original = sys.stdout
    with capture_output("sys") as out:
        print("one")
        sys.stdout.close()
        with pytest.raises(ValueError):
            print("after close")
        sys.stdout = io.StringIO()
        print("into the user's buffer")
    assert sys.stdout is original and not original.closed
    print("still works")
    assert out.get() == "one\n"
    assert capsys.readouterr().out == "one\nstill works\n"


def test_nested_sys_captures(capsys):
    with capture_output("sys") as outer:
        print("outer before")
        with capture_output("sys") as inner:
            print("inner")
        print("outer after")
    assert inner.get() == "inner\n"
    assert outer.get() == "outer before\ninner\nouter after\n"
    assert capsys.readouterr().out == "outer before\ninner\nouter after\n"


def test_get_is_cached_until_new_output(capsys):
    with capture_output("sys") as out:
        print("x")
        first = out.get()
        assert out.get() is first
        print("y")
        assert out.get() == "x\ny\n"


def test_incremental_filtering_matches_filtering_everything(capsys):
    rng = random.Random(7)
    pieces = ["ab", "c\r", "\rd", "e\b", "\n", "12%\r", "50%\r", "100%\n", "\r\n", "x", "\b"]
    written = []
    with capture_output("sys") as out:
        for _ in range(400):
            piece = rng.choice(pieces)
            sys.stdout.write(piece)
            written.append(piece)
            if rng.random() < 0.3:
                assert out.get() == apply_backspaces_and_linefeeds("".join(written))
    assert out.get() == apply_backspaces_and_linefeeds("".join(written))


def test_get_from_another_thread_while_writing(capsys):
    snapshots: list[str] = []
    stop = threading.Event()
    with capture_output("sys", filter=None) as out:
        def heartbeat():
            while not stop.is_set():
                out.flush()
                snapshots.append(out.get())

        beat = threading.Thread(target=heartbeat)
        beat.start()
        for i in range(3000):
            print(f"line {i}")
        stop.set()
        beat.join()
    final = out.get()
    assert final == "".join(f"line {i}\n" for i in range(3000))
    assert snapshots and all(final.startswith(s) for s in snapshots)


def test_many_small_writes_are_kept_in_order(capsys):
    with capture_output("sys", filter=None) as out:
        for i in range(5000):
            sys.stdout.write(str(i % 10))
    assert out.get() == "".join(str(i % 10) for i in range(5000))


def test_captured_output_can_be_built_directly():
    out = CapturedOutput("no")
    assert out.get() == "" and out.mode == "no"
    out.flush()


# --------------------------------------------------------------------------------------------
# Fallback and mode detection
# --------------------------------------------------------------------------------------------

def test_fd_falls_back_to_sys_without_fileno(capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="labbook.output")
    assert default_capture_mode() == "sys"           # capsys streams have no fileno
    with capture_output("fd") as out:
        print("captured anyway")
    assert out.mode == "sys"
    assert out.get() == "captured anyway\n"
    assert any(r.name == "labbook.output" and r.levelno == logging.DEBUG for r in caplog.records)


def test_fd_falls_back_when_stream_lacks_fileno_attribute(monkeypatch):
    class WriteOnly:
        def __init__(self):
            self.parts = []

        def write(self, s):
            self.parts.append(s)
            return len(s)

        def flush(self):
            pass

    stream = WriteOnly()
    monkeypatch.setattr(sys, "stdout", stream)
    with capture_output("fd") as out:
        print("hello")
    assert out.mode == "sys"
    assert out.get() == "hello\n"
    assert "".join(stream.parts) == "hello\n"
    assert sys.stdout is stream


@POSIX
def test_default_mode_is_fd_with_real_descriptors(tmp_path):
    _, _, value = run_child(tmp_path, "save(default_capture_mode())\n")
    assert value == "fd"


# --------------------------------------------------------------------------------------------
# "fd" mode
# --------------------------------------------------------------------------------------------

@POSIX
def test_fd_mode_captures_every_kind_of_output(tmp_path):
    stdout, stderr, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("a", flush=True)
            os.system("echo b")
            subprocess.run(["echo", "c"])
            os.write(1, b"d\\n")
            subprocess.run(["sh", "-c", "echo e"])
            print("f")                      # left in Python's buffer until the capture ends
        save([out.mode, out.get()])
        """)
    mode, captured = value
    assert mode == "fd"
    assert captured == "a\nb\nc\nd\ne\nf\n"
    assert stdout == b"a\nb\nc\nd\ne\nf\n"              # the terminal still sees all of it
    assert stderr == b""


@POSIX
def test_fd_mode_captures_stderr_and_keeps_it_on_stderr(tmp_path):
    stdout, stderr, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("warning from python", file=sys.stderr)
            os.write(2, b"warning from C\\n")
            subprocess.run(["sh", "-c", "echo from child >&2"])
            print("normal", flush=True)
        save(out.get())
        """)
    for line in ("warning from python\n", "warning from C\n", "from child\n", "normal\n"):
        assert line in value
    assert stderr == b"warning from python\nwarning from C\nfrom child\n"
    assert stdout == b"normal\n"


@POSIX
def test_fd_mode_applies_the_filter_and_tees_raw_bytes(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            os.write(1, b"10%\\r20%\\r100%\\n")
        with capture_output("fd", filter=None) as raw:
            os.write(1, b"1\\r2\\n")
        save([out.get(), raw.get()])
        """)
    assert value == ["100%\n", "1\r2\n"]
    assert stdout == b"10%\r20%\r100%\n1\r2\n"


@POSIX
def test_fd_mode_decodes_utf8_split_across_reads(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            e_acute = "\\u00e9".encode()
            os.write(1, e_acute[:1])
            out.flush()                     # the reader takes in the lone first byte
            os.write(1, e_acute[1:] + b"\\n")
            emoji = "\\U0001F600".encode()
            for i in range(len(emoji)):
                os.write(1, emoji[i:i + 1])
                out.flush()
            os.write(1, b"\\n\\xff\\n")
            print("\\u4e2d\\u6587", flush=True)
        save(out.get())
        """)
    assert value == "\u00e9\n\U0001F600\n\ufffd\n\u4e2d\u6587\n"
    assert stdout == "\u00e9\n\U0001F600\n".encode() + b"\xff\n" + "\u4e2d\u6587\n".encode()


@POSIX
def test_fd_mode_flush_collects_output_before_the_capture_ends(tmp_path):
    _, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("still in the Python buffer")
            os.write(1, b"written by C\\n")
            out.flush()
            during = out.get()
        save(during)
        """)
    assert "still in the Python buffer\n" in value
    assert "written by C\n" in value


@POSIX
def test_fd_mode_get_from_another_thread_while_writing(tmp_path):
    _, _, value = run_child(tmp_path, """\
        snapshots = []
        stop = threading.Event()
        with capture_output("fd", filter=None) as out:
            def heartbeat():
                while not stop.is_set():
                    out.flush()
                    snapshots.append(out.get())
            beat = threading.Thread(target=heartbeat)
            beat.start()
            for i in range(3000):
                print(f"line {i}")
                if i % 500 == 0:
                    os.write(1, b"")
            sys.stdout.flush()
            time.sleep(0.05)
            stop.set()
            beat.join()
        save([out.get(), snapshots])
        """)
    final, snapshots = value
    assert final == "".join(f"line {i}\n" for i in range(3000))
    assert snapshots and all(final.startswith(s) for s in snapshots)


@POSIX
def test_nested_fd_captures(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as outer:
            print("outer before", flush=True)
            with capture_output("fd") as inner:
                print("inner", flush=True)
                os.system("echo inner child")
            print("outer after", flush=True)
        save([outer.get(), inner.get()])
        """)
    outer, inner = value
    assert inner == "inner\ninner child\n"
    assert outer == "outer before\ninner\ninner child\nouter after\n"
    assert stdout == b"outer before\ninner\ninner child\nouter after\n"   # shown once


@POSIX
def test_sys_capture_nested_in_fd_capture(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as outer:
            with capture_output("sys") as inner:
                print("python", flush=True)
                os.system("echo shell")
        save([outer.get(), inner.get(), inner.mode])
        """)
    assert value == ["python\nshell\n", "python\n", "sys"]
    assert stdout == b"python\nshell\n"


@POSIX
def test_fd_mode_restores_descriptors_even_on_exception(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        def open_fds():
            return sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []
        before = open_fds()
        threads = threading.active_count()
        try:
            with capture_output("fd") as out:
                print("inside", flush=True)
                raise RuntimeError("crash")
        except RuntimeError:
            pass
        os.write(1, b"after\\n")
        time.sleep(0.05)
        save([out.get(), before == open_fds(), threading.active_count() == threads])
        """)
    captured, same_fds, same_threads = value
    assert captured == "inside\n"
    assert same_fds and same_threads
    assert stdout == b"inside\nafter\n"


@POSIX
def test_fd_mode_survives_the_user_closing_sys_stdout(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("before", flush=True)
            sys.stdout.close()
            os.write(1, b"c level\\n")
        os.write(1, b"after\\n")
        save(out.get())
        """)
    assert value == "before\nc level\n"
    assert stdout == b"before\nc level\nafter\n"


@POSIX
def test_fd_mode_survives_the_user_replacing_sys_stdout(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("before", flush=True)
            sys.stdout = io.StringIO()
            print("into a buffer")
            os.write(1, b"c level\\n")
        sys.stdout = sys.__stdout__
        print("after", flush=True)
        save(out.get())
        """)
    assert value == "before\nc level\n"
    assert stdout == b"before\nc level\nafter\n"


@POSIX
def test_fd_mode_does_not_wait_for_a_background_child(tmp_path):
    stdout, _, value = run_child(tmp_path, """\
        with capture_output("fd") as out:
            print("started", flush=True)
            child = subprocess.Popen(["sleep", "30"])   # inherits the captured stdout
            start = time.monotonic()
        elapsed = time.monotonic() - start
        child.kill()
        child.wait()
        os.write(1, b"after\\n")
        save([out.get(), elapsed])
        """)
    captured, elapsed = value
    assert captured == "started\n"
    assert elapsed < 5
    assert stdout == b"started\nafter\n"


@POSIX
def test_fd_mode_in_process_under_pytest_capfd(capfd):
    # pytest puts sys.stdout on a descriptor other than 1; both are redirected.
    with capture_output("fd") as out:
        print("from python")
        os.write(1, b"from C\n")
        subprocess.run(["echo", "from a child"])
    assert out.mode == "fd"
    captured = out.get()
    seen = capfd.readouterr().out
    for line in ("from python\n", "from C\n", "from a child\n"):
        assert line in captured
        assert line in seen
