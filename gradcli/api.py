"""The Python API (contract §6): `evaluate(text, at, wrt)` -> Result, `check(...)` -> report.

This is the public face over the core, so it sits on top, beside the commands: the results it
returns are the core's plain data with their presentations attached (`to_json()`), and those
come from render/, which the core never imports.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from . import result as _core
from .ops import OPS
from .session import check_wrt, load, read_point

__all__ = ["evaluate", "check", "descend", "Result", "CheckReport", "Descent", "Explanation",
           "Node"]

Node = _core.Node


class Result(_core.Result):
    """What `evaluate` computes (see `gradcli.result.Result`), with its JSON document."""

    __slots__ = ()

    def to_json(self) -> str:
        """The contract's JSON document (strict: non-finite numbers are strings)."""
        from .render.jsonout import eval_json

        return eval_json(self)

    def __repr__(self) -> str:
        """Short: the value, the gradient and how many nodes (the nodes are in .nodes)."""
        from .render.names import output_names
        from .words import fmt

        outs = output_names(self.tape)
        if len(outs) == 1:
            grad = _items(self.gradient, 8)
        else:
            grad = "[" + ", ".join(_items(row, 4) for row in self.jacobian) + "]"
        value = self.value
        value = fmt(value if not isinstance(value, list) else [_np(v) for v in value], 6)
        return (f"<gradcli Result {', '.join(outs)} = {value}, gradient {grad}, "
                f"{len(self.tape)} nodes>")

    def _repr_html_(self) -> str:
        """In Jupyter: value and gradient, the circuit (with Graphviz), the coloured nodes."""
        from .render.html import result_fragment

        return result_fragment(self)

    def explain(self, digits: int = 6, max_steps: int = 200) -> "Explanation":
        """The chain rule written out (eval --explain): text, or LaTeX in Jupyter."""
        return Explanation(self, digits, max_steps)


class NumpyResult(Result):
    """A Result for inputs given as numpy arrays: tensor values and gradients are arrays."""

    __slots__ = ()

    @property
    def value(self):
        vals = [_array_out(self.values[o]) for o in self.outputs]
        return vals[0] if len(vals) == 1 else vals

    @property
    def jacobian(self) -> list[dict]:
        return [{name: _array_out(adj[self.tape.variables[name]]) for name in self.wrt}
                for adj in self.adjoints]


class Explanation:
    """`r.explain()`: the backward pass node by node; str() is text, Jupyter shows LaTeX."""

    def __init__(self, result, digits: int = 6, max_steps: int = 200):
        self.result, self.digits, self.max_steps = result, digits, max_steps

    def __str__(self) -> str:
        from .render.explain import plain_text

        return plain_text(self.result, self.digits, self.max_steps)

    def __repr__(self) -> str:
        return str(self)

    def _repr_latex_(self) -> str:
        from .render.explain import latex

        return latex(self.result, self.digits, self.max_steps)[0]


def _np(v):
    import numpy as np

    return np.asarray(v) if isinstance(v, list) else v


def _items(d: Mapping, most: int) -> str:
    from .words import fmt

    shown = [f"{k}: {fmt(_np(v), 6)}" for k, v in list(d.items())[:most]]
    if len(d) > most:
        shown.append(f"… {len(d) - most} more")
    return "{" + ", ".join(shown) + "}"


def _array_out(v):
    """A value for the API: numpy arrays stay arrays, scalars are floats. An array is a
    read-only view of the Result's own (as pandas' copy-on-write hands out its arrays): no copy
    to pay for (a copy of ten 10^6-row columns took 10 ms, as long as their sweep), and the
    Result cannot be changed through it; `.copy()` gives an array of your own."""
    import numpy as np

    if v is None or type(v).__name__ == "Fraction":
        return v
    if isinstance(v, np.ndarray) and v.ndim:
        view = v.view()
        view.flags.writeable = False
        return view
    return float(v)


