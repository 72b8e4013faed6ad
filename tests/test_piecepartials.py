"""piecepartials.flat (a piece's local partials, one numpy call per op) against
engine.local_partials (one rule call per node): bit for bit on every edge whose input carries a
gradient, on random formulas, at points with zeros, huge values, infinities and NaN, for every
window of nodes; and `of` (the node whose value a partial is) checked against the values."""

from __future__ import annotations

import math
import random
from itertools import chain

import numpy as np
import pytest

from gradcli import engine, piecepartials
from gradcli.parse import parse

UNARY = ["sin", "cos", "tanh", "exp", "log", "sqrt", "sigmoid", "-", "relu", "abs", "atan",
         "sign", "softplus"]
BINARY = ["+", "-", "*", "/", "^", "max", "min", "<", "*same", "atan2"]
EXPONENTS = ["2", "2", "3", "0.5", "-1", "0", "1", "2.0"]
CONSTS = ["0", "1", "2", "0.5", "-1", "-0.0", "1e300", "1e-300"]
POINTS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, 1e300, 710.0, -710.0, math.inf, -math.inf,
          math.nan]


def random_formula(rng: random.Random, size: int, names: list[str]) -> str:
    """About `size` leaves, balanced (shallow recursion); named statements make id nodes."""
    if size <= 1:
        return rng.choice(CONSTS) if rng.random() < 0.2 else rng.choice(names)
    left = rng.randint(1, size - 1)
    a = random_formula(rng, left, names)
    b = random_formula(rng, size - left, names)
    if rng.random() < 0.3:
        fn = rng.choice(UNARY)
        return f"-({a})" if fn == "-" else f"{fn}({a})"
    op = rng.choice(BINARY)
    if op == "^":
        return f"({a})^{rng.choice(EXPONENTS)}" if rng.random() < 0.7 else f"({a})^({b})"
    if op == "*same":  # one node as both inputs: x * x
        return f"(({a}) * ({a}))" if len(a) < 40 else f"({a}) * ({b})"
    if op in ("max", "min", "atan2"):
        return f"{op}({a}, {b})"
    return f"({a}) {op} ({b})"


def packed_inputs(tape) -> tuple[np.ndarray, np.ndarray]:
    """Every node's input ids one after another, and where each node's begin (as Packed)."""
    starts = np.zeros(len(tape) + 1, np.int32)
    np.cumsum([len(t) for t in tape.inputs], out=starts[1:])
    return np.fromiter(chain.from_iterable(tape.inputs), np.int32), starts


def same(p, q) -> bool:
    p, q = float(p), float(q)
    if math.isnan(p) or math.isnan(q):
        return math.isnan(p) and math.isnan(q)
    return p == q and math.copysign(1.0, p) == math.copysign(1.0, q)


def compare(text: str, at: dict, wrt=None, convention: str = "cs231n", cuts=()) -> int:
    """flat against local_partials over the whole tape and the windows `cuts`; the number of
    edges compared."""
    tape, _ = parse(text)
    with np.errstate(all="ignore"):
        values = np.fromiter(engine.forward(tape, {k: np.float64(v) for k, v in at.items()}),
                             np.float64)
    flags = engine.active(tape, list(tape.variables) if wrt is None else wrt)
    want = engine.local_partials(tape, values, convention, None, flags)
    ids, starts = packed_inputs(tape)
    n, seen = len(tape), 0
    for a, b in [(0, n), *cuts]:
        got = piecepartials.flat(tape, values, ids, starts, a, b, flags, convention)
        assert got is not None, text
        assert len(got.partials) == len(got.of) == starts[b] - starts[a]
        e = 0
        for i in range(a, b):
            for k, j in enumerate(tape.inputs[i]):
                if flags[j]:
                    assert same(got.partials[e], want[i][k]), (text, at, i, k, tape.ops[i].name,
                                                                got.partials[e], want[i][k])
                    seen += 1
                if got.of[e] >= 0:  # the partial is exactly that node's value
                    assert same(got.partials[e], values[got.of[e]]), (text, i, k)
                e += 1
    return seen


@pytest.mark.parametrize("seed", range(80))
def test_random_formulas_give_local_partials_bit_for_bit(seed):
    rng = random.Random(f"piecepartials-{seed}")
    names = ["x", "y", "z"]
    body = random_formula(rng, rng.choice([4, 12, 40, 120]), names)
    text = f"q = {body}\nr = q * x\nr + q" if rng.random() < 0.3 else body
    tape, _ = parse(text)
    n = len(tape)
    for _ in range(3):
        at = {v: rng.choice(POINTS) if rng.random() < 0.3 else rng.uniform(-3, 3)
              for v in tape.variables}
        wrt = None if rng.random() < 0.6 else [v for v in tape.variables if rng.random() < 0.5]
        cuts = [(a, rng.randint(a, n)) for a in (rng.randrange(n) for _ in range(3))]
        compare(text, at, wrt, rng.choice(["cs231n", "half", "zero"]), cuts + [(n, n)])


