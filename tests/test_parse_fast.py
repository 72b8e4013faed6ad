"""The parser's fast path (a regex tokenizer and a lean driver over Lark's LALR tables) must
build exactly what Lark's own parser builds, and accept exactly what Lark accepts."""

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
    lark = P._parser("\n" in text or "\r" in text)
    P._BUILDER.reset(text)
    try:
        if fast:
            if not P._fast(lark).parse(text):
                return "fallback"
        else:
            lark.parse(text)
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
