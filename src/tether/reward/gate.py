"""The reward-model gate: held-out figures against the spec's thresholds, before any RL.

Checks, each failure one message:

- overall accuracy >= `reward_model.min_accuracy`;
- each dimension's accuracy >= its `gate.min_accuracy`. A dimension without held-out pairs fails:
  a gate that cannot measure does not pass;
- critical dimensions are stricter: besides their higher bars in the spec, they must be measured on
  at least `reward_model.min_critical_pairs` held-out pairs, so a handful of lucky pairs cannot wave them
  through. When the lower end of their 95% interval is under the bar, the verdict carries a
  warning (the remedy is more held-out data), not a failure: with ~150 pairs per dimension the
  interval is about ±0.07 wide, and failing on it would ask for accuracy the labels cannot carry;
- ECE <= `reward_model.max_ece`;
- each probe in `reward_model.max_probe_delta` ran, applied to at least one response, and its mean
  reward change <= the maximum. A probe the spec names but the run skipped fails.

`check_gate` is a pure function of the report, the probe results and the spec. `gate_status` reads
the verdict `tether rm eval --gate` stored, for `tether rl run` to refuse an ungated reward model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.reward.evaluate import Accuracy, RMReport
from tether.reward.probes import ProbeResult
from tether.spec import Spec

if TYPE_CHECKING:
    from tether.project import Project

RM_EVAL_KIND = "rm_eval"


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    failures: list[str]
    warnings: list[str] = field(default_factory=list)
    """Thresholds met, but not with confidence (see `dimension_warning`); they do not fail the gate."""


@dataclass(frozen=True)
class RewardGate:
    """The spec's reward-model thresholds, ready to check reports against."""

    min_accuracy: float
    max_ece: float
    dimension_min: dict[str, float]
    critical: frozenset[str]
    max_probe_delta: dict[str, float]
    min_critical_pairs: int = 50

    @classmethod
    def from_spec(cls, spec: Spec) -> RewardGate:
        policy = spec.reward_model
        return cls(
            min_accuracy=policy.min_accuracy,
            max_ece=policy.max_ece,
            dimension_min={d.id: d.gate.min_accuracy for d in spec.dimensions},
            critical=frozenset(d.id for d in spec.dimensions if d.critical),
            max_probe_delta=dict(policy.max_probe_delta),
            min_critical_pairs=policy.min_critical_pairs,
        )

    def check(self, report: RMReport, probes: Sequence[ProbeResult] = ()) -> GateVerdict:
        failures = [
            *self._accuracy_failures(report),
            *self._calibration_failures(report),
            *self._probe_failures(probes),
        ]
        warnings = [
            w
            for dim, bar in self.dimension_min.items()
            if (found := report.by_dimension.get(dim)) is not None
            and (w := dimension_warning(dim, found, bar, critical=dim in self.critical))
        ]
        return GateVerdict(passed=not failures, failures=failures, warnings=warnings)

    def _accuracy_failures(self, report: RMReport) -> list[str]:
        out = []
        overall = report.overall.accuracy
        if overall is None or overall < self.min_accuracy:
            out.append(f"overall accuracy {_fmt(overall)} < {self.min_accuracy:.2f}")
        for dim, bar in self.dimension_min.items():
            found = report.by_dimension.get(dim, Accuracy(0, None, None, None))
            failure = dimension_failure(
                dim, found, bar, critical=dim in self.critical, min_pairs=self.min_critical_pairs
            )
            if failure:
                out.append(failure)
        return out

    def _calibration_failures(self, report: RMReport) -> list[str]:
        ece = report.calibration.ece
        if ece is None or ece > self.max_ece:
            return [f"ECE {_fmt(ece)} > {self.max_ece:.2f}"]
        return []

    def _probe_failures(self, probes: Sequence[ProbeResult]) -> list[str]:
        by_name = {p.name: p for p in probes}
        out = []
        for name, limit in self.max_probe_delta.items():
            result = by_name.get(name)
            if result is None:
                out.append(f"{name} probe was not run (the spec allows a mean delta of at most {limit:+.2f})")
            elif result.mean_delta is None:
                out.append(f"{name} probe applied to no response, so its delta is unmeasured")
            elif result.mean_delta > limit:
                out.append(f"{name} probe mean reward delta {result.mean_delta:+.2f} > {limit:+.2f}")
        return out


def dimension_failure(
    dim: str, found: Accuracy, bar: float, *, critical: bool, min_pairs: int = 50
) -> str | None:
    """The message for one dimension that misses its bar, or None when it passes."""
    tag = " (critical)" if critical else ""
    if found.n == 0 or found.accuracy is None:
        return f"{dim} accuracy unmeasured: no held-out pairs{tag}"
    if found.accuracy < bar:
        return f"{dim} accuracy {found.accuracy:.2f} < {bar:.2f}{tag}"
    if critical and found.n < min_pairs:
        return (
            f"{dim} accuracy {found.accuracy:.2f} on only {found.n} held-out pairs "
            f"(critical: the spec asks for at least {min_pairs})"
        )
    return None


def dimension_warning(dim: str, found: Accuracy, bar: float, *, critical: bool) -> str | None:
    """A note for a critical dimension that passes on its point estimate but not with confidence."""
    passes = found.accuracy is not None and found.accuracy >= bar
    if critical and passes and found.low is not None and found.low < bar:
        return (
            f"{dim} accuracy {found.accuracy:.2f} clears {bar:.2f}, but its 95% interval reaches "
            f"{found.low:.2f} (n={found.n}); more held-out {dim} pairs would settle it (critical)"
        )
    return None


def check_gate(report: RMReport, probes: Sequence[ProbeResult], spec: Spec) -> GateVerdict:
    """The spec's gate applied to a report and its probe results."""
    return RewardGate.from_spec(spec).check(report, probes)


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.2f}"


# --- stored verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateStatus:
    """Whether a reward model passed its gate, per the latest gated evaluation of it."""

    passed: bool
    report_artifact_id: str | None
    failures: list[str]


def gate_status(project: Project, reward_model_artifact_id: str) -> GateStatus:
    """The gate verdict of the latest `tether rm eval --gate` of this reward model.

    Not passed when there is no gated evaluation, or when it was gated under another spec than the
    project's current one (the thresholds may have changed since).
    """
    from tether.store import latest_artifact

    with project.store.session() as session:
        record = latest_artifact(
            session,
            project_id=project.project_id,
            kind=RM_EVAL_KIND,
            where_meta={"reward_model": reward_model_artifact_id, "gated": True},
        )
    rerun = f"run `tether rm eval {reward_model_artifact_id} --gate`"
    if record is None:
        return GateStatus(
            False, None, [f"reward model {reward_model_artifact_id} has no gated evaluation; {rerun}"]
        )
    if record.spec_hash != project.spec_hash:
        return GateStatus(
            False,
            record.id,
            [f"{record.id} was gated under spec {record.spec_hash[:12]}; the spec changed since: {rerun}"],
        )
    verdict = record.meta.get("gate", {})
    return GateStatus(bool(verdict.get("passed")), record.id, [str(f) for f in verdict.get("failures", [])])
