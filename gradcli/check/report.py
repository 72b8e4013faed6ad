"""What `gradcli check` finds, as plain data: tolerances, per-variable checks, kinks, suspect
rules, hand answers, their grades and slips, and the whole report. No wording: the sentences
people read are built from these under `gradcli/render/` (checkwords.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction

from ..tape import Tape

EPS = sys.float_info.epsilon  # numpy's finfo(float64).eps
#: Elements of one tensor variable checked by default; a bigger one is checked on a random sample
#: of this many (each element costs several evaluations), and a warning says so.
MAX_ELEMENTS = 200
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-10


@dataclass(frozen=True, slots=True)
class Tolerance:
    """When two numbers agree: within `rtol` (relative) plus `atol`, or, with `places`, when the
    answer is the correct value rounded to that many decimals."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    places: int | None = None
    rounding: bool = False  # accept an answer that is right to the decimals written (0.39)
    exact: bool = False  # --exact: rational answers and values compare as fractions

    def close(self, answer, correct) -> bool:
        """Whether a hand answer matches the correct value (elementwise for tensors)."""
        if self.exact and type(answer) is Fraction and type(correct) is Fraction:
            return answer == correct
        import numpy as np

        a = np.asarray(answer, dtype=np.float64)
        c = np.asarray(correct, dtype=np.float64)
        if a.shape != c.shape:
            return False
        with np.errstate(all="ignore"):
            diff = np.abs(a - c)
            if self.places is not None:
                limit = 0.5 * 10.0 ** -self.places * (1 + 1e-9) + 4 * EPS * np.abs(c)
            else:
                limit = self.rtol * np.maximum(np.abs(a), np.abs(c)) + self.atol
            finite = np.isfinite(a) & np.isfinite(c)
            same = (a == c) | (np.isnan(a) & np.isnan(c))
            return bool(np.all(np.where(finite, diff <= limit, same)))


@dataclass(slots=True)
class VariableCheck:
    """One variable: its analytic gradient, the central difference, and whether they agree."""

    name: str
    node: int
    analytic: object  # a number or array; a list of them (one per output) for several outputs
    numeric: object
    rel_error: float  # the largest over elements (and outputs)
    status: str  # "ok", "mismatch", "kink" or "undefined"
    count: int = 1  # how many elements (times outputs) have that status
    size: int = 1  # how many elements (times outputs) were checked
    jump: bool = False  # the difference never settled because the function jumps (not a kink)
    kinks: list[int] = field(default_factory=list)  # nodes at a kink that depend on it
    expected: "Grade | None" = None  # a graded answer for this variable's gradient

    @property
    def ok(self) -> bool:
        """Whether the check passes for this variable (at a kink it does: no derivative exists)."""
        return self.status in ("ok", "kink")


@dataclass(slots=True)
class Kink:
    """A node evaluated exactly where its op has no derivative (relu(0), a max tie, ...)."""

    node: int
    op: str
    convention: str = "cs231n"  # which subgradient the analytic value follows


@dataclass(slots=True)
class Suspect:
    """A node whose local derivative disagrees with a central difference of its own op: the rule
    in the rule table (gradcli/ops.py) looks wrong."""

    node: int
    slot: int  # which input
    analytic: object  # ∂/∂input (partials), or ⟨vjp(g), t⟩ (structural ops)
    numeric: object


@dataclass(slots=True)
class Answer:
    """One hand answer: the value or the gradient of one node."""

    node: int
    kind: str  # "value" or "grad"
    answer: object  # np.float64 or an array
    text: str  # as written
    source: str  # where it came from: --expect, --expect-node, FILE:LINE
    output: int | None = None  # which output's gradient (`f2.x`); None: the only one, or all
    formula: object = None  # a formula answer (`x=2*x*sin(x)`): its parsed Tape


@dataclass(slots=True)
class FormulaCheck:
    """A formula answer compared with the true partial at the point and at points around it."""

    points_checked: int  # points where both were finite and compared
    skipped: int  # points drawn where either was not finite (a pole), left out
    differs_at: dict | None = None  # {"at": point, "yours": v, "correct": v}: the first miss
    seed: int | None = None
    exact: bool = False  # compared as fractions


@dataclass(slots=True)
class PathSearch:
    """How far the search for a slip several steps back went."""

    sites: int  # (node, input) pairs on the paths from the output that were tried
    capped: bool = False  # stopped at the cap: a slip further back was not looked for
    limit: int = 0


@dataclass(slots=True)
class Slip:
    """The likely mistake behind a wrong answer, as data: `render.checkwords.slip_message` words it.

    kind: sign_flipped, fanout_not_summed, missing_upstream, missing_local, wrong_gate,
    wrong_rule, other_input, swapped, propagated, rounded, wrong_shape, transposed. `rule` says
    which variant (for wrong_gate, the rule used: `add_on_mul`, `mul_on_add`, `add_on_sub`,
    `mul_on_div`, `route`, or the op whose value was computed instead; for sign_flipped:
    `value`, `grad`, `contribution` or `local` (a node further back); `path` for a slip found by
    the search several steps back; for wrong_rule the replacement's key in paths.RULES).
    `numbers` holds the values the sentence quotes."""

    kind: str
    node: int  # the graded node
    via: int | None = None  # the consumer (for gradients) or input node the slip concerns
    rule: str = ""
    other: int | None = None  # another node the sentence names (the other input, max's winner)
    numbers: dict = field(default_factory=dict)


@dataclass(slots=True)
class Grade:
    """A hand answer marked right or wrong, with the correct value and the likely slip."""

    answer: Answer
    correct: object
    ok: bool
    slip: Slip | None = None
    rounded: int | None = None  # right to this many decimals (as written), not to rtol
    formula: FormulaCheck | None = None  # for a formula answer
    search: PathSearch | None = None  # for a wrong gradient: the path search's extent

    @property
    def node(self) -> int:
        return self.answer.node

    @property
    def kind(self) -> str:
        return self.answer.kind


@dataclass(slots=True)
class CheckReport:
    """Everything `gradcli check` found."""

    result: object  # the result.Result at the point
    variables: list[VariableCheck]
    grades: list[Grade]
    kinks: list[Kink]
    tolerance: Tolerance
    warnings: list[str] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)  # looked for when a variable fails

    @property
    def tape(self) -> Tape:
        return self.result.tape

    @property
    def ok(self) -> bool:
        """True when every variable agrees (or sits at a kink) and every answer is right."""
        return all(v.ok for v in self.variables) and all(g.ok for g in self.grades)

    @property
    def first_wrong(self) -> Grade | None:
        """The first wrong answer: a wrong value in forward order (values are computed first);
        else the wrong gradient closest to the output (backward order)."""
        values = [g for g in self.grades if not g.ok and g.kind == "value"]
        if values:
            return min(values, key=lambda g: g.node)
        grads = [g for g in self.grades if not g.ok and g.kind == "grad"]
        if grads:
            return max(grads, key=lambda g: g.node)
        return None

