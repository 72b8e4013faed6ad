"""The parser's fastest path: an operator-precedence loop over the grammar's common subset.

Numbers, names, calls, parentheses, unary - and +, the binary operators + - * / @ ^ ** and the
comparisons, outputs (a, b), assignments and statements (; or newline, with the grammar's line
continuations). It builds the very tape Lark's parser and gradcli.parse.Builder build: the nodes
in the same order (post-order, as both parsers make them), with the same ops, inputs, spans,
names, literals, variables and statements, doing what the Builder's callbacks do, or calling
them (a number met for the first time, a name that is not plain ASCII, a call with an axis, a
statement that is not a new plain name's assignment). Anything else (tensors, indexing, `.T`, a
syntax error, any error the Builder raises) makes `parse` return False, and the caller starts
over with the LALR driver (gradcli.lalr_fast), then Lark: every error is theirs, and nothing the
grammar rejects is accepted. No recursion: explicit stacks of operators and of operands
(node, start, end), so 100 000 nested parentheses are 100 000 list entries.

The text is tokenized by one regex a chunk at a time into plain lists (token strings, starts,
ends), with no token objects. Leaves repeat (a wide formula has a hundred names and five
numbers): each distinct token is classified once per parse, later ones are dictionary hits.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from itertools import accumulate, compress, islice, repeat
from operator import itemgetter, not_

from .lalr_fast import _Tok as Tok  # what the Builder's callbacks read of a token
from .ops import COMPARISONS, CONSTANTS, FUNCTIONS, OPS
from .tape import Statement

#: One token per match: the tokens of gradcli.lalr_fast's tokenizer (itself checked against
#: Lark's lexer), with `NAME(` (or `NAME (`) as one token and the ignorable (blanks, a
#: comment) as tokens of their own. The alternatives start with different characters except
#: ** and *, <= and <, ... (the longer first), so their order is free: the most frequent first,
#: for speed. A run of parentheses is one token (a wide formula ends in ')))))' often). For an
#: ASCII text, the ASCII classes (the same characters there, and faster than the Unicode ones).
_TOKEN_SOURCE = (
    r"\(+|\)+|[\-+/@,;\n^]"
    r"|{name}{word}*(?:[ \t\f\r]*\()?"
    r"|\*\*?|[<>=!]=|[<>=]"
    r"|[ \t\f\r]+|\#[^\n]*"
    r"|(?:{digit}+(?:\.{digit}*)?|\.{digit}+)(?:[eE][+-]?{digit}+)?"
    r"|\.T|[\[\]:]"
)
_TOKEN_ASCII = re.compile(_TOKEN_SOURCE.format(name="[A-Za-z_]", word="[A-Za-z0-9_]",
                                               digit="[0-9]"))
_TOKEN_UNICODE: list = []  # compiled when a text that is not ASCII comes


def _token_re(text: str):
    if text.isascii():
        return _TOKEN_ASCII
    if not _TOKEN_UNICODE:
        _TOKEN_UNICODE.append(re.compile(_TOKEN_SOURCE.format(name=r"[^\W\d]", word=r"\w",
                                                              digit=r"\d")))
    return _TOKEN_UNICODE[0]


_IGNORABLE = frozenset(" \t\f\r#")
#: The first characters of the tokens that are neither a NAME, `NAME(` nor a NUMBER (these
#: begin with a letter, a decimal digit or '.').
_PUNCTUATION = frozenset("()-+/@,;\n^*<>=!.[]:")
_FIRST = itemgetter(0)

#: Texts longer than this are tokenized a chunk at a time (cut right after a ')'), so the token
#: lists never hold more than a chunk's worth.
CHUNK = 1 << 16

# Precedences on the operator stack: markers below every operator, binary operators even,
# the unary ones odd (and between * and ^: -x^2 is -(x^2), -x*y is (-x)*y).
_BOTTOM, _PAREN, _CALL = 0, 2, 4
_CMP, _ADD, _MUL, _NEG, _POS, _POW = 10, 20, 30, 41, 43, 60
_ALL = _CMP - 1  # below every operator, above every marker
_PREC = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "@": _MUL, "^": _POW, "**": _POW,
         **{c: _CMP for c in COMPARISONS}}
_BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow",
           "**": "pow", **COMPARISONS}


class _Bail(Exception):
    """Not for this path: the LALR driver takes over."""


def _tokens(token, text: str, pos: int, end: int, ignorable: bool):
    """The tokens of text[pos:end]: a list of strings, a list of their starts (sorted; one more
    may follow) and an iterable of their ends; None where a character matches no token."""
    toks = token.findall(text, pos, end)
    starts = list(accumulate(map(len, toks), initial=pos))
    if starts[-1] != end:
        return None
    if not ignorable:
        return toks, starts, islice(starts, 1, None)
    ends = starts[1:]
    keep = list(map(not_, map(_IGNORABLE.__contains__, map(_FIRST, toks))))
    return list(compress(toks, keep)), list(compress(starts, keep)), compress(ends, keep)


def _chunks(text: str):
    """(tokens, starts, ends) a chunk at a time; a chunk ends right after a ')', which no token
    runs across (a text with a comment is one chunk: a ')' may sit inside the comment)."""
    n = len(text)
    ignorable = " " in text or "\t" in text or "#" in text or "\r" in text or "\f" in text
    token = _token_re(text)
    if n <= CHUNK or "#" in text:
        yield _tokens(token, text, 0, n, ignorable)
        return
    pos = 0
    while pos < n:
        cut = text.find(")", pos + CHUNK)
        end = n if cut < 0 else cut + 1
        yield _tokens(token, text, pos, end, ignorable)
        pos = end


def parse(text: str, builder) -> bool:
    """Build `text`'s tape into `builder.tape` (fresh from builder.reset(text)); False where the
    LALR driver must take over (the caller resets the builder first)."""
    try:
        return _parse(text, builder)
    except Exception:  # _Bail, or any error a Builder callback raises: the LALR path decides
        return False


def _parse(text: str, builder) -> bool:
    tape = builder.tape
    ops, inputs, starts, ends = tape.ops, tape.inputs, tape.starts, tape.ends
    literals = _consts(tape)
    names, variables = tape.names, tape.variables
    ops_append, inputs_append = ops.append, inputs.append
    starts_append, ends_append = starts.append, ends.append
    warnings = builder.warnings
    const_op, neg_op, var_op = OPS.get("const"), OPS.get("neg"), OPS.get("var")
    binops: dict = {}  # operator token -> its Op, looked up in the table once per parse
    binops_get = binops.get
    prec_get = _PREC.get

    ids: dict = {}  # name token -> its node (a variable or an assigned name), once met
    ids_get = ids.get
    numbers: dict = {}  # number token -> its value, once the Builder has read it
    numbers_get = numbers.get
    calls: dict = {}  # `name(` token -> (op or None, takes one argument, fewest, most, name)
    calls_get = calls.get

    vstack: list = []  # operands: (node, start, end), the span as written
    vpush, vpop = vstack.append, vstack.pop
    pstack = [_BOTTOM]  # operator precedences (and markers)
    ostack: list = [None]  # what each needs: an Op, a start offset, a call's details
    ppush, ppop, opush, opop = pstack.append, pstack.pop, ostack.append, ostack.pop

    nn = len(ops)
    depth = 0  # open ( and name( at this point
    operand = True  # an operand comes next (else an operator, a closer or a separator)
    assign = None  # the target of this statement's `name =`, as (token, start, end)
    first = True
    for chunk in _chunks(text):
        if chunk is None:
            return False
        toks, tstarts, tends = chunk
        it = zip(toks, tstarts, tends)
        if first:
            first = False
            assign = _assignment(toks, 0, it)
        for tok, s, e in it:
            if operand:
                i = ids_get(tok)
                if i is not None:
                    vpush((i, s, e))
                    operand = False
                    continue
                if tok[0] == "(":
                    if e - s == 1:
                        ppush(_PAREN)
                        opush(s)
                    else:
                        pstack.extend(repeat(_PAREN, e - s))
                        ostack.extend(range(s, e))
                    depth += e - s
                    continue
                c = calls_get(tok)
                if c is not None:
                    ppush(_CALL)
                    opush((c, s, len(vstack)))
                    depth += 1
                    continue
                v = numbers_get(tok)
                if v is not None:
                    literals[nn] = v
                    ops_append(const_op)
                    inputs_append(())
                    starts_append(s)
                    ends_append(e)
                    vpush((nn, s, e))
                    nn += 1
                    operand = False
                    continue
                if tok == "-":
                    ppush(_NEG)
                    opush(s)
                    continue
                if tok == "+":
                    ppush(_POS)
                    opush(s)
                    continue
                if tok == "\n" or tok == ";":
                    if len(pstack) == 1 and not vstack and assign is None:
                        # an empty statement: the next may be an assignment
                        k = bisect_left(tstarts, s) + 1
                        assign = _assignment(toks, k, it)
                    elif tok == ";":
                        return False
                    continue  # else the line goes on (after an operator, '(', ',' or '=')
                # A token met for the first time
                c = tok[0]
                if c not in _PUNCTUATION and not c.isdecimal() and tok[-1] != "(":  # NAME
                    a = _name(builder, tok, s, e, var_op)
                    if a is None:
                        return False  # sin without (...): the LALR path says so
                    if a[0] in names:  # a variable or an assigned name: the same node later
                        ids[tok] = a[0]
                    vpush(a)
                    operand = False
                elif c.isdecimal() or (c == "." and tok != ".T"):  # NUMBER
                    before = len(warnings)
                    i, s, e = builder.number([Tok("NUMBER", tok, s, e)])
                    if len(warnings) == before:  # a warning is given at every occurrence
                        numbers[tok] = literals[i]
                    vpush((i, s, e))
                    operand = False
                elif c not in _PUNCTUATION:  # NAME(
                    c = calls[tok] = _callee(tok[:-1].rstrip(" \t\f\r"))
                    ppush(_CALL)
                    opush((c, s, len(vstack)))
                    depth += 1
                    continue
                else:
                    return False  # ) ] [ . , = and the rest: not here
                nn = len(ops)
                continue

            # after an operand
            if tok[0] == ")":
                for e in range(s + 1, e + 1):  # each ')' of the run
                    while True:
                        p = ppop()
                        x = opop()
                        if p >= _CMP:
                            if not p & 1:  # a binary operator
                                b = vpop()
                                a = vstack[-1]
                                ops_append(x)
                                inputs_append((a[0], b[0]))
                                starts_append(a[1])
                                ends_append(b[2])
                                vstack[-1] = (nn, a[1], b[2])
                                nn += 1
                            elif p == _NEG:
                                nn = _negate(tape, literals, vstack, x, nn, neg_op)
                            else:
                                a = vstack[-1]
                                vstack[-1] = (a[0], x, a[2])
                            continue
                        if p == _PAREN:
                            a = vstack[-1]
                            vstack[-1] = (a[0], x, e)
                        elif p == _CALL:
                            c, ns, base = x
                            if c[1] and len(vstack) - base == 1:
                                a = vstack[-1]
                                ops_append(c[0])
                                inputs_append((a[0],))
                                starts_append(ns)
                                ends_append(e)
                                vstack[-1] = (nn, ns, e)
                                nn += 1
                            else:
                                nv = len(variables)
                                _call(builder, vstack, c, ns, base, e - 1, e)
                                nn = len(ops)
                                if len(variables) < nv:  # `keep` turned a variable into a 1
                                    for t in [t for t, i in ids.items() if i not in names]:
                                        del ids[t]
                        else:
                            return False  # a ')' with no '('
                        depth -= 1
                        break
                continue
            p = prec_get(tok)
            if p is not None:
                if pstack[-1] >= p and p != _POW:  # ^ is right-associative
                    nn = _reduce(pstack, ostack, tape, literals, vstack, nn, neg_op, p)
                op = binops_get(tok)
                if op is None:
                    op = binops[tok] = OPS.get(_BINARY[tok])
                    if op is None:
                        return False
                ppush(p)
                opush(op)
                operand = True
                continue
            if tok == ",":
                nn = _reduce(pstack, ostack, tape, literals, vstack, nn, neg_op)
                top = pstack[-1]
                if top == _PAREN or (top == _BOTTOM and assign is not None):
                    return False  # (a, b) and q = a, b are not in the grammar
                operand = True
                continue
            if tok == "\n" and depth:
                continue  # inside brackets a line goes on
            if (tok == "\n" or tok == ";") and not depth:
                nn = _reduce(pstack, ostack, tape, literals, vstack, nn, neg_op)
                nn = _statement(builder, vstack, assign, ids)
                operand = True
                k = bisect_left(tstarts, s) + 1
                assign = _assignment(toks, k, it)
                continue
            return False  # ( [ ] . = ; inside brackets, a name after an operand, ...
    if operand:
        if vstack or len(pstack) > 1 or assign is not None:
            return False  # the text ends where an operand should come
        return True
    if depth:
        return False
    _reduce(pstack, ostack, tape, literals, vstack, nn, neg_op)
    _statement(builder, vstack, assign, ids)
    return True


def _assignment(toks: list, k: int, it):
    """At a statement's first token toks[k]: for `name =`, consume both and return the name's
    (token, start, end); else None."""
    if k + 1 < len(toks) and toks[k + 1] == "=" and toks[k][0] not in _PUNCTUATION \
            and not toks[k][0].isdecimal() and toks[k][-1] != "(":
        target = next(it)
        next(it)
        return target
    return None


def _name(builder, tok: str, s: int, e: int, var_op):
    """A name met for the first time, as Builder.name reads it (a plain ASCII one inline, any
    other by the Builder): its operand, or None for a function's name."""
    if not tok.isascii() or var_op is None:
        return builder.name([Tok("NAME", tok, s, e)])
    tape = builder.tape
    i = tape.bound.get(tok)
    if i is None:
        i = tape.variables.get(tok)
    if i is None:
        if tok in CONSTANTS:
            return builder.name([Tok("NAME", tok, s, e)])  # a new node at each use
        if tok in FUNCTIONS:
            return None
        i = tape.add(var_op, (), s, e)
        tape.variables[tok] = i
        tape.names[i] = tok
    return (i, s, e)


