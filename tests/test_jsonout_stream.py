"""`eval --json` written in pieces, column by column (jsonout.eval_json_pieces over
render/jsonnodes.py), must be byte for byte what the old per-node builder wrote: kept here as
the oracle (`oracle_eval_json`, the builder as it was before the column writer), and compared on
random formulas (several outputs, names, exact mode, forward tangents, kinks, NaN/Infinity,
quotes, backslashes, unicode and control characters in comments) cut into pieces of every size.
"""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli.render.jsonnodes as JN
import gradcli.render.jsonout as J
from gradcli.errors import GradcliError
from gradcli.result import run_session
from gradcli.session import load

EXAMPLES = int(os.environ.get("GRADCLI_HYPOTHESIS_EXAMPLES", "300"))


def oracle_eval_json(r) -> str:
    """The `eval --json` document as jsonout built it before the column writer: one string per
    node, joined (verbatim but for the J. prefixes)."""
    tape = r.tape
    several = len(tape.outputs) > 1
    parts = [
        "{", f'"schema_version": {J.SCHEMA_VERSION}, ',
        f'"expression": {J._str(tape.text)}, ',
        f'"at": {J._mapping(r.at)}, ',
        f'"value": {J.number(r.value)}, ',
    ]
    if several:
        parts.append('"jacobian": [' + ", ".join(J._mapping(row) for row in r.jacobian) + "], ")
    else:
        parts.append(f'"gradient": {J._mapping(r.gradient)}, ')
    if r.exact:
        outs = [J.exact_text(r.values[o]) for o in tape.outputs]
        parts.append(f'"value_exact": {outs[0] if not several else "[" + ", ".join(outs) + "]"}, ')
        rows = ["{" + ", ".join(f"{J._str(x)}: {J.exact_text(adj[tape.variables[x]])}"
                                for x in r.wrt) + "}" for adj in r.adjoints]
        if several:
            parts.append('"jacobian_exact": [' + ", ".join(rows) + "], ")
        else:
            parts.append(f'"gradient_exact": {rows[0]}, ')
    parts.append(f'"outputs": {json.dumps(tape.outputs)}, ')
    if r.mode != "reverse":
        parts.append(f'"mode": "{r.mode}", "sweeps": {json.dumps(r.sweeps)}, ')
    if r.kinks:
        parts.append(f'"subgradient": "{r.convention}", ')
    parts.append('"nodes": [')
    ops, inputs, names = tape.ops, tape.inputs, tape.names
    values, partials, active, adjoints = r.values, r.partials, r.active, r.adjoints
    expr = tape.expr
    single = adjoints[0] if len(adjoints) == 1 else None
    tangents = r.tangents
    keys = [J._str(n) for n in r.wrt]
    kinks = set(r.kinks)
    number, exact_text, _str = J.number, J.exact_text, J._str
    grads = J._cells(adjoints, number) if single is None else None
    grads_exact = J._cells(adjoints, exact_text) if single is None and r.exact else None
    tangent_cells = (J._cells([tangents[n] for n in r.wrt], number) if tangents is not None
                     else None)
    for i in range(len(tape)):
        ins = inputs[i]
        name = names.get(i)
        if not active[i]:
            grad = "null"
        elif single is not None:
            grad = number(single[i])
        else:
            grad = "[" + ", ".join(grads(i)) + "]"
        if ins:
            ps = partials[i]
            shown = ", ".join(number(ps[k]) if ps is not None and active[j] else "null"
                              for k, j in enumerate(ins))
            ids = ", ".join(map(str, ins))
        else:
            shown = ids = ""
        extra = ""
        if tangents is not None:
            extra += ', "tangent": {' + ", ".join(
                f"{key}: {cell}" for key, cell in zip(keys, tangent_cells(i))) + "}"
        if kinks and i in kinks:
            extra += f', "kink": "{r.convention}"'
        if r.exact:
            extra += f', "value_exact": {exact_text(values[i])}'
            if active[i]:
                extra += ', "grad_exact": ' + (exact_text(single[i]) if single is not None else
                                              "[" + ", ".join(grads_exact(i)) + "]")
        parts.append(
            f'{", " if i else ""}{{"id": {i}, "op": "{ops[i].name}", "expr": {_str(expr(i))}, '
            f'"name": {"null" if name is None else _str(name)}, "inputs": [{ids}], '
            f'"value": {number(values[i])}, "partials": [{shown}], "grad": {grad}{extra}}}')
    parts.append("], ")
    parts.append(f'"warnings": {_str(r.warnings)}')
    parts.append("}")
    return "".join(parts)


