"""rm_divergence: the RM score rising while an independent score does not keep up with it.

The condition at a step, each part over trailing windows of the history:

1. the RM score rises: its trend r over the last ``window`` (20) steps is ≥ rising_r (0.6;
   `tether.monitors.trends`);
2. the independent score (gold/utility, else eval/score) does not: its r is ≤ flat_r (0.2);
3. and the independent score gives evidence that it is not tracking the RM. Regressed on
   [1, RM score, step] over the last ``tracking_window`` (40) steps (`tether.monitors.trends.tracking`:
   y ≈ a + b·rm + c·step), either it does not move with the RM from step to step (b not significantly
   positive: t(b) < tracking_t = 2), and the trends of 1 and 2 are the evidence as before; or it does,
   and falls short of the level the RM predicts as the steps go on (t(c) ≤ −shortfall_t = −2).

The alert needs the condition on each of the last ``persist`` (3) steps.

Principle: a divergence needs evidence that gold falls short of the RM, not a weak gold trend. A step's
gold mean over 32 samples is much noisier against its trend than the RM's (run A: sd 0.068 around a
0.25 rise, against 0.27 around 1.5), so with a faithful RM gold's 20-step r is often ≤ 0.2 while the
RM's is ≥ 0.6: no evidence that gold rose, which is not evidence that it did not. The same batch of
prompts scores both, though (an easy prompt mix lifts both means), so under a faithful RM gold moves
with the RM from step to step (b > 0) and stays at the level the RM's rise predicts (c ≈ 0), while an
RM rising on something gold does not reward leaves gold ever further below that level (c < 0). Where
gold does not co-move with the RM, b is not significant and the regression cannot tell the two apart.
t = 2 is one-sided 2.6% at 37 degrees of freedom (3.1% at 17).

The run that motivated it (issue 16): `tether demo --seed 2` on one thread stopped its first RL run at
step 28 of 100 (RM +0.67 over 20 steps, r 0.71; gold +0.048, r 0.19) while the eval suites' gold
utility went from SFT's 0.438 to 0.536. Over those steps gold moved with the RM (window correlation
0.56, b 0.20 with t 3.6 over the 27-29 steps then available) and kept up with it (t(c) −1.1 to −1.25):
tracked, now quiet. The first recorded run A had stopped the same way at step 42 (docs/rl.md).

Why 40 steps for the regression and not the trend's 20: conditions 1 and 2 select windows whose gold
slope came out low by chance, and any statistic of those same steps inherits the selection (c is
gold's slope minus b times the RM's). Among the 20-step windows where a faithful RM with run A's noise
meets 1 and 2 with t(b) ≥ 2 (88% of them), a 20-step t(c) has median −1.8 and is ≤ −2 in 42% (for a
hack whose RM gains 0.03 a step with gold flat: −2.6 and 76%). Twice the window adds 20 steps that
the selection did not choose, and a hack's shortfall grows as it lasts (c's standard error falls as
the window length to the −3/2): a faithful RM's stops 1.27% → 0.90% of runs, and hacks are caught
as often (simulated, 3,000 and 500 runs).

Figures, from `tests/monitors/test_rm_divergence.py`'s simulations (± one standard error). A faithful
RM with run A's noise stopped 2.73% ± 0.16% of 200-step runs with the trend conditions alone and
1.10% ± 0.10% with the tracking test (10,000 runs); with a per-step noise correlation of 0.5 instead
of 0.71, 9.8% ± 0.3% and 4.4% ± 0.2%. Nearly all that is left comes in the first 40 steps (106 of
the 110), where the RM climbs fastest and short windows make both tests weak. Resampling each demo
run of issue 16 (its smooth trends, its residual spreads and correlation; 2,000 runs each): 1.5–13%
before, 0.9–7.6% after, with min_points 8.

Why ``min_points`` 20, a full trend window, and not 8: those early stops came from windows of 8–19
steps, and no alert before step 21 costs a hack that starts later nothing. With 20, a faithful RM
stops 0.29% ± 0.05% of runs (10,000 runs; 1.93% ± 0.14% at noise correlation 0.5), and the hacks
from step 60 below are caught exactly as with 8 (the same runs, the same delays): the rule only
drops alerts from steps with fewer than 20 points. Hacks from step 60 (2,000 runs each, RM +0.03 or
+0.05 a step, gold flat or −0.002 a step, noise correlation 0 to 0.71): caught in 98.9–100% of runs
before and 98.8–100% after, the median delay from 16–31 steps to 19–40.

The ``persist`` steps: consecutive windows share all but one step, so a real divergence holds for many
steps in a row while a noise excursion of one series crosses the thresholds for one; with run A's
noise and the trend conditions alone, a faithful RM raised this alert in 10–13% of simulated 200-step
runs with persist = 1 and 1–3% with 3, judged from step 20 on (2.7% from step 0, as above).

Limit: c ≈ 0 under a faithful RM assumes gold moves with the RM at the same rate from step to step as
across steps. In issue 16's 100-step demo runs the step-to-step rate was at most the rate across steps
(0.07–0.17 against 0.14–0.18 gold per RM unit), so c sat above 0 and the test leaned to quiet; demo
seed 2's 29 steps had 0.24 against 0.085, so c drifted negative: an RM that kept rising that much
faster than its own step-to-step link to gold would be stopped once the shortfall became significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.monitors.base import HackingAlert, Monitor, MonitorInput, register_monitor
from tether.monitors.style import independent_trend
from tether.monitors.trends import Tracking, Trend, tracking, trend

RM_KEY = "objective/rm_score"


@dataclass(frozen=True)
class Divergence:
    """What `DivergenceRule.holds` found at one step: the evidence of an alert."""

    rm: Trend
    key: str
    """The independent score used (gold/utility, else eval/score)."""
    independent: Trend
    tracked: Tracking | None
    """The independent score regressed on [1, RM score, step] over the tracking window; None when
    fewer than min_points steps have both scores or the RM score is a linear function of the step."""
    untracked: bool
    """True when the independent score does not demonstrably move with the RM from step to step
    (no fit, or the RM coefficient's t < tracking_t): then the trends alone are the evidence.
    False: it does, and it fell short of its RM-predicted level (step coefficient's t ≤ −shortfall_t)."""


@dataclass(frozen=True)
class DivergenceRule:
    """rm_divergence's condition at one step (see `rm_divergence` for the thresholds' reasons)."""

    window: int
    min_points: int
    min_independent: int
    rising_r: float
    flat_r: float
    tracking_t: float
    shortfall_t: float
    tracking_window: int

    def holds(self, inp: MonitorInput) -> Divergence | None:
        """The evidence when, over the last ``window`` steps of ``inp``, the RM score rises (r ≥ rising_r)
        while the independent score does not (r ≤ flat_r), and over the last ``tracking_window`` steps
        the independent score does not show that it tracks the RM."""
        steps, values = inp.series(RM_KEY, self.window)
        rm = trend(steps, values) if len(values) >= self.min_points else None
        found = independent_trend(inp, self.window, self.min_independent)
        if rm is None or found is None or rm.r < self.rising_r or found[1].r > self.flat_r:
            return None
        key, independent = found
        rm_at = dict(zip(*inp.series(RM_KEY, self.tracking_window), strict=True))
        both = [
            (s, rm_at[s], v)
            for s, v in zip(*inp.series(key, self.tracking_window), strict=True)
            if s in rm_at
        ]
        fit = None
        if len(both) >= self.min_points:
            fit = tracking([s for s, _, _ in both], [x for _, x, _ in both], [y for _, _, y in both])
        untracked = fit is None or fit.rm_t < self.tracking_t
        if fit is not None and not untracked and fit.step_t > -self.shortfall_t:
            return None  # the independent score moves with the RM and keeps up with its rise: tracked
        return Divergence(rm, key, independent, fit, untracked)


def divergence_alert(
    found: Divergence, step: int, rule: DivergenceRule, persist: int, falling_r: float
) -> HackingAlert:
    """The critical alert for a divergence that held on each of the last ``persist`` steps."""
    rm, key, independent, fit = found.rm, found.key, found.independent, found.tracked
    evidence: dict[str, float | int | str] = {
        "rm_trend_r": rm.r,
        "rm_change": rm.last - rm.first,
        "independent": key,
        "independent_trend_r": independent.r,
        "independent_change": independent.last - independent.first,
        "window_steps": rm.n,
        "rising_r": rule.rising_r,
        "flat_r": rule.flat_r,
        "persist": persist,
        "tracking_t": rule.tracking_t,
        "shortfall_t": rule.shortfall_t,
        "tracking_window": rule.tracking_window,
        "tracking": "untracked" if found.untracked else "shortfall",
    }
    if fit is None:
        tracked = f"; whether {key} tracks the RM step to step cannot be tested on this window"
    else:
        evidence |= {"rm_coef": fit.rm_coef, "rm_coef_t": fit.rm_t, "step_coef": fit.step_coef}
        evidence |= {"step_coef_t": fit.step_t, "window_corr": fit.corr, "tracking_points": fit.n}
        coef = f"RM coefficient {fit.rm_coef:.3g} (t={fit.rm_t:.1f})"
        tracked = (
            f"; {key} does not track the RM step to step ({coef} < {rule.tracking_t:g}; window "
            f"correlation {fit.corr:.2f})"
            if found.untracked
            else f"; {key} moves with the RM step to step ({coef}, window correlation {fit.corr:.2f}) "
            f"but falls short of the level the RM predicts by {-fit.step_coef:.3g} a step "
            f"(t={fit.step_t:.1f} ≤ −{rule.shortfall_t:g})"
        )
    falling = independent.r <= falling_r
    message = (
        f"RM score rose by {rm.last - rm.first:+.3g} over the last {rm.n} steps (r={rm.r:.2f}) while "
        f"{key} is {'falling' if falling else 'flat'} ({independent.last - independent.first:+.3g}, "
        f"r={independent.r:.2f}){tracked}, on each of the last {persist} steps: the policy is gaining "
        "reward without gaining quality"
    )
    if falling:
        message += "; the overoptimization signature of Gao et al. 2022: roll back to an earlier checkpoint"
    condition = "overoptimization" if falling else "divergence"
    # JSON has no infinity: an exact fit's t's and tracking_t = inf (the old rule) are left out.
    evidence = {k: v for k, v in evidence.items() if not isinstance(v, float) or math.isfinite(v)}
    return HackingAlert("rm_divergence", "critical", step, message, evidence, condition)


@register_monitor("rm_divergence")
def rm_divergence(
    window: int = 20,
    min_points: int = 20,
    min_independent: int = 4,
    rising_r: float = 0.6,
    flat_r: float = 0.2,
    falling_r: float = -0.5,
    persist: int = 3,
    tracking_t: float = 2.0,
    shortfall_t: float = 2.0,
    tracking_window: int = 40,
) -> Monitor:
    """RM score rising while the independent score does not keep up: the clearest reward-hacking
    signal. The module docstring has the rule, its reasons and its measured rates.

    ``tracking_t``: how significant the step-to-step link (b) must be before the independent score
    counts as tracking the RM; ``math.inf`` gives the rule before issue 16 (the trends alone).
    ``shortfall_t``: how significant its shortfall against the RM-predicted level (−c) must then be
    to raise the alert. ``tracking_window``: the steps of that regression; with fewer than
    ``min_points`` steps holding both scores, the trends alone decide."""
    rule = DivergenceRule(
        window, min_points, min_independent, rising_r, flat_r, tracking_t, shortfall_t, tracking_window
    )

    def check(inp: MonitorInput) -> list[HackingAlert]:
        found = rule.holds(inp)
        if found is None:
            return []
        for back in range(1, persist):
            earlier = MonitorInput(inp.history[: len(inp.history) - back], inp.baseline)
            if len(earlier.history) == 0 or rule.holds(earlier) is None:
                return []
        return [divergence_alert(found, inp.step, rule, persist, falling_r)]

    return check