def _consts(tape) -> dict:
    """The tape's dict of constant values as parsing fills it (`consts` where the Tape has it:
    its `literals` converts them to numpy on first read)."""
    consts = getattr(tape, "consts", None)
    return tape.literals if consts is None else consts


def _negate(tape, literals: dict, vstack: list, start: int, nn: int, neg_op) -> int:
    """Unary minus on the top operand, as Builder.neg: a number literal just read takes the
    sign (-3 is one constant), anything else gets a neg node. Returns the node count."""
    a = vstack[-1]
    i = a[0]
    if i == nn - 1 and tape.ops[i].name == "const" and i in literals and i not in tape.names:
        literals[i] = -literals[i]
        tape.starts[i] = start
        tape.ends[i] = a[2]
        vstack[-1] = (i, start, a[2])
        return nn
    if neg_op is None:
        raise _Bail
    tape.add(neg_op, (i,), start, a[2])
    vstack[-1] = (nn, start, a[2])
    return nn + 1


def _reduce(pstack: list, ostack: list, tape, literals: dict, vstack: list, nn: int,
            neg_op, p: int = _ALL) -> int:
    """Apply the operators of precedence `p` or more on top of the stack (all of them, down to
    the innermost marker, by default); returns the node count."""
    while pstack[-1] >= p:
        q = pstack.pop()
        x = ostack.pop()
        if q == p == _CMP:
            raise _Bail  # a < b < c does not chain
        if q == _NEG:
            nn = _negate(tape, literals, vstack, x, nn, neg_op)
        elif q == _POS:
            a = vstack[-1]
            vstack[-1] = (a[0], x, a[2])
        else:
            b = vstack.pop()
            a = vstack[-1]
            tape.add(x, (a[0], b[0]), a[1], b[2])
            vstack[-1] = (nn, a[1], b[2])
            nn += 1
    return nn


