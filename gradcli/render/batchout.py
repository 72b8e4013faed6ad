"""Batch results as text: CSV (numbers only) or JSON Lines (strict JSON)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Sequence

from .jsonout import number

if TYPE_CHECKING:  # pragma: no cover
    from ..batch import Chunk


def csv_header(wrt: Sequence[str]) -> str:
    return ",".join(["value"] + [f"d_{name}" for name in wrt]) + "\n"


def _cell(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def csv_rows(chunk: "Chunk", wrt: Sequence[str]) -> str:
    """The chunk's rows as CSV: numbers only (never text a spreadsheet would run)."""
    columns = [chunk.value.tolist()] + [chunk.grads[name].tolist() for name in wrt]
    return "".join(",".join(map(_cell, row)) + "\n" for row in zip(*columns))


def jsonl_rows(chunk: "Chunk", wrt: Sequence[str], first_index: int) -> str:
    """The chunk's rows as JSON Lines: {"row", "value", "gradient"} (strict JSON)."""
    keys = [json.dumps(name, ensure_ascii=False) for name in wrt]
    columns = [chunk.grads[name].tolist() for name in wrt]
    out = []
    for k, v in enumerate(chunk.value.tolist()):
        grad = ", ".join(f"{key}: {number(col[k])}" for key, col in zip(keys, columns))
        out.append(f'{{"row": {first_index + k}, "value": {number(v)}, "gradient": {{{grad}}}}}\n')
    return "".join(out)
