"""Errors on the command line (contract §5): exit 2, a message on stderr, never a traceback.

Syntax errors echo the formula with a caret under the offending column and say, in words, what
was expected; Lark's terminal names (LPAR, NAME, $END, ...) never reach the user.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import runner

from gradcli.cli import app

ROOT = Path(__file__).resolve().parent.parent

TERMINAL_NAMES = re.compile(
    r"\b(LPAR|RPAR|NAME|NUMBER|COMMA|ASSIGN|PLUS|MINUS|STAR|SLASH|POW|_SEP|COMMENT)\b|\$END")


def fails(*args: str, input: str | bytes | None = None, code: int = 2) -> str:
    """Run the app; check the error discipline; return stderr."""
    r = runner.invoke(app, list(args), input=input)
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert r.stdout == "", "errors go to stderr only"
    err = r.stderr
    assert err.strip(), "an error message on stderr"
    assert "Traceback" not in err
    for line in err.splitlines():
        assert not TERMINAL_NAMES.search(line), f"grammar terminal name in: {line!r}"
    return err


def caret(err: str) -> tuple[str, int]:
    """The echoed formula line and the caret's column in it (both as printed)."""
    lines = err.splitlines()
    for k in range(1, len(lines)):
        if lines[k].strip() == "^":
            return lines[k - 1], lines[k].index("^")
    raise AssertionError(f"no caret line in:\n{err}")


def under(err: str) -> str:
    """The character of the echoed formula that the caret points at ('' past the end)."""
    line, col = caret(err)
    return line[col] if col < len(line) else ""


def gradcli_cmd() -> list[str]:
    exe = shutil.which("gradcli")
    return [exe] if exe else [sys.executable, "-m", "gradcli"]


