"""The numpy-free half of the gradient check: the step sizes, the central-difference estimate
with its kink and jump tests, and the relative error. numeric.py runs them over numpy's sweeps
(any formula), floats.py over compiled float sweeps (a scalar formula, without numpy): the same
arithmetic either way, on float64 numbers."""

from __future__ import annotations

import math
import sys

from .report import EPS

STEP = EPS ** (1.0 / 3.0)  # ≈ 6.1e-6: balances truncation (h²) against rounding (ε/h)
NOISE = 32.0  # rounding in f, in units of ε·|f| (|f| summed over a tensor output's elements)
CONVERGE = 1e-4  # central differences at h and h/4 agree this well where f is smooth
JUMP = 1e-3  # one-sided slopes differing by this (relative), at h and h/4 alike: a kink
SHRINK = 12  # how many times the step may shrink by 4 (to ~h/1.7e7) before giving up
TINY = sys.float_info.min  # the smallest normal float64 (numpy's finfo(float64).tiny)


def difference(f_at, idx, xi: float, k: int, f0, scale0) -> tuple[float, bool, float, str]:
    """The numeric derivative of output k along one element: (estimate, smooth?, noise, why).

    Central differences at h and h/4 (h = ε^(1/3)·max(1, |x|)). Where they agree, the function is
    smooth at this scale and their Richardson combination (16·c(h/4) - c(h))/15 is the estimate.
    Where the one-sided slopes differ by the same amount at h and at h/4, the point sits on a kink.
    Otherwise (a kink or a domain edge just inside the step, or strong curvature) the step shrinks
    by 4, up to 12 times; a jump never settles.
    """
    h = STEP * max(1.0, abs(xi))
    h = (xi + h) - xi  # a step exactly representable next to xi
    if not math.isfinite(f0[k]):
        return float("nan"), False, 0.0, ""
    estimate, why, finite_seen = float("nan"), "", False
    noise = 0.0
    for _ in range(SHRINK):
        fp, sp = f_at(idx, xi + h)
        fm, sm = f_at(idx, xi - h)
        fp4, sp4 = f_at(idx, xi + h / 4)
        fm4, sm4 = f_at(idx, xi - h / 4)
        if not all(math.isfinite(v[k]) for v in (fp, fm, fp4, fm4)):
            h /= 4  # a domain edge inside the step
            continue
        finite_seen = True
        delta = NOISE * EPS * max(scale0[k], sp[k], sm[k], sp4[k], sm4[k])
        noise = delta / h
        c1 = (fp[k] - fm[k]) / (2 * h)
        c2 = (fp4[k] - fm4[k]) / (h / 2)
        jump1 = (fp[k] - f0[k]) / h - (f0[k] - fm[k]) / h
        dp2, dm2 = (fp4[k] - f0[k]) / (h / 4), (f0[k] - fm4[k]) / (h / 4)
        jump2 = dp2 - dm2
        if (abs(jump2) > JUMP * max(abs(dp2), abs(dm2)) + 32 * noise
                and abs(jump2) > 0.5 * abs(jump1)):
            return c1, False, 4 * noise, "kink"
        if abs(c1 - c2) <= CONVERGE * max(abs(c1), abs(c2)) + 8 * noise:
            # (16·c2 - c1)/15 written so that 16·c2 cannot overflow (exp(x) at x=709)
            return c2 + (c2 - c1) / 15, True, 8 * noise, ""
        estimate = c1
        why = "jump" if abs(c2) > 2 * abs(c1) else "kink"
        h /= 4
    if not finite_seen:
        return float("nan"), False, 0.0, ""
    return estimate, False, 4 * noise, why


def rel_error(a: float, n: float) -> float:
    """|a - n| / max(|a|, |n|), 0 when both are 0."""
    if not (math.isfinite(a) and math.isfinite(n)):
        return 0.0 if a == n else float("nan")
    return float(abs(a - n) / max(abs(a), abs(n), TINY))
