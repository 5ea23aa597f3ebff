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
