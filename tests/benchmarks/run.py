"""gradcli's benchmark suite (issue 6): cold start, wide and deep formulas, batch mode, peers.

    python tests/benchmarks/run.py --quick        # under a minute on an idle machine
    python tests/benchmarks/run.py                # full: every size, several minutes
    python tests/benchmarks/run.py --profile-parse 100000   # cProfile of one parse, then exit

Prints a fixed-width table per section and a summary of the targets (met / missed), and writes
every number (with the raw samples) as JSON to --out, by default a new file in the system's temp
folder whose path is printed at the end (nothing is written into the work tree). See README.md
beside this file for what each section measures and how.

Not a test module: pytest never collects anything in this folder (conftest.py says so).
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import formulas as F  # noqa: E402
import speed  # noqa: E402  (issue 17's section)

from gradcli import __version__ as GRADCLI_VERSION  # noqa: E402
from gradcli import engine, reverse  # noqa: E402
from gradcli.parse import parse  # noqa: E402

NEURON_FILE = ROOT / "samples" / "neuron.grad"
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"

TARGETS = {
    "cold": 1.0,  # gradcli eval ... --json ≤ 1.0 × python -c "import numpy" (issue 17)
    "wide_vs_ast": 2.0,  # 10^6 nodes: parse + forward + reverse ≤ 2 × ast.parse
    "bytes_per_node": 300.0,  # 10^6 nodes: peak memory per node
    "reverse_vs_forward": 1.5,  # every wide formula
    "batch_vs_numpy": 1.0,  # 10^6 points, per formula (issue 17)
    "scale_csv": 1.5,  # 10^6 × 5 CSV → CSV, whole CLI ÷ the I/O floor
    "scale_parquet": 1.2,  # the same, Parquet → Parquet
    "scale_memory": 1.2,  # peak RSS at 10^7 rows ÷ at 10^6
}

MODES = {
    "quick": {
        "cold_runs": 5,
        "wide": [10**3, 10**4, 10**5],
        "deep": [10**3, 10**4, 10**5],
        "batch": [10**4, 10**5, 10**6],
        "batch_cli": [10**4],
        "peer_wide": [10**3, 10**4],
        "peer_deep": [10**3],
        "peer_cap": 5.0,
        "scale_rows": 10**6,
        "scale_memory": [10**5, 10**6],
        "scale_dask": 2 * 10**6,
    },
    "full": {
        "cold_runs": 20,
        "wide": [10**3, 10**4, 10**5, 10**6],
        "deep": [10**3, 10**4, 10**5, 10**6],
        "batch": [10**4, 10**5, 10**6, 10**7],
        "batch_cli": [10**5, 10**6],
        "peer_wide": [10**3, 10**4, 10**5, 10**6],
        "peer_deep": [10**3, 10**4],
        "peer_cap": 60.0,
        "scale_rows": 10**6,
        "scale_memory": [10**6, 10**7],
        "scale_dask": 10**7,
    },
}
SECTIONS = ("cold", "wide", "deep", "batch", "peers", "scale", "speed")
AST_MEMORY_UPTO = 10**4  # ast.parse's bytes per node are traced up to this size only


def repeats_for(mode: str, n: int, override: int | None) -> int:
    """How many interleaved repeats a size gets (fewer for the big ones)."""
    if override:
        return override
    if mode == "quick":
        return 5 if n <= 10**3 else 3 if n <= 10**4 else 2
    return 5 if n <= 10**4 else 3


# -- measuring ----------------------------------------------------------------------------------

@contextmanager
def gc_paused():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def timed(fn, *args, paused: bool = False):
    """(seconds, result) of one call fn(*args), after a full collection; optionally with the
    cyclic collector paused during the call (as gradcli's parse and api.run pause it)."""
    gc.collect()
    if paused:
        with gc_paused():
            t0 = time.perf_counter()
            result = fn(*args)
            t1 = time.perf_counter()
    else:
        t0 = time.perf_counter()
        result = fn(*args)
        t1 = time.perf_counter()
    return t1 - t0, result


def progress(message: str) -> None:
    sys.stderr.write(f"  … {message}\n")
    sys.stderr.flush()


def error_text(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def gradcli_sweeps(tape, point: dict):
    """The forward sweep (with the collector paused, as gradcli.api.run pauses it)."""
    with gc_paused():
        values = engine.forward(tape, point)
    return values


def gradcli_reverse(tape, values, wrt):
    """The reverse sweep: active flags, local partials, one backward sweep from the output, as
    gradcli.result.run computes them for one output (gradcli.reverse.gradients: the partials
    computed inside the backward loop; the table of partials is made only when read)."""
    with gc_paused():
        _flags, _partials, adj = reverse.gradients(tape, values, wrt, tape.outputs[0])
    return adj


def fmt_time(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def fmt_size(n: int) -> str:
    e = round(math.log10(n)) if n > 0 else 0
    return f"10^{e}" if 10**e == n else f"{n:,}"


def print_table(title: str, headers: list[str], rows: list[list], notes: list[str] = (),
                align: str = "") -> None:
    """A plain fixed-width table. `align` has one letter per column (l or r); by default the
    first column is left-aligned and the others right-aligned. A row shorter than the headers
    (an error) prints its message across the remaining columns."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows]
    full = [r for r in cells if len(r) == len(headers)]
    widths = [max([len(h)] + [len(r[k]) for r in full]) for k, h in enumerate(headers)]
    widths[0] = max([widths[0]] + [len(r[0]) for r in cells])

    def line(row):
        return "  ".join(c.ljust(widths[k]) if align[k] == "l" else c.rjust(widths[k])
                         for k, c in enumerate(row)).rstrip()

    print()
    print(title)
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        if len(r) < len(headers):
            print((r[0].ljust(widths[0]) + "  " + "  ".join(r[1:])).rstrip())
        else:
            print(line(r))
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


# -- cold start ---------------------------------------------------------------------------------

def gradcli_script() -> str | None:
    """The installed console script next to this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "gradcli"
    if beside.exists():
        return str(beside)
    return shutil.which("gradcli")


def run_cold(cfg: dict, results: dict) -> None:
    py = sys.executable
    args = ["eval", str(NEURON_FILE.relative_to(ROOT)), "--at", NEURON_AT, "--json"]
    commands = {}
    script = gradcli_script()
    if script:
        commands["gradcli eval neuron --json"] = [script] + args
    commands["python -m gradcli eval neuron --json"] = [py, "-m", "gradcli"] + args
    # Tab completion's cost on an ordinary run (issue 16): the same eval, Typer's completion
    # options on and off; and the shortest run there is.
    ab = "import sys; from gradcli.cli import app, main; app._add_completion = {}; " \
         "sys.exit(main(sys.argv[1:]))"
    commands["gradcli eval neuron --json, completion on"] = [py, "-c", ab.format(True)] + args
    commands["gradcli eval neuron --json, completion off"] = [py, "-c", ab.format(False)] + args
    if script:
        commands["gradcli --version"] = [script, "--version"]
    commands['python -c "import numpy"'] = [py, "-c", "import numpy"]
    commands['python -c "pass"'] = [py, "-c", "pass"]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}

    def once(cmd):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        t = time.perf_counter() - t0
        return t, p

    samples: dict[str, list[float]] = {name: [] for name in commands}
    errors: dict[str, str] = {}
    progress(f"cold: 1 warm-up + {cfg['cold_runs']} interleaved runs of each command")
    for name, cmd in commands.items():  # warm-up: page cache, Lark's table cache, .pyc files
        _, p = once(cmd)
        if p.returncode != 0:
            errors[name] = f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"
        elif "gradcli" in name and "--version" not in name:
            doc = json.loads(p.stdout)
            if abs(doc["value"] - 0.7310585786300049) > 1e-12:
                errors[name] = f"wrong value {doc['value']}"
    names = [n for n in commands if n not in errors]
    for r in range(cfg["cold_runs"]):
        k = r % len(names)
        for name in names[k:] + names[:k]:  # rotate the order each round
            t, _ = once(commands[name])
            samples[name].append(t)
    med = {n: statistics.median(samples[n]) for n in names}
    base_numpy = med.get('python -c "import numpy"')
    base_pass = med.get('python -c "pass"')
    rows = []
    out = []
    for name in commands:
        if name in errors:
            rows.append([name, "error: " + errors[name][:100]])
            out.append({"command": name, "error": errors[name]})
            continue
        m = med[name]
        rows.append([name, fmt_time(m), fmt_time(min(samples[name])),
                     fmt_ratio(m / base_numpy) if base_numpy else "—",
                     fmt_ratio(m / base_pass) if base_pass else "—"])
        out.append({"command": name, "argv": commands[name], "median_s": m,
                    "min_s": min(samples[name]), "samples_s": samples[name],
                    "vs_import_numpy": m / base_numpy if base_numpy else None,
                    "vs_pass": m / base_pass if base_pass else None})
    results["cold"] = out
    print_table(f"COLD START: whole-process wall time, median of {cfg['cold_runs']} interleaved "
                "runs (after one warm-up each)",
                ["command", "median", "min", "÷ import numpy", "÷ pass"], rows)


# -- wide ---------------------------------------------------------------------------------------

def measure_wide(n: int, seed: int, reps: int) -> dict:
    prog, size = F.wide(n, seed)
    text = F.render(prog)
    pytext = F.render(prog, "**")
    fpoint = F.wide_point(seed)
    point = {k: np.float64(v) for k, v in fpoint.items()}
    samples = {"ast": [], "parse": [], "forward": [], "reverse": []}
    rec: dict = {"size": n, "nodes": size, "chars": len(text), "repeats": reps}
    wrt = None
    for r in range(reps):
        def ours():
            t_parse, (tape, _warnings) = timed(parse, text)
            t_fwd, values = timed(gradcli_sweeps, tape, point)
            t_rev, adj = timed(gradcli_reverse, tape, values, list(tape.variables))
            samples["parse"].append(t_parse)
            samples["forward"].append(t_fwd)
            samples["reverse"].append(t_rev)
            return tape, values, adj

        def yardstick():
            t, tree = timed(ast.parse, pytext, "<formula>", "eval", paused=True)
            samples["ast"].append(t)
            del tree

        if r % 2 == 0:  # interleave, alternating which goes first
            yardstick()
            tape, values, adj = ours()
        else:
            tape, values, adj = ours()
            yardstick()
        if r == 0:
            out = tape.outputs[0]
            rec["value"] = float(values[out])
            rec["gradient"] = [float(adj[tape.variables[f"x{k}"]])
                               if f"x{k}" in tape.variables else 0.0 for k in range(F.N_VARS)]
            if len(tape) != size:
                rec["note"] = f"tape has {len(tape)} nodes, generator counted {size}"
            rec["nodes"] = len(tape)
            wrt = list(tape.variables)
        del tape, values, adj
    # The yardstick with the collector running, as `python -c "import ast; ast.parse(...)"` runs.
    t, tree = timed(ast.parse, pytext, "<formula>", "eval")
    del tree
    rec["ast_gc_on_s"] = t
    # Independent value: the same program run with math's float functions.
    xs = [fpoint[f"x{k}"] for k in range(F.N_VARS)]
    ref = F.evaluate_program(prog, xs, F.FLOAT_FNS)
    rec["value_check"] = abs(ref - rec["value"]) <= 1e-9 * max(1.0, abs(ref))
    # Peak memory of parse + forward + reverse (untimed run: tracemalloc slows allocation).
    gc.collect()
    with gc_paused():
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tape, _ = parse(text)
        values = engine.forward(tape, point)
        flags, partials, adj = reverse.gradients(tape, values, wrt, tape.outputs[0])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    del tape, values, partials, flags, adj
    gc.collect()
    ast_bytes = None
    if n <= AST_MEMORY_UPTO:  # the same per node at every size, and tracing it is slow
        tracemalloc.start()
        base_ast = tracemalloc.get_traced_memory()[0]
        tree = ast.parse(pytext, mode="eval")
        ast_bytes = (tracemalloc.get_traced_memory()[1] - base_ast) / rec["nodes"]
        tracemalloc.stop()
        del tree
        gc.collect()
    best = {k: min(v) for k, v in samples.items()}
    total = best["parse"] + best["forward"] + best["reverse"]
    rec.update(samples_s=samples, ast_s=best["ast"], parse_s=best["parse"],
               forward_s=best["forward"], reverse_s=best["reverse"], total_s=total,
               total_vs_ast=total / best["ast"], parse_vs_ast=best["parse"] / best["ast"],
               reverse_vs_forward=best["reverse"] / best["forward"],
               peak_bytes=peak - base, bytes_per_node=(peak - base) / rec["nodes"],
               ast_bytes_per_node=ast_bytes)
    return rec


def run_wide(cfg: dict, results: dict, seed: int, mode: str, reps_override) -> None:
    rows, out = [], []
    for n in cfg["wide"]:
        reps = repeats_for(mode, n, reps_override)
        progress(f"wide {fmt_size(n)}: {reps} interleaved repeats, then one tracemalloc run")
        try:
            rec = measure_wide(n, seed, reps)
        except (Exception, MemoryError, RecursionError) as exc:
            out.append({"size": n, "error": error_text(exc)})
            rows.append([fmt_size(n), "error: " + error_text(exc)])
            continue
        out.append(rec)
        rows.append([fmt_size(n), f"{rec['nodes']:,}", fmt_time(rec["ast_s"]),
                     fmt_time(rec["ast_gc_on_s"]), fmt_time(rec["parse_s"]),
                     fmt_time(rec["forward_s"]), fmt_time(rec["reverse_s"]),
                     fmt_time(rec["total_s"]),
                     fmt_ratio(rec["parse_vs_ast"]), fmt_ratio(rec["total_vs_ast"]),
                     fmt_ratio(rec["reverse_vs_forward"]), f"{rec['bytes_per_node']:.0f}",
                     "—" if rec["ast_bytes_per_node"] is None else
                     f"{rec['ast_bytes_per_node']:.0f}", "ok" if rec["value_check"] else "WRONG"])
    results["wide"] = out
    print_table("WIDE: random balanced formulas over 100 variables (+ - * / sin tanh exp neg ^2); "
                "min of interleaved repeats",
                ["size", "nodes", "ast.parse", "gc on", "parse", "forward", "reverse", "total",
                 "parse÷ast", "total÷ast", "rev÷fwd", "B/node", "ast B/node", "value"], rows,
                ["ast.parse: CPython's parser on the same text with ^ written **, collector "
                 "paused (gradcli's parse pauses it too): the yardstick of the ÷ast columns; "
                 "gc on: the same with the collector running, as a plain ast.parse call runs "
                 "(one run).",
                 "reverse = active flags + local partials + backward sweep, as result.run "
                 "computes them (gradcli.reverse: partials inside the backward loop; the table "
                 "of partials is made when read); total = parse + forward + reverse.",
                 "B/node: tracemalloc peak of parse + forward + reverse ÷ tape nodes; ast B/node: "
                 f"peak of ast.parse ÷ the same count (up to {fmt_size(AST_MEMORY_UPTO)} nodes).",
                 "value: gradcli's value against the same program run with math's functions."])


# -- deep ---------------------------------------------------------------------------------------

_AST_PROBE = """
import ast, json, sys, time
sys.path.insert(0, {here!r})
import formulas as F
text = F.deep_text({family!r}, {depth}, {seed})
t0 = time.perf_counter()
try:
    ast.parse(text, mode="eval")
    print(json.dumps({{"ok": True, "seconds": time.perf_counter() - t0}}))
except BaseException as exc:
    msg = str(exc).split(" (<unknown>")[0][:100]
    name = type(exc).__name__ + (": " + msg if msg else "")
    print(json.dumps({{"ok": False, "error": name}}))
"""


def ast_probe(family: str, depth: int, seed: int) -> dict:
    """ast.parse of a deep chain, in a separate process (it may refuse, or worse)."""
    code = _AST_PROBE.format(here=str(HERE), family=family, depth=depth, seed=seed)
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "no answer in 120 s"}
    if p.returncode != 0:
        return {"ok": False, "error": f"the process died (exit {p.returncode})"}
    return json.loads(p.stdout)


def deep_expected(family: str, depth: int, seed: int) -> tuple[float, float]:
    x = F.DEEP_POINT["x"]
    if family == "neg":
        s = -1.0 if depth % 2 else 1.0
        return s * x, s
    if family == "sum":
        return (depth + 1) * x, float(depth + 1)
    v, g = x, 1.0
    fns = {"sin": (math.sin, math.cos), "cos": (math.cos, lambda t: -math.sin(t)),
           "tanh": (math.tanh, lambda t: 1 - math.tanh(t) ** 2)}
    for step in F.deep_ops(family, depth, seed):
        f, df = fns[step]
        g *= df(v)
        v = f(v)
    return v, g


def measure_deep(family: str, n: int, seed: int, reps: int) -> dict:
    text = F.deep_text(family, n, seed)
    point = {"x": np.float64(F.DEEP_POINT["x"])}
    samples = {"parse": [], "forward": [], "reverse": []}
    rec: dict = {"family": family, "depth": n, "chars": len(text), "repeats": reps}
    for r in range(reps):
        t_parse, (tape, _) = timed(parse, text)
        t_fwd, values = timed(gradcli_sweeps, tape, point)
        t_rev, adj = timed(gradcli_reverse, tape, values, ["x"])
        samples["parse"].append(t_parse)
        samples["forward"].append(t_fwd)
        samples["reverse"].append(t_rev)
        if r == 0:
            rec["nodes"] = len(tape)
            value, grad = float(values[tape.outputs[0]]), float(adj[tape.variables["x"]])
            ev, eg = deep_expected(family, n, seed)
            rec["value"], rec["gradient"] = value, grad
            rec["check"] = (abs(value - ev) <= 1e-9 * max(1, abs(ev))
                            and abs(grad - eg) <= 1e-9 * max(1, abs(eg)))
        del tape, values, adj
    best = {k: min(v) for k, v in samples.items()}
    total = sum(best.values())
    rec.update(samples_s=samples, parse_s=best["parse"], forward_s=best["forward"],
               reverse_s=best["reverse"], total_s=total,
               reverse_vs_forward=best["reverse"] / best["forward"])
    rec["ast"] = ast_probe(family, n, seed)
    return rec


def run_deep(cfg: dict, results: dict, seed: int, mode: str, reps_override) -> None:
    rows, out = [], []
    for family in F.DEEP_FAMILIES:
        for n in cfg["deep"]:
            reps = repeats_for(mode, n, reps_override)
            if mode == "full" and n >= 10**6:
                reps = min(reps, 2)
            label = f"{family} {fmt_size(n)}"
            progress(f"deep {label}: {reps} repeats")
            try:
                rec = measure_deep(family, n, seed, reps)
            except (Exception, MemoryError, RecursionError) as exc:
                out.append({"family": family, "depth": n, "error": error_text(exc)})
                rows.append([label, "error: " + error_text(exc)])
                continue
            out.append(rec)
            a = rec["ast"]
            ast_cell = fmt_time(a["seconds"]) if a.get("ok") else "cannot: " + a["error"]
            rows.append([label, f"{rec['nodes']:,}", fmt_time(rec["parse_s"]),
                         fmt_time(rec["forward_s"]), fmt_time(rec["reverse_s"]),
                         fmt_time(rec["total_s"]), fmt_ratio(rec["reverse_vs_forward"]),
                         "ok" if rec["check"] else "WRONG", ast_cell])
    results["deep"] = out
    print_table("DEEP: chains of nested calls sin(tanh(cos(...x))), unary minus runs ----x, "
                "right-nested sums x+(x+(...)); min of repeats",
                ["chain depth", "nodes", "parse", "forward", "reverse", "total", "rev÷fwd",
                 "check", "ast.parse of the same text"], rows,
                ["check: value and gradient against a closed form (or a float loop for calls).",
                 "ast.parse is tried in its own process; CPython's tokenizer allows 200 nested "
                 "parentheses, its parser a stack of 6000 (MemoryError past that)."],
                align="lrrrrrrrl")


# -- batch --------------------------------------------------------------------------------------

#: evaluate() over whole columns is timed up to this many rows (beyond, the arrays of both it
#: and numpy by hand, about 30 of n numbers each, would be gigabytes).
API_BATCH_UPTO = 10**6


def chunk_rows() -> int:
    try:
        from gradcli.batch import CHUNK_ROWS
        return int(CHUNK_ROWS)
    except Exception:  # the module moved: batch mode's documented chunk
        return 65536


def batch_formulas() -> dict:
    return {
        "neuron": (NEURON_FILE.read_text(encoding="utf-8"), F.NEURON_VARS, F.neuron_numpy),
        "net 2-2-1": (F.NET_TEXT, F.NET_VARS, F.net_numpy),
    }


def measure_batch(name: str, text: str, names, hand, n: int, seed: int, reps: int) -> dict:
    tape, _ = parse(text)
    cols = F.batch_columns(names, n, seed)
    rows = chunk_rows()
    out = tape.outputs[0]
    wrt = list(tape.variables)
    starts = range(0, n, rows)

    from gradcli.batch import plan_for, sweep

    def ours():  # exactly what batch mode runs per chunk: batch.sweep on the run's Plan
        plan = plan_for(tape, list(tape.variables), {}, wrt, "<bench>")
        for s in starts:
            block = {v: cols[v][s:s + rows] for v in tape.variables}
            sweep(plan, block, len(block[wrt[0]]))

    def theirs():
        for s in starts:
            hand({v: c[s:s + rows] for v, c in cols.items()})

    # Agreement on the first chunk: value and every gradient column, batch.sweep against the
    # hand-written version and against engine.py's interpreted sweeps.
    block = {v: c[:rows] for v, c in cols.items()}
    values = engine.forward(tape, {v: block[v] for v in tape.variables})
    adj = engine.backward(tape, values, engine.local_partials(tape, values),
                          engine.active(tape, wrt), out)
    got_v, got_g = sweep(plan_for(tape, list(tape.variables), {}, wrt, "<bench>"),
                         {v: block[v] for v in tape.variables}, len(block[wrt[0]]))
    f_ref, g_ref = hand(block)
    agree = bool(np.allclose(got_v[0], f_ref, rtol=1e-10, atol=1e-12)) and all(
        np.allclose(got_g[0][v], g_ref[v], rtol=1e-9, atol=1e-12) for v in wrt) and bool(
        np.array_equal(got_v[0], values[out])) and all(
        np.array_equal(got_g[0][v], np.broadcast_to(adj[tape.variables[v]], f_ref.shape))
        for v in wrt)
    del values, adj, got_v, got_g
    from gradcli import api

    def api_whole():  # what a user with the columns in memory calls: value and gradient
        r = api.evaluate(text, at={v: cols[v] for v in tape.variables})
        return r.value, r.gradient

    def hand_whole():
        return hand(cols)

    pair = [("gradcli", ours), ("numpy", theirs)]
    if n > API_BATCH_UPTO:  # whole columns: about 30 arrays of n numbers at once
        return batch_record(name, n, tape, rows, reps, pair, agree, {})
    r = api.evaluate(text, at={v: cols[v] for v in tape.variables})
    f_ref, g_ref = hand(cols)
    agree = agree and bool(np.allclose(r.value, f_ref, rtol=1e-10, atol=1e-12)) and all(
        np.allclose(r.gradient[v], g_ref[v], rtol=1e-9, atol=1e-12) for v in wrt)
    api_kind = type(r).__name__
    del r, f_ref, g_ref
    pair += [("api", api_whole), ("numpy whole", hand_whole)]
    return batch_record(name, n, tape, rows, reps, pair, agree, {"api_result": api_kind})


def batch_record(name: str, n: int, tape, rows: int, reps: int, pair: list, agree: bool,
                 more: dict) -> dict:
    samples: dict = {key: [] for key, _ in pair}
    for r in range(reps):
        for key, fn in (pair if r % 2 == 0 else pair[::-1]):
            t, _ = timed(fn)
            samples[key].append(t)
    best = {k: min(v) for k, v in samples.items()}
    rec = {"formula": name, "points": n, "nodes": len(tape), "chunk_rows": rows,
           "repeats": reps, "samples_s": samples, "gradcli_s": best["gradcli"],
           "numpy_s": best["numpy"], "ratio": best["gradcli"] / best["numpy"],
           "agree": agree, **more}
    if "api" in best:
        rec.update(api_s=best["api"], numpy_whole_s=best["numpy whole"],
                   api_ratio=best["api"] / best["numpy whole"])
    return rec


def measure_batch_cli(name: str, text: str, names, n: int, seed: int, folder: str) -> dict:
    """The whole program over a CSV file: read, vectorised sweeps, CSV out (to /dev/null)."""
    script = gradcli_script()
    cmd = [script] if script else [sys.executable, "-m", "gradcli"]
    formula = os.path.join(folder, "formula.grad")
    Path(formula).write_text(text, encoding="utf-8")
    csv = os.path.join(folder, f"points-{n}.csv")
    cols = F.batch_columns(names, n, seed)
    table = np.column_stack([cols[v] for v in names])
    np.savetxt(csv, table, fmt="%.17g", delimiter=",", header=",".join(names), comments="")
    size = os.path.getsize(csv)
    del table, cols
    gc.collect()
    t0 = time.perf_counter()
    p = subprocess.run(cmd + ["eval", formula, "--points", csv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT)
    t = time.perf_counter() - t0
    os.remove(csv)
    rec = {"formula": name, "points": n, "csv_bytes": size, "seconds": t,
           "us_per_point": t / n * 1e6}
    if p.returncode != 0:
        rec["error"] = f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-200:]}"
    return rec


