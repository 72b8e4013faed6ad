"""Cold start (issue 17.1): a scalar formula is parsed, evaluated and printed as JSON without
importing numpy or Rich, and what it prints is what the engine's path prints.

- `gradcli eval samples/neuron.grad --at ... --json`, as a whole process, imports neither numpy
  nor rich (nor lark: the shipped LALR tables do the parsing).
- ops.py is importable without numpy: the ops' numpy rules (rules.py) are bound on first need,
  and no code path sees an op without them.
- Differential: `eval --json` through the numpy-free path (result.run(..., floats=True)) against
  the engine's path (floats=False), on varied scalar formulas and points, with NaN, Infinity,
  poles, kinks and overflows (which fall back to the engine): the same document and warnings.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradcli import ops, rules
from gradcli.render.jsonout import eval_json
from gradcli.result import run_session
from gradcli.session import load

from fresh_process import cli_modules

ROOT = Path(__file__).resolve().parent.parent
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"

def fast_run(s):
    """result.run's numpy-free path for a loaded session: in a process that has numpy already,
    a tape is compiled at its COMPILE_AT-th use (result.py), so it is run that often."""
    from gradcli import result

    r = None
    for _ in range(getattr(result, "COMPILE_AT", 1)):
        r = run_session(s, floats=True)
    return r


def engine_json(text: str, at: list[str], wrt=None) -> tuple[str, list[str]]:
    """eval --json's document and warnings through the engine's sweeps (the reference)."""
    r = run_session(load(text, at, wrt=wrt), floats=False)
    return eval_json(r) + "\n", list(r.warnings)


def test_eval_json_of_the_neuron_imports_no_numpy_and_no_rich():
    stdout, loaded, code = cli_modules("eval", "samples/neuron.grad", "--at", NEURON_AT, "--json")
    assert code == 0
    assert loaded == [], loaded
    text = (ROOT / "samples" / "neuron.grad").read_text()
    assert stdout == engine_json(text, [NEURON_AT])[0]
    assert json.loads(stdout)["value"] == 0.7310585786300049


def test_the_same_command_with_a_warning_falls_back_and_says_so():
    """1/0 cannot be promised by floats: the engine (numpy) runs, and its warning is printed."""
    out = subprocess.run([sys.executable, "-m", "gradcli", "eval", "x/y", "--at", "x=1,y=0",
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    doc, warnings = engine_json("x/y", ["x=1,y=0"])
    assert out.stdout == doc and warnings and json.loads(doc)["value"] == "Infinity"
    assert all(w in out.stderr for w in warnings)
    _, loaded, _ = cli_modules("eval", "x/y", "--at", "x=1,y=0", "--json")
    assert "numpy" in loaded  # (warnings are written by Rich: render/console.warn)


def test_the_table_still_uses_rich_and_json_errors_need_neither():
    _, loaded, code = cli_modules("eval", "(x+y)*z", "--at", "x=-2,y=5,z=-4")
    assert code == 0 and "rich" in loaded
    stdout, loaded, code = cli_modules("eval", "(x+", "--json")
    assert code == 2 and json.loads(stdout)["error"]["kind"] == "syntax"
    assert "numpy" not in loaded and "rich" not in loaded


# -- ops without numpy -----------------------------------------------------------------------

PROBE = """
import sys
import gradcli.ops as ops
before = ("numpy" in sys.modules, ops.installed())
unbound = []
for op in ops.OPS.values():
    if op.arity:
        try:
            object.__getattribute__(op, "value")
        except AttributeError:
            unbound.append(op.name)
{action}
print(before, len(unbound), ops.installed(), "numpy" in sys.modules)
"""


def probe(action: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(action=action)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")[0]


def test_ops_import_without_numpy_and_the_first_read_of_a_rule_installs_them():
    n = sum(1 for op in ops.OPS.values() if op.arity)
    assert probe("pass") == f"(False, False) {n} False False"
    for field in ops.RULE_FIELDS:  # any rule field of any op, read first, binds them all
        assert probe(f"ops.OPS['sin'].{field}") == f"(False, False) {n} True True", field
    assert probe("ops.OPS['matmul'].elementwise") == f"(False, False) {n} True True"
    assert probe("from gradcli.ops import ONE") == f"(False, False) {n} True True"
    assert probe("import dataclasses; dataclasses.replace(ops.OPS['tanh'])") \
        == f"(False, False) {n} True True"


def test_every_rule_is_the_one_in_rules_py():
    ops.install()
    for name, op in ops.OPS.items():
        table = rules.RULES.get(name, {})
        for field in ops.RULE_FIELDS:
            assert getattr(op, field) is table.get(field), (name, field)
        if op.arity:
            assert op.partials is not None or op.vjp is not None, name
        assert type(op) is ops.Op, name  # bound: no __getattr__ in the engine's hot path
    assert set(rules.RULES) == {n for n, op in ops.OPS.items() if op.arity}


def test_threads_that_read_rules_at_once_all_get_them():
    code = ("import threading\n"
            "names = [n for n, op in ops.OPS.items() if op.arity]\n"
            "got = []\n"
            "def read(n):\n"
            "    op = ops.OPS[n]\n"
            "    got.append((op.partials, op.vjp, op.value) != (None, None, None))\n"
            "ts = [threading.Thread(target=read, args=(n,)) for n in names]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "assert len(got) == len(names) and all(got), got")
    n = sum(1 for op in ops.OPS.values() if op.arity)
    assert probe(code) == f"(False, False) {n} True True"


def _reads_rules(source: str) -> bool:
    return bool(re.search(r"(\bop|ops\[\w+\]|OPS\[[^]]+\]|lookup\([^)]*\))\."
                          r"(value|partials|vjp|jvp|kink|subgradient|partial_each|elementwise)\b",
                          source))


def test_every_numpy_module_that_reads_rules_installs_them_when_it_is_imported():
    """engine, symbolic, batch, check/*: importing one binds the rules (a module that reads
    them without numpy of its own gets them on its first read: the test above)."""
    found = []
    for path in sorted((ROOT / "gradcli").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name in ("ops.py", "rules.py") or not _reads_rules(source):
            continue
        if not re.search(r"^import numpy", source, re.MULTILINE):
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found.append(module)
        assert probe(f"import {module}").endswith("True True"), module
    assert {"gradcli.engine", "gradcli.batch"} <= set(found), found  # symbolic: numpy-free


def test_the_float_paths_keep_consts_as_python_floats():
    from gradcli.parse import parse

    tape, _ = parse("2*x + pi - 1e400")
    assert all(type(v) is float for v in tape.consts.values())
    lits = tape.literals  # the numpy sweeps' view: float64 (converted once, in place)
    assert all(type(v).__name__ == "float64" for v in lits.values())
    assert tape.consts is lits and math.isinf(lits[max(lits)])


# -- the numpy-free path against the engine ------------------------------------------------

#: Formulas whose every operation is exact in IEEE arithmetic (+ - * /, negation, sqrt, powers,
#: relu, abs, max/min): numpy and Python floats give the same bits, so the documents must be equal.
EXACT_CASES = [
    ("(x+y)*z", "x=-2,y=5,z=-4"),
    ("q = x + y; f = q * z", "x=-2,y=5,z=-4"),
    ("x*x + x/y - y^3", "x=0.1,y=-7.25"),
    ("# comment\na = x - y\nb = a * a\nb / 3 + sqrt(x)", "x=2,y=1/3"),
    ("x^0.5 + y^-2 + (x*y)^3", "x=3,y=0.7"),
    ("relu(x - 1) + abs(y) + max(x, y) + min(x, 2*y)", "x=3,y=-0.5"),
    ("-x^2 + pi*x - e", "x=1.5"),
    ("x + 1e400", "x=1"),  # a parse warning: the number is Infinity
    ("x * y", "x=1,y=2,z=3"),  # a value nobody uses: a warning
    ("x / y", "x=1,y=0"),  # a pole: the engine's turn, with its warning
    ("x / y", "x=0,y=0"),  # NaN
    ("sqrt(x)", "x=-1"),  # NaN outside the domain
    ("sqrt(x)", "x=0"),  # an infinite slope
    ("relu(x)", "x=0"),  # a kink
    ("abs(x) + max(x, y)", "x=0,y=0"),  # kinks, a tie
    ("x^y", "x=-8,y=0.3333"),  # a negative base
    ("x^-1", "x=0"),
    ("x*y", "x=inf,y=0"),
    ("x + y", "x=nan,y=1"),
    ("x*x*x*x", "x=1e200"),  # an overflow
    ("x - x", "x=-0.0"),
]

#: Formulas with exp, log, sin, tanh, ...: numpy's SIMD versions may differ from libm's in the
#: last bit (on this machine exp does on ~4% of inputs), so these agree to 1e-12 in every number,
#: and exactly in everything else.
CLOSE_CASES = [
    ("dot = w0*x0 + w1*x1 + w2\nf = 1 / (1 + exp(-dot))", NEURON_AT),
    ("sin(x)*cos(y) + tanh(x*y) + log(1 + y^2)", "x=0.3,y=-1.2"),
    ("sigmoid(x) + softplus(y) + atan(x/y)", "x=2,y=3"),
    ("log(x)", "x=0"),  # a pole: -Infinity
    ("log(x)", "x=-1"),  # NaN
    ("exp(x)", "x=1000"),  # overflow
    ("tan(x) + asin(y)", "x=1,y=1"),
]


@pytest.mark.parametrize("text,at", EXACT_CASES)
def test_floats_and_engine_print_the_same_bytes(text, at):
    s = load(text, [at])
    fast = fast_run(s)
    assert (eval_json(fast) + "\n", list(fast.warnings)) == engine_json(text, [at])


def _numbers_close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_numbers_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_numbers_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    return a == b


@pytest.mark.parametrize("text,at", CLOSE_CASES)
def test_floats_and_engine_agree_with_transcendental_functions(text, at):
    fast = fast_run(load(text, [at]))
    doc, warnings = engine_json(text, [at])
    assert list(fast.warnings) == warnings
    assert _numbers_close(json.loads(eval_json(fast)), json.loads(doc))


def test_the_neuron_at_the_benchmark_point_is_byte_identical():
    text = (ROOT / "samples" / "neuron.grad").read_text()
    fast = fast_run(load(text, [NEURON_AT]))
    assert fast.values and all(type(v) is float for v in fast.values)  # the float path ran
    assert eval_json(fast) + "\n" == engine_json(text, [NEURON_AT])[0]


def _random_formula(rng: random.Random) -> str:
    leaves = [rng.choice("xyz") if rng.random() < 0.7 else repr(rng.choice([0.5, 2.0, 3.0, -1.0]))
              for _ in range(8)]
    while len(leaves) > 1:
        nxt = []
        for a, b in zip(leaves[::2], leaves[1::2]):
            r = rng.random()
            if r < 0.15:
                nxt.append(rng.choice(["-({})", "relu({})", "abs({})", "sqrt({})"]).format(a))
            elif r < 0.25:
                nxt.append(f"({a})^{rng.choice(['2', '3', '-1', '0.5'])}")
            elif r < 0.35:
                nxt.append(f"max({a}, {b})")
            else:
                nxt.append(f"({a}) {rng.choice('+-*/')} ({b})")
        leaves = nxt
    return leaves[0]


