"""Batch mode: one formula over many points (`eval --points data.csv`), vectorised with numpy.

The CSV is read in chunks of rows; each chunk is one forward and one reverse sweep over arrays
(every variable a column), so memory stays bounded by the chunk, whatever the file's length.
"""

from __future__ import annotations

import io
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from . import engine
from .errors import InputError
from .ops import lookup
from .points import scalar
from .tape import Tape

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

CHUNK_ROWS = 65536


class Chunk:
    """One block of rows: their values and gradients, and where they came from."""

    __slots__ = ("first_line", "value", "grads", "chars_read")

    def __init__(self, first_line: int, value, grads: dict, chars_read: int):
        self.first_line = first_line
        self.value = value
        self.grads = grads
        self.chars_read = chars_read

    def __len__(self) -> int:
        return len(self.value)


def check_batchable(tape: Tape, fixed: Mapping[str, object]) -> None:
    """Batch mode vectorises element by element: one output, elementwise ops, scalar values."""
    if len(tape.outputs) != 1:
        raise InputError("batch mode (--points) takes a formula with one output; this one has "
                         f"{len(tape.outputs)}")
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


class CsvPoints:
    """A CSV file of points: a header of variable names, then one row of numbers per point."""

    def __init__(self, path: str, stream: io.TextIOBase | None = None):
        self.path = path
        self.fh = stream if stream is not None else _open(path)
        self.line = 0
        header = self._next_line()
        while header is not None and not header.strip():
            header = self._next_line()
        if header is None:
            raise InputError(f"{path} is empty: the first line must name the variables, "
                             "as in x,y,z")
        header = header.lstrip("\ufeff")
        self.columns = [c.strip() for c in header.rstrip("\r\n").split(",")]
        for k, name in enumerate(self.columns):
            if not name.isidentifier():
                raise InputError(f"{path} line {self.line}: column {k + 1} of the header, "
                                 f"{name!r}, is not a variable name")
        seen = set()
        for name in self.columns:
            if name in seen:
                raise InputError(f"{path} line {self.line}: the header names {name} twice")
            seen.add(name)
        self.rows_read = 0
        self.chars_read = len(header)

    def _next_line(self) -> str | None:
        line = self.fh.readline()
        if not line:
            return None
        self.line += 1
        return line

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(line number of the chunk's first row, {column: float64 array}) per chunk."""
        while True:
            start = self.line + 1
            lines = list(islice(self.fh, rows))
            if not lines:
                break
            block = self._parse(lines, start)
            self.line += len(lines)
            self.chars_read += sum(map(len, lines))
            if block is not None:
                yield start, block

    def _parse(self, lines: list[str], start: int) -> dict[str, np.ndarray] | None:
        kept = [ln for ln in lines if ln.strip()]
        if not kept:
            return None
        ncol = len(self.columns)
        try:
            table = np.loadtxt(kept, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
            if table.shape[1] != ncol:
                raise ValueError("width")
        except ValueError:
            self._find_bad_cell(lines, start)
            raise  # pragma: no cover - _find_bad_cell always raises
        self.rows_read += table.shape[0]
        return {name: table[:, k] for k, name in enumerate(self.columns)}

    def _find_bad_cell(self, lines: Sequence[str], start: int) -> None:
        ncol = len(self.columns)
        for offset, ln in enumerate(lines):
            if not ln.strip():
                continue
            cells = ln.rstrip("\r\n").split(",")
            where = f"{self.path} line {start + offset}"
            if len(cells) != ncol:
                raise InputError(f"{where} has {len(cells)} cells; the header has {ncol}")
            for name, cell in zip(self.columns, cells):
                if not cell.strip():
                    raise InputError(f"{where}, column {name}: the cell is empty")
                try:
                    scalar(name, cell)
                    float(cell)
                except (InputError, ValueError):
                    raise InputError(f"{where}, column {name}: {cell.strip()[:40]!r} is not a "
                                     "number") from None
        raise InputError(f"{self.path}: a row near line {start} cannot be read")


def _open(path: str):
    try:
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def run_batch(tape: Tape, points: CsvPoints, fixed: Mapping[str, object],
              wrt: Sequence[str], rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Values and gradients for every row, one chunk at a time (checked before the first)."""
    check_batchable(tape, fixed)
    missing = [n for n in tape.variables if n not in points.columns and n not in fixed]
    if missing:
        them = "it" if len(missing) == 1 else "them"
        raise InputError(f"{points.path} has no column for {', '.join(missing[:5])}, and --at "
                         f"gives no value for {them}")
    return _chunks(tape, points, fixed, wrt, rows)


def batch(s: "Session", path: str, stream: io.TextIOBase | None = None) -> Iterator[Chunk]:
    """`eval --points FILE` for a loaded formula: open the CSV (or `stream`), add the warnings
    about its columns to `s.warnings`, check it all, and return the chunks (lazily)."""
    try:
        reader = CsvPoints(path, stream)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    shadowed = [n for n in s.point if n in reader.columns]
    if shadowed:
        s.warnings.append(f"--at {', '.join(shadowed)}: {path} has a column of that name, "
                          "which gives the values instead")
    unused = [c for c in reader.columns if c not in s.tape.variables]
    if unused:
        s.warnings.append(f"{path}: column{'s' if len(unused) > 1 else ''} "
                          f"{', '.join(unused[:5])} not used by the formula")
    return _utf8(run_batch(s.tape, reader, s.point, s.wrt), path)


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


def _chunks(tape: Tape, points: CsvPoints, fixed: Mapping[str, object], wrt: Sequence[str],
            rows: int) -> Iterator[Chunk]:
    tape = per_row(tape)
    fixed_names = [n for n in fixed if n in tape.variables and n not in points.columns]
    flags = engine.active(tape, wrt)
    out = tape.outputs[0]
    any_rows = False
    for start, block in points.chunks(rows):
        n = len(next(iter(block.values())))
        point = {name: block[name] for name in tape.variables if name in block}
        for name in fixed_names:  # a full column, so each row keeps its own gradient
            point[name] = np.full(n, fixed[name], dtype=np.float64)
        values = engine.forward(tape, point)
        partials = engine.local_partials(tape, values, flags=flags)
        values[out] = np.broadcast_to(values[out], (n,))
        adj = engine.backward(tape, values, partials, flags, out)
        grads = {}
        for name in wrt:
            g = adj[tape.variables[name]]
            grads[name] = np.broadcast_to(np.zeros(n) if g is None else g, (n,))
        any_rows = True
        yield Chunk(start, values[out], grads, points.chars_read)
    if not any_rows:
        raise InputError(f"{points.path} has a header but no rows of numbers")