def sub(args: list[str], input: bytes | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(gradcli_cmd() + args, input=input, capture_output=True, env=env,
                          cwd=ROOT, timeout=120)


# -- syntax errors with a caret ---------------------------------------------------------------

def test_operator_where_an_operand_belongs():
    err = fails("eval", "(x+*y", "--at", "x=1,y=2")
    line, col = caret(err)
    assert line.strip() == "(x+*y"
    assert col == line.index("*")
    assert "'*'" in err and "expected" in err
    assert "column 4" in err


def test_unclosed_parenthesis_caret_at_end():
    err = fails("eval", "sin(x", "--at", "x=1")
    line, col = caret(err)
    assert line.strip() == "sin(x"
    assert col == len(line)  # just past the last character
    assert "expected ')'" in err


def test_unclosed_parenthesis_points_back_to_the_open_one():
    err = fails("eval", "(x + (y * 2)", "--at", "x=1,y=2")
    assert "expected ')'" in err
    assert "column 1" in err  # the '(' that is still open


def test_unmatched_closing_parenthesis():
    err = fails("eval", "x)", "--at", "x=1")
    line, col = caret(err)
    assert line.strip() == "x)" and under(err) == ")"
    assert "')'" in err


def test_implicit_multiplication_hints_at_star():
    # BUG (gradcli.parse._syntax_error): Lark 1.3's UnexpectedToken has token_history=None for
    # LALR, so the "write '*' between factors" hint is never given.
    err = fails("eval", "2x", "--at", "x=1")
    assert under(err) == "x"
    assert "*" in err, "a hint to write '*' (as in 2*x)"


def test_implicit_multiplication_of_parentheses_hints_at_star():
    err = fails("eval", "(x+1)(x-1)", "--at", "x=1")
    assert under(err) == "("
    assert "*" in err, "a hint to write '*' between factors"


def test_unexpected_character():
    err = fails("eval", "x $ y", "--at", "x=1,y=2")
    assert under(err) == "$"
    assert "'$'" in err


def test_misplaced_assignment():
    err = fails("eval", "x = 1 = 2")
    assert under(err) == "="
    assert "'='" in err


def test_error_on_line_two_reports_line_two():
    text = "q = x + 1\nf = q * * 2\n"
    err = fails("eval", text, "--at", "x=1")
    assert "line 2" in err
    line, col = caret(err)
    assert line.strip() == "f = q * * 2"
    assert col == line.index("* 2")


def test_error_on_line_two_of_stdin_and_file(tmp_path):
    text = "# header\nq = x + 1 +* 2\nf = q * 2\n"
    err = fails("eval", "-", "--at", "x=1", input=text)
    assert "line 2" in err
    assert under(err) == "*"
    text = "q = x + 1\nf = (q * 2\n"
    err = fails("eval", "-", "--at", "x=1", input=text)
    assert "line 2" in err and "expected ')'" in err
    f = tmp_path / "bad.grad"
    f.write_text("q = x + 1\nf = q +* 2\n", encoding="utf-8")
    err = fails("eval", str(f), "--at", "x=1")
    assert "line 2" in err
    assert under(err) == "*"


def test_unnamed_statement_before_the_last():
    err = fails("eval", "x + 1; y = x * 2", "--at", "x=1")
    assert "name" in err


def test_assigning_a_constant_is_an_error():
    assert "constant" in fails("eval", "pi = 3; pi * 2")


def test_a_function_name_may_name_an_intermediate():
    # CS231n's neuron calls its intermediate `dot`, which is also a function: calls keep their
    # parentheses, so both can live side by side.
    from gradcli import evaluate

    r = evaluate("exp = 3 * x; exp(exp) + exp", at={"x": 1})
    assert r.value == pytest.approx(math.exp(3) + 3)
    assert r.gradient["x"] == pytest.approx(3 * math.exp(3) + 3)


def test_name_assigned_twice():
    assert "twice" in fails("eval", "q = x; q = x * 2; q", "--at", "x=1")


def test_function_name_without_call():
    assert "parentheses" in fails("eval", "exp + 1")


def test_caret_on_a_long_line_is_windowed():
    text = "x + " * 5000 + "* 2"
    err = fails("eval", text, "--at", "x=1")
    assert len(err) < 2000
    line, col = caret(err)
    assert line[col] == "*"


# -- names and calls --------------------------------------------------------------------------

def test_unknown_function_lists_the_functions():
    err = fails("eval", "foo(x)", "--at", "x=1")
    assert "unknown function foo" in err
    assert under(err) == "f"
    assert "sigmoid" in err  # the list of functions


def test_unknown_function_did_you_mean():
    err = fails("eval", "sigmod(x)", "--at", "x=1")
    assert "unknown function sigmod" in err
    assert "did you mean sigmoid" in err


def test_wrong_arity():
    err = fails("eval", "exp(x, y)", "--at", "x=1,y=2")
    assert "exp" in err and "1 argument" in err and "2" in err
    err = fails("eval", "pow(x)", "--at", "x=1")
    assert "2 arguments" in err
    err = fails("eval", "exp()")
    assert "exp" in err and "none" in err


def test_missing_variable_is_named():
    err = fails("eval", "x*y", "--at", "x=1")
    assert "variable y" in err and "--at y=" in err
    err = fails("eval", "x*y + z")
    assert all(n in err for n in ("x", "y", "z"))


def test_missing_variables_message_stays_short():
    # BUG (gradcli.engine.forward): every missing name is listed, so 2000 missing variables
    # give a ~20 KB one-line error (a 20 000-variable formula gives ~350 KB).
    text = "+".join(f"x{k}" for k in range(2000))
    err = fails("eval", text, "--at", "x0=1")
    assert "x1" in err
    assert len(err) < 2000, f"{len(err)} characters of error message"


# -- --at and --wrt ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "spec, words",
    [
        ("x=abc", ["x", "abc", "not a number"]),
        ("x=", ["x", "no value"]),
        ("x", ["x", "'='"]),
        ("1x=2", ["1x", "not a variable name"]),
        ("x=1,x=2", ["x", "twice"]),
        ("", ["empty"]),
        ("x=1/0", ["division by zero"]),
        ("x=[1,[2]]", ["x", "different lengths"]),
    ],
)
def test_malformed_at(spec, words):
    err = fails("eval", "x", "--at", spec)
    for w in words:
        assert w in err, (w, err)
    assert err.startswith("gradcli: error:")


