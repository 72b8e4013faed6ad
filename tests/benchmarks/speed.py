"""Issue 17's section of the suite (`--only speed`): what a user waits for, against peers timed
in the same run. run.py calls `run_speed` and adds `targets` to its summary.

    cold      eval, check and diff of the neuron with --json, whole processes, interleaved with
              `python -c "import numpy"` (medians)
    evaluate  gradcli.api.evaluate of the neuron (text -> value and full gradient) against
              micrograd building and backpropagating the same neuron (best of batches): the
              same text again and again (the target: parse cache and compiled sweep), and, for
              honesty, a new text each call (parsed and swept by the engine, never cached)
    descent   per step, in-process (gradcli.descend with the command's default --every) against a
              torch eager loop (loss.backward(), update under no_grad, zero the grads), on the
              neuron and on Rosenbrock; and the whole CLI, 200 000 steps of a quadratic, with and
              without --json (its size too)
    wide      a 10^6-node wide formula (10^5 in --quick): gradient in-process (parse + forward +
              reverse) and the whole CLI (`gradcli eval FILE --at ... --json`, as a user types
              it) with --json to a file, against torch one-shot (the program built on 0-d
              float64 tensors, then backward()); the CLI's peak memory
    net       sum((sigmoid(X @ W1) @ W2 - Y)^2), X 10^6×8, W1 8×32, W2 32×1: gradcli.api.evaluate
              (gradients of W1 and W2) against numpy by hand and torch; then gradcli and hand
              numpy again in a child process with the environment the gradcli command sets for
              itself (OPENBLAS_THREAD_TIMEOUT=20: OpenBLAS's threads do not spin after a product)

Not a test module; pytest never collects this folder.
"""

from __future__ import annotations

import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import formulas as F

NEURON_POINT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
ROSENBROCK = "(1-x)^2 + 100*(y-x^2)^2"
NET_TEXT = "sum((sigmoid(X @ W1) @ W2 - Y)^2)"

LIMITS = {
    "cold": 1.0,  # each of eval/check/diff --json ÷ python -c "import numpy"
    "evaluate": 1.0,  # api.evaluate of the neuron ÷ micrograd
    "descent": 0.2,  # per step ÷ torch eager loop
    "descent_json": 1.2,  # the CLI with --json ÷ without
    "descent_bytes": 1e6,  # 200 000 steps' JSON with the default --every
    "wide_inproc": 0.35,  # 10^6 nodes, in-process gradient ÷ torch one-shot
    "wide_cli": 0.5,  # whole CLI --json to a file ÷ torch one-shot
    "wide_bytes": 300.0,  # the CLI's peak RSS per node
    "net_numpy": 1.0,
    "net_torch": 1.0,
}

MODES = {
    "quick": {"cold_runs": 7, "eval_calls": 300, "descent_steps": 2000, "cli_steps": 200_000,
              "cli_reps": 1, "wide": 10**5, "net_rows": 10**6, "reps": 2,
              "net_reps": 3},
    "full": {"cold_runs": 21, "eval_calls": 2000, "descent_steps": 20_000, "cli_steps": 200_000,
             "cli_reps": 3, "wide": 10**6, "net_rows": 10**6, "reps": 3,
             "net_reps": 7},
}


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def script(R) -> list[str]:
    s = R.gradcli_script()
    return [s] if s else [sys.executable, "-m", "gradcli"]


