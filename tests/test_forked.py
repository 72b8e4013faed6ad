"""render/forked.py: a long document's second half made by a forked child (issue 17).

The oracle is the plain loop: the same pieces, in the same order, byte for byte, whether the
child made them, failed, was killed, or was never started; and `eval --json` on a formula long
enough to fork writes exactly what one process writes (GRADCLI_THREADS=1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import gradcli.lanes as lanes
import gradcli.render.forked as F
import gradcli.render.jsonout as J
from gradcli.result import run_session
from gradcli.session import load

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the forked writer runs on Linux only")


READ_MEMORY = F._memory  # the real one (the fixture below puts memory to spare in its place)


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    """Two workers whatever this machine has (a 1-CPU runner would never fork), and only the
    threads a test starts count as others: earlier tests of the suite leave some behind (dask's
    in-process cluster, executors), which would keep the writer from forking at all."""
    monkeypatch.setattr(lanes, "_workers", 2)
    before = set(F._other_threads())
    plain = F._other_threads
    monkeypatch.setattr(F, "_other_threads", lambda: [t for t in plain() if t not in before])
    monkeypatch.setattr(F, "_memory", lambda: (1 << 20, 1 << 40, None))  # memory to spare


def serial(n: int, size: int) -> list[str]:
    return [f"[{a},{min(a + size, n)}]" for a in range(0, n, size)]


def maker(log: list | None = None, child=None):
    """make(a, b) -> "[a,b]"; `child(a)` runs first in the forked child only (to fail it)."""
    parent = os.getpid()

    def make(a: int, b: int) -> str:
        if os.getpid() != parent:
            if child is not None:
                child(a)
        elif log is not None:
            log.append(a)
        return f"[{a},{b}]"
    return make


@pytest.mark.parametrize("n,size", [(F.MIN_NODES, 1024), (F.MIN_NODES + 1, 1000),
                                    (123_457, 4096), (F.MIN_NODES, 7)])
def test_the_pieces_are_the_plain_loops_and_the_child_made_half(n, size):
    made_here: list[int] = []
    got = list(F.pieces(n, size, maker(made_here)))
    assert "".join(got) == "".join(serial(n, size))
    # this process made only the first half; the rest came from the child's file
    assert made_here == list(range(0, len(made_here) * size, size))
    assert 0.3 * n < len(made_here) * size < 0.7 * n


@pytest.mark.parametrize("how", ["raise", "exit", "kill"])
def test_a_child_that_fails_is_replaced_by_this_process(how):
    def fail(a):
        if a >= 40_000:  # after writing some of its text
            if how == "raise":
                raise OSError("disk full")
            if how == "exit":
                os._exit(0)  # a 0 status, but not the child's own: the text is short
            os.kill(os.getpid(), signal.SIGKILL)

    made_here: list[int] = []
    n, size = 80_000, 1000
    got = "".join(F.pieces(n, size, maker(made_here, fail)))
    assert got == "".join(serial(n, size))
    assert made_here == list(range(0, n, size))  # all of it made here in the end


def test_stopping_early_kills_and_reaps_the_child(monkeypatch):
    children = []
    start = F._Child.start.__func__

    def record(cls, *args):
        c = start(cls, *args)
        children.append(c)
        return c
    monkeypatch.setattr(F._Child, "start", classmethod(record))
    gen = F.pieces(200_000, 1000, maker(child=lambda a: None))
    assert next(gen) == "[0,1000]"
    gen.close()
    (child,) = children
    assert child.done
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # gone, and reaped (a zombie would still take the signal)


def test_one_process_when_it_would_not_pay_or_not_be_safe(monkeypatch):
    started = []
    monkeypatch.setattr(F._Child, "start", classmethod(lambda cls, *a: started.append(a)))
    list(F.pieces(F.MIN_NODES - 1, 100, maker()))  # too short
    monkeypatch.setattr(lanes, "_workers", 1)  # GRADCLI_THREADS=1, or one CPU
    list(F.pieces(F.MIN_NODES, 100, maker()))
    monkeypatch.setattr(lanes, "_workers", 2)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # another thread: no fork
    other.start()
    try:
        list(F.pieces(F.MIN_NODES, 100, maker()))
    finally:
        stop.set()
        other.join()
    monkeypatch.setattr(F, "_memory", lambda: (300 << 20, 500 << 20, None))  # tight memory
    list(F.pieces(F.MIN_NODES, 100, maker()))
    assert started == []
    monkeypatch.setattr(F, "_memory", lambda: (300 << 20, 1 << 40, None))
    list(F.pieces(F.MIN_NODES, 100, maker()))  # and with all of that fixed, it forks
    assert len(started) == 1


def test_room_for_a_second_copy():
    mib = 1 << 20
    assert F._room(100 * mib, 201 * mib, None)
    assert not F._room(100 * mib, 200 * mib, None)  # twice the process is not enough
    assert not F._room(100 * mib, None, None)  # unknown: one process
    assert not F._room(100 * mib, 10_000 * mib, 150 * mib)  # a cgroup limit close by
    assert F._room(100 * mib, 10_000 * mib, 250 * mib)


def test_this_machines_memory_is_read():
    """/proc tells this process's size and what is available (a real reading, not a default)."""
    rss, available, left = READ_MEMORY()
    assert 1 << 20 < rss < 1 << 40
    assert available is not None and available > 0
    assert left is None or left > -rss


