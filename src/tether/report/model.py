"""What the report shows: one frozen dataclass per section of a loop iteration.

A section the iteration never reached is a `NotRun` carrying the reason, so the page says
"not run: the iteration stopped after 'gate' (…)" where a chart would otherwise be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SEVERITY_ORDER = ("critical", "warning", "info")


@dataclass(frozen=True)
class NotRun:
    """A section with nothing to show, and why."""

    reason: str


@dataclass(frozen=True)
class Estimate:
    """A score or accuracy with its 95% interval; `value` is None when there was nothing to score."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass(frozen=True)
class Delta:
    """A difference against a baseline (SFT, the previous iteration), with its interval and verdicts."""

    delta: float | None
    low: float | None
    high: float | None
    regression: bool
    critical: bool


@dataclass(frozen=True)
class DiffLine:
    kind: str
    """header, hunk, add, remove or context: the CSS class of the line."""
    text: str


@dataclass(frozen=True)
class SpecSection:
    spec_hash: str
    name: str | None
    version: str | None
    change: str
    """first (no earlier iteration), unchanged, changed, or unknown (a version not in the store)."""
    previous_version: str | None = None
    diff: tuple[DiffLine, ...] = ()


@dataclass(frozen=True)
class Rater:
    name: str
    status: str
    expert_agreement: float | None
    peer_agreement: float | None
    judgments: int
    excluded: bool
    reason: str | None


@dataclass(frozen=True)
class LabelSection:
    batch: str
    tasks: int
    judgments: int
    pairs: int
    by_dimension: dict[str, int]
    by_stratum: dict[str, int]
    by_origin: dict[str, int]
    hard_share: float | None
    agreement_pool: float | None
    agreement_alpha: float | None
    raters: tuple[Rater, ...]
    collected: bool = True
    """False while the batch is planned but its labels are not in yet (figures are the plan's)."""
    excluded_now: tuple[str, ...] = ()
    """Raters excluded during this iteration (the others were excluded before it)."""

    @property
    def excluded(self) -> tuple[Rater, ...]:
        return tuple(r for r in self.raters if r.excluded)


@dataclass(frozen=True)
class RewardSection:
    artifact: str | None
    pairs: int | None
    seconds: float | None
    sources: dict[str, int] = field(default_factory=dict)
    """Exported pairs per rater or imported source whose labels trained the reward model."""


@dataclass(frozen=True)
class ReliabilityBin:
    bin_low: float
    bin_high: float
    mean_predicted: float | None
    observed: float | None
    n: int


@dataclass(frozen=True)
class ProbeDelta:
    name: str
    mean_delta: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class GateCheckRow:
    """One threshold as measured and decided: pass, fail, or marginal (its interval straddles the bar)."""

    name: str
    status: str
    decided: str
    message: str


@dataclass(frozen=True)
class GateAttempt:
    """One evaluation of the gate within an iteration; a failure with retries left planned a batch."""

    attempt: int
    reward_model: str | None
    passed: bool | None
    failures: tuple[str, ...]
    action: str
    """pass, remediate (a targeted batch was planned) or stop."""
    remediation_tasks: int = 0
    remediation_by_target: dict[str, int] = field(default_factory=dict)
    probes: tuple[ProbeDelta, ...] = ()
    overall: float | None = None


@dataclass(frozen=True)
class GateSection:
    passed: bool | None
    """None when the loop recorded no verdict."""
    failures: tuple[str, ...]
    warnings: tuple[str, ...]
    overall: Estimate
    by_dimension: dict[str, Estimate]
    gold_by_dimension: dict[str, Estimate] | None
    ece: float | None
    brier: float | None
    reliability: tuple[ReliabilityBin, ...]
    probes: tuple[ProbeDelta, ...]
    report_path: str | None
    thresholds: GateThresholds
    checks: tuple[GateCheckRow, ...] = ()
    attempts: tuple[GateAttempt, ...] = ()
    """Every gate attempt of the iteration, oldest first (one when the first attempt passed)."""


