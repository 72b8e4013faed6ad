"""gradcli.reverse (the reverse sweep with the partials inside the loop) against the plain path:
engine.active + engine.local_partials + engine.backward, on random formulas and edge cases.
Flags, adjoints (bit for bit), kinks and warnings must be the same; the partials Result shows
are local_partials' own."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from gradcli import engine, reverse
from gradcli.parse import parse
from gradcli.result import run


def plain(tape, values, wrt, output, convention="cs231n"):
    kinks: list[int] = []
    flags = engine.active(tape, wrt)
    partials = engine.local_partials(tape, values, convention, kinks, flags)
    adj = engine.backward(tape, values, partials, flags, output)
    return flags, partials, adj, kinks


def same_number(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if np.ndim(a) or np.ndim(b):
        return np.array_equal(a, b, equal_nan=True)
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def same_partials(p, q) -> bool:
    if p is None or q is None:
        return p is None and q is None
    return len(p) == len(q) and all(same_number(a, b) for a, b in zip(p, q))


def compare(text, at, wrt=None, convention="cs231n"):
    """Run both sweeps on one formula; assert they agree. Returns the fused (flags, adj)."""
    tape, _ = parse(text)
    at = {k: np.float64(v) if not isinstance(v, np.ndarray) else v for k, v in at.items()}
    values = engine.forward(tape, at)
    wrt = list(tape.variables) if wrt is None else wrt
    out = tape.outputs[0]
    f0, p0, a0, k0 = plain(tape, values, wrt, out, convention)
    kinks: list[int] = []
    f1, p1, a1 = reverse.gradients(tape, values, wrt, out, convention, kinks)
    assert list(f1) == list(f0), text
    assert k0 == kinks, text
    bad = [i for i in range(len(tape)) if not same_number(a0[i], a1[i])]
    assert not bad, (text, [(i, a0[i], a1[i]) for i in bad[:5]])
    for i in range(len(tape)):  # the partials shown are local_partials' own
        assert same_partials(p0[i], p1[i]), (text, i)
    for i in tape.variables.values():  # gradients keep their numpy type
        assert type(a1[i]) is type(a0[i]), (text, i)
    assert reverse.nonfinite_warnings(tape, values, p1, f1) == \
        engine.nonfinite_warnings(tape, values, p0, f0), text
    return f1, a1


# -- 0. engine.forward takes Python floats as numpy float64 (for the scalar --at values) --------

def test_forward_makes_python_floats_and_ints_numpy():
    tape, _ = parse("x / y + z")
    values = engine.forward(tape, {"x": 1.0, "y": 0, "z": 2})
    assert all(type(values[i]) is np.float64 for i in tape.variables.values())
    assert values[tape.outputs[0]] == math.inf  # numpy's 1/0, not ZeroDivisionError
    exact, lost = engine.forward_exact(tape, {"x": 1.0, "y": 0.0, "z": 2})
    assert exact[tape.outputs[0]] == math.inf and lost == []


def test_run_with_python_floats_warns_as_with_numpy():
    tape, _ = parse("log(x) + 1/y")
    a = run(tape, {"x": 0.0, "y": 0.0}, None)
    b = run(tape, {"x": np.float64(0.0), "y": np.float64(0.0)}, None)
    assert a.warnings == b.warnings and any("Infinity" in w for w in a.warnings)
    assert a.value == b.value == -math.inf or math.isnan(a.value) and math.isnan(b.value)


# -- 1. random formulas -------------------------------------------------------------------------

UNARY = ["sin", "cos", "tanh", "exp", "log", "sqrt", "sigmoid", "-", "relu", "abs", "sinh",
         "log2", "atan", "sign", "tan", "softplus", "cbrt"]
BINARY = ["+", "-", "*", "/", "^", "max", "min", "atan2", "<", "pow"]
CONSTS = ["0", "1", "2", "0.5", "-1", "3", "1e300", "pi"]


def random_formula(rng: random.Random, size: int, names: list[str]) -> str:
    """A random formula of about `size` leaves (a balanced split, so the recursion is shallow)."""
    if size <= 1:
        r = rng.random()
        if r < 0.2:
            return rng.choice(CONSTS)
        return rng.choice(names)
    left = rng.randint(1, size - 1)
    a = random_formula(rng, left, names)
    b = random_formula(rng, size - left, names)
    r = rng.random()
    if r < 0.3:
        fn = rng.choice(UNARY)
        return f"-({a})" if fn == "-" else f"{fn}({a})"
    op = rng.choice(BINARY)
    if op == "^":
        if rng.random() < 0.7:  # mostly a constant exponent
            return f"({a})^{rng.choice(['2', '3', '0.5', '-1', '0', '1.5'])}"
        return f"({a})^({b})"
    if op in ("max", "min", "atan2", "pow"):
        return f"{op}({a}, {b})"
    if op == "<":
        return f"({a}) < ({b})"
    return f"({a}) {op} ({b})"


POINTS = [0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e-300, 1e300, 700.0]


@pytest.mark.parametrize("seed", range(60))
def test_random_formulas_agree(seed):
    rng = random.Random(seed)
    names = ["x", "y", "z", "w"]
    text = random_formula(rng, rng.choice([3, 8, 20, 60]), names)
    tape, _ = parse(text)
    for _ in range(4):
        at = {n: rng.choice(POINTS) if rng.random() < 0.4 else rng.uniform(-3, 3)
              for n in tape.variables}
        wrt = None if rng.random() < 0.6 else [n for n in tape.variables if rng.random() < 0.5]
        compare(text, at, wrt, rng.choice(["cs231n", "half", "zero"]))


@pytest.mark.parametrize("seed", range(3))
def test_wide_benchmark_formulas_agree(seed):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
    import formulas as F

    prog, _ = F.wide(3000, seed)
    compare(F.render(prog), F.wide_point(seed))


# -- 2. edge cases ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, at", [
    ("1/x + y", {"x": 0.0, "y": 1.0}),                   # a pole: Infinity and its warning
    ("x / y", {"x": 0.0, "y": 0.0}),                     # NaN born
    ("log(x) * y", {"x": 0.0, "y": 2.0}),
    ("log(x) * y", {"x": -1.0, "y": 2.0}),
    ("sqrt(x) + y", {"x": 0.0, "y": 1.0}),               # slope Infinity at 0
    ("sqrt(x) + y", {"x": -1.0, "y": 1.0}),
    ("exp(x) * y", {"x": 1000.0, "y": 0.0}),             # overflow, 0 · Infinity
    ("x^-1 + y", {"x": 0.0, "y": 1.0}),                  # 0^-1: Python raises, numpy Infinity
    ("x^0.5 * y", {"x": -8.0, "y": 1.0}),                # complex in Python, NaN in numpy
    ("x^(1/3)", {"x": -8.0}),
    ("x^400", {"x": 10.0}),                              # OverflowError in Python
    ("x^y", {"x": 0.0, "y": 2.0}),
    ("x^y", {"x": -2.0, "y": 3.0}),
    ("x^0 * y", {"x": 0.0, "y": 3.0}),
    ("tanh(x) * sin(y) * cos(x*y)", {"x": math.inf, "y": 1.0}),
    ("sin(x)", {"x": math.nan}),
    ("relu(x) + abs(y) + sign(x)", {"x": 0.0, "y": 0.0}),  # kinks
    ("max(x, y, 1) - min(x, y)", {"x": 1.0, "y": 1.0}),  # ties
    ("where(x < y, x*y, x+y)", {"x": 1.0, "y": 2.0}),
    ("x*x + x", {"x": 3.0}),                             # fan-out: gradients add
    ("x / x", {"x": 2.0}),
    ("q = x*y; q*q + sin(q)", {"x": 0.5, "y": -2.0}),
    ("x * exp(2*3) + (0.5 - 3)*y", {"x": 1.0, "y": 2.0}),  # inactive computed nodes
    ("x * sin(exp(2*pi) - 1) * exp(-(1 - 3))", {"x": 1.0}),  # chains of them
    ("2*3 + 1", {}),                                     # no variable at all
    ("x", {"x": 2.0}),                                   # the output is a variable
    ("q = sin(y) * relu(x - x); r = 2*3; x*2", {"x": 1.0, "y": 1.0}),  # unreached nodes
    ("sum([x, y]) * x", {"x": 1.0, "y": 2.0}),           # a tensor inside: the plain sweep
    ("sum(x * [1, 2])", {"x": 3.0}),
    ("x * 1e300 * 1e300 - y", {"x": 1.0, "y": 1.0}),     # overflow in a product
])
def test_edge_cases_agree(text, at):
    for convention in ("cs231n", "half", "zero"):
        compare(text, at, None, convention)
    tape, _ = parse(text)
    names = list(tape.variables)
    if len(names) > 1:
        compare(text, at, names[:1])
        compare(text, at, names[1:])
    compare(text, at, [])


def test_wrt_subset_marks_the_rest_inactive():
    flags, adj = compare("a*x + b*y + sin(x*y)", {"a": 1.0, "b": 2.0, "x": 0.5, "y": 3.0},
                         ["a", "b"])
    tape, _ = parse("a*x + b*y + sin(x*y)")
    assert adj[tape.variables["x"]] is None and not flags[tape.variables["x"]]


def test_tensor_values_fall_back_to_the_plain_sweep():
    tape, _ = parse("sum(W * x)")
    W = np.array([1.0, 2.0, 3.0])
    values = engine.forward(tape, {"W": W, "x": np.float64(2.0)})
    f0, p0, a0, _ = plain(tape, values, ["W", "x"], tape.outputs[0])
    f1, p1, a1 = reverse.gradients(tape, values, ["W", "x"], tape.outputs[0])
    assert type(p1) is list and f0 == f1
    assert all(same_number(a, b) for a, b in zip(a0, a1))


# -- 3. deep chains: no recursion ---------------------------------------------------------------

@pytest.mark.parametrize("text, value, grad", [
    ("-" * 100_000 + "x", 2.0, 1.0),
    ("x+(" * 50_000 + "x" + ")" * 50_000, 2.0 * 50_001, 50_001.0),
])
def test_deep_chains(text, value, grad):
    tape, _ = parse(text)
    r = run(tape, {"x": np.float64(2.0)}, None)
    assert r.value == value and r.gradient == {"x": grad}
    flags, adj = compare(text, {"x": 2.0})
    assert all(flags)


def test_deep_calls_chain():
    depth = 30_000
    text = "sin(" * depth + "x" + ")" * depth
    flags, adj = compare(text, {"x": 0.7})
    v, g = 0.7, 1.0
    for _ in range(depth):
        g *= math.cos(v)
        v = math.sin(v)
    tape, _ = parse(text)
    assert abs(float(adj[tape.variables["x"]]) - g) <= 1e-12 * max(1.0, abs(g))


# -- 4. what Result shows -----------------------------------------------------------------------

@pytest.mark.parametrize("text, at, mode", [
    ("relu(x) * y + x / y", {"x": 0.0, "y": 0.0}, "reverse"),
    ("w0*x0 + w1*x1 + w2", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}, "reverse"),
    ("sin(x) ^ 2 + exp(x*y)", {"x": 0.3, "y": 1.5}, "both"),
    ("x*y, x+y", {"x": 3.0, "y": 5.0}, "reverse"),  # several outputs: backward_many
])
def test_result_nodes_and_warnings_as_the_plain_sweep(monkeypatch, text, at, mode):
    tape, _ = parse(text)
    point = {k: np.float64(v) for k, v in at.items()}
    fused = run(tape, point, None, mode=mode, subgradient="half")

    def plain_gradients(tape, values, wrt, output, convention="cs231n", kinks=None):
        f, p, a, k = plain(tape, values, wrt, output, convention)
        if kinks is not None:
            kinks.extend(k)
        return f, p, a
    monkeypatch.setattr(reverse, "gradients", plain_gradients)
    monkeypatch.setattr(reverse, "nonfinite_warnings", engine.nonfinite_warnings)
    ref = run(tape, point, None, mode=mode, subgradient="half")
    assert fused.warnings == ref.warnings
    assert fused.kinks == ref.kinks
    assert [repr(n) for n in fused.nodes] == [repr(n) for n in ref.nodes]
    assert repr(fused.jacobian) == repr(ref.jacobian)
    from gradcli.render.jsonout import eval_json
    assert eval_json(fused) == eval_json(ref)


def test_partials_are_made_only_when_read():
    tape, _ = parse("x*y + sin(x)")
    values = engine.forward(tape, {"x": np.float64(1.0), "y": np.float64(2.0)})
    flags, partials, adj = reverse.gradients(tape, values, ["x", "y"], tape.outputs[0])
    assert partials._list is None and partials.finite
    assert len(partials) == len(tape)
    assert partials[2] == engine.local_partials(tape, values, flags=flags)[2]
    assert partials._list is not None


@pytest.mark.parametrize("seed", range(12))
def test_partials_made_a_piece_at_a_time_equal_the_whole_table(seed):
    # the --json writer reads partials[a:b]: each piece is made alone, never the whole table
    rng = random.Random(seed)
    text = random_formula(rng, rng.choice([8, 20, 60]), ["x", "y", "z"])
    tape, _ = parse(text)
    at = {n: np.float64(rng.choice(POINTS) if rng.random() < 0.3 else rng.uniform(-3, 3))
          for n in tape.variables}
    values = engine.forward(tape, at)
    convention = rng.choice(["cs231n", "half", "zero"])
    wrt = [n for n in tape.variables if rng.random() < 0.7]
    flags, partials, _ = reverse.gradients(tape, values, wrt, tape.outputs[0], convention)
    whole = engine.local_partials(tape, values, convention, None, flags)
    n = len(tape)
    for a, b in [(0, n), (0, 1), (n // 3, 2 * n // 3), (n - 1, n), (5, 3), (0, n + 10)]:
        piece = partials[a:b]
        assert partials._list is None  # nothing kept
        assert len(piece) == len(whole[a:b])
        assert all(same_partials(p, q) for p, q in zip(piece, whole[a:b])), (text, a, b)
    assert all(same_partials(p, q) for p, q in zip(partials, whole))  # the whole table too


# -- 5. settling the flags: only the users of the nodes found inactive ---------------------------
# The sweep starts with every computed node active; a node found inactive (all inputs inactive)
# opens a window up to its highest user (the node that sent it its first adjoint), and only
# those windows are scanned for nodes that turn out inactive too.

@pytest.mark.parametrize("text, at, wrt", [
    ("x / exp(0.5) + exp(2) * x", {"x": 1.5}, None),      # inactive nodes feeding active ones
    ("x + sin(cos(exp(1) * 2) + 3) * 4", {"x": 0.3}, None),  # a chain of them
    ("sin(" * 300 + "1" + ")" * 300 + " * x", {"x": 2.0}, None),  # a long chain, one window each
    ("q = exp(1); q*x + q*q + sin(q)", {"x": 0.7}, None),  # used several times
    ("q = exp(0.5); r = q*q; r + x*r + r - sin(r)", {"x": -1.2}, None),
    ("q = exp(1) + 2; (q * 3) + x * q + sin(q * q)", {"x": 0.1}, None),
    ("q = exp(1); sin(q) + x + sin(q)", {"x": 0.4}, None),  # two users with equal inputs
    ("q = exp(1); r = sin(q) * 2; s = sin(q) * 3; x*r + s*x + r*s", {"x": 0.4}, None),
    ("exp(1) * (x + x*x + x*x*x + sin(x)*cos(x) + tanh(x)) + (exp(2) + 1) * x",  # far users
     {"x": 0.8}, None),
    ("x * sin(y*z) + (y*z)^2 + exp(y) / (z - y)", {"x": 0.5, "y": 1.5, "z": -0.5}, ["x"]),
    ("x * sin(y*z) + (y*z)^2 + exp(y) / (z - y)", {"x": 0.5, "y": 1.5, "z": -0.5}, ["y"]),
    ("q = y*2; r = q + 3; x*r + (r*r)*x + relu(r - 9)", {"x": 1.0, "y": 1.0}, ["x"]),
    ("q = exp(1) / 0; x * q + max(q, 1) * x", {"x": 1.0}, None),  # Infinity, general ops
    ("exp(1)*(exp(1)*(exp(1)*(exp(1)*(exp(1)*(exp(1)*x)))))", {"x": 2.0}, None),
])
def test_nodes_found_inactive_settle_as_the_full_pass(text, at, wrt):
    for convention in ("cs231n", "half"):
        compare(text, at, wrt, convention)


def spy_settle(monkeypatch) -> list:
    """The results of _State.settle (True: the windows sufficed; False: the full pass ran)."""
    seen: list = []
    settle = reverse._State.settle

    def spy(self):
        seen.append(settle(self))
        return seen[-1]
    monkeypatch.setattr(reverse._State, "settle", spy)
    return seen


def test_wide_formulas_settle_by_windows(monkeypatch):
    seen = spy_settle(monkeypatch)
    test_wide_benchmark_formulas_agree(0)
    assert seen == [True]  # exp(0.5) and the like: found, and settled without the full pass


def test_windows_wider_than_the_tape_fall_back_to_the_full_pass(monkeypatch):
    # each exp(1) is a left operand: its user is the top of everything to its right, so the
    # windows together would cover the tape many times over
    depth = 400
    text = "exp(1)*(" * depth + "x" + ")" * depth
    seen = spy_settle(monkeypatch)
    flags, adj = compare(text, {"x": 0.5})
    assert seen == [False]
    tape, _ = parse(text)
    assert sum(1 for i in range(len(tape)) if tape.inputs[i] and not flags[i]) == depth


def random_program(rng: random.Random) -> str:
    """A few named statements over earlier names, constants and variables, then an output:
    shared computed nodes, constant subexpressions and chains of them."""
    names = ["x", "y", "z"]
    lines = []
    for k in range(rng.randint(1, 5)):
        pool = names + ["1", "2", "0.5", "exp(1)", "pi"] * 2
        lines.append(f"q{k} = {random_formula(rng, rng.choice([1, 2, 4, 8]), pool)}")
        names.append(f"q{k}")
    lines.append(random_formula(rng, rng.choice([4, 10, 30]), names))
    return "; ".join(lines)


@pytest.mark.parametrize("seed", range(60))
def test_random_programs_with_shared_constants_agree(seed):
    rng = random.Random(f"settle-{seed}")
    text = random_program(rng)
    tape, _ = parse(text)
    for _ in range(3):
        at = {n: rng.uniform(-2, 2) for n in tape.variables}
        wrt = None if rng.random() < 0.5 else [n for n in tape.variables if rng.random() < 0.5]
        compare(text, at, wrt, rng.choice(["cs231n", "half"]))


def highest_user_templates() -> list[str]:
    """q's highest user of each kind the sweep writes inline, q in each place (with an active
    or an inactive other input); r = q*2 is a lower user that turns out inactive."""
    uses = []
    for op in "+-*/":
        uses += [f"x {op} q", f"q {op} x", f"q {op} 2", f"2 {op} q"]
    uses += [f"{fn}(q)" for fn in ("sin", "cos", "tanh", "exp", "log", "sqrt", "sigmoid")]
    uses += ["-q", "q ^ 2", "x ^ q", "q ^ x", "max(q, x)", "relu(q)"]
    return [f"q = exp(1); r = q * 2; ({use}) * x + r * x" for use in uses] + [
        "q = exp(1); r = q * 2; p = q; p * x + r * x"]  # p: an id node


@pytest.mark.parametrize("text", highest_user_templates())
def test_every_kind_of_highest_user_opens_the_window(text):
    flags, _ = compare(text, {"x": 0.6})
    tape, _ = parse(text)
    assert not flags[tape.bound["r"]]


def test_a_vjp_that_passes_nothing_on_makes_the_full_pass_run():
    # a structural op whose vjp gives its input nothing: it sends q no adjoint, so q's window
    # (up to its highest user that sends, w) misses it; the full pass must find it inactive
    from dataclasses import replace

    from gradcli.ops import lookup
    from gradcli.tape import Tape

    nothing = replace(lookup("sum"), name="nothing", vjp=lambda g, y, x: (None,))
    tape = Tape("")
    c = tape.add(lookup("const"), (), 0, 0)
    tape.consts[c] = 1.0
    q = tape.add(lookup("exp"), (c,), 0, 0)
    two = tape.add(lookup("const"), (), 0, 0)
    tape.consts[two] = 2.0
    w = tape.add(lookup("mul"), (q, two), 0, 0)  # w's own window ends at wx, below u
    x = tape.add(lookup("var"), (), 0, 0)
    tape.variables["x"] = x
    wx = tape.add(lookup("mul"), (w, x), 0, 0)
    u = tape.add(nothing, (q,), 0, 0)
    out = tape.add(lookup("add"), (tape.add(lookup("mul"), (u, x), 0, 0), wx), 0, 0)
    tape.outputs.append(out)
    values = list(tape.literals.get(i) for i in range(len(tape)))
    values[x] = np.float64(0.5)
    values[q] = np.exp(values[c])
    values[w] = values[q] * values[two]
    values[wx] = values[w] * values[x]
    values[u] = values[q]
    values[u + 1] = values[u] * values[x]
    values[out] = values[u + 1] + values[wx]
    f0, _, a0, _ = plain(tape, values, ["x"], out)
    f1, _, a1 = reverse.gradients(tape, values, ["x"], out)
    assert not f0[u] and f1 == f0
    assert all(same_number(p, r) for p, r in zip(a0, a1))
