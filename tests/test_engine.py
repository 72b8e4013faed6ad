"""The engine on the worked examples of CS231n's backprop notes, and the language's semantics.

The oracles are the notes' own numbers and their hand-written backprop code (translated line by
line below), closed-form derivatives, and sympy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy

from gradcli import engine, evaluate
from gradcli.errors import InputError
from gradcli.parse import parse

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _by_name(r):
    return {n.name: n for n in r.nodes if n.name is not None}


# -- CS231n: "Simple expressions and interpretation of the gradient" -----------------------------

def test_cs231n_add_then_multiply():
    r = evaluate("(x + y) * z", at={"x": -2, "y": 5, "z": -4})
    assert r.value == -12.0
    assert r.gradient == {"x": -4.0, "y": -4.0, "z": 3.0}
    add = next(n for n in r.nodes if n.op == "add")
    assert add.value == 3.0
    assert add.grad == -4.0
    assert add.partials == (1.0, 1.0)
    mul = next(n for n in r.nodes if n.op == "mul")
    assert mul.value == -12.0 and mul.grad == 1.0
    assert mul.partials == (-4.0, 3.0)  # ∂/∂q = z, ∂/∂z = q


def test_cs231n_circuit_sample_file():
    r = evaluate((SAMPLES / "circuit.grad").read_text(encoding="utf-8"),
                 at={"x": -2, "y": 5, "z": -4})
    assert r.value == -12.0
    assert r.gradient == {"x": -4.0, "y": -4.0, "z": 3.0}


def test_cs231n_multiply():
    r = evaluate("x * y", at={"x": 4, "y": -3})
    assert r.value == -12.0
    assert r.gradient == {"x": -3.0, "y": 4.0}


# -- CS231n: the 2-d sigmoid neuron ------------------------------------------------------------

NEURON_AT = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}


def _neuron_oracle():
    """The notes' code, verbatim apart from list indexing."""
    w = [2, -3, -3]
    x = [-1, -2]
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1.0 / (1 + math.exp(-dot))  # sigmoid function
    ddot = (1 - f) * f  # gradient on dot variable, using the sigmoid gradient derivation
    dx = [w[0] * ddot, w[1] * ddot]  # backprop into x
    dw = [x[0] * ddot, x[1] * ddot, 1.0 * ddot]  # backprop into w
    return f, dot, ddot, dx, dw


def _check_neuron(r):
    f, _, _, dx, dw = _neuron_oracle()
    g = r.gradient
    assert round(r.value, 2) == 0.73
    assert [round(g["x0"], 2), round(g["x1"], 2)] == [0.39, -0.59]
    assert [round(g["w0"], 2), round(g["w1"], 2), round(g["w2"], 2)] == [-0.20, -0.39, 0.20]
    assert r.value == pytest.approx(f, rel=1e-15)
    assert [g["x0"], g["x1"]] == pytest.approx(dx, rel=1e-14)
    assert [g["w0"], g["w1"], g["w2"]] == pytest.approx(dw, rel=1e-14)
    assert r.warnings == []


def test_cs231n_sigmoid_neuron_inline():
    r = evaluate("1/(1+exp(-(w0*x0+w1*x1+w2)))", at=NEURON_AT)
    _check_neuron(r)


def test_cs231n_sigmoid_neuron_with_sigmoid_function():
    r = evaluate("sigmoid(w0*x0 + w1*x1 + w2)", at=NEURON_AT)
    _check_neuron(r)


def test_cs231n_sigmoid_neuron_staged_sample_file():
    text = (SAMPLES / "neuron.grad").read_text(encoding="utf-8")
    r = evaluate(text, at=NEURON_AT)
    _check_neuron(r)
    _, dot, ddot, _, _ = _neuron_oracle()
    nodes = _by_name(r)
    assert nodes["dot"].value == dot == 1.0
    assert nodes["dot"].grad == pytest.approx(ddot, rel=1e-14)
    assert nodes["f"].grad == 1.0
    inline = evaluate("1/(1+exp(-(w0*x0+w1*x1+w2)))", at=NEURON_AT)
    assert r.value == inline.value
    assert r.gradient == pytest.approx(inline.gradient, rel=1e-15)