def run_batch(cfg: dict, results: dict, seed: int, mode: str, reps_override) -> None:
    rows, out = [], []
    for name, (text, names, hand) in batch_formulas().items():
        for n in cfg["batch"]:
            reps = reps_override or (5 if n <= 10**6 else 3)  # cheap: a few ms to 0.5 s
            progress(f"batch {name} {fmt_size(n)}: {reps} interleaved repeats")
            try:
                rec = measure_batch(name, text, names, hand, n, seed, reps)
            except (Exception, MemoryError) as exc:
                out.append({"formula": name, "points": n, "error": error_text(exc)})
                rows.append([f"{name} {fmt_size(n)}", "error: " + error_text(exc)])
                continue
            gc.collect()
            out.append(rec)
            rows.append([f"{name} {fmt_size(n)}", str(rec["nodes"]), fmt_time(rec["numpy_s"]),
                         fmt_time(rec["gradcli_s"]), fmt_ratio(rec["ratio"]),
                         f"{rec['gradcli_s'] / n * 1e9:.0f} ns",
                         fmt_time(rec.get("numpy_whole_s")), fmt_time(rec.get("api_s")),
                         fmt_ratio(rec.get("api_ratio")), "yes" if rec["agree"] else "NO"])
    results["batch"] = out
    print_table(f"BATCH (in memory): values and every gradient column, chunks of {chunk_rows()} "
                "rows as batch mode; min of interleaved repeats",
                ["formula, points", "nodes", "numpy by hand", "batch.sweep", "÷ numpy",
                 "per point", "numpy, whole", "evaluate()", "÷ numpy", "agree"], rows,
                ["numpy, whole / evaluate(): the same by hand over the whole columns at once, "
                 "and gradcli.api.evaluate(text, at=columns) reading .value and .gradient "
                 "(batch mode's sweep in chunks, and a copy of the columns for the engine's "
                 "run that r.nodes and r.warnings make when read); up to "
                 f"{fmt_size(API_BATCH_UPTO)} rows."])
    cli_rows, cli_out = [], []
    with tempfile.TemporaryDirectory(prefix="gradcli-bench-") as folder:
        for name, (text, names, _hand) in batch_formulas().items():
            for n in cfg["batch_cli"]:
                progress(f"batch CLI {name} {fmt_size(n)}: write the CSV, run gradcli once")
                try:
                    rec = measure_batch_cli(name, text, names, n, seed, folder)
                except (Exception, MemoryError) as exc:
                    rec = {"formula": name, "points": n, "error": error_text(exc)}
                cli_out.append(rec)
                if "error" in rec:
                    cli_rows.append([f"{name} {fmt_size(n)}", "error: " + rec["error"][:100]])
                    continue
                mem = next((b for b in out if b.get("formula") == name
                            and b.get("points") == n and "gradcli_s" in b), None)
                share = f"{mem['gradcli_s'] / rec['seconds'] * 100:.1f}%" if mem else "—"
                cli_rows.append([f"{name} {fmt_size(n)}", f"{rec['csv_bytes'] / 1e6:.1f} MB",
                                 fmt_time(rec["seconds"]), f"{rec['us_per_point']:.1f} µs",
                                 share])
    results["batch_cli"] = cli_out
    print_table("BATCH (end to end): `gradcli eval FORMULA --points FILE.csv` > /dev/null, one run",
                ["formula, points", "CSV", "wall time", "per point", "sweeps' share"], cli_rows,
                ["sweeps' share: the in-memory gradcli time above ÷ this wall time (the rest is "
                 "start-up, CSV reading and writing)."])


