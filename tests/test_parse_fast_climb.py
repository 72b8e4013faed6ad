"""The parser's fastest path (gradcli.climb, an operator-precedence loop over the grammar's
common subset) must build exactly the tape Lark's own parser builds with the Builder, field by
field, or give up (and then parse() gives what it gave before: the LALR driver's tape, Lark's
error with its caret)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli.climb as C
import gradcli.parse as P
from gradcli.errors import GradcliError
from gradcli.ops import FUNCTIONS

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
import formulas  # noqa: E402  (the benchmarks' wide and deep generators)

EXAMPLES = int(os.environ.get("GRADCLI_HYPOTHESIS_EXAMPLES", "400"))


def _fields(tape, warnings):
    """Everything a tape holds, comparable with ==: ops by identity, values by type and repr,
    dicts in their order."""
    consts = C._consts(tape)
    return {
        "ops": [(op.name, id(op)) for op in tape.ops], "inputs": tape.inputs,
        "starts": tape.starts, "ends": tape.ends, "names": list(tape.names.items()),
        "consts": [(k, type(v).__name__, repr(v)) for k, v in consts.items()],
        "variables": list(tape.variables.items()), "bound": list(tape.bound.items()),
        "statements": [(s.name, s.nodes, s.pos) for s in tape.statements],
        "outputs": tape.outputs, "warnings": warnings, "text": tape.text,
    }


def _build(text: str, path: str):
    """The tape's fields by one path ("climb", "lalr" or "lark"), "fallback" where that path
    gives up, or the error's text."""
    multiline = "\n" in text or "\r" in text
    P._BUILDER.reset(text)
    try:
        if path == "climb":
            if not C.parse(text, P._BUILDER):
                return "fallback"
        elif path == "lalr":
            if not P._fast(multiline).parse(text, P._BUILDER):
                return "fallback"
        else:
            P._parser(multiline).parse(text)
        tape = P._BUILDER.tape
        P._finish(tape)
        return _fields(tape, list(P._BUILDER.warnings))
    except GradcliError as exc:
        return "error: " + exc.message
    except Exception as exc:  # Lark's syntax errors
        return "lark: " + type(exc).__name__
    finally:
        P._BUILDER.reset("")


def _outcome(text: str):
    """What parse() gives: the tape's fields, or the error as printed (message and caret)."""
    try:
        tape, warnings = P.parse(text)
    except GradcliError as exc:  # the message, where the caret goes, the hint
        return ("error", type(exc).__name__, str(exc), sorted(vars(exc).items()))
    return _fields(tape, warnings)


def _agrees(text: str) -> bool:
    """climb against Lark; True where climb took the text."""
    fast = _build(text, "climb")
    if fast == "fallback":
        return False
    assert fast == _build(text, "lark"), text
    return True


# -- random programs over the whole language --------------------------------------------------

NAMES = ["x", "y", "q", "w1", "θ", "η", "x₁", "ﬁ", "fi", "keep", "pi", "e", "π", "_a", "T"]
NUMBERS = ["2", "0.5", ".5", "1e3", "2.", "0", "3e-2", "1e999", "10", "7E+1"]
BINARY = ["+", "-", "*", "/", "^", "**", "@", "<", "<=", ">", ">=", "==", "!="]
CALLS = sorted(FUNCTIONS) + ["foo", "sine"]
GAPS = ["", "", "", "", " ", "\t", "\n", " # note\n", "\r\n", "  "]


def _expr(rng: random.Random, depth: int) -> list[str]:
    """An expression as tokens, mostly valid, sometimes not."""
    r = rng.random()
    if depth <= 0 or r < 0.3:
        if rng.random() < 0.3:
            return [rng.choice(NUMBERS)]
        return [rng.choice(NAMES)]
    d = depth - 1
    if r < 0.55:
        return _expr(rng, d) + [rng.choice(BINARY)] + _expr(rng, d)
    if r < 0.63:
        return [rng.choice("-+")] + _expr(rng, d)
    if r < 0.72:
        return ["("] + _expr(rng, d) + [")"]
    if r < 0.86:
        fn = rng.choice(CALLS)
        out = [fn, "("]
        for k in range(rng.choice([1, 1, 1, 2, 2, 3, 0])):
            out += ([","] if k else []) + _expr(rng, d)
        if fn in ("sum", "mean") and rng.random() < 0.3:
            out += [",", "0", ",", "keep"]
        return out + [")"]
    if r < 0.9:
        return ["where", "("] + _expr(rng, d) + ["<", "0", ","] + _expr(rng, d) + [","] \
            + _expr(rng, d) + [")"]
    if r < 0.94:
        return ["["] + _expr(rng, d) + [","] + _expr(rng, d) + ["]"]
    if r < 0.97:
        return _expr(rng, d) + ["[", rng.choice(["0", "1", ":", "0:1", "-1", "y"]), "]"]
    return _expr(rng, d) + [".T"]


