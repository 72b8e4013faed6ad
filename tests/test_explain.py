"""`gradcli eval --explain` and `--format latex`: the backward pass written out node by node.

The course's worked examples are checked line by line; every number the explanation prints is
checked against the `--json` document of the same evaluation (at 17 significant digits they must
be equal, not close); the LaTeX is checked structurally (one align* environment, balanced braces
and \\left/\\right, every line ended, nothing but ASCII) and compiled when a TeX is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import runner

from gradcli import evaluate
from gradcli.cli import app
from gradcli.render.explain import atomic, explain, latex, plain_text, tex_name, tex_number

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NEURON = [str(SAMPLES / "neuron.grad"), "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"]
ANSI = re.compile(r"\x1b\[")
NUMBER = re.compile(r"(?<![\w#/.])-?\d+(?:\.\d+)?(?:e[+-]\d+)?(?![\w.])")



def ok(*args: str, input: str | None = None):
    r = runner.invoke(app, list(args), input=input)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "Traceback" not in r.stderr
    return r


def usage_error(*args: str):
    r = runner.invoke(app, list(args))
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    if "--json" in args or "json" in args:  # with JSON asked for, the error is JSON too
        assert json.loads(r.stdout)["error"]["kind"] == "usage"
    else:
        assert r.stdout == ""
    return r.stderr


def explained(*args: str) -> list[str]:
    """The --explain output's lines, trailing blanks removed."""
    return [line.rstrip() for line in ok("eval", *args, "--explain").stdout.splitlines()]


def step(lines: list[str], lhs: str) -> str:
    """The one line that starts the step for `lhs` (e.g. ∂f/∂x)."""
    found = [line.strip() for line in lines if line.strip().startswith(lhs + " = ")]
    assert len(found) == 1, (lhs, lines)
    return found[0]


# -- the course's examples, verbatim ----------------------------------------------------------

def test_cs231n_staged_circuit():
    lines = explained("q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4")
    assert "  q = x + y = 3" in lines and "  f = q * z = -12" in lines
    assert step(lines, "∂f/∂f") == "∂f/∂f = 1"
    assert step(lines, "∂f/∂q") == "∂f/∂q = z = -4"
    assert step(lines, "∂f/∂z") == "∂f/∂z = q = 3"
    assert step(lines, "∂f/∂x") == "∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4"
    assert step(lines, "∂f/∂y") == "∂f/∂y = ∂f/∂q · ∂q/∂y = -4 · 1 = -4"
    # backward: from the output, in reverse tape order (f, z, q, y, x)
    order = [next(n for n, line in enumerate(lines) if line.strip().startswith(lhs + " = "))
             for lhs in ("∂f/∂f", "∂f/∂z", "∂f/∂q", "∂f/∂y", "∂f/∂x")]
    assert order == sorted(order)
    assert lines[-1] == "∇f: ∂f/∂x = -4, ∂f/∂y = -4, ∂f/∂z = 3"


def test_unnamed_nodes_are_called_by_their_formula():
    lines = explained("(x+y)*z", "--at", "x=-2,y=5,z=-4")
    assert step(lines, "∂f/∂(x+y)") == "∂f/∂(x+y) = z = -4"
    assert step(lines, "∂f/∂x") == "∂f/∂x = ∂f/∂(x+y) · ∂(x+y)/∂x = -4 · 1 = -4"
    assert step(lines, "∂f/∂z") == "∂f/∂z = x+y = 3"


def test_cs231n_neuron():
    lines = explained(*NEURON)
    assert "  dot = w0*x0 + w1*x1 + w2 = 1" in lines
    assert "  f = 1 / (1 + exp(-dot)) = 0.731059" in lines
    # the division's rule from ops.py, -a/b², with the inputs' labels put in
    assert step(lines, "∂f/∂(1 + exp(-dot))") == \
        "∂f/∂(1 + exp(-dot)) = -1/(1 + exp(-dot))² = -0.534447"
    assert "∂exp(-dot)/∂(-dot) = exp(-dot) = 0.367879" in [x.strip() for x in lines]
    assert step(lines, "∂f/∂dot") == "∂f/∂dot = ∂f/∂(-dot) · ∂(-dot)/∂dot = -0.196612 · (-1) = " \
                                     "0.196612"
    assert step(lines, "∂f/∂x0") == \
        "∂f/∂x0 = ∂f/∂(w0*x0) · ∂(w0*x0)/∂x0 = 0.196612 · 2 = 0.393224"
    assert "∂(w0*x0)/∂x0 = w0 = 2" in [x.strip() for x in lines]  # the mul gate swaps inputs
    # the notes' answer: dx = [0.39, -0.59], dw = [-0.20, -0.39, 0.20]
    final = {lhs: float(step(lines, lhs).rsplit(" = ", 1)[1])
             for lhs in ("∂f/∂x0", "∂f/∂x1", "∂f/∂w0", "∂f/∂w1", "∂f/∂w2")}
    assert [round(final[k], 2) for k in ("∂f/∂x0", "∂f/∂x1")] == [0.39, -0.59]
    assert [round(final[k], 2) for k in ("∂f/∂w0", "∂f/∂w1", "∂f/∂w2")] == [-0.2, -0.39, 0.2]


