"""Batch mode: one formula over many points (`eval --points FILE`), vectorised with numpy.

The points file (CSV, Parquet, Arrow IPC/Feather, .npz/.npy: gradcli/columnar.py) is read in
chunks of rows; each chunk is one forward sweep and one reverse sweep per output over arrays
(every variable a column), so memory stays bounded by the chunk, whatever the file's length.
Reading runs in a thread of its own, ahead of the sweeps by a chunk or two, so the two cores of
a small machine are both busy; chunks come out in the file's order.
"""

from __future__ import annotations

import io
import queue
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from . import arraysweep, engine
from .columnar import CHUNK_ROWS, CsvPoints, open_points
from .errors import InputError
from .ops import lookup
from .tape import Tape

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

__all__ = ["CHUNK_ROWS", "Chunk", "CsvPoints", "Plan", "batch", "check_batchable", "per_row",
           "plan_for", "prefetch", "run_batch", "sweep", "sweep_engine"]


class Chunk:
    """One block of rows: their values and gradients (per output), the input columns kept,
    and where they came from."""

    __slots__ = ("first_line", "first_row", "values", "jacobian", "kept", "chars_read")

    def __init__(self, first_line: int, values: list, jacobian: list, chars_read: int,
                 first_row: int = 1, kept: dict | None = None):
        self.first_line = first_line
        self.first_row = first_row
        self.values = values
        self.jacobian = jacobian
        self.kept = kept or {}
        self.chars_read = chars_read

    @property
    def value(self):
        """The first output's values (the only one of a one-output formula)."""
        return self.values[0]

    @property
    def grads(self) -> dict:
        """The first output's gradient columns, by variable."""
        return self.jacobian[0]

    def __len__(self) -> int:
        return len(self.values[0])


def check_batchable(tape: Tape, fixed: Mapping[str, object]) -> None:
    """Batch mode vectorises element by element: elementwise ops, scalar values."""
    for op in {op.name: op for op in tape.ops}.values():
        if not op.elementwise:
            raise InputError(f"batch mode (--points) evaluates each row on its own, so it takes "
                             f"elementwise operations only; {op.name} works on whole tensors")

    for name, value in fixed.items():
        if np.ndim(value):
            raise InputError(f"batch mode (--points) takes scalar values only; --at {name} has "
                             f"shape {np.shape(value)}")
    for i, v in tape.literals.items():
        if np.ndim(v):
            raise InputError("batch mode (--points) takes scalar formulas; this one has a "
                             f"vector literal `{tape.expr(i, 30)}`")


@dataclass
class Plan:
    """Everything a chunk's sweeps need, small and picklable (Dask ships it to each worker
    once): the per-row tape, the --at values standing in for missing columns, the --wrt names."""

    tape: Tape
    fixed: dict
    wrt: list
    flags: list

    @property
    def needs(self) -> list[str]:
        """The columns the sweeps read from the file."""
        return [n for n in self.tape.variables if n not in self.fixed]

    def compiled(self):
        """The tape compiled into numpy code over columns (arraysweep), made on first use where
        the plan runs (never pickled); None when the tape is too long for it."""
        got = self.__dict__.get("_compiled", _UNSET)
        if got is _UNSET:
            got = arraysweep.compile_sweep(self.tape, self.wrt, self.flags, self.fixed)
            self.__dict__["_compiled"] = got
        return got

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        return state


_UNSET = object()


def plan_for(tape: Tape, columns: Sequence[str], fixed: Mapping[str, object],
             wrt: Sequence[str], path: str) -> Plan:
    """Check the formula against the file's columns and make its Plan."""
    check_batchable(tape, fixed)
    missing = [n for n in tape.variables if n not in columns and n not in fixed]
    if missing:
        them = "it" if len(missing) == 1 else "them"
        raise InputError(f"{path} has no column for {', '.join(missing[:5])}, and --at "
                         f"gives no value for {them}")
    tape = per_row(tape)
    given = {n: float(fixed[n]) for n in tape.variables if n not in columns}
    return Plan(tape, given, list(wrt), engine.active(tape, wrt))


