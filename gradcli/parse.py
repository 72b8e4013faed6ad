"""Formula text → Tape, with one cached LALR parser whose inline transformer builds the tape.

Lark calls a `Builder` method as each rule reduces, so no parse tree is built and nothing here
recurses: 100 000 nested parentheses are 100 000 shifts and reduces on Lark's own stack.
Each callback returns an operand `(node_id, start, end)`: the span is the operand's text as
written (parentheses included), while the node keeps the span of its own expression.
"""

from __future__ import annotations

import difflib
import gc
import re
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from .errors import ParseError, line_and_column
from .ops import CONSTANTS, FUNCTIONS, OPS, Op
from .tape import Statement, Tape, shape_str

if TYPE_CHECKING:  # pragma: no cover
    from lark import Lark, Token
    from lark.exceptions import UnexpectedInput

_OP = OPS  # the rule table itself, so a patched entry (in a test) is what parsing uses

#: After these tokens a new line continues the statement (as it does inside brackets).
_CONTINUES = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW", "COMMA", "ASSIGN",
                        "LPAR", "LSQB"})


def grammar_text() -> str:
    """The grammar, from inside the installed package or from a checkout's grammars/."""
    try:
        packaged = resources.files("gradcli").joinpath("grammars", "gradcli.lark")
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - odd installs
        pass
    here = Path(__file__).resolve().parent.parent / "grammars" / "gradcli.lark"
    return here.read_text(encoding="utf-8")


def _newlines():
    """Lark's postlexer for multi-line programs (made on first use: Lark loads lazily)."""
    from lark.lark import PostLex

    class Newlines(PostLex):
        """Newlines end statements, except inside brackets or after an operator, ',' or '='."""

        always_accept = ()

        def process(self, stream):
            depth = 0
            prev = None
            for tok in stream:
                kind = tok.type
                if kind == "_SEP" and tok.value != ";":
                    if depth > 0 or prev in _CONTINUES:
                        continue
                elif kind == "LPAR" or kind == "LSQB":
                    depth += 1
                elif (kind == "RPAR" or kind == "RSQB") and depth > 0:
                    depth -= 1
                prev = kind
                yield tok

    return Newlines()