# -- fan-out: gradients add up at forks -------------------------------------------------------

def test_fan_out_is_a_sum_of_terms():
    lines = explained("x*y + x", "--at", "x=3,y=-2")
    line = step(lines, "∂f/∂x")
    m = re.fullmatch(r"∂f/∂x = (∂f/∂.+? · ∂.+?/∂x) \+ (∂f/∂.+? · ∂.+?/∂x) = (.+) = (\S+) \+ "
                     r"(\S+) = (\S+)", line)
    assert m, line
    assert {m.group(1), m.group(2)} == {"∂f/∂f · ∂(x*y + x)/∂x", "∂f/∂(x*y) · ∂(x*y)/∂x"}
    a, b, total = float(m.group(4)), float(m.group(5).strip("()")), float(m.group(6))
    assert a + b == total == -1.0  # ∂f/∂x = y + 1
    assert sorted([a, b]) == [-2.0, 1.0]
    assert "∂(x*y)/∂x = y = -2" in [x.strip() for x in lines]


def test_a_name_used_twice_by_one_parent():
    line = step(explained("x*x", "--at", "x=3"), "∂f/∂x")
    assert line == "∂f/∂x = ∂f/∂f · ∂(x*x)/∂x + ∂f/∂f · ∂(x*x)/∂x = 1 · 3 + 1 · 3 = 3 + 3 = 6"


def test_staged_fan_out_through_named_intermediates():
    lines = explained("a = x*y; b = a + x; c = b*a; c*b + y^2/x", "--at", "x=2,y=3")
    line = step(lines, "∂f/∂a")
    assert line == "∂f/∂a = ∂f/∂c · ∂c/∂a + ∂f/∂b · ∂b/∂a = 8 · 8 + 96 · 1 = 64 + 96 = 160"


# -- explain's numbers are the JSON's ---------------------------------------------------------

def _labels(doc: dict) -> dict[str, int]:
    """What the explanation calls each node (its name, or its formula), to its id."""
    out: dict[str, int] = {}
    for node in doc["nodes"]:
        for key in (node["name"], node["expr"], f"#{node['id']}"):
            if key:
                out.setdefault(key, node["id"])
    return out


def _strip(label: str) -> str:
    return label[1:-1] if label.startswith("(") and atomic(label[1:-1]) is False and \
        label.endswith(")") else label


@pytest.mark.parametrize("args", [
    NEURON,
    ["q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4"],
    ["x*y + x", "--at", "x=3,y=-2"],
    ["a = x*y; b = a + x; c = b*a; c*b + y^2/x", "--at", "x=2,y=3"],
    ["sigmoid(w*x + b) * tanh(x) / (1 + x^2) + log(w)", "--at", "w=1.7,x=-0.3,b=0.2"],
    ["max(x, y) * min(y, z) + abs(x - z)", "--at", "x=1.5,y=-2,z=0.25"],
    ["x+" * 60 + "x*y", "--at", "x=0.1,y=3"],
], ids=["neuron", "circuit", "fan-out", "staged", "mixed", "kinks", "long"])
def test_every_number_equals_the_json(args):
    doc = json.loads(ok("eval", *args, "--json").stdout)
    lines = explained(*args, "--digits", "17", "--max-rows", "0")
    ids = _labels(doc)
    out = doc["outputs"][0]
    ids["f"] = out
    nodes = doc["nodes"]
    seen = set()
    for line in lines:
        m = re.fullmatch(r"  ∂f/∂(.+?) = (.*)", line)
        if not m:
            continue
        label = m.group(1)
        i = ids.get(label, ids.get(_strip(label)))
        assert i is not None, (label, line)
        seen.add(i)
        parts = m.group(2).split(" = ")
        assert float(parts[-1]) == nodes[i]["grad"], line  # exactly the engine's adjoint
        if len(parts) == 2 and "∂" not in parts[0] and i != out:
            # ∂f/∂q = z = -4: a use by the output itself, its local partial is the gradient
            continue
        if len(parts) >= 3 and "·" in parts[1] and "∂" not in parts[1]:
            terms = [t.split(" · ") for t in parts[1].split(" + ")]
            terms = [(float(a.strip("()")), float(b.strip("()"))) for a, b in terms]
            products = [a * b for a, b in terms]
            # each upstream gradient is a parent's grad, each local partial a parent's partial
            grads = {n["grad"] for n in nodes if n["grad"] is not None}
            partials = {p for n in nodes for p in n["partials"] if p is not None}
            for a, b in terms:
                assert a in grads, (a, line)
                assert b in partials, (b, line)
            assert sum(products) == pytest.approx(nodes[i]["grad"], rel=1e-12, abs=1e-300)
    active = {n["id"] for n in nodes if n["grad"] is not None}
    assert seen == active  # one step per node that carries a gradient, constants skipped