def test_at_given_twice_across_flags():
    err = fails("eval", "x", "--at", "x=1", "--at", "x=2")
    assert "twice" in err


def test_wrt_unknown_name():
    err = fails("eval", "x*y", "--at", "x=1,y=2", "--wrt", "q")
    assert "--wrt q" in err and "x, y" in err


def test_wrt_an_intermediate():
    err = fails("eval", "q = x + y; f = q * 2", "--at", "x=1,y=2", "--wrt", "q")
    assert "intermediate" in err


def test_wrt_empty():
    err = fails("eval", "x*y", "--at", "x=1,y=2", "--wrt", ",")
    assert "--wrt" in err


# -- empty, missing and unreadable input ------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "# only a comment", "\n\n", ";"])
def test_empty_formula(text):
    err = fails("eval", text)
    assert "empty" in err


def test_empty_stdin():
    assert "empty" in fails("eval", "-", input="")


def test_nonexistent_grad_file():
    err = fails("eval", "something.grad", "--at", "x=1")
    assert "something.grad" in err and "no such file" in err


def test_invalid_utf8_on_stdin():
    err = fails("eval", "-", "--at", "x=1", input=b"x + \xff\xfe")
    assert "UTF-8" in err and "standard input" in err


def test_nul_byte_on_stdin():
    err = fails("eval", "-", "--at", "x=1,y=2", input=b"x +\x00 y")
    assert "NUL" in err


def test_invalid_utf8_and_nul_in_a_file(tmp_path):
    f = tmp_path / "bad.grad"
    f.write_bytes(b"x * \xc3\x28")
    assert "UTF-8" in fails("eval", str(f), "--at", "x=1")
    f.write_bytes(b"x *\x00 2")
    assert "NUL" in fails("eval", str(f), "--at", "x=1")


def test_control_characters_are_escaped_in_the_echo():
    err = fails("eval", "x +\x07 1", "--at", "x=1")
    assert "\x07" not in err


# -- usage errors -----------------------------------------------------------------------------

def test_eval_without_formula():
    r = runner.invoke(app, ["eval"])
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr


def test_unknown_command():
    r = runner.invoke(app, ["evaluate", "x"])
    assert r.exit_code == 2
    assert "evaluate" in r.stderr and "Traceback" not in r.stderr


def test_bad_format_choice():
    r = runner.invoke(app, ["eval", "x", "--at", "x=1", "--format", "xml"])
    assert r.exit_code == 2
    assert "xml" in r.stderr


def test_misspelt_option_is_reported_as_an_option():
    # BUG (gradcli.cli._move_dash_formula): an unknown '--option' is taken for a formula that
    # starts with '-', so Click says "Got unexpected extra argument(s) (--jsn)" instead of
    # "No such option: --jsn" (and its "Did you mean --json?").
    r = runner.invoke(app, ["eval", "x", "--at", "x=1", "--jsn"])
    assert r.exit_code == 2
    assert "--jsn" in r.stderr
    assert "no such option" in r.stderr.lower()


# -- the real program: exit codes and no tracebacks -------------------------------------------

@pytest.mark.parametrize(
    "args, stdin",
    [
        (["eval", "(x+*y", "--at", "x=1,y=2"], None),
        (["eval", "sigmod(x)", "--at", "x=1"], None),
        (["eval", "x*y", "--at", "x=1"], None),
        (["eval", "x", "--at", "x=abc"], None),
        (["eval", "nothing-here.grad"], None),
        (["eval", "-", "--at", "x=1"], b"x\xff"),
        (["eval", "-", "--at", "x=1"], b"x\x00"),
        (["eval", "-", "--at", "x=1"], b"q = x\nf = q +\n"),
        (["eval", "x", "--at", "x=1", "--digits", "0"], None),
        (["eval", "x", "--wrt", "y", "--at", "x=1"], None),
    ],
)
def test_subprocess_exit_2_without_traceback(args, stdin):
    p = sub(args, input=stdin)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == b""
    err = p.stderr.decode("utf-8")
    assert err.strip() and "Traceback" not in err
    for line in err.splitlines():
        assert not TERMINAL_NAMES.search(line), line
