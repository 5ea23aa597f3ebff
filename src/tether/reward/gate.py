"""The reward-model gate: held-out figures against the spec's thresholds, before any RL.

One `GateCheck` per threshold:

- overall accuracy >= `reward_model.min_accuracy`;
- each dimension's accuracy >= its `gate.min_accuracy`. A dimension without held-out pairs fails:
  a gate that cannot measure does not pass. A critical dimension must also be measured on at least
  `reward_model.min_critical_pairs` held-out pairs, so a handful of lucky pairs cannot wave it through;
- ECE <= `reward_model.max_ece` (a point estimate: it has no interval);
- each probe in `reward_model.max_probe_delta` ran, applied to at least one response, and its mean
  reward change <= the maximum. A probe the spec names but the run skipped fails.

Each figure comes with its 95% bootstrap interval, and `classify` reads the interval, not just the
point: *pass* when the whole interval is on the passing side of the bar, *fail* when the whole
interval is on the failing side, *marginal* when it straddles the bar (the data cannot tell
whether the bar is met). Without an interval the point decides. A marginal check is then decided
by a policy: `strict` fails it, `interval` passes it with a warning. The unmeasured, too-few-pairs
and not-run rules are hard failures whatever the policy.

`reward_model.gate_policy` (default `interval`) decides the non-critical checks: with ~150 held-out
pairs per dimension an interval is about ±0.07 wide, and failing every straddle would ask for
accuracy the labels cannot carry; the warning says which figure needs more data.
`reward_model.critical_gate_policy` (default `strict`) decides critical dimensions' accuracy: a
critical dimension blocks RL when it regresses, so the gate does not bet an RL run on a reward
model that may be under the bar there. The remedy for a marginal critical dimension is more
held-out pairs of it (a narrower interval); `interval` is the deliberate opt-out.

Printed figures use 3 decimals, more when rounding would make a figure look equal to (or on the
other side of) the bar it is compared with (`format_against`).

`check_gate` is a pure function of the report, the probe results and the spec. `gate_status` reads
the verdict `tether rm eval --gate` stored, for `tether rl run` to refuse an ungated reward model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from tether.artifacts import RM_EVAL_KIND
from tether.reward.evaluate import Accuracy, RMReport
from tether.reward.probes import ProbeResult
from tether.spec import Spec

if TYPE_CHECKING:
    from tether.project import Project


GatePolicy = Literal["strict", "interval"]
"""How a marginal check is decided: strict fails it, interval passes it with a warning."""
Op = Literal[">=", "<="]
Status = Literal["pass", "fail", "marginal"]
Decision = Literal["pass", "fail"]

_OPS: tuple[Op, ...] = (">=", "<=")
_STATUSES: tuple[Status, ...] = ("pass", "fail", "marginal")
_MAX_DIGITS = 12


# --- classifying and formatting ---------------------------------------------------------------------------


def _passes(x: float, bar: float, op: Op) -> bool:
    return x >= bar if op == ">=" else x <= bar


def classify(value: float | None, low: float | None, high: float | None, bar: float, op: Op) -> Status:
    """Where a figure and its interval stand against a bar; `op` is what passing means.

    pass: the whole interval is on the passing side; fail: the whole interval is on the failing
    side; marginal: it straddles the bar. The span read is the interval widened to take in the
    point, so a point that misses the bar is never a pass. Without an interval (either end None)
    the point decides, and without a point the figure is unmeasured: fail.
    """
    if value is None:
        return "fail"
    if low is None or high is None:
        return "pass" if _passes(value, bar, op) else "fail"
    ends = [_passes(x, bar, op) for x in (min(low, high, value), max(low, high, value))]
    if all(ends):
        return "pass"
    return "fail" if not any(ends) else "marginal"


def decide(status: Status, policy: GatePolicy) -> Decision:
    """The gate's decision on a classified check: a marginal one passes only under `interval`."""
    if status == "marginal":
        return "pass" if policy == "interval" else "fail"
    return "pass" if status == "pass" else "fail"


def _side(x: float, bar: float) -> int:
    return (x > bar) - (x < bar)


def format_against(value: float, bar: float, *, signed: bool = False, digits: int = 3) -> str:
    """`value` with `digits` decimals, more when rounding would put it on the bar or across it.

    >>> format_against(0.512, 0.50)
    '0.512'
    >>> format_against(0.4996, 0.50)
    '0.4996'
    >>> format_against(0.50004, 0.50, signed=True)
    '+0.50004'
    >>> format_against(0.5049, 0.50, signed=True)
    '+0.505'
    >>> format_against(0.70, 0.70)
    '0.700'
    """
    sign = "+" if signed else ""
    for d in range(digits, _MAX_DIGITS + 1):
        text = f"{value:{sign}.{d}f}"
        if _side(float(text), bar) == _side(value, bar):
            return text
    return format(value, sign)  # the shortest repr that reads back as the same float


