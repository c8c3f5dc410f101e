"""Captured stdout/stderr of a run.

Three capture modes:

- ``"fd"``: the file descriptors behind stdout and stderr are pointed at pipes, so output of C
  extensions, ``os.system`` and subprocesses is captured too. A reader thread copies every
  byte back to the original descriptor, so the terminal still shows it (a tee).
- ``"sys"``: ``sys.stdout`` and ``sys.stderr`` are replaced by tee writers; only Python-level
  writes are seen.
- ``"no"``: nothing is captured.

>>> with capture_output("sys") as out:  # doctest: +SKIP
...     print("10%\\r100%")
>>> out.get()  # doctest: +SKIP
'100%\\n'
"""
from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import re
import selectors
import sys
import threading
from typing import Any, Callable, Iterable, Iterator
from labbook.errors import OptionValueError

__all__ = ["CapturedOutput", "apply_backspaces_and_linefeeds", "capture_output",
           "default_capture_mode"]

logger = logging.getLogger("labbook.output")

MODES = ("fd", "sys", "no")

_CONTROL = re.compile(r"([\r\b])")


# --------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------

def _render_line(line: str) -> str:
    """Interpret ``\\r`` and ``\\b`` within one line (no ``\\n`` inside)."""
    # A gap buffer keeps this linear: ``left`` holds the characters before the cursor,
    # ``right`` those after it in reverse order, so every edit happens at a list's end.
    # A carriage return moves ``left`` onto ``right``; that costs at most the characters
    # typed since the previous carriage return, so the total stays linear.
    left: list[str] = []
    right: list[str] = []
    for token in _CONTROL.split(line):
        if token == "\r":
            if left:
                left.reverse()
                right.extend(left)
                left = []
        elif token == "\b":
            if left:  # the cursor moves back; what it passes over stays until overwritten
                right.append(left.pop())
        elif token:
            left.extend(token)
            # Typed characters overwrite what the cursor passes over.
            if right:
                del right[max(0, len(right) - len(token)):]
    if right:
        right.reverse()
        left.extend(right)
    return "".join(left)


def apply_backspaces_and_linefeeds(text: str) -> str:
    """Interpret ``\\b`` and ``\\r`` like a terminal, so a progress bar keeps its last state.

    As on a terminal (and as in Sacred): ``\\r`` returns to the start of the line and ``\\b``
    moves one character back (never across a newline); the characters typed next overwrite
    what the cursor passes over, the rest of the line stays. ``\\r\\n`` is an ordinary
    newline. A ``\\r`` that ends the text is kept (once), so that text added later still
    overwrites the line.

    >>> apply_backspaces_and_linefeeds("10%\\r20%\\r100%\\n")
    '100%\\n'
    """
    if "\r" not in text and "\b" not in text:
        return text
    lines = text.split("\n")
    rendered = "\n".join(_render_line(line) if ("\r" in line or "\b" in line) else line
                         for line in lines)
    return rendered + "\r" if text.endswith("\r") else rendered


# --------------------------------------------------------------------------------------------
# The captured text
# --------------------------------------------------------------------------------------------

