"""gradcli.words: the plain-text helpers every layer shares."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from gradcli import words
from gradcli.render import text


def test_short_cuts_with_an_ellipsis():
    assert words.short("abc", 3) == "abc"
    assert words.short("abcd", 3) == "ab…"
    assert len(words.short("x" * 100)) == 40


def test_plural_and_count():
    assert words.plural(1, "variable") == "variable"
    assert words.plural(0, "variable") == "variables"
    assert words.count(2, "argument") == "2 arguments"
    assert words.count(1, "argument") == "1 argument"


@pytest.mark.parametrize("v,word", [(math.nan, "NaN"), (math.inf, "Infinity"),
                                    (-math.inf, "-Infinity"), (np.float64(2.5), "2.5"),
                                    (np.array([1.0, math.nan]), "not finite")])
def test_nonfinite_word(v, word):
    assert words.nonfinite_word(v) == word


@pytest.mark.parametrize("v,shown", [
    (None, ""), (-0.0, "0"), (math.nan, "NaN"), (-math.inf, "-Infinity"), (Fraction(-1, 4), "-1/4"),
    (np.float64(1 / 3), "0.333333"), (np.arange(4.0).reshape(2, 2), "[[0, 1], [2, 3]]"),
    ([1.0, [2.0, 3.0], []], "[1, [2, 3], []]"), (np.zeros((2, 0)), "[[], []]"),
])
def test_fmt(v, shown):
    assert words.fmt(v) == shown


def test_fmt_summarises_big_tensors():
    assert words.fmt(np.arange(20.0)) == "20: min 0 max 19 norm 49.7"
    assert words.fmt(np.arange(20.0), shape=False) == "min 0 max 19 norm 49.7"
    assert words.fmt([np.arange(20.0)]) == "[20: min 0 max 19 norm 49.7]"


def test_deeply_nested_lists_do_not_recurse():
    deep: list = [1.0]
    for _ in range(5000):
        deep = [deep]
    assert words.fmt(deep) == "[" * 5001 + "1" + "]" * 5001


def test_render_text_reexports_the_number_helpers():
    assert text.fmt is words.fmt and text.summary is words.summary
    assert text.shape_of is words.shape_of and text.SMALL == words.SMALL
