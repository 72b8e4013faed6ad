"""The terminal: a Rich console, warnings and notes on stderr, stdout in pieces, progress bars.

Rich is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import sys


def make_console(stderr: bool = False, soft_wrap: bool = False):
    """A Rich console: colours on a terminal, plain text in a pipe, none at all under NO_COLOR."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    options = {"color_system": None} if plain else {}
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        options["width"] = 160  # a file or a pipe: wide tables rather than wrapped cells
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap, **options)


def warn(messages: list[str]) -> None:
    """Warnings go to stderr, one line each."""
    if not messages:
        return
    from rich.text import Text

    console = make_console(stderr=True, soft_wrap=True)
    for message in messages:
        line = Text("warning: ", style="yellow bold")
        line.append(message)
        console.print(line)


def note(message: str) -> None:
    """A note (not a warning) on stderr: `note: ...`."""
    from rich.text import Text

    line = Text("note: ", style="bold")
    line.append(message)
    make_console(stderr=True, soft_wrap=True).print(line)


def write(text: str) -> None:
    """Text to stdout in pieces of 1 MB (a 100 MB JSON document is no 100 MB write call)."""
    out = sys.stdout
    for k in range(0, len(text), 1 << 20):
        out.write(text[k : k + (1 << 20)])
    out.flush()


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

    def __init__(self, total: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("reading points"), BarColumn(),
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