# -- CS231n: "Staged computation" --------------------------------------------------------------

STAGED = """\
sigy = 1.0 / (1 + exp(-y))   # sigmoid in numerator
num = x + sigy               # numerator
sigx = 1.0 / (1 + exp(-x))   # sigmoid in denominator
xpy = x + y
xpysqr = xpy**2
den = sigx + xpysqr          # denominator
invden = 1.0 / den
f = num * invden             # done!
"""
INLINE = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)^2)"


def _staged_oracle(x=3, y=-4):
    """The notes' forward and backward pass, line by line."""
    sigy = 1.0 / (1 + math.exp(-y))  # (1)
    num = x + sigy  # (2)
    sigx = 1.0 / (1 + math.exp(-x))  # (3)
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6)
    invden = 1.0 / den  # (7)
    f = num * invden  # (8)
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den**2)) * dinvden
    dsigx = (1) * dden
    dxpysqr = (1) * dden
    dxpy = (2 * xpy) * dxpysqr
    dx = (1) * dxpy
    dy = (1) * dxpy
    dx += ((1 - sigx) * sigx) * dsigx
    dx += (1) * dnum
    dsigy = (1) * dnum
    dy += ((1 - sigy) * sigy) * dsigy
    values = dict(sigy=sigy, num=num, sigx=sigx, xpy=xpy, xpysqr=xpysqr, den=den,
                  invden=invden, f=f)
    grads = dict(sigy=dsigy, num=dnum, sigx=dsigx, xpy=dxpy, xpysqr=dxpysqr, den=dden,
                 invden=dinvden, f=1.0)
    return values, grads, {"x": dx, "y": dy}


def _sympy_staged(x=3, y=-4):
    X, Y = sympy.symbols("x y")
    sig = lambda a: 1 / (1 + sympy.exp(-a))  # noqa: E731
    f = (X + sig(Y)) / (sig(X) + (X + Y) ** 2)
    at = {X: x, Y: y}
    return (float(f.evalf(40, subs=at)),
            {"x": float(f.diff(X).evalf(40, subs=at)), "y": float(f.diff(Y).evalf(40, subs=at))})


def test_cs231n_staged_program_matches_the_notes_code():
    r = evaluate(STAGED, at={"x": 3, "y": -4})
    values, grads, gradient = _staged_oracle()
    nodes = _by_name(r)
    for name in values:
        assert name in nodes, f"intermediate {name} is not a named node"
        assert nodes[name].value == pytest.approx(values[name], rel=1e-14), name
        assert nodes[name].grad == pytest.approx(grads[name], rel=1e-13), name
    assert r.value == pytest.approx(values["f"], rel=1e-14)
    assert r.gradient == pytest.approx(gradient, rel=1e-13)
    assert r.warnings == []


def test_cs231n_staged_program_equals_inlined_formula_and_sympy():
    staged = evaluate(STAGED, at={"x": 3, "y": -4})
    inline = evaluate(INLINE, at={"x": 3, "y": -4})
    value, gradient = _sympy_staged()
    assert staged.value == pytest.approx(inline.value, rel=1e-15)
    assert staged.gradient == pytest.approx(inline.gradient, rel=1e-14)
    assert staged.value == pytest.approx(value, rel=1e-14)
    assert staged.gradient == pytest.approx(gradient, rel=1e-13)
    assert inline.gradient == pytest.approx(gradient, rel=1e-13)


def test_staged_program_semicolons_equal_newlines():
    one_line = "; ".join(line.split("#")[0].strip() for line in STAGED.splitlines())
    a = evaluate(one_line, at={"x": 3, "y": -4})
    b = evaluate(STAGED, at={"x": 3, "y": -4})
    assert a.value == b.value
    assert a.gradient == b.gradient
    assert [(n.op, n.name, n.value, n.grad) for n in a.nodes] == \
        [(n.op, n.name, n.value, n.grad) for n in b.nodes]


# -- adjoints accumulate -----------------------------------------------------------------------