def run_wait4(cmd: list[str], stdout=subprocess.DEVNULL, cwd=None,
              memory: bool = False, env=None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in bytes) of one whole process. Linux keeps a forked
    child's ru_maxrss across exec, so this (big) process's own RSS would count: the peak comes
    from /usr/bin/time (a small process in between) where it exists, else from wait4."""
    timer = "/usr/bin/time" if memory and os.path.exists("/usr/bin/time") else ""
    with tempfile.TemporaryFile() as err:
        prefix = [timer, "-f", "%M"] if timer else []
        t0 = time.perf_counter()
        p = subprocess.Popen(prefix + cmd, stdout=stdout, stderr=err if timer else
                             subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        t = time.perf_counter() - t0
        peak = usage.ru_maxrss * 1024
        if timer:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()[-1:]
            if last and last[0].isdigit():
                peak = int(last[0]) * 1024
    return t, os.waitstatus_to_exitcode(status), peak


def tree_pss_peak(cmd: list[str], stdout, env=None) -> tuple[float, int, int | None]:
    """(seconds, exit code, peak bytes) of one whole process, the peak being the sum of the
    PSS (proportional set size: a page shared by two processes counts half in each) of the
    process and its children, sampled every 10 ms from /proc. Unlike the max RSS of the
    process, this counts what a forked child adds: pages it copies, and pages the parent
    copies while the child still shares the old ones (library pages shared with other
    processes, this one among them, count in part: a few MiB). None where /proc has no
    smaps_rollup."""
    def tree(pid: int) -> list[int]:
        out = [pid]
        for p in out:  # grows as children are found
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as fh:
                        out += [int(c) for c in fh.read().split()]
            except OSError:
                pass
        return out

    def pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    works = os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env)
    peak = 0
    while p.poll() is None:
        if works:
            peak = max(peak, sum(pss(q) for q in tree(p.pid)))
        time.sleep(0.01)
    return time.perf_counter() - t0, p.returncode, peak if works else None


# -- cold ---------------------------------------------------------------------------------------

def measure_cold(R, runs: int) -> dict:
    args = [str(R.NEURON_FILE.relative_to(R.ROOT)), "--at", R.NEURON_AT, "--json"]
    base = script(R)
    commands = {f"gradcli {c} neuron --json": base + [c] + args for c in ("eval", "check", "diff")}
    commands['python -c "import numpy"'] = [sys.executable, "-c", "import numpy"]
    errors = {}
    for name, cmd in commands.items():  # warm-up
        _, code, _ = run_wait4(cmd, cwd=R.ROOT)
        if code != 0:
            errors[name] = f"exit {code}"
    names = [n for n in commands if n not in errors]
    samples: dict = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t, _, _ = run_wait4(commands[name], cwd=R.ROOT)
            samples[name].append(t)
    med = {n: statistics.median(s) for n, s in samples.items()}
    base_s = med.get('python -c "import numpy"')
    return {"runs": runs, "errors": errors, "median_s": med, "samples_s": samples,
            "vs_import_numpy": {n: m / base_s for n, m in med.items()} if base_s else {}}


# -- evaluate -----------------------------------------------------------------------------------

def micrograd_neuron():
    from micrograd.engine import Value

    def exp(a):  # micrograd 0.1.0 has no exp: added in its own style
        out = Value(math.exp(a.data), (a,), "exp")

        def _backward():
            a.grad += out.data * out.grad
        out._backward = _backward
        return out

    def neuron():
        w0, x0, w1, x1, w2 = (Value(NEURON_POINT[k]) for k in ("w0", "x0", "w1", "x1", "w2"))
        dot = w0 * x0 + w1 * x1 + w2
        f = (1 + exp(-dot)) ** -1
        f.backward()
        return f.data, [w0.grad, x0.grad, w1.grad, x1.grad, w2.grad]
    return neuron


def best_per_call(fn, calls: int, reps: int) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t0) / calls)
    return min(out)


def measure_evaluate(R, calls: int) -> dict:
    from gradcli import api

    text = R.NEURON_FILE.read_text(encoding="utf-8")

    def ours():
        r = api.evaluate(text, NEURON_POINT)
        return r.value, r.gradient

    fresh = iter(range(10**9))

    def uncached():  # a text never seen before (a comment differs): parsed, not compiled
        r = api.evaluate(f"{text}\n# call {next(fresh)}", NEURON_POINT)
        return r.value, r.gradient

    rec: dict = {"calls": calls}
    value, grad = ours()
    rec["value"] = value
    fns = {"gradcli": ours, "gradcli_uncached": uncached}
    if have("micrograd"):
        fns["micrograd"] = micrograd_neuron()
        mv, mg = fns["micrograd"]()
        rec["agree"] = abs(mv - value) < 1e-12 and all(
            abs(a - b) < 1e-12 for a, b in zip(mg, grad.values()))
    samples: dict = {k: [] for k in fns}
    for r in range(5):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]
        for k in order:
            samples[k].append(best_per_call(fns[k], calls, 1))
    best = {k: min(v) for k, v in samples.items()}
    rec.update(samples_s=samples, gradcli_s=best["gradcli"], micrograd_s=best.get("micrograd"),
               uncached_s=best["gradcli_uncached"])
    if "micrograd" in best:
        rec["ratio"] = best["gradcli"] / best["micrograd"]
        rec["uncached_ratio"] = best["gradcli_uncached"] / best["micrograd"]
    return rec


# -- descent ------------------------------------------------------------------------------------

def gradcli_descent(text: str, at: dict, lr: float, steps: int):
    from gradcli import descend as D
    from gradcli.parse import parse

    tape, _ = parse(text)
    point = {k: np.float64(v) for k, v in at.items()}

    def go():
        traj = D.Trajectory(every=D.default_every(steps))
        for record in D.descend(tape, point, None, lr=lr, steps=steps):
            traj.add(record)
        return traj.final
    return go


def torch_descent(kind: str, at: dict, lr: float, steps: int):
    import torch

    def go():
        ps = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in at.items()}
        for _ in range(steps):
            if kind == "neuron":
                dot = ps["w0"] * ps["x0"] + ps["w1"] * ps["x1"] + ps["w2"]
                loss = 1 / (1 + torch.exp(-dot))
            else:
                x, y = ps["x"], ps["y"]
                loss = (1 - x) ** 2 + 100 * (y - x ** 2) ** 2
            loss.backward()
            with torch.no_grad():
                for p in ps.values():
                    p -= lr * p.grad
            for p in ps.values():
                p.grad = None
        return loss.item()
    return go


def measure_descent(R, steps: int, reps: int) -> list[dict]:
    jobs = [("neuron", R.NEURON_FILE.read_text(encoding="utf-8"), NEURON_POINT, 0.1),
            ("Rosenbrock", ROSENBROCK, {"x": -1.2, "y": 1.0}, 1e-4)]
    out = []
    for name, text, at, lr in jobs:
        fns = {"gradcli": gradcli_descent(text, at, lr, steps)}
        if have("torch"):
            fns["torch"] = torch_descent(name.lower(), at, lr, steps)
        samples: dict = {k: [] for k in fns}
        for r in range(reps):
            for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                t, _ = R.timed(fns[k])
                samples[k].append(t / steps)
        best = {k: min(v) for k, v in samples.items()}
        rec = {"formula": name, "steps": steps, "samples_s": samples,
               "gradcli_step_s": best["gradcli"], "torch_step_s": best.get("torch")}
        if "torch" in best:
            rec["ratio"] = best["gradcli"] / best["torch"]
        out.append(rec)
    return out


def measure_descent_cli(R, steps: int, reps: int) -> dict:
    cmd = script(R) + ["descend", "(w-3)^2 + (v+1)^2", "--at", "w=0,v=0", "--lr", "1e-6",
                       "--steps", str(steps)]
    samples: dict = {"json": [], "table": []}
    size = None
    for r in range(reps):
        for kind in (("json", "table") if r % 2 == 0 else ("table", "json")):
            if kind == "json":
                with tempfile.TemporaryFile() as fh:
                    t, code, _ = run_wait4(cmd + ["--json"], stdout=fh)
                    fh.seek(0, os.SEEK_END)
                    size = fh.tell()
            else:
                t, code, _ = run_wait4(cmd)
            if code != 0:
                return {"error": f"{kind}: exit {code}"}
            samples[kind].append(t)
    best = {k: min(v) for k, v in samples.items()}
    return {"steps": steps, "samples_s": samples, "json_s": best["json"],
            "table_s": best["table"], "ratio": best["json"] / best["table"], "json_bytes": size}


# -- wide ---------------------------------------------------------------------------------------

def torch_wide(prog, fpoint):
    import torch

    def go():
        xs = [torch.tensor(fpoint[f"x{k}"], dtype=torch.float64, requires_grad=True)
              for k in range(F.N_VARS)]
        f64 = torch.float64
        fns = {k: (lambda f: lambda v: f(torch.as_tensor(v, dtype=f64)))(f)
               for k, f in (("sin", torch.sin), ("tanh", torch.tanh), ("exp", torch.exp))}
        fns["const"] = float
        out = F.evaluate_program(prog, xs, fns)
        out.backward()
        return out.item(), [float(x.grad) if x.grad is not None else 0.0 for x in xs]
    return go


def measure_wide(R, n: int, seed: int, reps: int) -> dict:
    from gradcli.parse import parse

    prog, _ = F.wide(n, seed)
    text = F.render(prog)
    fpoint = F.wide_point(seed)
    point = {k: np.float64(v) for k, v in fpoint.items()}
    folder = tempfile.mkdtemp(prefix="gradcli-bench-wide-")
    formula = os.path.join(folder, "wide.grad")
    with open(formula, "w", encoding="utf-8") as fh:
        fh.write(text)
    at = ",".join(f"{k}={v!r}" for k, v in fpoint.items())
    out_file = os.path.join(folder, "out.json")
    # what a user types (the default --max-nodes admits 10^6 nodes): commands/quick.py's path
    cli = script(R) + ["eval", formula, "--at", at, "--json"]

    def ours():
        tape, _ = parse(text)
        values = R.gradcli_sweeps(tape, point)
        R.gradcli_reverse(tape, values, list(tape.variables))
        return len(tape), float(values[tape.outputs[0]])

    def whole(env=None, tree=False):
        with open(out_file, "wb") as fh:
            if tree:
                t, code, rss = tree_pss_peak(cli, stdout=fh, env=env)
            else:
                t, code, rss = run_wait4(cli, stdout=fh, memory=True, env=env)
        if code != 0:
            raise RuntimeError(f"gradcli eval exited {code}")
        return t, rss

    fns = {"gradcli": ours}
    if have("torch"):
        fns["torch"] = torch_wide(prog, fpoint)
    samples: dict = {"gradcli": [], "torch": [], "cli": []}
    rss = []
    nodes = None
    for r in range(reps):
        order = ["gradcli", "torch", "cli"] if r % 2 == 0 else ["cli", "torch", "gradcli"]
        for k in order:
            if k == "cli":
                t, peak = whole()
                samples["cli"].append(t)
                rss.append(peak)
            elif k in fns:
                t, res = R.timed(fns[k], paused=(k == "gradcli"))
                samples[k].append(t)
                if k == "gradcli":
                    nodes = res[0]
    _, tree_pss = whole(tree=True)  # memory of the CLI and its forked writer, summed
    one_core, one_core_pss = whole(dict(os.environ, GRADCLI_THREADS="1"), tree=True)
    _, _, base_rss = run_wait4(script(R) + ["eval", str(R.NEURON_FILE), "--at", R.NEURON_AT,
                                            "--json"], memory=True)
    os.remove(out_file)
    os.remove(formula)
    os.rmdir(folder)
    best = {k: min(v) for k, v in samples.items() if v}
    rec = {"size": n, "nodes": nodes, "samples_s": samples, "gradcli_s": best["gradcli"],
           "cli_s": best["cli"], "torch_s": best.get("torch"), "cli_peak_rss": max(rss),
           "cli_one_core_s": one_core, "cli_tree_pss": tree_pss,
           "cli_one_core_pss": one_core_pss,
           "cli_tree_bytes_per_node": tree_pss / nodes if tree_pss else None,
           "cli_one_core_bytes_per_node": one_core_pss / nodes if one_core_pss else None,
           "startup_rss": base_rss, "cli_bytes_per_node": max(rss) / nodes,
           "cli_bytes_per_node_over_startup": (max(rss) - base_rss) / nodes}
    if "torch" in best:
        rec["inproc_ratio"] = best["gradcli"] / best["torch"]
        rec["cli_ratio"] = best["cli"] / best["torch"]
        rec["cli_one_core_ratio"] = one_core / best["torch"]
    return rec


# -- net ----------------------------------------------------------------------------------------

def measure_net_as_command(n: int, reps: int) -> dict:
    """measure_net (gradcli and hand numpy only) in a child process whose environment is what
    the gradcli command sets for itself before numpy loads (gradcli._COMMAND_ENVIRONMENT): the
    API's figure above is numpy's default, where OpenBLAS's threads spin after each product."""
    import json

    import gradcli

    env = dict(os.environ, **gradcli._COMMAND_ENVIRONMENT)
    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import json, sys; sys.path[:0] = [sys.argv[1]]; import run as R, speed; "
            "print(json.dumps(speed.measure_net(R, int(sys.argv[2]), int(sys.argv[3]), "
            "peers=False)))")
    p = subprocess.run([sys.executable, "-c", code, here, str(n), str(reps)], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {p.stderr[-300:]}"}
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["environment"] = " ".join(f"{k}={v}" for k, v in gradcli._COMMAND_ENVIRONMENT.items())
    return rec


def measure_net(R, n: int, reps: int, peers: bool = True) -> dict:
    """The two-layer net through gradcli.api.evaluate against numpy by hand (and, with `peers`,
    gradcli with GRADCLI_THREADS=1 and torch), interleaved in this process."""
    from gradcli import api

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 8))
    W1 = rng.standard_normal((8, 32)) * 0.3
    W2 = rng.standard_normal((32, 1)) * 0.3
    Y = rng.standard_normal((n, 1))

    def ours():
        r = api.evaluate(NET_TEXT, {"X": X, "W1": W1, "W2": W2, "Y": Y}, wrt=["W1", "W2"])
        return r.value, r.gradient

    def hand():
        H = 1.0 / (1.0 + np.exp(-(X @ W1)))
        D = H @ W2 - Y
        dP = 2.0 * D
        dH = dP @ W2.T
        dH *= H * (1.0 - H)  # σ' = σ(1 - σ)
        return float(np.sum(D * D)), {"W1": X.T @ dH, "W2": H.T @ dP}

    def one_core():  # GRADCLI_THREADS=1: no lanes (numpy's BLAS keeps its own threads)
        from gradcli import lanes

        before, lanes._workers = lanes._workers, 1
        try:
            return ours()
        finally:
            lanes._workers = before

    fns = {"gradcli": ours, "numpy": hand}
    if peers:
        fns["one core"] = one_core
    if peers and have("torch"):
        import torch

        tX, tY = torch.from_numpy(X), torch.from_numpy(Y)

        def tor():
            w1 = torch.tensor(W1, requires_grad=True)
            w2 = torch.tensor(W2, requires_grad=True)
            loss = ((torch.sigmoid(tX @ w1) @ w2 - tY) ** 2).sum()
            loss.backward()
            return loss.item(), {"W1": w1.grad.numpy(), "W2": w2.grad.numpy()}
        fns["torch"] = tor
    value, grad = ours()
    ref_v, ref_g = hand()
    rec: dict = {"rows": n, "gradient_types": sorted({type(g).__name__ for g in grad.values()}),
                 "agree": bool(np.isclose(value, ref_v, rtol=1e-9)) and all(
                     np.allclose(grad[k], ref_g[k], rtol=1e-8, atol=1e-8) for k in ref_g)}
    del grad, ref_g
    samples: dict = {k: [] for k in fns}
    for r in range(reps):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t, _ = R.timed(fns[k])
            samples[k].append(t)
    best = {k: min(v) for k, v in samples.items()}
    rec.update(samples_s=samples, gradcli_s=best["gradcli"], numpy_s=best["numpy"],
               torch_s=best.get("torch"), numpy_ratio=best["gradcli"] / best["numpy"])
    if "one core" in best:
        rec["one_core_s"] = best["one core"]
        rec["one_core_ratio"] = best["one core"] / best["numpy"]
    if "torch" in best:
        rec["torch_ratio"] = best["gradcli"] / best["torch"]
    return rec


