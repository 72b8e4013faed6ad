"""`gradcli descend`: gradient descent against closed forms, divergence, Ctrl-C, JSON and schema.

On f(w) = (w - 3)², plain descent with rate η gives w_k - 3 = (1 - 2η)^k (w_0 - 3) exactly, so
the trajectory, the number of steps to a tolerance and the minimum are all known in advance.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from cli_runner import runner

from gradcli.cli import app
from gradcli.descend import Step, Trajectory, descend
from gradcli.errors import InputError
from gradcli.parse import parse
from gradcli.render.curve import BLOCKS, curve_rows, table_steps

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "descend_neuron.grad"


def _reject_constant(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    path = resources.files("gradcli") / "schemas" / "descend.schema.json"
    assert path.is_file(), "the schema ships inside the package"
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def assert_valid(validator, doc) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def run(*args: str, input: str | None = None):
    return runner.invoke(app, ["descend", *args], input=input)


def descend_json(*args: str, code: int = 0, input: str | None = None) -> tuple[dict, str]:
    r = run(*args, "--json", input=input)
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout, parse_constant=_reject_constant), r.stderr


# -- convex quadratics: known trajectories and minima ------------------------------------------

def test_quadratic_trajectory_is_the_closed_form(validator):
    doc, _ = descend_json("(w-3)^2", "--at", "w=0", "--lr", "0.1", "--steps", "50")
    assert_valid(validator, doc)
    assert [s["step"] for s in doc["steps"]] == list(range(51))
    for s in doc["steps"]:
        k = s["step"]
        assert s["params"]["w"] == pytest.approx(3 - 3 * 0.8**k, rel=1e-12, abs=1e-12)
        assert s["loss"] == pytest.approx(9 * 0.64**k, rel=1e-9, abs=1e-15)
        assert s["grad_norm"] == pytest.approx(6 * 0.8**k, rel=1e-9)
    assert doc["final"]["step"] == 50 and doc["stopped"] == "steps"
    assert doc["final"]["gradient"]["w"] == pytest.approx(-6 * 0.8**50, rel=1e-9)


@pytest.mark.parametrize("lr", [0.05, 0.1, 0.25, 0.4])
def test_converges_within_the_expected_number_of_steps(lr):
    # |∇f| = 2|w - 3| = 6|1 - 2η|^k falls to 1e-6 at the first k with 6|1 - 2η|^k <= 1e-6.
    tol = 1e-6
    expected = math.ceil(math.log(tol / 6) / math.log(abs(1 - 2 * lr)))
    doc, _ = descend_json("(w-3)^2", "--at", "w=0", "--lr", str(lr), "--steps", "1000",
                          "--tol", str(tol), "--every", "1000")
    assert doc["stopped"] == "converged"
    assert abs(doc["final"]["step"] - expected) <= 1  # floating point at the boundary
    assert doc["final"]["params"]["w"] == pytest.approx(3, abs=1e-6)
    assert [s["step"] for s in doc["steps"]] == [0, doc["final"]["step"]]


def test_the_done_when_example_reaches_the_minimum():
    doc, _ = descend_json("(w-3)^2 + (v+1)^2", "--at", "w=0,v=0", "--wrt", "w,v",
                          "--lr", "0.1", "--steps", "100")
    final = doc["final"]
    assert final["params"]["w"] == pytest.approx(3, abs=1e-8)
    assert final["params"]["v"] == pytest.approx(-1, abs=1e-8)
    assert final["loss"] == pytest.approx(10 * 0.64**100, rel=1e-6)
    assert doc["wrt"] == ["w", "v"] and doc["optimizer"] == "sgd" and doc["lr"] == 0.1


@pytest.mark.parametrize("formula, at", [
    ("(w-1)^2 + 3*(v-2)^2 + (w+v)^2", "w=5,v=-4"),
    ("softplus(w - v) + exp(v) + w^2/2", "w=2,v=1"),  # convex, not quadratic
    ("log(1 + exp(-(2*w + v))) + log(1 + exp(w - 3*v)) + 0.1*(w^2 + v^2)", "w=-2,v=2"),
])
def test_losses_never_increase_on_a_convex_problem(validator, formula, at):
    doc, _ = descend_json(formula, "--at", at, "--lr", "0.05", "--steps", "300")
    assert_valid(validator, doc)
    losses = [s["loss"] for s in doc["steps"]]
    assert len(losses) == 301
    # non-increasing, up to rounding once the minimum is reached
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("optimizer, lr, steps", [("momentum", 0.05, 300), ("adam", 0.1, 400)])
def test_momentum_and_adam_find_the_minimum(optimizer, lr, steps):
    doc, _ = descend_json("(w-3)^2 + 10*(v+1)^2", "--at", "w=0,v=0", "--optimizer", optimizer,
                          "--lr", str(lr), "--steps", str(steps))
    assert doc["optimizer"] == optimizer
    assert doc["final"]["params"]["w"] == pytest.approx(3, abs=1e-3)
    assert doc["final"]["params"]["v"] == pytest.approx(-1, abs=1e-3)


def test_momentum_first_steps_by_hand():
    tape, _ = parse("w^2")
    steps = list(descend(tape, {"w": 1.0}, lr=0.1, steps=2, optimizer="momentum",
                         momentum=0.5))
    # v1 = g0 = 2, w1 = 1 - 0.2 = 0.8; v2 = 0.5*2 + 1.6 = 2.6, w2 = 0.8 - 0.26 = 0.54
    assert [float(s.params["w"]) for s in steps] == pytest.approx([1.0, 0.8, 0.54])


def test_adam_first_step_moves_by_the_learning_rate():
    tape, _ = parse("100*w^2")
    steps = list(descend(tape, {"w": 1.0}, lr=0.01, steps=1, optimizer="adam"))
    # bias-corrected m/sqrt(v) is sign(g) on the first step
    assert float(steps[1].params["w"]) == pytest.approx(0.99, abs=1e-9)


def test_other_variables_stay_fixed():
    doc, _ = descend_json("(w - a)^2", "--at", "w=0,a=5", "--wrt", "w", "--steps", "200")
    assert list(doc["final"]["params"]) == ["w"]
    assert doc["final"]["params"]["w"] == pytest.approx(5, abs=1e-9)


def test_zero_steps_and_exact_minimum():
    doc, _ = descend_json("(w-3)^2", "--at", "w=1", "--steps", "0")
    assert [s["step"] for s in doc["steps"]] == [0] and doc["stopped"] == "steps"
    doc, _ = descend_json("(w-3)^2", "--at", "w=3")
    assert doc["stopped"] == "converged" and doc["final"]["step"] == 0
    assert doc["message"] == "converged at step 0: the gradient is 0"


def test_formula_starting_with_minus():
    doc, _ = descend_json("-u + u^2", "--at", "u=0", "--steps", "200")
    assert doc["final"]["params"]["u"] == pytest.approx(0.5, abs=1e-9)


# -- divergence ----------------------------------------------------------------------------------

def test_divergence_stops_with_the_last_finite_parameters(validator):
    # w_k = (1 - 2·1.5)^k = (-2)^k: w^2 overflows once |w| passes 1.34e154, at k = 512.
    doc, err = descend_json("w^2", "--at", "w=1", "--lr", "1.5", "--steps", "100000",
                            "--every", "100", code=1)
    assert_valid(validator, doc)
    assert doc["stopped"] == "diverged"
    assert doc["final"]["step"] == 511
    assert doc["final"]["params"]["w"] == pytest.approx(-(2.0**511), rel=1e-12)
    assert math.isfinite(doc["final"]["loss"])
    assert [s["step"] for s in doc["steps"]][-3:] == [500, 511, 512]
    assert doc["steps"][-1]["loss"] == "Infinity"
    assert "the loss became Infinity at step 512" in err
    assert "smaller --lr" in err
    assert any("Infinity" in w for w in doc["warnings"])


def test_divergence_in_the_table_view():
    r = run("w^2", "--at", "w=1", "--lr", "1.5", "--steps", "2000")
    assert r.exit_code == 1
    assert "final (step 511, the last finite step)" in r.stdout
    assert "the loss became Infinity" in r.stderr


def test_nan_loss_and_infinite_gradient_stop():
    # w1 = 0.25 - 0.25·(1/(2·0.5) + 1) = -0.25: sqrt of a negative number is NaN.
    doc, err = descend_json("sqrt(w) + w", "--at", "w=0.25", "--lr", "0.25", "--steps", "10",
                            code=1)
    assert doc["stopped"] == "diverged" and doc["final"]["step"] == 0
    assert doc["steps"][-1] == {"step": 1, "loss": "NaN", "params": {"w": -0.25},
                                "grad_norm": "NaN"}
    assert "the loss became NaN at step 1" in err
    # w1 = 0.25 - 0.125·2 = 0: the loss is 0 there, but sqrt's slope is infinite.
    doc, err = descend_json("sqrt(w) + w", "--at", "w=0.25", "--lr", "0.125", "--steps", "10",
                            code=1)
    assert doc["stopped"] == "diverged" and doc["final"]["step"] == 1
    assert doc["final"]["params"] == {"w": 0.0} and doc["final"]["loss"] == 0.0
    assert "the gradient is not finite at step 1" in err


def test_non_finite_start_is_an_input_error():
    r = run("log(w)", "--at", "w=0")
    assert r.exit_code == 2
    assert "the loss is -Infinity at the starting point" in r.stderr
    assert "log" in r.stderr and "Traceback" not in r.stderr


# -- Ctrl-C --------------------------------------------------------------------------------------

def test_ctrl_c_prints_the_result_so_far(monkeypatch, validator):
    import gradcli.descend as module

    real = module.descend

    def interrupted(*args, **kwargs):
        for step in real(*args, **kwargs):
            if step.step == 7:
                raise KeyboardInterrupt
            yield step

    monkeypatch.setattr(module, "descend", interrupted)
    doc, err = descend_json("(w-3)^2", "--at", "w=0", "--steps", "100", "--every", "5",
                            code=130)
    assert_valid(validator, doc)
    assert doc["stopped"] == "interrupted"
    assert doc["final"]["step"] == 6
    assert [s["step"] for s in doc["steps"]] == [0, 5, 6]
    assert "interrupted after step 6" in err
    r = run("(w-3)^2", "--at", "w=0", "--steps", "100")
    assert r.exit_code == 130 and "final (step 6)" in r.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_real_program(validator):
    exe = shutil.which("gradcli")
    cmd = ([exe] if exe else [sys.executable, "-m", "gradcli"]) + [
        "descend", "(w-3)^2 + (v+1)^2", "--at", "w=0,v=0", "--steps", "100000000",
        "--every", "1000", "--json"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err.decode()
    assert b"Traceback" not in err
    doc = json.loads(out, parse_constant=_reject_constant)
    assert_valid(validator, doc)
    assert doc["stopped"] == "interrupted" and doc["final"]["step"] > 0


# -- defaults and the sample ---------------------------------------------------------------------

def test_sample_runs_with_defaults(validator):
    text = SAMPLE.read_text(encoding="utf-8")
    assert "gradcli descend samples/descend_neuron.grad --steps 500 --json" in text
    doc, err = descend_json(str(SAMPLE), "--steps", "500")
    assert_valid(validator, doc)
    assert "starting w0, w1, w2 at 0" in err
    assert doc["wrt"] == ["w0", "w1", "w2"]
    assert doc["steps"][0]["params"] == {"w0": 0.0, "w1": 0.0, "w2": 0.0}
    losses = [s["loss"] for s in doc["steps"]]
    assert len(losses) == 501 and losses[-1] < losses[0] / 20
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    # momentum recovers the weights the targets were made with, w = (2, -3, -3)
    doc, _ = descend_json(str(SAMPLE), "--steps", "500", "--optimizer", "momentum",
                          "--lr", "0.5")
    assert list(doc["final"]["params"].values()) == pytest.approx([2, -3, -3], abs=0.01)


def test_sample_real_program_json_tool():
    exe = shutil.which("gradcli")
    cmd = [exe] if exe else [sys.executable, "-m", "gradcli"]
    p = subprocess.run(cmd + ["descend", "samples/descend_neuron.grad", "--steps", "500",
                              "--json"], capture_output=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout, parse_constant=_reject_constant)
    assert doc["final"]["step"] == 500
    assert p.stderr.decode().startswith("note: starting w0, w1, w2 at 0")


def test_every_thins_the_record(validator):
    doc, _ = descend_json("(w-3)^2", "--at", "w=0", "--steps", "95", "--every", "10")
    assert_valid(validator, doc)
    assert [s["step"] for s in doc["steps"]] == list(range(0, 100, 10)) + [95]
    assert doc["final"]["step"] == 95


def test_unused_at_value_warns_and_other_missing_variables_fail():
    doc, err = descend_json("(w-3)^2", "--at", "w=0,q=1", "--steps", "3")
    assert any("q is not used" in w for w in doc["warnings"]) and "q is not used" in err
    r = run("(w - a)^2", "--wrt", "w")
    assert r.exit_code == 2 and "a" in r.stderr and "--at" in r.stderr


@pytest.mark.parametrize("args, words", [
    (["x^2", "--lr", "0"], "--lr"),
    (["x^2", "--lr", "-0.1"], "--lr"),
    (["x^2", "--lr", "nan"], "--lr"),
    (["x^2", "--steps", "-1"], "--steps"),
    (["x^2", "--every", "0"], "--every"),
    (["x^2", "--optimizer", "rmsprop"], "--optimizer"),
    (["x^2", "--optimizer", "momentum", "--momentum", "1"], "--momentum"),
    (["x^2", "--tol", "-1"], "--tol"),
    (["x^2, x", "--at", "x=1"], "one output"),
    (["x^2", "--wrt", "y"], "no variable y"),
    (["q = x^2; f = q + 1", "--wrt", "q"], "intermediate"),
    (["2 + 3"], "no variables"),
    (["(x+*y"], "syntax error"),
])
def test_bad_settings_are_exit_2(args, words):
    r = run(*args)
    assert r.exit_code == 2, (args, r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr


# -- the terminal view -----------------------------------------------------------------------------

def test_table_view_shows_curve_table_and_final():
    r = run("(w-3)^2 + (v+1)^2", "--at", "w=0,v=0", "--wrt", "w,v", "--steps", "100")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "loss" in out and "log scale" in out
    assert any(ch in out for ch in BLOCKS[1:])
    assert "final (step 100): loss = " in out
    assert "w = 3" in out and "v = -1" in out
    assert "ran 100 steps (sgd, --lr 0.1)" in out
    assert "\x1b[" not in out  # plain text in a pipe


def test_tensor_like_text_is_not_markup():
    r = run("(θ - 1)^2", "--at", "θ=0", "--steps", "10")
    assert r.exit_code == 0 and "θ = " in r.stdout


def test_curve_rows_shapes():
    rows, lo, hi, log = curve_rows([4, 3, 2, 1, 0], width=5, height=2)
    assert (lo, hi, log) == (0, 4, False) and len(rows) == 2
    assert rows[0][0] == "█" and rows[1][-1] == "▁"  # starts full height, ends at the floor
    heights = [sum(BLOCKS.index(r[c]) for r in rows) for c in range(5)]
    assert heights == sorted(heights, reverse=True)
    rows, lo, hi, log = curve_rows([10.0 ** -k for k in range(20)], width=20, height=4)
    assert log and lo == pytest.approx(1e-19)
    heights = [sum(BLOCKS.index(r[c]) for r in rows) for c in range(20)]
    steps = [a - b for a, b in zip(heights, heights[1:])]
    assert max(steps) - min(steps) <= 1  # a straight line on a log scale
    rows, *_ = curve_rows([2.0, 2.0, 2.0], width=4, height=2)
    assert len(set(rows[0])) == 1 and len(set(rows[1])) == 1  # flat
    assert curve_rows([math.inf, math.nan], width=4)[0] == []
    rows, *_ = curve_rows([1.0, 0.0], width=11, height=1, xs=[0, 100])
    assert rows[0] == "█▇▇▆▅▅▄▃▂▂▁"  # interpolated between recorded steps


def test_table_steps_pick():
    steps = [Step(k, 1.0, {}, {}, 0.0) for k in range(0, 1001)]
    assert [s.step for s in table_steps(steps)] == [0, 1, 2, 5, 10, 20, 50, 500, 1000]
    thinned = steps[::7]
    picked = [s.step for s in table_steps(thinned)]
    assert picked[0] == 0 and picked[-1] == thinned[-1].step and picked == sorted(picked)


# -- the generator itself (numpy only) ----------------------------------------------------------

def test_generator_yields_records_and_stops_once():
    tape, _ = parse("(w-3)^2")
    records = list(descend(tape, {"w": np.float64(0)}, lr=0.1, steps=3))
    assert [r.step for r in records] == [0, 1, 2, 3]
    assert [r.stop for r in records] == [None, None, None, "steps"]
    assert all(isinstance(r.params["w"], np.floating) for r in records)
    traj = Trajectory(every=2)
    for r in records:
        traj.add(r)
    assert [s.step for s in traj.steps] == [0, 2, 3] and traj.final is records[-1]


def test_generator_needs_a_starting_value_for_each_parameter():
    tape, _ = parse("w*2")
    with pytest.raises(InputError, match="no starting value for w"):
        list(descend(tape, {}))


def _tensors_available() -> bool:
    try:
        tape, _ = parse("sum(w*w)")
        list(descend(tape, {"w": np.array([1.0, 2.0])}, steps=1))
    except Exception:  # noqa: BLE001 - any failure means: not yet
        return False
    return True


@pytest.mark.skipif(not _tensors_available(), reason="the core has no tensors yet")
def test_tensor_parameters(validator):
    tape, _ = parse("sum((w - t)^2)")
    t = np.array([[1.0, 2.0], [3.0, 4.0]])
    records = list(descend(tape, {"w": np.zeros((2, 2)), "t": t}, ["w"], lr=0.1, steps=100))
    w = records[-1].params["w"]
    assert w.shape == (2, 2)
    np.testing.assert_allclose(w, t * (1 - 0.8**100), rtol=1e-12)
    doc, _ = descend_json("sum((w - [1, 2, 3])^2)", "--at", "w=[0,0,0]", "--steps", "60")
    assert_valid(validator, doc)
    assert doc["final"]["params"]["w"] == pytest.approx([1, 2, 3], abs=1e-5)
    r = run("w * 2", "--at", "w=[1,2]")
    assert r.exit_code == 2 and "sum(...)" in r.stderr


# -- the schema really constrains -----------------------------------------------------------------

def test_schema_rejects_wrong_documents(validator):
    good, _ = descend_json("(w-3)^2", "--at", "w=0", "--steps", "3")
    assert_valid(validator, good)
    bad = [
        {**good, "steps": []},
        {**good, "final": None},
        {**good, "stopped": "done"},
        {**good, "optimizer": "rmsprop"},
        {**good, "lr": 0},
        {**good, "extra": 1},
        {**good, "final": {**good["final"], "loss": "NaN"}},
        {**good, "steps": [{**good["steps"][0], "loss": "nan"}]},
        {**good, "steps": [{**good["steps"][0], "step": -1}]},
        {**good, "steps": [{"step": 0, "loss": 1.0, "params": {}, "grad_norm": 0}]},
        {k: v for k, v in good.items() if k != "final"},
    ]
    for doc in bad:
        assert not validator.is_valid(doc), doc
