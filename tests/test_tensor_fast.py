"""The tensor path's fast steps (issue 17) against the plain ones: sigmoid and its slope computed
in one array, engine.finite's one-pass check, and
nonfinite_warnings skipping the element pass for ops that keep finite numbers finite: the same
numbers bit for bit, and the same warnings word for word, as the plain code (kept here)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gradcli import engine, rules
from gradcli.api import evaluate
from gradcli.ops import POW_NAN_NOTE
from gradcli.parse import parse
from gradcli.words import nonfinite_word

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 710.0, -710.0, 800.0]


def noisy(rng: np.random.Generator, shape, special: bool = True) -> np.ndarray:
    a = rng.standard_normal(shape) * rng.choice([1.0, 30.0, 1e200])
    if special:
        flat = a.reshape(-1)
        k = rng.integers(0, flat.size // 4 + 1)
        flat[rng.integers(0, flat.size, k)] = rng.choice(SPECIAL, k)
    return a


def identical(a, b) -> bool:
    """The same numbers bit for bit (zeros' signs too), any NaN equal to any NaN (its sign and
    payload are never shown: BLAS and numpy's own loops may differ there)."""
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.all(
        (nan == np.isnan(b)) & (nan | ((a == b) & (np.signbit(a) == np.signbit(b))))))


@pytest.mark.parametrize("seed", range(20))
def test_sigmoid_and_its_slope_in_one_array_are_the_plain_formulas(seed):
    rng = np.random.default_rng(seed)
    a = noisy(rng, (rng.integers(1, 300), rng.integers(1, 5)))
    with np.errstate(all="ignore"):
        plain = 1.0 / (1.0 + np.exp(-a))
        assert identical(rules._sigmoid(a), plain)
        assert identical(rules._sigmoid_slope(plain), plain * (1.0 - plain))
        assert identical(rules._sigmoid(a[:, 0]), plain[:, 0])  # a strided column
        for s in (a[0, 0], np.float64(a[0, 0]), np.array(a[0, 0])):  # scalars as before
            assert identical(rules._sigmoid(s), 1.0 / (1.0 + np.exp(-s)))


@pytest.mark.parametrize("seed", range(40))
def test_finite_is_the_full_check(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.choice([1, 10, 5000, 20000]))
    a = noisy(rng, (size,), special=seed % 2 == 0)
    if seed % 5 == 0:
        a[:] = 1e308  # a sum that overflows, of finite numbers
    if seed % 7 == 0 and size > 2:
        a[-1] = np.nan
    assert engine.finite(a) == bool(np.all(np.isfinite(a)))
    assert engine.finite(a.reshape(-1, 1)[::2]) == bool(np.all(np.isfinite(a[::2])))
    with np.errstate(over="ignore"):
        f32 = a.astype(np.float32)
    assert engine.finite(f32) == bool(np.all(np.isfinite(f32)))