def test_an_eval_document_made_in_two_processes(monkeypatch):
    """jsonout's pieces through a child agree with one process on a wide formula."""
    terms = [f"tanh(x{k % 9} * sin(x{(k + 1) % 9} - {k % 5}) / exp(x{(k + 2) % 9}))"
             for k in range(300)]
    text = "s = " + " + ".join(terms) + "\ns * s"
    r = run_session(load(text, [",".join(f"x{k}={(k - 4) / 3}" for k in range(9))]))
    monkeypatch.setattr(F, "_enabled", lambda n: False)
    want = J.eval_json(r)
    monkeypatch.setattr(F, "_enabled", lambda n: True)
    forks = []
    start = F._Child.start.__func__
    monkeypatch.setattr(F._Child, "start",
                        classmethod(lambda cls, *a: forks.append(1) or start(cls, *a)))
    assert "".join(J.eval_json_pieces(r, 16)) == want
    assert forks == [1]
    json.loads(want)


@pytest.mark.parametrize("options", [["--max-nodes", "0"], []])  # the app's; quick.py's
def test_the_command_forks_and_writes_what_one_process_writes(tmp_path, options):
    """The whole program on a formula past MIN_NODES: the same bytes with GRADCLI_THREADS=1,
    through the Typer app and through commands/quick.py (the plain `eval FORMULA --at ...
    --json`, which writes its pieces as they are made too)."""
    k = F.MIN_NODES // 3  # about 4 nodes a term (a new constant in each)
    text = " + ".join(f"sin(x{j % 7} * {j})" if j % 2 else f"x{j % 5} / ({j} + x{j % 3})"
                      for j in range(k))
    formula = tmp_path / "long.grad"
    formula.write_text(text, encoding="utf-8")
    at = ",".join(f"x{j}={j / 10 - 0.3}" for j in range(7))
    outs = []
    for threads in ("2", "1"):
        env = dict(os.environ, GRADCLI_THREADS=threads)
        got = subprocess.run([sys.executable, "-m", "gradcli", "eval", str(formula), "--at", at,
                              "--json", *options], capture_output=True, env=env)
        assert got.returncode == 0, got.stderr.decode()
        outs.append(got.stdout)
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert len(doc["nodes"]) > F.MIN_NODES


def _wide(wrt: str | None = None, exact: bool = False):
    terms = [f"tanh(x{k % 9} * sin(x{(k + 1) % 9} - {k % 5}) / exp(x{(k + 2) % 9}))"
             for k in range(300)]
    text = "s = " + " + ".join(terms) + "\ns * s"
    return run_session(load(text, [",".join(f"x{k}={(k - 4) / 3}" for k in range(9))],
                            wrt=wrt.split(",") if wrt else None, exact=exact))