# -- scale (issue 13): columnar I/O, peak memory, Dask ------------------------------------------

SCALE_COLS = ["w0", "x0", "w1", "x1", "w2"]


def _scale_points(folder: str, n: int, kind: str, parts: int = 1) -> str:
    """n rows × 5 uniform columns as CSV or Parquet (polars writes them: fast); parts > 1 gives
    a folder of Parquet files."""
    import polars as pl

    rng = np.random.default_rng(n)
    path = os.path.join(folder, f"points-{n}-{parts}.{kind}" if parts == 1 else f"parts-{n}")
    if os.path.exists(path):
        return path
    step = -(-n // parts)
    if parts > 1:
        os.makedirs(path)
    for k in range(parts):
        m = min(step, n - k * step)
        frame = pl.DataFrame({c: rng.uniform(-3, 3, m) for c in SCALE_COLS})
        target = path if parts == 1 else os.path.join(path, f"p{k:03d}.parquet")
        frame.write_csv(target) if kind == "csv" else frame.write_parquet(target)
    return path


_FLOOR = """
import sys, time, numpy as np, polars as pl
src, dst, n, cols = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
frame = pl.read_csv(src) if src.endswith(".csv") else pl.read_parquet(src)
t1 = time.perf_counter()
out = pl.DataFrame({f"c{k}": frame[:, k % frame.width] for k in range(cols)})
t2 = time.perf_counter()
out.write_csv(dst) if dst.endswith(".csv") else out.write_parquet(dst)
t3 = time.perf_counter()
print(t1 - t0 + t3 - t2)
"""

# The frame written has the output's shape and the output's kind of numbers: the input's own
# columns (full-precision doubles, shared, not copied), not zeros, which format and compress
# far faster than any gradient column (np.empty's fresh pages are zeros: that floor was easy).
# gradcli reads and writes Parquet with pyarrow (a lighter import than polars): its floor is
# pyarrow reading the file and writing a frame of the output's shape. The Parquet target takes
# the faster of the two floors, so choosing a library cannot make the floor easier to beat.
_FLOOR_ARROW = """
import sys, time, numpy as np, pyarrow as pa, pyarrow.parquet as pq
src, dst, n, cols = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
frame = pq.ParquetFile(src).read()
t1 = time.perf_counter()
out = pa.table({f"c{k}": frame.column(k % frame.num_columns) for k in range(cols)})
t2 = time.perf_counter()
pq.write_table(out, dst)
t3 = time.perf_counter()
print(t1 - t0 + t3 - t2)
"""


def _timed_process(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (bytes, of that process alone) and stdout of one command."""
    wrapper = ("import resource, subprocess, sys, time\n"
               "t0 = time.perf_counter()\n"
               "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
               "t = time.perf_counter() - t0\n"
               "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "rss, cpu = u.ru_maxrss * 1024, u.ru_utime + u.ru_stime\n"
               "sys.stdout.write(f'{t} {rss} {p.returncode} {cpu}\\n' + p.stdout.decode()[-200:])\n"
               "sys.stderr.write(p.stderr.decode()[-400:])\n")
    p = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True,
                       cwd=ROOT)
    first, _, rest = p.stdout.partition("\n")
    t, rss, code, cpu = first.split()
    if code != "0":
        raise RuntimeError(f"exit {code}: {p.stderr[-300:]}")
    _CPU.append(float(cpu))
    return float(t), int(rss), rest


_CPU: list[float] = []  # user + system seconds of each _timed_process, in order


def _gradcli_cmd() -> list[str]:
    script = gradcli_script()
    return [script] if script else [sys.executable, "-m", "gradcli"]


def run_scale(cfg: dict, results: dict, mode: str, reps_override) -> None:
    try:
        import polars  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the scale section needs gradcli[scale]: {exc}")
    n = cfg["scale_rows"]
    reps = reps_override or 3
    out: dict = {"rows": n, "io": [], "memory": [], "dask": []}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gradcli-scale-") as folder:
        for src, dst in (("csv", "csv"), ("parquet", "parquet")):
            progress(f"scale {src} -> {dst}, {fmt_size(n)} rows: floor and CLI, {reps} repeats")
            points = _scale_points(folder, n, src)
            target = os.path.join(folder, f"out.{dst}")
            floors = {"polars": [sys.executable, "-c", _FLOOR, points, target, str(n), "6"]}
            if src == "parquet":
                floors["pyarrow"] = [sys.executable, "-c", _FLOOR_ARROW, points, target, str(n),
                                     "6"]
            cli_cmd = _gradcli_cmd() + ["eval", str(NEURON_FILE), "--points", points, "-o",
                                        target]
            samples = {"cli": [], "cli_cpu": []}
            for lib in floors:
                samples.update({f"floor_process_{lib}": [], f"floor_io_{lib}": [],
                                f"floor_cpu_{lib}": []})
            for r in range(reps):
                for lib, floor_cmd in floors.items():
                    t, _, printed = _timed_process(floor_cmd)
                    samples[f"floor_process_{lib}"].append(t)
                    samples[f"floor_cpu_{lib}"].append(_CPU[-1])
                    samples[f"floor_io_{lib}"].append(float(printed.split()[0]))
                t, _, _ = _timed_process(cli_cmd)
                samples["cli"].append(t)
                samples["cli_cpu"].append(_CPU[-1])
            best = {k: min(v) for k, v in samples.items()}
            lib = min(floors, key=lambda k: best[f"floor_process_{k}"])  # the stricter floor
            for key in ("floor_process", "floor_io", "floor_cpu"):
                best[key] = best[f"{key}_{lib}"]
            rec = {"input": src, "output": dst, "rows": n, "bytes_in": os.path.getsize(points),
                   "floor_library": lib,
                   "samples_s": samples, **{f"{k}_s": v for k, v in best.items()},
                   "cli_vs_floor_process": best["cli"] / best["floor_process"],
                   "cli_cpu_vs_floor_cpu": best["cli_cpu"] / best["floor_cpu"],
                   "cli_vs_floor_io": best["cli"] / best["floor_io"]}
            out["io"].append(rec)
            rows.append([f"{src} → {dst} {fmt_size(n)}", f"{rec['bytes_in'] / 1e6:.0f} MB",
                         lib + ("" if len(floors) == 1 else " (" + ", ".join(
                             f"{k} {fmt_time(best[f'floor_process_{k}'])}" for k in floors) + ")"),
                         fmt_time(best["floor_io"]), fmt_time(best["floor_process"]),
                         fmt_time(best["cli"]), fmt_ratio(rec["cli_vs_floor_process"]),
                         fmt_ratio(rec["cli_vs_floor_io"]),
                         f"{best['floor_cpu']:.2f} / {best['cli_cpu']:.2f} s"])
        print_table("SCALE: `gradcli eval neuron --points FILE -o OUT` against the I/O floor "
                    "(a library reading the file, writing a frame of the output's shape); min of "
                    f"{reps}",
                    ["rows", "input", "floor library", "floor I/O", "floor process",
                     "gradcli CLI", "÷ floor process", "÷ floor I/O", "CPU floor / CLI"], rows,
                    ["floor I/O: the read and write calls alone; floor process: the same as a "
                     "Python process (start-up and the library's import included), as the CLI "
                     "is. CSV: polars (gradcli's CSV library). Parquet: polars and pyarrow "
                     "(gradcli's Parquet library) are both timed, and the faster is the floor."])
        mem_rows = []
        for kind in ("csv", "parquet"):
            for m in cfg["scale_memory"]:
                progress(f"scale peak memory {kind} {fmt_size(m)} rows")
                points = _scale_points(folder, m, kind)
                target = os.path.join(folder, f"mem.{kind}")
                t, rss, _ = _timed_process(_gradcli_cmd() + ["eval", str(NEURON_FILE),
                                                             "--points", points, "-o", target])
                os.remove(target)
                out["memory"].append({"input": kind, "rows": m, "peak_rss_bytes": rss,
                                      "seconds": t})
                mem_rows.append([f"{kind} → {kind} {fmt_size(m)}", f"{rss / 2**20:.0f} MiB",
                                 fmt_time(t), f"{m / t / 1e6:.2f} M rows/s"])
            if kind == "csv":
                os.remove(_scale_points(folder, cfg["scale_memory"][-1], "csv"))
        print_table("SCALE: peak memory (max RSS of the gradcli process), CSV and Parquet",
                    ["rows", "peak RSS", "wall time", "throughput"], mem_rows)
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("\nSCALE: dask[distributed] not installed; the Dask comparison is skipped")
            results["scale"] = out
            return
        m = cfg["scale_dask"]
        progress(f"scale Dask LocalCluster vs plain batch, {fmt_size(m)} rows")
        parts = _scale_points(folder, m, "parquet", parts=max(2, m // 10**6))
        single = _scale_points(folder, m, "parquet")
        t_plain, rss_plain, _ = _timed_process(_gradcli_cmd() + [
            "eval", str(NEURON_FILE), "--points", single, "-o",
            os.path.join(folder, "plain.parquet")])
        t_dask, rss_dask, _ = _timed_process(_gradcli_cmd() + [
            "eval", str(NEURON_FILE), "--points", parts + "/*.parquet", "--dask", "-o",
            os.path.join(folder, "dask-out")])
        out["dask"].append({"rows": m, "plain_s": t_plain, "dask_s": t_dask,
                            "plain_rows_per_s": m / t_plain, "dask_rows_per_s": m / t_dask,
                            "parts": len(os.listdir(parts)), "workers": os.cpu_count()})
        print_table(f"SCALE: Dask LocalCluster ({os.cpu_count()} worker processes) against "
                    "plain batch mode, Parquet → Parquet, one run each",
                    ["rows", "plain batch", "--dask local", "plain rows/s", "dask rows/s"],
                    [[fmt_size(m), fmt_time(t_plain), fmt_time(t_dask),
                      f"{m / t_plain / 1e6:.2f} M", f"{m / t_dask / 1e6:.2f} M"]],
                    ["--dask includes starting the cluster (worker processes importing numpy, "
                     "pandas, gradcli) and shipping the tape; the number is for the README."])
    results["scale"] = out


# -- peers --------------------------------------------------------------------------------------

def run_peer(peer: str, kind: str, size: int, seed: int, cap: float,
             family: str | None = None) -> dict:
    cmd = [sys.executable, str(HERE / "peers.py"), peer, kind, str(size), "--seed", str(seed)]
    if family:
        cmd += ["--family", family]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=cap, cwd=HERE)
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        last = err[-1] if err else "no progress reported"
        return {"ok": False, "capped": True, "error": f"time cap {cap:.0f} s ({last})"}
    if p.returncode != 0 or not p.stdout.strip():
        tail = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return {"ok": False, "error": f"process died (exit {p.returncode}) {tail[0][:120]}"}
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def gradcli_wide_reference(n: int, seed: int, results: dict) -> dict:
    for rec in results.get("wide", []):
        if rec.get("size") == n and "gradient" in rec:
            return rec
    prog, _ = F.wide(n, seed)
    text = F.render(prog)
    point = {k: np.float64(v) for k, v in F.wide_point(seed).items()}
    t0 = time.perf_counter()
    tape, _ = parse(text)
    values = gradcli_sweeps(tape, point)
    adj = gradcli_reverse(tape, values, list(tape.variables))
    total = time.perf_counter() - t0
    grad = [float(adj[tape.variables[f"x{k}"]]) if f"x{k}" in tape.variables else 0.0
            for k in range(F.N_VARS)]
    return {"value": float(values[tape.outputs[0]]), "gradient": grad, "total_s": total,
            "forward_s": None, "reverse_s": None}


def max_rel_err(a: list[float], b: list[float]) -> float:
    scale = max(1e-300, max(abs(x) for x in b))
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def run_peers(cfg: dict, results: dict, seed: int) -> None:
    cap = cfg["peer_cap"]
    rows, out = [], []
    for peer in ("micrograd", "sympy"):
        if importlib.util.find_spec(peer) is None:
            rows.append([peer, "not installed (pip install -e '.[bench]')"])
            out.append({"peer": peer, "error": "not installed"})
            continue
        jobs = [("wide", None, n) for n in cfg["peer_wide"]]
        jobs += [("deep", fam, n) for fam in F.DEEP_FAMILIES for n in cfg["peer_deep"]]
        broken: dict[str | None, str] = {}
        for kind, family, n in jobs:
            label = f"{peer} {kind}{' ' + family if family else ''} {fmt_size(n)}"
            key = family if kind == "deep" else "wide"
            if key in broken:
                rec = {"peer": peer, "kind": kind, "family": family, "size": n, "ok": False,
                       "error": f"not tried: broke at {broken[key]}"}
                out.append(rec)
                rows.append([label, rec["error"]])
                continue
            progress(f"peer {label} (cap {cap:.0f} s)")
            rec = run_peer(peer, kind, n, seed, cap, family)
            rec.update(peer=peer, kind=kind, family=family, size=n)
            if not rec.get("ok"):
                broken[key] = fmt_size(n)
                out.append(rec)
                rows.append([label, rec["error"][:110]])
                continue
            if kind == "wide":
                ref = gradcli_wide_reference(n, seed, results)
                rec["gradcli_total_s"] = ref["total_s"]
                if ref.get("forward_s"):
                    rec["gradcli_sweeps_s"] = ref["forward_s"] + ref["reverse_s"]
                rec["max_rel_err"] = max_rel_err(rec["gradient"], ref["gradient"])
            else:
                _, eg = deep_expected(family, n, seed)
                rec["max_rel_err"] = abs(rec["gradient"][0] - eg) / max(1e-300, abs(eg) or 1)
                ref = next((d for d in results.get("deep", []) if d.get("family") == family
                            and d.get("depth") == n and "total_s" in d), None)
                rec["gradcli_total_s"] = ref["total_s"] if ref else None
                if ref:
                    rec["gradcli_sweeps_s"] = ref["forward_s"] + ref["reverse_s"]
            out.append(rec)
            phases = (f"sympify {fmt_time(rec['sympify'])}, diff {fmt_time(rec['diff'])}, "
                      f"evalf {fmt_time(rec['evalf'])}" if peer == "sympy" else
                      f"build {fmt_time(rec['build'])}, backward {fmt_time(rec['backward'])}")
            g = rec.get("gradcli_total_s")
            sw = rec.get("gradcli_sweeps_s")
            rows.append([label, fmt_time(rec["total"]), phases,
                         fmt_time(g) if g else "—", fmt_ratio(rec["total"] / g) if g else "—",
                         fmt_time(sw) if sw else "—", fmt_ratio(rec["total"] / sw) if sw else "—",
                         f"{rec['max_rel_err']:.1e}"])
    results["peers"] = out
    print_table(f"PEERS: each in its own process, capped at {cap:.0f} s; bigger sizes are not "
                "tried once one breaks",
                ["peer, formula, size", "total", "phases", "gradcli total", "÷ total",
                 "gradcli sweeps", "÷ sweeps", "grad rel. err"], rows,
                ["gradcli total = parse + forward + reverse; sweeps = forward + reverse (micrograd "
                 "builds its graph from the program directly: no parsing).",
                 "÷: the peer's total time ÷ gradcli's (above 1: gradcli is faster); grad rel. "
                 "err: the peer's gradient against gradcli's (closed form for deep).",
                 "micrograd 0.1.0 has no sin/cos/tanh/exp: they are added in its own style; its "
                 "backward() sorts the graph recursively.",
                 "sympy: sympify (which also simplifies), diff for each variable, evalf(subs=...) "
                 "of the value and each derivative."],
                align="lrlrrrrr")


# -- targets ------------------------------------------------------------------------------------

def targets(results: dict, mode: str) -> list[dict]:
    out = []

    def add(name, ratio, limit, where, proxy=None, unit="×"):
        rec = {"target": name, "limit": limit, "unit": unit, "where": where}
        if ratio is None:
            rec["status"] = "not measured"
            if proxy:
                rec["proxy"] = proxy
        else:
            rec["ratio"] = ratio
            rec["status"] = "met" if ratio <= limit else "missed"
        out.append(rec)

    cold = {c["command"]: c for c in results.get("cold", []) if "median_s" in c}
    c = cold.get("gradcli eval neuron --json") or cold.get("python -m gradcli eval neuron --json")
    if "cold" in results:
        add("cold `gradcli eval neuron --json` ÷ `python -c \"import numpy\"`",
            c["vs_import_numpy"] if c else None, TARGETS["cold"],
            f"medians of {len(c['samples_s'])} runs" if c else "failed")
    if "wide" in results:
        wide = {w["size"]: w for w in results["wide"] if "total_s" in w}
        big = wide.get(10**6)
        biggest = max(wide) if wide else None
        proxy_t = (f"{wide[biggest]['total_vs_ast']:.2f}× at {fmt_size(biggest)}"
                   if biggest else None)
        proxy_m = (f"{wide[biggest]['bytes_per_node']:.0f} B/node at {fmt_size(biggest)}"
                   if biggest else None)
        add("10^6-node parse + forward + reverse ÷ ast.parse",
            big["total_vs_ast"] if big else None, TARGETS["wide_vs_ast"],
            "10^6 nodes" if big else f"{mode} mode stops at {fmt_size(biggest or 0)}", proxy_t)
        add("10^6-node peak memory per node (parse + forward + reverse)",
            big["bytes_per_node"] if big else None, TARGETS["bytes_per_node"],
            "tracemalloc peak" if big else f"{mode} mode stops at {fmt_size(biggest or 0)}",
            proxy_m, unit="B")
        if wide:
            worst = max(wide.values(), key=lambda w: w["reverse_vs_forward"])
            add("reverse sweep ÷ forward sweep, worst wide formula",
                worst["reverse_vs_forward"], TARGETS["reverse_vs_forward"],
                f"worst at {fmt_size(worst['size'])} of "
                + ", ".join(f"{fmt_size(s)}: {w['reverse_vs_forward']:.2f}"
                            for s, w in sorted(wide.items())))
    if "batch" in results:
        for name in batch_formulas():
            rec = next((b for b in results["batch"] if b.get("formula") == name
                        and b.get("points") == 10**6 and "ratio" in b), None)
            add(f"batch {name}, 10^6 points: batch.sweep ÷ numpy by hand",
                rec["ratio"] if rec else None, TARGETS["batch_vs_numpy"],
                "min of interleaved repeats" if rec else "not run at 10^6")
    if "scale" in results:
        io_recs = {(r["input"], r["output"]): r for r in results["scale"].get("io", [])}
        for key, limit in ((("csv", "csv"), TARGETS["scale_csv"]),
                           (("parquet", "parquet"), TARGETS["scale_parquet"])):
            rec = io_recs.get(key)
            add(f"10^6 × 5 {key[0]} → {key[1]}, whole CLI ÷ I/O floor (as a process)",
                rec["cli_vs_floor_process"] if rec else None, limit,
                f"÷ the read and write calls alone: {rec['cli_vs_floor_io']:.2f}×" if rec
                else "not run")
        mem = {(r["input"], r["rows"]): r["peak_rss_bytes"]
               for r in results["scale"].get("memory", [])}
        for kind in ("csv", "parquet"):
            sizes = sorted(m for k, m in mem if k == kind)
            if len(sizes) >= 2:
                lo, hi = sizes[0], sizes[-1]
                add(f"peak memory {kind}, {fmt_size(hi)} ÷ {fmt_size(lo)} rows",
                    mem[(kind, hi)] / mem[(kind, lo)], TARGETS["scale_memory"],
                    f"{mem[(kind, lo)] / 2**20:.0f} → {mem[(kind, hi)] / 2**20:.0f} MiB")
    speed.targets(results, add)  # issue 17: every target, met or missed
    return out


def print_targets(rows: list[dict]) -> None:
    table = []
    for t in rows:
        if t["unit"] == "B":
            limit = f"≤ {t['limit']:.0f} B"
            measured = f"{t['ratio']:.0f} B" if "ratio" in t else "—"
        else:
            limit = f"≤ {t['limit']:g}×"
            measured = f"{t['ratio']:.2f}×" if "ratio" in t else "—"
        status = t["status"].upper() if t["status"] != "not measured" else "not measured"
        note = t["where"] + (f"; proxy {t['proxy']}" if t.get("proxy") else "")
        table.append([t["target"], measured, limit, status, note])
    print_table("TARGETS (each a ratio within this one run)",
                ["target", "measured", "limit", "status", "how"], table, align="lrrll")


# -- profile ------------------------------------------------------------------------------------

def profile_parse(n: int, seed: int, top: int) -> None:
    import cProfile
    import pstats

    prog, _ = F.wide(n, seed)
    text = F.render(prog)
    parse(text)  # warm: Lark's tables are built or loaded from the cache
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    tape, _ = parse(text)
    prof.disable()
    print(f"cProfile of gradcli.parse.parse on a wide formula of {len(tape):,} nodes "
          f"({len(text):,} characters), seed {seed}")
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# -- main ---------------------------------------------------------------------------------------

def git_state() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:
            return ""
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small sizes (under a minute)")
    ap.add_argument("--out", help="where to write the JSON (default: a new file in the temp "
                                  "folder, printed at the end)")
    ap.add_argument("--seed", type=int, default=0, help="seed of every generated formula")
    ap.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--repeats", type=int, help="repeats per size (default: by size and mode)")
    ap.add_argument("--peer-cap", type=float, help="seconds a peer gets per size")
    ap.add_argument("--profile-parse", type=int, metavar="NODES",
                    help="profile gradcli's parse of a wide formula of about NODES nodes with "
                         "cProfile, print the top costs, and exit")
    ap.add_argument("--top", type=int, default=25, help="rows of the profile (default 25)")
    args = ap.parse_args(argv)

    if args.profile_parse:
        profile_parse(args.profile_parse, args.seed, args.top)
        return 0

    mode = "quick" if args.quick else "full"
    cfg = dict(MODES[mode])
    if args.peer_cap:
        cfg["peer_cap"] = args.peer_cap
    only = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.out:
        out_path = Path(args.out)
    else:
        fd, name = tempfile.mkstemp(prefix=f"gradcli-bench-{mode}-", suffix=".json")
        os.close(fd)
        out_path = Path(name)

    import lark

    started = time.time()
    results: dict = {
        "meta": {
            "mode": mode, "seed": args.seed, "sections": list(only),
            "gradcli": GRADCLI_VERSION, "python": sys.version.split()[0],
            "numpy": np.__version__, "lark": lark.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_start": list(os.getloadavg()), "started": time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(started)),
            **git_state(),
        }
    }
    print(f"gradcli {GRADCLI_VERSION} benchmarks, {mode} mode, seed {args.seed}: Python "
          f"{results['meta']['python']}, numpy {np.__version__}, lark {lark.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    runners = {
        "cold": lambda: run_cold(cfg, results),
        "wide": lambda: run_wide(cfg, results, args.seed, mode, args.repeats),
        "deep": lambda: run_deep(cfg, results, args.seed, mode, args.repeats),
        "batch": lambda: run_batch(cfg, results, args.seed, mode, args.repeats),
        "peers": lambda: run_peers(cfg, results, args.seed),
        "scale": lambda: run_scale(cfg, results, mode, args.repeats),
        "speed": lambda: results.__setitem__(
            "speed", speed.run_speed(sys.modules[__name__], mode, args.seed)),
    }
    code = 0
    try:
        for section in SECTIONS:
            if section in only:
                t0 = time.perf_counter()
                try:
                    runners[section]()
                except (Exception, MemoryError) as exc:  # a section must not stop the others
                    results[section + "_error"] = error_text(exc)
                    print(f"\n{section.upper()}: stopped by {error_text(exc)}")
                results["meta"][f"{section}_seconds"] = time.perf_counter() - t0
    except KeyboardInterrupt:
        print("\ninterrupted: writing what was measured so far")
        code = 130
    results["targets"] = targets(results, mode)
    results["meta"]["seconds"] = time.time() - started
    results["meta"]["loadavg_end"] = list(os.getloadavg())
    print_targets(results["targets"])
    out_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\n{mode} run took {results['meta']['seconds']:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.2f}. JSON: {out_path}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
