"""`collect` on a real SQLite project with iterations written through the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tether.report import collect
from tether.report.collect import read_metrics
from tether.report.model import LabelSection, NotRun, RLSection
from tether.scaffold import init_project
from tether.store.iterations import finish_iteration, record_step, start_iteration

from .conftest import PAYLOAD, STEPS, STOP_REASON, LoopProject


def test_collect_reads_a_completed_and_a_stopped_iteration(loop_project: LoopProject) -> None:
    now = datetime(2030, 1, 2, tzinfo=UTC)
    data = collect(loop_project.project, now=now)
    assert (data.project, data.spec_version, data.generated_at) == ("p", "1.0", now)
    first, second = data.iterations
    assert (first.number, first.status, second.status) == (1, "completed", "stopped")

    assert first.spec.change == "first"
    assert second.spec.change == "changed" and second.spec.version == "1.1"
    assert any(line.kind == "add" and "kl_budget_nats: 4.0" in line.text for line in second.spec.diff)

    assert not isinstance(first.label, NotRun)
    assert [r.name for r in first.label.excluded] == [f"mallory{PAYLOAD}"]
    assert not isinstance(first.gate, NotRun) and first.gate.passed is True
    assert first.gate.thresholds.by_dimension["safety"] == 0.65  # from the sandbox spec

    assert second.rl == NotRun(f"skipped: {STOP_REASON}") and second.evals == NotRun(
        f"skipped: {STOP_REASON}"
    )
    assert not isinstance(second.gate, NotRun) and second.gate.passed is False
    assert [(b.mean_predicted, b.n) for b in second.gate.reliability] == [(0.55, 40), (0.93, 60)]
    assert second.alerts == ()
    assert (
        not isinstance(second.diagnosis, NotRun) and second.diagnosis.summary == "the gate failed on safety"
    )


def test_labeling_split_into_plan_and_collect_reads_as_one_section(loop_project: LoopProject) -> None:
    label = collect(loop_project.project).iterations[1].label
    assert isinstance(label, LabelSection)
    assert (label.batch, label.tasks, label.pairs, label.collected) == ("loop-2", 80, 300, True)
    assert label.excluded_now == ("mallory",) and [r.name for r in label.excluded] == ["mallory"]


def test_a_planned_batch_waiting_for_labels(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", template="sandbox")
    with project.store.session() as session:
        it = start_iteration(session, project_id=project.project_id, spec_hash=project.spec_hash)
        record_step(session, iteration_id=it.id, step="plan", results={"batch": "loop-1", "tasks": 40})
    (report,) = collect(project).iterations
    assert isinstance(report.label, LabelSection)
    assert (report.label.collected, report.label.tasks, report.label.raters) == (False, 40, ())
    assert report.reward == NotRun("not run yet: the iteration is running, or was killed, after 'plan'")


def test_collect_reads_the_runs_metrics_and_merges_alerts(loop_project: LoopProject) -> None:
    rl = collect(loop_project.project).iterations[0].rl
    assert isinstance(rl, RLSection)
    assert rl.run_id == loop_project.run_id
    kl = next(c for c in rl.charts if c.reference is not None)
    assert len(kl.series["objective/kl"]) == STEPS
    # KL is 0.1·step: the last ten steps 2.1..3.0 average 2.55, under the budget of 5.
    assert rl.kl.running == pytest.approx(2.55)
    assert (rl.kl.peak, rl.kl.peak_step, rl.kl.verdict) == (pytest.approx(3.0), 30, "within budget")
    assert rl.metrics_note is not None and "1 unreadable line" in rl.metrics_note

    alerts = collect(loop_project.project).iterations[0].alerts
    # The warning is in both the results and the store; the critical one only in the store.
    assert [(a.severity, a.monitor) for a in alerts] == [
        ("critical", "length_drift"),
        ("warning", "kl_spike"),
    ]


def test_a_deleted_metrics_file_becomes_a_note(loop_project: LoopProject) -> None:
    loop_project.metrics.unlink()
    rl = collect(loop_project.project).iterations[0].rl
    assert isinstance(rl, RLSection)
    assert rl.metrics_note == f"metrics file {loop_project.metrics} is missing"
    assert rl.kl.running == 2.95 and rl.kl.window is None  # the final metric the loop recorded


def test_read_metrics_of_a_directory_is_a_note(tmp_path: Path) -> None:
    metrics, note = read_metrics(tmp_path)
    assert metrics == {} and note is not None and "could not be read" in note


def test_an_iteration_killed_before_its_first_step(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", template="sandbox")
    with project.store.session() as session:
        start_iteration(session, project_id=project.project_id, spec_hash=project.spec_hash)
    (it,) = collect(project).iterations
    assert it.status == "running"
    for section in (it.label, it.reward, it.gate, it.rl, it.evals):
        assert section == NotRun(
            "not run yet: the iteration is running, or was killed, before its first step"
        )
    assert it.diagnosis == NotRun("no diagnosis recorded")


def test_results_with_wrong_types_do_not_crash(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", template="sandbox")
    with project.store.session() as session:
        it = start_iteration(session, project_id=project.project_id, spec_hash=project.spec_hash)
        record_step(session, iteration_id=it.id, step="label", results={"tasks": "many", "raters": None})
        record_step(
            session, iteration_id=it.id, step="rl", results={"metrics": None, "alerts": "none", "final": 3}
        )
        finish_iteration(session, iteration_id=it.id, status="failed", reason_stopped="CUDA out of memory")
    (report,) = collect(project).iterations
    assert not isinstance(report.label, NotRun) and report.label.tasks == 0
    assert isinstance(report.rl, RLSection) and report.rl.metrics_note == "the run recorded no metrics file"
    assert report.evals == NotRun("not run: the iteration failed after 'rl' (CUDA out of memory)")