def packed_pieces(r, size: int) -> str | None:
    """The document as the forked writer's two processes make it (from jsonnodes.Packed's
    arrays), made here in one process; None where the writer would not use Packed."""
    from unittest import mock

    from gradcli.render import forked

    used = []

    def serial(n, size, make, packed=None):
        maker = packed() if packed is not None else None
        used.append(maker is not None)
        for a in range(0, n, size):
            yield (maker or make)(a, min(a + size, n))

    with mock.patch.object(forked, "pieces", serial):
        text = "".join(J.eval_json_pieces(r, size))
    return text if used == [True] else None


def check_same(r) -> str:
    """The new writer agrees with the oracle whole and cut into pieces of several sizes, from
    the result's objects and, where it can be, from Packed's arrays (first: once every
    node's partials are made and kept, by the oracle, the packed pieces read those)."""
    n = len(r.tape)
    sizes = {1, 2, 3, 7, max(1, n - 1), n + 5}
    packed = {size: packed_pieces(r, size) for size in sizes}
    want = oracle_eval_json(r)
    assert J.eval_json(r) == want
    for size in sizes:
        pieces = list(J.eval_json_pieces(r, size))
        assert len(pieces) == 2 + -(-n // size)  # head, one per piece of nodes, tail
        assert "".join(pieces) == want, size
        assert packed[size] in (want, None), size
    json.loads(want)  # strict JSON all the same
    return want


def result(text: str, at, mode="reverse", exact=False, wrt=None, subgradient="cs231n"):
    return run_session(load(text, at, exact=exact, wrt=wrt), mode=mode, subgradient=subgradient)


# -- random formulas ------------------------------------------------------------------------

LEAVES = ["x", "y", "θ", "z1", "0", "1", "2.5", "-1", "1e308", "0.1", "3"]
UNARY = ["sin", "exp", "log", "sqrt", "relu", "abs", "tanh", "-"]
BINARY = ["+", "-", "*", "/", "^"]
COMMENTS = ['# say "hi" \\ é\n', "# \u202e\x7f\u2028 ok\n", "# 😀 \t tab\n", "#\n"]
POINTS = ["0", "1", "-1", "2", "0.5", "1/3", "-2/7", "1e-7", "3e200", "-0.0", "pi"]


@st.composite
def formulas(draw):
    """A formula text: a few statements (some named), one or two outputs; comments with
    quotes, backslashes and control characters sit inside parentheses (so inside exprs)."""
    def expr(depth: int) -> str:
        kind = draw(st.integers(0, 5 if depth < 4 else 0))
        if kind == 0:
            return draw(st.sampled_from(LEAVES + names))
        if kind == 1:
            fn = draw(st.sampled_from(UNARY))
            inner = expr(depth + 1)
            return f"-({inner})" if fn == "-" else f"{fn}({inner})"
        if kind == 2:
            a, b = expr(depth + 1), expr(depth + 1)
            return f"max({a}, {b})"
        a, op, b = expr(depth + 1), draw(st.sampled_from(BINARY)), expr(depth + 1)
        if draw(st.booleans()):
            gap = draw(st.sampled_from(COMMENTS + [" ", "\n", "  \t", "   "]))
            return f"({a} {op}{gap}{b})"
        return f"({a}{op}{b})"

    names: list[str] = []
    lines = []
    for k in range(draw(st.integers(0, 2))):
        lines.append(f"q{k} = {expr(0)}")
        names.append(f"q{k}")
    outs = [expr(0) for _ in range(draw(st.integers(1, 2)))]
    lines.append(", ".join(outs))
    return "\n".join(lines)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(formulas(), st.lists(st.sampled_from(POINTS), min_size=4, max_size=4),
       st.sampled_from(["reverse", "forward", "both"]), st.booleans(),
       st.sampled_from(["cs231n", "left", "zero"]), st.booleans())
def test_random_formulas_write_what_the_old_builder_wrote(text, point, mode, exact, convention,
                                                          some_wrt):
    at = [f"x={point[0]},y={point[1]},θ={point[2]},z1={point[3]}"]
    try:
        r = result(text, at, mode=mode, exact=exact and mode == "reverse",
                   wrt=["x", "θ"] if some_wrt else None, subgradient=convention)
    except GradcliError:  # a name or value the formula cannot take: nothing to write
        return
    check_same(r)


@pytest.mark.parametrize("text, at, options", [
    ("(x+y)*z", "x=-2,y=5,z=-4", {}),
    ("q = x + y; f = q * z", "x=-2,y=5,z=-4", {}),
    ("2*x + y, y - x", "x=1,y=2", {}),
    ("log(x) + 1/x + sqrt(-x) + exp(1000*x)", "x=0", {}),
    ("relu(x) + abs(y) + max(x, y)", "x=0,y=0", {"subgradient": "zero"}),
    ("x*y/3 + x^2", "x=1/3,y=-2/7", {"exact": True}),
    ("x*y/3 + sin(x), x - y", "x=1/3,y=-2/7", {"exact": True}),
    ("x*y + sin(x)", "x=1,y=2", {"mode": "forward"}),
    ("x*y + sin(x), y/x", "x=1,y=2", {"mode": "both"}),
    ("sum(w * x) + max(w)", "w=[1, 2, 3],x=[0.5, -1, 2]", {}),
    ("a = (x +   y)\t* (x\n- y) # a \"note\" \\ here\nb = a * a\nb", "x=1,y=3", {}),
    ("(" + " + ".join(f"sin(x{k})" for k in range(30)) + ")", None, {}),
    ("é = x * 2\n(é + x) * (é - x) + (x * x * x * x * x * x * x * x * x * x * x * x * x)",
     "x=1.5", {}),
    ("x*1e308*10 - x*1e308*10 + 0*x", "x=1", {}),
    ("-0.0 * x + x * -0.0", "x=1", {}),
    # a product's other input outside the piece: a variable (its text kept for the document),
    # or a node below a variable's id (not a variable)
    ("s = sin(x) * 3\n(s * y) * (z - s) + exp(s) * tanh(y) / s + s^2", "x=0.5,y=2,z=-1", {}),
    ("max(x, y, z) * min(x, 2, y, z) + max(x, y)", "x=0.5,y=2,z=-1", {}),  # over two inputs
])
def test_known_formulas(text, at, options):
    if at is None:
        at = ",".join(f"x{k}={k / 7}" for k in range(30))
    check_same(result(text, [at], **options))


def test_a_wide_formula_in_many_pieces():
    """Long exprs (shortened with …), names and a big tape, as the benchmark's wide formulas."""
    terms = [f"tanh(x{k % 9} * sin(x{(k + 1) % 9} - {k % 5}) / exp(x{(k + 2) % 9}))"
             for k in range(400)]
    text = "s = " + " + ".join(terms[:200]) + "\n" + "s * (" + " + ".join(terms[200:]) + ")"
    r = result(text, [",".join(f"x{k}={(k - 4) / 3}" for k in range(9))])
    assert len(r.tape) > 2000
    packed = packed_pieces(r, 64)  # the forked writer's arrays used (before anything keeps
    want = check_same(r)  # the partials: see check_same)
    assert "…" in want
    assert packed == want


# -- the columns one by one ------------------------------------------------------------------

FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 1e16, 1e-5, 1e-4, 123456789012345678.0, 5e-324,
          2.2250738585072014e-308, 1.7976931348623157e308, math.pi, -math.e, math.nan,
          -math.nan, math.inf, -math.inf, 2.0 ** 53, 1 / 3]