def test_square_by_self_multiplication_accumulates():
    r = evaluate("x * x", at={"x": 3})
    assert r.value == 9.0
    assert r.gradient == {"x": 6.0}
    assert len([n for n in r.nodes if n.op == "var"]) == 1  # one node for x, used twice


def test_name_used_many_times_sums_its_gradients():
    r = evaluate("x + x + x + x*x - 2*x", at={"x": 2})
    # d/dx (3x + x² - 2x) = 1 + 2x
    assert r.value == 6.0
    assert r.gradient == {"x": 5.0}


def test_intermediate_fan_out_sums():
    at = {"x": 0.5, "y": -1.5}
    r = evaluate("q = x*y; f = q + q*q + exp(q) + sin(q)", at=at)
    q = at["x"] * at["y"]
    dq = 1 + 2 * q + math.exp(q) + math.cos(q)
    assert _by_name(r)["q"].grad == pytest.approx(dq, rel=1e-15)
    assert r.gradient["x"] == pytest.approx(dq * at["y"], rel=1e-15)
    assert r.gradient["y"] == pytest.approx(dq * at["x"], rel=1e-15)


def test_fan_out_through_a_diamond():
    # x feeds a and b; both feed f: df/dx = df/da·da/dx + df/db·db/dx
    r = evaluate("a = sin(x); b = cos(x); f = a * b", at={"x": 0.3})
    x = 0.3
    assert r.gradient["x"] == pytest.approx(math.cos(x) ** 2 - math.sin(x) ** 2, rel=1e-14)
    assert r.gradient["x"] == pytest.approx(math.cos(2 * x), rel=1e-14)


# -- staged programs equal their inlined form --------------------------------------------------

@pytest.mark.parametrize("staged,inline,at", [
    ("q = x + y; f = q * z", "(x + y) * z", {"x": -2, "y": 5, "z": -4}),
    ("a = x*y\nb = a + x\nc = b*b\nc", "(x*y + x)*(x*y + x)", {"x": 1.25, "y": -0.75}),
    ("s = sigmoid(w*x + b); loss = (s - t)^2", "(sigmoid(w*x + b) - t)^2",
     {"w": 0.3, "x": 2.0, "b": -0.1, "t": 1.0}),
    ("u = log(1 + x^2); v = sqrt(u + y^2); v * u", "sqrt(log(1 + x^2) + y^2) * log(1 + x^2)",
     {"x": 0.7, "y": -1.1}),
    ("r = x; s = r; s * r", "x * x", {"x": -3.5}),
])
def test_staged_equals_inlined(staged, inline, at):
    a = evaluate(staged, at=at)
    b = evaluate(inline, at=at)
    assert a.value == pytest.approx(b.value, rel=1e-15)
    assert list(a.gradient) == list(b.gradient)
    assert a.gradient == pytest.approx(b.gradient, rel=1e-14)


def test_named_intermediates_appear_as_nodes_with_their_names():
    r = evaluate("q = x + y; f = q * z", at={"x": -2, "y": 5, "z": -4})
    nodes = _by_name(r)
    assert set(nodes) == {"x", "y", "z", "q", "f"}
    assert nodes["q"].op == "add" and nodes["q"].value == 3.0 and nodes["q"].grad == -4.0
    assert nodes["f"].op == "mul" and nodes["f"].value == -12.0 and nodes["f"].grad == 1.0
    assert nodes["q"].inputs == (nodes["x"].id, nodes["y"].id)
    assert nodes["f"].inputs == (nodes["q"].id, nodes["z"].id)


# -- several outputs: the Jacobian -------------------------------------------------------------

def test_several_outputs_give_a_jacobian():
    r = evaluate("2*x + y, y - x", at={"x": 1, "y": 2})
    assert r.value == [4.0, 1.0]
    assert r.jacobian == [{"x": 2.0, "y": 1.0}, {"x": -1.0, "y": 1.0}]
    assert r.gradient == r.jacobian[0]
    x = _by_name(r)["x"]
    assert x.grad == [2.0, -1.0]  # one gradient per output


