"""Per-stratum score sums of a step's generations, so a monitor can pool several steps.

One step holds about 32 responses, of which 8 or 9 answer hard or adversarial prompts: too few for
a spread or a mean to mean much (the ratio of two standard deviations from 8 and 23 samples falls
below 0.5 by chance in a few percent of steps, so a per-step test fires a few times in 200 steps of
a healthy run). `MonitorSuite` therefore stores each step's sums (count, sum, sum of squares of the
RM score and of the independent score, per stratum) with the step's metrics under ``strata/*``
keys, and a monitor adds them up over a window of steps. Sums pool exactly: the pooled mean and
standard deviation are those of all the window's responses taken together.

>>> sums = strata_sums([Generation("p", "r", "hard", 1.0), Generation("p", "r", "hard", 3.0)])
>>> sums["strata/hard/rm/n"], sums["strata/hard/rm/sum"], sums["strata/hard/rm/sumsq"]
(2.0, 4.0, 10.0)
>>> pooled([sums], ("hard",), "rm")
Pooled(n=2, mean=2.0, std=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tether.monitors.base import Generation

PREFIX = "strata/"
Field = Literal["rm", "independent"]
_ATTRIBUTE: dict[Field, str] = {"rm": "rm_score", "independent": "independent"}


def strata_sums(generations: Sequence[Generation]) -> dict[str, float]:
    """``strata/<stratum>/<rm|independent>/<n|sum|sumsq>`` over the generations that carry that score."""
    out: dict[str, float] = {}
    for gen in generations:
        for name, attribute in _ATTRIBUTE.items():
            value = getattr(gen, attribute)
            if value is None or not math.isfinite(value):
                continue
            key = f"{PREFIX}{gen.stratum}/{name}"
            out[f"{key}/n"] = out.get(f"{key}/n", 0.0) + 1.0
            out[f"{key}/sum"] = out.get(f"{key}/sum", 0.0) + float(value)
            out[f"{key}/sumsq"] = out.get(f"{key}/sumsq", 0.0) + float(value) ** 2
    return out


def add_sums(total: Mapping[str, float], more: Mapping[str, float]) -> dict[str, float]:
    """``total`` + ``more``, key by key, for the ``strata/*`` keys of ``more``."""
    out = dict(total)
    for key, value in more.items():
        if key.startswith(PREFIX):
            out[key] = out.get(key, 0.0) + value
    return out


@dataclass(frozen=True)
class Pooled:
    n: int
    mean: float
    std: float
    """Population standard deviation of every pooled response's score."""


def pooled(
    records: Iterable[Mapping[str, float]], strata: Sequence[str], field: Field, *, inside: bool = True
) -> Pooled | None:
    """The ``field`` scores of the responses in ``strata`` (or, ``inside=False``, in every other
    stratum) pooled over ``records`` (metrics or a baseline holding ``strata/*`` sums); None when
    there are none."""
    n = total = squares = 0.0
    for record in records:
        for key, value in record.items():
            parts = key.split("/")
            if len(parts) != 4 or parts[0] != PREFIX.rstrip("/") or parts[2] != field:
                continue
            if (parts[1] in strata) != inside:
                continue
            if parts[3] == "n":
                n += value
            elif parts[3] == "sum":
                total += value
            elif parts[3] == "sumsq":
                squares += value
    if n <= 0:
        return None
    mean = total / n
    # max(0, …): sums of squares of near-equal scores can come out a hair below mean² in floating point.
    return Pooled(int(n), mean, math.sqrt(max(0.0, squares / n - mean * mean)))
