"""Strict JSON (RFC 8259) for results: non-finite numbers become "NaN"/"Infinity" strings.

Written piece by piece rather than through json.dumps of one big dict, so a 10^6-node result
does not build 10^6 dicts first.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Result

SCHEMA_VERSION = 1
_str = json.JSONEncoder(ensure_ascii=False).encode


def number(v) -> str:
    """A JSON number, or the strings "NaN", "Infinity", "-Infinity" for non-finite values."""
    try:
        f = float(v)
    except OverflowError:  # an exact Fraction beyond float64: its float is ±Infinity
        return '"Infinity"' if v > 0 else '"-Infinity"'
    except TypeError:
        if v is None:
            return "null"
        if hasattr(v, "tolist"):
            v = v.tolist()
        return "[" + ", ".join(number(x) for x in v) + "]"
    if f - f == 0:  # finite
        return repr(f)
    if f != f:
        return '"NaN"'
    return '"Infinity"' if f > 0 else '"-Infinity"'


def exact_text(v) -> str:
    """An exact value as a JSON string such as "-1/4" or "3"; null where it is not exact."""
    if type(v) is Fraction:
        return f'"{v}"'
    return "null"


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
    if r.exact:
        outs = [exact_text(r.values[o]) for o in tape.outputs]
        parts.append(f'"value_exact": {outs[0] if not several else "[" + ", ".join(outs) + "]"}, ')
        rows = ["{" + ", ".join(f"{_str(x)}: {exact_text(adj[tape.variables[x]])}"
                                for x in r.wrt) + "}" for adj in r.adjoints]
        if several:
            parts.append('"jacobian_exact": [' + ", ".join(rows) + "], ")
        else:
            parts.append(f'"gradient_exact": {rows[0]}, ')
    parts.append(f'"outputs": {json.dumps(tape.outputs)}, ')
    if r.mode != "reverse":
        parts.append(f'"mode": "{r.mode}", "sweeps": {json.dumps(r.sweeps)}, ')
    if r.kinks:
        parts.append(f'"subgradient": "{r.convention}", ')
    parts.append('"nodes": [')
    ops, inputs, names = tape.ops, tape.inputs, tape.names
    values, partials, active, adjoints = r.values, r.partials, r.active, r.adjoints
    expr = tape.expr
    single = adjoints[0] if len(adjoints) == 1 else None
    tangents = r.tangents
    keys = [_str(n) for n in r.wrt]
    kinks = set(r.kinks)
    for i in range(len(tape)):
        ins = inputs[i]
        name = names.get(i)
        if not active[i]:
            grad = "null"
        elif single is not None:
            grad = number(single[i])
        else:
            grad = "[" + ", ".join(number(adj[i]) for adj in adjoints) + "]"
        if ins:
            ps = partials[i]
            shown = ", ".join(number(ps[k]) if ps is not None and active[j] else "null"
                              for k, j in enumerate(ins))
            ids = ", ".join(map(str, ins))
        else:
            shown = ids = ""
        extra = ""
        if tangents is not None:
            extra += ', "tangent": {' + ", ".join(
                f"{key}: {number(tangents[n][i])}" for n, key in zip(r.wrt, keys)) + "}"
        if kinks and i in kinks:
            extra += f', "kink": "{r.convention}"'
        if r.exact:
            extra += f', "value_exact": {exact_text(values[i])}'
            if active[i]:
                extra += ', "grad_exact": ' + (exact_text(single[i]) if single is not None else
                                              "[" + ", ".join(exact_text(a[i]) for a in adjoints)
                                              + "]")
        parts.append(
            f'{", " if i else ""}{{"id": {i}, "op": "{ops[i].name}", "expr": {_str(expr(i))}, '
            f'"name": {"null" if name is None else _str(name)}, "inputs": [{ids}], '
            f'"value": {number(values[i])}, "partials": [{shown}], "grad": {grad}{extra}}}')
    parts.append("], ")
    parts.append(f'"warnings": {json.dumps(r.warnings, ensure_ascii=False)}')
    parts.append("}")
    return "".join(parts)