def test_jacobian_sample_file():
    r = evaluate((SAMPLES / "jacobian.grad").read_text(encoding="utf-8"), at={"x": 1, "y": 2})
    assert r.value == [4.0, 1.0]
    assert [[row["x"], row["y"]] for row in r.jacobian] == [[2.0, 1.0], [-1.0, 1.0]]


def test_output_that_does_not_depend_on_a_variable_has_zero_partial():
    r = evaluate("x + 1, y * 2", at={"x": 1, "y": 2})
    assert r.jacobian == [{"x": 1.0, "y": 0.0}, {"x": 0.0, "y": 2.0}]


def test_jacobian_columns_by_forward_mode_equal_rows_by_reverse_mode():
    text = "q = x*y; sin(q) + z, q*z - exp(x), atan2(y, z)"
    at = {"x": 0.4, "y": -1.3, "z": 2.2}
    r = evaluate(text, at=at)
    tape, _ = parse(text)
    values = engine.forward(tape, {k: np.float64(v) for k, v in at.items()})
    partials = engine.local_partials(tape, values)
    assert len(tape.outputs) == 3
    for name, i in tape.variables.items():
        tangents = engine.jvp(tape, values, partials, {i: np.float64(1.0)})
        column = [float(tangents[o]) if tangents[o] is not None else 0.0 for o in tape.outputs]
        assert column == pytest.approx([row[name] for row in r.jacobian], rel=1e-14, abs=0)
    # and the closed forms
    x, y, z = at["x"], at["y"], at["z"]
    assert r.jacobian[0] == pytest.approx(
        {"x": y * math.cos(x * y), "y": x * math.cos(x * y), "z": 1.0}, rel=1e-14)
    assert r.jacobian[1] == pytest.approx(
        {"x": y * z - math.exp(x), "y": x * z, "z": x * y}, rel=1e-14)
    assert r.jacobian[2] == pytest.approx(
        {"x": 0.0, "y": z / (y * y + z * z), "z": -y / (y * y + z * z)}, rel=1e-14)


# -- --wrt: a subset of the inputs -------------------------------------------------------------

def test_wrt_subset_restricts_the_gradient():
    at = {"x": -2, "y": 5, "z": -4}
    r = evaluate("(x + y) * z", at=at, wrt=["x"])
    assert r.gradient == {"x": -4.0}
    r = evaluate("(x + y) * z", at=at, wrt=["z", "y"])
    assert r.gradient == {"z": 3.0, "y": -4.0}


def test_wrt_leaves_nodes_that_depend_only_on_other_variables_without_gradient():
    at = {"x": 1.5, "y": 2.0, "z": -1.0}
    r = evaluate("a = x * 2; b = y + z; f = a * b", at=at, wrt=["x"])
    nodes = _by_name(r)
    assert r.gradient == {"x": 2.0 * (2.0 - 1.0)}
    assert nodes["b"].grad is None
    assert nodes["y"].grad is None
    assert nodes["z"].grad is None
    assert nodes["a"].grad == 1.0  # df/da = b
    assert nodes["f"].grad == 1.0
    assert nodes["x"].grad == 2.0
    # f's partial towards b is not shown: b carries no gradient
    assert nodes["f"].partials == (1.0, None)
    # values are all still computed
    assert nodes["b"].value == 1.0 and nodes["f"].value == 3.0


def test_wrt_at_engine_level():
    tape, _ = parse("a = x * 2; b = y + z; f = a * b")
    flags = engine.active(tape, ["y"])
    names = {n: i for i, n in tape.names.items()}
    active = {n for n, i in names.items() if flags[i]}
    assert active == {"y", "b", "f"}


# -- precedence and associativity --------------------------------------------------------------

def test_unary_minus_is_looser_than_power():
    r = evaluate("-x^2", at={"x": 3})
    assert r.value == -9.0
    assert r.gradient == {"x": -6.0}
    tape, _ = parse("-x^2")
    out = tape.outputs[0]
    assert tape.ops[out].name == "neg"
    assert tape.ops[tape.inputs[out][0]].name == "pow"
    assert evaluate("-2^2").value == -4.0
    assert evaluate("-x**2", at={"x": 3}).value == -9.0
    assert evaluate("(-x)^2", at={"x": 3}).value == 9.0


