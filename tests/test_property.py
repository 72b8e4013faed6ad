"""Differential testing (issue 7): gradcli's gradients against independent oracles.

As trusted gradient tools test themselves (torch's gradcheck: float64 central differences; jax's
check_grads: forward and reverse along random directions; sympy's derivatives), random formulas
over every op are checked four ways:

- forward mode (tangents) against reverse mode (adjoints), along random directions;
- reverse mode against sympy's exact derivative, to relative 1e-9 where the answer is well
  conditioned (the scale of cancellation is measured, as in tests/test_sympy.py);
- both against central differences (a 4th-order stencil in float64);
- staged programs (`q = ...; f = ...`) against the same formula written out inline.

Strings drawn from gradcli's own grammar (hypothesis.extra.lark) must give a result or a
GradcliError, never another exception; the parser's fast path must build what Lark builds.

GRADCLI_HYPOTHESIS_EXAMPLES sets the number of examples per test (nightly: thousands).
"""

from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from gradcli import engine, evaluate
from gradcli.result import run
from gradcli.errors import GradcliError
from gradcli.ops import CONSTANTS, FUNCTIONS, OPS
from gradcli.parse import parse

NIGHTLY = int(os.environ.get("GRADCLI_HYPOTHESIS_EXAMPLES", "0"))