def sweep(plan: Plan, block: Mapping[str, np.ndarray], n: int) -> tuple[list, list]:
    """One chunk: (values per output, [{variable: gradient column}] per output).

    The compiled sweep (arraysweep: the same numbers, bit for bit) where it applies, else the
    engine's interpreted sweeps (sweep_engine)."""
    fast = plan.compiled()
    if fast is not None and _columns_fit(fast.needs, block, n):
        return fast(block, n)
    return sweep_engine(plan, block, n)


_F64 = np.dtype(np.float64)


def _columns_fit(needs: Sequence[str], block: Mapping[str, np.ndarray], n: int) -> bool:
    """Whether every column the formula reads is n float64 numbers (as the readers give them);
    anything else goes through the engine, which takes whatever numpy takes."""
    ndarray = np.ndarray
    for name in needs:
        c = block.get(name)
        if type(c) is not ndarray or c.dtype is not _F64 or c.shape != (n,):
            return False
    return n > 0


def sweep_engine(plan: Plan, block: Mapping[str, np.ndarray], n: int) -> tuple[list, list]:
    """One chunk through engine.py's interpreted sweeps (the plain path)."""
    tape = plan.tape
    point = {name: block[name] for name in tape.variables if name in block}
    for name, v in plan.fixed.items():  # a full column, so each row keeps its own gradient
        point[name] = np.full(n, v, dtype=np.float64)
    values = engine.forward(tape, point)
    partials = engine.local_partials(tape, values, flags=plan.flags)
    outs, jacobian = [], []
    for out in tape.outputs:
        value = np.broadcast_to(values[out], (n,))
        adj = engine.backward(tape, values, partials, plan.flags, out)
        grads = {}
        for name in plan.wrt:
            g = adj[tape.variables[name]]
            grads[name] = np.broadcast_to(np.zeros(n) if g is None else g, (n,))
        outs.append(value)
        jacobian.append(grads)
    return outs, jacobian


def sweep_columns(tape: Tape, point: Mapping[str, object], wrt: list[str],
                  min_rows: int = 1) -> tuple[list, list, dict] | None:
    """Batch mode over columns held in memory (the API's evaluate() of long columns): (each
    output's values, [{name: gradient}] per output, a copy of every column read) as fresh
    arrays, from the compiled sweep chunk by chunk while a chunk's columns are in the cache;
    None unless every variable is a float64 vector of one length (at least `min_rows`), the
    formula is elementwise as it is per row (no max of one column, which reduces the column),
    and each output depends on some variable (else it is a scalar, not a column)."""
    n = None
    for name in tape.variables:
        v = point.get(name)
        if (type(v) is not np.ndarray or v.dtype != np.float64 or v.ndim != 1
                or not v.flags.c_contiguous or (n is not None and v.shape[0] != n)):
            return None
        n = v.shape[0]
    if n is None or n < max(1, min_rows) or not tape.outputs:
        return None
    try:
        check_batchable(tape, {})  # elementwise ops, scalar literals
    except InputError:
        return None
    if per_row(tape) is not tape:
        return None
    reach = engine.active(tape, list(tape.variables))
    if not all(reach[o] for o in tape.outputs):
        return None
    fast = Plan(tape, {}, list(wrt), engine.active(tape, wrt)).compiled()
    if fast is None:
        return None
    outs = [np.empty(n) for _ in tape.outputs]
    grads = [{name: np.empty(n) for name in wrt} for _ in tape.outputs]
    columns = [(name, point[name]) for name in fast.needs]
    kept = {name: np.empty(n) for name, _ in columns}
    # One thread: two, each with half the chunks, finished 1.4x sooner at best but 1.6x later
    # in the median (each chunk is some 20 numpy calls, and the threads hand the GIL back and
    # forth between them).
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(n, lo + CHUNK_ROWS)
        block = {name: c[lo:hi] for name, c in columns}
        for name, c in block.items():
            kept[name][lo:hi] = c
        values, jacobian = fast(block, hi - lo)
        for k, v in enumerate(values):
            outs[k][lo:hi] = v
            for name, g in jacobian[k].items():
                grads[k][name][lo:hi] = g
        del values, jacobian  # the sweep's arrays go back to its pool
    return outs, grads, kept