class Builder:
    """Inline transformer: appends nodes to `self.tape` as the LALR parser reduces."""

    def __init__(self) -> None:
        self.tape = Tape("")
        self.warnings: list[str] = []

    def reset(self, text: str) -> None:
        self.tape = Tape(text)
        self.warnings = []

    def _error(self, message: str, pos: int, hint: str | None = None) -> ParseError:
        return ParseError(message, self.tape.text, pos, hint)

    # -- leaves -------------------------------------------------------------------------------
    def number(self, c):
        tok = c[0]
        value = np.float64(float(tok.value))
        if not np.isfinite(value):
            self.warnings.append(f"the number {_short(tok.value)} is too large for float64: "
                                 "it is read as Infinity")
        tape = self.tape
        i = tape.add(_OP["const"], (), tok.start_pos, tok.end_pos)
        tape.literals[i] = value
        return (i, tok.start_pos, tok.end_pos)

    def name(self, c):
        tok = c[0]
        tape = self.tape
        name = tok.value
        s, e = tok.start_pos, tok.end_pos
        i = tape.bound.get(name)
        if i is not None:
            return (i, s, e)
        i = tape.variables.get(name)
        if i is not None:
            return (i, s, e)
        if name in CONSTANTS:
            i = tape.add(_OP["const"], (), s, e)
            tape.literals[i] = np.float64(CONSTANTS[name])
            return (i, s, e)
        if name in FUNCTIONS:
            raise self._error(f"{name} is a function: call it with parentheses, as {name}(...)",
                              s)
        i = tape.add(_OP["var"], (), s, e)
        tape.variables[name] = i
        tape.names[i] = name
        return (i, s, e)

    # -- operators ----------------------------------------------------------------------------
    def _binary(self, opname: str, a, b):
        i = self.tape.add(_OP[opname], (a[0], b[0]), a[1], b[2])
        return (i, a[1], b[2])

    def add(self, c):
        a, _, b = c
        return self._binary("add", a, b)

    def sub(self, c):
        a, _, b = c
        return self._binary("sub", a, b)

    def mul(self, c):
        a, _, b = c
        return self._binary("mul", a, b)

    def div(self, c):
        a, _, b = c
        return self._binary("div", a, b)

    def pow(self, c):
        a, _, b = c
        return self._binary("pow", a, b)

    def neg(self, c):
        tok, a = c
        tape = self.tape
        i = a[0]
        # A minus sign on a number literal is part of the number: -3 is one constant.
        if tape.ops[i].name == "const" and i in tape.literals and i == len(tape) - 1 \
                and i not in tape.names:
            tape.literals[i] = -tape.literals[i]
            tape.starts[i] = tok.start_pos
            tape.ends[i] = a[2]
            return (i, tok.start_pos, a[2])
        j = tape.add(_OP["neg"], (i,), tok.start_pos, a[2])
        return (j, tok.start_pos, a[2])

    def pos(self, c):
        tok, a = c
        return (a[0], tok.start_pos, a[2])

    def paren(self, c):
        lpar, a, rpar = c
        return (a[0], lpar.start_pos, rpar.end_pos)

    # -- calls --------------------------------------------------------------------------------
    def call(self, c):
        name, _, args, rpar = c
        opname = FUNCTIONS.get(name.value)
        if opname is None:
            raise self._unknown_function(name)
        op = _OP[opname]
        lo, hi = _arity(op)
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise self._error(f"{name.value}() takes {_takes(op)}, got {len(args)}",
                              name.start_pos)
        if op.axis and len(args) == 2:
            self._check_axis(name.value, args[1])
        i = self.tape.add(op, tuple(a[0] for a in args), name.start_pos, rpar.end_pos)
        return (i, name.start_pos, rpar.end_pos)

    def _check_axis(self, fname: str, a) -> None:
        tape = self.tape
        value = tape.literals.get(a[0])
        # (numpy has at most 64 axes: a bigger one, 1e300 or inf, is never an axis)
        if value is None or a[0] in tape.names or np.ndim(value) or not abs(value) <= 64 \
                or value != int(value):
            raise self._error(f"the axis of {fname}(A, axis) must be a whole number such as 0 "
                              "or 1", a[1])

    def call_empty(self, c):
        name, _, rpar = c
        opname = FUNCTIONS.get(name.value)
        if opname is None:
            raise self._unknown_function(name)
        raise self._error(f"{name.value}() takes {_takes(_OP[opname])}, got none",
                          name.start_pos)

    # -- tensors ------------------------------------------------------------------------------
    def matmul(self, c):
        a, _, b = c
        return self._binary("matmul", a, b)

    def transpose_attr(self, c):
        a, tok = c
        i = self.tape.add(_OP["transpose"], (a[0],), a[1], tok.end_pos)
        return (i, a[1], tok.end_pos)

    def array(self, c):
        lsqb, items, rsqb = c
        tape = self.tape
        s, e = lsqb.start_pos, rsqb.end_pos
        ids = [a[0] for a in items]
        shapes = [None] * len(ids)
        literal = True
        for k, i in enumerate(ids):
            v = tape.literals.get(i)
            if v is None or i in tape.names:
                literal = False
                break
            shapes[k] = np.shape(v)
        n = len(tape)
        if literal and ids == list(range(n - len(ids), n)):
            first = shapes[0]
            for k, shape in enumerate(shapes):
                if shape != first:
                    raise self._error(_ragged(first, shape), items[k][1])
            value = np.array([tape.literals[i] for i in ids], dtype=np.float64)
            for i in reversed(ids):  # the elements become one constant
                del tape.literals[i]
                tape.ops.pop()
                tape.inputs.pop()
                tape.starts.pop()
                tape.ends.pop()
            j = tape.add(_OP["const"], (), s, e)
            tape.literals[j] = value
            return (j, s, e)
        j = tape.add(_OP["stack"], tuple(ids), s, e)
        return (j, s, e)

    def _unknown_function(self, name: Token) -> ParseError:
        close = difflib.get_close_matches(name.value, list(FUNCTIONS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}(...)?" if close else (
            "functions: " + ", ".join(sorted(FUNCTIONS)))
        return self._error(f"unknown function {_short(name.value)}()", name.start_pos, hint)

    def first_arg(self, c):
        return [c[0]]

    def next_arg(self, c):
        args, _, a = c
        args.append(a)
        return args

    first_output = first_arg
    next_output = next_arg

    # -- statements ---------------------------------------------------------------------------
    def bare_statement(self, c):
        outputs = c[0]
        self.tape.statements.append(Statement(None, [a[0] for a in outputs], outputs[0][1]))

    def assign_statement(self, c):
        name, _, a = c
        tape = self.tape
        n, s = name.value, name.start_pos
        if n in CONSTANTS:
            raise self._error(f"{n} is a constant and cannot be assigned", s)
        if n in tape.bound:
            raise self._error(f"{_short(n)} is assigned twice; give each intermediate its own "
                              "name", s)
        if n in tape.variables:
            raise self._error(f"{_short(n)} is used as an input before this line assigns it", s)
        i = a[0]
        if i in tape.names or not tape.inputs[i]:
            # The value already has a name (or is a leaf): a named copy keeps both names.
            i = tape.add(_OP["id"], (i,), a[1], a[2])
        else:
            tape.starts[i], tape.ends[i] = a[1], a[2]
        tape.names[i] = n
        tape.bound[n] = i
        tape.statements.append(Statement(n, [i], s))

    def first_statement(self, *_):
        return None

    def next_statement(self, *_):
        return None

    def start(self, *_):
        return None