def test_the_vectorised_ops_are_not_local_partials(monkeypatch):
    """+ - * / neg id exp tanh sigmoid and x^2 are made by array operations (so the test above
    exercises them, not local_partials under another name); a kink's op by local_partials."""
    text = "q = x * y + exp(x) - tanh(y) / sigmoid(x)\nw = q\n-(w) + x^2 + y * y"
    at = {"x": 0.75, "y": -1.25}
    seen = compare(text, at)
    assert seen == sum(map(len, parse(text)[0].inputs)) - 1  # every edge but 2 in x^2

    def refuse(*args, **kwargs):
        raise AssertionError("local_partials was asked")

    monkeypatch.setattr(engine, "local_partials", refuse)
    tape, _ = parse(text)
    values = np.fromiter(engine.forward(tape, {k: np.float64(v) for k, v in at.items()}),
                         np.float64)
    ids, starts = packed_inputs(tape)
    flags = engine.active(tape, ["x", "y"])
    got = piecepartials.flat(tape, values, ids, starts, 0, len(tape), flags)
    assert got is not None
    mul = tape.ops.index(next(op for op in tape.ops if op.name == "mul"))
    assert got.of[starts[mul]] == tape.inputs[mul][1]  # ∂(x·y)/∂x is y's value
    exp = next(i for i, op in enumerate(tape.ops) if op.name == "exp")
    assert got.of[starts[exp]] == exp  # ∂exp(x)/∂x is exp(x) itself
    with pytest.raises(AssertionError, match="asked"):  # max is the rule's (a kink test)
        piecepartials.flat(*_tape_of("max(x, y)", at), 0, 3, [True] * 3)


def _tape_of(text, at):
    tape, _ = parse(text)
    values = np.fromiter(engine.forward(tape, {k: np.float64(v) for k, v in at.items()}),
                         np.float64)
    return (tape, values, *packed_inputs(tape))


@pytest.mark.parametrize("text, at", [
    ("x / y + y / x", {"x": 0.0, "y": 0.0}),  # 1/0 and -y/0: Infinity and NaN, as numpy's
    ("x / y", {"x": -0.0, "y": math.inf}),
    ("(x * 1e300) * (y * 1e300)", {"x": 10.0, "y": -10.0}),  # overflow
    ("tanh(x) * sigmoid(y) + exp(x)", {"x": 800.0, "y": -800.0}),
    ("(x)^2 + (y)^2 + (x)^(y)", {"x": -0.0, "y": 2.0}),
    ("(x)^0 + (x)^1 + (x)^-1 + (x)^0.5", {"x": 0.0, "y": 0.0}),
    ("x * x - x", {"x": math.nan}),
    ("max(x, y) + relu(x) + abs(y)", {"x": 0.0, "y": 0.0}),
])
def test_edge_values(text, at):
    for convention in ("cs231n", "half", "zero"):
        compare(text, at, None, convention)


def test_a_structural_node_gives_none():
    """A node with no partials of its own (its vjp stands in): None, so the writer reads
    local_partials' tuples instead."""
    tape, values, ids, starts = _tape_of("x + y", {"x": 1.0, "y": 2.0})
    add = tape.outputs[0]
    op = tape.ops[add]
    fake = type(op).__new__(type(op))
    for name in type(op).__slots__ if hasattr(type(op), "__slots__") else ():
        object.__setattr__(fake, name, getattr(op, name))
    object.__setattr__(fake, "name", "sum")
    object.__setattr__(fake, "partials", None)
    object.__setattr__(fake, "kink", None)
    tape.ops[add] = fake
    assert piecepartials.flat(tape, values, ids, starts, 0, len(tape), [True] * len(tape)) \
        is None


def test_the_wide_benchmark_formula():
    """The formula whose --json the benchmark times, a few thousand nodes of it: every edge."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
    try:
        import formulas as F
    finally:
        sys.path.pop(0)
    prog, _ = F.wide(5000, 1)
    text = F.render(prog)
    at = F.wide_point(1)
    n = len(parse(text)[0])
    assert compare(text, at, None, "cs231n", [(k, min(k + 1024, n)) for k in range(0, n, 1024)]) > n
