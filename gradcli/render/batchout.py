"""Batch results as CSV (numbers only); JSON Lines rows are built in jsonout."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from .jsonout import jsonl_rows, nonfinite

if TYPE_CHECKING:  # pragma: no cover
    from ..batch import Chunk

__all__ = ["csv_header", "csv_rows", "jsonl_rows"]


def csv_header(wrt: Sequence[str]) -> str:
    return ",".join(["value"] + [f"d_{name}" for name in wrt]) + "\n"


def _cell(v: float) -> str:
    return repr(v) if math.isfinite(v) else nonfinite(v)


def csv_rows(chunk: "Chunk", wrt: Sequence[str]) -> str:
    """The chunk's rows as CSV: numbers only (never text a spreadsheet would run)."""
    columns = [chunk.value.tolist()] + [chunk.grads[name].tolist() for name in wrt]
    return "".join(",".join(map(_cell, row)) + "\n" for row in zip(*columns))