def _arity(op: Op) -> tuple[int, int | None]:
    """The fewest and most arguments an op takes (None: no limit)."""
    if op.arity < 0:
        return 1, None
    return op.arity, op.max_arity if op.max_arity is not None else op.arity


def _takes(op: Op) -> str:
    lo, hi = _arity(op)
    if hi is None:
        return "at least one argument"
    if lo == hi:
        return _count(lo, "argument")
    if op.axis:
        return f"{lo} or {hi} arguments (a tensor and an axis)"
    return f"{lo} to {hi} arguments"


def _ragged(first, shape) -> str:
    return (f"the elements of a [...] literal must have one shape: this one has shape "
            f"{shape_str(shape)}, the first {shape_str(first)}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the parser -------------------------------------------------------------------------------

_BUILDER = Builder()
_PARSERS: dict = {}


def _parser(multiline: bool) -> "Lark":
    """Lark's LALR parser for the grammar (its tables cached in the user's cache folder)."""
    parser = _PARSERS.get(multiline)
    if parser is None:
        from lark import Lark

        parser = Lark(
            grammar_text(),
            parser="lalr",
            lexer="basic",  # the contextual lexer rejects a newline before the postlexer sees it
            transformer=_BUILDER,
            postlex=_newlines() if multiline else None,
            cache=_cache_path(multiline, "lark"),
        )
        _PARSERS[multiline] = parser
    return parser


def _cache_path(multiline: bool, what: str) -> str | bool:
    """A cache file in the user's own cache folder, so the LALR tables are built once, not per
    run. No cache (rather than a shared temporary folder, which Lark would unpickle from) where
    that folder is not ours."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "gradcli")
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return False
    except OSError:
        return False
    from . import __version__

    kind = "multiline" if multiline else "line"
    return os.path.join(folder, f"lalr-{__version__}-{kind}.{what}")


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: building 10^6 small objects is 2x faster without it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse(text: str) -> tuple[Tape, list[str]]:
    """Parse formula text into a tape; returns it with any parse-time warnings.

    Valid formulas go through a fast path: a one-regex tokenizer and a lean driver over Lark's
    own LALR tables and callbacks. Where that path meets anything it does not accept, Lark's
    parser runs instead, so every syntax error is Lark's, worded as before.
    """
    if "\x00" in text:
        pos = text.index("\x00")
        raise ParseError("unexpected NUL byte (\\x00): the formula must be text", text, pos)
    multiline = "\n" in text or "\r" in text
    _BUILDER.reset(text)
    try:
        with gc_paused():
            if not _fast(multiline).parse(text, _BUILDER):
                _lark_parse(text, multiline)
    finally:
        tape, warnings = _BUILDER.tape, _BUILDER.warnings
        _BUILDER.reset("")
    _finish(tape)
    return tape, warnings


def _lark_parse(text: str, multiline: bool) -> None:
    """Lark's own parse, for what the fast path does not accept: its errors become ours."""
    from lark.exceptions import UnexpectedInput

    parser = _parser(multiline)
    _BUILDER.reset(text)
    try:
        parser.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None


# -- the fast path ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<WS>[ \t\f\r]+|\#[^\n]*)"
    r"|(?P<NUMBER>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<NAME>[^\W\d]\w*)"
    r"|(?P<POW>\*\*|\^)"
    r"|(?P<DOT_T>\.T)"
    r"|(?P<SEP>;|\n)"
    r"|(?P<PUNCT>[-+*/@(),=\[\]])"
)
_PUNCT = {"-": "MINUS", "+": "PLUS", "*": "STAR", "/": "SLASH", "@": "AT", "(": "LPAR",
          ")": "RPAR", ",": "COMMA", "=": "ASSIGN", "[": "LSQB", "]": "RSQB"}


