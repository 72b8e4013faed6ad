"""lanes.py: big arrays' elementwise work split over threads gives the bits of one call.

Oracles: numpy's own single call of each kernel (compared bit for bit, NaN payloads and signed
zeros included), and the whole engine with one worker against the engine with several."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import gradcli.engine as engine
import gradcli.lanes as lanes
import gradcli.rules as rules
from gradcli import api

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 710.0, -710.0, 1e308,
                    -1e308, 5e-324, 0.5, -0.5, 2.0, 1e-300])


@pytest.fixture
def workers(monkeypatch):
    """Set how many threads share the work; BLAS's spinning (which keeps the work in one thread
    for a while after a product) is out of the way unless a test puts it back."""
    monkeypatch.setattr(lanes, "_spins", False)
    monkeypatch.setattr(lanes, "_quiet_until", 0.0)

    def set_to(n: int) -> None:
        monkeypatch.setattr(lanes, "_workers", n)
    return set_to


def data(n: int, seed: int, scale: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n) * scale
    a[rng.integers(0, n, 64)] = rng.choice(SPECIAL, 64)
    a[:len(SPECIAL)] = SPECIAL
    a[-len(SPECIAL):] = SPECIAL
    return a


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.int64)


SIZES = [lanes.MIN_ELEMENTS, lanes.MIN_ELEMENTS + 1, 3 * lanes.MIN_ELEMENTS + 4097]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("count", [2, 3, 4])
def test_every_ufunc_the_engine_splits_gives_one_calls_bits(n, count, workers):
    a, b = data(n, 1), data(n, 2, 0.7)
    with np.errstate(all="ignore"):
        for name, fn in engine.UFUNCS.items():
            args = (a, b) if fn.nin == 2 else (a,)
            workers(1)
            want = fn(*args)
            workers(count)
            got = lanes.ufunc(fn, *args)
            assert got is not None, name
            assert np.array_equal(bits(got), bits(want)), name
            if fn.nin == 2:  # a scalar on either side
                assert np.array_equal(bits(lanes.ufunc(fn, a, np.float64(0.3))),
                                      bits(fn(a, np.float64(0.3)))), name
                assert np.array_equal(bits(lanes.ufunc(fn, 1.5, b)), bits(fn(1.5, b))), name


def test_the_rules_the_engine_splits_are_those_ufuncs():
    """UFUNCS may only name ops whose value is that ufunc (or, for + - * / and negation, the
    operator, which numpy computes with that ufunc on float64 arrays)."""
    operators = {"add", "sub", "mul", "div", "neg"}
    for name, fn in engine.UFUNCS.items():
        value = rules.RULES[name]["value"]
        assert value is fn or name in operators, name
    a, b = data(lanes.MIN_ELEMENTS, 3), data(lanes.MIN_ELEMENTS, 4)
    with np.errstate(all="ignore"):
        for name in operators:
            fn, value = engine.UFUNCS[name], rules.RULES[name]["value"]
            args = (a, b) if fn.nin == 2 else (a,)
            assert np.array_equal(bits(value(*args)), bits(fn(*args))), name


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("count", [1, 2, 3])
def test_sigmoid_and_its_slope_in_steps_over_threads(n, count, workers):
    """Made in cache-sized steps (with one worker too) and over threads: numpy's one call of
    the same formula, bit for bit, and the formula one number at a time."""
    a = data(n, 5, 20.0)
    with np.errstate(all="ignore"):
        want = 1.0 / (1.0 + np.exp(-a))
        slope = want * (1.0 - want)
        scalar = [1.0 / (1.0 + np.exp(-v)) for v in a[:200]]
        workers(count)
        got = rules._sigmoid(a), rules._sigmoid_slope(want)
    assert np.array_equal(bits(got[0]), bits(want))
    assert np.array_equal(bits(got[1]), bits(slope))
    assert np.array_equal(bits(got[0][:200]), bits(np.array(scalar)))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_all_finite_is_numpys_answer(count, workers):
    workers(count)
    n = 3 * lanes.MIN_ELEMENTS + 8  # a multiple of 5 (a 2-d shape below), not of the pieces
    for where in [None, 0, 1, lanes.CHUNK - 1, lanes.CHUNK, n // 2, n // 3 + 1, n - 1]:
        for bad in (np.nan, np.inf, -np.inf):
            a = np.ones(n)
            if where is not None:
                a[where] = bad
            for x in (a, a.reshape(-1, 5), a[::2], a.astype(np.float32), a[:100]):
                assert lanes.all_finite(x) == bool(np.isfinite(x).all()), (where, x.shape)
            if where is None:
                break
    assert lanes.all_finite(np.ones(0)) and engine.finite(np.ones((0, 3)))
    assert not engine.finite(np.array([[1.0, np.nan]] * lanes.MIN_ELEMENTS))
    assert engine.finite(np.full(lanes.MIN_ELEMENTS, 1e308))  # a sum would overflow: still true


def outer_data(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A column and a row with zeros of both signs, products that underflow to zero, NaN,
    Infinity and Infinity times zero."""
    rng = np.random.default_rng(seed)
    g, b = rng.standard_normal((n, 1)) * 3.0, rng.standard_normal((1, m)) * 3.0
    g[:len(SPECIAL), 0] = SPECIAL[:n]
    b[0, :len(SPECIAL)] = SPECIAL[:m]
    g[1::97] = -0.0
    g[2::89] = 1e-200
    b[0, 1::5] = -1e-200
    b[0, 2::7] = -0.0
    return g, b


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("shape", [(lanes.MIN_ELEMENTS // 32 + 3, 32), (lanes.MIN_ELEMENTS, 1),
                                   (7, 40000), (0, 32)])
def test_an_outer_product_is_matmuls_bits(shape, count, workers):
    """lanes.outer against numpy's matmul of the same column and row (a zero product is +0.0
    there, as a sum from zero has it), and the engine's vjp with and without it."""
    workers(count)
    g, b = outer_data(*shape, 7)
    with np.errstate(all="ignore"):
        want = g @ b
        got = lanes.outer(g, b)
        products = g * b
    assert got.shape == want.shape and np.array_equal(bits(got), bits(want))
    assert np.signbit(want).sum() < np.signbit(products).sum() or not want.size  # -0.0s made


def test_the_matmul_vjp_takes_the_outer_product_where_it_fits(monkeypatch):
    rows = lanes.MIN_ELEMENTS // 16 + 1
    g, w = outer_data(rows, 16, 11)
    a = data(rows * 16, 12).reshape(rows, 16)
    with np.errstate(all="ignore"):
        fast = rules._matmul_vjp(g, None, a, w.T)
        monkeypatch.setattr(rules, "_outer_fits", lambda g, b: False)
        plain = rules._matmul_vjp(g, None, a, w.T)
    for x, y in zip(fast, plain):
        assert np.array_equal(bits(x), bits(y))
    assert rules._outer_fits is not None
    monkeypatch.undo()
    assert rules._outer_fits(g, w.T)
    assert not rules._outer_fits(g[:10], w.T)  # small: numpy's matmul
    assert not rules._outer_fits(g.astype(object), w.T)  # --exact's Fractions: never floats


def test_what_does_not_fit_runs_in_one_call(workers):
    workers(2)
    small = np.ones(lanes.MIN_ELEMENTS - 1)
    big = np.ones(lanes.MIN_ELEMENTS)
    assert lanes.ufunc(np.exp, small) is None
    assert lanes.ufunc(np.exp, big[::2].copy()) is None  # smaller again
    assert lanes.ufunc(np.exp, np.ones((2, lanes.MIN_ELEMENTS))[:, ::2]) is None  # strided
    assert lanes.ufunc(np.exp, big.astype(np.float32)) is None
    assert lanes.ufunc(np.add, big, np.ones((1, lanes.MIN_ELEMENTS))) is None  # broadcasting
    assert lanes.ufunc(np.add, big, 1) is None  # an int: numpy's own promotion, in one call
    workers(1)
    assert lanes.ufunc(np.exp, big) is None


def test_the_callers_error_state_holds_in_every_thread(workers):
    workers(4)
    a = np.full(4 * lanes.MIN_ELEMENTS, 1.0)
    a[-1] = 1000.0  # overflows in the last piece, which another thread computes
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            lanes.ufunc(np.exp, a)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert lanes.ufunc(np.exp, a)[-1] == np.inf


def test_the_number_of_workers(monkeypatch):
    for raw, want in [("1", 1), ("0", 1), ("3", 3), ("64", lanes.MAX_WORKERS)]:
        monkeypatch.setenv("GRADCLI_THREADS", raw)
        monkeypatch.setattr(lanes, "_workers", None)
        assert lanes.workers() == want
    monkeypatch.setenv("GRADCLI_THREADS", "many")
    monkeypatch.setattr(lanes, "_workers", None)
    assert 1 <= lanes.workers() <= lanes.MAX_WORKERS


def test_the_net_evaluates_to_the_same_bits_with_one_worker_or_two(workers):
    """The issue's two-layer net, big enough to split: value and gradients bit for bit."""
    rows = lanes.MIN_ELEMENTS // 32 + 8
    rng = np.random.default_rng(0)
    at = {"X": rng.standard_normal((rows, 8)), "W1": rng.standard_normal((8, 32)) * 0.3,
          "W2": rng.standard_normal((32, 1)) * 0.3, "Y": rng.standard_normal((rows, 1))}
    text = "sum((sigmoid(X @ W1) @ W2 - Y)^2) + sum(tanh(exp(-(X @ W1)) * 0.5))"
    runs = []
    for n, spins in ((1, False), (2, False), (2, True)):  # two, and two that BLAS keeps busy
        workers(n)
        lanes._spins, lanes._quiet_until = spins, 0.0
        r = api.evaluate(text, at, wrt=["W1", "W2"])
        assert (lanes._quiet_until > 0) == spins  # the products said so
        runs.append((r.value, {k: np.asarray(v) for k, v in r.gradient.items()},
                     [np.asarray(v) for v in r.values]))
    (v1, g1, vals1) = runs[0]
    for v2, g2, vals2 in runs[1:]:
        assert v1 == v2
        for k in g1:
            assert np.array_equal(bits(g1[k]), bits(g2[k])), k
        for x, y in zip(vals1, vals2):
            assert np.array_equal(x, y, equal_nan=True)


def test_whether_blas_spins_is_read_from_its_name_and_the_environment():
    spins = lanes._spinning_blas
    assert spins({}, "scipy-openblas") and spins({}, "OpenBLAS")
    assert not spins({}, "accelerate") and not spins({}, "mkl-sdl") and not spins({}, "")
    assert not spins({"OPENBLAS_NUM_THREADS": "1"}, "openblas")
    assert not spins({"OMP_NUM_THREADS": "1"}, "openblas")
    assert not spins({"GOTO_NUM_THREADS": "1", "OMP_NUM_THREADS": "4"}, "openblas")
    assert spins({"OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "1"}, "openblas")  # read first
    assert spins({"OPENBLAS_NUM_THREADS": " "}, "openblas")  # empty: not set
    for timeout, spinning in (("20", False), ("4", False), ("21", True), ("28", True),
                              ("soon", True)):
        assert spins({"OPENBLAS_THREAD_TIMEOUT": timeout}, "openblas") == spinning, timeout


def test_while_blas_may_spin_the_work_stays_in_the_callers_thread(workers, monkeypatch):
    workers(2)
    lanes._spins = True
    tasks = []
    real = lanes.spread
    monkeypatch.setattr(lanes, "spread", lambda ts: tasks.append(len(ts)) or real(ts))
    a = data(2 * lanes.MIN_ELEMENTS, 3)
    with np.errstate(all="ignore"):
        want = np.tanh(a)
        small = np.ones((8, 8))
        rules._matmul(small, small)  # 512 multiply-adds: BLAS keeps it on one thread
        assert lanes.sharing() == 2 and lanes._quiet_until == 0.0
        assert np.array_equal(bits(lanes.ufunc(np.tanh, a)), bits(want)) and tasks == [2]
        side = 1 << 6  # (64, 64) @ (64, 64): exactly BLAS_THREADED multiply-adds
        rules._matmul(np.ones((side, side)), np.ones((side, side)))
        assert lanes.sharing() == 1
        assert lanes.ufunc(np.tanh, a) is None  # the caller makes the one call itself
        out = lanes.run(lanes._kernel(np.tanh), lanes.new(a), a)  # one piece, in steps
        assert np.array_equal(bits(out), bits(want)) and tasks[1:] == [1]
        assert lanes.all_finite(np.ones(a.size)) and tasks[2:] == []  # read here, whole
        lanes._quiet_until = time.monotonic() - 1e-3  # the window is over
        assert lanes.sharing() == 2
        lanes._quiet_until = 0.0
        lanes._spins = False  # a BLAS that does not spin
        rules._matmul(np.ones((side, side)), np.ones((side, side)))
        assert lanes.sharing() == 2
    lanes._spins = True
    for call in (lambda: rules._matmul_vjp(np.ones((side, side)), None, np.ones((side, side)),
                                           np.ones((side, side))),
                 lambda: rules._matmul_jvp((np.ones((side, side)), None), None,
                                           np.ones((side, side)), np.ones((side, side))),
                 lambda: rules._dot(np.ones((side, side)), np.ones((side, side)))):
        lanes._quiet_until = 0.0
        call()
        assert lanes._quiet_until > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork exists on POSIX systems only")
def test_a_forked_child_starts_its_own_threads(workers):
    workers(2)
    a = data(2 * lanes.MIN_ELEMENTS, 9)
    with np.errstate(all="ignore"):
        want = np.tanh(a)
        lanes.ufunc(np.tanh, a)  # the parent's pool exists now
        pid = os.fork()
        if pid == 0:
            ok = False
            try:
                assert lanes._pool is None  # _reset ran: the parent's threads are not here
                lanes._workers = 2
                ok = np.array_equal(bits(lanes.ufunc(np.tanh, a)), bits(want))
            finally:
                os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, sys.platform


def plain_and_later(monkeypatch, text: str, at: dict, **options):
    """The same evaluation with every partial made up front (the plain sweep) and with the big
    sigmoid and tanh partials made only when read (engine.LaterPartials)."""
    with monkeypatch.context() as m:
        m.setattr(engine.LaterPartials, "nodes", staticmethod(lambda tape, values, flags: []))
        plain = api.evaluate(text, at, **options)
    later = api.evaluate(text, at, **options)
    return plain, later


def same_partials(p, q) -> bool:
    if p is None or q is None:
        return p is q
    return len(p) == len(q) and all(
        (a is None and b is None) or np.array_equal(bits(np.asarray(a)), bits(np.asarray(b)))
        for a, b in zip(p, q))


@pytest.mark.parametrize("count", [1, 2])
def test_partials_made_when_read_give_the_same_bits(count, workers, monkeypatch):
    """Sigmoid and tanh layers big enough for LaterPartials: value, gradients, every partial
    (read afterwards, in any order, by index, slice and iteration), kinks and warnings are the
    plain sweep's, and the reverse sweep did not make the partials it could skip."""
    workers(count)
    rows = lanes.MIN_ELEMENTS // 16 + 5
    rng = np.random.default_rng(21)
    X = rng.standard_normal((rows, 8)) * 3.0
    X[:4, 0] = [0.0, -0.0, 40.0, -800.0]  # relu's kink, sigmoid's 1.0 and 0.0
    at = {"X": X, "W": rng.standard_normal((8, 16)), "V": rng.standard_normal((16, 1)),
          "Y": rng.standard_normal((rows, 1))}
    text = ("H = sigmoid(X @ W)\nT = tanh((relu(X) @ W) * 0.5)\n"
            "sum((H @ V - Y)^2) + sum(T * H) + sum(tanh(X))")
    plain, later = plain_and_later(monkeypatch, text, at, wrt=["W", "V", "X"])
    assert type(later.partials) is engine.LaterPartials
    assert later.partials.pending  # the sweep multiplied them in without making them
    assert plain.value == later.value
    for k in plain.gradient:
        assert np.array_equal(bits(np.asarray(plain.gradient[k])),
                              bits(np.asarray(later.gradient[k]))), k
    assert plain.kinks == later.kinks and plain.kinks
    assert plain.warnings == later.warnings
    n = len(plain.partials)
    assert len(later.partials) == n
    order = list(range(n - 1, -1, -1))
    for i in order:  # by index, last first
        assert same_partials(plain.partials[i], later.partials[i]), i
    assert not later.partials.pending
    again = api.evaluate(text, at, wrt=["W", "V", "X"])
    assert all(same_partials(p, q) for p, q in zip(plain.partials, again.partials))  # iteration
    assert all(same_partials(p, q) for p, q in zip(plain.partials[2:-1], again.partials[2:-1]))
    assert all(same_partials(p, q) for p, q in zip(plain.partials[-3:], again.partials[-3:]))


def test_partials_made_when_read_with_non_finite_numbers_and_forward_mode(monkeypatch):
    rows = lanes.MIN_ELEMENTS + 3
    x = np.linspace(-3.0, 3.0, rows)
    x[7], x[9] = np.nan, np.inf
    at = {"x": x, "w": np.float64(0.5)}
    text = "sum(sigmoid(x * w) + tanh(x / w))"
    plain, later = plain_and_later(monkeypatch, text, at, wrt=["x", "w"], mode="both")
    assert plain.warnings == later.warnings and plain.warnings
    for k in ("x", "w"):
        assert np.array_equal(np.asarray(plain.gradient[k]), np.asarray(later.gradient[k]),
                              equal_nan=True)
    assert later.to_json() == plain.to_json()  # tangents read every partial