def _define() -> None:
    """CheckReport and Descent, made on first use: their bases (check's report, descend) import
    numpy, which evaluating a scalar formula does not need."""
    global CheckReport, Descent
    if "Descent" in globals():
        return
    from . import descend as _descend
    from .check import report as _report

    class CheckReport(_report.CheckReport):
        """What `check` finds (see `gradcli.check.report.CheckReport`), with its JSON document."""

        __slots__ = ()

        def to_json(self) -> str:
            """The `check --json` document."""
            from .render.jsonout import check_json

            return check_json(self)

        def __repr__(self) -> str:
            verdict = "ok" if self.ok else "not ok"
            parts = [f"{v.name} {v.status}" for v in self.variables[:8]]
            if len(self.variables) > 8:
                parts.append(f"… {len(self.variables) - 8} more")
            wrong = sum(1 for g in self.grades if not g.ok)
            answers = f"; {wrong} of {len(self.grades)} answers wrong" if self.grades else ""
            return f"<gradcli CheckReport {verdict}: {', '.join(parts)}{answers}>"

        def _repr_html_(self) -> str:
            """In Jupyter: the verdicts, as in the HTML report."""
            from .render.html import check_fragment

            return check_fragment(self)


    class Descent(_descend.Trajectory):
        """What `descend` keeps of a descent (see `gradcli.descend.Trajectory`), for notebooks."""

        wrt: list
        optimizer: str
        lr: float
        text: str

        def __repr__(self) -> str:
            from .words import fmt

            first, final = self.steps[0] if self.steps else None, self.final
            if final is None:
                return f"<gradcli Descent {self.optimizer}: {self.message}>"
            at = ", ".join(f"{n} = {fmt(_np(_array_out(final.params[n])), 4)}"
                           for n in self.wrt[:6])
            return (f"<gradcli Descent {self.optimizer}, lr {self.lr:g}: loss "
                    f"{fmt(first.loss, 4)} -> {fmt(final.loss, 4)} at step {final.step}; {at}>")

        def _repr_html_(self) -> str:
            """In Jupyter: the picture (with matplotlib) and the first and last steps."""
            from .render.html import trajectory_fragment

            return self.svg(inline=True) + trajectory_fragment(self, self.wrt)

        def plot(self, path: str) -> None:
            """Draw the descent into `path` (.svg, .png or .pdf), as `descend --plot`."""
            from .render.plot import Run, draw_descent

            draw_descent([Run(self.optimizer, self.lr, self)], self.wrt, self.text, path,
                         self._grid())

        def svg(self, inline: bool = False) -> str:
            """The picture as SVG text ('' when matplotlib is missing and inline is True)."""
            from .errors import InputError
            from .render.plot import Run, descent_svg

            try:
                return descent_svg([Run(self.optimizer, self.lr, self)], self.wrt, self.text,
                                   self._grid())
            except InputError:
                if inline:
                    return ""
                raise

        def _grid(self):
            from . import surface
            from .errors import InputError
            from .render.plot import path_points, scalar_pair

            if not scalar_pair(self, self.wrt):
                return None
            box = surface.frame([path_points(self, self.wrt)])
            try:
                return surface.loss_grid(self._tape, self._point, self.wrt, box)
            except InputError:
                return None


def __getattr__(name: str):
    if name in ("CheckReport", "Descent"):
        _define()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _public(obj, cls):
    obj.__class__ = cls  # the same fields, one presentation more
    return obj


