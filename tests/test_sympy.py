"""Random formulas: gradcli's value and gradient against sympy's symbolic derivative.

Hypothesis composes formula *text* from templates whose domains are safe for every real input
(log(1 + A^2), sqrt(1 + A^2), exp of bounded things, ...). The very same text is handed to sympy
(after `^` -> `**` and a few function names), so the test also checks that gradcli parses the
text as Python/sympy would (precedence, right-associative powers, unary minus).

GRADCLI_HYPOTHESIS_EXAMPLES scales the number of examples (default 150) for nightly runs.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcli import engine, evaluate

EXAMPLES = int(os.environ.get("GRADCLI_HYPOTHESIS_EXAMPLES", "150"))
RTOL = 1e-9
NAMES = ("x", "y", "z", "w")

_a, _b = sympy.Dummy("a"), sympy.Dummy("b")
SYMPY_NAMES = {
    "sigmoid": sympy.Lambda(_a, 1 / (1 + sympy.exp(-_a))),
    "softplus": sympy.Lambda(_a, sympy.log(1 + sympy.exp(_a))),
    "relu": sympy.Lambda(_a, sympy.Max(_a, 0)),
    "log2": sympy.Lambda(_a, sympy.log(_a) / sympy.log(2)),
    "log10": sympy.Lambda(_a, sympy.log(_a) / sympy.log(10)),
    "ln": sympy.log,
    "log": sympy.log,
    "pow": sympy.Lambda((_a, _b), _a**_b),
    "atan2": sympy.atan2,
    "max": sympy.Max,
    "min": sympy.Min,
    "abs": sympy.Abs,
    "sign": sympy.sign,
    # gradcli's constants are the float64 nearest pi and e: the oracle uses the same numbers
    # (sin(pi) is 1.2e-16 in float64, and that is the right answer for float64 pi)
    "pi": sympy.Float(math.pi, 60),
    "e": sympy.Float(math.e, 60),
}


def to_sympy(text: str, names) -> sympy.Expr:
    """The same formula text, read by sympy."""
    local = dict(SYMPY_NAMES)
    local.update({n: sympy.Symbol(n) for n in names})
    return sympy.sympify(text.replace("^", "**"), locals=local)


# -- the formula strategy ----------------------------------------------------------------------

# One-slot templates, safe for any real A. Every slot is parenthesised where precedence matters;
# `-{A}` and the arithmetic below are deliberately not, so gradcli's precedence is exercised.
UNARY = [
    "sin({A})", "cos({A})", "atan({A})", "tanh({A})", "sigmoid({A})", "softplus({A})",
    "-{A}", "({A})^2", "({A})**3", "-({A})^2",
    "exp(tanh({A}))", "exp(sin({A}))", "exp(-({A})^2)",
    "log(1 + ({A})^2)", "ln(2 + cos({A}))", "log2(1 + ({A})^2)", "log10(3 + sin({A}))",
    "sqrt(1 + ({A})^2)", "sqrt(2 + sin({A}))",
    "sinh(tanh({A}))", "cosh(sin({A}))",
    "asin(0.5*tanh({A}))", "acos(sin({A})/2)", "tan(atan({A})/2)",
    "1.5^tanh({A})^2", "2^-sigmoid({A})", "pow(2, sin({A}))", "(1 + ({A})^2)^0.5",
]
# Two-slot templates.
BINARY = [
    "{A} + {B}", "{A} - {B}", "{A} * {B}", "({A}) * ({B})", "{A} - ({B})",
    "{A} / (1 + ({B})^2)", "({A}) / (2 + cos({B}))",
    "atan2({A}, 2 + cos({B}))", "atan2(1 + ({A})^2, {B})",
    "(1 + ({A})^2)^sin({B})", "pow(2 + sin({A}), cos({B}))",
    "sigmoid({A}) * tanh({B})",
]
CONSTANTS = ["2", "0.5", "3", "1.25", "pi", "e"]


def _expressions(names):
    leaves = st.one_of(st.sampled_from(names), st.sampled_from(names),
                       st.sampled_from(CONSTANTS))

    def extend(children):
        unary = st.tuples(st.sampled_from(UNARY), children).map(
            lambda t: t[0].format(A=t[1]))
        binary = st.tuples(st.sampled_from(BINARY), children, children).map(
            lambda t: t[0].format(A=t[1], B=t[2]))
        return st.one_of(unary, binary)

    return st.recursive(leaves, extend, max_leaves=8)


@st.composite
def formulas(draw):
    n = draw(st.integers(min_value=2, max_value=4))
    names = NAMES[:n]
    text = draw(_expressions(names))
    point = {name: draw(st.floats(min_value=-3, max_value=3, allow_nan=False,
                                  allow_subnormal=False))
             for name in names}
    return text, point


# -- oracles -----------------------------------------------------------------------------------

def _sympy_value_and_gradient(text, names, point, variables):
    expr = to_sympy(text, names)
    subs = {sympy.Symbol(n): sympy.Float(v, 40) for n, v in point.items()}
    value = expr.evalf(40, subs=subs)
    grad = {v: expr.diff(sympy.Symbol(v)).evalf(40, subs=subs) for v in variables}
    return value, grad


def _abs_adjoints(r):
    """Σ over paths of |product of local partials|: the scale of rounding error in reverse mode.

    Where the gradient is a difference of large, nearly equal terms (cancellation), the exact
    answer cannot be had to relative 1e-9 in float64; this is the yardstick for that case.
    """
    # (a partial is None where its input carries no gradient, e.g. pow's constant exponent)
    partials = [tuple(None if p is None else abs(p) for p in ps) for ps in r.partials]
    adj = engine.backward(r.tape, r.values, partials, r.active, r.outputs[0])
    return {name: float(adj[i]) for name, i in r.tape.variables.items()}


def _close(got: float, want, scale: float, rtol: float) -> bool:
    """Relative `rtol`, with an absolute floor for answers that are 0 up to rounding.

    The floor, 1e-13 times the cancellation scale (at least 1: the inputs are O(1)), covers a
    true gradient of 0 met as cos(float(pi/2)) = 6e-17, and sums of large terms that cancel.
    """
    want = float(want)
    return abs(got - want) <= rtol * abs(want) + 1e-13 * max(1.0, scale)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(formulas())
def test_gradient_agrees_with_sympy(case):
    text, point = case
    r = evaluate(text, at=point)
    variables = list(r.tape.variables)
    at = {n: v for n, v in point.items() if n in variables}
    if at != point:
        r = evaluate(text, at=at)
    # Deep chains of cubes can overflow: keep to moderate magnitudes (then nothing may warn).
    # NaN is not "large": a NaN here is a bug (every template is safe) and must fail below.
    assume(not any(abs(v) >= 1e8 for v in r.values))
    assume(not any(abs(g) >= 1e8 for g in r.gradient.values()))
    assert r.warnings == [], (text, at, r.warnings)
    value = r.value

    want_value, want_grad = _sympy_value_and_gradient(text, list(point), at, variables)
    assert want_value.is_real, (text, at, want_value)
    assert _close(value, want_value, max(1.0, abs(float(want_value))), RTOL), (
        f"{text} at {at}: value {value!r}, sympy {want_value}")
    scales = _abs_adjoints(r)
    for name in variables:
        got = r.gradient[name]
        assert _close(got, want_grad[name], scales[name], RTOL), (
            f"{text} at {at}: d/d{name} = {got!r}, sympy {want_grad[name]} "
            f"(|adjoint| scale {scales[name]:.3g})")


# -- fixed cases -------------------------------------------------------------------------------

def test_neuron_gradient_equals_sympy():
    at = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
    text = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
    r = evaluate(text, at=at)
    expr = to_sympy(text, list(at))
    subs = {sympy.Symbol(k): v for k, v in at.items()}
    assert r.value == pytest.approx(float(expr.evalf(50, subs=subs)), rel=1e-12)
    for name in at:
        want = float(expr.diff(sympy.Symbol(name)).evalf(50, subs=subs))
        assert r.gradient[name] == pytest.approx(want, rel=1e-12, abs=0), name


@pytest.mark.parametrize("text,point", [
    ("-x^2 + 2^-y", {"x": 1.5, "y": 0.75}),
    ("x^y^z", {"x": 1.3, "y": 0.7, "z": 1.9}),
    ("sigmoid(x) * softplus(y) - log10(x^2 + 1) / log2(2 + y^2)", {"x": -0.8, "y": 2.4}),
    ("atan2(y, x) + asin(x/4) * acos(y/4)", {"x": -1.7, "y": -0.3}),
    ("sinh(x) * cosh(y) + tan(x*y) + pi*e", {"x": 0.6, "y": -0.9}),
    ("pow(x, 2.5) + ln(x) * sqrt(x)", {"x": 2.2, "y": 0}),
])
def test_fixed_formulas_agree_with_sympy(text, point):
    r = evaluate(text, at={k: v for k, v in point.items() if k in text})
    variables = list(r.tape.variables)
    at = {k: v for k, v in point.items() if k in variables}
    want_value, want_grad = _sympy_value_and_gradient(text, list(point), at, variables)
    assert r.value == pytest.approx(float(want_value), rel=1e-13)
    for name in variables:
        assert r.gradient[name] == pytest.approx(float(want_grad[name]), rel=1e-12), name


def test_the_translation_to_sympy_is_not_vacuous():
    # the oracle itself: a wrong gradient must be told apart
    expr = to_sympy("sigmoid(x)^2 + log2(x)", ["x"])
    d = float(expr.diff(sympy.Symbol("x")).evalf(30, subs={sympy.Symbol("x"): 2}))
    s = 1 / (1 + math.exp(-2))
    assert d == pytest.approx(2 * s * s * (1 - s) + 1 / (2 * math.log(2)), rel=1e-14)
    assert to_sympy("2^3^2", []) == 512
    assert to_sympy("-2^2", []) == -4
    assert np.isclose(float(to_sympy("atan2(1, -1)", [])), math.atan2(1, -1))
