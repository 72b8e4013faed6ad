"""Deterministic formulas for the benchmarks (not a test module: pytest never collects it).

Everything here is a pure function of a seed and a size, so the harness and the peer
subprocesses (peers.py) rebuild the very same formula without passing megabytes of text around.

- wide: a random *balanced* formula over 100 variables x0..x99, mixing + - * / and sin, tanh,
  exp, unary minus and squares. Every subexpression has a known bound on |value| (the variables
  are drawn from [-1, 1]); a subexpression whose bound exceeds 3 is wrapped in sin or tanh, and
  a divisor is always exp(bounded), so every value and gradient is finite. The formula is kept
  as a postfix program, rendered to gradcli text (`^`) and to Python text (`**`), and can be
  evaluated directly (plain floats, or any peer's number type).
- deep: chains of depth d: nested calls sin(tanh(cos(...x...))), runs of unary minus, and
  right-nested sums x+(x+(x+...)).
- batch: CS231n's neuron and a 2-2-1 tanh/sigmoid net with a squared error, written out element
  by element, with hand-written numpy forward and backward passes of the same formulas.
"""

from __future__ import annotations

import math
import random

import numpy as np

N_VARS = 100
_CONSTS = ("0.5", "1.5", "2", "0.25", "3")
_WRAP_FNS = ("sin", "tanh")


# -- wide ---------------------------------------------------------------------------------------

def wide_program(leaves: int, seed: int) -> list[tuple]:
    """A balanced formula with `leaves` leaf occurrences, as a postfix program of
    ("var", k) | ("const", text) | ("un", "sin"|"tanh"|"exp"|"neg"|"sq") | ("bin", "+-*/")."""
    rng = random.Random(f"wide-{seed}-{leaves}")
    prog: list[tuple] = []

    def wrap(bound: float) -> float:
        r = rng.random()
        if bound > 3 or r < 0.15:
            fn = rng.choice(_WRAP_FNS)
            prog.append(("un", fn))
            return min(bound, 1.0) if fn == "sin" else 1.0
        if r < 0.20 and bound <= 1:
            prog.append(("un", "exp"))
            return math.e
        if r < 0.25 and bound <= 2:
            prog.append(("un", "sq"))
            return bound * bound
        return bound

    def gen(n: int) -> float:  # recursion depth is log2(n): balanced on purpose
        if n == 1:
            r = rng.random()
            if r < 0.08:
                c = rng.choice(_CONSTS)
                prog.append(("const", c))
                return float(c)
            prog.append(("var", rng.randrange(N_VARS)))
            if r > 0.96:
                prog.append(("un", "neg"))
            return 1.0
        left = n // 2
        bl = gen(left)
        op = rng.choice("+-*/")
        br = gen(n - left)
        if op == "/":
            prog.append(("un", "exp"))
            bound = bl * math.exp(br)
        elif op == "*":
            bound = bl * br
        else:
            bound = bl + br
        prog.append(("bin", op))
        return wrap(bound)

    gen(leaves)
    return prog


def tape_size(prog: list[tuple]) -> int:
    """How many nodes gradcli's tape has for this program (a name is one node, whatever its
    uses; `x^2` is a constant node and a pow node)."""
    used = {k for kind, k in prog if kind == "var"}
    n = len(used)
    for kind, arg in prog:
        if kind == "const" or kind == "bin":
            n += 1
        elif kind == "un":
            n += 2 if arg == "sq" else 1
    return n


def wide(nodes: int, seed: int) -> tuple[list[tuple], int]:
    """A program whose gradcli tape has about `nodes` nodes (within a percent or so)."""
    pilot = wide_program(2000, seed)
    per_leaf = (tape_size(pilot) - N_VARS) / 2000
    leaves = max(2, round((nodes - N_VARS) / per_leaf))
    prog = wide_program(leaves, seed)
    size = tape_size(prog)
    if abs(size - nodes) > 0.002 * nodes:  # one correction, from the real ratio at this size
        leaves = max(2, round(leaves * (nodes - N_VARS) / max(1, size - N_VARS)))
        prog = wide_program(leaves, seed)
        size = tape_size(prog)
    return prog, size


def render(prog: list[tuple], pow_token: str = "^") -> str:
    """The program as formula text, fully parenthesised (every piece is an atom)."""
    stack: list[str] = []
    push, pop = stack.append, stack.pop
    for kind, arg in prog:
        if kind == "var":
            push(f"x{arg}")
        elif kind == "const":
            push(arg)
        elif kind == "bin":
            b = pop()
            a = pop()
            push(f"({a}{arg}{b})")
        elif arg == "neg":
            push(f"(-{pop()})")
        elif arg == "sq":
            push(f"{pop()}{pow_token}2")
        else:
            push(f"{arg}({pop()})")
    assert len(stack) == 1
    return stack[0]


def wide_point(seed: int) -> dict[str, float]:
    """The point the wide formulas are evaluated at: x0..x99 drawn from [-1, 1]."""
    rng = random.Random(f"point-{seed}")
    return {f"x{k}": rng.uniform(-1.0, 1.0) for k in range(N_VARS)}