class CapturedOutput:
    """What a run holds while its output is captured; ``get()`` is safe from any thread."""

    # Small writes are joined into blocks every so often, so a long run that prints a lot
    # without anyone calling get() does not hold millions of tiny strings.
    _BLOCK = 1024

    def __init__(self, mode: str, filter: Callable[[str], str] | None = None) -> None:
        self.mode = mode
        self._filter = filter
        self._lock = threading.Lock()        # guards the raw text; writers take it briefly
        self._get_lock = threading.Lock()    # serialises get() so the caches stay consistent
        self._blocks: list[str] = []
        self._pending: list[str] = []
        self._version = 0
        self._cached_version = 0
        self._cached = ""
        # For the default filter: raw text up to the last complete line is filtered once.
        self._done_raw = 0
        self._done_text = ""
        self._sync: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<CapturedOutput mode={self.mode!r}>"

    def _append(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self._pending.append(text)
            self._version += 1
            if len(self._pending) >= self._BLOCK:
                self._blocks.append("".join(self._pending))
                self._pending = []

    def _raw(self) -> tuple[str, int]:
        with self._lock:
            if self._pending or len(self._blocks) > 1:
                self._blocks = ["".join(self._blocks + self._pending)]
                self._pending = []
            return (self._blocks[0] if self._blocks else ""), self._version

    def get(self) -> str:
        """All text captured so far, after the filter."""
        with self._get_lock:
            if self._version == self._cached_version:   # an int read; no lock needed
                return self._cached
            raw, version = self._raw()
            # Filtering happens outside the writers' lock so printing never waits for it.
            text = self._apply_filter(raw)
            self._cached, self._cached_version = text, version
            return text

    def _apply_filter(self, raw: str) -> str:
        if self._filter is None:
            return raw
        if self._filter is apply_backspaces_and_linefeeds:
            # That filter treats each line on its own, so finished lines never change again.
            cut = raw.rfind("\n", self._done_raw) + 1
            if cut > self._done_raw:
                self._done_text += apply_backspaces_and_linefeeds(raw[self._done_raw:cut])
                self._done_raw = cut
            return self._done_text + apply_backspaces_and_linefeeds(raw[self._done_raw:])
        return self._filter(raw)

    def flush(self) -> None:
        """Flush ``sys.stdout``/``sys.stderr`` and collect output still in flight."""
        _flush_std_streams()
        sync = self._sync
        if sync is not None:
            sync()


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        _safe_flush(stream)


def _safe_flush(stream: Any) -> None:
    # The user may have closed or replaced the stream; a failed flush must not end the run.
    if stream is None:
        return
    try:
        stream.flush()
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# "sys" mode
# --------------------------------------------------------------------------------------------

class _TeeStream:
    """A text stream that writes to the original stream and to the captured output."""

    def __init__(self, original: Any, sink: Callable[[str], None]) -> None:
        self._original = original
        self._sink = sink
        self._closed = False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._closed:
            raise ValueError("I/O operation on closed file.")
        if self._original is not None:
            try:
                self._original.write(s)
            except (ValueError, OSError):
                # The original was closed or its reader went away; keep capturing anyway.
                pass
        self._sink(s)
        return len(s)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._closed:
            _safe_flush(self._original)

    def close(self) -> None:
        # Only this stream closes: the original belongs to the process and is put back
        # when the capture ends.
        self.flush()
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def isatty(self) -> bool:
        try:
            return bool(self._original.isatty())
        except Exception:
            return False

    def fileno(self) -> int:
        if self._original is None:
            raise io.UnsupportedOperation("fileno")
        return self._original.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._original, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self._original, "errors", None) or "strict"

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        # Anything else (buffer, line_buffering, ...) comes from the original stream.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._original, name)


@contextlib.contextmanager
def _capture_sys(out: CapturedOutput) -> Iterator[None]:
    orig_out, orig_err = sys.stdout, sys.stderr
    tee_out, tee_err = _TeeStream(orig_out, out._append), _TeeStream(orig_err, out._append)
    sys.stdout, sys.stderr = tee_out, tee_err
    try:
        yield
    finally:
        tee_out.flush()
        tee_err.flush()
        # The originals come back even if the user closed or replaced ours meanwhile.
        sys.stdout, sys.stderr = orig_out, orig_err


# --------------------------------------------------------------------------------------------
# "fd" mode
# --------------------------------------------------------------------------------------------

class _Pipe:
    """One redirected descriptor: the pipe's read end, where to tee to, and its decoder."""

    def __init__(self, read_fd: int, dest_fd: int) -> None:
        self.read_fd = read_fd
        self.dest_fd: int | None = dest_fd
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.open = True