class _Tok:
    """A token for the builder's callbacks: what they read of Lark's Token, and no more."""

    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type_: str, value: str, start: int, end: int):
        self.type = type_
        self.value = value
        self.start_pos = start
        self.end_pos = end


class _FastLALR:
    """Drives the grammar's LALR tables with the builder's callbacks over a regex tokenizer.

    The tables come from Lark once, compiled into plain data and cached as JSON beside Lark's
    own cache, so a run whose formula parses never imports Lark at all. A shift is [next state];
    a reduce is [size, rule name, callback name or None, kept child positions or None]; a
    callback of None marks the single-child rules Lark inlines (`?expr: product`), which only
    change state.
    """

    def __init__(self, data: dict, multiline: bool):
        self.start = data["start"]
        self.end = data["end"]
        self.multiline = multiline
        self.states = {int(k): {kind: tuple(act) for kind, act in row.items()}
                       for k, row in data["states"].items()}

    @staticmethod
    def compile(lark: "Lark") -> dict:
        """Lark's parse table and callback wiring as JSON-ready data."""
        from lark.parse_tree_builder import ExpandSingleChild
        from lark.parsers.lalr_analysis import Shift

        inner = lark.parser.parser.parser
        table = inner.parse_table
        states: dict = {}
        for state, row in table.states.items():
            compiled = {}
            for kind, (action, arg) in row.items():
                if action is Shift:
                    compiled[kind] = [arg]
                    continue
                size = len(arg.expansion)
                if size == 1 and isinstance(inner.callbacks[arg], ExpandSingleChild):
                    compiled[kind] = [size, arg.origin.name, None, None]
                    continue
                keep = [k for k, sym in enumerate(arg.expansion)
                        if not (sym.is_term and sym.filter_out)]
                if any(not sym.is_term and sym.name.startswith("_") for sym in arg.expansion):
                    raise RuntimeError("inlined _rules are not supported by the fast path")
                name = arg.alias or arg.origin.name
                compiled[kind] = [size, arg.origin.name, name,
                                  None if len(keep) == size else keep]
            states[str(state)] = compiled
        return {"start": table.start_states["start"], "end": table.end_states["start"],
                "states": states}

    def parse(self, text: str, builder: Builder) -> bool:
        """Parse `text`; False (having built nothing to keep) where Lark must take over."""
        states = self.states
        state_stack = [self.start]
        value_stack: list = []
        continues = _CONTINUES
        depth = 0
        prev = None
        pos = 0
        multiline = self.multiline
        for m in _TOKEN.finditer(text):
            start = m.start()
            if start != pos:
                return False  # a character no terminal matches
            pos = m.end()
            kind = m.lastgroup
            if kind == "WS":
                continue
            value = m.group()
            if kind == "PUNCT":
                kind = _PUNCT[value]
                if kind == "LPAR" or kind == "LSQB":
                    depth += 1
                elif (kind == "RPAR" or kind == "RSQB") and depth > 0:
                    depth -= 1
            elif kind == "SEP":
                if value == "\n" and multiline and (depth > 0 or prev in continues):
                    continue
                kind = "_SEP"
            prev = kind
            while True:
                act = states[state_stack[-1]].get(kind)
                if act is None:
                    return False
                if len(act) == 1:  # shift
                    state_stack.append(act[0])
                    value_stack.append(_Tok(kind, value, start, pos))
                    break
                if act[2] is None:  # an inlined single child (expr -> product): state only
                    state_stack[-1] = states[state_stack[-2]][act[1]][0]
                else:
                    self._reduce(act, state_stack, value_stack, builder)
        if pos != len(text):
            return False
        end = self.end
        while True:
            act = states[state_stack[-1]].get("$END")
            if act is None or len(act) == 1:
                return False
            if act[2] is None:
                state_stack[-1] = states[state_stack[-2]][act[1]][0]
            else:
                self._reduce(act, state_stack, value_stack, builder)
            if state_stack[-1] == end:
                return True

    def _reduce(self, act, state_stack: list, value_stack: list, builder: Builder) -> None:
        """Apply a reduce: the builder's callback on the rule's (kept) children."""
        size, origin, name, keep = act
        if size:
            children = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
            if keep is not None:
                children = [children[k] for k in keep]
        else:
            children = []
        value_stack.append(getattr(builder, name)(children))
        state_stack.append(self.states[state_stack[-1]][origin][0])