def run_batch(tape: Tape, points, fixed: Mapping[str, object], wrt: Sequence[str],
              rows: int = CHUNK_ROWS, keep: Sequence[str] = ()) -> Iterator[Chunk]:
    """Values and gradients for every row, one chunk at a time (checked before the first)."""
    plan = plan_for(tape, points.columns, fixed, wrt, points.path)
    if hasattr(points, "want"):  # columnar files: read only the columns needed
        points.want(list(dict.fromkeys(plan.needs + list(keep))))
    return _chunks(plan, points, rows, list(keep))


def keep_columns(keep: str | None, columns: Sequence[str], path: str) -> list[str]:
    """--keep (every column: '*') or --keep x,y: the input columns to copy, checked."""
    if keep is None:
        return []
    if keep.strip() in ("*", ""):
        return list(columns)
    names = [k.strip() for k in keep.split(",") if k.strip()]
    unknown = [k for k in names if k not in columns]
    if unknown:
        raise InputError(f"--keep {', '.join(unknown)}: {path} has no such column (it has "
                         f"{', '.join(list(columns)[:8])})")
    return list(dict.fromkeys(names))


def batch(s: "Session", path: str, stream: io.TextIOBase | None = None,
          keep: str | None = None, rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """`eval --points FILE` for a loaded formula: open the file (or `stream`), add the warnings
    about its columns to `s.warnings`, check it all, and return the chunks (lazily)."""
    try:
        reader = open_points(path, stream)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    kept = keep_columns(keep, reader.columns, path)
    shadowed = [n for n in s.point if n in reader.columns]
    if shadowed:
        s.warnings.append(f"--at {', '.join(shadowed)}: {path} has a column of that name, "
                          "which gives the values instead")
    unused = [c for c in reader.columns if c not in s.tape.variables and c not in kept]
    if unused:
        s.warnings.append(f"{path}: column{'s' if len(unused) > 1 else ''} "
                          f"{', '.join(unused[:5])} not used by the formula")
    idle = [n for n in s.point if n not in s.tape.variables and n not in reader.columns]
    if idle:  # as one point's run says it
        s.warnings.append(f"--at {', '.join(idle[:5])}: not used by the formula; "
                          f"{'its value is' if len(idle) == 1 else 'their values are'} ignored")
    return _utf8(run_batch(s.tape, reader, s.point, s.wrt, rows, kept), path)


def _utf8(chunks: Iterator[Chunk], path: str) -> Iterator[Chunk]:
    try:
        yield from chunks
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None


def _not_utf8(path: str, exc: UnicodeDecodeError) -> InputError:
    where = "standard input" if path == "-" else path
    return InputError(f"{where} is not valid UTF-8 text (byte 0x{exc.object[exc.start]:02x})")


def per_row(tape: Tape) -> Tape:
    """The tape as each row sees it: max(a) or min(a) of one scalar is a itself (on a column
    they would reduce over all rows), so those nodes become named copies."""
    single = [i for i, op in enumerate(tape.ops)
              if op.name in ("max", "min") and len(tape.inputs[i]) == 1]
    if not single:
        return tape
    ops = list(tape.ops)
    for i in single:
        ops[i] = lookup("id")
    return replace(tape, ops=ops)


def _chunks(plan: Plan, points, rows: int, keep: list[str]) -> Iterator[Chunk]:
    any_rows = False
    row = 1
    for start, block in prefetch(points.chunks(rows)):
        n = len(next(iter(block.values())))
        values, jacobian = sweep(plan, block, n)
        any_rows = True
        yield Chunk(start, values, jacobian, points.done, row, {k: block[k] for k in keep})
        row += n
    if not any_rows:
        raise InputError(f"{points.path} has a header but no rows of numbers")


_END = object()


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """The items of `items`, produced by a thread of its own up to `depth` ahead (the readers
    parse in native code without the GIL, so reading overlaps the sweeps); same order, and an
    error in the thread is raised here, where the item would have been."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, _END))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((False, exc))

    thread = threading.Thread(target=produce, name="gradcli-read", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()