# -- the section --------------------------------------------------------------------------------

def run_speed(R, mode: str, seed: int) -> dict:
    cfg = MODES[mode]
    res: dict = {}
    steps = [
        ("cold", lambda: measure_cold(R, cfg["cold_runs"]),
         f"cold: eval/check/diff --json and import numpy, {cfg['cold_runs']} interleaved runs"),
        ("evaluate", lambda: measure_evaluate(R, cfg["eval_calls"]),
         "evaluate() of the neuron against micrograd"),
        ("descent", lambda: measure_descent(R, cfg["descent_steps"], cfg["reps"]),
         f"descent: {cfg['descent_steps']} steps, gradcli and torch, neuron and Rosenbrock"),
        ("descent_cli", lambda: measure_descent_cli(R, cfg["cli_steps"], cfg["cli_reps"]),
         f"descent CLI: {cfg['cli_steps']:,} steps with and without --json"),
        ("wide", lambda: measure_wide(R, cfg["wide"], seed, 2),
         f"wide {R.fmt_size(cfg['wide'])}: in-process, whole CLI and torch one-shot"),
        ("net", lambda: measure_net(R, cfg["net_rows"], cfg["net_reps"]),
         f"two-layer net over {R.fmt_size(cfg['net_rows'])} rows: gradcli, numpy, torch"),
        ("net_command", lambda: measure_net_as_command(cfg["net_rows"], cfg["net_reps"]),
         "the same net in a process with the command's environment"),
    ]
    for key, fn, what in steps:
        R.progress(what)
        try:
            res[key] = fn()
        except (Exception, MemoryError) as exc:
            res[key] = {"error": R.error_text(exc)}
    print_speed(R, res)
    return res