@pytest.mark.parametrize("seed", range(40))
def test_random_exact_formulas_print_the_same_bytes(seed):
    rng = random.Random(seed)
    text = _random_formula(rng)
    values = [0.0, 1.0, -1.0, 2.5, -0.5, 1e-3, 3.0]
    at = ",".join(f"{v}={rng.choice(values)!r}" for v in "xyz")
    try:
        s = load(text, [at])
    except Exception as exc:  # noqa: BLE001 - a formula the generator got wrong: both refuse
        pytest.skip(f"{text}: {exc}")
    fast = fast_run(s)
    assert (eval_json(fast) + "\n", list(fast.warnings)) == engine_json(text, [at]), text


def test_the_float_path_is_really_taken():
    """The cases above compare two different computations (a test that cannot fail is none)."""
    taken = [text for text, at in EXACT_CASES + CLOSE_CASES
             if type(fast_run(load(text, [at])).values[-1]) is float]
    assert len(taken) >= 8, taken
    assert "x / y" not in taken and "relu(x)" not in taken  # warnings: always the engine


# -- the command lines run without Typer (commands/quick.py) against the Typer app ------------

QUICK = """
import sys
from gradcli.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\nTYPER " + str("typer" in sys.modules) + " EXIT " + str(code) + "\\n")
"""
APP = """
import sys
from gradcli.cliapp import run_app
from gradcli.render.console import ensure_stdio
ensure_stdio()
code = run_app(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("\\nTYPER " + str("typer" in sys.modules) + " EXIT " + str(code) + "\\n")
"""

