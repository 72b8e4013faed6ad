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

numpy's BLAS has threads of its own. OpenBLAS (numpy's wheels) keeps them spinning, each on a
core, for 2^28 cycles after every call big enough to use them (its THREAD_TIMEOUT: 0.07-0.13 s
at 2-4 GHz), waiting for the next one; work split over the cores meanwhile shares them with the
spinners and runs no faster than one thread. So for SPIN_SECONDS after such a product
(`blas_called`, from the matmul rules) the work stays in the caller's thread, in the same
cache-sized steps, unless BLAS does not spin: one BLAS thread, or OPENBLAS_THREAD_TIMEOUT at most
SHORT_TIMEOUT (the gradcli command sets 20 for its own process before numpy loads). Where the
work runs never changes a bit of it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import numpy as np

#: Arrays smaller than this run in one call, in the caller's thread (2 MB of float64).
MIN_ELEMENTS = 1 << 18
#: Pieces start at multiples of this many elements (32 kB of float64).
BLOCK = 4096
#: Elements per step of a piece (512 kB of float64): a step's arrays stay in the cache.
CHUNK = 1 << 16
#: More threads than this gain nothing on elementwise loops: memory bandwidth is the limit.
MAX_WORKERS = 4

#: How long OpenBLAS's threads may still spin after a threaded call (2^28 cycles at >= 2.7 GHz).
SPIN_SECONDS = 0.1
#: OPENBLAS_THREAD_TIMEOUT at or below this (2^20 cycles: under a millisecond) does not spin long.
SHORT_TIMEOUT = 20
#: A product of at least this many multiply-adds uses OpenBLAS's threads (it keeps smaller
#: ones, up to 65536 x its GEMM_MULTITHREAD_THRESHOLD of 4, on the calling thread).
BLAS_THREADED = 1 << 18

_pool = None
_lock = threading.Lock()
_workers: int | None = None
_spins: bool | None = None  # whether numpy's BLAS keeps threads spinning after a call
_quiet_until = 0.0  # time.monotonic() until which BLAS's threads may be spinning


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


def sharing() -> int:
    """How many threads share an elementwise op now: `workers()`, or 1 while numpy's BLAS threads
    may still be spinning after a product (`blas_called`)."""
    w = workers()
    if w > 1 and _quiet_until and time.monotonic() < _quiet_until:
        return 1
    return w


def blas_called(multiply_adds: int) -> None:
    """A matrix product of that many multiply-adds has just run in numpy's BLAS."""
    global _quiet_until
    if multiply_adds >= BLAS_THREADED and blas_spins():
        _quiet_until = time.monotonic() + SPIN_SECONDS


def blas_spins() -> bool:
    """Whether numpy's BLAS is OpenBLAS with more than one thread and its default spinning."""
    global _spins
    if _spins is None:
        try:
            name = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
        except Exception:  # a numpy without its build record: no spinning assumed
            name = ""
        _spins = _spinning_blas(os.environ, name)
    return _spins


def _spinning_blas(env, blas: str) -> bool:
    """Whether a BLAS of that name (numpy's build record), in that environment, spins."""
    if "openblas" not in blas.lower():  # MKL's OpenMP threads spin too (KMP_BLOCKTIME): untried
        return False
    for var in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = env.get(var, "").strip()  # the first one set is the one OpenBLAS reads
        if raw:
            if raw.isdigit() and int(raw) == 1:
                return False
            break
    raw = env.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
    return not (raw.isdigit() and int(raw) <= SHORT_TIMEOUT)


def _reset() -> None:
    """After a fork: the child has none of the parent's threads, so it starts a pool of its own."""
    global _pool, _lock, _workers, _quiet_until
    _pool, _lock, _workers, _quiet_until = None, threading.Lock(), None, 0.0


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
    """Whether these arrays can share out their work: big (`big`), one shape, and a second
    worker to share it with."""
    return sharing() >= 2 and big(*arrays)


def big(*arrays) -> bool:
    """Whether these arrays are float64, C-contiguous, of one shape and at least MIN_ELEMENTS
    elements: `run` takes them (in cache-sized steps, over the cores there are)."""
    first = arrays[0]
    shape = first.shape
    if type(first) is not np.ndarray or first.size < MIN_ELEMENTS:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.shape != shape or a.dtype != np.float64 or not (
                a.flags.c_contiguous):
            return False
    return True


