"""The `gradcli eval` command line: formats, inputs, stdout/stderr discipline, colours, imports.

Most tests go through Typer's CliRunner (stdout and stderr are kept apart in this Typer/Click);
a few run the installed program in a real subprocess: stdin, pipes, NO_COLOR, a terminal, the
`--version` import budget and the no-traceback guarantee.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run, runner

from gradcli import __version__
from gradcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ANSI = re.compile(r"\x1b\[")



# -- helpers ----------------------------------------------------------------------------------

def ok(*args: str, input: str | bytes | None = None):
    r = run(*args, input=input)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "Traceback" not in r.stderr
    return r


def _reject_constant(token: str):
    raise AssertionError(f"non-RFC-8259 token {token} in JSON output")


def strict_json(text: str) -> dict:
    """json.loads that refuses NaN/Infinity tokens (the contract's strict JSON)."""
    return json.loads(text, parse_constant=_reject_constant)


def eval_json(*args: str, input: str | bytes | None = None) -> tuple[dict, str]:
    r = ok("eval", *args, "--json", input=input)
    return strict_json(r.stdout), r.stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE",
                        "TTY_INTERACTIVE")}
    env.update({"COLUMNS": "120", "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


def gradcli_cmd() -> list[str]:
    """The installed console script if on PATH, else `python -m gradcli`."""
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


def sub(args: list[str], input: bytes | None = None, env: dict | None = None,
        cmd: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run((cmd or gradcli_cmd()) + args, input=input, capture_output=True,
                          env=env or clean_env(), cwd=ROOT, timeout=timeout)


# -- the CS231n example -----------------------------------------------------------------------

def test_table_shows_values_gradients_and_reading():
    r = ok("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4")
    out = r.stdout
    assert "read as: ((x + y) * z)" in out
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s+(var|add|mul)\s", line)
        if m:
            rows[int(m.group(1))] = line.split()
    assert sorted(rows) == [0, 1, 2, 3, 4]
    # node: id, label, op, value, ..., grad (last column)
    assert rows[0][1:4] == ["x", "var", "-2"] and rows[0][-1] == "-4"
    assert rows[1][1:4] == ["y", "var", "5"] and rows[1][-1] == "-4"
    assert rows[2][1:4] == ["x+y", "add", "3"] and rows[2][-1] == "-4"
    assert rows[3][1:4] == ["z", "var", "-4"] and rows[3][-1] == "3"
    assert rows[4][1:4] == ["(x+y)*z", "mul", "-12"] and rows[4][-1] == "1"
    assert "f = -12" in out
    assert "∂f/∂x = -4" in out and "∂f/∂y = -4" in out and "∂f/∂z = 3" in out
    assert r.stderr == ""


def test_json_document():
    doc, err = eval_json("(x+y)*z", "--at", "x=-2,y=5,z=-4")
    assert err == ""
    assert doc["schema_version"] == 1
    assert doc["expression"] == "(x+y)*z"
    assert doc["at"] == {"x": -2.0, "y": 5.0, "z": -4.0}
    assert doc["value"] == -12.0
    assert doc["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert "jacobian" not in doc
    assert doc["warnings"] == []
    nodes = doc["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(nodes)))
    assert doc["outputs"] == [len(nodes) - 1]
    out = nodes[doc["outputs"][0]]
    assert out["op"] == "mul" and out["value"] == -12.0 and out["grad"] == 1.0
    assert out["partials"] == [-4.0, 3.0]
    byname = {n["name"]: n for n in nodes if n["name"]}
    assert byname["x"]["grad"] == -4.0 and byname["z"]["grad"] == 3.0
    assert byname["x"]["inputs"] == [] and byname["x"]["op"] == "var"


def test_format_json_is_the_same_as_json_flag():
    a = ok("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--json").stdout
    b = ok("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--format", "json").stdout
    c = ok("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "-f", "JSON").stdout
    assert a == b == c
    assert a.endswith("}\n") and a.count("\n") == 1


def test_repeated_at_flags_merge():
    doc, _ = eval_json("(x+y)*z", "--at", "x=-2", "--at", "y=5,z=-4")
    assert doc["value"] == -12.0
    doc, _ = eval_json("x*y", "--at", "x=1", "--at", "y=2")
    assert doc["at"] == {"x": 1.0, "y": 2.0}
    assert doc["gradient"] == {"x": 2.0, "y": 1.0}
    doc, _ = eval_json("x*y", "-a", "x=1", "-a", "y=2")
    assert doc["value"] == 2.0


def test_at_values_fractions_constants_and_spaces():
    doc, _ = eval_json("x + y + z", "--at", "x=1/4, y=pi, z=-e")
    assert doc["at"]["x"] == 0.25
    assert doc["at"]["y"] == pytest.approx(math.pi)
    assert doc["at"]["z"] == pytest.approx(-math.e)


def test_wrt_limits_the_gradient():
    doc, _ = eval_json("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "x")
    assert doc["gradient"] == {"x": -4.0}
    byname = {n["name"]: n for n in doc["nodes"] if n["name"]}
    assert byname["x"]["grad"] == -4.0
    assert byname["y"]["grad"] is None and byname["z"]["grad"] is None
    mul = doc["nodes"][doc["outputs"][0]]
    assert mul["partials"] == [-4.0, None]  # z carries no gradient


def test_wrt_several_names_comma_and_repeated():
    a, _ = eval_json("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "x,z")
    b, _ = eval_json("(x+y)*z", "--at", "x=-2,y=5,z=-4", "--wrt", "x", "--wrt", "z")
    assert a["gradient"] == b["gradient"] == {"x": -4.0, "z": 3.0}


def test_wrt_in_the_table():
    r = ok("eval", "x*y", "--at", "x=3,y=4", "--wrt", "y")
    assert "∂f/∂y = 3" in r.stdout
    assert "∂f/∂x" not in r.stdout


def test_format_tree():
    r = ok("eval", "q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4", "--format", "tree")
    out = r.stdout
    assert "f = mul" in out and "q = add" in out
    assert "├──" in out and "└──" in out
    assert "value -12" in out and "grad -4" in out
    assert "∂f/∂x = -4" in out
    assert r.stderr == ""


def test_format_tree_case_insensitive_and_short_option():
    r = ok("eval", "x*y", "--at", "x=1,y=2", "-f", "TREE")
    assert "mul" in r.stdout and "└──" in r.stdout


def test_several_outputs_json_jacobian():
    doc, _ = eval_json("2*x + y, y - x", "--at", "x=1,y=2")
    assert doc["value"] == [4.0, 1.0]
    assert doc["jacobian"] == [{"x": 2.0, "y": 1.0}, {"x": -1.0, "y": 1.0}]
    assert "gradient" not in doc
    assert len(doc["outputs"]) == 2
    byname = {n["name"]: n for n in doc["nodes"] if n["name"]}
    assert byname["x"]["grad"] == [2.0, -1.0]
    assert byname["y"]["grad"] == [1.0, 1.0]


def test_several_outputs_table_has_jacobian():
    r = ok("eval", "2*x + y, y - x", "--at", "x=1,y=2")
    assert "Jacobian" in r.stdout
    assert "f1 = 4" in r.stdout and "f2 = 1" in r.stdout


def test_staged_program_names_intermediates():
    doc, _ = eval_json("q = x + y; f = q * z", "--at", "x=-2,y=5,z=-4")
    byname = {n["name"]: n for n in doc["nodes"] if n["name"]}
    assert byname["q"]["value"] == 3.0 and byname["q"]["grad"] == -4.0
    assert byname["f"]["value"] == -12.0 and byname["f"]["grad"] == 1.0
    assert doc["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}


def test_staged_program_with_newlines_and_comments():
    text = "# a comment\nq = x +\n    y   # continues after '+'\nf = q * z\n"
    doc, _ = eval_json(text, "--at", "x=-2,y=5,z=-4")
    assert doc["value"] == -12.0
    assert doc["expression"] == text


# -- formulas from files and stdin ------------------------------------------------------------

def test_file_neuron():
    doc, _ = eval_json(str(SAMPLES / "neuron.grad"), "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3")
    assert doc["value"] == pytest.approx(0.7310585786300049)
    g = doc["gradient"]
    assert g["x0"] == pytest.approx(0.3932238664829637)
    assert g["x1"] == pytest.approx(-0.5898357997244456)
    assert g["w0"] == pytest.approx(-0.19661193324148185)
    assert g["w1"] == pytest.approx(-0.3932238664829637)
    assert g["w2"] == pytest.approx(0.19661193324148185)
    names = {n["name"] for n in doc["nodes"]}
    assert {"dot", "f"} <= names


def test_file_circuit_and_jacobian():
    doc, _ = eval_json(str(SAMPLES / "circuit.grad"), "--at", "x=-2,y=5,z=-4")
    assert doc["value"] == -12.0 and doc["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}
    doc, _ = eval_json(str(SAMPLES / "jacobian.grad"), "--at", "x=1,y=2")
    assert doc["value"] == [4.0, 1.0]
    assert doc["jacobian"] == [{"x": 2.0, "y": 1.0}, {"x": -1.0, "y": 1.0}]


def test_file_relative_path_in_subprocess():
    p = sub(["eval", "samples/circuit.grad", "--at", "x=-2,y=5,z=-4", "--json"])
    assert p.returncode == 0, p.stderr
    assert strict_json(p.stdout.decode())["value"] == -12.0


def test_file_with_bom_and_crlf(tmp_path):
    f = tmp_path / "bom.grad"
    f.write_bytes("\ufeffq = x + y\r\nf = q * z\r\n".encode("utf-8"))
    doc, _ = eval_json(str(f), "--at", "x=-2,y=5,z=-4")
    assert doc["value"] == -12.0


def test_stdin_dash_in_process():
    doc, _ = eval_json("-", "--at", "x=3", input="-x^2\n")
    assert doc["value"] == -9.0 and doc["gradient"] == {"x": -6.0}
    doc, _ = eval_json("-", "--at", "x=-2,y=5,z=-4",
                       input=(SAMPLES / "circuit.grad").read_bytes())
    assert doc["value"] == -12.0


def test_stdin_dash_subprocess_pipe():
    p = sub(["eval", "-", "--at", "x=3", "--json"], input=b"-x^2\n")
    assert p.returncode == 0, p.stderr
    doc = strict_json(p.stdout.decode())
    assert doc["value"] == -9.0 and doc["gradient"] == {"x": -6.0}
    assert p.stderr == b""


def test_stdin_multiline_program_subprocess():
    p = sub(["eval", "-", "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3", "--json"],
            input=(SAMPLES / "neuron.grad").read_bytes())
    assert p.returncode == 0, p.stderr
    assert strict_json(p.stdout.decode())["value"] == pytest.approx(0.7310585786300049)


# -- formulas that start with '-' -------------------------------------------------------------

def test_formula_starting_with_minus():
    doc, _ = eval_json("-x^2", "--at", "x=3")
    assert doc["value"] == -9.0 and doc["gradient"] == {"x": -6.0}


def test_formula_after_double_dash():
    r = ok("eval", "--", "-x*y", "--at", "x=1,y=2", "--json")
    doc = strict_json(r.stdout)
    assert doc["value"] == -2.0 and doc["gradient"] == {"x": -2.0, "y": -1.0}


def test_formula_minus_after_options():
    doc, _ = eval_json("--at", "x=3", "-x^2")
    assert doc["value"] == -9.0
    r = ok("eval", "--at", "x=3", "-x^2")
    assert "read as: (-(x ^ 2))" in r.stdout


def test_negative_constant_formula():
    doc, _ = eval_json("-3")
    assert doc["value"] == -3.0 and doc["gradient"] == {}


def test_minus_formula_subprocess():
    p = sub(["eval", "-x^2", "--at", "x=3", "--json"])
    assert p.returncode == 0, p.stderr
    assert strict_json(p.stdout.decode())["value"] == -9.0


# -- version and help -------------------------------------------------------------------------

def test_version_in_process():
    for flag in ("--version", "-V"):
        r = ok(flag)
        assert r.stdout.strip() == f"gradcli {__version__}"


def test_version_installed_script_and_module():
    p = sub(["--version"])
    assert p.returncode == 0 and p.stdout.decode().strip() == f"gradcli {__version__}"
    p = sub(["--version"], cmd=[sys.executable, "-m", "gradcli"])
    assert p.returncode == 0 and p.stdout.decode().strip() == f"gradcli {__version__}"


def test_help():
    r = ok("--help")
    assert "eval" in r.stdout and "Usage" in r.stdout
    r = ok("eval", "--help")
    for word in ("--at", "--wrt", "--json", "--format", "Examples"):
        assert word in r.stdout
    r = ok("eval", "-h")
    assert "--at" in r.stdout


def test_no_arguments_shows_help():
    r = run()
    assert "eval" in (r.stdout + r.stderr)
    assert "Traceback" not in r.stderr


# -- stdout is the result, stderr the warnings ------------------------------------------------

def test_unused_value_warns_on_stderr_and_json_stays_pure():
    r = ok("eval", "x*2", "--at", "x=1,y=2", "--json")
    doc = strict_json(r.stdout)  # nothing but JSON on stdout
    assert doc["value"] == 2.0
    assert any("y" in w for w in doc["warnings"])
    assert "warning" in r.stderr and "y" in r.stderr


def test_unused_value_warning_in_table_mode():
    r = ok("eval", "x*2", "--at", "x=1,y=2")
    assert "warning" not in r.stdout
    assert "y is not used" in r.stderr


def test_warnings_subprocess_stdout_pure():
    p = sub(["eval", "x*2", "--at", "x=1,y=2", "--json"])
    assert p.returncode == 0
    strict_json(p.stdout.decode())
    assert b"warning" in p.stderr


@pytest.mark.parametrize(
    "formula, at, value, grad",
    [
        ("log(x)", "x=0", "-Infinity", "Infinity"),
        ("1/x", "x=0", "Infinity", "-Infinity"),
        ("x/x", "x=0", "NaN", "NaN"),
        ("sqrt(x)", "x=-1", "NaN", "NaN"),
        ("exp(x)", "x=1000", "Infinity", "Infinity"),
    ],
)
def test_nonfinite_values_are_strings_with_a_warning(formula, at, value, grad):
    r = ok("eval", formula, "--at", at, "--json")
    doc = strict_json(r.stdout)
    assert doc["value"] == value
    assert doc["gradient"]["x"] == grad
    assert doc["warnings"], "a non-finite value comes with a warning"
    assert "warning" in r.stderr
    for token in ("NaN", "Infinity"):  # never a bare token
        assert not re.search(r"[:\[,]\s*-?" + token, r.stdout)


def test_nonfinite_warning_names_the_node():
    r = ok("eval", "log(x)", "--at", "x=0", "--json")
    doc = strict_json(r.stdout)
    assert any("log(x)" in w for w in doc["warnings"])


def test_nonfinite_in_table_mode():
    r = ok("eval", "log(x)", "--at", "x=0")
    assert "-Infinity" in r.stdout
    assert "warning" in r.stderr and "warning" not in r.stdout


def test_unicode_names():
    doc, _ = eval_json("θ*η", "--at", "θ=2,η=3")
    assert doc["gradient"] == {"θ": 3.0, "η": 2.0}


def test_formula_without_variables():
    doc, _ = eval_json("2+3")
    assert doc["value"] == 5.0 and doc["gradient"] == {} and doc["at"] == {}


def test_big_table_is_cut_with_a_warning():
    text = "+".join(f"x{k}" for k in range(300))
    at = ",".join(f"x{k}=1" for k in range(300))
    r = ok("eval", text, "--at", at)
    assert "more nodes" in r.stdout
    assert "--max-rows" in r.stderr
    r = ok("eval", text, "--at", at, "--max-rows", "0")
    assert "more nodes" not in r.stdout


# -- user text is never Rich markup -----------------------------------------------------------

def test_markup_in_comment_is_printed_literally(tmp_path):
    f = tmp_path / "m.grad"
    f.write_text("q = log(x # [bold]note[/bold] [red]\n - 1)\nf = q * 2\n", encoding="utf-8")
    r = ok("eval", str(f), "--at", "x=1")
    # The node's text keeps the comment; the warning names the node: both literal.
    assert "[bold]note[/bold]" in r.stdout
    assert "[bold]note[/bold]" in r.stderr


def test_markup_in_error_is_printed_literally():
    r = run("eval", "[bold]x[/bold]", "--at", "x=1")
    assert r.exit_code == 2
    assert "[bold]x[/bold]" in r.stderr
    r = run("eval", "bold", "--at", "[bold]=1")
    assert r.exit_code == 2
    assert "[bold]" in r.stderr
    r = run("eval", "bold * x", "--at", "bold=1,x=[/red]")
    assert r.exit_code == 2
    assert "[/red]" in r.stderr


def test_markup_like_names_in_warnings_literal():
    r = ok("eval", "bold", "--at", "bold=1,red=2")
    assert "red is not used" in r.stderr


# -- colours ----------------------------------------------------------------------------------

def test_piped_output_has_no_ansi():
    p = sub(["eval", "log(x)", "--at", "x=0"])
    assert p.returncode == 0
    assert not ANSI.search(p.stdout.decode()) and not ANSI.search(p.stderr.decode())
    assert b"-Infinity" in p.stdout


def test_no_color_piped_has_no_ansi():
    p = sub(["eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4,u=1"], env=clean_env(NO_COLOR="1"))
    assert p.returncode == 0
    assert not ANSI.search(p.stdout.decode()) and not ANSI.search(p.stderr.decode())


def test_cli_runner_output_has_no_ansi():
    r = ok("eval", "log(x)", "--at", "x=0")
    assert not ANSI.search(r.stdout) and not ANSI.search(r.stderr)


def _run_in_terminal(args: list[str], env: dict[str, str]) -> bytes:
    pty = pytest.importorskip("pty")
    try:
        master, slave = pty.openpty()
    except OSError as exc:  # pragma: no cover - containers without /dev/ptmx
        pytest.skip(f"no pseudo-terminal: {exc}")
    try:
        proc = subprocess.run(gradcli_cmd() + args, stdin=subprocess.DEVNULL, stdout=slave,
                              stderr=slave, env=env, cwd=ROOT, timeout=60)
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
    assert proc.returncode == 0
    return b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_no_color_in_a_terminal():
    args = ["eval", "log(x)", "--at", "x=0"]
    coloured = _run_in_terminal(args, clean_env(TERM="xterm-256color"))
    assert ANSI.search(coloured.decode("utf-8", "replace")), "a terminal gets colours"
    plain = _run_in_terminal(args, clean_env(TERM="xterm-256color", NO_COLOR="1"))
    text = plain.decode("utf-8", "replace")
    assert not ANSI.search(text)
    assert "-Infinity" in text and "warning" in text


# -- no tracebacks, quiet broken pipes --------------------------------------------------------

def test_broken_pipe_is_quiet():
    text = ("x+" * 100_000 + "x").encode()  # about 10 MB of JSON
    proc = subprocess.Popen(gradcli_cmd() + ["eval", "-", "--at", "x=1", "--json"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env(), cwd=ROOT)
    proc.stdin.write(text)
    proc.stdin.close()
    head = proc.stdout.read(20)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert head.startswith(b'{"schema_version"')
    assert b"Traceback" not in err
    assert proc.returncode in (0, 141, -13)  # 0 when handled; SIGPIPE otherwise


# -- import budgets ---------------------------------------------------------------------------

def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nsys.stderr.write('\\nMODULES=' + " \
                   "json.dumps(sorted(sys.modules)) + '\\n')\n"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, env=clean_env(),
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    line = [ln for ln in p.stderr.decode().splitlines() if ln.startswith("MODULES=")][-1]
    return set(json.loads(line[len("MODULES="):]))


def _top(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


def test_core_imports_neither_rich_nor_typer():
    mods = _top(_modules_after(
        "import gradcli.api, gradcli.result, gradcli.engine, gradcli.parse, gradcli.ops, "
        "gradcli.tape, "
        "gradcli.points, gradcli.render.jsonout\n"
        "from gradcli import evaluate\n"
        "r = evaluate('(x+y)*z', at={'x': -2, 'y': 5, 'z': -4})\n"
        "assert r.value == -12.0\n"
        "r.to_json()\n"))
    assert "gradcli" in mods and "numpy" in mods
    assert "rich" not in mods
    assert "typer" not in mods
    assert "click" not in mods


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["eval", "--help"]])
def test_version_and_help_import_neither_numpy_nor_lark(argv):
    mods = _top(_modules_after(
        "import sys\n"
        "from gradcli.cli import main\n"
        f"code = main({argv!r})\n"
        "assert code == 0, code\n"))
    assert "typer" in mods  # the probe really ran the CLI
    assert "numpy" not in mods
    assert "lark" not in mods


def test_version_importtime_has_no_numpy_or_lark():
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradcli", "--version"],
                       capture_output=True, env=clean_env(), cwd=ROOT, timeout=60)
    assert p.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in p.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "gradcli" in imported
    assert "numpy" not in imported and "lark" not in imported


@pytest.mark.parametrize("formula, at, value", [
    ("-w + w^2", "w=3", 6.0),   # -w is also --wrt's short option
    ("-a*b", "a=1,b=2", -2.0),  # -a is also --at's
    ("-f(x)", None, None),      # -f is --format's: an unknown function, not an option
])
def test_formula_starting_like_a_short_option(formula, at, value):
    args = ["eval", formula] + (["--at", at] if at else []) + ["--json"]
    r = runner.invoke(app, args)
    if value is None:
        assert r.exit_code == 2 and "unknown function f()" in r.stderr
    else:
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["value"] == value


def test_short_options_with_attached_values_still_work():
    r = runner.invoke(app, ["eval", "-ax=1,y=2", "-wx", "x*y", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["gradient"] == {"x": 2.0}


# -- one loader: the API and the CLI read a formula the same way (gradcli/session.py) ----------

AT_LINES = "# at: x=3, y=2\nq = x * y\nf = q + x\n"


def test_api_reads_the_formulas_at_lines_as_the_cli_does():
    from gradcli import evaluate

    r = evaluate(AT_LINES)
    assert r.value == 9.0 and r.gradient == {"x": 3.0, "y": 3.0}
    doc = json.loads(ok("eval", "-", "--json", input=AT_LINES).stdout)
    assert doc["value"] == r.value and doc["gradient"] == r.gradient


def test_api_at_wins_over_the_at_lines():
    from gradcli import evaluate

    r = evaluate(AT_LINES, at={"y": 10})
    assert r.value == 33.0 and r.gradient == {"x": 11.0, "y": 3.0}
    doc = json.loads(ok("eval", "-", "--at", "y=10", "--json", input=AT_LINES).stdout)
    assert doc["value"] == r.value


def test_session_load_is_the_one_loader():
    from gradcli.errors import InputError
    from gradcli.session import load

    s = load(AT_LINES, ["y=1"], wrt=["y"])
    assert s.point["x"] == 3.0 and s.point["y"] == 1.0 and s.wrt == ["y"]
    assert len(s.tape) == 4
    with pytest.raises(InputError, match="more than --max-nodes 3"):
        load(AT_LINES, max_nodes=3)
    with pytest.raises(InputError, match="q is an intermediate"):
        load(AT_LINES, wrt=["q"])


@pytest.mark.parametrize("command", [["eval"], ["check"], ["graph"], ["descend", "--steps", "1"]])
def test_wrt_errors_read_the_same_in_every_command(command):
    r = run(command[0], "q = x * y; f = q + x", "--at", "x=1,y=2", "--wrt", "q", *command[1:])
    assert r.exit_code == 2 and "--wrt q: q is an intermediate, not an input" in r.stderr
    r = run(command[0], "x * y", "--at", "x=1,y=2", "--wrt", "z", *command[1:])
    assert r.exit_code == 2
    assert "--wrt z: the formula has no variable z (its variables: x, y)" in r.stderr


# -- the end of the process (cli.console / cli.leave) ---------------------------------------------

LEAVE = """
import atexit, os, sys, threading, time
from gradcli import commands
real_exit = os._exit

def spy(code):  # what is kept when the process ends at once
    sys.stdout.write("\\nSPARE " + str(len(commands.SPARE)) + " EXIT " + str(code) + "\\n")
    sys.stdout.flush()
    real_exit(code)

os._exit = spy
atexit.register(lambda: sys.stdout.write("\\nATEXIT\\n"))
if "--thread" in sys.argv:
    sys.argv.remove("--thread")

    def late():
        time.sleep(0.3)
        sys.stdout.write("\\nTHREAD\\n")

    threading.Thread(target=late).start()  # not a daemon: Python waits for it
from gradcli.cli import console
console()
"""


def _leave(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LEAVE, *argv], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, timeout=60)


@pytest.mark.parametrize("argv, code, kept", [
    (["eval", "x*y", "--at", "x=1,y=2", "--json"], 0, 1),  # quick.py's: its document's maker
    (["eval", "x*y", "--at", "x=1,y=2", "--json", "--mode", "reverse"], 0, 3),  # the app's: +
    (["eval", "x*", "--json"], 2, 1),  # the session and the result of the eval command
    (["check", "x*y", "--at", "x=1,y=2", "--expect", "x=3"], 1, 1),
])
def test_the_process_ends_at_once_after_atexit_with_what_the_command_made(argv, code, kept):
    """console() ends the process with os._exit after the atexit functions ran and the output
    was flushed, keeping what eval made to the end (so it is never taken apart)."""
    p = _leave(*argv)
    assert p.returncode == code, p.stderr
    assert p.stdout.index("\nATEXIT\n") < p.stdout.index(f"\nSPARE {kept} EXIT {code}\n")
    if code == 0 and argv[0] == "eval":
        assert json.loads(p.stdout.split("\nATEXIT")[0])["value"] == 2.0


def test_a_thread_still_running_gets_the_normal_exit():
    p = _leave("eval", "x*y", "--at", "x=1,y=2", "--json", "--thread")
    assert p.returncode == 0, p.stderr
    assert "\nTHREAD\n" in p.stdout and "SPARE" not in p.stdout  # waited for; sys.exit


def test_in_process_callers_keep_nothing():
    """cli.main alone (tests, other callers): nothing is kept, each result freed as before."""
    from gradcli import cli, commands

    assert cli.main(["eval", "x*y", "--at", "x=1,y=2", "--json"]) == 0
    assert commands.SPARE is None


BLAS_ENV = """
import os, sys
sys.argv[0] = sys.argv[1]  # as the console script or `python -m gradcli` would name itself
if sys.argv[2] == "numpy first":
    import numpy
import gradcli
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
"""


@pytest.mark.parametrize("argv0, first, preset, want", [
    ("/venv/bin/gradcli", "", None, "20"),  # the command, numpy not loaded yet: set
    ("-m", "", None, "20"),
    ("/venv/bin/gradcli", "", "7", "7"),  # the user's own setting stays
    ("/venv/bin/gradcli", "numpy first", None, "None"),  # too late to matter: left alone
    ("-c", "", None, "None"),  # imported as a library: the process is the user's
    ("script.py", "", None, "None"),
])
def test_the_command_lets_blas_threads_sleep(argv0, first, preset, want):
    """The gradcli command sets OPENBLAS_THREAD_TIMEOUT for its own process (lanes.py's doc);
    nothing else does."""
    env = {k: v for k, v in clean_env().items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    p = subprocess.run([sys.executable, "-c", BLAS_ENV, argv0, first], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == want


def test_the_command_sets_it_before_numpy_loads():
    """`python -m gradcli` with a matrix product: the package (which sets the variable) is
    imported in full before numpy (-X importtime lists an import when it ends, inner ones
    first: numpy imported by gradcli/__init__.py would come before it)."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradcli", "eval", "sum(X @ W)",
                        "--at", "X=[[1,2],[3,4]],W=[[1],[1]]", "--json"], capture_output=True,
                       text=True, env=clean_env(), cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["value"] == 10.0
    order = [line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines()
             if line.startswith("import time:")]
    assert order.index("gradcli") < order.index("numpy")