def test_power_is_right_associative():
    assert evaluate("2^3^2").value == 512.0
    assert evaluate("2**3**2").value == 512.0
    assert evaluate("(2^3)^2").value == 64.0
    r = evaluate("x^y^z", at={"x": 2, "y": 3, "z": 2})
    assert r.value == 512.0
    # d/dz 2^(3^z) = 2^(3^z)·ln 2·3^z·ln 3
    assert r.gradient["z"] == pytest.approx(512 * math.log(2) * 9 * math.log(3), rel=1e-14)


def test_negative_exponent():
    assert evaluate("2^-1").value == 0.5
    assert evaluate("2^-x", at={"x": 2}).value == 0.25
    assert evaluate("2^-1^2").value == 0.5  # 2^(-(1^2))


def test_left_associative_subtraction_and_division():
    assert evaluate("10 - 4 - 3").value == 3.0
    assert evaluate("64 / 4 / 2").value == 8.0
    r = evaluate("x / y / z", at={"x": 8, "y": 2, "z": 4})
    assert r.value == 1.0
    assert r.gradient == pytest.approx({"x": 1 / 8, "y": -1 / 2, "z": -1 / 4}, rel=1e-15)


# -- names and constants -----------------------------------------------------------------------

def test_unicode_names():
    r = evaluate("θ - η * θ^2", at={"θ": 0.5, "η": 0.1})
    assert r.value == pytest.approx(0.5 - 0.1 * 0.25, rel=1e-15)
    assert r.gradient == pytest.approx({"θ": 1 - 2 * 0.1 * 0.5, "η": -0.25}, rel=1e-15)
    assert {n.name for n in r.nodes if n.op == "var"} == {"θ", "η"}


def test_pi_and_e_constants():
    x = 0.25
    r = evaluate("sin(pi*x) + e^x", at={"x": x})
    assert r.value == pytest.approx(math.sin(math.pi * x) + math.e ** x, rel=1e-15)
    assert r.gradient == pytest.approx(
        {"x": math.pi * math.cos(math.pi * x) + math.e ** x * math.log(math.e)}, rel=1e-14)
    consts = [n for n in r.nodes if n.op == "const"]
    assert sorted(n.value for n in consts) == [math.e, math.pi]
    assert all(n.grad is None for n in consts)


def test_constants_carry_no_gradient():
    r = evaluate("3 * x + 2", at={"x": 1})
    assert r.gradient == {"x": 3.0}
    for n in r.nodes:
        if n.op == "const":
            assert n.grad is None
    mul = next(n for n in r.nodes if n.op == "mul")
    assert mul.partials == (None, 3.0)  # the constant's partial is not shown


# -- the engine directly -----------------------------------------------------------------------

def test_engine_backward_returns_adjoints_in_tape_order():
    tape, _ = parse("(x + y) * z")
    values = engine.forward(tape, {"x": np.float64(-2), "y": np.float64(5), "z": np.float64(-4)})
    assert [float(v) for v in values] == [-2.0, 5.0, 3.0, -4.0, -12.0]
    partials = engine.local_partials(tape, values)
    flags = engine.active(tape, list(tape.variables))
    adj = engine.backward(tape, values, partials, flags, tape.outputs[0])
    assert [float(a) for a in adj] == [-4.0, -4.0, -4.0, 3.0, 1.0]


def test_engine_backward_leaves_unreached_active_nodes_at_zero():
    tape, _ = parse("a = x * y; x + 1")
    values = engine.forward(tape, {"x": np.float64(2), "y": np.float64(3)})
    partials = engine.local_partials(tape, values)
    flags = engine.active(tape, ["x", "y"])
    adj = engine.backward(tape, values, partials, flags, tape.outputs[0])
    assert float(adj[tape.variables["y"]]) == 0.0
    assert float(adj[tape.bound["a"]]) == 0.0
    assert float(adj[tape.variables["x"]]) == 1.0


