"""What each loop step records, as frozen dataclasses: the steps write them, everything else reads them.

    gate = GateResult.from_dict(iteration.results.get("gate"))
    gate.passed, gate.attempts[-1].action, gate.by_dimension["safety"].low

A step stores `result.to_dict()` as `results[step]` (JSON; the shapes are in docs/loop.md), and
the report, the diagnosis and the demo's summary read `from_dict`, which tolerates old rows and
partial steps (see `read`). Renaming a field is then a type error in every reader, not a report
section that silently goes blank. The RL, eval and diagnosis results are in `results_policy`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tether.feedback.loop.read import (
    count,
    counts,
    first,
    flag,
    floats,
    mapping,
    num,
    records,
    strings,
    text,
)
from tether.reward.gate import GateCheck


def _plain(value: Any) -> Any:
    """asdict's output with tuples as lists, so that stored JSON equals a reread's to_dict()."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval over n items (an accuracy, a score)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def read(cls, data: Any, key: str) -> Estimate:
        """From {key: x, "low": .., "high": .., "n": ..} (the stored shape)."""
        d = mapping(data)
        return cls(num(d.get(key)), num(d.get("low")), num(d.get("high")), count(d.get("n")))

    def write(self, key: str) -> dict[str, Any]:
        return {key: self.value, "low": self.low, "high": self.high, "n": self.n}


def read_estimates(value: Any, key: str) -> dict[str, Estimate]:
    return {k: Estimate.read(v, key) for k, v in mapping(value).items()}


def write_estimates(values: dict[str, Estimate], key: str) -> dict[str, Any]:
    return {k: v.write(key) for k, v in values.items()}


# --- labeling -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanResult:
    """(1) plan: the batch written for this iteration."""

    batch: str = ""
    batch_id: int = 0
    tasks: int = 0
    overlapped: int = 0
    hard_share: float | None = None
    dimension_shares: dict[str, float] = field(default_factory=dict)
    strata: dict[str, int] = field(default_factory=dict)
    focus: dict[str, Any] = field(default_factory=dict)
    """The diagnosis's focus that steered the batch (`tether.feedback.diagnosis.Focus.to_dict`)."""
    focus_share: float = 0.0
    policy: str | None = None
    """The policy artifact that wrote the first response of each pair."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> PlanResult:
        d = mapping(data)
        return cls(
            batch=str(d.get("batch") or ""),
            batch_id=count(d.get("batch_id")),
            tasks=count(d.get("tasks")),
            overlapped=count(d.get("overlapped")),
            hard_share=num(d.get("hard_share")),
            dimension_shares=floats(d.get("dimension_shares")),
            strata=counts(d.get("strata")),
            focus=mapping(d.get("focus")),
            focus_share=num(d.get("focus_share")) or 0.0,
            policy=text(d.get("policy")),
        )


@dataclass(frozen=True)
class RaterFigures:
    name: str
    status: str
    expert_agreement: float | None = None
    peer_agreement: float | None = None
    judgments: int = 0
    excluded: bool = False
    reason: str | None = None
    peer_flags: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RaterFigures:
        return cls(
            name=str(d.get("name", "?")),
            status=str(d.get("status", "")),
            expert_agreement=num(d.get("expert_agreement")),
            peer_agreement=num(d.get("peer_agreement")),
            judgments=count(d.get("judgments")),
            excluded=d.get("excluded") is True,
            reason=text(d.get("reason")),
            peer_flags=strings(d.get("peer_flags")),
        )


@dataclass(frozen=True)
class CollectResult:
    """(2) collect: everything labeled so far, the raters, and the export the reward model trains on."""

    batch_id: int = 0
    batch: str = ""
    tasks: int = 0
    by_dimension: dict[str, int] = field(default_factory=dict)
    by_stratum: dict[str, int] = field(default_factory=dict)
    hard_share: float | None = None
    by_origin: dict[str, int] = field(default_factory=dict)
    """Labeled tasks by origin: plan, redteam, probe:<name>, remediation:<dimension>, production."""
    agreement_pool: float | None = None
    agreement_alpha: float | None = None
    raters: tuple[RaterFigures, ...] = ()
    judgments: int = 0
    pairs: int = 0
    train_pairs: int = 0
    heldout_pairs: int = 0
    export: str | None = None
    grades: int = 0
    """Rubric grades the simulated pool gave (sandbox)."""
    excluded_now: tuple[str, ...] = ()
    """Raters the sandbox's admin excluded on peer agreement in this collection."""

    def to_dict(self) -> dict[str, Any]:
        out = _plain(asdict(self))
        out["agreement"] = {"pool": out.pop("agreement_pool"), "alpha": out.pop("agreement_alpha")}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> CollectResult:
        d = mapping(data)
        agreement = mapping(d.get("agreement"))
        return cls(
            batch_id=count(d.get("batch_id")),
            batch=str(d.get("batch") or ""),
            tasks=count(d.get("tasks")),
            by_dimension=counts(d.get("by_dimension")),
            by_stratum=counts(d.get("by_stratum")),
            hard_share=num(d.get("hard_share")),
            by_origin=counts(d.get("by_origin")),
            agreement_pool=num(agreement.get("pool")),
            agreement_alpha=num(agreement.get("alpha")),
            raters=tuple(RaterFigures.from_dict(r) for r in records(d.get("raters"))),
            judgments=count(d.get("judgments")),
            pairs=count(d.get("pairs")),
            train_pairs=count(d.get("train_pairs")),
            heldout_pairs=count(d.get("heldout_pairs")),
            export=text(d.get("export")),
            grades=count(d.get("grades")),
            excluded_now=strings(d.get("excluded_now")),
        )