COMMAND_LINES = [
    ["eval", "samples/neuron.grad", "--at", NEURON_AT, "--json"],
    ["eval", "--json", "samples/neuron.grad", f"--at={NEURON_AT}"],
    ["check", "samples/neuron.grad", "--at", NEURON_AT, "--json"],
    ["check", "samples/neuron.grad", "--json", "--at", "w0=2,x0=-1", "--at", "w1=-3,x1=-2,w2=-3",
     "--wrt", "w0,x1"],
    ["eval", "x/y", "--at", "x=1,y=0", "--json"],  # a pole: the engine, with its warning
    ["check", "x/y", "--at", "x=1,y=0", "--json"],  # undefined: the numpy check, exit 1
    ["check", "relu(x) + abs(y)", "--at", "x=0,y=0", "--json"],  # kinks
    ["check", "sqrt(x)*y", "--at", "x=2,y=3", "--json"],
    ["eval", "x*y", "--at", "x=1,y=2,z=3", "--json"],  # a warning on the float path
    ["eval", "x*y", "--at", "x=1,y=2", "--wrt", "x", "--json"],
    ["eval", "x*y", "--at", "x=1,y=2", "--wrt", "q", "--json"],  # bad --wrt: the app's error
    ["eval", "x*y", "--at", "x=1", "--json"],  # a missing value
    ["eval", "(x+", "--json"],  # a syntax error
    ["eval", "samples/nosuch.grad", "--json"],
    ["eval", "no/such/thing", "--json"],
    ["eval", "x*y", "--at", "x=1,y=", "--json"],
    ["eval", "sin(x)", "--at", "x=pi/2", "--json"],  # a constant expression (numpy)
    ["eval", "sum(w*x)", "--at", "w=[1,2],x=[3,4]", "--json"],  # tensors
    ["check", "x^3 - 2*x", "--at", "x=1.5", "--json", "--wrt=x"],
    ["diff", "samples/neuron.grad", "--at", NEURON_AT, "--json"],
    ["diff", "x^2*sin(y)", "--json", "--wrt", "y"],
    ["diff", "x/y", "--at", "x=1,y=0", "--json"],
    ["diff", "x", "--json", "--wrt", "z"],
    ["eval", "x", "--at", "x=1", "--json", "--json"],  # not quick's: the app's answer
    ["eval", "x", "--json", "--at"],  # a missing option value: Click's message
    ["eval", "x", "y", "--json"],  # an extra argument
    ["eval", "x", "--at", "x=1", "--jsn"],  # a misspelt option
]