def _program(rng: random.Random) -> str:
    statements = []
    for k in range(rng.choice([1, 1, 2, 3, 4])):
        body = _expr(rng, rng.randint(0, 5))
        if rng.random() < 0.15:
            body += [","] + _expr(rng, 2)
        if rng.random() < 0.5:
            body = [rng.choice(NAMES[:8] + ["a", "b", "c"]), "="] + body
        statements.append(body)
    out = []
    for k, body in enumerate(statements):
        if k:
            out.append(rng.choice([";", "\n", "\r\n", ";;", "\n\n", "; "]))
        for tok in body:
            out.append(tok)
            out.append(rng.choice(GAPS))
    if rng.random() < 0.05:  # now and then, an error
        out.insert(rng.randrange(len(out) + 1), rng.choice(["$", ")", "(", ",", "=", "\\", ";"]))
    return "".join(out)


SIMPLE_CALLS = ["sin", "exp", "tanh", "log", "sqrt", "abs", "max", "min", "atan2", "sum"]


def _simple(rng: random.Random, depth: int, names: list) -> list[str]:
    """An expression of the subset climb takes (no tensors, no errors), as tokens."""
    r = rng.random()
    if depth <= 0 or r < 0.25:
        return [rng.choice(NUMBERS[:-3])] if rng.random() < 0.3 else [rng.choice(names)]
    d = depth - 1
    if r < 0.55:
        return _simple(rng, d, names) + [rng.choice(BINARY)] + ["("] + _simple(rng, d, names) \
            + [")"] if rng.random() < 0.3 else \
            _simple(rng, d, names) + [rng.choice(BINARY[:7])] + _simple(rng, d, names)
    if r < 0.65:
        return [rng.choice(["-", "+", "- -", "-+"])] + _simple(rng, d, names)
    if r < 0.8:
        return ["("] * rng.randint(1, 3) + _simple(rng, d, names) + [")"] * 0 if False else \
            (lambda k: ["("] * k + _simple(rng, d, names) + [")"] * k)(rng.randint(1, 3))
    fn = rng.choice(SIMPLE_CALLS)
    n = 2 if fn == "atan2" else rng.choice([1, 2, 3]) if fn in ("max", "min") else 1
    out = [fn, "("]
    for k in range(n):
        out += ([","] if k else []) + _simple(rng, d, names)
    return out + [")"]


def _staged(rng: random.Random) -> str:
    """A staged program: fresh names assigned (often a parenthesised or signed value, whose
    span the name takes), used by later statements, outputs at the end."""
    names = ["x", "y", "θ", "x₁", "pi", "w1"]
    out = []
    for k in range(rng.randint(1, 5)):
        target = rng.choice(["t", "τ", "ﬁ"]) + str(k)
        out += [target, "="] + _simple(rng, rng.randint(0, 4), names) \
            + [rng.choice([";", "\n", "\r\n", "; ", "\n\n"])]
        names.append(target)
    out += _simple(rng, 3, names)
    if rng.random() < 0.3:
        out += [","] + _simple(rng, 2, names)
    return "".join(tok + rng.choice(GAPS[:6]) if tok not in ("\n", "\r\n") else tok
                   for tok in out)


def test_random_staged_programs_take_the_fast_path_and_build_what_lark_builds():
    rng = random.Random(4)
    taken = sum(_agrees(_staged(rng)) for _ in range(600))
    assert taken > 500  # the subset climb takes: it takes nearly all of them


def test_random_programs_build_what_lark_builds():
    rng = random.Random(17)
    taken = 0
    for _ in range(1500):
        text = _program(rng)
        taken += _agrees(text)
    assert taken > 300  # the path is really taken, on many kinds of programs


@pytest.mark.parametrize("seed", range(3))
def test_random_programs_with_tiny_chunks(monkeypatch, seed):
    """Long texts are tokenized a chunk at a time, cut after a ')': cut everywhere."""
    monkeypatch.setattr(C, "CHUNK", 3)
    rng = random.Random(seed)
    taken = 0
    for _ in range(300):
        taken += _agrees(_program(rng))
    assert taken > 50


PIECES = ["x", "y", "q", "θ", "2", "0.5", ".5", "1e3", "2.", "2.T", "e", "pi", "+", "-", "*", "/",
          "^", "**", "@", "(", ")", "[", "]", ",", ";", "\n", " ", "=", ".T", "# c\n", "exp(",
          "max(", "sum(", "sin(", "atan2(", "$", "\t", "\r\n", "1e", "x1", "<", "==", "!", "a =",
          "keep", "sin"]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_token_soup(text):
    _agrees(text)


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_parse_gives_what_it_gave_without_the_fast_path(text):
    """Tape, warnings, or the very error message and caret of the old path."""
    new = _outcome(text)
    saved = P.climb
    P.climb = lambda text, builder: False
    try:
        old = _outcome(text)
    finally:
        P.climb = saved
    assert new == old, text


