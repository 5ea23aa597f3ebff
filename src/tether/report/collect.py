"""Gather everything the report shows: iterations, spec versions and alerts from the store, and
each RL run's metrics.jsonl from disk.

    from tether.project import Project
    from tether.report import collect
    data = collect(Project.open(Path("my-project")))

Nothing here fails on a partial loop: a step that did not run, a metrics file that was deleted
or a spec version missing from the store each become a note in the section concerned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tether.artifacts import POLICY_KIND, latest
from tether.feedback.loop.results import CollectResult, GateResult, PlanResult, RewardResult
from tether.feedback.loop.results_policy import DiagnoseResult, EvalsResult, RLResult
from tether.project import Project
from tether.report.curves import Metrics, parse_metrics, rl_section
from tether.report.model import Alert, IterationReport, LabelSection, NotRun, ReportData, RLSection
from tether.report.sections import (
    alert,
    diagnosis,
    eval_section,
    gate_section,
    label_section,
    mapping,
    merge_alerts,
    not_run,
    reward_section,
    skipped,
    spec_section,
    text,
)
from tether.store import AlertRecord, list_alerts, list_spec_versions
from tether.store.iterations import IterationRecord, list_iterations

S = TypeVar("S")


def collect(project: Project, *, now: datetime | None = None) -> ReportData:
    """Every loop iteration of the project, oldest first, shaped for the report."""
    with project.store.session() as session:
        iterations = list_iterations(session, project_id=project.project_id)
        contents = {
            v.spec_hash: v.content for v in list_spec_versions(session, project_id=project.project_id)
        }
        stored = {
            run_id: list_alerts(session, run_id=run_id)
            for run_id in (_run_id(it) for it in iterations)
            if run_id is not None
        }
    reports = []
    for i, record in enumerate(iterations):
        previous_hash = iterations[i - 1].spec_hash if i else None
        reports.append(iteration_report(project, record, previous_hash, contents, stored))
    return ReportData(
        project=project.config.name,
        spec_name=project.spec.name,
        spec_version=project.spec.version,
        spec_hash=project.spec_hash,
        generated_at=now or datetime.now(UTC),
        iterations=tuple(reports),
        policy=_policy(project),
    )


def _policy(project: Project) -> str | None:
    """`policy-… (name)` of the SFT policy every stage defaults to, if one is registered."""
    record = latest(project, POLICY_KIND)
    if record is None:
        return None
    name = record.meta.get("name")
    return f"{record.id} ({name})" if name else record.id


def _run_id(record: IterationRecord) -> str | None:
    run_id = mapping(record.results.get("rl")).get("run_id")
    return str(run_id) if run_id else None


def iteration_report(
    project: Project,
    record: IterationRecord,
    previous_hash: str | None,
    contents: Mapping[str, Mapping[str, Any]],
    stored_alerts: Mapping[str, Sequence[AlertRecord]],
) -> IterationReport:
    rl = step_input(record, "rl")
    rl_result = None if isinstance(rl, NotRun) else RLResult.from_dict(rl)
    recorded = [alert(asdict(a)) for a in rl_result.alerts] if rl_result else []
    run_id = _run_id(record)
    stored = [_alert(a) for a in stored_alerts.get(run_id, ())] if run_id else []
    diagnose = step_input(record, "diagnose")
    return IterationReport(
        number=record.number,
        status=record.status,
        last_step=record.step,
        reason_stopped=record.reason_stopped,
        started_at=record.started_at,
        ended_at=record.ended_at,
        spec=spec_section(record.spec_hash, previous_hash, contents),
        label=_label(record),
        reward=_section(record, "reward", lambda d: reward_section(RewardResult.from_dict(d))),
        gate=_section(
            record, "gate", lambda d: gate_section(GateResult.from_dict(d), contents.get(record.spec_hash))
        ),
        rl=_rl(project, rl_result) if rl_result is not None else _not_run_rl(rl),
        evals=_section(record, "evals", lambda d: eval_section(EvalsResult.from_dict(d))),
        diagnosis=diagnosis(
            record.diagnosis,
            None if isinstance(diagnose, NotRun) else DiagnoseResult.from_dict(diagnose),
            record.focus,
        ),
        alerts=merge_alerts(recorded, stored),
        stopped_at=text(mapping(record.results.get("loop")).get("stopped_at"))
        if record.status == "stopped"
        else None,
    )


def _not_run_rl(found: dict[str, Any] | NotRun) -> NotRun:
    return found if isinstance(found, NotRun) else NotRun("no RL results recorded")


def _section(record: IterationRecord, step: str, build: Callable[[dict[str, Any]], S]) -> S | NotRun:
    found = step_input(record, step)
    return found if isinstance(found, NotRun) else build(found)


def _label(record: IterationRecord) -> LabelSection | NotRun:
    """Labeling figures are the plan's and, once collected, the collection's (older rows: "label")."""
    results = record.results
    if "label" in results:
        old = step_input(record, "label")
        if isinstance(old, NotRun):
            return old
        return label_section(PlanResult.from_dict(old), CollectResult.from_dict(old))
    if not any(s in results for s in LABEL_STEPS):
        return not_run(status=record.status, last_step=record.step, reason_stopped=record.reason_stopped)
    collect = results.get("collect")
    if _skipped(collect):
        return skipped(record.reason_stopped)
    plan = PlanResult.from_dict(results.get("plan"))
    return label_section(plan, CollectResult.from_dict(collect) if isinstance(collect, Mapping) else None)


LABEL_STEPS = ("plan", "collect")
"""`tether loop` labels in two steps: plan a batch, then collect its labels and export them."""


def step_input(record: IterationRecord, step: str) -> dict[str, Any] | NotRun:
    """The stored results of a step, or why there are none (it never ran, or the loop skipped it)."""
    results = record.results
    value = results.get(step)
    if _skipped(value):
        return skipped(record.reason_stopped)
    if isinstance(value, Mapping):
        return mapping(value)
    return not_run(status=record.status, last_step=record.step, reason_stopped=record.reason_stopped)


def _skipped(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("skipped") is True


def _alert(record: AlertRecord) -> Alert:
    return alert(
        {
            "monitor": record.monitor,
            "severity": record.severity,
            "step": record.step,
            "condition": record.condition,
            "message": record.message,
        }
    )


def _rl(project: Project, result: RLResult) -> RLSection:
    if not result.metrics:
        return rl_section(result, {}, "the run recorded no metrics file")
    metrics, note = read_metrics(project.resolve(result.metrics))
    return rl_section(result, metrics, note)


def read_metrics(path: Path) -> tuple[Metrics, str | None]:
    """A run's metrics.jsonl, and a note when it is missing or has unreadable lines."""
    try:
        with path.open(encoding="utf-8") as handle:
            metrics, bad = parse_metrics(handle)
    except FileNotFoundError:
        return {}, f"metrics file {path} is missing"
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"metrics file {path} could not be read: {exc}"
    note = f"{bad} unreadable line{'s' if bad != 1 else ''} in {path} skipped" if bad else None
    return metrics, note
