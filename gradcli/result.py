"""Evaluating a loaded formula: `run` turns a tape and a point into a `Result` (plain data:
values, local partials, adjoints, warnings). The public face, with `to_json()`, is `api.py`.

Two paths give the same Result. `run(..., floats=True)` first tries the scalar path: a tape
with one output whose values are all Python floats, swept by a function compiled once per tape
(compiled.sweep_function, kept in a small cache) in reverse mode; its values are floats, not
numpy float64 (the same doubles). Anything it cannot promise identically (a kink, a value,
partial or adjoint that is not finite, an op without a float rule, tensors, --exact, several
outputs, forward mode) goes to the engine's sweeps, which are the reference and give every
warning. The scalar path imports no numpy; the engine path imports it (and engine) when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Mapping, Sequence

import sys

from . import compiled
from .errors import InputError
from .ops import CONSTANTS, CONVENTIONS
from .parse import gc_paused
from .session import MAX_NODES, Session, check_wrt
from .tape import Tape, active, shape_str


@dataclass(frozen=True, slots=True)
class Node:
    """One node as shown to users: its value, local partials and gradient(s)."""

    id: int
    op: str
    expr: str
    name: str | None
    inputs: tuple[int, ...]
    value: float
    partials: tuple  # ∂node/∂input for each input (None where the input carries no gradient,
    # and for structural ops such as matmul, whose local derivative is a Jacobian)
    grad: object  # ∂output/∂node; a list (one per output) when there are several; None if inactive


class Nodes(Sequence):
    """The result's nodes, made on demand (a 10^6-node result holds no 10^6 Node objects)."""

    def __init__(self, result: "Result"):
        self._r = result

    def __len__(self) -> int:
        return len(self._r.tape)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._r.node(i)


@dataclass(slots=True)
class Result:
    """What `evaluate` computes: values, local partials and adjoints of every node."""

    tape: Tape
    at: dict  # name -> value as given: floats (numpy float64 or Python), arrays, Fractions
    wrt: list[str]
    values: list
    partials: list
    active: list[bool]
    adjoints: list[list]  # one adjoint list per output
    warnings: list[str]
    kinks: list[int] = field(default_factory=list)  # nodes evaluated exactly at a kink
    convention: str = "cs231n"  # the slope picked at kinks (--subgradient)
    mode: str = "reverse"  # reverse, forward or both (what the renderers show)
    tangents: dict[str, list] | None = None  # forward mode: per wrt variable, dnode/dvariable
    exact: bool = False  # --exact: values are fractions.Fraction wherever rational

    @property
    def sweeps(self) -> dict[str, int]:
        """How many sweeps a full Jacobian takes: forward, one per input element; reverse, one
        per output element."""
        import numpy as np

        inputs = sum(int(np.size(self.values[self.tape.variables[n]])) for n in self.wrt)
        outputs = sum(int(np.size(self.values[o])) for o in self.tape.outputs)
        return {"forward": inputs, "reverse": outputs}

    def tangent(self, name: str, i: int):
        """Node i's tangent for the forward sweep seeded on variable `name` (None: no tangent)."""
        if self.tangents is None:
            return None
        return _py(self.tangents[name][i])

    @property
    def text(self) -> str:
        return self.tape.text

    @property
    def outputs(self) -> list[int]:
        return self.tape.outputs

    @property
    def value(self):
        """The output's value (a list of values when the formula has several outputs)."""
        vals = [_py(self.values[o]) for o in self.outputs]
        return vals[0] if len(vals) == 1 else vals

    @property
    def jacobian(self) -> list[dict[str, float]]:
        """One gradient mapping per output: jacobian[k][x] = ∂output_k/∂x."""
        rows = []
        for adj in self.adjoints:
            rows.append({name: _py(adj[self.tape.variables[name]]) for name in self.wrt})
        return rows

    @property
    def gradient(self) -> dict[str, float]:
        """∂output/∂x for every variable x in wrt (the first output's, if there are several)."""
        return self.jacobian[0]

    @property
    def nodes(self) -> Nodes:
        return Nodes(self)

    def grad(self, i: int):
        """Node i's gradient: a number, a list (one per output), or None if it carries none."""
        if not self.active[i]:
            return None
        if len(self.adjoints) == 1:
            return _py(self.adjoints[0][i])
        return [_py(adj[i]) for adj in self.adjoints]

    def node(self, i: int) -> Node:
        tape = self.tape
        ins = tape.inputs[i]
        ps = self.partials[i]
        shown = tuple(_py(ps[k]) if ps is not None and self.active[j] else None
                      for k, j in enumerate(ins))
        return Node(i, tape.ops[i].name, tape.expr(i), tape.names.get(i), ins,
                    _py(self.values[i]), shown, self.grad(i))


MODES = ("reverse", "forward", "both")


