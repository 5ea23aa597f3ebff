"""Pure shaping of one loop iteration's stored results into the report's sections.

The loop writes `results[step]` as plain JSON, and an iteration stopped or killed early has only
some steps; older iterations may lack keys added later. So every read here is tolerant: a missing
key, a None or a value of the wrong type becomes "no value" rather than an exception, and a step
that never ran becomes a `NotRun` saying why.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tether.report.model import (
    SEVERITY_ORDER,
    Alert,
    Delta,
    Diagnosis,
    DiffLine,
    Estimate,
    EvalSection,
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

# --- tolerant readers -------------------------------------------------------------------------


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (None, strings, NaN, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int:
    number = num(value)
    return int(number) if number is not None else 0


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def records(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list, skipping anything else."""
    if not isinstance(value, list | tuple):
        return []
    return [mapping(item) for item in value if isinstance(item, Mapping)]


def strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value if v is not None)


def counts(value: Any) -> dict[str, int]:
    return {k: count(v) for k, v in mapping(value).items()}


def first(data: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present and not None: one field under its old and new names."""
    return next((data[k] for k in keys if data.get(k) is not None), None)


def estimate(value: Any, key: str) -> Estimate:
    """An Estimate from {key: x, "low": .., "high": .., "n": ..}."""
    data = mapping(value)
    return Estimate(num(data.get(key)), num(data.get("low")), num(data.get("high")), count(data.get("n")))


def estimates(value: Any, key: str) -> dict[str, Estimate]:
    return {dim: estimate(v, key) for dim, v in mapping(value).items()}


def deltas(value: Any) -> dict[str, Delta]:
    return {
        dim: Delta(
            delta=num(d.get("delta")),
            low=num(d.get("low")),
            high=num(d.get("high")),
            regression=d.get("regression") is True,
            critical=d.get("critical") is True,
        )
        for dim, d in ((k, mapping(v)) for k, v in mapping(value).items())
    }


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


def label_section(data: Mapping[str, Any]) -> LabelSection:
    agreement = mapping(data.get("agreement"))
    raters = tuple(
        Rater(
            name=str(r.get("name", "?")),
            status=str(r.get("status", "")),
            expert_agreement=num(r.get("expert_agreement")),
            peer_agreement=num(r.get("peer_agreement")),
            judgments=count(r.get("judgments")),
            excluded=r.get("excluded") is True,
            reason=text(r.get("reason")),
        )
        for r in records(data.get("raters"))
    )
    return LabelSection(
        batch=str(data.get("batch") or ""),
        tasks=count(data.get("tasks")),
        judgments=count(data.get("judgments")),
        pairs=count(data.get("pairs")),
        by_dimension=counts(data.get("by_dimension")),
        by_stratum=counts(data.get("by_stratum")),
        by_origin=counts(data.get("by_origin")),
        hard_share=num(data.get("hard_share")),
        agreement_pool=num(agreement.get("pool")),
        agreement_alpha=num(agreement.get("alpha")),
        raters=raters,
        collected=data.get("collected") is not False,
        excluded_now=strings(data.get("excluded_now")),
    )


def reward_section(data: Mapping[str, Any]) -> RewardSection:
    return RewardSection(
        artifact=text(data.get("artifact")),
        pairs=count(data.get("pairs")) if data.get("pairs") is not None else None,
        seconds=num(data.get("seconds")),
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


def gate_section(data: Mapping[str, Any], content: Mapping[str, Any] | None = None) -> GateSection:
    """The gate's results; `content` is the iteration's spec content, for the bars it was held to."""
    passed = data.get("passed")
    gold = data.get("gold_by_dimension")
    return GateSection(
        passed=passed if isinstance(passed, bool) else None,
        failures=strings(data.get("failures")),
        warnings=strings(data.get("warnings")),
        overall=estimate(data.get("overall"), "accuracy"),
        by_dimension=estimates(data.get("by_dimension"), "accuracy"),
        gold_by_dimension=estimates(gold, "accuracy") if isinstance(gold, Mapping) else None,
        ece=num(data.get("ece")),
        brier=num(data.get("brier")),
        reliability=tuple(
            # Accepts the report's own names (rm_eval.json: lower, upper, count, mean_probability) too.
            ReliabilityBin(
                bin_low=num(first(b, "bin_low", "lower")) or 0.0,
                bin_high=num(first(b, "bin_high", "upper")) or 0.0,
                mean_predicted=num(first(b, "mean_predicted", "mean_probability")),
                observed=num(b.get("observed")),
                n=count(first(b, "n", "count")),
            )
            for b in records(data.get("reliability"))
        ),
        probes=tuple(
            ProbeDelta(
                name=str(p.get("name", "?")),
                mean_delta=num(p.get("mean_delta")),
                low=num(p.get("low")),
                high=num(p.get("high")),
                n=count(p.get("n")),
            )
            for p in records(data.get("probes"))
        ),
        report_path=text(data.get("report")),
        thresholds=gate_thresholds(content),
    )


def eval_section(data: Mapping[str, Any]) -> EvalSection:
    previous = data.get("vs_previous")
    return EvalSection(
        scores=estimates(data.get("scores"), "score"),
        sft_scores=estimates(data.get("sft_scores"), "score"),
        vs_sft=deltas(data.get("vs_sft")),
        vs_previous=deltas(previous) if isinstance(previous, Mapping) else None,
        gold_utility=num(data.get("gold_utility")),
        sft_gold_utility=num(data.get("sft_gold_utility")),
    )


def diagnosis(written: str, data: Mapping[str, Any] | None, focus: Mapping[str, Any]) -> Diagnosis | NotRun:
    """The diagnosis step's summary and focus, else the iteration's own diagnosis and focus."""
    if data is None and not written and not focus:
        return NotRun("no diagnosis recorded")
    data = mapping(data)
    chosen = mapping(data.get("focus")) or mapping(focus)
    findings = num(chosen.get("findings"))
    return Diagnosis(
        text=written,
        summary=str(data.get("summary") or ""),
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