# --- reward model and gate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardResult:
    """(3) reward: the reward model trained on everything labeled so far."""

    artifact: str | None = None
    pairs: int | None = None
    seconds: float | None = None
    warnings: tuple[str, ...] = ()
    sources: dict[str, int] = field(default_factory=dict)
    """Exported pairs per rater or imported source whose labels trained it ({} in older rows)."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> RewardResult:
        d = mapping(data)
        pairs = d.get("pairs")
        return cls(
            text(d.get("artifact")),
            None if pairs is None else count(pairs),
            num(d.get("seconds")),
            strings(d.get("warnings")),
            counts(d.get("sources")),
        )


@dataclass(frozen=True)
class ProbeFigures:
    name: str
    mean_delta: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeFigures:
        return cls(
            str(d.get("name", "?")),
            num(d.get("mean_delta")),
            num(d.get("low")),
            num(d.get("high")),
            count(d.get("n")),
        )


@dataclass(frozen=True)
class ReliabilityFigures:
    lower: float = 0.0
    upper: float = 0.0
    count: int = 0
    mean_probability: float | None = None
    observed: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReliabilityFigures:
        # Also the report's older names (bin_low, bin_high, n, mean_predicted).
        return cls(
            num(first(d, "lower", "bin_low")) or 0.0,
            num(first(d, "upper", "bin_high")) or 0.0,
            count(first(d, "count", "n")),
            num(first(d, "mean_probability", "mean_predicted")),
            num(d.get("observed")),
        )


@dataclass(frozen=True)
class RemediationFigures:
    """The targeted batch a failed gate attempt planned (`remediation.RemediationPlan`)."""

    batch_id: int | None = None
    batch: str = ""
    tasks: int = 0
    by_target: dict[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> RemediationFigures:
        d = mapping(data)
        batch_id = d.get("batch_id")
        return cls(
            None if batch_id is None else count(batch_id),
            str(d.get("batch") or ""),
            count(d.get("tasks")),
            counts(d.get("by_target")),
            strings(d.get("skipped")),
        )


@dataclass(frozen=True)
class EditPreferenceFigures:
    """How often raters chose a probe's edited response on its labeled counterfactual pairs."""

    probe: str
    pairs: int = 0
    edited_chosen: int = 0
    low: float | None = None
    high: float | None = None
    ties: int = 0
    """Pairs whose majority called the edit no better (0 in records from before ties were kept)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EditPreferenceFigures:
        return cls(
            str(d.get("probe", "?")),
            count(d.get("pairs")),
            count(d.get("edited_chosen")),
            num(d.get("low")),
            num(d.get("high")),
            count(d.get("ties")),
        )


@dataclass(frozen=True)
class GateAttempt:
    """One evaluation of the gate in an iteration, and what the loop did next."""

    attempt: int = 0
    """1, 2, ... over the iteration."""
    retry: int = 0
    """0 for the first attempt of a round; a round ends with a pass or a stop."""
    reward_model: str | None = None
    rm_eval: str | None = None
    passed: bool | None = None
    failures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    overall: Estimate = field(default_factory=Estimate)
    by_dimension: dict[str, Estimate] = field(default_factory=dict)
    probes: tuple[ProbeFigures, ...] = ()
    action: str = ""
    """pass (on to RL), remediate (a targeted batch was planned; relabel, retrain, re-gate) or stop."""
    remediation: RemediationFigures | None = None
    stop_reason: str | None = None
    edit_preferences: tuple[EditPreferenceFigures, ...] = ()
    """Probes whose counterfactual labels show the raters preferring the edit (not replanned)."""

    def to_dict(self) -> dict[str, Any]:
        out = _plain(asdict(self))
        out["overall"] = self.overall.write("accuracy")
        out["by_dimension"] = write_estimates(self.by_dimension, "accuracy")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateAttempt:
        plan = d.get("remediation")
        return cls(
            attempt=count(d.get("attempt")),
            retry=count(d.get("retry")),
            reward_model=text(d.get("reward_model")),
            rm_eval=text(d.get("rm_eval")),
            passed=flag(d.get("passed")),
            failures=strings(d.get("failures")),
            warnings=strings(d.get("warnings")),
            overall=Estimate.read(d.get("overall"), "accuracy"),
            by_dimension=read_estimates(d.get("by_dimension"), "accuracy"),
            probes=tuple(ProbeFigures.from_dict(p) for p in records(d.get("probes"))),
            action=str(d.get("action") or ""),
            remediation=RemediationFigures.from_dict(plan) if isinstance(plan, dict) else None,
            stop_reason=text(d.get("stop_reason")),
            edit_preferences=tuple(
                EditPreferenceFigures.from_dict(e) for e in records(d.get("edit_preferences"))
            ),
        )


@dataclass(frozen=True)
class GateResult:
    """(4) gate: the latest attempt's figures and verdict, and every attempt of the iteration."""

    passed: bool | None = None
    """None when no verdict was recorded."""
    failures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    checks: tuple[GateCheck, ...] = ()
    overall: Estimate = field(default_factory=Estimate)
    by_dimension: dict[str, Estimate] = field(default_factory=dict)
    by_stratum: dict[str, Estimate] = field(default_factory=dict)
    gold_by_dimension: dict[str, Estimate] | None = None
    """Accuracy where the sandbox's gold prefers one side (None outside the sandbox)."""
    ece: float | None = None
    brier: float | None = None
    reliability: tuple[ReliabilityFigures, ...] = ()
    probes: tuple[ProbeFigures, ...] = ()
    report: str | None = None
    """rm_eval.json, relative to the project."""
    rm_eval: str | None = None
    attempts: tuple[GateAttempt, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = _plain(asdict(self))
        out["checks"] = [c.to_dict() for c in self.checks]
        out["attempts"] = [a.to_dict() for a in self.attempts]
        out["overall"] = self.overall.write("accuracy")
        for key in ("by_dimension", "by_stratum"):
            out[key] = write_estimates(getattr(self, key), "accuracy")
        gold = self.gold_by_dimension
        out["gold_by_dimension"] = None if gold is None else write_estimates(gold, "accuracy")
        return out

    @classmethod
    def from_dict(cls, data: Any) -> GateResult:
        d = mapping(data)
        gold = d.get("gold_by_dimension")
        return cls(
            passed=flag(d.get("passed")),
            failures=strings(d.get("failures")),
            warnings=strings(d.get("warnings")),
            checks=tuple(GateCheck.from_dict(c) for c in records(d.get("checks"))),
            overall=Estimate.read(d.get("overall"), "accuracy"),
            by_dimension=read_estimates(d.get("by_dimension"), "accuracy"),
            by_stratum=read_estimates(d.get("by_stratum"), "accuracy"),
            gold_by_dimension=read_estimates(gold, "accuracy") if isinstance(gold, dict) else None,
            ece=num(d.get("ece")),
            brier=num(d.get("brier")),
            reliability=tuple(ReliabilityFigures.from_dict(b) for b in records(d.get("reliability"))),
            probes=tuple(ProbeFigures.from_dict(p) for p in records(d.get("probes"))),
            report=text(d.get("report")),
            rm_eval=text(d.get("rm_eval")),
            attempts=tuple(GateAttempt.from_dict(a) for a in records(d.get("attempts"))),
        )
