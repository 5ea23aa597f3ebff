"""Simulated RL runs for rm_divergence: per-step RM and gold means with a recorded run's noise.

Run A's figures (docs/rl.md): per step, gold's mean over 32 samples has sd 0.068 around a 0.25 rise
and the RM's 0.27 around a 1.5 rise, and the two noises correlate 0.71 (the same batch of prompts
scores both: an easy prompt mix lifts both means). The demo runs of issue 16 had correlations of
0.38–0.64 between the two noises (residuals from each series' smooth trend)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from tether.monitors.base import Monitor, MonitorInput, StepRecord

RM_SD, GOLD_SD, RUN_A_CORR = 0.27, 0.068, 0.71


def _noise(rng: random.Random, corr: float) -> tuple[float, float]:
    """(RM noise, gold noise) of one step, in sd units, correlated ``corr`` through the prompt mix."""
    shared, own = rng.gauss(0, 1), rng.gauss(0, 1)
    return shared, corr * shared + math.sqrt(1 - corr**2) * own


def faithful_run(seed: int, corr: float = RUN_A_CORR, steps: int = 200) -> list[StepRecord]:
    """Run A's shape with a faithful RM: gold is exactly a linear function of what the RM measures
    (progress 1 − e^(−step/40), RM 1.5·progress, gold 0.33 + 0.25·progress) plus per-step noise."""
    rng = random.Random(seed)
    records = []
    for step in range(steps):
        progress = 1 - math.exp(-step / 40)
        rm_noise, gold_noise = _noise(rng, corr)
        rm = 1.5 * progress + RM_SD * rm_noise
        gold = 0.33 + 0.25 * progress + GOLD_SD * gold_noise
        records.append(StepRecord(step, {"objective/rm_score": rm, "gold/utility": gold}))
    return records


def hacked_run(
    seed: int, rm_slope: float, gold_slope: float, corr: float, onset: int = 60, steps: int = 200
) -> list[StepRecord]:
    """Faithful until ``onset``; from there the policy's progress on what gold rewards stops and the
    RM climbs ``rm_slope`` a step on a style term gold does not reward, while gold moves
    ``gold_slope`` a step (0: flat; negative: the style costs quality). The per-step noise keeps its
    correlation: the prompt mix still moves both means."""
    rng = random.Random(seed)
    records = []
    for step in range(steps):
        progress = 1 - math.exp(-min(step, onset) / 40)
        since = max(step - onset, 0)
        rm_noise, gold_noise = _noise(rng, corr)
        rm = 1.5 * progress + rm_slope * since + RM_SD * rm_noise
        gold = 0.33 + 0.25 * progress + gold_slope * since + GOLD_SD * gold_noise
        records.append(StepRecord(step, {"objective/rm_score": rm, "gold/utility": gold}))
    return records


def holds_by_step(records: Sequence[StepRecord], one_step: Monitor, history: int = 40) -> list[bool]:
    """Whether a persist = 1 monitor fires at each step, on the last ``history`` + 1 records up to it
    (rm_divergence reads at most its tracking window, 40 by default). A persist = k monitor fires
    where k of these in a row do."""
    return [
        bool(one_step(MonitorInput(records[max(0, t - history) : t + 1], {}))) for t in range(len(records))
    ]


def first_stop(holds: Sequence[bool], persist: int, start: int = 0) -> int | None:
    """The first step ≥ ``start`` ending ``persist`` consecutive steps that hold; None if none does."""
    run = 0
    for t, held in enumerate(holds):
        run = run + 1 if held else 0
        if t >= start and run >= persist:
            return t
    return None
