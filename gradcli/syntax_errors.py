"""Syntax errors in words: Lark's UnexpectedInput turned into a ParseError that says what came,
what was expected, and where an unclosed bracket was opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ParseError, line_and_column
from .words import short

if TYPE_CHECKING:  # pragma: no cover
    from lark import Token
    from lark.exceptions import UnexpectedInput

WORDS = {
    "NUMBER": "a number",
    "NAME": "a name",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "ASSIGN": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "POW": "'^'",
    "AT": "'@'",
    "LSQB": "'['",
    "RSQB": "']'",
    "DOT_T": "'.T'",
    "CMP": "a comparison",
    "COLON": "':'",
    "_SEP": "the end of the statement",
    "$END": "the end of the formula",
}
_BINARY = {"PLUS", "MINUS", "STAR", "SLASH", "POW", "AT"}
_OPERAND_END = {"NUMBER", "NAME", "RPAR", "RSQB"}
_OPERAND_START = {"NUMBER", "NAME", "LPAR", "LSQB"}


def _expected_words(expected) -> str:
    names = set(expected)
    words = []
    if _BINARY <= names:
        names -= _BINARY | {"CMP"}
        operator = "an operator"
    else:
        operator = None
    order = ["NUMBER", "NAME", "LPAR", "LSQB", "RPAR", "RSQB", "COMMA", "COLON", "ASSIGN",
             "MINUS", "PLUS", "STAR", "SLASH", "AT", "POW", "DOT_T", "CMP", "_SEP", "$END"]
    for key in order:
        if key in names:
            words.append(WORDS[key])
            names.discard(key)
    if operator:
        words.append(operator)
    words += sorted(WORDS.get(n, n.lower()) for n in names)
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(tok: "Token") -> str:
    if tok.type == "$END":
        return "end of formula"
    if tok.type == "_SEP":
        return "';'" if tok.value == ";" else "new line"
    value = short(tok.value, 30)
    if tok.type == "NUMBER":
        return f"number {value}"
    if tok.type == "NAME":
        return f"name {value}"
    return f"'{value}'"


_CLOSER = {"(": ")", "[": "]"}


def _open_bracket(text: str, upto: int, opens: str = "([") -> int | None:
    """Offset of the innermost bracket of `opens` still open at `upto`, ignoring comments."""
    closes = "".join(_CLOSER[o] for o in opens)
    stack: list[int] = []
    i = 0
    while i < upto:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = upto if nl < 0 else nl
            continue
        if ch in opens:
            stack.append(i)
        elif ch in closes and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _open_paren(text: str, upto: int) -> int | None:
    """Offset of the innermost '(' still open at `upto` (brackets aside), ignoring comments."""
    return _open_bracket(text, upto, "(")


def _where(text: str, pos: int) -> str:
    """'column N', or 'line L, column N' in a formula of several lines."""
    line, col = line_and_column(text, pos)
    return f"line {line}, column {col}" if "\n" in text.rstrip("\n") else f"column {col}"


def _ends_operand(text: str, pos: int) -> bool:
    """Whether the text just before `pos` ends an operand (a number, a name or a ')')."""
    before = text[:pos].rstrip(" \t\f\r")
    return bool(before) and (before[-1] in ")]_." or before[-1].isalnum())


def _function_before(text: str, pos: int) -> str | None:
    """The function name that ends just before `pos` (sin in `sin x`), if it is one."""
    from .ops import FUNCTIONS

    before = text[:pos].rstrip(" \t\f\r")
    k = len(before)
    while k > 0 and (before[k - 1].isalnum() or before[k - 1] == "_"):
        k -= 1
    word = before[k:]
    if word in FUNCTIONS and (k == 0 or before[k - 1] != "."):
        return word
    return None


def syntax_error(text: str, exc: "UnexpectedInput") -> ParseError:
    """Lark's syntax error as a ParseError in words: what came, what was expected, and hints
    (an unclosed bracket, implicit multiplication, a misplaced '=')."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        shown = repr(ch) if ch.isprintable() else repr(ch)
        return ParseError(f"unexpected character {shown}", text, exc.pos_in_stream,
                          "a formula uses numbers, names, + - * / ^ ** ( ) , ; = and function "
                          "calls such as exp(x)")
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as a token
        return ParseError("unexpected end of formula", text, len(text))
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    expected = exc.expected or set()
    at_end = tok.type == "$END"
    pos = len(text.rstrip()) if at_end else tok.start_pos
    if (at_end or tok.type == "_SEP") and "RPAR" in expected:
        opened = _open_paren(text, pos)
        if opened is not None:
            return ParseError(f"unexpected {_describe(tok)}: expected ')' to close the '(' at "
                              f"{_where(text, opened)}", text, pos)
    if tok.type in ("RPAR", "RSQB") and tok.type not in expected:
        opened = _open_bracket(text, pos)
        if opened is None:
            shown = "(" if tok.type == "RPAR" else "["
            return ParseError(f"unexpected '{tok.value}': there is no '{shown}' open here",
                              text, pos)
        if _CLOSER[text[opened]] != tok.value:  # [1, 2) or (x]
            return ParseError(
                f"unexpected '{tok.value}': expected '{_CLOSER[text[opened]]}' to close the "
                f"'{text[opened]}' at {_where(text, opened)}", text, pos)
    if at_end and "RSQB" in expected:
        opened = _open_bracket(text, pos)
        if opened is not None and text[opened] == "[":
            return ParseError(f"unexpected end of formula: expected ']' to close the '[' at "
                              f"{_where(text, opened)}", text, pos)
    # Only the innermost open bracket's closer can come next (LALR's lookahead lists both).
    opened = _open_bracket(text, pos)
    closer = {"(": "RPAR", "[": "RSQB"}.get(text[opened]) if opened is not None else None
    expected = {e for e in expected if e not in ("RPAR", "RSQB") or e == closer}
    if closer != "RSQB":  # a ':' slices only inside [...]
        expected.discard("COLON")
    hint = None
    called = _function_before(text, pos)
    if tok.type in ("NAME", "NUMBER") and called:  # sin x
        return ParseError(f"a function call needs parentheses: {called}({tok.value})", text,
                          pos)
    if tok.type in _OPERAND_START and _ends_operand(text, pos):
        hint = "gradcli never multiplies implicitly: write '*' between factors, as in 2*x"
    elif tok.type == "CMP":
        hint = "comparisons do not chain: for a < b < c write (a < b) * (b < c)"
    elif tok.type == "ASSIGN":
        hint = "'=' names an intermediate at the start of a statement, as in q = x + y"
    opened = _open_paren(text, pos)
    if opened is not None and text.count("\n", opened, pos):
        line, col = line_and_column(text, opened)
        still = f"the '(' at line {line}, column {col} is still open"
        hint = still if hint is None else f"{hint}; {still}"
    return ParseError(f"unexpected {_describe(tok)}; expected {_expected_words(expected)}",
                      text, pos, hint)