def _both_ways(monkeypatch, r) -> tuple[str, str]:
    """(one process's document, the two-process one's)."""
    monkeypatch.setattr(F, "_enabled", lambda n: False)
    want = J.eval_json(r)
    monkeypatch.setattr(F, "_enabled", lambda n: True)
    return want, "".join(J.eval_json_pieces(r, 16))


@pytest.mark.parametrize("wrt", [None, "x1,x7", "x3"])
def test_the_forked_halves_read_machine_arrays_and_write_the_same_text(monkeypatch, wrt):
    """With two processes, both read Packed's arrays (not the tape's objects); the document is
    the one process's, byte for byte, also where --wrt leaves nodes inactive (their adjoint
    None, their partials null)."""
    from gradcli.render.jsonnodes import Packed

    r = _wide(wrt)
    made = []
    of = Packed.of.__func__
    monkeypatch.setattr(Packed, "of", classmethod(lambda cls, res: made.append(of(cls, res))
                                                  or made[-1]))
    want, got = _both_ways(monkeypatch, r)
    assert got == want
    assert len(made) == 1 and made[0] is not None
    if wrt:
        assert not all(r.active) and None in r.adjoints[0]
        assert '"grad": null' in want


def test_packed_inputs_are_the_tapes():
    from gradcli.render.jsonnodes import Packed

    r = _wide()
    p = Packed.of(r)
    n = len(r.tape)
    assert p.ids.dtype.itemsize == 4 and p.values.tolist() == [float(v) for v in r.values]
    for a, b in [(0, n), (0, 1), (5, 6), (17, 400), (n - 3, n), (n, n)]:
        assert p.inputs(a, b) == r.tape.inputs[a:b]
    flags = r.active
    assert all(g == float(x) for g, x, f in zip(p.grads.tolist(), r.adjoints[0], flags) if f)
    assert p.values.dtype == np.float64 and p.grads.dtype == np.float64


def test_what_packed_cannot_hold_is_read_as_objects(monkeypatch):
    """--exact's fractions, tensors, several outputs and values that are Python floats (a
    partial made from Packed's np.float64 could then differ: 1.0/0.0 raises, np.float64 gives
    Infinity): no Packed, and still the same text."""
    import dataclasses

    from gradcli.render.jsonnodes import Packed

    exact = _wide(exact=True)
    several = run_session(load("a = sin(x) * y\na, a + y", ["x=0.5,y=2"]))
    tensor = run_session(load("sum(tanh(W * x))", ["W=[[1,2],[3,4]],x=[0.5,-1]"]))
    plain = _wide()
    assert Packed.of(plain) is not None
    plain = dataclasses.replace(plain, values=[float(v) for v in plain.values])
    for r in (exact, several, tensor, plain):
        assert Packed.of(r) is None
        want, got = _both_ways(monkeypatch, r)
        assert got == want


def test_trim_asks_the_c_library_and_survives_one_without_it(monkeypatch):
    """_trim calls malloc_trim(0) where the C library has it, and does nothing (no error) where
    it has not (musl), or where ctypes cannot load it."""
    import ctypes

    calls = []

    class Glibc:
        def malloc_trim(self, pad):
            calls.append(pad)
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Glibc())
    F._trim()
    assert calls == [0]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())
    F._trim()

    def refuse(name):
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", refuse)
    F._trim()
    assert calls == [0]


def test_the_forked_path_trims_before_it_forks(monkeypatch):
    """The heap is trimmed once, before the child starts (after it, the pages are shared)."""
    order = []
    monkeypatch.setattr(F, "_enabled", lambda n: True)
    monkeypatch.setattr(F, "_trim", lambda: order.append("trim"))
    start = F._Child.start
    monkeypatch.setattr(F._Child, "start", classmethod(
        lambda cls, *a: order.append("fork") or start(*a)))
    text = "".join(F.pieces(100, 7, lambda a, b: f"{a}-{b};"))
    assert text == "".join(f"{a}-{min(a + 7, 100)};" for a in range(0, 100, 7))
    assert order == ["trim", "fork"]
