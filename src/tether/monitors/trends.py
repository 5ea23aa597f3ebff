"""Small statistics the monitors share: trends over a window and smoothed levels.

The trend test is the Pearson correlation r between step index and value. It is the slope of the
z-scored series measured in standard deviations of the step index (slope(z) = r/σ_t), so it
compares an RM score and a gold score on one scale whatever their units, and its thresholds do
not depend on the window length. Under pure noise, |r| ≥ 0.6 over 20 points has p ≈ 0.005.

>>> round(trend([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0]).r, 3)
1.0
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Trend:
    n: int
    slope: float
    """Least-squares change per step, in the metric's own units."""
    r: float
    """Correlation of value with step: +1 steadily rising, 0 flat or noise, −1 steadily falling."""
    first: float
    """Fitted value at the window's first step."""
    last: float
    """Fitted value at the window's last step."""


def trend(steps: Sequence[int], values: Sequence[float]) -> Trend | None:
    """Least-squares trend of ``values`` over ``steps``; None with fewer than 3 points.

    A perfectly constant series has r = 0 (flat), not NaN."""
    n = len(values)
    if n < 3 or len(steps) != n:
        return None
    mean_t, mean_y = statistics.fmean(steps), statistics.fmean(values)
    dt = [t - mean_t for t in steps]
    dy = [y - mean_y for y in values]
    sxx = sum(d * d for d in dt)
    syy = sum(d * d for d in dy)
    if sxx == 0:
        return None
    sxy = sum(a * b for a, b in zip(dt, dy, strict=True))
    slope = sxy / sxx
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else 0.0
    first = mean_y + slope * (steps[0] - mean_t)
    last = mean_y + slope * (steps[-1] - mean_t)
    return Trend(n=n, slope=slope, r=r, first=first, last=last)


def recent_mean(values: Sequence[float], k: int) -> float | None:
    """Mean of the last ``k`` values (a smoothed current level); None when there are none."""
    tail = values[-k:]
    return statistics.fmean(tail) if tail else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    mean = statistics.fmean(values)
    return mean, statistics.pstdev(values, mean)


@dataclass(frozen=True)
class Tracking:
    """Least squares of an independent score y on [1, RM score x, step t] over one window: y ≈ a + b·x + c·t.

    b is how much y moves with the RM from step to step, the step held fixed; c is y's trend beyond
    what the RM's own rise predicts at that rate. A faithful RM has c ≈ 0; an RM rising on
    something y does not reward leaves y short of its RM-predicted level, so c < 0."""

    n: int
    rm_coef: float
    """b: change in y per unit of RM score at a fixed step."""
    rm_t: float
    """b over its standard error (n − 3 degrees of freedom)."""
    step_coef: float
    """c: change in y per step at a fixed RM score."""
    step_t: float
    """c over its standard error."""
    corr: float
    """Pearson correlation of x and y over the window (0 when either is constant)."""


def _t(coef: float, stderr: float) -> float:
    # A zero standard error is an exact fit: any non-zero coefficient is certain.
    if stderr > 0:
        return coef / stderr
    return math.copysign(math.inf, coef) if coef else 0.0


def tracking(steps: Sequence[int], rm: Sequence[float], independent: Sequence[float]) -> Tracking | None:
    """`Tracking` of ``independent`` on [1, ``rm``, ``steps``]; None with fewer than 4 points (no
    degree of freedom left for the noise) or when the RM score is a linear function of the step
    (then no window can tell the RM's movement from the passing of steps).

    >>> fit = tracking([0, 1, 2, 3, 4], [0.0, 2.0, -1.0, 2.0, 2.0], [0.5, 0.8, -0.7, 1.0, 0.9])
    >>> round(fit.rm_coef, 6), round(fit.step_coef, 6)
    (0.5, -0.1)
    """
    n = len(steps)
    if n < 4 or len(rm) != n or len(independent) != n:
        return None
    mt, mx, my = statistics.fmean(steps), statistics.fmean(rm), statistics.fmean(independent)
    dt, dx, dy = [t - mt for t in steps], [x - mx for x in rm], [y - my for y in independent]
    s_tt, s_xx, s_yy = (sum(d * d for d in v) for v in (dt, dx, dy))
    s_xt = sum(a * b for a, b in zip(dx, dt, strict=True))
    s_xy = sum(a * b for a, b in zip(dx, dy, strict=True))
    s_ty = sum(a * b for a, b in zip(dt, dy, strict=True))
    det = s_xx * s_tt - s_xt * s_xt
    if s_tt == 0 or s_xx == 0 or det <= 1e-12 * s_xx * s_tt:  # relative: rounding leaves ~1e-16
        return None
    b = (s_tt * s_xy - s_xt * s_ty) / det
    c = (s_xx * s_ty - s_xt * s_xy) / det
    noise = max(s_yy - b * s_xy - c * s_ty, 0.0) / (n - 3)  # residual variance
    corr = s_xy / math.sqrt(s_xx * s_yy) if s_yy > 0 else 0.0
    return Tracking(
        n=n,
        rm_coef=b,
        rm_t=_t(b, math.sqrt(noise * s_tt / det)),
        step_coef=c,
        step_t=_t(c, math.sqrt(noise * s_xx / det)),
        corr=corr,
    )