class _FdRedirect:
    """Points descriptors at pipes; a reader thread tees the bytes and stores the text."""

    # Upper bound on reads per drain, so a child writing nonstop cannot hold a flush forever.
    _DRAIN_READS = 1024
    _SYNC_TIMEOUT = 5.0
    _JOIN_TIMEOUT = 0.5

    def __init__(self, targets: list[int], sink: Callable[[str], None]) -> None:
        self._targets = targets
        self._sink = sink
        self._saved: dict[int, int] = {}
        self._inheritable: dict[int, bool] = {}
        self._streams: tuple[Any, Any] = (None, None)
        self._pipes: list[_Pipe] = []
        self._wake_r = -1
        self._wake_w = -1
        self._cond = threading.Condition()
        self._requested = 0
        self._served = 0
        self._finished = False
        self._thread: threading.Thread | None = None
        self._active = False

    def start(self) -> None:
        # What Python buffered before the capture is not the run's output.
        self._streams = (sys.stdout, sys.stderr)
        _flush_std_streams()
        opened: list[int] = []
        writes: list[int] = []
        try:
            for target in self._targets:
                self._inheritable[target] = os.get_inheritable(target)
                saved = os.dup(target)
                opened.append(saved)
                self._saved[target] = saved
                # The reader gets its own copy, so closing ``saved`` on exit can never pull
                # the descriptor from under a reader that still serves a lingering child.
                dest = os.dup(target)
                opened.append(dest)
                read_fd, write_fd = os.pipe()
                opened += [read_fd, write_fd]
                os.set_blocking(read_fd, False)
                self._pipes.append(_Pipe(read_fd, dest))
                writes.append(write_fd)
            self._wake_r, self._wake_w = os.pipe()
            opened += [self._wake_r, self._wake_w]
            os.set_blocking(self._wake_r, False)
            # Never block on the wake-up pipe while holding the lock the reader needs.
            os.set_blocking(self._wake_w, False)
            self._thread = threading.Thread(target=self._read_loop, name="labbook-output-reader",
                                            daemon=True)
            self._thread.start()
        except (OSError, RuntimeError):
            for fd in opened:
                _close(fd)
            raise
        done: list[int] = []
        try:
            for target, write_fd in zip(self._targets, writes):
                os.dup2(write_fd, target, self._inheritable[target])
                done.append(target)
        except OSError:
            for target in done:
                os.dup2(self._saved[target], target, self._inheritable[target])
            for fd in writes + list(self._saved.values()):
                _close(fd)
            _close(self._wake_w)   # tells the reader to finish
            raise
        for write_fd in writes:
            # The targets now hold the pipes; our extra write ends would only delay EOF.
            os.close(write_fd)
        self._active = True

    def sync(self, timeout: float | None = None) -> None:
        """Wait until the reader has taken in everything written to the pipes so far."""
        with self._cond:
            if not self._active or self._finished:
                return
            self._requested += 1
            wanted = self._requested
            try:
                os.write(self._wake_w, b"s")
            except BlockingIOError:
                pass   # a wake-up byte is already waiting; the reader will get to us
            except OSError:
                return
            self._cond.wait_for(lambda: self._served >= wanted or self._finished,
                                timeout if timeout is not None else self._SYNC_TIMEOUT)

    def stop(self) -> None:
        # The user may have swapped sys.stdout meanwhile; the old stream may still hold text.
        for stream in self._streams:
            _safe_flush(stream)
        _flush_std_streams()
        for target, saved in self._saved.items():
            try:
                os.dup2(saved, target, self._inheritable[target])
            except OSError:
                logger.debug("Could not restore file descriptor %d", target, exc_info=True)
        try:
            # Everything written through the targets is in the pipes now; collect it.
            self.sync()
        finally:
            with self._cond:
                self._active = False
                _close(self._wake_w)
            if self._thread is not None:
                # Normally every write end is gone and the reader stops at once; a background
                # child may still hold one, and then the reader keeps serving it as a daemon.
                self._thread.join(self._JOIN_TIMEOUT)
            for saved in self._saved.values():
                _close(saved)

    # -- the reader thread ------------------------------------------------------------------

    def _read_loop(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            for pipe in self._pipes:
                selector.register(pipe.read_fd, selectors.EVENT_READ, pipe)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            wake_open = True
            while any(pipe.open for pipe in self._pipes):
                for key, _ in selector.select():
                    pipe = key.data
                    if pipe is not None:
                        if pipe.open:
                            self._pump(pipe)
                        continue
                    wake = self._read_wake()
                    if wake is None:
                        continue
                    # Requests counted now wrote their output before asking, so one drain
                    # after this point serves all of them; later ones leave a byte behind.
                    with self._cond:
                        serving = self._requested
                    for other in self._pipes:
                        if other.open:
                            self._pump(other)
                    with self._cond:
                        self._served = max(self._served, serving)
                        self._cond.notify_all()
                    if wake == b"" and wake_open:
                        wake_open = False
                        selector.unregister(self._wake_r)
                for pipe in self._pipes:
                    if not pipe.open and pipe.read_fd >= 0:
                        selector.unregister(pipe.read_fd)
                        _close(pipe.read_fd)
                        pipe.read_fd = -1
        finally:
            # No logging here: the log would go to stderr, which may be this very pipe.
            selector.close()
            for pipe in self._pipes:
                if pipe.read_fd >= 0:
                    _close(pipe.read_fd)
                if pipe.dest_fd is not None:
                    _close(pipe.dest_fd)
            _close(self._wake_r)
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _read_wake(self) -> bytes | None:
        """All pending wake-up bytes (``b""`` once the pipe is closed), None if there are none."""
        data = _read(self._wake_r)
        while data:
            more = _read(self._wake_r)
            if not more:
                break
            data += more
        return data

    def _pump(self, pipe: _Pipe) -> None:
        """Read what the pipe holds right now (or until EOF)."""
        for _ in range(self._DRAIN_READS):
            data = _read(pipe.read_fd)
            if data is None:
                return
            if not data:
                pipe.open = False
                self._sink(pipe.decoder.decode(b"", final=True))
                return
            if pipe.dest_fd is not None:
                try:
                    _write_all(pipe.dest_fd, data)
                except OSError:
                    # The terminal went away (e.g. ``| head``); keep capturing regardless.
                    _close(pipe.dest_fd)
                    pipe.dest_fd = None
            self._sink(pipe.decoder.decode(data))


def _read(fd: int) -> bytes | None:
    """Bytes from a non-blocking fd, ``b""`` at EOF, None when nothing is there yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close(fd: int) -> None:
    if fd < 0:
        return
    try:
        os.close(fd)
    except OSError:
        pass


def _std_fds() -> list[int] | None:
    """Descriptors to redirect for fd capture, or None if the std streams have none."""
    fds = [1, 2]
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, ValueError, OSError):
            return None
        # Python's streams may sit on other descriptors (pytest does this); those are
        # redirected as well, so both print() and subprocesses are captured.
        if fd not in fds:
            fds.append(fd)
    return fds


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------

def default_capture_mode() -> str:
    """``"fd"`` where descriptor capture works (POSIX, std streams with a fileno), else "sys"."""
    if os.name == "posix" and _std_fds() is not None:
        return "fd"
    return "sys"


@contextlib.contextmanager
def capture_output(mode: str = "fd",
                   filter: Callable[[str], str] | None = apply_backspaces_and_linefeeds,
                   ) -> Iterator[CapturedOutput]:
    """Capture stdout and stderr inside the block; yields a :class:`CapturedOutput`.

    ``mode`` is ``"fd"``, ``"sys"`` or ``"no"``; ``"fd"`` falls back to ``"sys"`` where the
    std streams have no file descriptor. ``filter`` is applied by ``get()``; None keeps raw text.
    """
    if mode not in MODES:
        raise OptionValueError(f"capture mode must be one of {MODES}, not {mode!r}")
    out = CapturedOutput(mode, filter)
    if mode == "no":
        yield out
        return
    if mode == "fd":
        targets = _std_fds() if os.name == "posix" else None
        redirect: _FdRedirect | None = None
        if targets is None:
            logger.debug("File descriptor capture is not available here (stdout/stderr have "
                         "no fileno); capturing in 'sys' mode")
        else:
            redirect = _FdRedirect(targets, out._append)
            try:
                redirect.start()
            except (OSError, RuntimeError):
                logger.debug("File descriptor capture failed; capturing in 'sys' mode",
                             exc_info=True)
                redirect = None
        if redirect is not None:
            out._sync = redirect.sync
            try:
                yield out
            finally:
                out._sync = None
                redirect.stop()
            return
        out.mode = "sys"
    with _capture_sys(out):
        yield out