@dataclass(frozen=True)
class GateThresholds:
    """The bars of the iteration's spec version, drawn as ticks next to what the gate measured."""

    min_accuracy: float | None = None
    by_dimension: dict[str, float] = field(default_factory=dict)
    max_ece: float | None = None
    max_probe_delta: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    monitor: str
    severity: str
    step: int
    condition: str
    message: str


@dataclass(frozen=True)
class KLVerdict:
    """The run's KL against the spec's budget, measured as the kl_budget monitor measures it."""

    budget: float | None
    running: float | None
    """Mean of the last steps' sequence KL (`tether.rl.kl_control.running_kl`), else the final metric."""
    last: float | None
    peak: float | None
    peak_step: int | None
    window: int | None = None
    """Steps in `running`; None when it is the run's final metric instead."""

    @property
    def within(self) -> bool | None:
        if self.budget is None or self.running is None:
            return None
        return self.running <= self.budget

    @property
    def verdict(self) -> str:
        return {True: "within budget", False: "over budget", None: "unknown"}[self.within]


@dataclass(frozen=True)
class Chart:
    """One line chart's data: series name → (step, value) points, and an optional reference line."""

    title: str
    series: dict[str, tuple[tuple[float, float], ...]]
    reference: float | None = None
    reference_label: str = ""


@dataclass(frozen=True)
class RLSection:
    run_id: str | None
    artifact: str | None
    status: str | None
    reason_stopped: str | None
    steps: int | None
    final: dict[str, float]
    kl: KLVerdict
    charts: tuple[Chart, ...]
    metrics_note: str | None
    """Why the curves are missing or partial (no metrics file, unreadable lines); None when complete."""


@dataclass(frozen=True)
class EvalSection:
    scores: dict[str, Estimate]
    sft_scores: dict[str, Estimate]
    vs_sft: dict[str, Delta]
    vs_previous: dict[str, Delta] | None
    gold_utility: float | None
    sft_gold_utility: float | None

    @property
    def regressions(self) -> tuple[str, ...]:
        """Dimensions that regressed against SFT."""
        return tuple(dim for dim, d in self.vs_sft.items() if d.regression)


@dataclass(frozen=True)
class Diagnosis:
    text: str
    summary: str
    dimensions: tuple[str, ...]
    strata: tuple[str, ...]
    findings: int | None
    alerts: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class IterationReport:
    number: int
    status: str
    last_step: str
    reason_stopped: str | None
    started_at: datetime
    ended_at: datetime | None
    spec: SpecSection
    label: LabelSection | NotRun
    reward: RewardSection | NotRun
    gate: GateSection | NotRun
    rl: RLSection | NotRun
    evals: EvalSection | NotRun
    diagnosis: Diagnosis | NotRun
    alerts: tuple[Alert, ...] = ()
    """The RL run's alerts, most severe first."""
    stopped_at: str | None = None
    """The step that stopped the iteration, when it stopped."""

    def alert_counts(self) -> dict[str, int]:
        return {s: sum(a.severity == s for a in self.alerts) for s in SEVERITY_ORDER}


@dataclass(frozen=True)
class ReportData:
    project: str
    spec_name: str
    spec_version: str
    spec_hash: str
    generated_at: datetime
    iterations: tuple[IterationReport, ...] = field(default=())
    policy: str | None = None
    """The default SFT policy: its artifact id and name, when one is registered."""

    @property
    def stop(self) -> StopNotice | None:
        """Why the loop stopped, when its latest iteration did: the first thing the page says."""
        if not self.iterations or self.iterations[-1].status != "stopped":
            return None
        last = self.iterations[-1]
        return StopNotice(last.number, last.stopped_at, last.reason_stopped or "no reason recorded")


@dataclass(frozen=True)
class StopNotice:
    iteration: int
    step: str | None
    reason: str

    @property
    def next_step(self) -> str:
        from tether.report.summary import next_step

        return next_step(self.step)
