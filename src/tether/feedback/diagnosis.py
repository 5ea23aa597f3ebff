"""Diagnosis between loop iterations: where the reward model and the policy are weak, and what to label next.

Pure functions over the figures an iteration recorded (see `tether.feedback.loop` for their shape).
A dimension earns focus weight from three independent signals:

- the reward model's held-out accuracy falls short of the dimension's gate bar plus a margin
  (`rm_weakness`): more labels there are the direct fix;
- the policy regressed on the dimension against SFT in the eval suites (`eval_weakness`): RL found
  something the reward model gets wrong there;
- red-team findings name the dimension (`finding_weakness`): the failure mode is already in hand
  and is being routed to labeling.

Alerts do not map onto dimensions by themselves; they are reported as reasons, and style alerts
(length, hedging, lists) add weight to the dimension the evals show dropping most.

    >>> rm_weakness({"accuracy": 0.70, "low": 0.64, "high": 0.76, "n": 150}, bar=0.65)
    0.05
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.feedback.loop.results import GateResult
    from tether.feedback.loop.results_policy import EvalsResult, RLResult

MARGIN = 0.10
"""Accuracy above a dimension's gate bar below which more labels still pay off."""
STYLE_MONITORS = ("length_creep", "hedging_rise", "list_rise")
MAX_FOCUS = 2
"""Dimensions a focus names at most, so that the steered share is not spread too thin."""


@dataclass(frozen=True)
class Focus:
    """The labeling focus an iteration proposes for the next one."""

    weights: dict[str, float] = field(default_factory=dict)
    """Dimension -> weight (sums to 1 over the focus dimensions); empty when nothing stands out."""
    strata: list[str] = field(default_factory=list)
    """Strata where the reward model is least accurate, weakest first."""
    findings: int = 0
    """Red-team findings routed to the next batch."""
    alerts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": list(self.weights),
            "weights": dict(self.weights),
            "strata": list(self.strata),
            "findings": self.findings,
            "alerts": list(self.alerts),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Focus:
        data = data or {}
        return cls(
            weights={str(k): float(v) for k, v in (data.get("weights") or {}).items()},
            strata=[str(s) for s in data.get("strata") or []],
            findings=int(data.get("findings") or 0),
            alerts=[str(a) for a in data.get("alerts") or []],
            reasons=[str(r) for r in data.get("reasons") or []],
        )


def rm_weakness(accuracy: Mapping[str, Any] | None, *, bar: float) -> float:
    """How far the dimension's held-out accuracy sits below `bar + MARGIN` (0 when above, or unmeasured)."""
    if not accuracy or accuracy.get("accuracy") is None:
        return 0.0
    return round(max(0.0, bar + MARGIN - float(accuracy["accuracy"])), 6)


def eval_weakness(delta: Mapping[str, Any] | None) -> float:
    """1 for a regression against SFT, else the size of a drop (0 for a gain or no data)."""
    if not delta or delta.get("delta") is None:
        return 0.0
    if delta.get("regression"):
        return 1.0
    return max(0.0, -float(delta["delta"]))


def finding_weakness(findings_by_dimension: Mapping[str, int], dimension: str) -> float:
    """Half the dimension's share of the red-team findings."""
    total = sum(findings_by_dimension.values())
    return 0.5 * findings_by_dimension.get(dimension, 0) / total if total else 0.0


def decimals_apart(value: float, bar: float, *, start: int = 3, most: int = 9) -> int:
    """Decimals to print `value` and `bar` with: `start`, or more while rounding would make a value
    that misses its bar read the same as it (up to `most`; figures equal to the bar print equal).

    >>> decimals_apart(0.847, 0.75 + 0.10), decimals_apart(0.8496, 0.85), decimals_apart(0.85, 0.85)
    (3, 4, 3)
    >>> d = decimals_apart(5.004, 5.0, start=2)
    >>> f"KL {5.004:.{d}f} of {5.0:.{d}f}"
    'KL 5.004 of 5.000'
    """
    digits = start
    while digits < most and value != bar and f"{value:.{digits}f}" == f"{bar:.{digits}f}":
        digits += 1
    return digits


def _style_alerts(alerts: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(a["monitor"]) for a in alerts if a.get("monitor") in STYLE_MONITORS})


def _dimension_reasons(
    dim: str, bar: float, rm: float, ev: float, fw: float, acc: Any, found: int
) -> list[str]:
    out = []
    if rm > 0:
        value, bar_plus = float(acc), bar + MARGIN  # the two figures compared, printed to the same decimals
        d = decimals_apart(value, bar_plus)
        out.append(
            f"reward model accuracy on {dim} {value:.{d}f} is under its bar {bar:g} + {MARGIN:g}"
            f" = {bar_plus:.{d}f}"
        )
    if ev >= 1.0:
        out.append(f"the policy regressed on {dim} against SFT in the eval suites")
    if fw > 0:
        out.append(f"{found} red-team finding(s) on {dim}")
    return out


