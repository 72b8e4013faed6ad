"""Grading (issue 12 items 7-10, issue 11 items 4-5): slips several steps back, rounded answers,
the headline's words, --exact answers, formula answers, several outputs and tensor shapes.
Oracles: the correct values are worked by hand (numpy for the relu layer), and each wrong answer
is built by making the named mistake by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cli_runner import run as _run
from gradcli.api import check
from gradcli.check import paths

NEURON = "samples/neuron.grad"
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"
RELU = "h = relu(W @ x + b); L = sum(v * h)"
RELU_AT = ["--at", "W=[[1,-1],[2,1],[-1,0.5]]", "--at", "x=[1,2]", "--at", "b=[0,-1,0.5]",
           "--at", "v=[1,2,3]"]


def run(*args, **options):
    """`gradcli check ARGS...`."""
    return _run("check", *args, **options)


def nodes(*args):
    r = run(*args, "--json")
    assert r.exit_code in (0, 1), (r.stdout, r.stderr)
    return r.exit_code, json.loads(r.stdout)


# -- 7. several steps back --------------------------------------------------------------------

def test_forgotten_relu_mask_is_named():
    # W@x+b = [-1, 3, 0.5]: the mask is [0, 1, 1]; v passed through unmasked is [1, 2, 3].
    r = run(RELU, *RELU_AT, "--wrt", "b", "--expect", "b=[1,2,3]")
    assert r.exit_code == 1
    assert "local derivative of the relu `h`" in r.stdout and "mask" in r.stdout
    code, doc = nodes(RELU, *RELU_AT, "--wrt", "b", "--expect", "b=[1,2,3]")
    slip = doc["nodes"][0]["slip"]
    assert slip["kind"] == "missing_local" and slip["via"] == 5
    assert doc["nodes"][0]["correct"] == [0.0, 2.0, 3.0]


def test_relu_layer_correct_answer_passes():
    pre = np.array([[1, -1], [2, 1], [-1, 0.5]]) @ np.array([1, 2]) + np.array([0, -1, 0.5])
    want = np.array([1, 2, 3]) * (pre > 0)
    r = run(RELU, *RELU_AT, "--wrt", "b", "--expect", f"b={json.dumps(want.tolist())}")
    assert r.exit_code == 0, r.stdout


@pytest.mark.parametrize("answer, kind, rule", [
    (lambda h: 3 * 2, "missing_local", "path"),                # (1 - h²) forgotten
    (lambda h: 3 * (1 - h) * 2, "wrong_rule", "tanh_no_square"),  # 1 - tanh for 1 - tanh²
    (lambda h: -3 * (1 - h * h) * 2, "sign_flipped", "grad"),  # the whole sign
])
def test_tanh_layer_slips_two_steps_back(answer, kind, rule):
    h = math.tanh(0.5 * 2 - 0.3)
    r = check("h = tanh(w*x + b); L = 3*h", at={"w": 0.5, "x": 2.0, "b": -0.3},
              expect={"w": answer(h)})
    g = r.grades[0]
    assert not g.ok and g.slip.kind == kind and g.slip.rule == rule
    if kind != "sign_flipped":
        assert r.tape.ops[g.slip.via].name == "tanh"


def test_local_sign_flip_further_back_is_named():
    # L = 3*exp(-w*x): the student drops neg's minus: +3*exp(-wx)*x instead of -3*exp(-wx)*x.
    at = {"w": 0.5, "x": 2.0}
    wrong = 3 * math.exp(-1.0) * 2.0
    r = check("u = -(w*x); L = 3*exp(u)", at=at, expect={"w": wrong})
    g = r.grades[0]
    assert not g.ok and g.slip is not None
    assert g.slip.kind in ("sign_flipped", "missing_local")  # neg's -1 dropped = sign flipped


def test_follows_from_your_wrong_upstream_answer():
    # ∂f/∂dot given as 0.53 (it is 0.196612); ∂f/∂w0 = x0·∂f/∂dot = -0.53 follows from it.
    r = check(NEURON_TEXT, at=NEURON_POINT, expect={"dot": "0.53", "w0": "-0.53"})
    w0 = next(g for g in r.grades if g.node == r.tape.variables["w0"])
    assert w0.slip.kind == "propagated" and r.tape.label(w0.slip.via) == "dot"
    msg = json.loads(r.to_json())["nodes"][0]["slip"]["message"]
    assert "follows from your ∂f/∂dot" in msg


def test_path_search_is_capped(monkeypatch):
    monkeypatch.setattr(paths, "MAX_SITES", 3)
    text = "L = " + "sin(" * 30 + "x" + ")" * 30
    r = check(text, at={"x": 0.3}, expect={"x": "123"})
    assert not r.grades[0].ok and r.grades[0].search.capped
    assert any("stopped at its cap" in w for w in r.warnings)


def test_path_search_over_a_deep_chain_finds_the_slip():
    # 200 nested sins: forgetting the innermost cos(x) factor is found 200 steps back.
    n = 200
    text = "sin(" * n + "x" + ")" * n
    x = 0.3
    vals = [x]
    for _ in range(n):
        vals.append(math.sin(vals[-1]))
    grad = 1.0
    for v in vals[:-1]:
        grad *= math.cos(v)
    wrong = grad / math.cos(vals[100])  # node 101 = sin(node 100) had its cos dropped
    r = check(text, at={"x": x}, expect={"x": wrong})
    g = r.grades[0]
    assert g.slip.kind == "missing_local" and g.slip.rule == "path" and g.slip.via == 101


# -- 8. rounded answers ----------------------------------------------------------------------

NEURON_TEXT = open(NEURON).read()
NEURON_POINT = dict(w0=2, x0=-1, w1=-3, x1=-2, w2=-3)


def test_course_answers_right_to_two_decimals():
    r = run(NEURON, "--at", NEURON_AT, "--expect", "w0=-0.20,x0=0.39,w1=-0.39,x1=-0.59,w2=0.20")
    assert r.exit_code == 0, r.stdout
    assert "right to 2 decimals" in r.stdout and "wrong" not in r.stdout


def test_rtol_turns_rounding_off_and_wrong_digits_stay_wrong():
    assert run(NEURON, "--at", NEURON_AT, "--expect", "x0=0.39", "--rtol", "1e-6").exit_code == 1
    assert run(NEURON, "--at", NEURON_AT, "--expect", "x0=0.38").exit_code == 1
    assert run(NEURON, "--at", NEURON_AT, "--expect", "x0=0.4").exit_code == 0  # 0.393 → 0.4
    assert run(NEURON, "--at", NEURON_AT, "--expect", "x0=0").exit_code == 1  # no decimals


def test_rounded_tensor_answers():
    # softmax([1, 2]) = [0.2689, 0.7311]: each element to the decimals it is written with.
    assert run("sum(v * softmax(s))", "--at", "v=[1,0]", "--at", "s=[1,2]",
               "--expect-node", "#2=[0.27, 0.731]").exit_code == 0
    assert run("sum(v * softmax(s))", "--at", "v=[1,0]", "--at", "s=[1,2]",
               "--expect-node", "#2=[0.27, 0.74]").exit_code == 1
    # a wrong tensor value is graded (every gate's value is tried for a slip, none crashes)
    assert run("sum(v * softmax(s))", "--at", "v=[1,0]", "--at", "s=[1,2]",
               "--expect-node", "#3=[0.27, 0.731]").exit_code == 1


# -- 9. words ---------------------------------------------------------------------------------

def test_headline_splits_grading_from_gradclis_own_check():
    r = run("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--expect", "x=4,y=-4,z=3")
    assert r.exit_code == 1
    assert "check failed: 1 of 3 answers wrong" in r.stdout
    assert "check failed: the gradient agrees" not in r.stdout
    assert "gradcli's own check: its gradient agrees" in r.stdout


def test_slip_messages_use_the_outputs_name():
    r = run("q = x + y; L = q * z", "--at", "x=-2,y=5,z=-4", "--expect", "z=-3")
    assert "∂L/∂" in r.stdout and "∂f/∂" not in r.stdout


def test_matmul_rule_column_uses_operand_names():
    from gradcli.parse import parse
    from gradcli.render.table import operand_rule

    tape, _ = parse("D = W @ X; L = sum(D)")
    assert operand_rule(tape, 2) == "∂/∂W = G·Xᵀ, ∂/∂X = Wᵀ·G"


# -- 10. --exact ------------------------------------------------------------------------------

def test_exact_answers_compared_and_shown_as_fractions():
    code, doc = nodes("x/(x+y)", "--at", "x=1,y=2", "--exact", "--expect", "x=2/9,y=-1/9")
    assert code == 0
    assert [n["answer_exact"] for n in doc["nodes"]] == ["2/9", "-1/9"]
    r = run("x/(x+y)", "--at", "x=1,y=2", "--exact", "--expect", "x=2/9")
    assert "2/9" in r.stdout
    code, doc = nodes("x/(x+y)", "--at", "x=1,y=2", "--exact", "--expect", "x=2/10")
    assert code == 1 and doc["nodes"][0]["correct_exact"] == "2/9"


# -- issue 11, 4. formula answers ------------------------------------------------------------

def test_formula_answer_missing_product_rule_term():
    r = run("x^2*sin(x)", "--at", "x=1", "--expect", "x=2*x*sin(x)")
    assert r.exit_code == 1
    assert "missing term" in r.stdout and "differs" in r.stdout
    assert "yours 1.68294, correct 2.22324" in r.stdout  # 2 sin 1; 2 sin 1 + cos 1


def test_formula_answer_written_differently_passes():
    r = run("x^2*sin(x)", "--at", "x=1", "--expect", "x=x*(2*sin(x)+x*cos(x))", "--seed", "5")
    assert r.exit_code == 0 and "equal at all 21 points" in r.stdout
    code, doc = nodes("x^2*sin(x)", "--at", "x=1", "--expect", "x=2*x*sin(x)+x^2*cos(x)")
    v = doc["variables"][0]
    assert code == 0 and v["expected_ok"] and v["points_checked"] == 21
    assert v["expected_formula"] == "2*x*sin(x)+x^2*cos(x)" and v["differs_at"] is None


def test_formula_answer_seed_repeats_the_draw():
    a = nodes("x^2*sin(x)", "--at", "x=1", "--expect", "x=2*x*sin(x)", "--seed", "7")[1]
    b = nodes("x^2*sin(x)", "--at", "x=1", "--expect", "x=2*x*sin(x)", "--seed", "7")[1]
    assert a["variables"][0]["differs_at"] == b["variables"][0]["differs_at"]
    assert a["variables"][0]["seed"] == 7


@pytest.mark.parametrize("formula, answer, kind", [
    ("sin(x^2)", "cos(x^2)", "missing_local"),      # chain factor 2x missing
    ("sin(x^2)", "-2*x*cos(x^2)", "sign_flipped"),
    ("x^2*sin(x)", "x^2*cos(x)", "fanout_not_summed"),
])
def test_formula_slips_named(formula, answer, kind):
    code, doc = nodes(formula, "--at", "x=1", "--expect", f"x={answer}", "--seed", "3")
    assert code == 1 and doc["nodes"][0]["slip"]["kind"] == kind


def test_formula_answer_with_a_pole_skips_points():
    # 1/x near 0.3: drawn points at x ≤ 0 make log(x) not finite; they are skipped and counted.
    code, doc = nodes("log(x)", "--at", "x=0.3", "--expect", "x=1/x", "--seed", "1")
    v = doc["variables"][0]
    assert code == 0 and v["points_skipped"] > 0 and v["points_checked"] == 21


def test_formula_answer_exact():
    code, doc = nodes("x/(x+y)", "--at", "x=1,y=2", "--exact", "--expect", "x=y/(x+y)^2")
    assert code == 0 and doc["variables"][0]["points_checked"] == 21


def test_formula_answer_in_an_answers_file(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x grad 2*x*sin(x) + x^2*cos(x)\n")
    assert run("x^2*sin(x)", "--at", "x=1", "--answers", str(f)).exit_code == 0


def test_formula_answer_with_unknown_variable_is_exit_2():
    r = run("x^2", "--at", "x=1", "--expect", "x=2*y")
    assert r.exit_code == 2 and "y is not one of them" in r.stderr


# -- issue 11, 5. several outputs and tensor shapes ------------------------------------------

def test_several_outputs_by_name_and_as_a_column():
    code, doc = nodes("2*x + y, y - x", "--at", "x=1,y=2", "--expect", "f1.x=2,f2.y=1,f2.x=-1")
    assert code == 0 and {n["output"] for n in doc["nodes"]} == {"f1", "f2"}
    assert run("2*x + y, y - x", "--at", "x=1,y=2", "--expect", "x=[2,-1],y=[1,1]").exit_code == 0
    code, doc = nodes("2*x + y, y - x", "--at", "x=1,y=2", "--expect", "f2.x=1")
    assert code == 1 and doc["nodes"][0]["slip"]["kind"] == "sign_flipped"
    r = run("2*x + y, y - x", "--at", "x=1,y=2", "--expect", "f3.x=1")
    assert r.exit_code == 2 and "not an output" in r.stderr


def test_transposed_answer_is_recognised():
    # ∂sum(W@x)/∂W = 1·xᵀ broadcast: [[1,2,3],[1,2,3]]; its transpose is 3×2.
    r = run("L = sum(W @ x)", "--at", "W=[[1,2,3],[4,5,6]]", "--at", "x=[1,2,3]",
            "--expect", "W=[[1,1],[2,2],[3,3]]")
    assert r.exit_code == 1
    assert "your answer is 3×2; ∂L/∂W has W's shape 2×3, and your answer is its transpose" \
        in r.stdout.replace("\n", " ").replace("  ", " ")
    code, doc = nodes("L = sum(W @ x)", "--at", "W=[[1,2,3],[4,5,6]]", "--at", "x=[1,2,3]",
                      "--expect", "W=[1,2,3]")
    assert doc["nodes"][0]["slip"]["kind"] == "wrong_shape"
