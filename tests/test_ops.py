"""Every op in gradcli.ops.OPS, checked against independent oracles.

One spec per op: a formula template, a reference implementation (Python's math module, not
gradcli) and a sampler that keeps the inputs away from kinks and domain edges. For each spec, at
several random points:

* the value equals the reference value;
* the reverse-mode gradient equals float64 central differences of the reference;
* forward mode (engine.jvp, one unit tangent per input) equals the reverse gradient.

Then the decided edge cases (kinks, 0^0, domain errors), each as a named test.
"""

from __future__ import annotations

import math
import zlib
from typing import Callable, NamedTuple

import numpy as np
import pytest

from gradcli import engine, evaluate
from gradcli.ops import CONSTANTS, FUNCTIONS, OPS
from gradcli.parse import parse

VARS = ("a", "b", "c")
POINTS_PER_OP = 6


class Spec(NamedTuple):
    template: str  # a formula over {a}, {b}, {c}
    ref: Callable[..., float]  # the same function, written independently
    sample: Callable[[np.random.Generator], tuple[float, ...]]  # a safe point


def _u(lo: float, hi: float):
    return lambda rng: (float(rng.uniform(lo, hi)),)


def _u2(lo: float, hi: float):
    return lambda rng: (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))


def _away_from_zero(lo: float, hi: float):
    return lambda rng: (float(rng.choice([-1.0, 1.0]) * rng.uniform(lo, hi)),)


def _distinct3(rng: np.random.Generator) -> tuple[float, ...]:
    # three values at least 0.2 apart, in random order (no ties, so max/min are smooth here)
    base = float(rng.uniform(-5, 5))
    gaps = rng.uniform(0.2, 2.0, size=2)
    vals = [base, base + gaps[0], base + gaps[0] + gaps[1]]
    rng.shuffle(vals)
    return tuple(float(v) for v in vals)


def _div_point(rng: np.random.Generator) -> tuple[float, ...]:
    return (float(rng.uniform(-5, 5)), float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 5)))


def _pow_point(rng: np.random.Generator) -> tuple[float, ...]:
    return (float(rng.uniform(0.2, 4.0)), float(rng.uniform(-3.0, 3.0)))


def _atan2_point(rng: np.random.Generator) -> tuple[float, ...]:
    # keep away from the origin and from the branch cut (x < 0, y = 0)
    y = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 4.0))
    x = float(rng.uniform(-4.0, 4.0))
    return (y, x)


SPECS: dict[str, Spec] = {
    "add": Spec("{a} + {b}", lambda a, b: a + b, _u2(-5, 5)),
    "sub": Spec("{a} - {b}", lambda a, b: a - b, _u2(-5, 5)),
    "mul": Spec("{a} * {b}", lambda a, b: a * b, _u2(-5, 5)),
    "div": Spec("{a} / {b}", lambda a, b: a / b, _div_point),
    "neg": Spec("-{a}", lambda a: -a, _u(-5, 5)),
    "pow": Spec("{a} ^ {b}", lambda a, b: math.pow(a, b), _pow_point),
    "exp": Spec("exp({a})", math.exp, _u(-5, 5)),
    "log": Spec("log({a})", math.log, _u(0.1, 10)),
    "log2": Spec("log2({a})", math.log2, _u(0.1, 10)),
    "log10": Spec("log10({a})", math.log10, _u(0.1, 10)),
    "sqrt": Spec("sqrt({a})", math.sqrt, _u(0.1, 10)),
    "sin": Spec("sin({a})", math.sin, _u(-6, 6)),
    "cos": Spec("cos({a})", math.cos, _u(-6, 6)),
    "tan": Spec("tan({a})", math.tan, _u(-1.4, 1.4)),
    "asin": Spec("asin({a})", math.asin, _u(-0.9, 0.9)),
    "acos": Spec("acos({a})", math.acos, _u(-0.9, 0.9)),
    "atan": Spec("atan({a})", math.atan, _u(-4, 4)),
    "sinh": Spec("sinh({a})", math.sinh, _u(-3, 3)),
    "cosh": Spec("cosh({a})", math.cosh, _u(-3, 3)),
    "tanh": Spec("tanh({a})", math.tanh, _u(-3, 3)),
    "sigmoid": Spec("sigmoid({a})", lambda a: 1.0 / (1.0 + math.exp(-a)), _u(-6, 6)),
    "relu": Spec("relu({a})", lambda a: a if a > 0 else 0.0, _away_from_zero(0.1, 5)),
    "softplus": Spec("softplus({a})", lambda a: math.log1p(math.exp(a)), _u(-6, 6)),
    "abs": Spec("abs({a})", abs, _away_from_zero(0.1, 5)),
    "sign": Spec("sign({a})", lambda a: math.copysign(1.0, a), _away_from_zero(0.1, 5)),
    "max": Spec("max({a}, {b}, {c})", max, _distinct3),
    "min": Spec("min({a}, {b}, {c})", min, _distinct3),
    "atan2": Spec("atan2({a}, {b})", math.atan2, _atan2_point),
    # issue 12: comparisons (0/1, slope 0 away from a tie), where, real roots
    "lt": Spec("{a} < {b}", lambda a, b: float(a < b), _u2(-5, 5)),
    "le": Spec("{a} <= {b}", lambda a, b: float(a <= b), _u2(-5, 5)),
    "gt": Spec("{a} > {b}", lambda a, b: float(a > b), _u2(-5, 5)),
    "ge": Spec("{a} >= {b}", lambda a, b: float(a >= b), _u2(-5, 5)),
    "eq": Spec("{a} == {b}", lambda a, b: float(a == b), _u2(-5, 5)),
    "ne": Spec("{a} != {b}", lambda a, b: float(a != b), _u2(-5, 5)),
    "where": Spec("where({a} > 0, {b}, {c})", lambda a, b, c: b if a > 0 else c,
                  lambda rng: (float(rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 5)),
                               float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)))),
    "cbrt": Spec("cbrt({a})", lambda a: math.copysign(abs(a) ** (1.0 / 3.0), a),
                 _away_from_zero(0.1, 10)),
    "root": Spec("root({a}, {b})", lambda a, b: a ** (1.0 / b),
                 lambda rng: (float(rng.uniform(0.2, 10)), float(rng.uniform(1.5, 5)))),
}

