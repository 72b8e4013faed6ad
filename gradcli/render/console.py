"""The terminal: a Rich console, warnings and notes on stderr, stdout in pieces, progress bars.

Rich is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import sys


def make_console(stderr: bool = False, soft_wrap: bool = False):
    """A Rich console: colours on a terminal, plain text in a pipe, none at all under NO_COLOR."""
    plain = bool(os.environ.get("NO_COLOR"))
    options = {"color_system": None} if plain else {}
    stream = sys.stderr if stderr else sys.stdout
    options["width"], height = _size(stream)
    if height is not None:
        options["height"] = height
    return _console_class()(stderr=stderr, highlight=False, soft_wrap=soft_wrap, **options)


#: The widths gradcli draws at: COLUMNS outside them (0, 00, 10^12) is clamped, never obeyed.
MIN_WIDTH, MAX_WIDTH = 20, 10_000


def _env_int(name: str) -> int | None:
    """A positive ASCII-digit environment variable, or None (unset, 0, 00, '²', 'abc')."""
    raw = os.environ.get(name, "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) < 12 and int(raw) > 0:
        return int(raw)
    return None


def _size(stream) -> tuple[int, int | None]:
    """The width (and height, when LINES is set) to draw at: COLUMNS when it is a usable number;
    else the terminal's width; else (a file or a pipe) 160, wide tables rather than wrapped cells.
    Rich would obey COLUMNS=0 and print nothing, and fail on COLUMNS=²; it never sees them."""
    columns = _env_int("COLUMNS")
    height = None
    if "LINES" in os.environ:
        height = _env_int("LINES") or 25
    if columns is not None:
        return min(max(columns, MIN_WIDTH), MAX_WIDTH), height
    try:
        if stream.isatty():
            return min(max(os.get_terminal_size(stream.fileno()).columns, MIN_WIDTH),
                       MAX_WIDTH), height
    except (OSError, ValueError, AttributeError):
        pass
    return 160, height


_CONSOLE = None


def _console_class():
    """Rich's Console, except that a broken pipe raises BrokenPipeError (Rich's own handler
    leaves with exit 1, the "check failed" code); the CLI's guard then ends quietly."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        class QuietConsole(Console):
            def on_broken_pipe(self) -> None:
                self.quiet = True
                raise BrokenPipeError("the reader of the output went away")

            def _render_buffer(self, buffer) -> str:
                """Every text Rich writes made inert (words.inert), whichever renderer drew it:
                Rich's own control segments (cursor moves of a progress bar) pass as they are."""
                from rich.segment import Segment

                from ..words import inert

                return super()._render_buffer(
                    seg if seg.control or seg.text.isprintable()
                    else Segment(inert(seg.text, lines=True), seg.style, seg.control)
                    for seg in buffer)

        _CONSOLE = QuietConsole
    return _CONSOLE


def warn(messages: list[str]) -> None:
    """Warnings go to stderr, one line each."""
    if not messages:
        return
    from rich.text import Text

    from ..words import inert

    try:
        console = make_console(stderr=True, soft_wrap=True)
        for message in messages:
            line = Text("warning: ", style="yellow bold")
            line.append(inert(message))
            console.print(line)
    except (OSError, ValueError):
        pass  # stderr closed or full: the result on stdout still counts


def note(message: str) -> None:
    """A note (not a warning) on stderr: `note: ...`."""
    from rich.text import Text

    from ..words import inert

    line = Text("note: ", style="bold")
    line.append(inert(message))
    try:
        make_console(stderr=True, soft_wrap=True).print(line)
    except (OSError, ValueError):
        pass  # stderr closed or full


def write(text: str) -> None:
    """Text to stdout in pieces of about 1 MB (a 100 MB JSON document is no 100 MB write call),
    each cut after a newline and written whole: Ctrl-C stops the output between pieces, so a
    JSON Lines or CSV stream never ends in half a line."""
    out = sys.stdout
    k = 0
    while k < len(text):
        end = k + (1 << 20)
        if end < len(text):
            cut = text.rfind("\n", k, end)
            end = cut + 1 if cut >= 0 else end
        with whole_write():
            out.write(text[k:end])
            out.flush()
        k = end
    if not text:
        out.flush()


class whole_write:
    """Defer Ctrl-C (SIGINT) until the block is done: `with whole_write(): out.write(...)`.
    Outside the main thread (where signals cannot be caught) it defers nothing."""

    def __enter__(self):
        import signal
        import threading

        self.signal, self.pending, self.previous = signal, False, None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._later)
            except (ValueError, TypeError):  # pragma: no cover - no signals here
                self.previous = None
        return self

    def _later(self, signum, frame) -> None:
        self.pending = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            self.signal.signal(self.signal.SIGINT, self.previous)
        if self.pending and exc[0] is None:
            raise KeyboardInterrupt