def propose_focus(
    *,
    bars: Mapping[str, float],
    rm_by_dimension: Mapping[str, Mapping[str, Any]],
    rm_by_stratum: Mapping[str, Mapping[str, Any]] | None = None,
    vs_sft: Mapping[str, Mapping[str, Any]] | None = None,
    alerts: Sequence[Mapping[str, Any]] = (),
    findings_by_dimension: Mapping[str, int] | None = None,
) -> Focus:
    """Weigh every dimension (its id -> gate bar in `bars`) by the three signals and keep the strongest."""
    vs_sft = vs_sft or {}
    found = dict(findings_by_dimension or {})
    scores: dict[str, float] = {}
    reasons: list[str] = []
    for dim, bar in bars.items():
        rm = rm_weakness(rm_by_dimension.get(dim), bar=bar)
        ev = eval_weakness(vs_sft.get(dim))
        fw = finding_weakness(found, dim)
        scores[dim] = rm + ev + fw
        acc = (rm_by_dimension.get(dim) or {}).get("accuracy")
        reasons.extend(_dimension_reasons(dim, bar, rm, ev, fw, acc, found.get(dim, 0)))
    style = _style_alerts(alerts)
    if style:
        drops = {d: float(v.get("delta") or 0.0) for d, v in vs_sft.items() if d in scores}
        if drops and min(drops.values()) < 0:
            worst = min(drops, key=lambda d: drops[d])
            scores[worst] += 0.5
            reasons.append(f"style alert(s) {', '.join(style)} during RL; {worst} dropped most in the evals")
        else:
            reasons.append(f"style alert(s) {', '.join(style)} during RL")
    top = sorted((d for d in scores if scores[d] > 0), key=lambda d: (-scores[d], d))[:MAX_FOCUS]
    total = sum(scores[d] for d in top)
    return Focus(
        weights={d: round(scores[d] / total, 4) for d in top},
        strata=weakest_strata(rm_by_stratum or {}),
        findings=sum(found.values()),
        alerts=sorted({f"{a.get('severity')}:{a.get('monitor')}" for a in alerts}),
        reasons=reasons,
    )


def weakest_strata(by_stratum: Mapping[str, Mapping[str, Any]], *, keep: int = 2) -> list[str]:
    """Strata ordered by the reward model's held-out accuracy, lowest first (unmeasured ones left out)."""
    measured = {s: float(v["accuracy"]) for s, v in by_stratum.items() if v and v.get("accuracy") is not None}
    return sorted(measured, key=lambda s: (measured[s], s))[:keep]


def _gate_line(gate: GateResult) -> str:
    verdict = "passed" if gate.passed else f"FAILED: {'; '.join(gate.failures)}"
    acc = f"held-out accuracy {gate.overall.value:.3f}, " if gate.overall.value is not None else ""
    tries = len(gate.attempts)
    after = f" after {tries} attempts ({_remediated(gate)})" if tries > 1 else ""
    return f"reward model: {acc}gate {verdict}{after}"


def _remediated(gate: GateResult) -> str:
    tasks = sum(a.remediation.tasks for a in gate.attempts if a.remediation is not None)
    return f"{tasks} targeted tasks relabeled"


def _rl_line(rl: RLResult) -> str:
    kl, budget, gold = rl.final.get("objective/kl"), rl.kl_budget, rl.final.get("gold/utility")
    parts = [f"{rl.steps} steps, {rl.status}"]
    if kl is not None and budget:
        d = decimals_apart(kl, budget, start=2)
        parts.append(f"KL {kl:.{d}f} of {budget:.{d}f} nats ({'within' if kl <= budget else 'over'} budget)")
    if gold is not None:
        parts.append(f"gold utility {gold:.3f}")
    parts.append(f"{len(rl.alerts)} alert(s), {len(rl.critical)} critical")
    return "RL: " + ", ".join(parts)


def summarize_iteration(
    number: int,
    focus: Focus,
    *,
    gate: GateResult | None = None,
    rl: RLResult | None = None,
    rl_skipped: bool = False,
    evals: EvalsResult | None = None,
) -> str:
    """A few plain lines: the gate, RL against its KL budget and gold, evals against SFT, the next focus."""
    lines = [f"iteration {number}"]
    if gate is not None:
        lines.append(_gate_line(gate))
    if rl is not None:
        lines.append(_rl_line(rl))
    elif rl_skipped:
        lines.append("RL: skipped (the reward model did not pass its gate)")
    if evals is not None and evals.vs_sft:
        deltas = ", ".join(f"{d} {v.delta:+.3f}" for d, v in evals.vs_sft.items() if v.delta is not None)
        lines.append(f"evals vs SFT: {deltas}; regressions: {', '.join(evals.regressions) or 'none'}")
    if focus.weights:
        lines.append("next labeling focus: " + ", ".join(f"{d} ({w:.0%})" for d, w in focus.weights.items()))
    else:
        lines.append("next labeling focus: none stands out; plan the spec's default mix")
    lines.extend(f"  - {r}" for r in focus.reasons)
    return "\n".join(lines)
