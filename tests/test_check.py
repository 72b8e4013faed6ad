"""`gradcli check`: backprop against central differences, kinks, and grading hand answers.

* the course's examples graded right and wrong, through the CLI (exit 0 / 1, stdout and stderr
  apart), with every kind of slip produced by a deliberately wrong answer and named;
* `--answers` round-trips `gradcli eval --json`, and reads the mapping and text formats;
* the check itself: every op of the rule table passes at safe points (tensor ops with small random
  tensors), a deliberately wrong rule (monkeypatched into the table) fails and is pointed at, and
  kinks are reported as kinks with exit 0;
* the published JSON Schema, validated against real output.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from cli_runner import runner

from gradcli import ops, parse
from gradcli.check import Tolerance, check
from gradcli.cli import app
from gradcli.errors import InputError
from gradcli.render.checkwords import variable_note
from gradcli.render.jsonout import check_json as check_json_of

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NEURON = str(SAMPLES / "neuron.grad")
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"
STAGED = "q = x + y; f = q * z"
COURSE_AT = "x=-2,y=5,z=-4"



# -- helpers ----------------------------------------------------------------------------------

def run(*args: str, input: str | None = None):
    """`gradcli check ...` in-process; the result has .exit_code, .stdout and .stderr apart."""
    return runner.invoke(app, ["check", *args], input=input)


def _reject_constant(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


def check_json(*args: str, code: int | None = None, input: str | None = None) -> dict:
    r = run(*args, "--json", input=input)
    assert r.exit_code in (0, 1), (r.exit_code, r.stdout, r.stderr, r.exception)
    if code is not None:
        assert r.exit_code == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout, parse_constant=_reject_constant)
    assert r.exit_code == (0 if doc["ok"] else 1)
    return doc


def graded(doc: dict, kind: str, name: str) -> dict:
    """The graded answer for one node (by name, expr or #id)."""
    for entry in doc["nodes"]:
        if entry["kind"] == kind and name in (entry["name"], entry["expr"], f"#{entry['id']}"):
            return entry
    raise AssertionError(f"no graded {kind} for {name}: {doc['nodes']}")


def slip_of(*args: str, kind: str = "grad", node: str) -> dict:
    doc = check_json(*args, code=1)
    entry = graded(doc, kind, node)
    assert entry["ok"] is False
    assert "slip" in entry, entry
    return entry["slip"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    path = resources.files("gradcli") / "schemas" / "check.schema.json"
    assert path.is_file(), "the schema ships inside the package"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    return jsonschema.Draft202012Validator(schema)


# -- the course's examples --------------------------------------------------------------------

def test_right_hand_gradient_exits_0():
    r = run("(x+y)*z", "--at", COURSE_AT, "--expect", "x=-4,y=-4,z=3")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "check passed" in r.stdout
    assert "all 3 answers right" in r.stdout
    assert "wrong" not in r.stdout
    assert r.stderr == ""


def test_flipped_sign_exits_1_and_says_so_on_x():
    r = run("(x+y)*z", "--at", COURSE_AT, "--expect", "x=4,y=-4,z=3")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert "check failed" in r.stdout
    line = next(ln for ln in r.stdout.splitlines()
                if ln.lstrip().startswith("0 ") and "∂f/∂x" in ln)
    assert "wrong" in line and "sign flipped" in line
    assert "first wrong: ∂f/∂x (node #0) is -4, not 4" in r.stdout
    doc = check_json("(x+y)*z", "--at", COURSE_AT, "--expect", "x=4,y=-4,z=3", code=1)
    x = doc["variables"][0]
    assert x["name"] == "x" and x["ok"] is True  # the analytic gradient itself is right
    assert x["expected"] == 4.0 and x["expected_ok"] is False
    assert x["slip"]["kind"] == "sign_flipped"
    assert [v["expected_ok"] for v in doc["variables"][1:]] == [True, True]
    assert doc["first_wrong"] == {"id": 0, "kind": "grad", "label": "x"}


def test_check_alone_reports_agreement_per_variable():
    doc = check_json("(x+y)*z", "--at", COURSE_AT, code=0)
    assert [v["name"] for v in doc["variables"]] == ["x", "y", "z"]
    for v, want in zip(doc["variables"], [-4.0, -4.0, 3.0]):
        assert v["analytic"] == want
        assert v["numeric"] == pytest.approx(want, rel=1e-8)
        assert v["rel_error"] < 1e-8 and v["status"] == "ok" and v["ok"] is True
    assert "nodes" not in doc and "first_wrong" not in doc
    assert doc["kinks"] == [] and doc["warnings"] == []


def test_neuron_graded_with_rounded_answers():
    grads = "w0=-0.20,x0=0.39,w1=-0.39,x1=-0.59,w2=0.20"
    r = run(NEURON, "--at", NEURON_AT, "--expect", grads, "--expect-node", "f=0.73",
            "--places", "2")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    # With --rtol given the rounded answers are wrong, and each says it would pass rounded
    # (without it they are right to 2 decimals: tests/test_grading.py).
    doc = check_json(NEURON, "--at", NEURON_AT, "--expect", grads, "--rtol", "1e-6", code=1)
    for entry in doc["nodes"]:
        assert entry["slip"]["kind"] == "rounded"
        assert "--places 2" in entry["slip"]["message"]


def test_values_like_one_third_and_pi_are_accepted():
    assert run("x/3", "--at", "x=1", "--expect", "x=1/3").exit_code == 0
    assert run("pi*x", "--at", "x=2", "--expect", "x=pi", "--expect-node", "f=2*pi").exit_code == 0
    assert run("x*y", "--at", "x=-1/4,y=2", "--expect", "x=2,y=-1/4").exit_code == 0
    assert run("w*x", "--at", "w=[1,2],x=3", "--expect", "w=[3, 3],x=3").exit_code == 0


def test_places_compares_after_rounding():
    # sigmoid(0.5) = 0.622459...; 0.62 is right to 2 places, 0.63 is not, 0.6225 to 4.
    assert run("sigmoid(x)", "--at", "x=0.5", "--expect-node", "f=0.62",
               "--places", "2").exit_code == 0
    assert run("sigmoid(x)", "--at", "x=0.5", "--expect-node", "f=0.63",
               "--places", "2").exit_code == 1
    assert run("sigmoid(x)", "--at", "x=0.5", "--expect-node", "f=0.6225",
               "--places", "4").exit_code == 0
    assert run("sigmoid(x)", "--at", "x=0.5", "--expect-node", "f=0.6225",
               "--rtol", "1e-3").exit_code == 0


# -- each slip, produced by a deliberately wrong answer ----------------------------------------

def test_slip_sign_flipped_on_an_intermediate():
    slip = slip_of(STAGED, "--at", COURSE_AT, "--expect-node", "grad q=4", node="q")
    assert slip["kind"] == "sign_flipped"


def test_slip_local_derivative_without_upstream():
    # The neuron: ∂f/∂(-dot) = upstream -0.534 × exp(-dot) = 0.368; the local 0.37 alone is a slip.
    slip = slip_of(NEURON, "--at", NEURON_AT, "--expect-node", "grad #11=0.37", "--places", "2",
                   node="#11")
    assert slip["kind"] == "missing_upstream"
    assert slip["via"] == 12
    assert "upstream" in slip["message"] and "0.367879" in slip["message"]


def test_slip_upstream_without_local_derivative():
    slip = slip_of(NEURON, "--at", NEURON_AT, "--expect-node", "grad #11=-0.53", "--places", "2",
                   node="#11")
    assert slip["kind"] == "missing_local"
    assert "-0.534447" in slip["message"]


@pytest.mark.parametrize("answer, only_from", [("4", "x*y"), ("1", "x*y + x")])
def test_slip_fan_out_not_summed(answer, only_from):
    # x*y + x at x=3, y=4: x gets 4 from the product and 1 from the sum; ∂f/∂x = 5.
    slip = slip_of("x*y + x", "--at", "x=3,y=4", "--expect", f"x={answer}", node="x")
    assert slip["kind"] == "fanout_not_summed"
    assert slip["message"].endswith(f"the one from `{only_from}`")


def test_slip_fan_out_of_a_square():
    slip = slip_of("x*x", "--at", "x=3", "--expect", "x=3", node="x")
    assert slip["kind"] == "fanout_not_summed"


def test_slip_add_rule_on_a_mul_gate():
    slip = slip_of(STAGED, "--at", COURSE_AT, "--expect-node", "grad q=1", node="q")
    assert slip["kind"] == "wrong_gate"
    assert slip["message"].startswith("add's rule on a mul gate")


def test_slip_mul_rule_on_an_add_gate():
    # ∂f/∂x = ∂f/∂q · 1 = -4; mul's rule would give ∂f/∂q · y = -20.
    slip = slip_of(STAGED, "--at", COURSE_AT, "--expect", "x=-20", node="x")
    assert slip["kind"] == "wrong_gate"
    assert slip["message"].startswith("mul's rule on an add gate")


def test_slip_max_routes_to_the_wrong_input():
    doc = check_json("m = max(x, y); f = m * z", "--at", "x=2,y=1,z=3", "--expect", "x=0,y=3",
                     code=1)
    for name in ("x", "y"):
        slip = graded(doc, "grad", name)["slip"]
        assert slip["kind"] == "wrong_gate"
        assert "max routed the gradient to the wrong input" in slip["message"]


def test_slip_mul_gate_not_swapped():
    # ∂f/∂z = q = 3; answering with z's own value, -4, is the local derivative of the other input.
    slip = slip_of("(x+y)*z", "--at", COURSE_AT, "--expect", "z=-4", node="z")
    assert slip["kind"] == "other_input"
    assert "swaps its inputs" in slip["message"]


def test_slip_upstream_and_local_swapped_in_a_matrix_product():
    # D = W @ X with upstream G: dW = G·Xᵀ; writing Xᵀ·G swaps upstream and local.
    W, X, G = (np.array(m) for m in ([[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0], [2.0, 1.0]],
                                     [[1.0, -2.0], [0.5, 3.0]]))
    at = [f"{n}={json.dumps(m.tolist())}" for n, m in (("W", W), ("X", X), ("G", G))]
    args = ["D = W @ X; f = sum(D * G)", *sum((["--at", a] for a in at), [])]
    right = check_json(*args, "--expect", f"W={json.dumps((G @ X.T).tolist())}", code=0)
    assert right["variables"][0]["expected_ok"] is True
    slip = slip_of(*args, "--expect", f"W={json.dumps((X.T @ G).tolist())}", node="W")
    assert slip["kind"] == "swapped"
    assert "upstream and local swapped" in slip["message"]


def test_slip_propagated_and_the_first_wrong_is_closest_to_the_output():
    # q's gradient has the wrong sign; x's and y's follow from it by a correct add step.
    doc = check_json(STAGED, "--at", COURSE_AT, "--expect-node", "grad q=4",
                     "--expect", "x=4,y=4,z=3", code=1)
    assert graded(doc, "grad", "q")["slip"]["kind"] == "sign_flipped"
    for name in ("x", "y"):
        slip = graded(doc, "grad", name)["slip"]
        assert slip["kind"] == "propagated" and slip["via"] == 2
    assert graded(doc, "grad", "z")["ok"] is True
    assert doc["first_wrong"] == {"id": 2, "kind": "grad", "label": "q"}
    r = run(STAGED, "--at", COURSE_AT, "--expect-node", "grad q=4", "--expect", "x=4,y=4,z=3")
    assert "first wrong: ∂f/∂q (node #2) is -4, not 4" in r.stdout


def test_value_slips_and_the_first_wrong_value():
    doc = check_json(STAGED, "--at", COURSE_AT, "--expect-node", "q=7,f=-28", code=1)
    q = graded(doc, "value", "q")
    assert q["correct"] == 3.0 and q["slip"]["kind"] == "wrong_gate"
    assert "difference" in q["slip"]["message"]
    f = graded(doc, "value", "f")
    assert f["slip"]["kind"] == "propagated" and f["slip"]["via"] == 2
    assert doc["first_wrong"] == {"id": 2, "kind": "value", "label": "q"}
    slip = slip_of(STAGED, "--at", COURSE_AT, "--expect-node", "value q=-3", kind="value",
                   node="q")
    assert slip["kind"] == "sign_flipped"


def test_a_wrong_answer_with_no_known_slip_is_still_wrong():
    doc = check_json("(x+y)*z", "--at", COURSE_AT, "--expect", "x=17", code=1)
    entry = graded(doc, "grad", "x")
    assert entry["correct"] == -4.0 and "slip" not in entry


def test_slip_messages_call_the_output_by_its_own_name():
    # The output is L: the upstream gradient is ∂L/∂q, as in the answers table (not ∂f/∂q).
    formula = "q = x * y; L = q * z"
    slip = slip_of(formula, "--at", COURSE_AT, "--expect", "x=5", node="x")
    assert slip["kind"] == "missing_upstream"
    assert "∂L/∂q = -4" in slip["message"] and "∂f/" not in slip["message"]
    r = run(formula, "--at", COURSE_AT, "--expect", "x=5")
    assert "#0 ∂L/∂x: local derivative without the upstream gradient" in r.stdout
    assert "the upstream gradient ∂L/∂q = -4" in r.stdout
    # An unnamed output is f, unless the formula uses f itself (render.names' one policy).
    r = run("f*2+1", "--at", "f=3", "--expect", "f=-2")
    assert "first wrong: ∂F/∂f (node #0) is 2, not -2" in r.stdout


def test_slips_are_data_and_worded_in_render():
    from gradcli.render.checkwords import slip_message

    report = check("q = x * y; L = q * z", at={"x": -2, "y": 5, "z": -4}, expect={"x": 5})
    slip = report.first_wrong.slip
    assert (slip.kind, slip.node, slip.via) == ("missing_upstream", 0, 2)
    assert slip.numbers == {"local": 5.0, "upstream": -4.0}
    assert slip_message(slip, report.tape).endswith("∂L/∂q = -4")
    assert slip_message(slip, report.tape, "E").endswith("∂E/∂q = -4")


def test_check_session_parses_nothing_again(monkeypatch):
    from gradcli import parse as parse_module
    from gradcli.check import check_session
    from gradcli.session import load

    s = load("(x+y)*z", ["x=-2,y=5,z=-4"])
    calls = []
    real = parse_module.parse
    monkeypatch.setattr(parse_module, "parse", lambda *a, **k: calls.append(a) or real(*a, **k))
    report = check_session(s, expect=["x=-4,y=-4,z=3"])
    assert report.ok and calls == []


# -- --answers ----------------------------------------------------------------------------------

def _eval_export(formula: str, at: str) -> dict:
    r = runner.invoke(app, ["eval", formula, "--at", at, "--json"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


@pytest.mark.parametrize("formula, at", [
    (STAGED, COURSE_AT),
    ((SAMPLES / "neuron.grad").read_text(encoding="utf-8"), NEURON_AT),
    ("x*y + x", "x=3,y=4"),
])
def test_answers_round_trip_an_eval_json_export(tmp_path, formula, at):
    table = tmp_path / "table.json"
    table.write_text(json.dumps(_eval_export(formula, at)), encoding="utf-8")
    # The point comes from the export's `at`; every value and gradient is right.
    doc = check_json(formula, "--answers", str(table), code=0)
    assert doc["first_wrong"] is None
    assert doc["nodes"] and all(e["ok"] for e in doc["nodes"])
    assert {e["kind"] for e in doc["nodes"]} == {"value", "grad"}


def test_answers_with_one_node_edited_point_at_it(tmp_path):
    export = _eval_export(STAGED, COURSE_AT)
    q = next(n for n in export["nodes"] if n["name"] == "q")
    q["grad"] = 4.0  # the sign slip
    table = tmp_path / "table.json"
    table.write_text(json.dumps(export), encoding="utf-8")
    r = run(STAGED, "--at", COURSE_AT, "--answers", str(table))
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert "first wrong: ∂f/∂q (node #2) is -4, not 4" in r.stdout
    doc = check_json(STAGED, "--answers", str(table), code=1)
    wrong = [e for e in doc["nodes"] if not e["ok"]]
    assert [(e["id"], e["kind"]) for e in wrong] == [(2, "grad")]
    assert wrong[0]["slip"]["kind"] == "sign_flipped"
    assert doc["first_wrong"]["id"] == 2


def test_answers_from_another_formula_are_refused(tmp_path):
    table = tmp_path / "table.json"
    table.write_text(json.dumps(_eval_export("(x+y)*z", COURSE_AT)), encoding="utf-8")
    r = run("(x-y)*z", "--at", COURSE_AT, "--answers", str(table))
    assert r.exit_code == 2
    assert "exported for another formula" in r.stderr and "Traceback" not in r.stderr


def test_answers_mapping_format(tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"value": {"q": 3, "f": "-12"},
                                "grad": {"q": -4, "x": -4, "#1": -4, "z": 3}}), encoding="utf-8")
    doc = check_json(STAGED, "--at", COURSE_AT, "--answers", str(path), code=0)
    assert len(doc["nodes"]) == 6
    path.write_text(json.dumps({"grad": {"z": -4}}), encoding="utf-8")
    assert slip_of(STAGED, "--at", COURSE_AT, "--answers", str(path), node="z")["kind"] == \
        "other_input"


def test_answers_text_format(tmp_path):
    path = tmp_path / "answers.txt"
    path.write_text("# my worked table\n"
                    "q value 3\n"
                    "f value = -12    # the output\n"
                    "\n"
                    "q grad -4\n"
                    "x grad: -4\n"
                    "y grad -4\n"
                    "#3 grad 3\n", encoding="utf-8")
    doc = check_json(STAGED, "--at", COURSE_AT, "--answers", str(path), code=0)
    assert [(e["id"], e["kind"]) for e in doc["nodes"]] == [
        (0, "grad"), (1, "grad"), (2, "value"), (2, "grad"), (3, "grad"), (4, "value")]
    assert graded(doc, "grad", "z")["source"].endswith("answers.txt:8")
    # from standard input
    r = run(STAGED, "--at", COURSE_AT, "--answers", "-", input="q grad 1\n")
    assert r.exit_code == 1 and "add's rule on a mul gate" in r.stdout


@pytest.mark.parametrize("content, message", [
    ("q value\n", "answers.txt:1: expected `NODE value NUMBER`"),
    ("q colour 3\n", "answers.txt:1: expected `NODE value NUMBER`"),
    ("w grad 3\n", "answers.txt:1: the formula has no node 'w'"),
    ("x grad four\n", "answers.txt:1: 'four' is not a number"),
    ("# nothing\n", "no answers in it"),
])
def test_answers_text_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "answers.txt"
    path.write_text(content, encoding="utf-8")
    r = run(STAGED, "--at", COURSE_AT, "--answers", str(path))
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--expect", "w=1"], "the formula has no node 'w'"),
    (["--expect", "x"], "missing '='"),
    (["--expect", "x=abc"], "'abc' is not a number"),
    (["--expect-node", "grad #9=1"], "there is no node #9"),
    (["--expect-node", "colour q=1"], "'grad q=-4' for a gradient"),
    (["--answers", "no-such-file.json"], "no such file"),
    (["--rtol", "-1"], "--rtol"),
    (["--expect", "#5=1"], "there is no node #5"),
])
def test_bad_answers_exit_2(args, message):
    r = run(STAGED, "--at", COURSE_AT, *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_constant_has_no_gradient_to_grade():
    r = run("2*x", "--at", "x=1", "--expect-node", "grad #0=1")
    assert r.exit_code == 2 and "is a constant" in r.stderr


def test_grading_several_outputs_needs_a_jacobian_column():
    # Issue 11 item 5 graded several outputs: a plain x=2 is not ∂(f1, f2)/∂x, one per output.
    r = run("2*x+y, y-x", "--at", "x=1,y=2", "--expect", "x=2")
    assert r.exit_code == 1 and "one entry per output" in r.stdout


# -- the check itself: every rule, a wrong rule, kinks -----------------------------------------

def _scalar_cases(rng: np.random.Generator) -> dict[str, list[tuple[str, dict]]]:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    away = lambda lo, hi: float(rng.choice([-1.0, 1.0]) * rng.uniform(lo, hi))  # noqa: E731
    base = u(-3, 3)
    a3 = [base, base + u(0.3, 1), base + u(1.5, 2)]
    rng.shuffle(a3)
    return {
        "id": [("q = a; f = q * b", {"a": u(-3, 3), "b": u(-3, 3)})],
        "add": [("a + b", {"a": u(-5, 5), "b": u(-5, 5)})],
        "sub": [("a - b", {"a": u(-5, 5), "b": u(-5, 5)})],
        "mul": [("a * b", {"a": u(-5, 5), "b": u(-5, 5)})],
        "div": [("a / b", {"a": u(-5, 5), "b": away(0.5, 5)})],
        "neg": [("-a * b", {"a": u(-5, 5), "b": u(-5, 5)})],
        "pow": [("a ^ b", {"a": u(0.2, 4), "b": u(-3, 3)})],
        "exp": [("exp(a)", {"a": u(-5, 5)})],
        "log": [("log(a)", {"a": u(0.1, 10)})],
        "log2": [("log2(a)", {"a": u(0.1, 10)})],
        "log10": [("log10(a)", {"a": u(0.1, 10)})],
        "sqrt": [("sqrt(a)", {"a": u(0.1, 10)})],
        "sin": [("sin(a)", {"a": u(-6, 6)})],
        "cos": [("cos(a)", {"a": u(-6, 6)})],
        "tan": [("tan(a)", {"a": u(-1.4, 1.4)})],
        "asin": [("asin(a)", {"a": u(-0.9, 0.9)})],
        "acos": [("acos(a)", {"a": u(-0.9, 0.9)})],
        "atan": [("atan(a)", {"a": u(-4, 4)})],
        "sinh": [("sinh(a)", {"a": u(-3, 3)})],
        "cosh": [("cosh(a)", {"a": u(-3, 3)})],
        "tanh": [("tanh(a)", {"a": u(-3, 3)})],
        "sigmoid": [("sigmoid(a)", {"a": u(-6, 6)})],
        "relu": [("relu(a)", {"a": away(0.1, 5)})],
        "softplus": [("softplus(a)", {"a": u(-6, 6)})],
        "abs": [("abs(a)", {"a": away(0.1, 5)})],
        "sign": [("sign(a) * b", {"a": away(0.1, 5), "b": u(-3, 3)})],
        "max": [("max(a, b, c)", dict(zip("abc", a3)))],
        "min": [("min(a, b, c)", dict(zip("abc", a3)))],
        "atan2": [("atan2(a, b)", {"a": away(0.2, 4), "b": u(-4, 4)})],
        # issue 12: comparisons (slope 0 away from a tie), where, real roots
        **{op: [(f"(a {sym} b) * c + a", {"a": base, "b": base + away(0.3, 2), "c": u(-3, 3)})]
           for op, sym in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="),
                           ("ne", "!="))},
        "where": [("where(a > 0, b * c, c^2)", {"a": away(0.2, 3), "b": u(-3, 3),
                                                "c": u(-3, 3)})],
        "cbrt": [("cbrt(a)", {"a": away(0.2, 8)})],
        "root": [("root(a, b)", {"a": u(0.2, 8), "b": u(1.5, 4)}),
                 ("root(a, 5)", {"a": away(0.2, 8)})],
    }