@pytest.mark.parametrize("text", [
    "(x+y)*z", "q = x + y\nf = (q\n* z)", "-x^2 + 2^-1", "max(x, y, 2)", "θ*η", "ﬁ + fi",
    "a = 1;; b = a*x\r\nb", "x # comment\n", "-(2)", "--2", "- -x", "+x", "2^-x^2", "a*-b^c",
    "x < y", "(x < y) < z", "where(x < 0, -x, x)", "sum(x, 0)", "mean(x, 0, keep) + keep",
    "pi * e + π", "x, y, x*y", "atan2(y, x)", "1e999 * x + 1e999", "a = x\nb = a\nb, a",
    "\n\nx\n\n", "x +\n y", "(x\n+\ny)", "sin(\nx\n)", "x@y", "f = sin(x)**2 + cos(x)^2",
    "a = 2\na", "q = pi", "x = -3\n-x", "٣*x", "x٣ + 1", "ⅷ + 1", "_ + 1", "x = ٣\nx", ".5e3*x",
    "1.e-3", "x**2**3", "+-+-x", "a = 1; b = 2; a, b", "f = x; g = f; g", "x == -y",
    "atan2(y, x) * root(x, 3)", "sum(x)", "mean(x, 1)", "softmax(x, 0)", "logsumexp(x, 0, keep)",
    "sin (x) + max\t(x, y)", "a = (x + y)\na", "a = -(x)\nb = +a\nb",
])
def test_known_formulas_take_the_fast_path(text):
    assert _build(text, "climb") != "fallback", text
    assert _agrees(text)


@pytest.mark.parametrize("text", [
    "a < b < c", "q = x, y", "f()", "sin x", "sin", "(x, y)", "x y", "x = y = 1", "x + 1; x = 2",
    "x = 1; x = 2", "pi = 3", "x²", "[1, 2]", "x[0]", "x.T", "a +", "(x", "x)", "x;;(", "x $",
    "sum(x, 0.5)", "max()", "atan2(x)", "1e", "x,", ",x", "x; (y;)",
])
def test_the_rest_is_left_to_the_lalr_path(text):
    """Errors, tensors and indexing: climb gives up, and parse() says what it said before."""
    assert _build(text, "climb") == "fallback", text
    new = _outcome(text)
    saved = P.climb
    P.climb = lambda text, builder: False
    try:
        assert new == _outcome(text)
    finally:
        P.climb = saved


def test_the_wide_and_deep_benchmark_formulas():
    for seed in range(3):
        prog, _ = formulas.wide(3000, seed)
        for tok in ("^", "**"):
            text = formulas.render(prog, tok)
            assert _agrees(text)
    for family in formulas.DEEP_FAMILIES:
        assert _agrees(formulas.deep_text(family, 500, 1))


def test_100k_nested_parentheses_and_a_long_wide_formula():
    """No recursion, and texts of several chunks: the same tape as the LALR driver's (itself
    checked against Lark)."""
    deep = "(" * 100_000 + "x" + ")" * 100_000 + "*" + "-(" * 1000 + "2" + ")" * 1000
    wide = formulas.render(formulas.wide(30_000, 7)[0])
    assert len(wide) > 2 * C.CHUNK
    for text in (deep, wide, formulas.deep_text("neg", 100_000, 0)):
        fast = _build(text, "climb")
        assert fast != "fallback"
        assert fast == _build(text, "lalr")


def test_a_million_nodes():
    prog, size = formulas.wide(10**6, 3)
    tape, _ = P.parse(formulas.render(prog))
    assert len(tape) == size
    assert tape.outputs == [len(tape) - 1]


def test_a_patched_rule_table_is_what_parsing_uses(monkeypatch):
    """Tests patch parse._OP (the ops' table): climb reads the table as each parse starts."""
    from gradcli import ops

    sin = ops.replace(ops.OPS["sin"], note="patched")
    add = ops.replace(ops.OPS["add"], note="patched")
    monkeypatch.setitem(P._OP, "sin", sin)
    monkeypatch.setitem(P._OP, "add", add)
    tape, _ = P.parse("sin(x) + y")
    assert tape.ops[1] is sin and tape.ops[3] is add


def test_climb_does_not_import_the_parser_or_lark():
    import subprocess

    code = ("import sys, gradcli.climb; "
            "print('gradcli.parse' in sys.modules, 'lark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_the_ascii_tokenizer_is_the_unicode_one_on_ascii_text(text):
    """An ASCII text is tokenized with ASCII classes: the same tokens as with \\w and \\d."""
    C._token_re("θ")
    ascii_, unicode_ = C._TOKEN_ASCII, C._TOKEN_UNICODE[0]
    assert ascii_.findall(text) == unicode_.findall(text)
    assert C._token_re(text) is ascii_