# -- LaTeX ------------------------------------------------------------------------------------

def _check_latex(text: str) -> list[str]:
    assert text.startswith("\\begin{align*}\n") and text.endswith("\\end{align*}\n")
    assert text.count("\\begin{align*}") == 1 and text.count("\\end{align*}") == 1
    assert text.isascii(), [ch for ch in text if not ch.isascii()][:5]
    bare = text.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in bare:
        depth += (ch == "{") - (ch == "}")
        assert depth >= 0
    assert depth == 0
    assert text.count("\\left(") == text.count("\\right)")
    assert text.count("\\begin{bmatrix}") == text.count("\\end{bmatrix}")
    rows = text.splitlines()[1:-1]
    content = [row for row in rows if not row.startswith("%")]
    for row in content[:-1]:
        assert row.endswith(" \\\\") or row.startswith("\\intertext"), row
    assert not content[-1].endswith("\\\\")
    for row in content:
        if not row.startswith("\\intertext"):
            assert row.count("&") == row.count("\\&") + 1 or "bmatrix" in row, row
    return content


def test_latex_circuit():
    out = ok("eval", "q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4", "--format", "latex").stdout
    rows = _check_latex(out)
    assert "q &= x + y = 3 \\\\" in rows
    assert "\\frac{\\partial f}{\\partial q} &= z = -4 \\\\" in rows
    # the chain rule in symbols, then its numbers on the next, aligned, line
    at = rows.index("\\frac{\\partial f}{\\partial x} &= \\frac{\\partial f}{\\partial q} \\cdot "
                    "\\frac{\\partial q}{\\partial x} \\\\")
    assert rows[at + 1] == "&= -4 \\cdot 1 = -4"


def test_latex_neuron_names_are_subscripted():
    out = ok("eval", *NEURON, "-f", "latex").stdout
    rows = _check_latex(out)
    assert "\\mathrm{dot} &= w_{0} \\cdot x_{0} + w_{1} \\cdot x_{1} + w_{2} = 1 \\\\" in rows
    assert "f &= \\frac{1}{1 + \\exp\\left(-\\mathrm{dot}\\right)} = 0.731059 \\\\" in rows
    at = next(n for n, row in enumerate(rows)
              if row.startswith("\\frac{\\partial f}{\\partial x_{0}} &="))
    assert rows[at + 1] == "&= 0.196612 \\cdot 2 = 0.393224 \\\\"
    assert "w0" not in out and "x_0" not in out


def test_latex_with_explain_flag_too_and_escaped_names():
    out = ok("eval", "θ_1*x_hat + big_name_2", "--at", "θ_1=2,x_hat=3,big_name_2=1",
             "--explain", "--format", "latex").stdout
    _check_latex(out)
    assert "\\theta_{1}" in out and "x_{\\mathrm{hat}}" in out
    assert "\\mathrm{big}_{\\mathrm{name\\_2}}" in out


@pytest.mark.parametrize("args", [
    ["samples/matmul.grad", "--seed", "0"],
    ["samples/two_layer.grad", "--seed", "0"],
    ["relu(x) + max(x, y) + abs(y)^2 + sqrt(x + 1)", "--at", "x=0,y=0", "--subgradient",
     "half"],
    ["2*x + y, y - x", "--at", "x=1,y=2"],
    ["(x+y)*z/3", "--at", "x=1/2,y=5,z=-4", "--exact"],
    ["x+" * 300 + "x", "--at", "x=1"],
    ["sum(softmax(v) * w) + norm(v) + mean(v) + logsumexp(v) + dot(v, w)",
     "--at", "v=[1,2,3],w=[1,0,2]"],
])
def test_latex_is_well_formed(args):
    r = runner.invoke(app, ["eval", *args, "--format", "latex"])
    assert r.exit_code == 0, r.stderr
    _check_latex(r.stdout)


