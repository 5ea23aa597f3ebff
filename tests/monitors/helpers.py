"""Hand-made metric histories for monitor tests."""

from __future__ import annotations

import random
from collections.abc import Sequence

from tether.monitors.base import Generation, MonitorInput, StepRecord


def window(
    series: dict[str, Sequence[float]],
    baseline: dict[str, float] | None = None,
    generations: Sequence[Generation] = (),
) -> MonitorInput:
    """A MonitorInput whose step i has ``series[key][i]`` for each key (steps 1..n)."""
    n = max(len(v) for v in series.values())
    history = [
        StepRecord(step + 1, {k: float(v[step]) for k, v in series.items() if step < len(v)})
        for step in range(n)
    ]
    return MonitorInput(history, baseline or {}, list(generations))


def noisy(level: float, n: int, sd: float, seed: int, slope: float = 0.0) -> list[float]:
    """A flat (or linearly moving) series with Gaussian noise."""
    rng = random.Random(seed)
    return [level + slope * i + rng.gauss(0, sd) for i in range(n)]
