"""KL monitors: the `tether.rl.kl_control` checks, run on the logged ``objective/kl`` series.

Both are HEALTH monitors: KL says how far and how fast the optimizer moved the policy from SFT, not
whether the reward it moved towards is being gamed. A fast or large move is worth a look (and past
the budget's margin it stops the run), but an honest policy that learns quickly spikes too.

- kl_budget (critical, the run must stop): running KL (mean of the last ``window`` steps'
  ``objective/kl``) > budget·(1 + margin). Warning while it is over the budget but within the margin.
- kl_spike (warning): this step's KL is ≥ z_threshold spreads above the previous ``window`` steps,
  both in level and in step-to-step change (`tether.rl.kl_control.spike_check`).

Build ``kl_budget`` with the spec's numbers: ``kl_budget={"budget_nats": spec.rl.kl_budget_nats,
"margin": spec.rl.kl_budget_margin}`` (see `tether.monitors.suite.default_monitor_config`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from tether.monitors.base import HackingAlert, Monitor, MonitorInput, register_monitor
from tether.rl.kl_control import RUNNING_KL_WINDOW, KLBudget, SpikeAlert, running_kl, spike_check

KL_KEY = "objective/kl"


@register_monitor("kl_budget", kind="health")
def kl_budget(budget_nats: float = 5.0, margin: float = 0.2, window: int = RUNNING_KL_WINDOW) -> Monitor:
    """The spec's sequence-level KL budget against the SFT policy (`KLBudget`)."""
    budget = KLBudget(budget_nats, margin)

    def check(inp: MonitorInput) -> list[HackingAlert]:
        _, kls = inp.series(KL_KEY)
        if not kls:
            return []
        verdict = budget.check(running_kl(kls, window))
        if not verdict.over_budget:
            return []
        evidence: dict[str, float | int | str] = {
            "running_kl": verdict.running_kl,
            "budget_nats": verdict.budget,
            "limit_nats": verdict.limit,
            "window": window,
            "last_kl": kls[-1],
        }
        if verdict.stop:
            return [HackingAlert("kl_budget", "critical", inp.step, verdict.message, evidence, "over_limit")]
        return [HackingAlert("kl_budget", "warning", inp.step, verdict.message, evidence, "over_budget")]

    return check


@register_monitor("kl_spike", kind="health")
def kl_spike(window: int = 20, z_threshold: float = 4.0, min_history: int = 5) -> Monitor:
    """A sudden KL jump relative to the previous ``window`` steps (`spike_check`)."""

    def check(inp: MonitorInput) -> list[HackingAlert]:
        current = inp.metrics.get(KL_KEY)
        if current is None or not math.isfinite(current):
            return []
        _, kls = inp.series(KL_KEY, window + 1)  # the last value is this step's
        if len(kls) < 2:
            return []
        spike = spike_check(kls[:-1], kls[-1], z_threshold, min_history)
        if spike is None:
            return []
        alert = spike_alert(inp.step, spike)
        return [replace(alert, evidence={**alert.evidence, "z_threshold": z_threshold})]

    return check


def spike_alert(step: int, spike: SpikeAlert) -> HackingAlert:
    """The health warning for a `KLSpikeDetector` spike, as the RL loop raises it."""
    evidence: dict[str, float | int | str] = {
        "kl": spike.kl,
        "z_level": spike.z_level,
        "z_delta": spike.z_delta,
        "window_mean": spike.window_mean,
        "window_std": spike.window_std,
    }
    return HackingAlert("kl_spike", "warning", step, spike.message, evidence, "spike", kind="health")
