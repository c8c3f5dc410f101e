"""Sacred's ``sacred.stdout_capturing``: capture stdout and stderr outside a run.

>>> mode, capture = get_stdcapturer("sys")
>>> with capture() as out:
...     print("hello")
>>> out.get()
'hello\\n'

The work is done by :func:`labbook.output.capture_output` (the run's own capture).
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from labbook.errors import OptionValueError
from labbook.output import MODES, CapturedOutput, capture_output, default_capture_mode

__all__ = ["CapturedStdout", "get_stdcapturer", "flush", "no_tee", "tee_output_python",
           "tee_output_fd"]


def flush() -> None:
    """Flush Python's stdout and stderr."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


class CapturedStdout:
    """The text captured in a ``with`` block: ``get()`` returns what was written since the
    previous ``get()`` (raw, as Sacred's does); ``finalize()`` flushes what is in flight."""

    def __init__(self, captured: CapturedOutput):
        self._captured = captured
        self._read = 0
        self.final = False

    @property
    def mode(self) -> str:
        return self._captured.mode

    def get(self) -> str:
        if not self.final:
            self._captured.flush()
        text = self._captured.get()
        new, self._read = text[self._read:], len(text)
        return new

    def finalize(self) -> None:
        if not self.final:
            self._captured.flush()
            self.final = True


@contextlib.contextmanager
def _tee(mode: str) -> Iterator[CapturedStdout]:
    with capture_output(mode, filter=None) as captured:
        out = CapturedStdout(captured)
        try:
            yield out
        finally:
            out.finalize()


@contextlib.contextmanager
def no_tee() -> Iterator[CapturedStdout]:
    """Capture nothing (``get()`` returns "")."""
    with _tee("no") as out:
        yield out


@contextlib.contextmanager
def tee_output_python() -> Iterator[CapturedStdout]:
    """Capture at the level of ``sys.stdout``/``sys.stderr``, still printing everything."""
    with _tee("sys") as out:
        yield out


@contextlib.contextmanager
def tee_output_fd() -> Iterator[CapturedStdout]:
    """Capture file descriptors 1 and 2 (output of C code and subprocesses too)."""
    with _tee("fd") as out:
        yield out


def get_stdcapturer(mode: str | None = None) -> tuple[str, Callable]:
    """``(mode, context manager factory)`` for capture mode ``"fd"``, ``"sys"`` or ``"no"``
    (None: the best this platform supports)."""
    mode = mode or default_capture_mode()
    factories = {"no": no_tee, "sys": tee_output_python, "fd": tee_output_fd}
    if mode not in factories:
        raise OptionValueError(f"capture mode must be one of {MODES}, not {mode!r}")
    return mode, factories[mode]
