"""Typed errors. Only the CLI maps them to exit codes (all of these are exit 2)."""

from __future__ import annotations


class GradcliError(Exception):
    """A problem with the user's input: shown as one clear message, never a traceback."""

    exit_code = 2
    kind = "input"  # for --json errors: syntax, input, shape, usage or limit

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def render(self) -> str:
        """The full text shown to the user (the message, plus any context lines), every piece
        of user text in it inert (words.inert: no control or bidi character reaches a terminal;
        a newline inside a value is shown as \\n, so a message cannot forge a line)."""
        return _inert(self.message)


class ParseError(GradcliError):
    """A syntax or name error at a place in the formula: rendered with the line and a caret."""

    kind = "syntax"

    def __init__(self, message: str, text: str, pos: int, hint: str | None = None):
        super().__init__(message)
        self.text = text
        self.pos = max(0, min(pos, len(text)))
        self.hint = hint
        self.line, self.column = line_and_column(text, self.pos)

    def render(self) -> str:
        src_line, col = _source_line(self.text, self.pos)
        where = f"line {self.line}, column {self.column}" if "\n" in self.text.rstrip("\n") else (
            f"column {self.column}"
        )
        out = [f"syntax error at {where}: {_inert(self.message)}"]
        out.append("  " + src_line)
        out.append("  " + " " * col + "^")
        if self.hint:
            out.append(_inert(self.hint))
        return "\n".join(out)


class ShapeError(ParseError):
    """Tensor shapes that do not fit an operator: shown with a caret under it."""

    kind = "shape"

    def render(self) -> str:
        return super().render().replace("syntax error at", "shape error at", 1)


class InputError(GradcliError):
    """A bad `--at` value, a missing variable, an unreadable file and the like."""


class UsageError(InputError):
    """Options that do not go together (--explain with --json, --compare without --plot)."""

    kind = "usage"


class LimitError(InputError):
    """Input beyond a size limit (--max-nodes, the formula's bytes)."""

    kind = "limit"


def _inert(text: str) -> str:
    """words.inert (imported only for text that needs it: words imports numpy)."""
    if text.isprintable():
        return text
    from .words import inert

    return inert(text)


def line_and_column(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of offset `pos` in `text`."""
    line = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    return line, pos - start + 1


_MAX_SHOWN = 100


def _source_line(text: str, pos: int) -> tuple[str, int]:
    """The line holding `pos`, made printable and cut around `pos`, and the caret's offset in it."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    if end < 0:
        end = len(text)
    line = text[start:end]
    col = pos - start
    # Cut long lines (a 10^6-term formula) to a window around the caret.
    prefix = ""
    if col > _MAX_SHOWN:
        cut = col - _MAX_SHOWN // 2
        line, col, prefix = line[cut:], col - cut, "…"
    suffix = "…" if len(line) > _MAX_SHOWN * 2 else ""
    line = line[: _MAX_SHOWN * 2]
    shown = []
    caret = len(prefix)
    for i, ch in enumerate(line):
        piece = ch if ch.isprintable() else _escape(ch)
        if i < col:
            caret += len(piece)
        shown.append(piece)
    return prefix + "".join(shown) + suffix, caret


def _escape(ch: str) -> str:
    if ch == "\t":
        return " "
    return _inert(ch)