def run(kernel: Callable, out: np.ndarray, *xs) -> np.ndarray:
    """kernel(out, *xs), piece by piece over the threads, each piece in steps of CHUNK
    elements: a kernel of several passes (sigmoid's four) reads and writes each step while it
    is in the cache, so memory is crossed once. `xs` are arrays shaped as `out` (C-contiguous
    float64, as `big` checks) or scalars, handed to every step as they are. Pieces and steps
    start at multiples of BLOCK elements: each element is computed by the loop one call runs."""
    n = out.size
    step = _step(n, n, BLOCK)
    flat_out = out.reshape(-1)
    flat = [x.reshape(-1) if type(x) is np.ndarray else None for x in xs]
    spread([(_steps, kernel, flat_out[lo:lo + step]) + tuple(
        xs[k] if f is None else f[lo:lo + step] for k, f in enumerate(flat))
        for lo in range(0, n, step)])
    return out


def _step(n: int, elements: int, align: int = 1) -> int:
    """The length of the pieces n items are cut into, one per worker, rounded up to a multiple
    of `align`: all n in one piece for work on fewer than MIN_ELEMENTS `elements`."""
    w = sharing() if elements >= MIN_ELEMENTS else 1
    return -(-(-(-n // w)) // align) * align


def _steps(kernel: Callable, out: np.ndarray, *xs) -> None:
    arrays = [type(x) is np.ndarray for x in xs]
    for lo in range(0, out.size, CHUNK):
        hi = lo + CHUNK
        kernel(out[lo:hi], *[x[lo:hi] if a else x for x, a in zip(xs, arrays)])


def spread(tasks: list) -> list:
    """[fn(*args) for fn, *args in tasks], the first in this thread, the rest in the pool's,
    with the caller's numpy error state in each; an error in any is raised here."""
    if len(tasks) == 1:
        return [tasks[0][0](*tasks[0][1:])]
    err = np.geterr()
    pool = _executor()
    futures = [pool.submit(_call, err, t) for t in tasks[1:]]
    try:
        first = tasks[0][0](*tasks[0][1:])
    finally:
        rest = [f.result() for f in futures]
    return [first] + rest


def _call(err: dict, task: tuple):
    with np.errstate(**err):
        return task[0](*task[1:])


def _finite_run(flat: np.ndarray) -> bool:
    for lo in range(0, flat.size, CHUNK):
        if not np.isfinite(flat[lo:lo + CHUNK]).all():
            return False
    return True


def all_finite(a: np.ndarray) -> bool:
    """Whether every element of a float array is finite: a C-contiguous one is read in
    cache-sized steps (no array of booleans as big as it), a big one by every core (each
    thread answers for its part; the answer does not depend on the order of reading)."""
    if not a.flags.c_contiguous:
        return bool(np.isfinite(a).all())
    flat = a.reshape(-1)
    step = _step(flat.size, flat.size)
    if step >= flat.size:
        return _finite_run(flat)
    return all(spread([(_finite_run, flat[lo:lo + step]) for lo in range(0, flat.size, step)]))


def _outer_rows(out: np.ndarray, col: np.ndarray, row: np.ndarray) -> None:
    rows = max(1, CHUNK // max(1, out.shape[1]))  # a step's output stays in the cache
    for lo in range(0, out.shape[0], rows):
        piece = out[lo:lo + rows]
        np.multiply(col[lo:lo + rows], row, out=piece)
        np.add(piece, 0.0, out=piece)  # -0.0 + 0.0 is +0.0; every other number stays itself


def outer(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """col @ row for float64 col (n, 1) and row (1, m): what matmul gives (each element one
    product, and a zero product +0.0, as a sum that starts from zero has it), in one pass over
    the output, split by rows over the cores. BLAS spends several times as long on a product
    whose inner dimension is 1 (the backward step of a layer with one output)."""
    n = col.shape[0]
    out = np.empty((n, row.shape[1]), dtype=np.float64)
    if out.size == 0:
        return out
    step = _step(n, out.size)
    spread([(_outer_rows, out[lo:lo + step], col[lo:lo + step], row)
             for lo in range(0, n, step)])
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
