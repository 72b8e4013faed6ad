"""The compiled tape (gradcli.compiled) against the interpreted sweeps (engine.py): the same value
and gradient on random formulas, and descent with and without it taking the same steps."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from gradcli import compiled
from gradcli import descend as D
from gradcli.parse import parse
from gradcli.result import run

UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "relu", "atan", "sinh", "cosh", "-", "log",
         "sqrt", "tan"]
BINARY = ["+", "-", "*", "/", "^"]
VARS = ["x", "y", "z"]


def random_formula(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.7:
            return rng.choice(VARS)
        return repr(round(rng.uniform(-3, 3), 3))
    if rng.random() < 0.45:
        f = rng.choice(UNARY)
        inner = random_formula(rng, depth - 1)
        if f in ("log", "sqrt"):  # keep most points in the domain
            inner = f"(1.5 + ({inner})^2)"
        return f"-({inner})" if f == "-" else f"{f}({inner})"
    op = rng.choice(BINARY)
    a, b = random_formula(rng, depth - 1), random_formula(rng, depth - 1)
    if op == "^":
        return f"({a})^{rng.choice(['2', '3', '0.5', '0', 'y'])}" if rng.random() < 0.8 \
            else f"(1.2 + ({a})^2)^({b})"
    if op == "/":
        return f"({a}) / (2.5 + ({b})^2)"
    return f"({a}) {op} ({b})"


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("seed", range(300))
def test_compiled_matches_the_interpreted_sweep(seed):
    rng = random.Random(seed)
    text = random_formula(rng, rng.randint(1, 6))
    tape, _ = parse(text)
    wrt = list(tape.variables)
    fn = compiled.gradient_function(tape, tape.outputs[0], wrt)
    assert fn is not None, compiled.source(tape, tape.outputs[0], wrt)
    point = {v: rng.uniform(-2, 2) for v in tape.variables}
    if not wrt:
        return
    r = run(tape, {k: np.float64(v) for k, v in point.items()}, wrt)
    try:
        value, grads = fn(*[point[v] for v in tape.variables])
    except (ArithmeticError, ValueError):  # floats refuse: the caller runs the engine instead
        assert r.warnings or not all(math.isfinite(g) for g in r.gradient.values()) or any(
            v < 0 for v in point.values()), text
        return
    assert close(value, float(r.value)), (text, value, r.value)
    for name, g in zip(wrt, grads):
        assert close(g, r.gradient[name]), (text, name, g, r.gradient[name])


def test_the_generated_text_names_no_user_text():
    tape, _ = parse("__import__ = 2\nos = x * __import__\nsin(os) + exp(x)")
    text = compiled.source(tape, tape.outputs[0], ["x"])
    assert "__import__" not in text and "os" not in text.replace("cos", "")
    fn = compiled.gradient_function(tape, tape.outputs[0], ["x"])
    value, (g,) = fn(0.3)
    assert close(value, math.sin(0.6) + math.exp(0.3))
    assert close(g, 2 * math.cos(0.6) + math.exp(0.3))


def test_what_does_not_compile_says_none():
    tape, _ = parse("max(x, y) + abs(x)")  # no float rule: the engine's job
    assert compiled.gradient_function(tape, tape.outputs[0], ["x", "y"]) is None
    tape, _ = parse("sum([1, 2] * x)")
    assert compiled.gradient_function(tape, tape.outputs[0], ["x"]) is None


def test_floats_refuse_where_numpy_warns():
    tape, _ = parse("log(x) + 1/y")
    fn = compiled.gradient_function(tape, tape.outputs[0], ["x", "y"])
    with pytest.raises((ArithmeticError, ValueError)):
        fn(0.0, 1.0)
    with pytest.raises((ArithmeticError, ValueError)):
        fn(1.0, 0.0)


def trajectory(text, at, compile_, **options):
    D.COMPILE = compile_
    try:
        tape, _ = parse(text)
        return list(D.descend(tape, {k: np.float64(v) for k, v in at.items()}, None, **options))
    finally:
        D.COMPILE = True


@pytest.mark.parametrize("text, at, options", [
    ("(1-x)^2 + 100*(y-x^2)^2", {"x": -1.2, "y": 1.0}, {"lr": 1e-3, "steps": 300}),
    ("1/(1+exp(-(w0*x0 + w1*x1 + w2)))", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3},
     {"lr": 0.5, "steps": 50, "optimizer": "adam"}),
    ("(w-3)^2 + 10*(v+1)^2", {"w": 0, "v": 0}, {"lr": 0.05, "steps": 80,
                                                   "optimizer": "momentum"}),
    ("x^2", {"x": 1}, {"lr": 1.5, "steps": 3000}),  # diverges: the same record and message
    ("log(x)", {"x": 0.5}, {"lr": 1.0, "steps": 5}),  # reaches log of a negative number
    ("(x-1)^2", {"x": 0}, {"lr": 0.5, "steps": 100, "tol": 1e-9}),  # converges
])
def test_descent_compiled_takes_the_interpreted_steps(text, at, options):
    fast = trajectory(text, at, True, **options)
    slow = trajectory(text, at, False, **options)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.step == b.step and a.stop == b.stop and a.message == b.message
        assert a.warnings == b.warnings
        assert close(a.loss, b.loss) or (not math.isfinite(a.loss) and not math.isfinite(b.loss))
        for name in a.params:
            assert close(float(a.params[name]), float(b.params[name]))
            assert close(float(a.gradient[name]), float(b.gradient[name]))


def test_matmul_skips_the_share_of_an_input_without_gradient():
    """X @ W with only W a parameter: the engine asks the vjp for W's share alone; W's gradient
    is the one both shares give, and against a hand-written Xᵀ·G."""
    from gradcli import engine

    rng = np.random.default_rng(3)
    X, W = rng.standard_normal((50, 4)), rng.standard_normal((4, 3))
    tape, _ = parse("sum(tanh(X @ W))")
    values = engine.forward(tape, {"X": X, "W": W})
    out = tape.outputs[0]
    both = engine.active(tape, ["X", "W"])
    only_w = engine.active(tape, ["W"])
    g_both = engine.backward(tape, values, engine.local_partials(tape, values, flags=both),
                             both, out)
    g_w = engine.backward(tape, values, engine.local_partials(tape, values, flags=only_w),
                          only_w, out)
    w = tape.variables["W"]
    assert np.allclose(g_w[w], g_both[w], rtol=1e-13, atol=0)
    assert np.allclose(g_w[w], X.T @ (1 - np.tanh(X @ W) ** 2), rtol=1e-12)
    assert g_w[tape.variables["X"]] is None


def test_a_long_descent_keeps_about_a_thousand_steps_unless_asked():
    import json

    from cli_runner import run as cli

    args = ("descend", "(w-3)^2", "--at", "w=0", "--lr", "1e-4", "--steps", "5000", "--json")
    doc = json.loads(cli(*args).stdout)
    kept = [s["step"] for s in doc["steps"]]
    assert kept[:3] == [0, 5, 10] and kept[-1] == 5000 and len(kept) == 1001
    doc = json.loads(cli(*args, "--every", "1").stdout)
    assert [s["step"] for s in doc["steps"]] == list(range(5001))
    doc = json.loads(cli("descend", "(w-3)^2", "--at", "w=0", "--steps", "999", "--json").stdout)
    assert len(doc["steps"]) == 1000  # up to 1000 steps: every one
