"""Runs and alerts round trips, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import pytest

from tether.errors import TetherInputError
from tether.store import (
    add_alerts,
    create_run,
    ensure_project,
    finish_run,
    get_run,
    list_alerts,
    list_runs,
    open_store,
    register_artifact,
)
from tether.store.engine import Store


@pytest.fixture
def store(db_url: str) -> Store:
    return open_store(db_url)


def alert(step: int, monitor: str, severity: str = "warning") -> dict[str, object]:
    return {
        "step": step,
        "monitor": monitor,
        "severity": severity,
        "condition": "c",
        "message": f"{monitor} at {step}",
        "evidence": {"kl": 1.5, "window": 10, "key": "gen/length_mean"},
    }


def test_a_run_is_created_running_and_finished_with_its_reason_and_checkpoint(store: Store) -> None:
    with store.session() as s:
        project = ensure_project(s, name="p")
        run = create_run(
            s,
            project_id=project.id,
            kind="rl",
            config={"algo": "ppo"},
            spec_hash="a" * 64,
            meta={"gate": {"forced": True}},
            gate_overridden=True,
        )
        artifact = register_artifact(
            s, project_id=project.id, kind="rl_checkpoint", path="ck", content_hash="h", spec_hash="a" * 64
        )
    assert run.id.startswith("rl-") and run.status == "running" and run.ended_at is None
    with store.session() as s:
        done = finish_run(
            s, run_id=run.id, status="stopped", reason="KL budget", artifact_id=artifact.id, meta={"steps": 7}
        )
    assert done.status == "stopped" and done.reason_stopped == "KL budget" and done.artifact_id == artifact.id
    assert done.meta == {"gate": {"forced": True}, "steps": 7} and done.gate_overridden
    with store.session() as s:
        again = get_run(s, run_id=run.id)
        other = create_run(s, project_id=project.id, kind="eval", config={}, spec_hash="a" * 64)
        assert [r.id for r in list_runs(s, project_id=project.id)] == [run.id, other.id]
        assert [r.id for r in list_runs(s, project_id=project.id, kind="rl")] == [run.id]
        assert get_run(s, run_id="rl-missing") is None
    assert again is not None and again.ended_at is not None and again.ended_at.tzinfo is not None
    assert again.config == {"algo": "ppo"}
    store.close()


def test_finish_run_refuses_unknown_runs_and_statuses(store: Store) -> None:
    with store.session() as s:
        project = ensure_project(s, name="p")
        run = create_run(s, project_id=project.id, kind="rl", config={}, spec_hash="a" * 64)
    with pytest.raises(TetherInputError, match="not 'running'"), store.session() as s:
        finish_run(s, run_id=run.id, status="running")
    with pytest.raises(TetherInputError, match="not in the store"), store.session() as s:
        finish_run(s, run_id="rl-nope", status="failed")
    store.close()


def test_alerts_are_stored_per_run_in_order(store: Store) -> None:
    with store.session() as s:
        project = ensure_project(s, name="p")
        first = create_run(s, project_id=project.id, kind="rl", config={}, spec_hash="a" * 64)
        second = create_run(s, project_id=project.id, kind="rl", config={}, spec_hash="a" * 64)
        assert (
            add_alerts(
                s, run_id=first.id, alerts=[alert(3, "length_creep"), alert(9, "kl_budget", "critical")]
            )
            == 2
        )
        assert add_alerts(s, run_id=second.id, alerts=[alert(1, "kl_spike")]) == 1
        assert add_alerts(s, run_id=second.id, alerts=[]) == 0
    with store.session() as s:
        mine = list_alerts(s, run_id=first.id)
        critical = list_alerts(s, project_id=project.id, severity="critical")
        everything = list_alerts(s, project_id=project.id)
    assert [(a.step, a.monitor) for a in mine] == [(3, "length_creep"), (9, "kl_budget")]
    assert mine[0].evidence == {"kl": 1.5, "window": 10, "key": "gen/length_mean"}
    assert mine[0].project_id == project.id and mine[0].created_at.tzinfo is not None
    assert [a.monitor for a in critical] == ["kl_budget"] and len(everything) == 3
    store.close()


def test_bad_alerts_are_refused(store: Store) -> None:
    with store.session() as s:
        project = ensure_project(s, name="p")
        run = create_run(s, project_id=project.id, kind="rl", config={}, spec_hash="a" * 64)
    with pytest.raises(TetherInputError, match="severity must be one of"), store.session() as s:
        add_alerts(s, run_id=run.id, alerts=[alert(1, "x", "fatal")])
    with pytest.raises(TetherInputError, match="not in the store"), store.session() as s:
        add_alerts(s, run_id="rl-nope", alerts=[alert(1, "x")])
    with pytest.raises(TetherInputError, match="needs a run_id or a project_id"), store.session() as s:
        list_alerts(s)
    store.close()