def print_speed(R, res: dict) -> None:
    t, ratio = R.fmt_time, R.fmt_ratio
    rows = []
    cold = res.get("cold", {})
    for name, m in cold.get("median_s", {}).items():
        rows.append([name, t(m), "", ratio(cold["vs_import_numpy"].get(name))])
    for name, err in cold.get("errors", {}).items():
        rows.append([name, "error: " + err])
    ev = res.get("evaluate", {})
    if "gradcli_s" in ev:
        rows.append(["evaluate() of the neuron, in-process (cached text)", t(ev["gradcli_s"]),
                     f"micrograd {t(ev['micrograd_s'])}" if ev.get("micrograd_s") else "—",
                     ratio(ev.get("ratio"))])
        if "uncached_s" in ev:
            rows.append(["evaluate() of the neuron, a new text each call", t(ev["uncached_s"]),
                         f"micrograd {t(ev['micrograd_s'])}" if ev.get("micrograd_s") else "—",
                         ratio(ev.get("uncached_ratio"))])
    for d in res.get("descent", []) if isinstance(res.get("descent"), list) else []:
        rows.append([f"descend {d['formula']}, per step", t(d["gradcli_step_s"]),
                     f"torch {t(d['torch_step_s'])}" if d.get("torch_step_s") else "—",
                     ratio(d.get("ratio"))])
    dc = res.get("descent_cli", {})
    if "json_s" in dc:
        rows.append([f"descend CLI {dc['steps']:,} steps --json", t(dc["json_s"]),
                     f"no --json {t(dc['table_s'])}; JSON {dc['json_bytes'] / 1e3:.0f} kB",
                     ratio(dc["ratio"])])
    w = res.get("wide", {})
    if "gradcli_s" in w:
        torch_s = f"torch {t(w['torch_s'])}" if w.get("torch_s") else "—"
        rows.append([f"wide {R.fmt_size(w['size'])}: gradient in-process", t(w["gradcli_s"]),
                     torch_s, ratio(w.get("inproc_ratio"))])
        rows.append([f"wide {R.fmt_size(w['size'])}: CLI --json to a file", t(w["cli_s"]),
                     f"{torch_s}; peak {w['cli_peak_rss'] / 2**20:.0f} MiB = "
                     f"{w['cli_bytes_per_node']:.0f} B/node", ratio(w.get("cli_ratio"))])
        if w.get("cli_tree_pss"):
            rows.append(["  its processes' summed peak PSS", f"{w['cli_tree_pss'] / 2**20:.0f} MiB",
                         f"{w['cli_tree_bytes_per_node']:.0f} B/node", ""])
        rows.append(["  the same, GRADCLI_THREADS=1", t(w["cli_one_core_s"]),
                     torch_s + (f"; PSS {w['cli_one_core_pss'] / 2**20:.0f} MiB = "
                                f"{w['cli_one_core_bytes_per_node']:.0f} B/node"
                                if w.get("cli_one_core_pss") else ""),
                     ratio(w.get("cli_one_core_ratio"))])
    net = res.get("net", {})
    if "gradcli_s" in net:
        rows.append([f"net over {R.fmt_size(net['rows'])} rows", t(net["gradcli_s"]),
                     f"numpy {t(net['numpy_s'])}", ratio(net["numpy_ratio"])])
        if net.get("torch_s"):
            rows.append(["", "", f"torch {t(net['torch_s'])}", ratio(net["torch_ratio"])])
        if net.get("one_core_s"):
            rows.append(["  the same, GRADCLI_THREADS=1", t(net["one_core_s"]),
                         f"numpy {t(net['numpy_s'])}", ratio(net["one_core_ratio"])])
    nc = res.get("net_command", {})
    if "gradcli_s" in nc:
        rows.append([f"  the same, {nc['environment']} (child process)", t(nc["gradcli_s"]),
                     f"numpy {t(nc['numpy_s'])}", ratio(nc["numpy_ratio"])])
    for key, rec in res.items():
        if isinstance(rec, dict) and "error" in rec:
            rows.append([key, "error: " + rec["error"]])
    R.print_table("SPEED (issue 17): what a user waits for, against peers in the same run",
                  ["what", "gradcli", "peer", "÷ peer"], rows,
                  ["cold: medians of interleaved whole processes; in-process: best of "
                   "interleaved repeats.",
                   "descend per step: the whole generator with the command's default --every; "
                   "torch: an eager loop, float64 0-d tensors."], align="lrlr")