def test_latex_exact_fractions_and_several_outputs():
    out = ok("eval", "(x+y)*z/3", "--at", "x=1/2,y=5,z=-4", "--exact", "-f", "latex").stdout
    assert "\\frac{1}{3} \\cdot \\frac{11}{2} = \\frac{11}{6}" in out
    out = ok("eval", "2*x + y, y - x", "--at", "x=1,y=2", "-f", "latex").stdout
    assert "\\intertext{Backward pass for $f_{1}$:}" in out
    assert "\\frac{\\partial f_{2}}{\\partial x} &= -1" in out


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="no pdflatex (apt-get install "
                    "texlive-latex-base): the LaTeX is checked structurally only")
@pytest.mark.parametrize("args", [
    NEURON,
    ["samples/matmul.grad", "--seed", "0"],
    ["relu(x) + max(x, y) + abs(y)^2 + sqrt(x + 1)", "--at", "x=0,y=0", "--subgradient", "half"],
    ["θ_1*x_hat + big_name_2, y - θ_1", "--at", "θ_1=2,x_hat=3,big_name_2=1,y=1/3", "--exact"],
], ids=["neuron", "matmul", "kinks", "names"])
def test_latex_compiles_and_fits_the_page(tmp_path, args):
    body = ok("eval", *args, "-f", "latex").stdout
    doc = ("\\documentclass{article}\\usepackage{amsmath,amssymb}\\allowdisplaybreaks\n"
           "\\begin{document}\n" + body + "\\end{document}\n")
    (tmp_path / "x.tex").write_text(doc, encoding="utf-8")
    p = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "x.tex"],
                       cwd=tmp_path, capture_output=True, timeout=60)
    log = p.stdout.decode(errors="replace")
    assert p.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log


def test_tex_names_and_numbers():
    assert tex_name("w0") == tex_name("w_0") == "w_{0}"
    assert tex_name("x_hat") == "x_{\\mathrm{hat}}"
    assert tex_name("a_b_c") == "a_{\\mathrm{b\\_c}}"
    assert tex_name("θ") == "\\theta" and tex_name("θ2") == "\\theta_{2}"
    assert tex_name("dot") == "\\mathrm{dot}" and tex_name("W") == "W"
    assert tex_number(1e-05) == "1 \\times 10^{-5}"
    assert tex_number(float("inf")) == "\\infty" and tex_number(float("nan")) == "\\mathrm{NaN}"


# -- tensors, several outputs, limits ---------------------------------------------------------

def test_tensors_say_shapes_and_use_the_ops_rule():
    lines = explained("samples/matmul.grad", "--seed", "0")
    text = "\n".join(lines)
    w = step(lines, "∂f/∂W")
    assert w.startswith("∂f/∂W = ∂f/∂D·Xᵀ = ⟨5×10: min ")  # the notes' dW = dD·Xᵀ
    assert step(lines, "∂f/∂X").startswith("∂f/∂X = Wᵀ·∂f/∂D = ⟨10×3: ")
    assert "shapes: ∂f/∂D 5×3, X 10×3 → ∂f/∂W 5×10" in text
    assert "shapes: W 5×10, ∂f/∂D 5×3 → ∂f/∂X 10×3" in text


def test_broadcasting_is_said():
    lines = explained("sum([1,2]*x + b)", "--at", "x=2,b=[[1,2],[3,4]]")
    assert step(lines, "∂f/∂x") == "∂f/∂x = ∂f/∂([1,2]*x) ⊙ ∂([1,2]*x)/∂x = [2, 2] ⊙ [1, 2] = 6"
    assert "broadcasting: summed from 2 down to scalar, the shape of x" in [
        x.strip() for x in lines]


def test_several_outputs_one_explanation_each():
    lines = explained("2*x + y, y - x", "--at", "x=1,y=2")
    assert [x for x in lines if x.startswith("backward pass for")] == [
        x for x in lines if x.startswith("backward pass for f1") or
        x.startswith("backward pass for f2")]
    assert step(lines, "∂f1/∂x") == "∂f1/∂x = ∂f1/∂(2*x) · ∂(2*x)/∂x = 1 · 2 = 2"
    assert step(lines, "∂f2/∂x") == "∂f2/∂x = -1"
    assert "∇f2: ∂f2/∂x = -1, ∂f2/∂y = 1" in lines


