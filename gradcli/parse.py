"""Formula text → Tape, with one cached LALR parser whose inline transformer builds the tape.

Lark calls a `Builder` method as each rule reduces, so no parse tree is built and nothing here
recurses: 100 000 nested parentheses are 100 000 shifts and reduces on Lark's own stack.
Each callback returns an operand `(node_id, start, end)`: the span is the operand's text as
written (parentheses included), while the node keeps the span of its own expression.

Here: the Builder, the grammar and Lark's parser, `parse()`. The fastest path (an operator-
precedence loop over the common subset, through the same callbacks) lives in climb.py, the one
that drives Lark's tables without Lark in lalr_fast.py, the wording of syntax errors in
syntax_errors.py.
"""

from __future__ import annotations

import difflib
import gc
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import ParseError
from .climb import parse as climb
from .lalr_fast import CONTINUES, FastLALR, tables
from .ops import COMPARISONS, CONSTANTS, FUNCTIONS, OPS, Op, index_op, lookup
from .tape import Statement, Tape, shape_str
from .words import count, name_key, short, superscript

if TYPE_CHECKING:  # pragma: no cover
    from lark import Lark, Token

# The rule table itself: ops are looked up in it (ops.lookup) as each node is built, so an
# entry a test patches (monkeypatch.setitem(parse._OP, ...)) is what parsing uses.
_OP = OPS