def test_engine_forward_names_a_missing_variable():
    tape, _ = parse("x * y")
    with pytest.raises(InputError, match=r"variable y\b.*--at y="):
        engine.forward(tape, {"x": np.float64(1)})


def test_an_output_that_depends_on_no_variable_has_zero_gradients():
    # found by the CLI fuzzer: `check 'q0 = 0; q0, x'` crashed on a None gradient
    r = evaluate("q0 = 0; q0, x", at={"x": 1})
    assert r.jacobian == [{"x": 0.0}, {"x": 1.0}]
    assert evaluate("3, x*2", at={"x": 1}).jacobian == [{"x": 0.0}, {"x": 2.0}]


# -- engine.contribution: the one chain-rule step ------------------------------------------------

def _sweep(text, at, wrt=None):
    tape, _ = parse(text)
    at = {k: np.asarray(v, dtype=np.float64)[()] for k, v in at.items()}
    values = engine.forward(tape, at)
    flags = engine.active(tape, list(wrt or tape.variables))
    partials = engine.local_partials(tape, values, flags=flags)
    adj = engine.backward(tape, values, partials, flags, tape.outputs[0])
    return tape, values, partials, flags, adj


@pytest.mark.parametrize("text,at", [
    ("(x + y) * z - x / y", {"x": -2.0, "y": 5.0, "z": -4.0}),
    ("sum(W @ x + b)", {"W": [[1.0, 2.0], [3.0, -4.0]], "x": [0.5, -1.0], "b": 2.0}),
    ("sum(softmax(A, 0) * A) + mean(A, 1) @ v", {"A": [[1.0, 2.0], [0.5, -3.0]], "v": [2.0, 1.0]}),
    ("max(x, y) * norm(v) + sum(v)", {"x": 1.0, "y": 1.0, "v": [3.0, 4.0]}),
])
def test_contributions_add_up_to_the_adjoints(text, at):
    """Every active input's adjoint is the sum of what its consumers send it."""
    tape, values, partials, flags, adj = _sweep(text, at)
    sums: dict[int, object] = {}
    out = tape.outputs[0]
    with np.errstate(all="ignore"):
        for k in range(out, -1, -1):
            if adj[k] is None:
                continue
            for slot, j in enumerate(tape.inputs[k]):
                c = engine.contribution(tape, values, partials, k, slot, adj[k])
                if flags[j] and c is not None:
                    assert np.shape(c) == np.shape(values[j]), (k, slot)
                    sums[j] = c if j not in sums else sums[j] + c
    for j, total in sums.items():
        np.testing.assert_allclose(total, adj[j])


def test_contribution_of_a_skipped_partial_or_an_axis_is_none():
    tape, values, partials, flags, adj = _sweep("x / y", {"x": 3.0, "y": 2.0}, wrt=["x"])
    div = tape.outputs[0]
    assert partials[div][1] is None  # ∂/∂y is not computed when y carries no gradient
    assert engine.contribution(tape, values, partials, div, 1, adj[div]) is None
    assert engine.contribution(tape, values, partials, div, 0, adj[div]) == 0.5
    tape, values, partials, flags, adj = _sweep("sum(A, 0)", {"A": [[1.0, 2.0], [3.0, 4.0]]})
    s = tape.outputs[0]
    assert partials[s] is None  # a structural op: its vjp gives the shares
    assert engine.contribution(tape, values, partials, s, 1, adj[s]) is None  # the axis
    np.testing.assert_array_equal(engine.contribution(tape, values, partials, s, 0, adj[s]),
                                  np.ones((2, 2)))


def test_a_broadcast_matmul_gradient_has_its_input_shape():
    """(2,3,4) @ (4,5): B's gradient is summed over the batch axis (it used to keep it)."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))
    r = evaluate("sum(A @ B)", at={"A": A, "B": B})
    assert np.shape(r.gradient["B"]) == (4, 5)
    np.testing.assert_allclose(r.gradient["B"], A.sum(axis=(0, 1))[:, None] * np.ones((4, 5)))
    np.testing.assert_allclose(r.gradient["A"], np.broadcast_to(B.sum(axis=1), (2, 3, 4)))