def test_numbers_are_number_of_each():
    mixed = FLOATS + [np.float64(v) for v in FLOATS]
    assert JN.numbers(mixed, J.number) == [J.number(v) for v in mixed]
    others = [Fraction(1, 3), None, np.float32(0.1), np.array([1.0, math.nan]), 3,
              Fraction(10**400)]
    assert JN.numbers(FLOATS + others, J.number) == [J.number(v) for v in FLOATS + others]
    flags = [k % 3 != 0 for k in range(len(mixed))]
    assert JN.numbers_where(mixed, flags, J.number) == [
        J.number(v) if f else "null" for v, f in zip(mixed, flags)]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                max_size=40))
def test_numbers_of_any_floats(xs):
    assert JN.numbers(xs, J.number) == [J.number(v) for v in xs]
    assert JN.numbers(list(map(np.float64, xs)), J.number) == [J.number(v) for v in xs]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.sampled_from(["x", "y", " ", "  ", "\n", "\t", "\r\n", "+", "*", "(", ")",
                                 "sin(", "é", "θ", "😀", "…"]), min_size=1, max_size=90))
def test_exprs_are_tape_expr(pieces):
    """Every node's expr, taken for a column at once, is tape.expr's (long ones cut around …,
    white space folded where a line break or tab is in it)."""
    from gradcli.parse import parse

    text = "(" + "".join(pieces).replace("(", "").replace(")", "") + ")*x + y"
    try:
        tape, _ = parse(text)
    except GradcliError:
        return
    plain = JN.plain_text(tape.text)
    got = JN.exprs(tape, 0, len(tape), plain, J._str, JN.spaced(tape.text))
    want = [J._str(tape.expr(i)) for i in range(len(tape))]
    assert (['"' + e + '"' for e in got] if plain else got) == want


