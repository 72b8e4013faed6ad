"""Grading, several steps back: the one mistake somewhere on a path from the output to the
answered node that turns the right gradient into the student's answer (a local derivative left
out, its sign flipped, another gate's rule, a use of a node left out of its sum), or the
student's own wrong answer further down, carried down correctly."""

from __future__ import annotations

import numpy as np

from .. import engine
from ..tape import Tape
from .report import Answer, PathSearch, Slip, Tolerance


#: Another rule a student may use for an op's local derivative: op -> [(key, rule(y, *xs), slot)].
#: Keys are worded in render/checkwords.py (RULE_WORDS). slot None: every input.
RULES: dict[str, list[tuple[str, object, int | None]]] = {
    "tanh": [("tanh_no_square", lambda y, a: 1 - y, 0),  # 1 - tanh for 1 - tanh²
             ("tanh_plus", lambda y, a: 1 + y * y, 0)],  # 1 + tanh²
    "sigmoid": [("sigmoid_one_minus", lambda y, a: 1 - y, 0),  # 1 - σ for σ(1 - σ)
                ("sigmoid_itself", lambda y, a: y, 0)],  # σ for σ(1 - σ)
    "relu": [("relu_value", lambda y, a: y, 0)],  # relu(x) itself for its mask
    "exp": [("exp_input", lambda y, a: a, 0)],  # x for exp(x)
    "log": [("log_itself", lambda y, a: y, 0)],  # log x for 1/x
    "sqrt": [("sqrt_half", lambda y, a: 1 / y, 0)],  # 1/√x for 1/(2√x)
    "pow": [("pow_no_lower", lambda y, a, b: b * y, 0),  # n·xⁿ for n·xⁿ⁻¹
            ("pow_no_factor", lambda y, a, b: a ** (b - 1), 0)],  # xⁿ⁻¹ for n·xⁿ⁻¹
    "sin": [("sin_itself", lambda y, a: y, 0)],  # sin for cos
    "cos": [("cos_itself", lambda y, a: y, 0)],  # cos for -sin
    "softplus": [("softplus_itself", lambda y, a: y, 0)],  # softplus for sigmoid
}

MAX_SITES = 5000  # (node, input) pairs the path search tries, per answer
MAX_WORK = 5_000_000  # tangent elements it may compute (answer elements × nodes on the path)


def _on_path(tape: Tape, i: int, out: int) -> list[bool]:
    """Nodes that depend on node i and that the output depends on (i and the output too)."""
    n = len(tape)
    dep = [False] * n
    dep[i] = True
    inputs = tape.inputs
    for k in range(i + 1, out + 1):
        dep[k] = any(dep[j] for j in inputs[k])
    reach = [False] * n
    reach[out] = True
    for k in range(out, i - 1, -1):
        if reach[k]:
            for j in inputs[k]:
                reach[j] = True
    return [d and r for d, r in zip(dep, reach)]


