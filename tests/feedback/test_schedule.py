"""Scheduled rater recalibration: who is due under the spec's every-N-days / every-N-judgments rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from tether.cli.main import app
from tether.feedback.schedule import active_since, apply_recalibration, due_reason, raters_due
from tether.labeling import raters as rater_ops
from tether.labeling.batches import plan_batch
from tether.project import Project
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.store.raters import get_rater, rater_events

from ..labeling.conftest import sft_pairs
from .conftest import with_policy
from .flow import active_rater, judge_open_slots

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_due_when_any_set_limit_is_reached() -> None:
    since = NOW - timedelta(days=10)
    assert (
        due_reason(now=NOW, active_since=since, judgments_since=5, every_days=None, every_judgments=None)
        is None
    )
    assert (
        due_reason(now=NOW, active_since=since, judgments_since=5, every_days=11, every_judgments=6) is None
    )
    assert (
        due_reason(now=NOW, active_since=since, judgments_since=5, every_days=10, every_judgments=None)
        == "10 days since last calibrated (every 10 days)"
    )
    both = due_reason(now=NOW, active_since=since, judgments_since=6, every_days=7, every_judgments=6)
    assert both == "10 days since last calibrated (every 7 days); 6 judgments since last calibrated (every 6)"


def test_the_clock_starts_when_the_rater_last_became_active() -> None:
    from tether.store.raters import RaterRecord

    created = NOW - timedelta(days=30)
    rater = RaterRecord(1, 1, "ana", "human", "active", False, 1, {}, "h", created)
    events = [
        ("calibrating", created),
        ("active", NOW - timedelta(days=20)),
        ("active", NOW - timedelta(days=2)),
    ]
    assert active_since(rater, events) == NOW - timedelta(days=2)
    assert active_since(rater, []) == created


def scheduled(project: Project, **schedule: int) -> Project:
    project = with_policy(project, "labeling", hidden_anchor_rate=0.0, **schedule)
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    plan_batch(project, n=20, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    return project


def test_raters_past_their_judgment_budget_are_due_and_go_back_to_calibration(project: Project) -> None:
    project = scheduled(project, recalibrate_every_judgments=3)
    for name in ("ana", "bo"):
        active_rater(project, name)
    rater_ops.add_person(project, name="cy")  # still calibrating: not scheduled
    rater_ops.add_person(project, name="root", admin=True)
    assert judge_open_slots(project, "ana", limit=3) == 3
    assert judge_open_slots(project, "bo", limit=1) == 1
    due = raters_due(project)
    assert [(d.name, d.reason) for d in due] == [("ana", "3 judgments since last calibrated (every 3)")]
    apply_recalibration(project, due)
    with project.store.session() as session:
        ana = get_rater(session, project_id=project.project_id, name="ana")
        last = rater_events(session, rater_id=ana.id)[-1]
    assert (ana.status, ana.calibration_round) == ("calibrating", 2)
    assert last.reason == "scheduled recalibration: 3 judgments since last calibrated (every 3)"
    assert raters_due(project) == []


def test_raters_are_due_after_the_days_set(sqlite_project: Project) -> None:
    project = scheduled(sqlite_project, recalibrate_every_days=7)
    active_rater(project, "ana")
    assert raters_due(project) == []
    later = datetime.now(UTC) + timedelta(days=8)
    assert [d.name for d in raters_due(project, now=later)] == ["ana"]


def test_no_schedule_means_nobody_is_due_and_the_cli_says_so(sqlite_project: Project) -> None:
    active_rater(sqlite_project, "ana")
    assert raters_due(sqlite_project, now=NOW + timedelta(days=3650)) == []
    result = CliRunner().invoke(app, ["feedback", "recalibrate", "--project", str(sqlite_project.root)])
    assert result.exit_code == 0 and "no schedule" in result.output


def test_cli_lists_due_raters_and_applies_with_apply(sqlite_project: Project) -> None:
    project = scheduled(sqlite_project, recalibrate_every_judgments=2)
    active_rater(project, "ana")
    judge_open_slots(project, "ana", limit=2)
    runner = CliRunner()
    listed = runner.invoke(app, ["feedback", "recalibrate", "--project", str(project.root)])
    assert listed.exit_code == 0 and "ana: 2 judgments" in listed.output and "--apply" in listed.output
    applied = runner.invoke(app, ["feedback", "recalibrate", "--apply", "--project", str(project.root)])
    assert applied.exit_code == 0 and "1 raters sent back" in applied.output
    with project.store.session() as session:
        assert get_rater(session, project_id=project.project_id, name="ana").status == "calibrating"