@pytest.mark.parametrize("gap", range(48, 62))
def test_exprs_around_the_limit(gap):
    """Nodes of about 50 to 70 characters, white space at the cut: shortened exactly where
    tape.expr shortens (over 60 characters), stripped as it strips."""
    from gradcli.parse import parse

    for text in ["(x" + " " * gap + "+ y) * x", "(" + "+".join(["x"] * (gap // 2 + 3)) + ") * y",
                 "sin(x" + " " * (gap // 2) + "*" + " " * (gap - gap // 2) + "y)"]:
        tape, _ = parse(text)
        spans = {tape.ends[i] - tape.starts[i] for i in range(len(tape))}
        assert spans & set(range(gap, gap + 10))
        got = JN.exprs(tape, 0, len(tape), True, J._str, JN.spaced(tape.text))
        assert got == [tape.expr(i) for i in range(len(tape))], text
        check_same(result(text, ["x=1,y=2"]))


def test_the_command_writes_the_document_in_pieces(monkeypatch, tmp_path):
    """`gradcli eval --json` writes the pieces as they are made (a few nodes each here): what
    lands on stdout is the old document and a newline, warnings on stderr as before."""
    from cli_runner import run

    text = "q = log(x) * (y + 1)\nq / x + relu(-q)"
    formula = tmp_path / "f.grad"
    formula.write_text(text, encoding="utf-8")
    writes: list[str] = []
    import gradcli.render.console as console

    real = console.write
    monkeypatch.setattr(J, "NODES_PER_PIECE", 2)
    monkeypatch.setattr(console, "write", lambda t: (writes.append(t), real(t)))
    res = run("eval", str(formula), "--at", "x=0,y=2", "--json")
    assert res.exit_code == 0, res.stderr
    r = result(text, ["x=0,y=2"])
    assert res.stdout == oracle_eval_json(r) + "\n"
    assert len(writes) > 3 and "".join(writes) == res.stdout
    assert r.warnings and "Infinity" in res.stderr