def check_options(mode: str, subgradient: str) -> None:
    if mode not in MODES:
        raise InputError(f"--mode {mode}: choose one of {', '.join(MODES)}")
    if subgradient not in CONVENTIONS:
        raise InputError(f"--subgradient {subgradient}: choose one of {', '.join(CONVENTIONS)}")


def run_session(s: Session, *, mode: str = "reverse", subgradient: str = "cs231n",
                floats: bool = False) -> Result:
    """Evaluate a loaded formula (`session.load`) at its point, for its --wrt names (`floats`:
    as for `run`)."""
    # s.wrt is resolved already; [] only for a formula without variables (None says the same)
    return run(s.tape, s.point, s.wrt or None, s.warnings, mode=mode, subgradient=subgradient,
               exact=s.exact, max_nodes=s.max_nodes, floats=floats)


def run(tape: Tape, point: dict, wrt: Iterable[str] | None,
        warnings: list[str] | None = None, *, mode: str = "reverse",
        subgradient: str = "cs231n", exact: bool = False,
        max_nodes: int = MAX_NODES, floats: bool = False) -> Result:
    """Evaluate a parsed tape at a point (forward, local partials, one reverse sweep per output,
    and in forward mode one tangent sweep per input). With several outputs (or tangents), each
    sweep runs only over the nodes it reaches, and all of them together visit at most
    `max_nodes` nodes (0: no limit), checked before the arithmetic.

    `floats`: try the scalar path first (see the module's text): its values are Python floats,
    so only callers that compute on them as floats (not numpy's float64: x / 0 raises) ask."""
    check_options(mode, subgradient)
    if floats and mode == "reverse" and not exact:
        result = _scalar_run(tape, point, wrt, warnings, subgradient)
        if result is not None:
            return result
    import numpy as np

    from . import engine, reverse

    wrt_list = check_wrt(tape, wrt)
    warnings = _point_warnings(tape, point, list(warnings or []))
    # Python floats (--at without numpy, the API's floats) computed as numpy float64, as before
    at = {k: np.float64(v) if type(v) is float else v for k, v in point.items()}
    kinks: list[int] = []
    with gc_paused():
        fused = None  # one output, not exact: flags, partials (made on first read) and adjoints
        if exact:
            flags = engine.active(tape, wrt_list)
            values, lost = engine.forward_exact(tape, at)
            partials = engine.local_partials_exact(tape, values, subgradient, kinks)
            warnings += _inexact_warnings(tape, point, lost)
        else:
            values = engine.forward(tape, at)
            if len(tape.outputs) == 1:
                fused = reverse.gradients(tape, values, wrt_list, tape.outputs[0], subgradient,
                                          kinks)
                flags, partials = fused[0], fused[1]
            else:
                flags = engine.active(tape, wrt_list)
                partials = engine.local_partials(tape, values, subgradient, kinks, flags)
        if fused is not None:
            adjoints = [fused[2]]
        elif len(tape.outputs) == 1:
            adjoints = [engine.backward(tape, values, partials, flags, tape.outputs[0])]
        else:
            adjoints = engine.backward_many(tape, values, partials, flags, tape.outputs,
                                            max_nodes)
        tangents = None
        if mode != "reverse":
            seeds = {}
            for name in wrt_list:
                i = tape.variables[name]
                seeds[i] = Fraction(1) if exact and type(values[i]) is Fraction else np.ones(
                    np.shape(values[i]))[()]
            tangents = dict(zip(wrt_list, engine.jvp_many(tape, values, partials, seeds,
                                                          max_nodes)))
    warnings += reverse.nonfinite_warnings(tape, values, partials, flags)
    warnings += _kink_warnings(tape, kinks, subgradient)
    result = Result(tape, dict(point), wrt_list, values, partials, flags, adjoints, warnings,
                    kinks, subgradient, mode, tangents, exact)
    _explain_nonfinite(result)
    _tensor_outputs(result)
    return result


def _point_warnings(tape: Tape, point: Mapping, warnings: list[str]) -> list[str]:
    """`warnings`, with one more for each value given for a name that is not a variable."""
    for name in point:
        if name not in tape.variables:
            if name in CONSTANTS:
                warnings.append(f"{name} is a constant ({CONSTANTS[name]!r}); the value given "
                                "for it is not used")
            elif name in tape.bound:
                warnings.append(f"{name} is computed by the formula; the value given for it is "
                                "not used")
            else:
                warnings.append(f"{name} is not used by the formula; its value is ignored")
    return warnings


#: The scalar path's plans: (id(tape), wrt) -> [tape, wrt list, flags, fn]; fn None: not
#: compiled yet, False: cannot be. Bounded; the oldest goes first. The tape is kept in the plan,
#: so its id names no other tape while the plan lives.
_PLANS: dict = {}
PLAN_SLOTS = 64
#: A tape is compiled at its first use (kept for compatibility with tests that loop this often).
COMPILE_AT = 1
#: The scalar path takes tapes of at most this many nodes. The choice depends on the tape
#: alone, never on how often it was used or on what is imported: one formula at one point gives
#: the very same bits every time, through every command and the API (Python's math and numpy
#: may differ in the last bit for exp, log, tanh, ...; see README, "Numbers").
FIRST_USE_NODES = 500


