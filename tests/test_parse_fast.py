"""The parser's fast path (a regex tokenizer and a lean driver over Lark's LALR tables, shipped
in the package) must build exactly what Lark's own parser builds, and accept exactly what Lark
accepts."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli.parse as P
from gradcli.errors import GradcliError

EXAMPLES = int(os.environ.get("GRADCLI_HYPOTHESIS_EXAMPLES", "400"))
PIECES = ["x", "y", "q", "θ", "2", "0.5", ".5", "1e3", "2.", "2.T", "e", "pi", "+", "-", "*", "/",
          "^", "**", "@", "(", ")", "[", "]", ",", ";", "\n", " ", "=", ".T", "# c\n", "exp(",
          "max(", "sum(", "sin(", "atan2(", "$", "\t", "\r\n", "1e", "x1"]


def _run(text: str, fast: bool):
    """(ops, inputs, spans, names, outputs) or the error text, by one path only."""
    multiline = "\n" in text or "\r" in text
    P._BUILDER.reset(text)
    try:
        if fast:
            if not P._fast(multiline).parse(text, P._BUILDER):
                return "fallback"
        else:
            P._parser(multiline).parse(text)
        tape = P._BUILDER.tape
        P._finish(tape)
        return ([op.name for op in tape.ops], tape.inputs, tape.starts, tape.ends, tape.names,
                tape.outputs, {k: repr(v) for k, v in tape.literals.items()})
    except GradcliError as exc:
        return "error: " + exc.message
    except Exception as exc:  # Lark's syntax errors
        return "lark: " + type(exc).__name__
    finally:
        P._BUILDER.reset("")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_fast_path_agrees_with_lark(text):
    fast, slow = _run(text, True), _run(text, False)
    if fast == "fallback":
        assert slow != "ok"  # the fast path only gives up where Lark does too
        assert isinstance(slow, str), (text, slow)
    else:
        assert fast == slow, text


@pytest.mark.parametrize("text", [
    "(x+y)*z", "q = x + y\nf = (q\n* z)", "-x^2 + 2^-1", "a.T @ b", "[x, 2*x]", "[[1, 2], [3, 4]]",
    "x # comment\n", "max(x, y, 2)", "θ*η", "a = 1;; b = a*x\r\nb",
])
def test_known_formulas_take_the_fast_path(text):
    fast = _run(text, True)
    assert fast != "fallback" and fast == _run(text, False)


def test_a_formula_that_parses_never_imports_lark(tmp_path):
    """The shipped tables are enough: a run that parses needs no Lark (cold start), the first
    run as every later one."""
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = ("import sys; from gradcli.parse import parse; parse('(x+y)*z'); "
            "print('lark' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.stdout.strip() == "False", first.stderr  # nothing to compile: they ship
    assert second.stdout.strip() == "False", second.stderr
    bad = ("import sys; from gradcli.parse import parse\ntry: parse('(x+*y')\n"
           "except Exception as e: print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", bad], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ParseError"  # errors still come from Lark, worded as ever


def test_no_cache_folder_is_read_or_written(tmp_path):
    """The tables ship in the package: a run (valid formula or syntax error) leaves the cache
    folder as it found it (tests/test_security.py plants hostile files there)."""
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = ("from gradcli.parse import parse; print(len(parse('(x+y)*z')[0]))\n"
            "try: parse('(x+*y')\nexcept Exception as e: print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["5", "ParseError"], out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_fast_path_and_the_error_wording_do_not_import_the_parser():
    """parse imports lalr_fast and syntax_errors, never the other way round (no cycles)."""
    import subprocess
    import sys

    code = ("import sys, gradcli.lalr_fast, gradcli.syntax_errors; "
            "print('gradcli.parse' in sys.modules, 'lark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_syntax_errors_are_worded_by_syntax_errors():
    import sys

    with pytest.raises(GradcliError, match=r"unexpected '\*'; expected"):
        P.parse("(x+*y")
    assert "gradcli.syntax_errors" in sys.modules  # loaded when a formula fails, not before