def _tensor_cases(rng: np.random.Generator) -> dict[str, list[tuple[str, dict]]]:
    n = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    distinct = rng.permutation(6).reshape(2, 3) + rng.uniform(0, 0.5, (2, 3))
    return {
        "matmul": [("sum(G * (A @ B))", {"A": n(2, 3), "B": n(3, 2), "G": n(2, 2)}),
                   ("sum(g * (A @ v))", {"A": n(2, 3), "v": n(3), "g": n(2)}),
                   ("u @ v", {"u": n(3), "v": n(3)})],
        "dot": [("dot(u, v)", {"u": n(3), "v": n(3)}),
                ("sum(G * dot(A, B))", {"A": n(2, 2), "B": n(2, 2), "G": n(2, 2)})],
        "transpose": [("sum(G * transpose(A))", {"A": n(2, 3), "G": n(3, 2)}),
                      ("sum(G * A.T)", {"A": n(3, 2), "G": n(2, 3)})],
        "sum": [("sum(A) * b", {"A": n(2, 3), "b": n()}),
                ("sum(g * sum(A, 0))", {"A": n(2, 3), "g": n(3)})],
        "mean": [("mean(A) * b", {"A": n(2, 3), "b": n()}),
                 ("sum(g * mean(A, 1))", {"A": n(2, 3), "g": n(2)})],
        "softmax": [("sum(g * softmax(v))", {"v": n(4), "g": n(4)}),
                    ("sum(G * softmax(A, 0))", {"A": n(3, 2), "G": n(3, 2)})],
        "logsumexp": [("logsumexp(A)", {"A": n(2, 3)}),
                      ("sum(g * logsumexp(A, 1))", {"A": n(2, 3), "g": n(2)})],
        "norm": [("norm(A)", {"A": n(2, 3)})],
        "index": [("sum(g * A[:, 1]) + A[0, 2] * b", {"A": n(2, 3), "g": n(2), "b": n()}),
                  ("-v[y] + logsumexp(v)", {"v": n(4), "y": 2.0})],
        "stack": [("sum(g * [a, b * c, c])", {"a": n(), "b": n(), "c": n(), "g": n(3)})],
        # elementwise ops on tensors, broadcasting a scalar and a row
        "elementwise": [("sum(G * sin(A) * b)", {"A": n(2, 3), "G": n(2, 3), "b": n()}),
                        ("sum(exp(A) / (1 + r^2))", {"A": n(2, 3), "r": n(3)}),
                        ("sum(max(A, r))", {"A": n(2, 3), "r": distinct[0] + 10}),
                        ("max(M) + min(M)", {"M": distinct})],
    }


