"""The loop's state machine on a real SQLite project: step order, stops, skips, waits and resume.

The steps here are small functions that write what they saw; the stages' real steps run in the
sandbox demo test (tests/cli/test_demo.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.feedback.loop import STEPS, IterationContext, LoopConfig, StepOutcome, pending_steps, run_loop
from tether.project import Project
from tether.scaffold import init_project
from tether.store.iterations import list_iterations


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "p", template="sandbox")


class Recorder:
    """Steps that record their calls; `behave[step]` may return a special outcome once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.behave: dict[str, StepOutcome | Exception] = {}

    def step(self, name: str):  # type: ignore[no-untyped-def]
        def run(ctx: IterationContext) -> StepOutcome:
            self.calls.append((ctx.number, name))
            special = self.behave.pop(name, None)
            if isinstance(special, Exception):
                raise special
            if special is not None:
                return special
            focus = {"weights": {"safety": 1.0}} if name == "diagnose" else None
            return StepOutcome(results={"seen_last": ctx.last.number if ctx.last else None}, focus=focus)

        return run

    def steps(self) -> dict[str, object]:
        return {name: self.step(name) for name in STEPS}


def _run(project: Project, rec: Recorder, iterations: int = 1):  # type: ignore[no-untyped-def]
    return run_loop(project, LoopConfig(iterations=iterations), rec.steps(), say=lambda _: None)  # type: ignore[arg-type]


def test_two_iterations_run_every_step_in_order_and_the_second_sees_the_first(project: Project) -> None:
    rec = Recorder()
    result = _run(project, rec, iterations=2)
    assert result.status == "completed"
    assert rec.calls == [(1, s) for s in STEPS] + [(2, s) for s in STEPS]
    with project.store.session() as session:
        done = list_iterations(session, project_id=project.project_id)
    assert [(i.number, i.status, i.step) for i in done] == [
        (1, "completed", "diagnose"),
        (2, "completed", "diagnose"),
    ]
    assert done[1].results["plan"]["seen_last"] == 1
    assert done[0].focus == {"weights": {"safety": 1.0}}


def test_a_failed_gate_skips_to_the_diagnosis_stops_and_resumes_at_collect(project: Project) -> None:
    rec = Recorder()
    rec.behave["gate"] = StepOutcome(
        results={"passed": False}, stop="gate failed: safety", skip_to="diagnose"
    )
    result = _run(project, rec, iterations=2)
    assert (result.status, result.reason) == ("stopped", "gate failed: safety")
    assert [s for _, s in rec.calls] == ["plan", "collect", "reward", "gate", "diagnose"]
    with project.store.session() as session:
        (it,) = list_iterations(session, project_id=project.project_id)
    assert it.status == "stopped" and it.results["rl"] == {"skipped": True}
    assert it.results["loop"]["stopped_at"] == "gate"
    rec.calls.clear()
    assert _run(project, rec).status == "completed"
    # More labels fix a failed gate: the export, the reward model and the gate are all redone.
    assert rec.calls == [(1, s) for s in ("collect", "reward", "gate", "rl", "evals", "diagnose")]


def test_a_crash_leaves_the_iteration_resumable_at_the_step_that_crashed(project: Project) -> None:
    rec = Recorder()
    rec.behave["rl"] = RuntimeError("killed")
    with pytest.raises(RuntimeError):
        _run(project, rec)
    with project.store.session() as session:
        (it,) = list_iterations(session, project_id=project.project_id)
    assert (it.status, it.step) == ("running", "gate")
    assert pending_steps(it) == ["rl", "evals", "diagnose"]
    rec.calls.clear()
    assert _run(project, rec).status == "completed"
    assert rec.calls == [(1, "rl"), (1, "evals"), (1, "diagnose")]


def test_waiting_for_raters_ends_the_command_without_finishing_the_step(project: Project) -> None:
    rec = Recorder()
    rec.behave["collect"] = StepOutcome(wait="12 labeling slots are still open")
    result = _run(project, rec)
    assert (result.status, result.reason) == ("waiting", "12 labeling slots are still open")
    with project.store.session() as session:
        (it,) = list_iterations(session, project_id=project.project_id)
    assert (it.status, it.step) == ("running", "plan")
    rec.calls.clear()
    assert _run(project, rec).status == "completed"
    assert rec.calls[0] == (1, "collect")


def test_a_gate_with_retries_rewinds_to_collect_and_the_rerun_sees_the_attempts(project: Project) -> None:
    rec = Recorder()
    seen: list[object] = []
    attempts = iter(
        [
            StepOutcome(results={"attempts": [{"action": "remediate"}]}, rewind_to="collect"),
            StepOutcome(results={"attempts": [{"action": "remediate"}, {"action": "pass"}]}),
        ]
    )

    def gate(ctx: IterationContext) -> StepOutcome:
        rec.calls.append((ctx.number, "gate"))
        seen.append(ctx.result("gate").get("attempts"))
        return next(attempts)

    steps = {**rec.steps(), "gate": gate}
    result = run_loop(project, LoopConfig(), steps, say=lambda _: None)  # type: ignore[arg-type]
    assert result.status == "completed"
    names = [s for _, s in rec.calls]
    assert names == [
        "plan",
        "collect",
        "reward",
        "gate",
        "collect",
        "reward",
        "gate",
        "rl",
        "evals",
        "diagnose",
    ]
    assert seen == [None, [{"action": "remediate"}]]
    with project.store.session() as session:
        (it,) = list_iterations(session, project_id=project.project_id)
    assert [a["action"] for a in it.results["gate"]["attempts"]] == ["remediate", "pass"]


def test_a_rewind_survives_a_kill_during_the_rerun(project: Project) -> None:
    rec = Recorder()
    rec.behave["gate"] = StepOutcome(results={"attempts": [{"action": "remediate"}]}, rewind_to="collect")
    calls = {"collect": 0}

    def collect(ctx: IterationContext) -> StepOutcome:
        calls["collect"] += 1
        if calls["collect"] == 2:
            raise RuntimeError("killed while raters label the targeted batch")
        return StepOutcome(results={})

    steps = {**rec.steps(), "collect": collect}
    with pytest.raises(RuntimeError):
        run_loop(project, LoopConfig(), steps, say=lambda _: None)  # type: ignore[arg-type]
    with project.store.session() as session:
        (it,) = list_iterations(session, project_id=project.project_id)
    assert pending_steps(it)[:3] == ["collect", "reward", "gate"]
    assert it.results["gate"]["attempts"] == [{"action": "remediate"}]


def test_a_step_may_not_rewind_forward(project: Project) -> None:
    rec = Recorder()
    rec.behave["gate"] = StepOutcome(rewind_to="rl")
    with pytest.raises(ValueError, match="earlier step"):
        _run(project, rec)