def _callee(name: str) -> tuple:
    """How a call of `name` is built: (op, takes one argument, fewest, most, name) for a plain
    function (op None: the Builder's call decides, as for sum(A, axis, keep)). An unknown
    function is the LALR path's to report."""
    opname = FUNCTIONS.get(name)
    if opname is None:
        raise _Bail
    op = OPS.get(opname)
    if op is None or op.axis:
        return (None, False, 0, 0, name)
    if op.arity < 0:  # as parse._arity
        lo, hi = 1, None
    else:
        lo = op.arity
        hi = op.max_arity if op.max_arity is not None else op.arity
    return (op, lo <= 1 and (hi is None or hi >= 1), lo, hi, name)


def _call(builder, vstack: list, c: tuple, ns: int, base: int, s: int, e: int) -> None:
    """A call the loop does not make inline (several arguments, an axis, a wrong count)."""
    op, _, lo, hi, name = c
    args = vstack[base:]
    del vstack[base:]
    n = len(args)
    if op is not None and lo <= n and (hi is None or n <= hi):
        i = builder.tape.add(op, tuple([a[0] for a in args]), ns, e)
        vstack.append((i, ns, e))
        return
    vstack.append(builder.call([Tok("NAME", name, ns, ns + len(name)), None, args,
                                Tok("RPAR", ")", s, e)]))


def _statement(builder, vstack: list, assign, ids: dict) -> int:
    """A statement ends: recorded as the Builder records it (`name = ...` with a plain ASCII
    name that is new here, inline; anything else by the Builder, which checks it). Returns the
    node count."""
    tape = builder.tape
    if assign is None:
        builder.bare_statement([list(vstack)])
    else:
        if len(vstack) != 1:
            raise _Bail
        tok, s, e = assign
        a = vstack[0]
        id_op = OPS.get("id")
        if tok.isascii() and id_op is not None and tok not in CONSTANTS \
                and tok not in tape.bound and tok not in tape.variables:
            i = a[0]  # as Builder.assign_statement
            if i in tape.names or not tape.inputs[i]:
                i = tape.add(id_op, (i,), a[1], a[2])  # a named copy keeps both names
            else:
                tape.starts[i], tape.ends[i] = a[1], a[2]
            tape.names[i] = tok
            tape.bound[tok] = i
            tape.statements.append(Statement(tok, [i], s))
        else:
            builder.assign_statement([Tok("NAME", tok, s, e), None, a])
            i = tape.statements[-1].nodes[0]
        ids[tok] = i
    vstack.clear()
    return len(tape.ops)