NOT_OPERATORS = {"const", "var", "id"}  # leaves and the named copy: covered elsewhere


def _formula(spec: Spec) -> tuple[str, tuple[str, ...]]:
    names = tuple(v for v in VARS if "{" + v + "}" in spec.template)
    return spec.template.format(**{v: v for v in names}), names


def _points(op: str, spec: Spec):
    rng = np.random.default_rng(zlib.crc32(op.encode()))
    return [spec.sample(rng) for _ in range(POINTS_PER_OP)]


def _central_difference(f: Callable[..., float], point: tuple[float, ...], k: int) -> float:
    h = 1e-6 * max(1.0, abs(point[k]))
    up, down = list(point), list(point)
    up[k] += h
    down[k] -= h
    return (f(*up) - f(*down)) / (up[k] - down[k])


def _tensor_specs() -> dict:
    """TENSOR_SPECS of tests/test_tensor_ops.py (the structural ops: matmul, sum, stack, ...)."""
    try:
        from test_tensor_ops import TENSOR_SPECS  # tests/ is on sys.path (rootdir-relative)
    except ImportError:  # another import mode: load the file itself
        import importlib.util
        from pathlib import Path

        path = Path(__file__).with_name("test_tensor_ops.py")
        spec = importlib.util.spec_from_file_location("_gradcli_test_tensor_ops", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        TENSOR_SPECS = module.TENSOR_SPECS
    return TENSOR_SPECS


def test_every_op_has_a_spec():
    """Adding an op to OPS without a spec here or in tests/test_tensor_ops.py fails this test."""
    tensor = _tensor_specs()
    assert all(tensor.values()), "every TENSOR_SPECS entry needs at least one case"
    missing = set(OPS) - NOT_OPERATORS - set(SPECS) - set(tensor)
    unknown = (set(SPECS) | set(tensor)) - set(OPS)
    both = set(SPECS) & set(tensor)
    assert not missing, ("ops without a spec in tests/test_ops.py or TENSOR_SPECS in "
                         f"tests/test_tensor_ops.py: {sorted(missing)}")
    assert not unknown, f"specs for ops that do not exist: {sorted(unknown)}"
    assert not both, f"ops with specs in both files: {sorted(both)}"


def test_every_function_name_maps_to_an_op():
    for name, op in FUNCTIONS.items():
        assert op in OPS, name
    assert FUNCTIONS["ln"] == "log"
    assert FUNCTIONS["pow"] == "pow"


def test_spec_formulas_use_the_op_they_specify():
    for op, spec in SPECS.items():
        text, _ = _formula(spec)
        tape, _ = parse(text)
        assert tape.ops[tape.outputs[0]].name == op, (op, text)


@pytest.mark.parametrize("op", sorted(SPECS))
def test_value_matches_reference(op):
    spec = SPECS[op]
    text, names = _formula(spec)
    for point in _points(op, spec):
        r = evaluate(text, at=dict(zip(names, point)))
        assert r.value == pytest.approx(spec.ref(*point), rel=1e-13, abs=1e-300), (text, point)
        assert r.warnings == []


@pytest.mark.parametrize("op", sorted(SPECS))
def test_reverse_gradient_matches_central_differences(op):
    spec = SPECS[op]
    text, names = _formula(spec)
    for point in _points(op, spec):
        r = evaluate(text, at=dict(zip(names, point)))
        assert list(r.gradient) == list(names)
        scale = max(1.0, abs(spec.ref(*point)))
        for k, name in enumerate(names):
            analytic = r.gradient[name]
            numeric = _central_difference(spec.ref, point, k)
            assert abs(analytic - numeric) <= 1e-6 * abs(numeric) + 1e-8 * scale, (
                f"{text} at {dict(zip(names, point))}: d/d{name} analytic {analytic!r}, "
                f"central difference {numeric!r}")


@pytest.mark.parametrize("op", sorted(SPECS))
def test_forward_mode_equals_reverse_mode(op):
    spec = SPECS[op]
    text, names = _formula(spec)
    tape, _ = parse(text)
    out = tape.outputs[0]
    for point in _points(op, spec):
        at = {n: np.float64(v) for n, v in zip(names, point)}
        values = engine.forward(tape, at)
        partials = engine.local_partials(tape, values)
        flags = engine.active(tape, list(names))
        adjoints = engine.backward(tape, values, partials, flags, out)
        for name in names:
            i = tape.variables[name]
            tangents = engine.jvp(tape, values, partials, {i: np.float64(1.0)})
            fwd, rev = float(tangents[out]), float(adjoints[i])
            assert fwd == pytest.approx(rev, rel=1e-12, abs=1e-300), (text, point, name)


# -- the named copy (`id`) ---------------------------------------------------------------------

def test_named_copy_passes_the_gradient_through():
    r = evaluate("q = x; f = q * q", at={"x": 3})
    assert r.value == 9.0
    assert r.gradient == {"x": 6.0}
    q = next(n for n in r.nodes if n.name == "q")
    assert q.op == "id"
    assert q.value == 3.0 and q.grad == 6.0 and q.partials == (1.0,)


# -- decided edge cases ------------------------------------------------------------------------

def _nonfinite_warnings(r):
    return [w for w in r.warnings if "NaN" in w or "Infinity" in w]


def test_relu_at_zero_has_gradient_zero():
    r = evaluate("relu(x)", at={"x": 0})
    assert r.value == 0.0
    assert r.gradient == {"x": 0.0}
    assert not _nonfinite_warnings(r)  # a kink may be flagged; nothing is NaN/inf


def test_relu_either_side_of_the_kink():
    assert evaluate("relu(x)", at={"x": 1e-300}).gradient == {"x": 1.0}
    assert evaluate("relu(x)", at={"x": -1e-300}).gradient == {"x": 0.0}


def test_abs_at_zero_has_gradient_zero():
    r = evaluate("abs(x)", at={"x": 0})
    assert r.value == 0.0
    assert r.gradient == {"x": 0.0}
    assert not _nonfinite_warnings(r)  # a kink may be flagged; nothing is NaN/inf


def test_abs_either_side_of_the_kink():
    assert evaluate("abs(x)", at={"x": -2}).gradient == {"x": -1.0}
    assert evaluate("abs(x)", at={"x": 2}).gradient == {"x": 1.0}


def test_max_tie_gives_one_to_both():
    r = evaluate("max(x, y)", at={"x": 2, "y": 2})
    assert r.value == 2.0
    assert r.gradient == {"x": 1.0, "y": 1.0}


def test_max_nary_tie_gives_one_to_every_maximal_input():
    r = evaluate("max(x, y, z)", at={"x": 2, "y": -1, "z": 2})
    assert r.value == 2.0
    assert r.gradient == {"x": 1.0, "y": 0.0, "z": 1.0}


def test_min_tie_gives_one_to_both():
    r = evaluate("min(x, y)", at={"x": -3, "y": -3})
    assert r.value == -3.0
    assert r.gradient == {"x": 1.0, "y": 1.0}


def test_min_nary_tie_gives_one_to_every_minimal_input():
    r = evaluate("min(x, y, z)", at={"x": 1, "y": 1, "z": 2})
    assert r.value == 1.0
    assert r.gradient == {"x": 1.0, "y": 1.0, "z": 0.0}


def test_max_without_tie_routes_the_gradient_to_the_winner_only():
    r = evaluate("max(x, y)", at={"x": 4, "y": 1})
    assert r.gradient == {"x": 1.0, "y": 0.0}


@pytest.mark.parametrize("x", [-2.5, 0.0, 3.0])
def test_sign_has_gradient_zero(x):
    r = evaluate("sign(x)", at={"x": x})
    assert r.value == float(np.sign(x))
    assert r.gradient == {"x": 0.0}
    assert not _nonfinite_warnings(r)  # a kink may be flagged; nothing is NaN/inf


def test_zero_to_the_zero_is_one_with_zero_slope_in_the_base():
    r = evaluate("a ^ b", at={"a": 0, "b": 0}, wrt=["a"])
    assert r.value == 1.0
    assert r.gradient == {"a": 0.0}
    assert r.warnings == []
    r = evaluate("x ^ 0", at={"x": 0})
    assert r.value == 1.0
    assert r.gradient == {"x": 0.0}
    assert r.warnings == []


def test_log_of_zero_is_minus_infinity_with_a_warning_naming_the_node():
    r = evaluate("log(x)", at={"x": 0})
    assert r.value == -math.inf
    assert len(r.warnings) >= 1
    assert any("log(x)" in w and "-Infinity" in w for w in r.warnings), r.warnings


def test_log_of_negative_is_nan_with_a_warning_naming_the_node():
    r = evaluate("y = log(x)", at={"x": -1})
    assert math.isnan(r.value)
    assert any("log(x)" in w and "NaN" in w for w in r.warnings), r.warnings


def test_division_by_zero_is_infinity_with_a_warning():
    r = evaluate("1 / x", at={"x": 0})
    assert r.value == math.inf
    assert any("1 / x" in w and "Infinity" in w for w in r.warnings), r.warnings
    r = evaluate("-1 / x", at={"x": 0})
    assert r.value == -math.inf
    assert any("-Infinity" in w for w in r.warnings), r.warnings


def test_sqrt_of_zero_has_infinite_gradient_with_a_warning():
    r = evaluate("sqrt(x)", at={"x": 0})
    assert r.value == 0.0
    assert r.gradient == {"x": math.inf}
    assert any("sqrt(x)" in w and "Infinity" in w for w in r.warnings), r.warnings


def test_exp_overflow_is_infinity_with_a_warning():
    r = evaluate("exp(x)", at={"x": 1000})
    assert r.value == math.inf
    assert any("exp(x)" in w and "Infinity" in w for w in r.warnings), r.warnings
    # just below the threshold it is still finite and warning-free
    r = evaluate("exp(x)", at={"x": 709})
    assert math.isfinite(r.value) and r.warnings == []


def test_constant_exponent_of_negative_base_has_no_warning():
    # the exponent is a constant: its (NaN) slope carries no gradient and must not warn
    r = evaluate("x^2", at={"x": -3})
    assert r.value == 9.0
    assert r.gradient == {"x": -6.0}
    assert r.warnings == []
    r = evaluate("x^3", at={"x": -2})
    assert r.value == -8.0
    assert r.gradient == {"x": 12.0}
    assert r.warnings == []


def test_negative_base_with_fractional_exponent_is_nan_with_a_warning():
    r = evaluate("x^0.5", at={"x": -4})
    assert math.isnan(r.value)
    assert any("x^0.5" in w and "NaN" in w for w in r.warnings), r.warnings


@pytest.mark.parametrize("a,b", [(1.7, 2.3), (0.4, -1.5), (3.0, 0.5), (2.0, 0.0)])
def test_pow_with_both_variables_matches_central_differences(a, b):
    for text in ("x ^ y", "x ** y", "pow(x, y)"):
        r = evaluate(text, at={"x": a, "y": b})
        f = math.pow
        assert r.value == pytest.approx(f(a, b), rel=1e-14)
        assert r.warnings == []
        for k, name in enumerate(("x", "y")):
            numeric = _central_difference(f, (a, b), k)
            assert r.gradient[name] == pytest.approx(numeric, rel=1e-6, abs=1e-9), (text, name)
        # and the closed forms
        assert r.gradient["x"] == pytest.approx(b * a ** (b - 1), rel=1e-14)
        assert r.gradient["y"] == pytest.approx(a ** b * math.log(a), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("y,x", [(1.0, 2.0), (1.0, -2.0), (-1.0, -2.0), (-3.0, 0.5), (2.0, 0.0)])
def test_atan2_argument_order(y, x):
    r = evaluate("atan2(y, x)", at={"y": y, "x": x})
    assert r.value == float(np.arctan2(y, x))
    assert r.value == math.atan2(y, x)
    d = x * x + y * y
    assert r.gradient["y"] == pytest.approx(x / d, rel=1e-14, abs=1e-300)
    assert r.gradient["x"] == pytest.approx(-y / d, rel=1e-14, abs=1e-300)


def test_atan2_at_the_origin_has_no_slope():
    r = evaluate("atan2(y, x)", at={"y": 0, "x": 0})
    assert r.value == 0.0
    assert math.isnan(r.gradient["x"]) and math.isnan(r.gradient["y"])
    assert r.warnings, "a NaN gradient must come with a warning"


def test_constants_pi_and_e():
    assert CONSTANTS == {"pi": math.pi, "π": math.pi, "e": math.e}
    r = evaluate("pi + e")
    assert r.value == math.pi + math.e
    assert r.gradient == {}
    assert all(n.grad is None for n in r.nodes)


# -- everything about an op lives in its Op ----------------------------------------------------

def _readme_functions() -> set[str]:
    """The function names README.md's formula-language table lists (its `functions` and
    `tensors` rows): bare names in a backtick list (`exp log ln`) and names called as `f(...)`."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The formula language", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines()
            if line.startswith("| functions |") or line.startswith("| tensors |")]
    assert len(rows) == 2, "README.md's formula table lost its functions or tensors row"
    names: set[str] = set()
    for row in rows:
        for cell in re.findall(r"`([^`]*)`", row):
            if re.fullmatch(r"[a-z][a-z0-9]*( [a-z][a-z0-9]*)*", cell):
                names.update(cell.split())
            else:
                names.update(re.findall(r"\b([a-z][a-z0-9]*)\(", cell))
    return names


def test_the_readme_lists_every_function_and_no_other():
    """A new function is one OPS entry, one spec above and one README cell: this ties the last
    to the first."""
    listed = _readme_functions()
    missing = set(FUNCTIONS) - listed
    unknown = listed - set(FUNCTIONS)
    assert not missing, f"functions the README's formula table does not list: {sorted(missing)}"
    assert not unknown, f"README lists functions gradcli does not have: {sorted(unknown)}"


def test_functions_are_derived_from_the_ops():
    expected = {}
    for op in OPS.values():
        if op.function:
            expected[op.name] = op.name
            expected.update({alias: op.name for alias in op.aliases})
    assert FUNCTIONS == expected
    assert OPS["log"].aliases == ("ln",)
    for name in ("const", "var", "id", "add", "sub", "mul", "div", "neg", "matmul", "stack"):
        assert name not in FUNCTIONS, name


def test_a_missing_rule_fails_at_lookup_naming_the_op(monkeypatch):
    from gradcli.ops import MissingRule, lookup

    with pytest.raises(KeyError, match="no rule for op 'nosuch'"):
        lookup("nosuch")
    monkeypatch.delitem(OPS, "sin")
    with pytest.raises(MissingRule) as caught:
        parse("sin(x) + 1")
    assert caught.value.name == "sin" and "'sin'" in str(caught.value)


def test_an_op_with_inputs_and_no_rule_cannot_be_registered():
    from gradcli.ops import MissingRule, Op, _register

    with pytest.raises(MissingRule, match="'norule'"):
        _register(Op("norule", 1, abs, None, ""))
    assert "norule" not in OPS


def test_poles_live_in_the_op(monkeypatch):
    """An Infinity at an op's pole gets the op's note; elsewhere it is an overflow."""
    from dataclasses import replace

    assert {name: op.pole for name, op in OPS.items() if op.pole is not None} == {
        "div": 1, "log": 0, "log2": 0, "log10": 0, "pow": 0}
    pole = evaluate("log(x)", at={"x": 0}).warnings
    assert any("natural logarithm" in w for w in pole), pole
    monkeypatch.setitem(OPS, "log", replace(OPS["log"], pole=None))
    overflow = evaluate("log(x)", at={"x": 0}).warnings
    assert any("beyond float64's range" in w for w in overflow), overflow


def test_value_nouns_for_the_gates():
    nouns = {name: op.noun for name, op in OPS.items() if op.noun}
    assert nouns == {"add": "a sum", "sub": "a difference", "mul": "a product",
                     "div": "a quotient", "pow": "a power", "max": "a max", "min": "a min"}
