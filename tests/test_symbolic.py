"""Derivatives as tapes (gradcli.symbolic): formula partials, derivative formulas, Hessians.

Oracles: each op's numeric partials (ops.Op.partials), sympy's diff and hessian, torch's
autograd hessian in float64 when torch is installed, and hand-worked values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcli import engine, symbolic
from gradcli.diff import DiffResult
from gradcli.ops import OPS
from gradcli.parse import parse
from gradcli.render.formula import diff_text
from gradcli.result import run

# -- every op's formula partials equal its numeric partials ----------------------------------
# One spec per op: the inputs' sampling range (inside the domain, away from kinks).
SPECS = {
    "id": [(-3, 3)], "add": [(-3, 3)] * 2, "sub": [(-3, 3)] * 2, "mul": [(-3, 3)] * 2,
    "div": [(-3, 3), (0.5, 3)], "neg": [(-3, 3)], "pow": [(0.2, 3), (-2, 2)],
    "exp": [(-3, 3)], "log": [(0.1, 5)], "log2": [(0.1, 5)], "log10": [(0.1, 5)],
    "sqrt": [(0.1, 5)], "sin": [(-3, 3)], "cos": [(-3, 3)], "tan": [(-1.4, 1.4)],
    "asin": [(-0.9, 0.9)], "acos": [(-0.9, 0.9)], "atan": [(-3, 3)], "sinh": [(-3, 3)],
    "cosh": [(-3, 3)], "tanh": [(-3, 3)], "sigmoid": [(-5, 5)], "relu": [(-3, 3)],
    "softplus": [(-5, 5)], "abs": [(-3, 3)], "sign": [(-3, 3)], "max": [(-3, 3)] * 3,
    "min": [(-3, 3)] * 3, "atan2": [(-3, 3), (0.2, 3)],
    # issue 12's ops (their formulas are H12L's)
    "cbrt": [(0.2, 3)], "root": [(0.2, 3), (2, 5)], "where": [(-1, 1), (-3, 3), (-3, 3)],
    **{name: [(-3, 3)] * 2 for name in ("lt", "le", "gt", "ge", "eq", "ne")},
}
WITH_FORMULA = sorted(n for n, op in OPS.items() if op.formula_partials is not None)


def test_every_op_with_a_formula_has_a_spec():
    assert set(WITH_FORMULA) <= set(SPECS), set(WITH_FORMULA) - set(SPECS)
    # the ops of the original table all have one; newer ops are refused by name (test_diff)
    assert {"sin", "sigmoid", "div", "pow", "max", "relu", "atan2"} <= set(WITH_FORMULA)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_formula_partials_equal_numeric_partials(name):
    op = OPS[name]
    rng = np.random.default_rng(sorted(SPECS).index(name))
    ranges = SPECS[name]
    for _ in range(25):
        xs = [np.float64(rng.uniform(lo, hi)) for lo, hi in ranges]
        b = symbolic.Builder()
        ids = [b.var(f"a{k}") for k in range(len(xs))]
        y = b.raw(name, *ids)
        formulas = op.formula_partials(b, y, *ids)
        values = engine.forward(b.tape, {f"a{k}": x for k, x in enumerate(xs)})
        want = op.partials(values[y], *xs)
        for k, (f, w) in enumerate(zip(formulas, want)):
            assert values[f] == pytest.approx(float(w), rel=1e-12, abs=1e-12), (name, k, xs)


# -- derivative formulas against sympy -----------------------------------------------------------

SYMPY_LOCALS = {"sigmoid": lambda z: 1 / (1 + sympy.exp(-z)), "x": sympy.Symbol("x"),
                "y": sympy.Symbol("y"), "z": sympy.Symbol("z")}


def to_sympy(text: str):
    return sympy.sympify(text.replace("^", "**"), locals=SYMPY_LOCALS)


leaves = st.sampled_from(["x", "y", "z", "2", "3", "0.5"])


def _combine(children):
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})")
    power = st.tuples(children, st.sampled_from(["2", "3", "-1"])).map(
        lambda t: f"({t[0]})^{t[1]}")
    call = st.tuples(st.sampled_from(["sin", "cos", "exp", "tanh", "sigmoid", "atan"]),
                     children).map(lambda t: f"{t[0]}({t[1]})")
    return binary | power | call


# points away from 0, where a difference of huge terms (1/z - z/z^2) has no digits left
COORD = st.floats(0.25, 2) | st.floats(-2, -0.25)
formulas = st.recursive(leaves, _combine, max_leaves=8)
rational = st.recursive(leaves, lambda c: st.tuples(c, st.sampled_from(["+", "-", "*", "/"]), c)
                        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=8)


def first_derivatives(text: str) -> tuple:
    tape, _ = parse(text)
    wrt = list(tape.variables)
    d = symbolic.derivatives(tape, wrt, 2)
    return tape, wrt, diff_text(DiffResult(text, "f", d, 2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas, st.lists(COORD, min_size=3, max_size=3))
def test_derivative_formulas_equal_sympy(text, point):
    tape, wrt, t = first_derivatives(text)
    if not wrt:
        return
    expr = to_sympy(text)
    subs = dict(zip(["x", "y", "z"], point))
    at = {k: np.float64(v) for k, v in subs.items() if k in wrt}
    for x in wrt:
        mine = t.alone((x,))
        try:
            truth = complex(sympy.diff(expr, sympy.Symbol(x)).evalf(
                subs={sympy.Symbol(k): v for k, v in subs.items()}))
        except (ZeroDivisionError, TypeError, ValueError):
            continue  # a pole: sympy has no number there
        got = run(parse(mine)[0], at, None).value if parse(mine)[0].variables else float(
            run(parse(mine)[0], {}, None).value)
        if not (math.isfinite(got) and math.isfinite(truth.real)) or abs(truth.imag) > 0:
            continue
        assert got == pytest.approx(truth.real, rel=1e-9, abs=1e-9), (text, x, mine)


@settings(max_examples=40, deadline=None)
@given(rational)
def test_rational_derivatives_simplify_to_sympy(text):
    tape, wrt, t = first_derivatives(text)
    expr = to_sympy(text)
    if expr.has(sympy.zoo, sympy.nan):  # x/(x-x): undefined everywhere, nothing to compare
        return
    for x in wrt:
        mine = t.alone((x,))
        # a staged program: substitute its intermediates in order
        *steps, last = mine.split("; ")
        names = {}
        for step in steps:
            name, rhs = step.split(" = ", 1)
            names[name] = to_sympy(rhs).subs(names)
        got = to_sympy(last).subs(names)
        assert sympy.simplify(got - sympy.diff(expr, sympy.Symbol(x))) == 0, (text, mine)


def test_tidy_rules():
    for text, want in [
        ("x^2*sin(x)", "2*x*sin(x) + x^2*cos(x)"),
        ("x*1 + 0*x + x^1", "2"),
        ("--x", "1"),
        ("3*x*2", "6"),
        ("1/x", "-1/x^2"),
        ("sigmoid(x)", "t1 = sigmoid(x); t1*(1 - t1)"),
    ]:
        tape, wrt, t = first_derivatives(text)
        assert t.alone(("x",)) == want, text


def test_zero_times_is_kept_where_it_could_hide_a_nan():
    # d/dx sign(log(x)) = 0 * (1/x): at x = 0 the engine gives NaN, and so must the formula
    tape, wrt, t = first_derivatives("sign(log(x))")
    mine = t.alone(("x",))
    assert mine != "0"
    at0 = {"x": np.float64(0.0)}
    assert math.isnan(run(tape, at0, None).gradient["x"])
    assert math.isnan(run(parse(mine)[0], at0, None).value)
    # but sign(x)'s own slope is a plain 0: x cannot be NaN
    assert first_derivatives("sign(x) + x")[2].alone(("x",)) == "1"


def test_derivative_tape_is_linear_in_size():
    n = 2000
    text = "x" + "".join(f" * sin(x + {k})" for k in range(n))
    tape, _ = parse(text)
    d = symbolic.derivatives(tape, ["x"], 1)
    assert len(d.tape) < 8 * len(tape)
    deep = "x"
    for _ in range(3000):
        deep = f"sin({deep})"
    tape, _ = parse(deep)
    d = symbolic.derivatives(tape, ["x"], 2)
    assert len(d.tape) < 20 * len(tape)
    value = run(tape, {"x": np.float64(0.3)}, None).gradient["x"]
    got = symbolic.evaluate(d.tape, {"x": np.float64(0.3)}, [d.first["x"]])[0]
    assert got == pytest.approx(value, rel=1e-12)


# -- Hessians ---------------------------------------------------------------------------------

TEST_FUNCTIONS = {
    "rosenbrock": ("(1-x)^2 + 100*(y-x^2)^2", {"x": -1.2, "y": 1.0}),
    "beale": ("(1.5 - x + x*y)^2 + (2.25 - x + x*y^2)^2 + (2.625 - x + x*y^3)^2",
              {"x": 1.0, "y": 1.0}),
    "himmelblau": ("(x^2 + y - 11)^2 + (x + y^2 - 7)^2", {"x": 0.5, "y": -1.5}),
    "booth": ("(x + 2*y - 7)^2 + (2*x + y - 5)^2", {"x": 0.0, "y": 0.0}),
    "mixed": ("sin(x*y) + exp(x)/(1 + y^2) + sigmoid(x - y)*tanh(y)", {"x": 0.3, "y": -0.7}),
}


def sympy_hessian(text: str, wrt, point):
    expr = to_sympy(text)
    syms = [sympy.Symbol(n) for n in wrt]
    h = sympy.hessian(expr, syms)
    subs = {sympy.Symbol(k): v for k, v in point.items()}

    def value(e):
        try:
            c = complex(e.evalf(subs=subs))
        except (ZeroDivisionError, TypeError, ValueError):
            return math.nan  # a pole
        return c.real if c.imag == 0 else math.nan

    return [[value(h[i, j]) for j in range(len(wrt))] for i in range(len(wrt))]


@pytest.mark.parametrize("name", sorted(TEST_FUNCTIONS))
def test_hessian_equals_sympy_and_torch(name):
    text, point = TEST_FUNCTIONS[name]
    tape, _ = parse(text)
    wrt = list(tape.variables)
    at = {k: np.float64(v) for k, v in point.items()}
    value, grad, h = symbolic.SecondOrder(tape, wrt).at(at)
    truth = sympy_hessian(text, wrt, point)
    for i, x in enumerate(wrt):
        for j, y in enumerate(wrt):
            assert h[x][y] == pytest.approx(truth[i][j], rel=1e-9, abs=1e-9)
            assert h[x][y] == h[y][x]  # exactly symmetric
    torch = pytest.importorskip("torch")

    def f(v):
        x, y = v[0], v[1]
        env = {"x": x, "y": y, "sin": torch.sin, "exp": torch.exp, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid}
        return eval(text.replace("^", "**"), {"__builtins__": {}}, env)  # test's own text

    th = torch.autograd.functional.hessian(
        f, torch.tensor([point["x"], point["y"]], dtype=torch.float64))
    for i, x in enumerate(wrt):
        for j, y in enumerate(wrt):
            assert h[x][y] == pytest.approx(float(th[i, j]), rel=1e-9, abs=1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas, st.lists(COORD, min_size=3, max_size=3))
def test_random_hessians_equal_sympy(text, point):
    tape, _ = parse(text)
    wrt = list(tape.variables)
    if not wrt:
        return
    pt = dict(zip(["x", "y", "z"], point))
    at = {k: np.float64(v) for k, v in pt.items() if k in wrt}
    _, _, h = symbolic.SecondOrder(tape, wrt).at(at)
    truth = sympy_hessian(text, wrt, {k: pt[k] for k in wrt})
    for i, x in enumerate(wrt):
        for j, y in enumerate(wrt):
            if math.isfinite(h[x][y]) and math.isfinite(truth[i][j]):
                assert h[x][y] == pytest.approx(truth[i][j], rel=1e-7, abs=1e-7), (text, x, y)


def test_hvp_is_the_hessian_times_v():
    text, point = TEST_FUNCTIONS["mixed"]
    tape, _ = parse(text)
    so = symbolic.SecondOrder(tape, ["x", "y"])
    at = {k: np.float64(v) for k, v in point.items()}
    _, _, h = so.at(at)
    v = {"x": 0.25, "y": -2.0}
    hv = so.hvp(at, v)
    for x in "xy":
        assert hv[x] == pytest.approx(h[x]["x"] * 0.25 + h[x]["y"] * -2.0, rel=1e-12)


def test_newton_reaches_rosenbrocks_minimum():
    from gradcli.descend import descend

    tape, _ = parse(TEST_FUNCTIONS["rosenbrock"][0])
    steps = list(descend(tape, {"x": np.float64(-1.2), "y": np.float64(1.0)}, ["x", "y"],
                         steps=30, method="newton"))
    last = steps[-1]
    assert last.step <= 30
    assert abs(last.params["x"] - 1) <= 1e-10 and abs(last.params["y"] - 1) <= 1e-10
    # gradient descent from the same start is still far away after 1000 steps
    gd = list(descend(tape, {"x": np.float64(-1.2), "y": np.float64(1.0)}, ["x", "y"],
                      lr=0.001, steps=1000))
    assert abs(gd[-1].params["x"] - 1) > 1e-3


def test_newton_falls_back_where_the_hessian_is_not_positive_definite():
    from gradcli.descend import descend

    tape, _ = parse("x^4 - 2*x^2 + y^2")  # f''(0) = -4 at x = 0.1
    steps = list(descend(tape, {"x": np.float64(0.1), "y": np.float64(1.0)}, ["x", "y"],
                         steps=30, method="newton"))
    assert any("not positive definite" in w for s in steps for w in s.warnings)
    assert abs(abs(steps[-1].params["x"]) - 1) < 1e-8  # a minimum at x = ±1, not the saddle