def grammar_text() -> str:
    """The grammar, from inside the installed package or from a checkout's grammars/ (read only
    by Lark's own parser: the fast path's tables are shipped)."""
    from importlib import resources
    from pathlib import Path

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
                    if depth > 0 or prev in CONTINUES:
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
        value = float(tok.value)  # a Python float: numpy only where a sweep needs it (Tape)
        if not math.isfinite(value):
            self.warnings.append(f"the number {short(tok.value, 30)} is too large for float64: "
                                 "it is read as Infinity")
        tape = self.tape
        i = tape.add(lookup("const"), (), tok.start_pos, tok.end_pos)
        tape.consts[i] = value
        return (i, tok.start_pos, tok.end_pos)

    def name(self, c):
        tok = c[0]
        tape = self.tape
        s, e = tok.start_pos, tok.end_pos
        name = self._name_key(tok.value, s)
        i = tape.bound.get(name)
        if i is not None:
            return (i, s, e)
        i = tape.variables.get(name)
        if i is not None:
            return (i, s, e)
        if name in CONSTANTS:
            i = tape.add(lookup("const"), (), s, e)
            tape.consts[i] = CONSTANTS[name]
            return (i, s, e)
        if name in FUNCTIONS:
            raise self._error(f"{name} is a function: call it with parentheses, as {name}(...)",
                              s)
        i = tape.add(lookup("var"), (), s, e)
        tape.variables[name] = i
        tape.names[i] = name
        return (i, s, e)

    # -- operators ----------------------------------------------------------------------------
    def _binary(self, opname: str, a, b):
        try:  # the per-node hot path: one dict probe (a try costs nothing until it raises)
            op = _OP[opname]
        except KeyError:
            op = lookup(opname)  # raises, naming the op
        i = self.tape.add(op, (a[0], b[0]), a[1], b[2])
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

    def compare(self, c):
        a, tok, b = c
        return self._binary(COMPARISONS[tok.value], a, b)

    def neg(self, c):
        tok, a = c
        tape = self.tape
        i = a[0]
        # A minus sign on a number literal is part of the number: -3 is one constant.
        if tape.ops[i].name == "const" and i in tape.consts and i == len(tape) - 1 \
                and i not in tape.names:
            tape.consts[i] = -tape.consts[i]
            tape.starts[i] = tok.start_pos
            tape.ends[i] = a[2]
            return (i, tok.start_pos, a[2])
        j = tape.add(lookup("neg"), (i,), tok.start_pos, a[2])
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
        op = lookup(opname)
        if op.axis and len(args) == 3:
            args[2] = self._keep(name.value, args[2], op.max_arity == 3)
        lo, hi = _arity(op)
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise self._error(f"{name.value}() takes {_takes(op)}, got {len(args)}",
                              name.start_pos)
        if op.axis and len(args) >= 2:
            self._check_axis(name.value, args[1])
        i = self.tape.add(op, tuple(a[0] for a in args), name.start_pos, rpar.end_pos)
        return (i, name.start_pos, rpar.end_pos)

    def _keep(self, fname: str, a, allowed: bool):
        """`sum(A, 1, keep)`: the bare word keep (or keepdims) becomes a constant 1."""
        tape = self.tape
        i = a[0]
        word = tape.text[a[1]:a[2]]
        if word not in ("keep", "keepdims") or tape.ops[i].name != "var":
            raise self._error(f"the third argument of {fname}(A, axis, keep) can only be the "
                              "word keep, which keeps the reduced axis (length 1)", a[1])
        if not allowed:
            raise self._error(f"{fname}() keeps its input's shape already: keep does not apply",
                              a[1])
        if i == len(tape) - 1 and tape.variables.get(word) == i:  # made by this word alone
            del tape.variables[word]
            del tape.names[i]
            tape.ops[i] = lookup("const")
        else:
            i = tape.add(lookup("const"), (), a[1], a[2])
        tape.consts[i] = 1.0
        return (i, a[1], a[2])

    def _check_axis(self, fname: str, a) -> None:
        tape = self.tape
        value = tape.consts.get(a[0])
        # (numpy has at most 64 axes: a bigger one, 1e300 or inf, is never an axis)
        if value is None or a[0] in tape.names or not isinstance(value, float) \
                or not abs(value) <= 64 \
                or value != int(value):
            raise self._error(f"the axis of {fname}(A, axis) must be a whole number such as 0 "
                              "or 1", a[1])

    def call_empty(self, c):
        name, _, rpar = c
        opname = FUNCTIONS.get(name.value)
        if opname is None:
            raise self._unknown_function(name)
        raise self._error(f"{name.value}() takes {_takes(lookup(opname))}, got none",
                          name.start_pos)

    # -- tensors ------------------------------------------------------------------------------
    def matmul(self, c):
        a, _, b = c
        return self._binary("matmul", a, b)

    def index(self, c):
        """a[i], A[i, j], A[:, j], a[i:j:k]: one node over a and the given index values."""
        a, _, subs, rsqb = c
        tape = self.tape
        layout = []
        ids = [a[0]]
        for sub in subs:
            if isinstance(sub, _Slice):
                layout.append(tuple(p is not None for p in sub.parts))
                parts = [p for p in sub.parts if p is not None]
            else:
                layout.append(None)
                parts = [sub]
            for p in parts:
                value = tape.consts.get(p[0])
                if value is not None and p[0] not in tape.names and (
                        not isinstance(value, float) or not math.isfinite(value)
                        or value != int(value)):
                    raise self._error("an index must be a whole number such as 0, 2 or -1",
                                      p[1])
                ids.append(p[0])
        i = tape.add(index_op(tuple(layout)), tuple(ids), a[1], rsqb.end_pos)
        return (i, a[1], rsqb.end_pos)

    def slice(self, c):
        """`start:stop:step` with any part left out; its parts in order, None where missing."""
        parts: list = [None, None, None]
        k = 0
        for child in c:
            if isinstance(child, tuple):
                parts[k] = child
            else:  # a ':' token
                k += 1
        return _Slice(parts)

    def transpose_attr(self, c):
        a, tok = c
        i = self.tape.add(lookup("transpose"), (a[0],), a[1], tok.end_pos)
        return (i, a[1], tok.end_pos)

    def array(self, c):
        lsqb, items, rsqb = c
        tape = self.tape
        s, e = lsqb.start_pos, rsqb.end_pos
        ids = [a[0] for a in items]
        shapes = [None] * len(ids)
        literal = True
        for k, i in enumerate(ids):
            v = tape.consts.get(i)
            if v is None or i in tape.names:
                literal = False
                break
            shapes[k] = v.shape if hasattr(v, "shape") else ()
        n = len(tape)
        if literal and ids == list(range(n - len(ids), n)):
            first = shapes[0]
            for k, shape in enumerate(shapes):
                if shape != first:
                    raise self._error(_ragged(first, shape), items[k][1])
            import numpy as np  # a tensor literal: numpy from here on

            value = np.array([tape.consts[i] for i in ids], dtype=np.float64)
            for i in reversed(ids):  # the elements become one constant
                del tape.consts[i]
                tape.ops.pop()
                tape.inputs.pop()
                tape.starts.pop()
                tape.ends.pop()
            j = tape.add(lookup("const"), (), s, e)
            tape.consts[j] = value
            return (j, s, e)
        j = tape.add(lookup("stack"), tuple(ids), s, e)
        return (j, s, e)

    def _unknown_function(self, name: Token) -> ParseError:
        close = difflib.get_close_matches(name.value, list(FUNCTIONS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}(...)?" if close else (
            "functions: " + ", ".join(sorted(FUNCTIONS)))
        return self._error(f"unknown function {short(name.value, 30)}()", name.start_pos, hint)

    def first_arg(self, c):
        return [c[0]]

    def next_arg(self, c):
        args, _, a = c
        args.append(a)
        return args

    first_output = first_arg
    next_output = next_arg

    def _name_key(self, name: str, pos: int) -> str:
        """The name as --at and --wrt know it (NFKC: ﬁ is fi, x₁ is x1); x² is refused."""
        if name.isascii():
            return name
        sup = superscript(name)
        if sup is not None:
            base = short(name[: name.index(sup)], 30) or "x"
            raise self._error(f"{short(name, 30)}: a superscript ({sup}) is not part of a name; "
                              f"write {base}^{name_key(sup)} for a power", pos + name.index(sup))
        return name_key(name)

    # -- statements ---------------------------------------------------------------------------
    def bare_statement(self, c):
        outputs = c[0]
        self.tape.statements.append(Statement(None, [a[0] for a in outputs], outputs[0][1]))

    def assign_statement(self, c):
        name, _, a = c
        tape = self.tape
        n, s = self._name_key(name.value, name.start_pos), name.start_pos
        if n in CONSTANTS:
            raise self._error(f"{n} is a constant and cannot be assigned", s)
        if n in tape.bound:
            raise self._error(f"{short(n, 30)} is assigned twice; give each intermediate its own "
                              "name", s)
        if n in tape.variables:
            raise self._error(f"{short(n, 30)} is used as an input before this line assigns it", s)
        i = a[0]
        if i in tape.names or not tape.inputs[i]:
            # The value already has a name (or is a leaf): a named copy keeps both names.
            i = tape.add(lookup("id"), (i,), a[1], a[2])
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