def _assert_check_passes(formula: str, at: dict) -> None:
    report = check(formula, at=at)
    bad = [(v.name, v.status, v.rel_error, variable_note(v, report.tape))
           for v in report.variables if v.status != "ok"]
    assert not bad, f"{formula} at {at}: {bad}"
    assert report.ok and not report.suspects


@pytest.mark.parametrize("op", sorted(set(ops.OPS) - {"const", "var"}))
def test_every_op_of_the_rule_table_passes_the_check(op):
    rng = np.random.default_rng(zlib.crc32(op.encode()))
    for _ in range(3):
        cases = {**_scalar_cases(rng), **_tensor_cases(rng)}
        assert op in cases, f"no check case for op {op!r}: add one to tests/test_check.py"
        for formula, at in cases[op]:
            tape, _ = parse.parse(formula)
            assert op in {o.name for o in tape.ops}, (op, formula)
            _assert_check_passes(formula, at)


def test_elementwise_ops_on_tensors_pass_the_check():
    rng = np.random.default_rng(7)
    for formula, at in _tensor_cases(rng)["elementwise"]:
        _assert_check_passes(formula, at)


def test_the_tensor_sample_passes_the_check():
    r = run(str(SAMPLES / "matmul.grad"), "--seed", "0", "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    W = next(v for v in doc["variables"] if v["name"] == "W")
    assert np.shape(W["analytic"]) == (5, 10) and np.shape(W["numeric"]) == (5, 10)
    assert isinstance(W["rel_error"], float) and W["rel_error"] < 1e-6


@pytest.fixture
def wrong_sin(monkeypatch):
    """sin's rule with the sign of its derivative flipped: ∂/∂a = -cos(a)."""
    bad = dataclasses.replace(ops.OPS["sin"], partials=lambda y, a: (-np.cos(a),))
    monkeypatch.setitem(ops.OPS, "sin", bad)
    monkeypatch.setitem(parse._OP, "sin", bad)  # the parser's own copy of the table
    return bad


def test_a_wrong_rule_fails_the_check_and_is_pointed_at(wrong_sin):
    r = run("sin(x) * y", "--at", "x=0.5,y=2")
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert "DISAGREES" in r.stdout and "check failed" in r.stdout
    assert "suspect: node #1 `sin(x)`: sin's rule gives ∂/∂x = -0.877583" in r.stdout
    doc = check_json("sin(x) * y", "--at", "x=0.5,y=2", code=1)
    x, y = doc["variables"]
    assert x["status"] == "mismatch" and x["ok"] is False
    assert x["analytic"] == pytest.approx(-2 * np.cos(0.5))
    assert x["numeric"] == pytest.approx(2 * np.cos(0.5), rel=1e-8)
    assert y["status"] == "ok"
    assert [(s["id"], s["op"], s["input"]) for s in doc["suspects"]] == [(1, "sin", 0)]


def test_a_wrong_tensor_rule_fails_the_check(monkeypatch):
    bad = dataclasses.replace(ops.OPS["matmul"], vjp=lambda g, y, a, b: (g @ b, a.T @ g))
    monkeypatch.setitem(ops.OPS, "matmul", bad)
    monkeypatch.setitem(parse._OP, "matmul", bad)
    rng = np.random.default_rng(1)
    report = check("sum(G * (A @ B))", at={"A": rng.standard_normal((2, 2)),
                                           "B": rng.standard_normal((2, 2)),
                                           "G": rng.standard_normal((2, 2))})
    assert not report.ok
    assert [v.status for v in report.variables] == ["ok", "mismatch", "ok"]  # G, A, B
    assert [s.node for s in report.suspects] == [3]


@pytest.mark.parametrize("formula, at", [
    ("relu(x)", "x=0"),
    ("max(x, y)", "x=1,y=1"),
    ("abs(x) + y", "x=0,y=2"),
    ("sign(x)", "x=0"),
    ("max(x, x)", "x=1"),
    ("relu(x)", "x=1e-9"),  # a kink inside the difference step, not at the point
])
def test_kinks_are_reported_as_kinks_with_exit_0(formula, at):
    r = run(formula, "--at", at)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "kink" in r.stdout and "check passed" in r.stdout
    doc = check_json(formula, "--at", at, code=0)
    assert "kink" in {v["status"] for v in doc["variables"]}
    assert all(v["ok"] for v in doc["variables"])


def test_kink_details():
    doc = check_json("max(x, y)", "--at", "x=1,y=1", code=0)
    x = doc["variables"][0]
    assert x["analytic"] == 1.0 and x["numeric"] == pytest.approx(0.5)
    assert x["status"] == "kink" and "kink" in x["note"]
    assert [(k["id"], k["op"]) for k in doc["kinks"]] == [(2, "max")]
    doc = check_json("relu(x) * y", "--at", "x=0,y=3", code=0)
    assert [v["status"] for v in doc["variables"]] == ["kink", "ok"]


def test_near_a_kink_or_a_domain_edge_the_step_shrinks():
    # relu's kink 3e-6 away, and log's pole 1e-7 away, are closer than the first step.
    for formula, at in [("relu(x)", {"x": 3e-6}), ("log(x)", {"x": 1e-7}),
                        ("sqrt(x)", {"x": 1e-9})]:
        _assert_check_passes(formula, at)


def test_a_point_outside_the_domain_is_undefined_and_fails():
    doc = check_json("log(x)", "--at", "x=0", code=1)
    assert doc["variables"][0]["status"] == "undefined"
    assert doc["variables"][0]["numeric"] == "NaN"
    assert doc["warnings"]


def test_tolerances_scale_with_the_function():
    # A tiny gradient, a huge one, and a large constant offset all pass at the default rtol.
    for formula, at in [("1e-12 * x", {"x": 1.0}), ("x^3", {"x": 1e8}), ("1e6 + x", {"x": 1.0}),
                        ("exp(200*x)", {"x": 0.01}), ("sin(1000*x)", {"x": 0.3})]:
        _assert_check_passes(formula, at)


def test_several_outputs_are_checked_per_output():
    doc = check_json("2*x+y, y-x", "--at", "x=1,y=2", code=0)
    x = doc["variables"][0]
    assert x["analytic"] == [2.0, -1.0]
    assert x["numeric"] == pytest.approx([2.0, -1.0])


def test_wrt_limits_the_variables_checked():
    doc = check_json("(x+y)*z", "--at", COURSE_AT, "--wrt", "z", code=0)
    assert [v["name"] for v in doc["variables"]] == ["z"]


def test_tolerance_rules():
    assert Tolerance(places=2).close(0.39, 0.393224)
    assert not Tolerance(places=2).close(0.40, 0.393224)
    assert Tolerance(places=0).close(-4, -4.4) and not Tolerance(places=0).close(-4, -4.6)
    assert Tolerance(rtol=1e-6).close(-4.000001, -4) and not Tolerance().close(-4.0001, -4)
    assert not Tolerance().close([1.0, 2.0], 1.0)  # shapes must match
    assert Tolerance().close(float("inf"), float("inf"))


def test_the_python_api():
    report = check("(x+y)*z", at={"x": -2, "y": 5, "z": -4}, expect={"x": 4})
    assert not report.ok
    assert report.first_wrong.slip.kind == "sign_flipped"
    assert json.loads(check_json_of(report))["ok"] is False
    with pytest.raises(InputError):
        check("(x+y)*z", at={"x": -2, "y": 5, "z": -4}, expect={"w": 1})


def test_the_python_api_reads_the_formulas_at_lines_as_the_cli_does():
    report = check("# at: x=-2, y=5\n(x+y)*z", at={"z": -4, "y": 1}, expect={"x": -4})
    assert report.ok
    assert {k: float(v) for k, v in report.result.at.items()} == {"x": -2, "y": 1, "z": -4}


# -- the JSON Schema ---------------------------------------------------------------------------

SCHEMA_CASES = [
    ["(x+y)*z", "--at", COURSE_AT],
    ["(x+y)*z", "--at", COURSE_AT, "--expect", "x=4,y=-4,z=3"],
    [STAGED, "--at", COURSE_AT, "--expect-node", "q=7,f=-28,grad q=4", "--places", "1"],
    [NEURON, "--at", NEURON_AT, "--expect", "x0=0.39", "--places", "2"],
    ["relu(x) + max(x, y)", "--at", "x=0,y=0"],
    ["log(x)", "--at", "x=0"],
    ["2*x+y, y-x", "--at", "x=1,y=2"],
    ["sum(W @ x)", "--at", "W=[[1,2],[3,4]]", "--at", "x=[1,-1]", "--expect", "x=[4,6]"],
    ["θ*η", "--at", "θ=2,η=3", "--expect", "θ=3"],
]


@pytest.mark.parametrize("args", SCHEMA_CASES, ids=range(len(SCHEMA_CASES)))
def test_real_output_validates_against_the_schema(validator, args):
    doc = check_json(*args)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_output_with_a_suspect_validates(validator, wrong_sin):
    doc = check_json("sin(x)", "--at", "x=1", code=1)
    assert doc["suspects"]
    assert validator.is_valid(doc)


def test_the_schema_rejects_what_it_should(validator):
    doc = check_json("(x+y)*z", "--at", COURSE_AT, "--expect", "x=4")
    assert validator.is_valid(doc)
    for broken in (
        {**doc, "extra": 1},
        {**doc, "ok": "yes"},
        {**doc, "variables": [{**doc["variables"][0], "status": "fine"}]},
        {**doc, "variables": [{**doc["variables"][0], "rel_error": "nan"}]},
        {**doc, "nodes": [{**doc["nodes"][0], "kind": "partial"}]},
        {k: v for k, v in doc.items() if k != "first_wrong"},
    ):
        assert not validator.is_valid(broken)