def prop_settings(default: int):
    return settings(max_examples=NIGHTLY or default, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- scalar formulas over every scalar op --------------------------------------------------------
# Templates that are smooth and real for every real A (and B) of moderate size: the derivative
# exists everywhere except at the kinks of relu, abs, sign, max and min, which the tests skip
# (gradcli flags a node evaluated exactly at a kink).

UNARY = [
    "exp({A}/4)", "log(1 + ({A})^2)", "ln(2 + cos({A}))", "log2(2 + sin({A}))",
    "log10(1 + ({A})^2)", "sqrt(1 + ({A})^2)", "sin({A})", "cos({A})", "tan(atan({A})/2)",
    "asin(tanh({A})/2)", "acos(sin({A})/2)", "atan({A})", "sinh(tanh({A}))", "cosh(sin({A}))",
    "tanh({A})", "sigmoid({A})", "softplus({A})", "relu({A})", "abs({A})", "sign({A}) * {A}",
    "-{A}", "+{A}", "({A})^2", "({A})**3", "-({A})^2", "pow(2, sin({A}))", "2^-sigmoid({A})",
    "max({A}, 0.25)", "min({A})", "cbrt(2 + sin({A}))", "root(2 + cos({A}), 3)",
]
BINARY = [
    "{A} + {B}", "{A} - {B}", "{A} * {B}", "({A}) * ({B})", "{A} / (1 + ({B})^2)",
    "atan2({A}, 2 + cos({B}))", "max({A}, {B})", "min({A}, {B}, 1.5)",
    "(1 + ({A})^2)^sin({B})", "pow(2 + sin({A}), {B})", "{A} - ({B})",
]
LEAF_CONSTANTS = ["2", "0.5", "3", "1.25", "pi", "e", "-1"]
NAMES = ("x", "y", "z")


def scalar_expressions(names=NAMES, max_leaves=7):
    leaves = st.one_of(st.sampled_from(names), st.sampled_from(names),
                       st.sampled_from(LEAF_CONSTANTS))

    def extend(kids):
        unary = st.tuples(st.sampled_from(UNARY), kids).map(lambda t: t[0].format(A=t[1]))
        binary = st.tuples(st.sampled_from(BINARY), kids, kids).map(
            lambda t: t[0].format(A=t[1], B=t[2]))
        return st.one_of(unary, binary)

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def points(names=NAMES):
    value = st.tuples(st.booleans(), st.floats(1e-3, 2)).map(lambda t: -t[1] if t[0] else t[1])
    return st.fixed_dictionaries({n: value for n in names})


# -- oracles ---------------------------------------------------------------------------------------

_a, _b = sympy.Dummy("a", real=True), sympy.Dummy("b", real=True)
SYMPY = {
    "sigmoid": sympy.Lambda(_a, 1 / (1 + sympy.exp(-_a))),
    "softplus": sympy.Lambda(_a, sympy.log(1 + sympy.exp(_a))),
    "relu": sympy.Lambda(_a, sympy.Max(_a, 0)),
    "log2": sympy.Lambda(_a, sympy.log(_a) / sympy.log(2)),
    "log10": sympy.Lambda(_a, sympy.log(_a) / sympy.log(10)),
    "ln": sympy.log, "log": sympy.log, "pow": sympy.Lambda((_a, _b), _a**_b),
    "atan2": sympy.atan2, "max": sympy.Max, "min": sympy.Min, "abs": sympy.Abs,
    # a/|a|, not sympy.sign: its derivative (0 away from 0) is one sympy can evaluate
    "sign": sympy.Lambda(_a, _a / sympy.Abs(_a)),
    # (the templates take cbrt and root of positive numbers only)
    "cbrt": sympy.Lambda(_a, _a ** sympy.Rational(1, 3)),
    "root": sympy.Lambda((_a, _b), _a ** (1 / _b)),
    # gradcli's pi and e are the float64 numbers: the oracle uses the same ones
    "pi": sympy.Float(math.pi, 60), "e": sympy.Float(math.e, 60),
}


def sympy_gradient(text: str, point: dict) -> tuple:
    """Value and gradient of the same text read by sympy, to 40 digits."""
    symbols = {n: sympy.Symbol(n, real=True) for n in point}
    expr = sympy.sympify(text.replace("^", "**"), locals={**SYMPY, **symbols})
    subs = {symbols[n]: sympy.Float(v, 40) for n, v in point.items()}
    value = expr.evalf(40, subs=subs)
    grad = {n: expr.diff(symbols[n]).evalf(40, subs=subs) for n in point}
    return value, grad


def cancellation_scale(r) -> dict[str, float]:
    """Σ over paths of |product of local partials|: the size of rounding error in a gradient
    that is a difference of large terms (its true value cannot be had to 1e-9 relative)."""
    partials = [tuple(abs(p) if p is not None else None for p in ps) if ps is not None else ps
                for ps in r.partials]
    adj = engine.backward(r.tape, r.values, partials, r.active, r.outputs[0])
    return {n: float(np.sum(np.abs(adj[i]))) if adj[i] is not None else 0.0
            for n, i in r.tape.variables.items()}


def close(got, want, rtol: float, scale: float = 1.0) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return bool(np.all(np.abs(got - want) <= rtol * np.abs(want) + 1e-13 * max(1.0, scale)))


def smooth_along(tape, x: dict, direction: dict, h: float = 1e-3) -> bool:
    """Whether the directional derivative (gradcli's own) stays put across the stencil: a kink
    inside it (max, abs, relu, ...) makes central differences meaningless there, even when two
    step sizes agree (a kink at the very point gives both the same average slope)."""
    def slope(t):
        p = {n: x[n] + t * direction[n] for n in x}
        r = run(tape, p, None)
        if r.kinks:
            return math.nan
        return sum(float(np.sum(np.asarray(r.gradient[n]) * direction[n])) for n in x)

    mid = slope(0.0)
    return all(abs(slope(t) - mid) <= 1e-3 * (1 + abs(mid)) for t in (-2 * h, -h, h, 2 * h))


# Bugs these tests found that are not fixed yet (outside this suite's reach), by message; each
# is an xfail case in tests/regressions/cli_cases.json. Examples that meet one are discarded.
# (Empty: logsumexp-axis-of-a-scalar and dot-of-a-vector-and-a-scalar were fixed in 6f5c4bf.)
KNOWN_BUGS: list[re.Pattern] = []


@contextmanager
def known_bugs_discarded():
    try:
        yield
    except (ValueError, IndexError, TypeError) as exc:
        if any(p.search(str(exc)) for p in KNOWN_BUGS):
            reject()
        raise


def central_difference(f, x: dict, direction: dict, h: float = 1e-3) -> float:
    """d/dt f(x + t·direction) at t = 0, by the 4th-order central stencil."""
    def at(t):
        return f({n: x[n] + t * direction[n] for n in x})

    return (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)


def value_sum(tape):
    """The formula as a function of a point: the sum of its (first) output's elements."""
    def f(point):
        return float(np.sum(run(tape, point, None).values[tape.outputs[0]]))
    return f


def used(text: str, point: dict) -> dict:
    """The part of the point the formula uses (so that no 'unused value' warning is given)."""
    try:
        tape, _ = parse(text)
    except GradcliError:
        return dict(point)
    return {n: v for n, v in point.items() if n in tape.variables}


# -- forward = reverse = sympy = central differences on scalar formulas ---------------------------

@prop_settings(60)
@given(scalar_expressions(), points())
def test_scalar_formulas_agree_with_sympy_forward_mode_and_differences(text, point):
    check_scalar_formula(text, point)


@pytest.mark.parametrize("template", UNARY + BINARY)
@prop_settings(6)
@given(scalar_expressions(max_leaves=3), scalar_expressions(max_leaves=3), points())
def test_each_scalar_op_agrees_with_sympy_forward_mode_and_differences(template, a, b, point):
    """The same checks with each template at the root, so that every op is met every run."""
    check_scalar_formula(template.format(A=a, B=b), point)


def check_scalar_formula(text: str, point: dict) -> None:
    point = used(text, point)
    r = evaluate(text, at=point, mode="both")
    assume(point and not r.kinks and not r.warnings)
    assume(all(abs(float(v)) < 1e6 for v in r.values))
    grad = r.gradient
    assume(all(abs(g) < 1e6 for g in grad.values()))
    out = r.outputs[0]

    # forward mode: one tangent sweep per variable gives the same numbers as one reverse sweep
    for name in point:
        tangent = r.tangents[name][out]
        assert close(0.0 if tangent is None else tangent, grad[name], 1e-12), (text, name)

    # sympy's exact derivative, where the float64 answer is well conditioned
    try:
        want_value, want_grad = sympy_gradient(text, point)
        want = float(want_value), {n: float(g) for n, g in want_grad.items()}
    except (TypeError, ValueError):  # sympy cannot compare Max(0.e-172, 0.25): no oracle here
        want = None
    if want is not None:
        assert close(r.value, want[0], 1e-9, abs(want[0])), (text, point)
        scales = cancellation_scale(r)
        for name in point:
            assert close(grad[name], want[1][name], 1e-9, scales[name]), (
                f"{text} at {point}: d/d{name} = {grad[name]!r}, sympy {want[1][name]}")

    # central differences along each axis and along a random direction (where f is smooth
    # across the stencil: two step sizes must agree first)
    f = value_sum(r.tape)
    rng = np.random.default_rng(abs(hash(text)) % 2**32)
    directions = [{n: float(n == m) for n in point} for m in point]
    directions.append({n: float(rng.standard_normal()) for n in point})
    for d in directions:
        coarse, fine = central_difference(f, point, d), central_difference(f, point, d, 5e-4)
        if not math.isclose(coarse, fine, rel_tol=1e-6, abs_tol=1e-8) or not smooth_along(
                r.tape, point, d):
            continue  # a kink or a steep spot inside the stencil
        want = sum(grad[n] * d[n] for n in point)
        assert math.isclose(fine, want, rel_tol=1e-6, abs_tol=1e-7), (text, point, d)


# -- tensors: every structural op, along random directions (jax's check_grads) --------------------

TENSOR_UNARY = ["sum({A})", "mean({A})", "softmax({A})", "logsumexp({A})", "norm({A})",
                "max({A})", "min({A})", "tanh({A})", "sigmoid({A}) * {A}", "({A}).T",
                "transpose({A})", "exp({A}/4)", "sqrt(1 + ({A})^2)", "-{A}", "({A})^2",
                "sum({A}, 0)", "mean({A}, -1)", "softmax({A}, 0)", "logsumexp({A}, -1)",
                "({A})[0]", "({A})[-1:]", "logsumexp({A}, 0, keep)"]
TENSOR_BINARY = ["{A} + {B}", "{A} * {B}", "{A} - {B}", "{A} / (1 + ({B})^2)",
                 "where({A} > {B}, {A}, 2*{B})", "({A} < {B}) * {A} + ({A} >= {B}) * {B}",
                 "({A} <= {B}) + ({A} == {B}) + ({A} != {B}) * {B}",
                 "max({A}, {B})", "atan2({A}, 2 + cos({B}))"]


MATRICES = ["W", "W", "W*W", "[[1, 2, 3], [4, 5, 6]]*W", "tanh(W)"]
VECTORS = ["v", "v", "W @ v", "u @ W", "v*2", "dot(u, u)*v", "[u, u].T @ u", "W.T @ u",
           "[x, y, x*y]"]


def tensor_formulas():
    """Formulas over W (2×3), v (3) and u (2) built from every tensor op, ending in a sum."""
    matrix = st.sampled_from(MATRICES)
    vector = st.sampled_from(VECTORS)

    def grow(kids):
        unary = st.tuples(st.sampled_from(TENSOR_UNARY), kids).map(lambda t: t[0].format(A=t[1]))
        binary = st.tuples(st.sampled_from(TENSOR_BINARY), kids, kids).map(
            lambda t: t[0].format(A=t[1], B=t[2]))
        return st.one_of(unary, binary)

    body = st.recursive(st.one_of(matrix, vector), grow, max_leaves=5)
    return st.tuples(body, st.sampled_from(["sum({})", "sum(({})^2)", "logsumexp({})",
                                            "norm({})", "sum(softmax({}) * {{G}})"])).map(
        lambda t: t[1].format(t[0]).replace("{G}", "[1, -2, 3]"))


TENSOR_POINT = {"W": (2, 3), "v": (3,), "u": (2,), "x": (), "y": ()}


@prop_settings(60)
@given(tensor_formulas(), st.integers(0, 2**32 - 1))
def test_tensor_formulas_forward_reverse_and_differences_agree(text, seed):
    check_tensor_formula(text, seed)


@pytest.mark.parametrize("template", TENSOR_UNARY + TENSOR_BINARY)
@prop_settings(5)
@given(st.sampled_from(MATRICES + VECTORS), st.sampled_from(MATRICES + VECTORS),
       st.sampled_from(["sum({})", "sum(({})^2)", "sum(softmax({}) * [1, -2, 3])"]),
       st.integers(0, 2**32 - 1))
def test_each_tensor_op_forward_reverse_and_differences_agree(template, a, b, outer, seed):
    """The same checks with each tensor template inside the output's sum, so that every op is
    met every run."""
    check_tensor_formula(outer.format(template.format(A=a, B=b)), seed)


def check_tensor_formula(text: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    full = {n: rng.standard_normal(s) if s else float(rng.standard_normal())
            for n, s in TENSOR_POINT.items()}
    point = used(text, full)
    try:
        with known_bugs_discarded():
            r = evaluate(text, at=point)
    except GradcliError:
        assume(False)  # shapes that do not fit: the fuzz tests cover the message
    # (a tensor output is seeded with ones, with a warning that says so: the only one allowed)
    assume(point and not r.kinks and all("seeded with ones" in w for w in r.warnings))
    out = r.outputs[0]

    # reverse: one sweep; forward: one jvp along a random direction in every variable at once
    direction = {n: rng.standard_normal(np.shape(v)) if np.ndim(v) else float(rng.standard_normal())
                 for n, v in point.items()}
    seed_tangents = {r.tape.variables[n]: np.asarray(d, dtype=float)[()] for n, d in
                     direction.items()}
    with known_bugs_discarded():
        tangents = engine.jvp(r.tape, r.values, r.partials, seed_tangents)
    forward = float(np.sum(tangents[out]))
    reverse = sum(float(np.sum(np.asarray(r.gradient[n]) * direction[n])) for n in point)
    assert math.isclose(forward, reverse, rel_tol=1e-10, abs_tol=1e-10), (text, forward, reverse)

    # central differences along the same direction (float64, two step sizes must agree)
    f = value_sum(r.tape)
    coarse = central_difference(f, point, direction)
    fine = central_difference(f, point, direction, 5e-4)
    assume(math.isclose(coarse, fine, rel_tol=1e-6, abs_tol=1e-8))
    assume(smooth_along(r.tape, point, direction))
    assert math.isclose(fine, reverse, rel_tol=1e-6, abs_tol=1e-7), (text, fine, reverse)


def test_the_templates_cover_every_op():
    """Every op of the rule table appears in some template above (a new op must be added)."""
    written = " ".join(UNARY + BINARY + TENSOR_UNARY + TENSOR_BINARY + VECTORS + MATRICES)
    symbols = {"add": "+", "sub": " - ", "mul": "*", "div": "/", "neg": "-{A}", "pow": "^",
               "matmul": "@", "stack": "[x, y", "transpose": ".T", "dot": "dot(",
               "lt": " < ", "le": " <= ", "gt": " > ", "ge": " >= ", "eq": " == ", "ne": " != ",
               "index": ")["}
    names = {v: k for k, v in FUNCTIONS.items()}
    missing = []
    for op in OPS:
        if op in ("const", "var", "id"):
            continue  # leaves, and the named copies the staged-program test makes
        word = symbols.get(op) or f"{names.get(op, op)}("
        if word not in written and f"{op}(" not in written:
            missing.append(op)
    assert not missing, f"ops no template exercises: {missing}"


# -- staged programs against the same formula inline ---------------------------------------------

@st.composite
def staged_programs(draw):
    """`q0 = ...; q1 = ...; f = ...`, each statement over the variables and earlier names."""
    n = draw(st.integers(1, 4))
    statements, inline = [], {}
    for k in range(n):
        names = list(NAMES) + [f"q{j}" for j in range(k)]
        text = draw(scalar_expressions(names, max_leaves=4))
        statements.append((f"q{k}", text))
    names = list(NAMES) + [f"q{j}" for j in range(n)]
    final = draw(scalar_expressions(names, max_leaves=4))
    sep = draw(st.sampled_from(["; ", "\n", " # note\n"]))
    program = sep.join(f"{q} = {t}" for q, t in statements) + sep + f"f = {final}"
    # inline: each name replaced by its parenthesised definition (earlier ones already inline)
    for q, t in statements:
        inline[q] = "(" + re.sub(r"\bq\d+\b", lambda m: inline[m.group()], t) + ")"
    flat = re.sub(r"\bq\d+\b", lambda m: inline[m.group()], final)
    return program, flat


@prop_settings(40)
@given(staged_programs(), points())
def test_staged_programs_agree_with_their_inline_form(case, point):
    program, flat = case
    point = used(program, point)
    try:
        staged = evaluate(program, at=point, mode="both")
    except GradcliError as exc:
        pytest.fail(f"{program!r}: {exc.render()}")
    inline = evaluate(flat, at={n: v for n, v in point.items() if n in staged.tape.variables})
    assume(not staged.kinks and not staged.warnings)
    assert staged.tape.names[staged.outputs[0]] == "f"
    assert close(staged.value, inline.value, 1e-12, abs(inline.value)), (program, flat)
    scales = cancellation_scale(inline)
    for name, g in inline.gradient.items():
        assert close(staged.gradient[name], g, 1e-10, scales[name]), (program, flat, name)
        tangent = staged.tangents[name][staged.outputs[0]]
        assert close(0.0 if tangent is None else tangent, staged.gradient[name], 1e-12)


# -- strings from the grammar itself ---------------------------------------------------------------

@lru_cache(maxsize=None)
def grammar():
    from lark import Lark

    from gradcli.parse import grammar_text

    return Lark(grammar_text(), parser="lalr", lexer="basic")


_VARIABLES = st.sampled_from(["x", "y", "W", "q", "θ", "T"])
GRAMMAR_NAMES = st.one_of(_VARIABLES, _VARIABLES, _VARIABLES, st.sampled_from(sorted(FUNCTIONS)),
                          st.sampled_from(sorted(CONSTANTS)),
                          st.from_regex(r"[^\W\d]\w{0,2}", fullmatch=True))
# (--exact keeps literals as fractions: 1e99999999 was a hang there, 1e400 a crash)
GRAMMAR_NUMBERS = st.sampled_from(["0", "1", "2", "0.5", ".5", "3.", "1e-3", "2E+2", "1e308",
                                   "10", "٣", "1e400", "1e99999999"])
TERMINALS = {
    "NAME": GRAMMAR_NAMES, "NUMBER": GRAMMAR_NUMBERS,
    "_SEP": st.sampled_from([";", "\n", "\r\n", " # [red]c[/red]\n"]),
    "POW": st.sampled_from(["^", "**"]),
    "CMP": st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    # the name of a call (the walk knows it is one): mostly real functions
    "FNAME": st.one_of(st.sampled_from(sorted(FUNCTIONS)), st.sampled_from(sorted(FUNCTIONS)),
                       GRAMMAR_NAMES),
}


def lark_strings():
    """hypothesis.extra.lark.from_lark on the grammar: thorough, but slow (its draws are long
    and often overrun), so the bounded walk below does the volume."""
    return from_lark(grammar(), explicit={
        **{k: v for k, v in TERMINALS.items() if k not in ("_SEP", "FNAME")},
        "COMMENT": st.sampled_from(["#", "# [red]c[/red]", "# at: x=2"]),
        "__IGNORE_1": st.sampled_from([" ", "\t", "\r"]),
    })


@lru_cache(maxsize=None)
def _rules():
    """The grammar's rules (as Lark compiles them) and each nonterminal's least height."""
    terminals, rules, _ = grammar().grammar.compile(["start"], ())
    literal = {t.name: t.pattern.value for t in terminals if type(t.pattern).__name__ ==
               "PatternStr"}
    by_origin: dict[str, list[list[str]]] = {}
    for rule in rules:
        expansion = [sym.name for sym in rule.expansion]
        if expansion[:2] == ["NAME", "LPAR"]:
            expansion[0] = "FNAME"
        # weights, as repeats: an empty call `f()` or an empty statement `;;` now and then
        weight = 1 if expansion in (["FNAME", "LPAR", "RPAR"], ["program", "_SEP"], []) else 4
        by_origin.setdefault(rule.origin.name, []).extend([expansion] * weight)
    height = {}
    while len(height) < len(by_origin):
        for name, options in by_origin.items():
            done = [o for o in options if all(s not in by_origin or s in height for s in o)]
            if done:
                height[name] = 1 + min(max([height.get(s, 0) for s in o] + [0]) for o in done)
    return by_origin, literal, height


@st.composite
def grammar_strings(draw, max_depth: int = 9):
    """A walk down the grammar's own rules, with tokens drawn as the parser's lexer reads them,
    choosing the shortest ways out below `max_depth` (iterative: no recursion)."""
    by_origin, literal, height = _rules()
    out: list[str] = []
    todo = [("start", 0)]
    while todo:
        sym, depth = todo.pop()
        if sym not in by_origin:
            token = draw(TERMINALS[sym]) if sym in TERMINALS else literal[sym]
            out.append(token + draw(st.sampled_from([" ", " ", "", "\t"])))
            continue
        options = by_origin[sym]
        if depth >= max_depth:
            def cost(o):
                return max([height.get(s, 0) for s in o] + [0])
            least = min(cost(o) for o in options)
            options = [o for o in options if cost(o) == least]
        todo.extend((s, depth + 1) for s in reversed(draw(st.sampled_from(options))))
    return "".join(out)


VALUES = [0.0, 1.0, -1.5, 2.0, 1e308, -1e-320, np.inf, np.nan, np.array([1.0, 2.0]),
          np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.0, 0.0])]


