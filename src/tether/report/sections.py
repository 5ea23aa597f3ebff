"""Pure shaping of one loop iteration's typed step results into the report's sections.

The loop stores `results[step]` as JSON through the typed results of `tether.feedback.loop.results`,
whose `from_dict` tolerates partial and older rows; the sections here read those types, so a
renamed field is a type error rather than an empty section. A step that never ran becomes a
`NotRun` saying why.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tether.feedback.loop.read import count, counts, first, mapping, num, records, strings, text
from tether.feedback.loop.results import CollectResult, GateResult, PlanResult, ProbeFigures, RewardResult
from tether.feedback.loop.results import Estimate as StepEstimate
from tether.feedback.loop.results import GateAttempt as StepGateAttempt
from tether.feedback.loop.results_policy import DeltaFigures, DiagnoseResult, EvalsResult
from tether.report.model import (
    SEVERITY_ORDER,
    Alert,
    Delta,
    Diagnosis,
    DiffLine,
    Estimate,
    EvalSection,
    GateAttempt,
    GateCheckRow,
    GateSection,
    GateThresholds,
    LabelSection,
    NotRun,
    ProbeDelta,
    Rater,
    ReliabilityBin,
    RewardSection,
    SpecSection,
)

# --- tolerant readers (shared with the loop's typed results) --------------------------------

__all__ = ["count", "counts", "first", "mapping", "num", "records", "strings", "text"]


def estimate(value: Estimate | StepEstimate) -> Estimate:
    return Estimate(value.value, value.low, value.high, value.n)


def estimates(values: Mapping[str, StepEstimate]) -> dict[str, Estimate]:
    return {k: estimate(v) for k, v in values.items()}


def deltas(values: Mapping[str, DeltaFigures]) -> dict[str, Delta]:
    return {k: Delta(v.delta, v.low, v.high, v.regression, v.critical) for k, v in values.items()}


# --- steps that did not run -------------------------------------------------------------------


def not_run(*, status: str, last_step: str, reason_stopped: str | None) -> NotRun:
    """Why an iteration has no results for a step, from how the iteration ended."""
    after = f"after '{last_step}'" if last_step else "before its first step"
    why = f" ({reason_stopped})" if reason_stopped else ""
    if status == "stopped":
        return NotRun(f"not run: the iteration stopped {after}{why}")
    if status == "failed":
        return NotRun(f"not run: the iteration failed {after}{why}")
    if status == "running":
        return NotRun(f"not run yet: the iteration is running, or was killed, {after}")
    return NotRun("not recorded: the iteration finished without results for this step")


def skipped(reason_stopped: str | None) -> NotRun:
    """A step the loop passed over on purpose (a failed gate skips RL and the evals)."""
    return NotRun(f"skipped: {reason_stopped or 'an earlier step stopped the iteration'}")


# --- sections ---------------------------------------------------------------------------------


def label_section(plan: PlanResult, collect: CollectResult | None) -> LabelSection:
    """The plan's batch and, once collected, everything labeled so far (None: labels still awaited)."""
    c = collect or CollectResult()
    raters = tuple(
        Rater(r.name, r.status, r.expert_agreement, r.peer_agreement, r.judgments, r.excluded, r.reason)
        for r in c.raters
    )
    return LabelSection(
        batch=c.batch or plan.batch,
        tasks=c.tasks or plan.tasks,
        judgments=c.judgments,
        pairs=c.pairs,
        by_dimension=c.by_dimension,
        by_stratum=c.by_stratum,
        by_origin=c.by_origin,
        hard_share=c.hard_share if collect is not None else plan.hard_share,
        agreement_pool=c.agreement_pool,
        agreement_alpha=c.agreement_alpha,
        raters=raters,
        collected=collect is not None,
        excluded_now=c.excluded_now,
    )


def reward_section(result: RewardResult) -> RewardSection:
    return RewardSection(
        artifact=result.artifact, pairs=result.pairs, seconds=result.seconds, sources=dict(result.sources)
    )


def gate_thresholds(content: Mapping[str, Any] | None) -> GateThresholds:
    """The gate's bars in a stored spec content (`reward_model` policy and each dimension's gate)."""
    policy = mapping(mapping(content).get("reward_model"))
    by_dimension = {
        str(d.get("id")): value
        for d in records(mapping(content).get("dimensions"))
        if (value := num(mapping(d.get("gate")).get("min_accuracy"))) is not None
    }
    probe_bars = {k: v for k, v in ((k, num(v)) for k, v in mapping(policy.get("max_probe_delta")).items())}
    return GateThresholds(
        min_accuracy=num(policy.get("min_accuracy")),
        by_dimension=by_dimension,
        max_ece=num(policy.get("max_ece")),
        max_probe_delta={k: v for k, v in probe_bars.items() if v is not None},
    )


def probe_deltas(probes: Sequence[ProbeFigures]) -> tuple[ProbeDelta, ...]:
    return tuple(ProbeDelta(p.name, p.mean_delta, p.low, p.high, p.n) for p in probes)