def _run(program: str, argv: list[str]) -> tuple[str, str, bool, int]:
    out = subprocess.run([sys.executable, "-c", program, *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    m = re.search(r"\nTYPER (\w+) EXIT (\d+)\n$", out.stderr)
    assert m, out.stderr
    return out.stdout, out.stderr[: m.start()], m.group(1) == "True", int(m.group(2))


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a)[:60])
def test_quick_command_lines_print_what_the_app_prints(argv):
    quick = _run(QUICK, argv)
    app = _run(APP, argv)
    assert quick[0] == app[0] and quick[1] == app[1] and quick[3] == app[3]
    assert app[2]  # the app is Typer's


def test_the_plain_json_command_lines_really_skip_typer():
    for argv in COMMAND_LINES[:4] + [COMMAND_LINES[8]]:
        assert not _run(QUICK, argv)[2], argv
    for argv in COMMAND_LINES[-4:] + [COMMAND_LINES[10]]:
        assert _run(QUICK, argv)[2], argv  # declined, or failed before writing: the app ran


def test_quick_reads_only_its_own_command_lines():
    from gradcli.commands.quick import read_argv

    assert read_argv(["eval", "f", "--json", "--at", "x=1", "--wrt=x"]) == \
        ("eval", "f", ["x=1"], ["x"])
    assert read_argv(["check", "--at=x=1", "--at", "y=2", "f", "--json"]) == \
        ("check", "f", ["x=1", "y=2"], None)
    for argv in (["eval", "f"], ["eval", "f", "--at", "x=1"], ["graph", "f", "--json"],
                 ["eval", "-", "--json"], ["eval", "f", "--json", "-a", "x=1"],
                 ["eval", "f", "--json", "--format", "json"], ["eval", "--", "f", "--json"],
                 ["eval", "f", "--json", "--at", "-x"], ["eval", "f", "g", "--json"],
                 ["eval", "f", "--json", "--help"], ["--version"], []):
        assert read_argv(argv) is None, argv