@prop_settings(150)
@given(st.one_of(grammar_strings(), grammar_strings(), grammar_strings(), lark_strings()),
       st.randoms(use_true_random=False),
       st.sampled_from(["reverse", "forward", "both"]), st.booleans(),
       st.sampled_from(["cs231n", "half", "zero"]))
def test_grammar_strings_give_a_result_or_a_gradcli_error(text, rnd, mode, exact, convention):
    """Syntactically valid is not semantically valid (unknown functions, arity, shapes): every
    string of the grammar gives a result or a GradcliError, never another exception."""
    from gradcli.parse import parse

    try:
        tape, _ = parse(text)
    except GradcliError:
        return
    point = {n: rnd.choice(VALUES) for n in tape.variables}
    try:
        r = evaluate(text, at=point, mode=mode, exact=exact, subgradient=convention)
    except GradcliError:
        return
    doc = r.to_json()
    assert doc.startswith("{") and "NaN," not in doc.replace('"NaN",', "")
    for i in range(len(r.nodes)):
        r.nodes[i]


@prop_settings(150)
@given(grammar_strings())
def test_the_fast_parser_builds_what_lark_builds_on_grammar_strings(text):
    """parse.py's fast path against Lark's own parser, on strings drawn from the grammar
    (unicode names and digits, comments, carriage returns): same tape, or the same error."""
    import gradcli.parse as P

    if not all(hasattr(P, a) for a in ("_fast", "_parser", "_BUILDER", "_finish")):
        pytest.skip("parse.py has no separate fast path")

    def build(fast: bool):
        multiline = "\n" in text or "\r" in text
        P._BUILDER.reset(text)
        try:
            if fast:
                if not P._fast(multiline).parse(text, P._BUILDER):
                    return "fallback"
            else:
                P._parser(multiline).parse(text)
            tape = P._BUILDER.tape
            P._finish(tape)
            return ([op.name for op in tape.ops], tape.inputs, tape.starts, tape.ends,
                    tape.names, tape.outputs, {k: repr(v) for k, v in tape.literals.items()})
        except GradcliError as exc:
            return "error: " + exc.message
        finally:
            P._BUILDER.reset("")

    fast = build(True)
    if fast != "fallback":
        assert fast == build(False), text
