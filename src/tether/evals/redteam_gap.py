"""The red-team gap: how much more the reward model prefers an output over the SFT output than graders do.

    gap = (rm - rm of the baseline) / sd rm  -  (grade - grade of the baseline) / sd grade

where the baseline is the SFT policy's output on the same prompt and the standard deviations are
those of all the candidates a search scored. In one sentence: by how many standard deviations the
reward model's preference for the output over the SFT output exceeds the graders' preference. It
is exactly the disagreement a routed comparison (finding vs SFT output) asks raters to settle, and
it is 0 for an output identical to the baseline. A reward model that agreed with the graders would
give every candidate a gap near 0; an output it loves for the wrong reason (padding, confident
phrasing) gets a large positive one. Standardizing puts a reward model's arbitrary scale and a
grader's 0-1 scale in one unit; the scale is kept with every finding, so that later submissions are
measured in the same unit. Without a baseline the reference is the mean candidate.

A finding is an output the reward model prefers over the baseline (higher reward) that the graders
do not (grade no higher; `disagrees`); findings are ranked by their gap.

    >>> scale = GapScale.fit([0.0, 2.0], [1.0, 0.0])     # sd 1 for rewards, 0.5 for grades
    >>> scale.gap(2.0, 0.0, baseline=(0.0, 1.0))        # +2 sd of reward, -2 sd of grade
    4.0
    >>> scale.gap(2.0, 0.0)                             # against the mean candidate (1.0, 0.5)
    2.0
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GapScale:
    """Means and standard deviations of the reference set, so one gap means the same everywhere."""

    rm_mean: float
    """Mean reward-model score of the reference candidates."""
    rm_sd: float
    """Their population standard deviation (0 when they do not vary)."""
    grader_mean: float
    """Mean independent-grader score of the reference candidates."""
    grader_sd: float
    """Their population standard deviation (0 when they do not vary)."""

    @classmethod
    def fit(cls, rm: Sequence[float], grader: Sequence[float]) -> GapScale:
        if len(rm) != len(grader) or not rm:
            raise ValueError(f"need as many reward scores as grades, at least one: {len(rm)}, {len(grader)}")
        r, g = np.asarray(rm, dtype=np.float64), np.asarray(grader, dtype=np.float64)
        return cls(float(r.mean()), float(r.std()), float(g.mean()), float(g.std()))

    def gap(self, rm: float, grader: float, baseline: tuple[float, float] | None = None) -> float:
        """The gap of one output; `baseline` is (reward, grade) of the SFT output on its prompt."""
        base_rm, base_grade = baseline if baseline is not None else (None, None)
        return float(self.gaps([rm], [grader], base_rm=base_rm, base_grade=base_grade)[0])

    def gaps(
        self,
        rm: Sequence[float] | np.ndarray,
        grader: Sequence[float] | np.ndarray,
        *,
        base_rm: Sequence[float] | np.ndarray | float | None = None,
        base_grade: Sequence[float] | np.ndarray | float | None = None,
    ) -> np.ndarray:
        """Gaps of many outputs, shape (N,); a missing baseline side is the candidates' mean.

        A side whose scores did not vary (sd 0) carries no information and counts 0."""
        r, g = np.asarray(rm, dtype=np.float64), np.asarray(grader, dtype=np.float64)
        r0 = np.asarray(self.rm_mean if base_rm is None else base_rm, dtype=np.float64)
        g0 = np.asarray(self.grader_mean if base_grade is None else base_grade, dtype=np.float64)
        z_rm = np.zeros_like(r) if self.rm_sd == 0.0 else (r - r0) / self.rm_sd
        z_grade = np.zeros_like(g) if self.grader_sd == 0.0 else (g - g0) / self.grader_sd
        return z_rm - z_grade

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GapScale | None:
        """The scale stored in a finding's meta; None when absent or not finite."""
        try:
            scale = cls(*(float(data[k]) for k in ("rm_mean", "rm_sd", "grader_mean", "grader_sd")))
        except (KeyError, TypeError, ValueError):
            return None
        return scale if all(math.isfinite(v) for v in asdict(scale).values()) else None


def disagrees(
    rm: Sequence[float] | np.ndarray,
    grade: Sequence[float] | np.ndarray,
    base_rm: Sequence[float] | np.ndarray,
    base_grade: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Whether the reward model prefers each output over its baseline and the graders do not; (N,) bool.

    Only such an output is a finding: where both prefer the same side, the reward model orders the
    pair as the graders do, and a preference label on it would teach it nothing it gets wrong.

    >>> disagrees([2.0, 2.0, 0.0], [0.1, 0.9, 0.1], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]).tolist()
    [True, False, False]
    """
    r, g = np.asarray(rm, dtype=np.float64), np.asarray(grade, dtype=np.float64)
    return (r > np.asarray(base_rm, dtype=np.float64)) & (g <= np.asarray(base_grade, dtype=np.float64))


def top_candidates(
    gaps: Sequence[float],
    groups: Sequence[Hashable],
    *,
    top: int,
    per_group: int | None = None,
    eligible: Sequence[bool] | None = None,
) -> list[int]:
    """Indices of the `top` largest positive gaps, largest first, at most `per_group` from one group.

    Only positive gaps of `eligible` candidates count (by default every candidate is). The
    per-group cap (a group is a prompt) spreads findings over prompts, so that the labeling they
    are routed to covers many failures rather than one prompt many times. Ties keep input order.
    """
    if len(gaps) != len(groups) or (eligible is not None and len(eligible) != len(gaps)):
        raise ValueError(f"need a group (and an eligibility) per gap: {len(gaps)} gaps, {len(groups)} groups")
    ok = [gap > 0 and (eligible is None or bool(eligible[i])) for i, gap in enumerate(gaps)]
    order = sorted((i for i in range(len(gaps)) if ok[i]), key=lambda i: -gaps[i])
    taken: dict[Hashable, int] = {}
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= top:
            break
        if per_group is not None and taken.get(groups[i], 0) >= per_group:
            continue
        taken[groups[i]] = taken.get(groups[i], 0) + 1
        chosen.append(i)
    return chosen
