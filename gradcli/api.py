"""The Python API (contract §6): `evaluate(text, at, wrt)` -> Result, `check(...)` -> report.

This is the public face over the core, so it sits on top, beside the commands: the results it
returns are the core's plain data with their presentations attached (`to_json()`), and those
come from render/, which the core never imports.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from . import result as _core
from .check import report as _report
from .session import load

__all__ = ["evaluate", "check", "Result", "CheckReport", "Node"]

Node = _core.Node


class Result(_core.Result):
    """What `evaluate` computes (see `gradcli.result.Result`), with its JSON document."""

    __slots__ = ()

    def to_json(self) -> str:
        """The contract's JSON document (strict: non-finite numbers are strings)."""
        from .render.jsonout import eval_json

        return eval_json(self)


class CheckReport(_report.CheckReport):
    """What `check` finds (see `gradcli.check.report.CheckReport`), with its JSON document."""

    __slots__ = ()

    def to_json(self) -> str:
        """The `check --json` document."""
        from .render.jsonout import check_json

        return check_json(self)


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
    session = load(text, at, seed=seed, max_nodes=0, wrt=wrt, exact=exact)
    return _public(_core.run_session(session, mode=mode, subgradient=subgradient), Result)


def check(text: str, at: Mapping[str, object] | None = None, **options) -> CheckReport:
    """Check `text`'s gradient at `at` against central differences and grade answers
    (`expect={"x": -4}`, ...): the options of `gradcli.check.check`."""
    from .check import check as _check

    return _public(_check(text, at, **options), CheckReport)