def format_bar(bar: float, *, signed: bool = False) -> str:
    """A bar with 2 decimals, more when it has them (0.655 stays 0.655).

    >>> format_bar(0.7), format_bar(0.655), format_bar(0.5, signed=True)
    ('0.70', '0.655', '+0.50')
    """
    sign = "+" if signed else ""
    for d in range(2, 7):
        text = f"{bar:{sign}.{d}f}"
        if float(text) == bar:
            return text
    return f"{bar:{sign}.6g}"


# --- checks and verdicts ----------------------------------------------------------------------------------


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class GateCheck:
    """One threshold of the gate, as measured and as decided."""

    name: str
    """What was checked: "overall accuracy", "safety accuracy", "ECE", "confident probe"."""
    value: float | None
    """The point estimate; None when unmeasured."""
    low: float | None
    """Lower end of its 95% interval; None when there is none (ECE) or nothing was measured."""
    high: float | None
    """Upper end of its 95% interval."""
    bar: float
    """The spec's threshold."""
    op: Op
    """What passing means: value >= bar or value <= bar."""
    status: Status
    """pass / fail / marginal (the interval straddles the bar), before the policy. The hard rules
    (unmeasured, too few pairs for a critical dimension, a probe not run) are fail."""
    critical: bool
    """A critical dimension's accuracy: decided by `critical_gate_policy`."""
    decided: Decision
    """The gate's decision once the policy is applied to a marginal status."""
    message: str
    """One human line: the figure, its interval, the bar and the decision."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _optional_float(self.value),
            "low": _optional_float(self.low),
            "high": _optional_float(self.high),
            "bar": self.bar,
            "op": self.op,
            "status": self.status,
            "critical": self.critical,
            "decided": self.decided,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateCheck:
        """The check back from `to_dict`; missing or unknown entries fall back to a failed check."""
        op = data.get("op")
        status = data.get("status")
        decided = data.get("decided")
        return cls(
            name=str(data.get("name", "")),
            value=_optional_float(data.get("value")),
            low=_optional_float(data.get("low")),
            high=_optional_float(data.get("high")),
            bar=float(data.get("bar", 0.0)),
            op=cast(Op, op) if op in _OPS else ">=",
            status=cast(Status, status) if status in _STATUSES else "fail",
            critical=bool(data.get("critical", False)),
            decided="pass" if decided == "pass" or (decided is None and status == "pass") else "fail",
            message=str(data.get("message", "")),
        )


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    failures: list[str]
    """The messages of the checks decided fail."""
    warnings: list[str] = field(default_factory=list)
    """The messages of marginal checks the policy passed: met, but not with confidence."""
    checks: list[GateCheck] = field(default_factory=list)
    """Every threshold checked, in the order of the spec: overall, dimensions, ECE, probes."""

    @classmethod
    def from_checks(cls, checks: Sequence[GateCheck]) -> GateVerdict:
        failures = [c.message for c in checks if c.decided == "fail"]
        warnings = [c.message for c in checks if c.decided == "pass" and c.status == "marginal"]
        return cls(passed=not failures, failures=failures, warnings=warnings, checks=list(checks))

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "warnings": list(self.warnings),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateVerdict:
        """The verdict back from `to_dict`, or from an older stored verdict without checks."""
        return cls(
            passed=bool(data.get("passed", False)),
            failures=[str(f) for f in data.get("failures", [])],
            warnings=[str(w) for w in data.get("warnings", [])],
            checks=[GateCheck.from_dict(c) for c in data.get("checks", [])],
        )


def measured_check(
    name: str,
    value: float | None,
    low: float | None,
    high: float | None,
    bar: float,
    op: Op,
    *,
    policy: GatePolicy,
    critical: bool = False,
    subject: str | None = None,
    signed: bool = False,
) -> GateCheck:
    """A figure classified against its bar and decided under `policy`, with its message.

    `subject` is how the message names the figure (default: `name`); `signed` prints a sign (deltas).
    """
    status = classify(value, low, high, bar, op)
    decided = decide(status, policy)
    tag = " (critical)" if critical else ""
    what = subject or name
    bar_text = format_bar(bar, signed=signed)
    if value is None:
        message = f"{what} unmeasured{tag}"
    else:
        shown = format_against(value, bar, signed=signed)
        if low is not None and high is not None:
            lo, hi = (format_against(x, bar, signed=signed) for x in (low, high))
            shown += f" [{lo}, {hi}]"
        if status == "marginal":
            key = "critical_gate_policy" if critical else "gate_policy"
            outcome = "passes with a warning" if decided == "pass" else "fails"
            message = (
                f"{what} {shown} vs {'min' if op == '>=' else 'max'} {bar_text}{tag}: "
                f"marginal (interval straddles the bar), {outcome} under {key}={policy}"
            )
        else:
            relation = op if _passes(value, bar, op) else ("<" if op == ">=" else ">")
            message = f"{what} {shown} {relation} {bar_text}{tag}"
    return GateCheck(name, value, low, high, bar, op, status, critical, decided, message)


def hard_failure(
    name: str,
    bar: float,
    op: Op,
    message: str,
    *,
    critical: bool = False,
    found: Accuracy | None = None,
) -> GateCheck:
    """A check that fails whatever the policy (unmeasured, too few pairs, a probe not run)."""
    value, low, high = (None, None, None) if found is None else (found.accuracy, found.low, found.high)
    return GateCheck(name, value, low, high, bar, op, "fail", critical, "fail", message)


@dataclass(frozen=True)
class RewardGate:
    """The spec's reward-model thresholds, ready to check reports against."""

    min_accuracy: float
    max_ece: float
    dimension_min: dict[str, float]
    critical: frozenset[str]
    max_probe_delta: dict[str, float]
    min_critical_pairs: int = 50
    gate_policy: GatePolicy = "interval"
    critical_gate_policy: GatePolicy = "strict"

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
            gate_policy=policy.gate_policy,
            critical_gate_policy=policy.critical_gate_policy,
        )

    def check(self, report: RMReport, probes: Sequence[ProbeResult] = ()) -> GateVerdict:
        checks = [
            self.overall_check(report.overall),
            *(
                self.dimension_check(dim, report.by_dimension.get(dim, Accuracy(0, None, None, None)))
                for dim in self.dimension_min
            ),
            self.ece_check(report.calibration.ece),
            *self.probe_checks(probes),
        ]
        return GateVerdict.from_checks(checks)

    def overall_check(self, found: Accuracy) -> GateCheck:
        name, bar = "overall accuracy", self.min_accuracy
        if found.n == 0 or found.accuracy is None:
            return hard_failure(name, bar, ">=", f"{name} unmeasured: no held-out pairs")
        return measured_check(name, found.accuracy, found.low, found.high, bar, ">=", policy=self.gate_policy)

    def dimension_check(self, dim: str, found: Accuracy) -> GateCheck:
        """A dimension's accuracy against its bar; a critical one also needs `min_critical_pairs` pairs."""
        critical, bar, name = dim in self.critical, self.dimension_min[dim], f"{dim} accuracy"
        tag = " (critical)" if critical else ""
        if found.n == 0 or found.accuracy is None:
            return hard_failure(
                name, bar, ">=", f"{name} unmeasured: no held-out pairs{tag}", critical=critical
            )
        policy = self.critical_gate_policy if critical else self.gate_policy
        check = measured_check(
            name, found.accuracy, found.low, found.high, bar, ">=", policy=policy, critical=critical
        )
        if critical and found.n < self.min_critical_pairs and check.status != "fail":
            message = (
                f"{name} {format_against(found.accuracy, bar)} on only {found.n} held-out pairs "
                f"(critical: the spec asks for at least {self.min_critical_pairs})"
            )
            return hard_failure(name, bar, ">=", message, critical=True, found=found)
        return check

    def ece_check(self, ece: float | None) -> GateCheck:
        if ece is None:
            message = f"ECE unmeasured (the spec allows at most {format_bar(self.max_ece)})"
            return hard_failure("ECE", self.max_ece, "<=", message)
        return measured_check("ECE", ece, None, None, self.max_ece, "<=", policy=self.gate_policy)

    def probe_checks(self, probes: Sequence[ProbeResult]) -> list[GateCheck]:
        """One check per probe the spec bounds, in the spec's order."""
        by_name = {p.name: p for p in probes}
        out = []
        for probe, limit in self.max_probe_delta.items():
            result, name = by_name.get(probe), f"{probe} probe"
            if result is None or result.mean_delta is None:
                allowed = format_bar(limit, signed=True)
                message = (
                    f"{name} was not run (the spec allows a mean delta of at most {allowed})"
                    if result is None
                    else f"{name} applied to no response, so its delta is unmeasured"
                )
                out.append(hard_failure(name, limit, "<=", message))
                continue
            figure = (result.mean_delta, result.low, result.high)
            subject = f"{name} mean reward delta"
            check = measured_check(
                name, *figure, limit, "<=", policy=self.gate_policy, subject=subject, signed=True
            )
            out.append(check)
        return out


def check_gate(report: RMReport, probes: Sequence[ProbeResult], spec: Spec) -> GateVerdict:
    """The spec's gate applied to a report and its probe results."""
    return RewardGate.from_spec(spec).check(report, probes)


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
    verdict = GateVerdict.from_dict(record.meta.get("gate", {}))
    return GateStatus(verdict.passed, record.id, verdict.failures)