class _Slice:
    """A slice inside [...] while its subscripts are being read."""

    __slots__ = ("parts",)

    def __init__(self, parts: list):
        self.parts = parts


def index_variables(tape: Tape) -> set[str]:
    """The variables an index depends on (y in s[y]): whole numbers read at run time, which
    carry no gradient. One backward pass over the tape."""
    need = [False] * len(tape)
    for i, op in enumerate(tape.ops):
        if op.name == "index":
            for j in tape.inputs[i][1:]:
                need[j] = True
    if not any(need):
        return set()
    for i in range(len(tape) - 1, -1, -1):
        if need[i]:
            for j in tape.inputs[i]:
                need[j] = True
    return {name for name, i in tape.variables.items() if need[i]}


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
        return count(lo, "argument")
    if op.axis and hi == 3:
        return f"{lo} to {hi} arguments (a tensor, an axis and keep)"
    if op.axis:
        return f"{lo} or {hi} arguments (a tensor and an axis)"
    return f"{lo} to {hi} arguments"


def _ragged(first, shape) -> str:
    return (f"the elements of a [...] literal must have one shape: this one has shape "
            f"{shape_str(shape)}, the first {shape_str(first)}")


# -- the parser -------------------------------------------------------------------------------

_BUILDER = Builder()
_PARSERS: dict = {}


def _parser(multiline: bool) -> "Lark":
    """Lark's LALR parser for the grammar, built in memory (~30 ms, only for syntax errors): never
    from a cache file, since Lark's cache is a pickle and unpickling runs code."""
    parser = _PARSERS.get(multiline)
    if parser is None:
        from lark import Lark

        parser = Lark(
            grammar_text(),
            parser="lalr",
            lexer="basic",  # the contextual lexer rejects a newline before the postlexer sees it
            transformer=_BUILDER,
            postlex=_newlines() if multiline else None,
            cache=False,
        )
        _PARSERS[multiline] = parser
    return parser


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

    Most formulas go through gradcli.climb (an operator-precedence loop that builds the very
    tape the Builder builds); where it gives up (tensors, indexing, any error), a
    one-regex tokenizer and a lean driver over Lark's own LALR tables and callbacks run; where
    that path meets anything it does not accept, Lark's parser runs instead, so every syntax
    error is Lark's, worded as before.
    """
    if "\x00" in text:
        pos = text.index("\x00")
        raise ParseError("unexpected NUL byte (\\x00): the formula must be text", text, pos)
    multiline = "\n" in text or "\r" in text
    _BUILDER.reset(text)
    try:
        with gc_paused():
            if not climb(text, _BUILDER):  # the common subset; else the LALR driver, Lark
                _BUILDER.reset(text)
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
        from .syntax_errors import syntax_error  # only a formula that fails pays for it

        raise syntax_error(text, exc) from None


def _fast(multiline: bool) -> FastLALR:
    """The fast path (gradcli.lalr_fast) over this grammar's tables, shipped in the package."""
    return tables(multiline, grammar_text, lambda: _parser(multiline))


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