def plain_nonfinite_warnings(tape, values, partials, flags) -> list[str]:
    """engine.nonfinite_warnings as it was before issue 17: every array checked."""
    def finite(v):
        return bool(np.all(np.isfinite(v)))

    warnings = []
    inputs, ops = tape.inputs, tape.ops
    for i in range(len(tape)):
        ins = inputs[i]
        if not ins:
            continue
        if not finite(values[i]):
            if all(finite(values[j]) for j in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                if not np.any(np.isnan(values[i])) and not engine._at_pole(op, values, ins):
                    note = " (the result is beyond float64's range, about ±1.8e308)"
                elif op.name == "pow" and np.any(np.asarray(values[ins[0]]) < 0):
                    note = f" ({POW_NAN_NOTE})"
                word = nonfinite_word(values[i])
                warnings.append(f"node {i} `{tape.expr(i, 40)}`: {op.name} gives {word}{note}")
            continue
        if not flags[i]:
            continue
        ps = partials[i]
        if ps is None:
            continue
        for k, j in enumerate(ins):
            if flags[j] and not finite(ps[k]) and all(finite(values[m]) for m in ins):
                op = ops[i]
                note = f" ({op.note})" if op.note else ""
                warnings.append(
                    f"node {i} `{tape.expr(i, 40)}` ({op.name}): its local derivative with "
                    f"respect to `{tape.label(j, 40)}` is {nonfinite_word(ps[k])}{note}; gradients "
                    "through it are not finite")
                break
    return warnings


UNARY = sorted(engine.FINITE_OF_FINITE - {"id", "neg", "max", "min", "where", "lt", "le", "gt",
                                           "ge", "eq", "ne"}) + ["exp", "log", "sqrt", "tan",
                                                                 "sinh", "-"]


def random_formula(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(["A", "B", "v", "2.5", "0"])
    if rng.random() < 0.5:
        f = rng.choice(UNARY)
        return f"{f}({random_formula(rng, depth - 1)})" if f != "-" else (
            f"-({random_formula(rng, depth - 1)})")
    a, b = random_formula(rng, depth - 1), random_formula(rng, depth - 1)
    op = rng.choice(["+", "*", "/", "-", "^", "max", "min", "<", "where", "@"])
    if op in ("max", "min"):
        return f"{op}({a}, {b})"
    if op == "where":
        return f"where(({a}) < ({b}), {a}, {b})"
    if op == "@":
        return f"(({a}) @ M)"
    return f"(({a}) {op} ({b}))"


@pytest.mark.parametrize("seed", range(150))
def test_nonfinite_warnings_are_those_of_the_full_checks(seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    text = random_formula(rng, rng.randint(1, 5))
    tape, _ = parse(text)
    big = rng.random() < 0.5  # past finite()'s one-pass threshold
    rows = 3000 if big else 7
    at = {"A": noisy(nrng, (rows, 3), special=rng.random() < 0.7),
          "B": noisy(nrng, (rows, 3), special=rng.random() < 0.3),
          "v": noisy(nrng, (3,), special=rng.random() < 0.3),
          "M": noisy(nrng, (3, 3), special=rng.random() < 0.2)}
    point = {k: v for k, v in at.items() if k in tape.variables}
    wrt = [v for v in tape.variables if rng.random() < 0.7]
    flags = engine.active(tape, wrt)
    try:
        values = engine.forward(tape, point)
    except Exception:  # shapes that do not fit: nothing to compare
        return
    partials = engine.local_partials(tape, values, flags=flags)
    want = plain_nonfinite_warnings(tape, values, partials, flags)
    assert engine.nonfinite_warnings(tape, values, partials, flags) == want, text


def test_the_ops_that_keep_finite_numbers_finite_do():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(2000) * 1e300, rng.standard_normal(2000) * 800,
                        [0.0, -0.0, 1e308, -1e308, 5e-324, 710.0, -710.0]])
    b = np.roll(a, 3)
    for name in sorted(engine.FINITE_OF_FINITE - {"transpose"}):
        xs = {"where": (a, a, b)}.get(name) or ((a, b) if name in (
            "max", "min", "lt", "le", "gt", "ge", "eq", "ne") else (a,))
        op = __import__("gradcli.ops", fromlist=["lookup"]).lookup(name)
        with np.errstate(all="ignore"):
            y = op.value(*xs)
            assert np.all(np.isfinite(y)), name
            for p in op.partials(y, *xs):
                assert np.all(np.isfinite(p)), name


def test_the_two_layer_net_through_evaluate():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((6000, 8)), rng.standard_normal((6000, 1))
    W1, W2 = rng.standard_normal((8, 32)) * 0.3, rng.standard_normal((32, 1)) * 0.3
    X[7, 2] = np.nan
    r = evaluate("sum((sigmoid(X @ W1) @ W2 - Y)^2)", {"X": X, "W1": W1, "W2": W2, "Y": Y},
                 wrt=["W1", "W2"])
    assert r.warnings == ["the value of X is not finite"]
    X[7, 2] = 1e308  # an Infinity born at X @ W1: named there, as the full checks name it
    r = evaluate("sum((sigmoid(X @ W1) @ W2 - Y)^2)", {"X": X, "W1": W1 * 10, "W2": W2,
                                                        "Y": Y}, wrt=["W1", "W2"])
    want = plain_nonfinite_warnings(r.tape, r.values, r.partials, r.active)
    assert want and "X @ W1" in want[0] and all(w in r.warnings for w in want)
    X[7, 2] = 0.5
    r = evaluate("sum((sigmoid(X @ W1) @ W2 - Y)^2)", {"X": X, "W1": W1, "W2": W2, "Y": Y},
                 wrt=["W1", "W2"])
    H = 1.0 / (1.0 + np.exp(-(X @ W1)))
    D = H @ W2 - Y
    dH = (2.0 * D) @ W2.T * (H * (1.0 - H))
    assert np.isclose(float(np.asarray(r.value)), float(np.sum(D * D)), rtol=1e-12)
    assert np.allclose(np.asarray(r.gradient["W1"]), X.T @ dH, rtol=1e-10, atol=1e-12)
    assert np.allclose(np.asarray(r.gradient["W2"]), H.T @ (2.0 * D), rtol=1e-10, atol=1e-12)
    assert not [w for w in r.warnings if "finite" in w or "NaN" in w]