def test_quick_uses_the_commands_own_defaults():
    import inspect

    from gradcli.check.report import DEFAULT_ATOL, MAX_ELEMENTS
    from gradcli.commands import check, diff
    from gradcli.commands import eval as eval_
    from gradcli.session import MAX_NODES

    e = inspect.signature(eval_.command).parameters
    assert (e["seed"].default, e["max_nodes"].default, e["mode"].default.value,
            e["subgradient"].default.value, e["exact"].default) == \
        (None, MAX_NODES, "reverse", "cs231n", False)
    c = inspect.signature(check.command).parameters
    assert (c["seed"].default, c["max_nodes"].default, c["atol"].default, c["rtol"].default,
            c["places"].default, c["max_elements"].default, c["subgradient"].default.value,
            c["exact"].default) == (None, MAX_NODES, DEFAULT_ATOL, None, None, MAX_ELEMENTS,
                                    "cs231n", False)
    d = inspect.signature(diff.command).parameters
    assert (d["seed"].default, d["max_nodes"].default, d["order"].default) == (None, MAX_NODES, 1)


# -- check's gradient check over floats (check/floats.py) against the numpy check ----------------

def _checks(text: str, at: str):
    """check --json's document both ways: (floats, numpy), or (None, numpy) if floats declined."""
    from gradcli import result
    from gradcli.check import floats, run_check
    from gradcli.check.report import Tolerance
    from gradcli.render.jsonout import check_json

    s = load(text, [at])
    tol = Tolerance(rounding=True)
    fast = None
    for _ in range(getattr(result, "COMPILE_AT", 1)):  # (compiled at its COMPILE_AT-th use)
        fast = floats.float_report(s, tol, s.wrt, "cs231n")
    plain = run_check(result.run(s.tape, dict(s.point), None, s.warnings), [], tol, s.wrt)
    return (None if fast is None else check_json(fast)), check_json(plain)


@pytest.mark.parametrize("text,at", [case for case in EXACT_CASES if "/" not in case[1]][:9])
def test_float_check_prints_the_numpy_checks_bytes(text, at):
    fast, plain = _checks(text, at)
    assert fast is None or fast == plain
    if text in ("(x+y)*z", "q = x + y; f = q * z", "x*x + x/y - y^3", "x^0.5 + y^-2 + (x*y)^3"):
        assert fast is not None  # the float check really ran (and so can fail)


@pytest.mark.parametrize("seed", range(12))
def test_float_check_of_random_exact_formulas_is_byte_identical(seed):
    rng = random.Random(100 + seed)
    text = _random_formula(rng)
    at = ",".join(f"{v}={rng.choice([1.0, -1.5, 2.25, 0.75, 3.0])!r}" for v in "xyz")
    try:
        fast, plain = _checks(text, at)
    except Exception as exc:  # noqa: BLE001 - a formula the generator got wrong
        pytest.skip(f"{text}: {exc}")
    assert fast is None or fast == plain, text


