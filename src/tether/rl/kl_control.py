"""KL control against the SFT policy: the penalty coefficient β, the spec's budget, and spikes.

All KL values here are SEQUENCE-level nats (per-token KL summed over a response, averaged over the
batch), the unit of `spec.rl.kl_budget_nats`. Pure Python, no torch: the monitors use it too.

- `AdaptiveKLController` is Ziegler et al. 2019 (openai/lm-human-preferences): a proportional
  controller that moves β by at most ±20% per horizon's worth of episodes.
- `KLBudget` is the hard stop: the run ends when running KL exceeds budget·(1 + margin).
- `KLSpikeDetector` flags a step whose KL and whose step-to-step change are both far outside
  the recent spread: the optimizer took a large step (a broken update, or a behaviour the policy
  just found, good or bad). Its alerts are HEALTH alerts (`tether.monitors.base`): a spike says the
  policy moved fast, not that the reward is being gamed; the hacking monitors judge that.

Every stateful piece has ``state_dict()``/``load_state_dict()`` with plain floats and lists, so a
resumed run continues with exactly the same β and detector history.

>>> ctl = AdaptiveKLController(init_beta=0.1, target=5.0, horizon=10_000)
>>> ctl.update(current_kl=10.0, n_steps=512)     # error clipped to +0.2
>>> round(ctl.value, 6)                          # 0.1 · (1 + 0.2 · 512/10000)
0.101024
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tether.spec.model import RLPolicy

PROPORTIONAL_ERROR_CLIP = 0.2
"""Ziegler et al.'s bound on the proportional error: β changes at most 20% per horizon."""


class KLController(Protocol):
    """The KL penalty coefficient β and how it responds to the measured KL."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adjust β after a batch whose mean sequence KL was ``current_kl`` over ``n_steps`` episodes."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class FixedKLController:
    """A constant β (Stiennon et al. 2020 used 0.01–0.05 for summarization)."""

    def __init__(self, beta: float) -> None:
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.value = beta

    def update(self, current_kl: float, n_steps: int) -> None:
        """β stays fixed; the KL is still checked against the budget elsewhere."""

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. 2019: e = clip(KL/target − 1, −0.2, 0.2); β ← β·(1 + e·n_steps/horizon).

    ``n_steps`` counts episodes (responses) in the batch, as in lm-human-preferences, so the
    horizon (10,000 there) is in episodes too. Their runs: target 6 nats, initial β 0.15."""

    def __init__(self, init_beta: float, target: float, horizon: int = 10_000) -> None:
        if init_beta <= 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"init_beta, target and horizon must be > 0, got {init_beta}, {target}, {horizon}"
            )
        self.value = init_beta
        self.target = target
        self.horizon = horizon

    @classmethod
    def from_spec(
        cls, policy: RLPolicy, init_beta: float = 0.15, horizon: int = 10_000
    ) -> AdaptiveKLController:
        """Target the spec's sequence-level budget (`rl.kl_budget_nats`, 5 nats by default)."""
        return cls(init_beta=init_beta, target=policy.kl_budget_nats, horizon=horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        if not math.isfinite(current_kl):
            raise ValueError(f"current_kl must be finite, got {current_kl}; check the KL estimator's inputs")
        error = current_kl / self.target - 1.0
        error = max(-PROPORTIONAL_ERROR_CLIP, min(PROPORTIONAL_ERROR_CLIP, error))
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])
        self.target = float(state["target"])
        self.horizon = int(state["horizon"])


# ---------------------------------------------------------------------------------------------
RUNNING_KL_WINDOW = 10
"""Steps in the running KL: enough that one noisy batch cannot stop a run, few enough (of the
spec's 200 steps per run) that a real drift stops it within a handful of steps."""


def running_kl(history: Sequence[float], window: int = RUNNING_KL_WINDOW) -> float:
    """Running KL := the mean of the last ``window`` per-step sequence KLs (fewer at the start).

    A trailing mean rather than an EMA: its value is explainable ("mean of steps 41–50") and it
    forgets old steps completely. NaN when there is no history yet."""
    recent = [x for x in history[-window:] if math.isfinite(x)]
    return statistics.fmean(recent) if recent else math.nan


@dataclass(frozen=True)
class BudgetVerdict:
    stop: bool
    """Running KL exceeds budget·(1 + margin): the run must end (exit 3)."""
    over_budget: bool
    """Running KL exceeds the budget itself, possibly still within the margin."""
    running_kl: float
    budget: float
    limit: float
    """budget·(1 + margin), the stopping threshold."""
    message: str


