"""What the policy steps record: (5) the RL run, (6) the eval suites, (7) the diagnosis.

The same contract as `results`: steps store `to_dict()`, readers use `from_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tether.feedback.loop.read import count, counts, floats, mapping, num, records, text
from tether.feedback.loop.results import Estimate, _plain, read_estimates, write_estimates


@dataclass(frozen=True)
class AlertFigures:
    monitor: str
    severity: str
    step: int = 0
    condition: str = ""
    message: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertFigures:
        return cls(
            str(d.get("monitor", "?")),
            str(d.get("severity", "info")),
            count(d.get("step")),
            str(d.get("condition") or ""),
            str(d.get("message") or ""),
        )


@dataclass(frozen=True)
class RLResult:
    """(5) rl: the short RL run against this iteration's gated reward model."""

    run_id: str | None = None
    artifact: str | None = None
    """The run's `rl_checkpoint` artifact."""
    checkpoint: str | None = None
    metrics: str | None = None
    """metrics.jsonl, relative to the project."""
    status: str | None = None
    reason_stopped: str | None = None
    kl_budget: float | None = None
    steps: int = 0
    final: dict[str, float] = field(default_factory=dict)
    """The last step's headline metrics (objective/kl, gold/utility, ...)."""
    max_kl: float | None = None
    seconds: float | None = None
    alerts: tuple[AlertFigures, ...] = ()

    @property
    def critical(self) -> list[AlertFigures]:
        return [a for a in self.alerts if a.severity == "critical"]

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> RLResult:
        d = mapping(data)
        return cls(
            run_id=text(d.get("run_id")),
            artifact=text(d.get("artifact")),
            checkpoint=text(d.get("checkpoint")),
            metrics=text(d.get("metrics")),
            status=text(d.get("status")),
            reason_stopped=text(d.get("reason_stopped")),
            kl_budget=num(d.get("kl_budget")),
            steps=count(d.get("steps")),
            final=floats(d.get("final")),
            max_kl=num(d.get("max_kl")),
            seconds=num(d.get("seconds")),
            alerts=tuple(AlertFigures.from_dict(a) for a in records(d.get("alerts"))),
        )


@dataclass(frozen=True)
class DeltaFigures:
    """A checkpoint's change against a baseline on one dimension, with its paired 95% interval."""

    delta: float | None = None
    low: float | None = None
    high: float | None = None
    regression: bool = False
    critical: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> DeltaFigures:
        d = mapping(data)
        return cls(
            num(d.get("delta")),
            num(d.get("low")),
            num(d.get("high")),
            d.get("regression") is True,
            d.get("critical") is True,
        )


def read_deltas(value: Any) -> dict[str, DeltaFigures]:
    return {k: DeltaFigures.from_dict(v) for k, v in mapping(value).items()}


@dataclass(frozen=True)
class EvalsResult:
    """(6) evals: the behavioral suites on the new checkpoint, against SFT and the previous iteration."""

    artifact: str | None = None
    sft_artifact: str | None = None
    scores: dict[str, Estimate] = field(default_factory=dict)
    sft_scores: dict[str, Estimate] = field(default_factory=dict)
    vs_sft: dict[str, DeltaFigures] = field(default_factory=dict)
    vs_previous: dict[str, DeltaFigures] | None = None
    gold_utility: float | None = None
    sft_gold_utility: float | None = None

    @property
    def regressions(self) -> list[str]:
        return [d for d, v in self.vs_sft.items() if v.regression]

    def to_dict(self) -> dict[str, Any]:
        out = _plain(asdict(self))
        out["scores"] = write_estimates(self.scores, "score")
        out["sft_scores"] = write_estimates(self.sft_scores, "score")
        return out

    @classmethod
    def from_dict(cls, data: Any) -> EvalsResult:
        d = mapping(data)
        previous = d.get("vs_previous")
        return cls(
            artifact=text(d.get("artifact")),
            sft_artifact=text(d.get("sft_artifact")),
            scores=read_estimates(d.get("scores"), "score"),
            sft_scores=read_estimates(d.get("sft_scores"), "score"),
            vs_sft=read_deltas(d.get("vs_sft")),
            vs_previous=read_deltas(previous) if isinstance(previous, dict) else None,
            gold_utility=num(d.get("gold_utility")),
            sft_gold_utility=num(d.get("sft_gold_utility")),
        )


@dataclass(frozen=True)
class RedteamFigures:
    artifact: str | None = None
    findings: int = 0
    findings_mean_rm: float | None = None
    findings_mean_grade: float | None = None
    mean_grade: float | None = None
    routed: int = 0
    routed_by_dimension: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> RedteamFigures:
        d = mapping(data)
        return cls(
            artifact=text(d.get("artifact")),
            findings=count(d.get("findings")),
            findings_mean_rm=num(d.get("findings_mean_rm")),
            findings_mean_grade=num(d.get("findings_mean_grade")),
            mean_grade=num(d.get("mean_grade")),
            routed=count(d.get("routed")),
            routed_by_dimension=counts(d.get("routed_by_dimension")),
        )


@dataclass(frozen=True)
class DiagnoseResult:
    """(7) diagnose: the summary lines, the next focus and the red-team search behind it."""

    summary: str = ""
    focus: dict[str, Any] = field(default_factory=dict)
    """`tether.feedback.diagnosis.Focus.to_dict()`."""
    redteam: RedteamFigures | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary, "focus": dict(self.focus)}
        out["redteam"] = _plain(asdict(self.redteam)) if self.redteam else {}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DiagnoseResult:
        d = mapping(data)
        redteam = mapping(d.get("redteam"))
        return cls(
            str(d.get("summary") or ""),
            mapping(d.get("focus")),
            RedteamFigures.from_dict(redteam) if redteam else None,
        )