def path_slip(result, a: Answer, tol: Tolerance, given_grads, out: int = 0
              ) -> tuple[Slip | None, PathSearch | None]:
    """The search several steps back. The student's ∂L/∂i is the right one plus the effect of a
    single mistake at some node k on a path from the output to i: k's contribution to its input
    j is dropped, sign-flipped or computed with another rule (or, j being used several times,
    left out of j's sum). A change δ in ∂L/∂j changes ∂L/∂i by ⟨δ, ∂j/∂i⟩ (the chain rule run
    forward), so one forward sweep per element of i prices every site at once: the search costs
    O(size(i) · path) and stops, saying so, past MAX_WORK or MAX_SITES. Also tried: the
    student's own wrong answer for a node further down the path, carried down correctly."""
    tape = result.tape
    i = a.node
    o = tape.outputs[out]
    if not (i < o and result.active[i]):
        return None, None
    adj = result.adjoints[out]
    correct = adj[i]
    on = _on_path(tape, i, o)
    path = [k for k in range(i, o + 1) if on[k]]
    size = int(np.size(result.values[i]))
    if size * len(path) > MAX_WORK:
        return None, PathSearch(0, True, MAX_WORK)
    tangents = _tangents(result, i, size)

    def effect(delta, j):
        """The change in ∂L/∂i from a change δ in ∂L/∂j."""
        with np.errstate(all="ignore"):
            d = np.asarray(delta, dtype=np.float64)
            parts = [float(np.sum(d * np.asarray(t[j], dtype=np.float64))) for t in tangents]
        return parts[0] if size == 1 and np.ndim(correct) == 0 else np.array(parts).reshape(
            np.shape(correct))

    def fits(candidate) -> bool:
        return (candidate is not None and tol.close(a.answer, candidate)
                and not tol.close(candidate, correct))

    def moved(delta, j):
        with np.errstate(all="ignore"):
            return np.asarray(correct, dtype=np.float64) + effect(delta, j)

    # The student's own wrong gradient further down the path, carried down correctly.
    wrong = [u for u in path if u != i and u in given_grads
             and np.shape(given_grads[u]) == np.shape(adj[u])
             and not tol.close(given_grads[u], adj[u])]
    for u in wrong:
        if fits(moved(np.asarray(given_grads[u], dtype=np.float64) - adj[u], u)):
            return Slip("propagated", i, u, "path"), PathSearch(len(wrong))
    # One node's local derivative dropped, sign-flipped or replaced; one use left out of a sum.
    sites = []
    for k in reversed(path):
        if k == i:
            continue
        for slot, j in enumerate(tape.inputs[k]):
            if on[j]:
                sites.append((k, slot, j))
    capped = len(sites) > MAX_SITES
    sites = sites[:MAX_SITES]
    uses_on_path: dict[int, int] = {}
    for k, slot, j in sites:
        uses_on_path[j] = uses_on_path.get(j, 0) + 1
    values, partials = result.values, result.partials
    contribs = {}
    for k, slot, j in sites:
        with np.errstate(all="ignore"):
            contribs[(k, slot)] = engine.contribution(tape, values, partials, k, slot, adj[k])
    for kind in ("missing_local", "wrong_rule", "sign_flipped", "fanout_not_summed"):
        for k, slot, j in sites:
            c = contribs[(k, slot)]
            if c is None:
                continue
            for w, rule, numbers in _path_variants(result, kind, k, slot, j, adj[k], c,
                                                   uses_on_path):
                if fits(moved(np.asarray(w, dtype=np.float64) - c, j)):
                    slip = Slip(kind, i, k, rule, j, numbers)
                    return slip, PathSearch(len(sites), capped, MAX_SITES)
    return None, PathSearch(len(sites), capped, MAX_SITES)


def _tangents(result, i: int, size: int) -> list[list]:
    """∂node/∂(element e of node i) for every node, one forward sweep per element."""
    v = result.values[i]
    shape = np.shape(v)
    out = []
    for e in range(size):
        seed = np.zeros(size)
        seed[e] = 1.0
        t = engine.jvp(result.tape, result.values, result.partials,
                       {i: seed.reshape(shape)[()] if shape else np.float64(1.0)})
        out.append([np.zeros(np.shape(result.values[m]))[()] if x is None else x for m, x in
                    enumerate(t)])
    return out


def _path_variants(result, kind: str, k: int, slot: int, j: int, g, c, uses_on_path):
    """The wrong contributions of node k to its input j under a slip of this kind: (w, rule,
    numbers) triples."""
    tape = result.tape
    op = tape.ops[k]
    ins = tape.inputs[k]
    values = result.values
    shape = np.shape(values[j])
    ps = result.partials[k]

    def fit(w):
        with np.errstate(all="ignore"):
            w = np.asarray(w, dtype=np.float64)
            if w.shape != shape:
                try:
                    w = engine.unbroadcast(np.broadcast_to(
                        w, np.broadcast_shapes(w.shape, np.shape(values[k]))), shape)
                except ValueError:
                    return None
            return w

    out = []
    local = None if ps is None else ps[slot]
    if kind == "missing_local" and ps is not None:
        w = fit(g)
        if w is not None:
            out.append((w, "path", {"local": local, "upstream": g}))
    elif kind == "sign_flipped":
        out.append((-np.asarray(c, dtype=np.float64), "local", {"contribution": c}))
    elif kind == "wrong_rule" and ps is not None:
        for key, rule, at_slot in RULES.get(op.name, ()):
            if at_slot is not None and at_slot != slot:
                continue
            try:
                with np.errstate(all="ignore"):
                    wrong_local = rule(values[k], *[values[m] for m in ins])
            except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                continue
            w = fit(np.asarray(g, dtype=np.float64) * np.asarray(wrong_local, dtype=np.float64))
            if w is not None:
                out.append((w, key, {"local": local, "used": wrong_local}))
    elif kind == "fanout_not_summed" and uses_on_path.get(j, 0) >= 2:
        out.append((np.zeros(shape), "path", {"term": c}))
    return out