def evaluate(text: str, at: Mapping[str, object] | None = None,
             wrt: Iterable[str] | None = None, mode: str = "reverse",
             subgradient: str = "cs231n", exact: bool = False,
             seed: int | None = None) -> Result:
    """Parse `text`, run the forward pass at `at`, and backpropagate from every output.

    The point is the formula's own `# at:` lines with `at` over them (as on the command line);
    `seed` seeds their randn(...)/rand(...) values. mode "forward" or "both" also runs one
    forward-mode sweep per variable in `wrt` (tangents); `subgradient` picks the slope at kinks:
    "cs231n" (default), "half" or "zero"; `exact` keeps values and gradients as
    fractions.Fraction wherever every operation allows it.
    """
    _core.check_options(mode, subgradient)
    entry = _parsed(text)
    if entry is None:  # not cached: a long text, or not a str (load says what is wrong)
        session = load(text, at, seed=seed, max_nodes=0, wrt=wrt, exact=exact)
        tape, point, wrt, warnings = session.tape, session.point, session.wrt or None, \
            session.warnings
    else:
        tape, parse_warnings, plain, _ = entry
        wrt = None if wrt is None else list(wrt)
        point = _plain_point(at) if plain and not exact else None
        if point is None:  # session.load's steps after parsing
            warnings = list(parse_warnings)
            point = read_point(text, at, seed, warnings, exact)
            wrt = check_wrt(tape, wrt) or None
        else:
            warnings = list(parse_warnings)
    arrays = any(type(v).__module__ == "numpy" and getattr(v, "ndim", 0)
                 for v in (at or {}).values())
    if arrays and mode == "reverse" and subgradient == "cs231n" and not exact:
        fast = _columns_result(tape, point, wrt, warnings)
        if fast is not None:
            return fast
    return _public(_core.run(tape, point, wrt, warnings, mode=mode, subgradient=subgradient,
                             exact=exact, max_nodes=0, floats=not arrays),
                   NumpyResult if arrays else Result)


#: Columns at least this long (every variable a float64 vector of one length, an elementwise
#: formula) get their value and gradient from the compiled sweep of batch mode.
COLUMN_ROWS = 1 << 16

#: What a ColumnsResult makes only when something reads it: the engine's whole run.
_LATER = ("values", "partials", "active", "adjoints", "warnings", "kinks", "tangents")


class ColumnsResult(NumpyResult):
    """A Result for long columns: the value and the gradient come from batch mode's compiled
    sweep (arraysweep: the engine's arithmetic, bit for bit), chunk by chunk while the columns
    are in the cache; every node's value, partials and adjoint, and the warnings, come from the
    engine's own run, made the first time anything reads them (the table, to_json(), explain(),
    r.warnings, r.nodes). That run reads a copy of the columns taken during the sweep, so a
    caller changing them in place in between (`w -= lr * r.gradient["w"]`) changes nothing
    here; what it gives for the value and gradient is the same numbers
    (tests/test_api_columns.py compares every field with the plain run's)."""

    __slots__ = ("_fast", "_later")

    @property
    def value(self):
        vals = [_array_out(v) for v in self._fast[0]]
        return vals[0] if len(vals) == 1 else vals

    @property
    def jacobian(self) -> list[dict]:
        return [{name: _array_out(grads[name]) for name in self.wrt} for grads in self._fast[1]]

    def _run(self) -> None:
        """The engine's whole run, once: its fields become this Result's."""
        later = getattr(self, "_later", None)  # (unset while copy.copy fills the slots in)
        if later is None:
            return
        point, warnings = later
        full = _core.run(self.tape, point, self.wrt or None, warnings, max_nodes=0)
        for name in _LATER:
            _SLOTS[name].__set__(self, getattr(full, name))
        self._later = None


_SLOTS = {name: _core.Result.__dict__[name] for name in _LATER}


def _later_field(name: str) -> property:
    slot = _SLOTS[name]

    def get(self):
        self._run()
        return slot.__get__(self, type(self))

    def put(self, value) -> None:
        self._run()
        slot.__set__(self, value)

    return property(get, put, doc=f"The engine's {name} (made on first read).")


for _name in _LATER:
    setattr(ColumnsResult, _name, _later_field(_name))