_FAST: dict[bool, _FastLALR] = {}


def _fast(multiline: bool) -> _FastLALR:
    """The fast path's tables: from memory, from the JSON cache, or compiled from Lark."""
    fast = _FAST.get(multiline)
    if fast is not None:
        return fast
    import hashlib
    import json
    import os

    key = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()
    path = _cache_path(multiline, "json")
    data = None
    if path and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as fh:
                cached = json.load(fh)
            if cached.get("grammar") == key:
                data = cached
        except (OSError, ValueError):
            data = None
    if data is None:
        data = _FastLALR.compile(_parser(multiline))
        data["grammar"] = key
        if path:
            tmp = f"{path}.{os.getpid()}.tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(data, fh)
                os.replace(tmp, path)  # atomic: a parallel run never reads half a file
            except OSError:
                pass
    fast = _FAST[multiline] = _FastLALR(data, multiline)
    return fast


def _finish(tape: Tape) -> None:
    """Check the statements and pick the outputs (the last statement's value or values)."""
    if not tape.statements:
        raise ParseError("the formula is empty", tape.text, 0,
                         "write an expression such as (x + y) * z")
    for st in tape.statements[:-1]:
        if st.name is None:
            raise ParseError(
                "only the last statement may be an unnamed expression; "
                "name this one (q = ...) or remove it", tape.text, st.pos)
    tape.outputs = list(tape.statements[-1].nodes)


# -- syntax errors in words -------------------------------------------------------------------

_WORDS = {
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
        names -= _BINARY
        operator = "an operator"
    else:
        operator = None
    order = ["NUMBER", "NAME", "LPAR", "LSQB", "RPAR", "RSQB", "COMMA", "ASSIGN", "MINUS",
             "PLUS", "STAR", "SLASH", "AT", "POW", "DOT_T", "_SEP", "$END"]
    for key in order:
        if key in names:
            words.append(_WORDS[key])
            names.discard(key)
    if operator:
        words.append(operator)
    words += sorted(_WORDS.get(n, n.lower()) for n in names)
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of formula"
    if tok.type == "_SEP":
        return "';'" if tok.value == ";" else "new line"
    value = _short(tok.value)
    if tok.type == "NUMBER":
        return f"number {value}"
    if tok.type == "NAME":
        return f"name {value}"
    return f"'{value}'"


def _open_paren(text: str, upto: int) -> int | None:
    """Offset of the innermost '(' still open at `upto`, ignoring comments."""
    stack: list[int] = []
    i = 0
    while i < upto:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = upto if nl < 0 else nl
            continue
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            stack.pop()
        elif ch in ";\n" and stack:
            pass
        i += 1
    return stack[-1] if stack else None


_CLOSER = {"(": ")", "[": "]"}


def _open_bracket(text: str, upto: int) -> int | None:
    """Offset of the innermost '(' or '[' still open at `upto`, ignoring comments."""
    stack: list[int] = []
    i = 0
    while i < upto:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = upto if nl < 0 else nl
            continue
        if ch in "([":
            stack.append(i)
        elif ch in ")]" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _where(text: str, pos: int) -> str:
    """'column N', or 'line L, column N' in a formula of several lines."""
    line, col = line_and_column(text, pos)
    return f"line {line}, column {col}" if "\n" in text.rstrip("\n") else f"column {col}"


def _ends_operand(text: str, pos: int) -> bool:
    """Whether the text just before `pos` ends an operand (a number, a name or a ')')."""
    before = text[:pos].rstrip(" \t\f\r")
    return bool(before) and (before[-1] in ")]_." or before[-1].isalnum())


def _syntax_error(text: str, exc: "UnexpectedInput") -> ParseError:
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
    hint = None
    if tok.type in _OPERAND_START and _ends_operand(text, pos):
        hint = "gradcli never multiplies implicitly: write '*' between factors, as in 2*x"
    elif tok.type == "ASSIGN":
        hint = "'=' names an intermediate at the start of a statement, as in q = x + y"
    opened = _open_paren(text, pos)
    if opened is not None and text.count("\n", opened, pos):
        line, col = line_and_column(text, opened)
        still = f"the '(' at line {line}, column {col} is still open"
        hint = still if hint is None else f"{hint}; {still}"
    return ParseError(f"unexpected {_describe(tok)}; expected {_expected_words(expected)}",
                      text, pos, hint)