def targets(results: dict, add) -> None:
    """Issue 17's six targets, each a row of the summary (met, missed, or not measured)."""
    res = results.get("speed")
    if res is None:
        return
    cold = res.get("cold", {}).get("vs_import_numpy", {})
    for c in ("eval", "check", "diff"):
        name = f"gradcli {c} neuron --json"
        add(f"17.1 cold `{name}` ÷ `python -c \"import numpy\"`", cold.get(name),
            LIMITS["cold"], "medians of interleaved runs" if name in cold else "failed")
    ev = res.get("evaluate", {})
    add("17.2 evaluate() of the neuron ÷ micrograd", ev.get("ratio"), LIMITS["evaluate"],
        "best of interleaved batches" if "ratio" in ev else ev.get("error", "micrograd missing"))
    descent = res.get("descent") if isinstance(res.get("descent"), list) else []
    for d in descent:
        add(f"17.3 descend {d['formula']}, per step ÷ torch eager loop", d.get("ratio"),
            LIMITS["descent"], f"{d['steps']} steps" if "ratio" in d else "torch missing")
    dc = res.get("descent_cli", {})
    add("17.3 descend CLI --json ÷ without --json", dc.get("ratio"), LIMITS["descent_json"],
        f"{dc['steps']:,} steps of a quadratic" if "ratio" in dc else dc.get("error", "—"))
    add("17.3 descend JSON of 200 000 steps (default --every)", dc.get("json_bytes"),
        LIMITS["descent_bytes"], "bytes on stdout" if "json_bytes" in dc else "—", unit="B")
    w = res.get("wide", {})
    where = (f"{R_size(w)} nodes" + ("" if w.get("size") == 10**6 else
                                     " (quick: 10^5 stands in for 10^6)")) if w else "—"
    add("17.4 wide 10^6: in-process gradient ÷ torch one-shot", w.get("inproc_ratio"),
        LIMITS["wide_inproc"], where if "inproc_ratio" in w else w.get("error", "torch missing"))
    add("17.4 wide 10^6: whole CLI --json to a file ÷ torch one-shot", w.get("cli_ratio"),
        LIMITS["wide_cli"], where if "cli_ratio" in w else w.get("error", "torch missing"))
    tree = w.get("cli_tree_bytes_per_node")
    add("17.4 wide 10^6: the CLI's peak memory per node", tree or w.get("cli_bytes_per_node"),
        LIMITS["wide_bytes"], (f"{where}; its processes' summed PSS (max RSS of the main one: "
                               f"{w['cli_bytes_per_node']:.0f} B/node"
                               + (f"; GRADCLI_THREADS=1: {w['cli_one_core_bytes_per_node']:.0f}"
                                  " B/node" if w.get("cli_one_core_bytes_per_node") else "")
                               + ")" if tree else f"{where}; max RSS")
        if "cli_bytes_per_node" in w else "—", unit="B")
    worst = []
    for sec in ("wide", "deep"):
        for rec in results.get(sec, []):
            if "reverse_vs_forward" in rec:
                label = rec.get("family", "wide") + " " + f"{rec.get('size') or rec.get('depth'):,}"
                worst.append((rec["reverse_vs_forward"], label))
    if worst:
        r, label = max(worst)
        add("17.5 reverse ÷ forward sweep, worst wide or deep workload", r, 1.5,
            f"worst: {label} of {len(worst)}")
    net = res.get("net", {})
    types = ", ".join(net.get("gradient_types", [])) or "—"
    add("17.6 two-layer net ÷ numpy by hand", net.get("numpy_ratio"), LIMITS["net_numpy"],
        f"10^6×8 rows; Result.gradient gives {types}" if "numpy_ratio" in net
        else net.get("error", "—"))
    add("17.6 two-layer net ÷ torch", net.get("torch_ratio"), LIMITS["net_torch"],
        "same run" if "torch_ratio" in net else net.get("error", "torch missing"))


def R_size(w: dict) -> str:
    n = w.get("nodes")
    return f"{n:,}" if n else "?"
