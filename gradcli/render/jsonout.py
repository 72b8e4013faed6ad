"""Strict JSON (RFC 8259) for results: non-finite numbers become "NaN"/"Infinity" strings.

Written piece by piece rather than through json.dumps of one big dict, so a 10^6-node result
does not build 10^6 dicts first.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Result

SCHEMA_VERSION = 1
_str = json.JSONEncoder(ensure_ascii=False).encode


def number(v) -> str:
    """A JSON number, or the strings "NaN", "Infinity", "-Infinity" for non-finite values."""
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(number(x) for x in v) + "]"
    f = float(v)
    if math.isfinite(f):
        return repr(f)
    if f != f:
        return '"NaN"'
    return '"Infinity"' if f > 0 else '"-Infinity"'


def _mapping(d: dict) -> str:
    return "{" + ", ".join(f"{_str(k)}: {number(v)}" for k, v in d.items()) + "}"


def eval_json(r: "Result") -> str:
    """The `eval --json` document of contract §4."""
    tape = r.tape
    several = len(tape.outputs) > 1
    parts = [
        "{", f'"schema_version": {SCHEMA_VERSION}, ',
        f'"expression": {_str(tape.text)}, ',
        f'"at": {_mapping(r.at)}, ',
        f'"value": {number(r.value)}, ',
    ]
    if several:
        parts.append('"jacobian": [' + ", ".join(_mapping(row) for row in r.jacobian) + "], ")
    else:
        parts.append(f'"gradient": {_mapping(r.gradient)}, ')
    parts.append(f'"outputs": {json.dumps(tape.outputs)}, ')
    parts.append('"nodes": [')
    ops, inputs, names = tape.ops, tape.inputs, tape.names
    values, partials, active = r.values, r.partials, r.active
    for i in range(len(tape)):
        if i:
            parts.append(", ")
        ins = inputs[i]
        name = names.get(i)
        ps = partials[i]
        shown = [ps[k] if active[j] else None for k, j in enumerate(ins)]
        parts.append(
            f'{{"id": {i}, "op": "{ops[i].name}", "expr": {_str(tape.expr(i))}, '
            f'"name": {"null" if name is None else _str(name)}, '
            f'"inputs": [{", ".join(map(str, ins))}], '
            f'"value": {number(values[i])}, "partials": {number(shown)}, '
            f'"grad": {number(r.grad(i))}}}')
    parts.append("], ")
    parts.append(f'"warnings": {json.dumps(r.warnings, ensure_ascii=False)}')
    parts.append("}")
    return "".join(parts)
