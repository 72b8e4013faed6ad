"""Elementwise work on a big float64 array split over the machine's cores (issue 17).

numpy runs one ufunc call on one core, but its loops release the GIL: two halves of one array,
each in its own thread, run at the same time. `run(kernel, out, *xs)` cuts `out` and every
same-shaped array in `xs` into contiguous pieces and calls `kernel(out_piece, *x_pieces)` once
per piece, one piece per thread. Each element is computed by the very loop one call would run
(pieces start at multiples of BLOCK elements, so every piece keeps the whole array's alignment
and SIMD lanes), so the bits are those of one call: tests/test_lanes.py compares them for every
kernel used here, on values that include the edges (±0, ±Infinity, NaN, overflow).

Only elementwise work comes here (no reductions: a sum split in two adds in another order), and
only arrays of at least MIN_ELEMENTS elements, below which handing work to a thread costs more
than it saves. GRADCLI_THREADS=1 turns it off; the default is the CPUs this process may use, at
most MAX_WORKERS. numpy's error state (np.errstate) is the caller's in every thread.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np

#: Arrays smaller than this run in one call, in the caller's thread (2 MB of float64).
MIN_ELEMENTS = 1 << 18
#: Pieces start at multiples of this many elements (32 kB of float64).
BLOCK = 4096
#: More threads than this gain nothing on elementwise loops: memory bandwidth is the limit.
MAX_WORKERS = 4

_pool = None
_lock = threading.Lock()
_workers: int | None = None


def workers() -> int:
    """How many threads share one big elementwise op (1: the caller's alone)."""
    global _workers
    if _workers is None:
        raw = os.environ.get("GRADCLI_THREADS", "").strip()
        try:
            n = int(raw) if raw else len(os.sched_getaffinity(0))
        except (ValueError, AttributeError, OSError):
            n = os.cpu_count() or 1
        _workers = max(1, min(n, MAX_WORKERS))
    return _workers


def _reset() -> None:
    """After a fork: the child has none of the parent's threads, so it starts a pool of its own."""
    global _pool, _lock, _workers
    _pool, _lock, _workers = None, threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset)


def _executor():
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor

                _pool = ThreadPoolExecutor(workers() - 1, thread_name_prefix="gradcli-lane")
    return _pool


def fits(*arrays) -> bool:
    """Whether these arrays can share out their work: float64, C-contiguous, one shape, big."""
    first = arrays[0]
    shape = first.shape
    if first.size < MIN_ELEMENTS or workers() < 2:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.shape != shape or a.dtype != np.float64 or not (
                a.flags.c_contiguous):
            return False
    return True


def _task(kernel: Callable, err: dict, args: tuple) -> None:
    with np.errstate(**err):
        kernel(*args)


def run(kernel: Callable, out: np.ndarray, *xs) -> np.ndarray:
    """kernel(out, *xs), piece by piece over the threads; `xs` are arrays shaped as `out`
    (C-contiguous float64, as `fits` checks) or scalars, handed to every piece as they are."""
    n = out.size
    w = workers()
    step = -(-n // w)
    step = -(-step // BLOCK) * BLOCK
    if w < 2 or step >= n:
        kernel(out, *xs)
        return out
    flat_out = out.reshape(-1)
    flat = [x.reshape(-1) if type(x) is np.ndarray else None for x in xs]
    pieces = []
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        pieces.append((flat_out[lo:hi],) + tuple(
            xs[k] if f is None else f[lo:hi] for k, f in enumerate(flat)))
    err = np.geterr()
    pool = _executor()
    futures = [pool.submit(_task, kernel, err, p) for p in pieces[1:]]
    try:
        kernel(*pieces[0])
    finally:
        for f in futures:
            f.result()  # waits; an error in a piece is raised here
    return out


def new(like: np.ndarray) -> np.ndarray:
    """An uninitialised float64 array shaped as `like` (each piece is written by its thread, so
    its pages are first touched, and zeroed by the kernel, on that thread's core)."""
    return np.empty(like.shape, dtype=np.float64)


_KERNELS: dict = {}


def _kernel(ufunc) -> Callable:
    k = _KERNELS.get(ufunc)
    if k is None:
        def k(out, *xs):
            return ufunc(*xs, out=out)
        _KERNELS[ufunc] = k
    return k


def ufunc(fn, *xs):
    """fn(*xs) for a numpy ufunc `fn` on arrays that `fits` takes (scalars may be among xs),
    over every core; None when they do not fit (the caller then makes the one call itself)."""
    arrays = [x for x in xs if type(x) is np.ndarray]
    if not arrays or not fits(*arrays):
        return None
    for x in xs:
        if type(x) is not np.ndarray and type(x) is not float and type(x) is not np.float64:
            return None
    return run(_kernel(fn), new(arrays[0]), *xs)
