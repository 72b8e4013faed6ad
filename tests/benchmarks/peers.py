"""Optional peers, each run in its own process so that a time cap can stop it (run.py kills it).

    python tests/benchmarks/peers.py {sympy|micrograd} wide SIZE --seed S
    python tests/benchmarks/peers.py {sympy|micrograd} deep DEPTH --family calls|neg|sum --seed S

Prints one JSON object: the phases' seconds, the value and the gradient (for the harness to
compare with gradcli's), or the error that stopped the peer (ImportError, RecursionError, ...).
Not a test module; pytest never collects it.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import traceback

import formulas as F


def progress(message: str) -> None:
    """A line on stderr: when the harness stops a peer at its time cap, it reports the last."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# -- micrograd ----------------------------------------------------------------------------------

def micrograd_fns():
    """micrograd 0.1.0 has + - * / ** and relu; sin, cos, tanh and exp are added here in its own
    style (a Value whose _backward closure adds the local slope times out.grad)."""
    from micrograd.engine import Value

    def unary(fn, slope):
        def apply(a):
            a = a if isinstance(a, Value) else Value(a)
            out = Value(fn(a.data), (a,), fn.__name__)

            def _backward():
                a.grad += slope(a.data, out.data) * out.grad
            out._backward = _backward
            return out
        return apply

    return Value, {
        "sin": unary(math.sin, lambda x, y: math.cos(x)),
        "cos": unary(math.cos, lambda x, y: -math.sin(x)),
        "tanh": unary(math.tanh, lambda x, y: 1.0 - y * y),
        "exp": unary(math.exp, lambda x, y: y),
        "const": lambda text: Value(float(text)),
    }


def run_micrograd(kind: str, size: int, seed: int, family: str | None) -> dict:
    Value, fns = micrograd_fns()
    out: dict = {"peer": "micrograd"}
    if kind == "wide":
        prog, _ = F.wide(size, seed)
        point = F.wide_point(seed)
        gc.collect()
        t0 = time.perf_counter()
        xs = [Value(point[f"x{k}"]) for k in range(F.N_VARS)]
        root = F.evaluate_program(prog, xs, fns)
        t1 = time.perf_counter()
        progress(f"graph built in {t1 - t0:.2f} s; in backward()")
        root.backward()
        t2 = time.perf_counter()
        out.update(value=root.data, gradient=[x.grad for x in xs])
    else:
        steps = F.deep_ops(family, size, seed)
        gc.collect()
        t0 = time.perf_counter()
        x = Value(F.DEEP_POINT["x"])
        v = x
        for step in steps:
            if step == "neg":
                v = -v
            elif step == "addx":
                v = x + v
            else:
                v = fns[step](v)
        t1 = time.perf_counter()
        progress(f"graph built in {t1 - t0:.2f} s; in backward()")
        v.backward()  # micrograd's build_topo recurses: deep chains end in RecursionError here
        t2 = time.perf_counter()
        out.update(value=v.data, gradient=[x.grad])
    out.update(ok=True, build=t1 - t0, backward=t2 - t1, total=t2 - t0)
    return out


# -- sympy --------------------------------------------------------------------------------------

def run_sympy(kind: str, size: int, seed: int, family: str | None) -> dict:
    import sympy

    out: dict = {"peer": "sympy"}
    if kind == "wide":
        prog, _ = F.wide(size, seed)
        text = F.render(prog)
        point = F.wide_point(seed)
        names = [f"x{k}" for k in range(F.N_VARS)]
    else:
        text = F.deep_text(family, size, seed)
        point = dict(F.DEEP_POINT)
        names = ["x"]
    syms = sympy.symbols(names)
    subs = {s: point[n] for s, n in zip(syms, names)}
    gc.collect()
    progress("in sympify")
    t0 = time.perf_counter()
    expr = sympy.sympify(text, locals=dict(zip(names, syms)))  # reads ^ as ** (convert_xor)
    t1 = time.perf_counter()
    progress(f"sympify {t1 - t0:.2f} s; in diff")
    derivs = []
    for k, s in enumerate(syms):
        derivs.append(sympy.diff(expr, s))
        progress(f"sympify {t1 - t0:.2f} s; diff {k + 1}/{len(syms)} done")
    t2 = time.perf_counter()
    progress(f"sympify {t1 - t0:.2f} s, diff {t2 - t1:.2f} s; in evalf")
    value = float(expr.evalf(subs=subs))
    grad = []
    for k, d in enumerate(derivs):
        grad.append(float(d.evalf(subs=subs)))
        progress(f"sympify {t1 - t0:.2f} s, diff {t2 - t1:.2f} s; evalf {k + 1}/{len(derivs)} done")
    t3 = time.perf_counter()
    out.update(ok=True, sympify=t1 - t0, diff=t2 - t1, evalf=t3 - t2, total=t3 - t0,
               value=value, gradient=grad)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["sympy", "micrograd"])
    ap.add_argument("kind", choices=["wide", "deep"])
    ap.add_argument("size", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", choices=F.DEEP_FAMILIES)
    args = ap.parse_args(argv)
    runner = run_sympy if args.peer == "sympy" else run_micrograd
    try:
        result = runner(args.kind, args.size, args.seed, args.family)
    except (ImportError, ModuleNotFoundError) as exc:
        result = {"ok": False, "missing": True, "error": f"not installed ({exc})"}
    except BaseException as exc:  # RecursionError, MemoryError, sympy's own errors: report them
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" in {last[0].name}" if last else ""
        message = str(exc).split("\n")[0][:160]
        cause = getattr(exc, "base_exc", None)  # sympy's SympifyError wraps the parser's error
        if cause is not None:
            message = f"could not parse: {type(cause).__name__}: {str(cause).split(' (<')[0][:100]}"
        if not message and isinstance(exc, MemoryError):
            message = "(Python's parser or compiler stack, not RAM)"
        result = {"ok": False, "error": f"{type(exc).__name__}{where}: {message}".rstrip(": ")}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.setrecursionlimit(1000)  # the default, stated: peers run as users would run them
    raise SystemExit(main())