def _columns_result(tape, point: dict, wrt, warnings: list) -> "ColumnsResult | None":
    """A ColumnsResult where batch mode can sweep the point's columns (batch.sweep_columns:
    every variable a float64 vector of one length, at least COLUMN_ROWS, an elementwise
    formula); None where the engine's run must answer."""
    from .batch import sweep_columns

    wrt_list = check_wrt(tape, wrt)
    swept = sweep_columns(tape, point, wrt_list, COLUMN_ROWS)
    if swept is None:
        return None
    outs, grads, kept = swept
    r = object.__new__(ColumnsResult)
    r.tape, r.at, r.wrt = tape, dict(point), wrt_list
    r.convention, r.mode, r.exact = "cs231n", "reverse", False
    r._fast, r._later = (outs, grads), ({**point, **kept}, list(warnings))
    return r


#: The parse cache (as the `re` module keeps compiled patterns): text -> (tape, its parse
#: warnings, whether it has no `# at:` lines, the ops it uses), for texts up to CACHE_CHARS
#: characters, the CACHE_TEXTS used last. A cached tape is shared by every Result made from
#: that text: nothing in gradcli changes a tape after parsing (tests/test_scalar_path.py checks
#: the public paths). An entry whose ops are no longer the table's (a test replacing a rule in
#: ops.OPS) is parsed again, as it would be without the cache.
_TEXTS: dict = {}
CACHE_TEXTS = 32
CACHE_CHARS = 10_000


def _parsed(text):
    if type(text) is not str or len(text) > CACHE_CHARS:
        return None
    entry = _TEXTS.pop(text, None)
    if entry is not None:
        for op in entry[3]:
            if OPS.get(op.name) is not op:
                entry = None
                break
    if entry is None:
        from .parse import parse
        from .points import defaults

        tape, warnings = parse(text)
        entry = (tape, tuple(warnings), "at:" not in text or not defaults(text),
                 tuple({id(op): op for op in tape.ops}.values()))
        if len(_TEXTS) >= CACHE_TEXTS:
            _TEXTS.pop(next(iter(_TEXTS)), None)
    _TEXTS[text] = entry  # the last used goes last
    return entry


def _plain_point(at) -> dict | None:
    """`at` as session.read_point would give it for a formula without `# at:` lines, where
    every value is a float (or an int that a float holds exactly) and every name a plain ASCII
    identifier; None for anything else. The values are Python floats (or numpy float64 as
    given): run converts them for numpy's sweeps."""
    if at is None:
        return {}
    if type(at) is not dict:
        return None
    point = {}
    for name, v in at.items():
        if type(name) is not str or not name.isascii() or not name.isidentifier():
            return None
        if type(v) is int and -_EXACT_INT <= v <= _EXACT_INT:
            v = float(v)
        elif type(v) is not float and (type(v).__name__ != "float64"
                                       or type(v).__module__ != "numpy"):
            return None
        point[name] = v
    return point


_EXACT_INT = 2**53


def descend(text: str, at: Mapping[str, object] | None = None,
            wrt: Iterable[str] | None = None, lr: float = 0.1, steps: int = 100,
            optimizer: str = "sgd", every: int = 1, seed: int | None = None,
            **options) -> "Descent":
    """Gradient descent on `text` from `at` (θ ← θ − lr·∇L), as `gradcli descend`: the kept
    steps, the final step and why it stopped. `options`: momentum, beta1, beta2, eps, tol."""
    from . import descend as _descend

    _define()
    session = load(text, at, seed=seed, max_nodes=0)
    point, names, _ = _descend.starting_point(session.tape, session.point, wrt)
    traj = _descend.Trajectory(every=every, warnings=list(session.warnings))
    for record in _descend.descend(session.tape, point, names, lr=lr, steps=steps,
                                   optimizer=optimizer, **options):
        traj.add(record)
    out = _public(traj, Descent)
    out.wrt, out.optimizer, out.lr, out.text = names, optimizer, lr, session.text
    out._tape, out._point = session.tape, point
    return out


def check(text: str, at: Mapping[str, object] | None = None, **options) -> "CheckReport":
    """Check `text`'s gradient at `at` against central differences and grade answers
    (`expect={"x": -4}`, ...): the options of `gradcli.check.check`."""
    from .check import check as _check

    _define()
    return _public(_check(text, at, **options), CheckReport)