def test_wrt_and_unused_variables():
    lines = explained("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "x")
    assert not any(x.strip().startswith(("∂f/∂y", "∂f/∂z")) for x in lines)
    lines = explained("a = u*2; x*3", "--at", "u=1,x=2")
    assert "  ∂f/∂u = 0 (f does not use u)" in lines


def test_big_formula_is_capped_with_a_message():
    text = "x+" * 300 + "x"
    r = ok("eval", text, "--at", "x=1", "--explain")
    assert "… 101 more steps left out" in r.stdout
    assert "--max-rows 0" in r.stderr and "leaves out 101 steps" in r.stderr
    assert r.stdout.rstrip().endswith("∇f: ∂f/∂x = 301")
    r = ok("eval", text, "--at", "x=1", "--explain", "--max-rows", "0")
    assert "left out" not in r.stdout and r.stderr == ""
    assert len([x for x in r.stdout.splitlines() if x.startswith("  ∂f/∂")]) == 301


def test_kinks_are_said_once():
    lines = explained("max(x, y) + relu(x)", "--at", "x=0,y=0")
    notes = [x for x in lines if "exactly at a kink" in x]
    assert len(notes) == 2 and "max(x, y) is exactly at a kink of max" in notes[0]


def test_exact_fractions():
    lines = explained("(x+y)*z/3", "--at", "x=1/2,y=5,z=-4", "--exact")
    assert step(lines, "∂f/∂z") == "∂f/∂z = ∂f/∂((x+y)*z) · ∂((x+y)*z)/∂z = (1/3) · (11/2) = 11/6"
    assert lines[-1] == "∇f: ∂f/∂x = -4/3, ∂f/∂y = -4/3, ∂f/∂z = 11/6"


def test_python_api():
    r = evaluate("q = x + y; f = q * z", at={"x": -2, "y": 5, "z": -4})
    assert "∂f/∂q = z = -4" in plain_text(r)
    ex = explain(r)
    assert [s.node for s in ex.steps] == [4, 3, 2, 1, 0] and ex.left_out == 0
    assert latex(r)[0].startswith("\\begin{align*}")


# -- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("extra, words", [
    (["--json"], "--json"),
    (["--format", "json"], "--json"),
    (["--format", "latex", "--json"], "--json"),
    (["--format", "tree"], "--format tree"),
    (["--format", "dot"], "--format dot"),
    (["--points", "samples/points.csv"], "--points"),
    (["--mode", "forward"], "--mode forward"),
])
def test_explain_with_another_output_is_a_usage_error(extra, words):
    err = usage_error("eval", *NEURON, "--explain", *extra)
    assert err.startswith("gradcli: error: ") and words in err


def test_latex_format_alone_is_a_usage_error_with_json():
    err = usage_error("eval", *NEURON, "--format", "latex", "--json")
    assert "--json" in err


def test_user_text_is_never_markup():
    r = ok("eval", "sum([red]*x) + bold", "--at", "x=2,red=3,bold=1", "--explain")
    assert "∂f/∂([red]*x)" in r.stdout and "∂f/∂bold = 1" in r.stdout


def test_help_mentions_explain_and_latex():
    out = ok("eval", "--help").stdout
    assert "--explain" in out and "latex" in out


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")}
    env.update({"PYTHONIOENCODING": "utf-8"}, **extra)
    return env


def _cmd() -> list[str]:
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


@pytest.mark.parametrize("extra", [{}, {"NO_COLOR": "1"}])
def test_piped_output_is_plain(extra):
    p = subprocess.run(_cmd() + ["eval", *NEURON, "--explain"], capture_output=True,
                       env=_env(**extra), cwd=ROOT, timeout=60)
    assert p.returncode == 0
    out = p.stdout.decode("utf-8")
    assert not ANSI.search(out) and not ANSI.search(p.stderr.decode())
    assert "∂f/∂x0 = ∂f/∂(w0*x0) · ∂(w0*x0)/∂x0 = 0.196612 · 2 = 0.393224" in out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_a_terminal_gets_colours_values_green_gradients_red():
    pty = pytest.importorskip("pty")
    try:
        master, slave = pty.openpty()
    except OSError as exc:  # pragma: no cover - containers without /dev/ptmx
        pytest.skip(f"no pseudo-terminal: {exc}")
    try:
        subprocess.run(_cmd() + ["eval", "q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4",
                                 "--explain"], stdin=subprocess.DEVNULL, stdout=slave,
                       stderr=slave, env=_env(TERM="xterm-256color", COLUMNS="200"), cwd=ROOT,
                       timeout=60)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[32m3\x1b[0m" in text  # q's value, green
    assert "\x1b[31m-4\x1b[0m" in text  # ∂f/∂q, red