@dataclass(frozen=True)
class KLBudget:
    """The spec's sequence-level KL budget against the SFT policy and its stopping margin."""

    budget_nats: float = 5.0
    margin: float = 0.2

    @classmethod
    def from_spec(cls, policy: RLPolicy) -> KLBudget:
        return cls(budget_nats=policy.kl_budget_nats, margin=policy.kl_budget_margin)

    @property
    def limit(self) -> float:
        return self.budget_nats * (1.0 + self.margin)

    def check(self, running_kl: float) -> BudgetVerdict:
        """Verdict on a running KL (see `running_kl`). NaN (no history yet) never stops a run."""
        over = running_kl > self.budget_nats
        stop = running_kl > self.limit
        where = f"running KL {running_kl:.2f} nats"
        if stop:
            message = (
                f"{where} exceeds the budget {self.budget_nats:g} nats by more than the "
                f"{self.margin:.0%} margin (limit {self.limit:.2f}): stop the run; raise β or lower the "
                f"learning rate, or raise rl.kl_budget_nats in the spec deliberately"
            )
        elif over:
            message = (
                f"{where} is over the budget {self.budget_nats:g} nats, "
                f"within the margin (limit {self.limit:.2f})"
            )
        else:
            message = f"{where} is within the budget {self.budget_nats:g} nats"
        return BudgetVerdict(stop, over, running_kl, self.budget_nats, self.limit, message)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpikeAlert:
    kl: float
    z_level: float
    """(kl − mean of the window) / spread of the window."""
    z_delta: float
    """(this step's change − mean change) / spread of the window's changes."""
    window_mean: float
    window_std: float
    message: str


def _spread(values: Sequence[float], center: float) -> float:
    """Standard deviation, floored at 1% of |center| (and 1e-6): a perfectly steady KL must not
    turn a 0.01-nat wiggle into an infinite z-score."""
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return max(std, 0.01 * abs(center), 1e-6)


def spike_check(
    history: Sequence[float],
    kl: float,
    z_threshold: float = 4.0,
    min_history: int = 5,
    min_jump: float = 0.0,
) -> SpikeAlert | None:
    """A `SpikeAlert` when ``kl`` jumps UP by at least ``z_threshold`` spreads relative to ``history``
    (the previous steps' KLs) BOTH in level and in step-to-step change. None with fewer than
    ``min_history`` finite past values.

    Why both: a steadily rising KL (normal early in RL) sits high above its window's mean every
    step, but its step changes are ordinary; a noisy step's change can be large while its level is
    not. A spike is both at once. Each z alone also fires too often, because a spread estimated
    from 20 steps has heavy tails (tested: no alert in 200 steps of steady noise).
    Drops are not spikes: a policy falling back towards the reference is not a hacking symptom.
    A spike must also rise by ``min_jump`` nats over the previous step: at the start of a run KL
    sits near 0 with a tiny spread, and its first move of a few hundredths of a nat would otherwise
    read as many sigmas."""
    past = [x for x in history if math.isfinite(x)]
    if len(past) < min_history or not math.isfinite(kl) or kl - past[-1] < min_jump:
        return None
    mean = statistics.fmean(past)
    std = _spread(past, mean)
    z_level = (kl - mean) / std
    deltas = [b - a for a, b in itertools.pairwise(past)]
    delta_mean = statistics.fmean(deltas)
    z_delta = (kl - past[-1] - delta_mean) / _spread(deltas, mean)
    if z_level < z_threshold or z_delta < z_threshold:
        return None
    message = (
        f"KL {kl:.2f} nats jumped: {z_level:.1f}σ above the last {len(past)} steps' mean {mean:.2f} "
        f"(σ {std:.2f}), step change {z_delta:.1f}σ; inspect this step's samples and update size"
    )
    return SpikeAlert(kl, z_level, z_delta, mean, std, message)


class KLSpikeDetector:
    """Rolling z-score of the KL and of its step-to-step change over the last ``window`` steps.

    With the defaults, Gaussian KL noise (flat or slowly rising) gave about 4 false alerts per
    10,000 steps in simulation; a jump of 10 spreads is always caught."""

    def __init__(
        self, window: int = 20, z_threshold: float = 4.0, min_history: int = 5, min_jump: float = 0.0
    ) -> None:
        if window < 2 or not 2 <= min_history <= window:
            raise ValueError(f"need window >= 2 and 2 <= min_history <= window, got {window}, {min_history}")
        self.window = window
        self.z_threshold = z_threshold
        self.min_history = min_history
        self.min_jump = min_jump
        """Smallest rise over the previous step (nats) that can count as a spike."""
        self.history: deque[float] = deque(maxlen=window)

    def update(self, kl: float) -> SpikeAlert | None:
        """Check ``kl`` against the window, then add it to the window (spikes included, so a lasting
        shift becomes the new normal after ``window`` steps instead of alerting forever)."""
        alert = spike_check(list(self.history), kl, self.z_threshold, self.min_history, self.min_jump)
        self.history.append(kl)
        return alert

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "z_threshold": self.z_threshold,
            "min_history": self.min_history,
            "min_jump": self.min_jump,
            "history": list(self.history),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.window = int(state["window"])
        self.z_threshold = float(state["z_threshold"])
        self.min_history = int(state["min_history"])
        self.min_jump = float(state.get("min_jump", 0.0))  # older checkpoints lack it
        self.history = deque((float(x) for x in state["history"]), maxlen=self.window)