def evaluate_program(prog: list[tuple], xs: list, fns: dict) -> object:
    """Run the program with any number type: xs[k] is variable k, fns maps "sin", "tanh",
    "exp" and "const" (text -> number) to callables. Iterative, any size."""
    stack: list = []
    push, pop = stack.append, stack.pop
    const = fns["const"]
    for kind, arg in prog:
        if kind == "var":
            push(xs[arg])
        elif kind == "const":
            push(const(arg))
        elif kind == "bin":
            b = pop()
            a = pop()
            if arg == "+":
                push(a + b)
            elif arg == "-":
                push(a - b)
            elif arg == "*":
                push(a * b)
            else:
                push(a / b)
        elif arg == "neg":
            push(-pop())
        elif arg == "sq":
            push(pop() ** 2)
        else:
            push(fns[arg](pop()))
    return stack[0]


FLOAT_FNS = {"sin": math.sin, "tanh": math.tanh, "exp": math.exp, "const": float}


# -- deep ---------------------------------------------------------------------------------------

DEEP_FAMILIES = ("calls", "neg", "sum")
DEEP_POINT = {"x": 0.5}


def deep_text(family: str, depth: int, seed: int) -> str:
    """A chain of `depth` operations on x (one node each, plus x itself)."""
    if family == "calls":
        rng = random.Random(f"deep-{seed}-{depth}")
        names = [rng.choice(("sin", "tanh", "cos")) for _ in range(depth)]
        return "(".join(names) + "(x" + ")" * depth
    if family == "neg":
        return "-" * depth + "x"
    if family == "sum":
        return "x+(" * (depth - 1) + "x+x" + ")" * (depth - 1)
    raise ValueError(family)


def deep_ops(family: str, depth: int, seed: int) -> list[str]:
    """The chain as a list of unary steps, innermost first (for peers that build graphs)."""
    if family == "calls":
        rng = random.Random(f"deep-{seed}-{depth}")
        names = [rng.choice(("sin", "tanh", "cos")) for _ in range(depth)]
        return names[::-1]
    if family == "neg":
        return ["neg"] * depth
    if family == "sum":
        return ["addx"] * depth
    raise ValueError(family)


# -- batch --------------------------------------------------------------------------------------

NEURON_VARS = ("w0", "x0", "w1", "x1", "w2")

NET_TEXT = """\
# A 2-2-1 net (tanh hidden layer, sigmoid output) with a squared error, element by element.
h0 = tanh(w00*x0 + w01*x1 + b0)
h1 = tanh(w10*x0 + w11*x1 + b1)
p = sigmoid(v0*h0 + v1*h1 + c)
f = (p - y)^2
"""
NET_VARS = ("w00", "x0", "w01", "x1", "b0", "w10", "w11", "b1", "v0", "v1", "c", "y")


def batch_columns(names, n: int, seed: int) -> dict[str, np.ndarray]:
    """One float64 column of n values in [-2, 2] per variable (y in [0, 1])."""
    rng = np.random.default_rng(seed)
    cols = {}
    for name in names:
        lo, hi = (0.0, 1.0) if name == "y" else (-2.0, 2.0)
        cols[name] = rng.uniform(lo, hi, n)
    return cols


def neuron_numpy(c: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """f = sigmoid(w0*x0 + w1*x1 + w2) and its gradient, by hand."""
    w0, x0, w1, x1, w2 = c["w0"], c["x0"], c["w1"], c["x1"], c["w2"]
    dot = w0 * x0 + w1 * x1 + w2
    f = 1.0 / (1.0 + np.exp(-dot))
    s = f * (1.0 - f)  # sigmoid' = f(1-f)
    return f, {"w0": s * x0, "x0": s * w0, "w1": s * x1, "x1": s * w1, "w2": s}


def net_numpy(c: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The 2-2-1 net's loss and its gradient with respect to every column, by hand."""
    x0, x1, y = c["x0"], c["x1"], c["y"]
    w00, w01, w10, w11 = c["w00"], c["w01"], c["w10"], c["w11"]
    b0, b1, v0, v1, cc = c["b0"], c["b1"], c["v0"], c["v1"], c["c"]
    h0 = np.tanh(w00 * x0 + w01 * x1 + b0)
    h1 = np.tanh(w10 * x0 + w11 * x1 + b1)
    p = 1.0 / (1.0 + np.exp(-(v0 * h0 + v1 * h1 + cc)))
    r = p - y
    f = r * r
    dp = 2.0 * r
    dz = dp * p * (1.0 - p)
    da0 = dz * v0 * (1.0 - h0 * h0)  # tanh' = 1 - h^2
    da1 = dz * v1 * (1.0 - h1 * h1)
    grads = {
        "w00": da0 * x0, "w01": da0 * x1, "b0": da0,
        "w10": da1 * x0, "w11": da1 * x1, "b1": da1,
        "v0": dz * h0, "v1": dz * h1, "c": dz,
        "x0": da0 * w00 + da1 * w10, "x1": da0 * w01 + da1 * w11,
        "y": -dp,
    }
    return f, grads