class ClosedStream:
    """What gradcli reads or writes when a standard stream was closed (`>&-`, `<&-`): any use
    is an OSError naming the stream, which the CLI's guard reports in one line (exit 2)."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, what: str):
        self.what = what

    def _closed(self, *args, **kwargs):
        import errno

        raise OSError(errno.EBADF, f"{self.what} is closed")

    write = read = readline = readlines = __iter__ = fileno = _closed

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def ensure_stdio() -> None:
    """Give every closed standard stream a stand-in: stdin and stdout raise a clear OSError when
    used; a closed stderr swallows its messages (warnings are not worth the result)."""
    if sys.stdin is None:
        sys.stdin = ClosedStream("standard input")
    if sys.stdout is None:
        sys.stdout = ClosedStream("standard output")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


def io_failure(exc: BaseException) -> str:
    """One line for an OSError or UnicodeEncodeError that reached the top: a closed or full
    stream, or an output encoding that cannot show the text."""
    if isinstance(exc, UnicodeEncodeError):
        shown = exc.object[exc.start : exc.start + 1] if isinstance(exc.object, str) else "?"
        encoding = getattr(sys.stdout, "encoding", None) or exc.encoding
        return (f"the output's encoding ({encoding}) cannot show {ascii(shown)}; set "
                "PYTHONIOENCODING=utf-8 (or a UTF-8 locale) and run again")
    if isinstance(exc, OSError):
        cause = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            return f"cannot use {exc.filename}: {cause}"
        if "standard" in cause:
            return cause
        return f"cannot write the output: {cause}"
    return f"{type(exc).__name__}: {exc}"


def settle_stdout() -> None:
    """After an I/O failure: flush stdout, and if that fails too, drop it (see drop_stdout)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        drop_stdout()


def drop_stdout() -> None:
    """Point stdout at /dev/null after it failed (a broken pipe, a full disk), so that flushing
    at exit finds nothing to complain about."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def say(line: str) -> None:
    """One line on stderr (user text in it made inert: words.inert); nothing when stderr is
    closed or full."""
    if not line.replace("\n", "").isprintable():  # (words imports numpy: only when needed)
        from ..words import inert

        line = inert(line, lines=True)
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def write_bytes(data: bytes) -> None:
    """Bytes to stdout (an SVG or PNG picture)."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # pragma: no cover - a text-only stdout
        write(data.decode("utf-8", "replace"))
        return
    sys.stdout.flush()
    out.write(data)
    out.flush()


class Bar:
    """A progress bar on stderr, by characters of the file read."""

    def __init__(self, total: int, label: str = "reading points"):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(label, markup=False), BarColumn(),
                                 TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                                 console=make_console(stderr=True), transient=True)
        self.task = self.progress.add_task("points", total=total)
        self.progress.start()

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


def file_bar(path: str) -> Bar | None:
    """A bar for long files (over 8 MB) when stderr is a terminal; None otherwise."""
    if path == "-" or not sys.stderr.isatty():
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    return Bar(size) if size > 8 << 20 else None


class DescentBar:
    """Descent's progress bar on stderr, with the current loss."""

    def __init__(self, total: int):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        self.progress = Progress(TextColumn("descent"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}", markup=False),
                                 TimeElapsedColumn(), console=make_console(stderr=True),
                                 transient=True)
        self.task = self.progress.add_task("descent", total=total, loss="…")
        self.progress.start()

    def update(self, step: int, loss: float) -> None:
        from .text import fmt

        self.progress.update(self.task, completed=step, loss=fmt(loss, 4))

    def close(self) -> None:
        self.progress.stop()


def write_file(path: str, data: bytes, inputs: tuple[str, ...] = ()) -> None:
    """Write `data` to `path` whole or not at all: into a temporary file beside it, flushed and
    synced, then moved into place (a full disk leaves the old file as it was). A path that is
    one of `inputs` (the formula file) is refused: the picture would overwrite its own source."""
    import tempfile

    from ..errors import InputError

    for source in inputs:
        try:
            same = os.path.exists(path) and os.path.samefile(path, source)
        except OSError:
            same = False
        if same:
            raise InputError(f"-o {path} is the formula file itself: write the output to "
                             "another file")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gradcli-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