def gate_section(result: GateResult, content: Mapping[str, Any] | None = None) -> GateSection:
    """The gate's results; `content` is the iteration's spec content, for the bars it was held to."""
    gold = result.gold_by_dimension
    return GateSection(
        passed=result.passed,
        failures=result.failures,
        warnings=result.warnings,
        overall=estimate(result.overall),
        by_dimension=estimates(result.by_dimension),
        gold_by_dimension=estimates(gold) if gold is not None else None,
        ece=result.ece,
        brier=result.brier,
        reliability=tuple(
            ReliabilityBin(b.lower, b.upper, b.mean_probability, b.observed, b.count)
            for b in result.reliability
        ),
        probes=probe_deltas(result.probes),
        report_path=result.report,
        thresholds=gate_thresholds(content),
        checks=tuple(GateCheckRow(c.name, c.status, c.decided, c.message) for c in result.checks),
        attempts=tuple(gate_attempt(a) for a in result.attempts),
    )


def gate_attempt(attempt: StepGateAttempt) -> GateAttempt:
    plan = attempt.remediation
    return GateAttempt(
        attempt=attempt.attempt,
        reward_model=attempt.reward_model,
        passed=attempt.passed,
        failures=attempt.failures,
        action=attempt.action,
        remediation_tasks=plan.tasks if plan else 0,
        remediation_by_target=dict(plan.by_target) if plan else {},
        probes=probe_deltas(attempt.probes),
        overall=attempt.overall.value,
    )


def eval_section(result: EvalsResult) -> EvalSection:
    return EvalSection(
        scores=estimates(result.scores),
        sft_scores=estimates(result.sft_scores),
        vs_sft=deltas(result.vs_sft),
        vs_previous=deltas(result.vs_previous) if result.vs_previous is not None else None,
        gold_utility=result.gold_utility,
        sft_gold_utility=result.sft_gold_utility,
    )


def diagnosis(written: str, result: DiagnoseResult | None, focus: Mapping[str, Any]) -> Diagnosis | NotRun:
    """The diagnosis step's summary and focus, else the iteration's own diagnosis and focus."""
    if result is None and not written and not focus:
        return NotRun("no diagnosis recorded")
    chosen = mapping((result.focus if result else None) or focus)
    findings = num(chosen.get("findings"))
    return Diagnosis(
        text=written,
        summary=result.summary if result else "",
        dimensions=strings(chosen.get("dimensions")),
        strata=strings(chosen.get("strata")),
        findings=None if findings is None else int(findings),
        alerts=strings(chosen.get("alerts")),
        reasons=strings(chosen.get("reasons")),
    )


def alert(data: Mapping[str, Any]) -> Alert:
    severity = str(data.get("severity", "info"))
    return Alert(
        monitor=str(data.get("monitor", "?")),
        severity=severity if severity in SEVERITY_ORDER else "info",
        step=count(data.get("step")),
        condition=str(data.get("condition") or ""),
        message=str(data.get("message") or ""),
    )


def merge_alerts(recorded: Sequence[Alert], stored: Sequence[Alert]) -> tuple[Alert, ...]:
    """The union of the alerts in the loop's results and in the store, most severe first, then by step.

    Both normally hold the same alerts; either can lack some (a run killed before the loop recorded
    its results, or a store written by another machine), so neither alone is trusted.
    """
    unique = {(a.monitor, a.step, a.condition, a.message): a for a in (*recorded, *stored)}
    return tuple(sorted(unique.values(), key=lambda a: (SEVERITY_ORDER.index(a.severity), a.step)))


# --- spec ---------------------------------------------------------------------------------------


def spec_yaml(content: Mapping[str, Any]) -> list[str]:
    """The spec as the YAML a user wrote it in, one line per entry, for a readable diff."""
    dumped = yaml.safe_dump(dict(content), sort_keys=False, allow_unicode=True, width=100)
    return dumped.splitlines()


def spec_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, old_label: str, new_label: str
) -> tuple[DiffLine, ...]:
    """A unified diff of two spec contents' YAML; empty when they are equal."""
    lines = difflib.unified_diff(
        spec_yaml(old), spec_yaml(new), fromfile=old_label, tofile=new_label, n=2, lineterm=""
    )
    return tuple(DiffLine(_diff_kind(line), line) for line in lines)


def _diff_kind(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "header"
    return {"@": "hunk", "+": "add", "-": "remove"}.get(line[:1], "context")


def spec_section(
    spec_hash: str, previous_hash: str | None, contents: Mapping[str, Mapping[str, Any]]
) -> SpecSection:
    """The iteration's spec version and its change from the previous iteration's.

    `contents` maps spec hashes to stored spec contents (the spec_versions table).
    """
    content = contents.get(spec_hash)
    name, version = (_field(content, "name"), _field(content, "version")) if content else (None, None)
    if previous_hash is None:
        return SpecSection(spec_hash, name, version, "first")
    old = contents.get(previous_hash)
    if previous_hash == spec_hash:
        return SpecSection(spec_hash, name, version, "unchanged", _field(old, "version"))
    if content is None or old is None:
        return SpecSection(spec_hash, name, version, "unknown", _field(old, "version"))
    diff = spec_diff(
        old,
        content,
        old_label=f"spec {_field(old, 'version')} ({previous_hash[:12]})",
        new_label=f"spec {version} ({spec_hash[:12]})",
    )
    return SpecSection(
        spec_hash, name, version, "changed" if diff else "unchanged", _field(old, "version"), diff
    )


def _field(content: Mapping[str, Any] | None, key: str) -> str | None:
    return None if content is None or content.get(key) is None else str(content[key])
