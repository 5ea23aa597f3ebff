"""Bootstrap intervals over cases: the mean of one run, and the paired difference of two runs.

Cases are the unit of resampling: a case's samples share a prompt, so they are not independent
draws, and treating them as such would make intervals too narrow. Both functions are percentile
bootstraps with a seeded generator, so a summary or comparison is the same every time it is made.

    >>> iv = bootstrap_mean([0.0, 1.0, 1.0, 1.0], n_boot=1000, seed=0)
    >>> iv.mean, iv.n, 0.0 <= iv.low <= iv.mean <= iv.high <= 1.0
    (0.75, 4, True)
    >>> paired_delta([1.0, 1.0], [0.0, 0.0]).high
    -1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

LEVEL = 0.95
"""Coverage of every interval Tether's evals report."""


@dataclass(frozen=True)
class Interval:
    """A mean and its percentile-bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int
    """Cases (or case pairs) it was computed from."""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _percentile_interval(values: np.ndarray, *, n_boot: int, seed: int, level: float) -> Interval:
    n = len(values)
    mean = float(values.mean())
    if n == 1 or n_boot < 1:
        return Interval(mean, mean, mean, n)
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)  # (n_boot,)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    # Clamp: with all-equal values float noise could put an end a hair past the mean.
    return Interval(mean, min(float(low), mean), max(float(high), mean), n)


def bootstrap_mean(
    values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Mean of ``values`` (one per case) with a percentile-bootstrap interval."""
    if not values:
        raise ValueError("bootstrap_mean needs at least one value")
    return _percentile_interval(np.asarray(values, dtype=float), n_boot=n_boot, seed=seed, level=level)


def paired_delta(
    a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Mean of b − a over paired cases, with an interval from resampling the pairs together."""
    if len(a) != len(b):
        raise ValueError(f"paired_delta needs pairs, got {len(a)} and {len(b)} values")
    if not a:
        raise ValueError("paired_delta needs at least one pair")
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return _percentile_interval(diffs, n_boot=n_boot, seed=seed, level=level)