def _plan(tape: Tape, wrt) -> list | None:
    if len(tape.outputs) != 1 or len(tape) > min(FIRST_USE_NODES, compiled.SWEEP_NODES):
        return None
    if wrt is not None and not isinstance(wrt, (list, tuple)):
        return None  # a generator or a set: check_wrt reads it once, in the engine's path
    key = (id(tape), None if wrt is None else tuple(wrt))
    plan = _PLANS.get(key)
    if plan is None or plan[0] is not tape:
        wrt_list = check_wrt(tape, wrt)  # bad --wrt raises here, as in the engine's path
        plan = [tape, wrt_list, active(tape, wrt_list), None]
        if len(_PLANS) >= PLAN_SLOTS:
            _PLANS.pop(next(iter(_PLANS)), None)
        _PLANS[key] = plan
    fn = plan[3]
    if fn is None:
        plan[3] = fn = compiled.sweep_function(tape, plan[2]) or False
    return plan if fn else None


def _scalar_run(tape: Tape, point: Mapping, wrt, warnings: list[str] | None,
                subgradient: str) -> Result | None:
    """The scalar path (None: the engine's turn)."""
    plan = _plan(tape, wrt)
    if plan is None:
        return None
    args = []
    for name in tape.variables:
        v = point.get(name)
        if type(v) is not float:
            if type(v).__name__ != "float64" or type(v).__module__ != "numpy":
                return None  # missing (the engine says so), a tensor, a Fraction, an int
            v = float(v)
        args.append(v)
    try:
        values, partials, adjoint = plan[3](*args)
    except (ArithmeticError, ValueError):  # a kink, a pole, an overflow, a NaN: the engine
        return None
    warnings = _point_warnings(tape, point, list(warnings or []))
    return Result(tape, dict(point), list(plan[1]), values, partials, list(plan[2]), [adjoint],
                  warnings, [], subgradient)



def _explain_nonfinite(result: Result) -> None:
    """Make sure every non-finite number in the output comes with at least one warning."""
    from . import engine

    if result.warnings and any("Infinity" in w or "NaN" in w or "finite" in w
                               for w in result.warnings):
        return
    bad = [name for name, v in result.at.items()
           if name in result.tape.variables and not engine.finite(v)]
    if bad:
        result.warnings.append("the value of " + ", ".join(bad) + " is not finite")
        return
    for adj in result.adjoints:
        for name in result.wrt:
            if not engine.finite(adj[result.tape.variables[name]]):
                result.warnings.append(f"the gradient with respect to {name} is not finite")
                return


def _inexact_warnings(tape: Tape, point: Mapping[str, object], lost: list[int]) -> list[str]:
    out = [f"--at {name} is not a rational number as written; it is a float in --exact mode"
           for name, v in point.items() if name in tape.variables and type(v) is not Fraction]
    for i in lost[:10]:
        op = tape.ops[i]
        out.append(f"node {i} `{tape.expr(i, 40)}` ({op.name}) is not rational here (or too "
                   "large to keep exact): it and the nodes that depend on it are computed in "
                   "floats")
    if len(lost) > 10:
        out.append(f"{len(lost) - 10} more nodes fall back to floats")
    return out


def _kink_warnings(tape: Tape, kinks: list[int], convention: str) -> list[str]:
    out = []
    for i in kinks[:20]:
        op = tape.ops[i]
        out.append(f"node {i} `{tape.expr(i, 40)}` is evaluated exactly at a kink of {op.name} "
                   f"({op.kink_rule}); its slope follows the {convention} convention "
                   "(--subgradient cs231n|half|zero)")
    if len(kinks) > 20:
        out.append(f"{len(kinks) - 20} more nodes are at kinks")
    return out


def _tensor_outputs(result: Result) -> None:
    """Say how a tensor output is backpropagated: from a gradient of ones, i.e. as its sum."""
    import numpy as np

    for o in result.tape.outputs:
        value = result.values[o]
        if isinstance(value, np.ndarray) and result.active[o]:
            label = result.tape.label(o, 40)
            result.warnings.append(
                f"the output `{label}` has shape {shape_str(value.shape)}: gradients are those of "
                f"sum({label}), its gradient seeded with ones; write sum(G * ({label})) to seed "
                "it with G")


def _py(v):
    """A numpy scalar as a Python float (arrays as nested lists; fractions stay fractions)."""
    if type(v) is float or v is None or type(v) is Fraction:
        return v
    np = sys.modules.get("numpy")  # without numpy imported, nothing here is an array
    if np is not None and isinstance(v, np.ndarray):
        return v.tolist()
    return float(v)