@pytest.mark.parametrize("text,at", CLOSE_CASES[:2] + [("exp(x*y) + tanh(y)*sin(x)",
                                                         "x=1.2,y=-0.7")])
def test_float_check_with_libm_functions_agrees_to_the_checks_noise(text, at):
    """exp, sin, tanh: libm's last bit may differ from numpy's (the analytic gradient within
    1e-12), and the central difference magnifies that by 1/h (~1e5): its last digits may differ
    (within 1e-9); the same statuses and everything else."""
    fast, plain = _checks(text, at)
    assert fast is not None
    a, b = json.loads(fast), json.loads(plain)
    assert [(v["name"], v["status"], v["ok"]) for v in a["variables"]] == \
        [(v["name"], v["status"], v["ok"]) for v in b["variables"]]
    for u, v in zip(a["variables"], b["variables"]):
        assert math.isclose(u["analytic"], v["analytic"], rel_tol=1e-12)
        assert math.isclose(u["numeric"], v["numeric"], rel_tol=1e-9, abs_tol=1e-12)
    assert {k: v for k, v in a.items() if k != "variables"} == \
        {k: v for k, v in b.items() if k != "variables"}


def test_float_check_leaves_anything_but_ok_to_numpy():
    for text, at in (("relu(x)", "x=0"), ("x/y", "x=1,y=0"), ("abs(x - 1)", "x=1"),
                     ("sqrt(x)", "x=0")):
        fast, plain = _checks(text, at)
        assert fast is None, text


def test_a_failure_while_writing_is_reported_as_the_app_reports_it(monkeypatch, capsys):
    """Out of memory while writing: the JSON error, one line, exit 2 (the app's guard), never a
    traceback; nothing quick.py writes goes unreported."""
    from gradcli import cli
    from gradcli.render import console

    def full(text):
        raise MemoryError

    monkeypatch.setattr(console, "write", full)
    code = cli.main(["eval", "x*y", "--at", "x=1,y=2", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["error"]["kind"] == "limit"
    assert err.strip() == "gradcli: error: out of memory: the formula or its output is too large " \
                          "for this machine"


def test_quick_eval_makes_its_document_as_it_writes_it(monkeypatch, capsys):
    """eval's document comes in pieces made as they are written (a 10^6-node one is never held
    whole); a failure while making one is reported as the app reports it, after what was
    written, as the app's eval does: the same bytes and exit code both ways."""
    from gradcli import cli
    from gradcli.cliapp import run_app
    from gradcli.commands.quick import prepare
    from gradcli.render import jsonnodes

    warnings, doc, code = prepare(["eval", "x*y", "--at", "x=1,y=2", "--json"])
    assert not isinstance(doc, str) and code == 0
    assert json.loads("".join(doc))["value"] == 2.0

    def full(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(jsonnodes, "join_nodes", full)
    argv = ["eval", "x*y", "--at", "x=1,y=2", "--json"]
    got = [(cli.main(argv), *capsys.readouterr())]
    got.append((run_app(argv), *capsys.readouterr()))
    assert got[0] == got[1]
    code, out, err = got[0]
    assert code == 2 and out.startswith('{"schema_version"') and '"kind": "limit"' in out
    assert err.strip().startswith("gradcli: error: out of memory")



def test_a_document_stopped_early_is_closed_so_its_child_ends(monkeypatch):
    """A closed pipe (or Ctrl-C) in the middle of eval's pieces closes their maker at once: its
    forked child is killed and reaped then (render/forked.py), not left running once the
    process ends (cli.leave keeps what the command made to the end, the maker included)."""
    from gradcli import cli
    from gradcli.render import console

    closed = []

    def pieces():
        try:
            yield "{"
            yield "}"
        finally:
            closed.append(True)

    def broken(text):
        raise BrokenPipeError

    monkeypatch.setattr(console, "write", broken)
    doc = pieces()  # held here, as main's kept result holds it: only closing it ends it
    with pytest.raises(BrokenPipeError):
        cli._write([], doc, 0)
    assert closed == [True]
