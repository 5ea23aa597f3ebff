"""`tether loop`: short RLHF iterations with a diagnosis between them, resumable step by step.

    tether loop --iterations 2        # in the sandbox: label, train, gate, RL, evals, diagnose, twice
    tether loop                       # after a kill or a stop: continues the unfinished iteration

One iteration runs the steps of `STEPS` in order; each finished step is recorded in the store
(`tether.store.iterations`) with its artifacts and figures before the next begins, so a loop killed
anywhere resumes at the first unfinished step (an RL run killed mid-way resumes from its last
checkpoint, which is exact: see `tether.rl`). The iteration stops, says why and waits for the user
when its reward model still fails the gate after its retries, or its RL run raises a critical
alert; in a project with real raters, the "collect" step also ends the command while labeling slots
are still open (a targeted batch after a failed gate waits for people the same way).

A failed gate does not stop the iteration at once: the gate step plans a targeted labeling batch
from what failed and answers `rewind_to="collect"`, so the labels are collected, the reward model
retrained and the gate rerun, up to the spec's `loop.max_gate_retries` times (see
`tether.feedback.loop.remediation`).

This module is the state machine only: it knows the order of the steps and what a step may answer.
The steps themselves (which call every stage's library) are in the sibling modules, and
`default_steps()` maps each name to its function. The CLI passes `LoopHooks` (spinners, progress
bars); the library never prints by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tether.store.iterations import (
    IterationRecord,
    finish_iteration,
    latest_iteration,
    list_iterations,
    record_loop_note,
    record_step,
    reopen_iteration,
    start_iteration,
)

if TYPE_CHECKING:
    from tether.project import Project

LOOP_NOTE = "loop"
"""Key of `results` where the loop itself notes where and why an iteration stopped."""

STEPS = ("plan", "collect", "reward", "gate", "rl", "evals", "diagnose")
"""(1) plan a labeling batch with the last diagnosis's focus; (2) collect its labels and export them;
(3) train the reward model; (4) evaluate and gate it; (5) a short RL run; (6) the eval suites against
SFT and the previous iteration; (7) diagnose: red-team search, routing, and the next focus."""


@dataclass(frozen=True)
class LoopConfig:
    """How `tether loop` runs; the labeling volume and RL length default to the spec's."""

    iterations: int = 1
    """Iterations to finish in this invocation (a resumed one counts)."""
    pairs: int | None = None
    """Comparison tasks per labeling batch (default: spec `loop.pairs_per_iteration`)."""
    first_pairs: int | None = None
    """Tasks in the project's first batch (default: spec `loop.first_iteration_pairs`, else `pairs`)."""
    rm_epochs: int = 5
    """Reward-model training epochs over everything labeled so far."""
    rl_steps: int | None = None
    """RL steps per run (default: spec `rl.steps_per_run`)."""
    rl_save_every: int | None = None
    """Periodic RL checkpoints every N steps, where a killed loop resumes (default: RLConfig's)."""
    redteam_prompts: int = 200
    """Prompts the diagnosis's automated red-team search samples (0 turns the search off)."""
    redteam_top: int = 50
    """Top red-team findings routed to the next labeling batch."""
    seed: int = 0
    """Base seed; iteration k uses seed + k wherever it draws."""
    max_gate_retries: int | None = None
    """Targeted relabel-retrain-regate rounds after a failed gate (default: spec `loop.max_gate_retries`)."""
    remediation_pairs: int | None = None
    """Targeted comparison tasks per failed gate check (default: spec `loop.remediation_pairs`)."""
    pool: str | None = None
    """Sandbox only: the simulated rater pool YAML (default: the built-in pool)."""
    trackers: tuple[str, ...] = ()
    """Experiment trackers that every reward-model training and RL run logs to (`tether.trackers`)."""


@dataclass
class StepOutcome:
    """What a step reports back to the loop."""

    results: dict[str, Any] = field(default_factory=dict)
    """The step's figures, stored as `results[step]` (their shapes are documented in docs/loop.md)."""
    artifacts: dict[str, str] = field(default_factory=dict)
    """Artifact ids the step produced, by role (e.g. {"reward_model": "reward_model-..."})."""
    stop: str | None = None
    """Why the iteration must stop after this step (a failing gate, a critical alert)."""
    skip_to: str | None = None
    """Jump to this later step (a failed gate skips RL and the evals and goes to the diagnosis)."""
    wait: str | None = None
    """Why the step is not finished yet (open labeling slots): the command ends, the step reruns later."""
    rewind_to: str | None = None
    """Rerun the steps from this earlier one (a failed gate with retries left: collect its targeted
    batch, retrain, re-gate). The step's results are recorded first, so the rerun step sees them."""
    focus: dict[str, Any] | None = None
    diagnosis: str | None = None


ProgressCallback = Callable[[int, int, dict[str, float]], None]


@contextmanager
def _no_progress() -> Iterator[ProgressCallback | None]:
    yield None


@contextmanager
def _no_rl_progress() -> Iterator[tuple[ProgressCallback | None, Callable[[str], None] | None]]:
    yield None, None


@dataclass(frozen=True)
class LoopHooks:
    """How the steps show progress: the CLI passes spinners and bars, a library caller may pass none."""

    status: Callable[[str], AbstractContextManager[object]] = lambda _text: nullcontext()
    """A context manager shown while a long step part runs (a spinner with the text)."""
    rm_progress: Callable[[], AbstractContextManager[ProgressCallback | None]] = _no_progress
    """Yields the reward-model training's `on_step(step, total, metrics)` callback, or None."""
    rl_progress: Callable[
        [], AbstractContextManager[tuple[ProgressCallback | None, Callable[[str], None] | None]]
    ] = _no_rl_progress
    """Yields the RL run's (on_step, on_message) callbacks, or Nones."""


@dataclass(frozen=True)
class IterationContext:
    """What a step sees: the project, the loop's config, this iteration and the ones before it."""

    project: Project
    cfg: LoopConfig
    iteration: IterationRecord
    previous: list[IterationRecord]
    say: Callable[[str], None]
    hooks: LoopHooks = field(default_factory=LoopHooks)

    @property
    def number(self) -> int:
        return self.iteration.number

    @property
    def seed(self) -> int:
        return self.cfg.seed + self.iteration.number

    @property
    def last(self) -> IterationRecord | None:
        """The latest earlier iteration that finished (its focus steers this one)."""
        done = [i for i in self.previous if i.status in ("completed", "stopped")]
        return done[-1] if done else None

    @property
    def pairs(self) -> int:
        """Tasks to plan in this iteration's batch: the first batch may be larger (a reward model's start)."""
        loop = self.project.spec.loop
        later = self.cfg.pairs or loop.pairs_per_iteration
        if self.number == 1:
            return self.cfg.first_pairs or loop.first_iteration_pairs or later
        return later

    def result(self, step: str) -> dict[str, Any]:
        return dict(self.iteration.results.get(step) or {})

    @property
    def gate_attempts(self) -> int:
        """Gate attempts recorded so far in this iteration (a remediation reruns collect, reward, gate)."""
        return len(self.result("gate").get("attempts") or [])

    def named(self, stem: str) -> str:
        """`stem` for this iteration's first pass, `stem-r<k>` after k gate attempts: new directories
        for a rerun's export and reward model, since a registered artifact's directory never changes."""
        k = self.gate_attempts
        return f"{stem}-{self.number}" + (f"-r{k}" if k else "")


class Step(Protocol):
    def __call__(self, ctx: IterationContext, /) -> StepOutcome: ...


@dataclass(frozen=True)
class LoopResult:
    iterations: list[IterationRecord]
    """The iterations this invocation worked on, as they ended."""
    status: str
    """completed (all asked iterations done), stopped (a gate or a critical alert), or waiting (labels)."""
    reason: str | None = None


def pending_steps(record: IterationRecord) -> list[str]:
    """The steps still to run: those after the last finished one (all of them for a new iteration).

    >>> from datetime import UTC, datetime
    >>> r = IterationRecord(1, 1, 1, "running", "gate", {}, {}, {}, "", None, "h", datetime.now(UTC), None)
    >>> pending_steps(r)
    ['rl', 'evals', 'diagnose']
    """
    if record.step == "":
        return list(STEPS)
    if record.step not in STEPS:
        raise ValueError(f"iteration {record.number} records an unknown step {record.step!r}")
    return list(STEPS[STEPS.index(record.step) + 1 :])


def _open_iteration(project: Project) -> tuple[IterationRecord, list[IterationRecord]]:
    """The unfinished iteration to continue (a stopped one reruns its stopping step), else a new one."""
    with project.store.session() as session:
        last = latest_iteration(session, project_id=project.project_id)
        if last is not None and last.status in ("running", "stopped", "failed"):
            if last.status != "running":
                last = _rewind_to_stop(session, last)
            current = last
        else:
            current = start_iteration(session, project_id=project.project_id, spec_hash=project.spec_hash)
        earlier = [
            i for i in list_iterations(session, project_id=project.project_id) if i.number < current.number
        ]
    return current, earlier


RESUME_AT = {"gate": "collect"}
"""Where a stopped iteration resumes when not at the step that stopped it: a failed gate is fixed
with more labels, so the export, the reward model and the gate are all redone."""


def _rewind_to_stop(session: Any, record: IterationRecord) -> IterationRecord:
    """A stopped iteration resumes at the step that stopped it (or `RESUME_AT` that step)."""
    stopped_at = str((record.results.get(LOOP_NOTE) or {}).get("stopped_at") or "")
    reopened = reopen_iteration(session, iteration_id=record.id)
    if stopped_at in STEPS:
        restart = STEPS.index(RESUME_AT.get(stopped_at, stopped_at))
        reopened = record_step(session, iteration_id=record.id, step=STEPS[restart - 1] if restart else "")
    return reopened


def _record(project: Project, record: IterationRecord, step: str, outcome: StepOutcome) -> IterationRecord:
    with project.store.session() as session:
        return record_step(
            session, iteration_id=record.id, step=step, artifacts=outcome.artifacts, results=outcome.results
        )


def _finish(
    project: Project, record: IterationRecord, status: str, last: StepOutcome | None, reason: str | None
) -> IterationRecord:
    with project.store.session() as session:
        return finish_iteration(
            session,
            iteration_id=record.id,
            status=status,
            diagnosis=(last.diagnosis if last and last.diagnosis else record.diagnosis),
            focus=(last.focus if last and last.focus is not None else record.focus),
            reason_stopped=reason,
        )


def run_iteration(
    project: Project,
    steps: Mapping[str, Step],
    make_context: Callable[[IterationRecord, list[IterationRecord]], IterationContext],
) -> tuple[IterationRecord, str, str | None]:
    """Run the open iteration's pending steps -> (the record as it ended, status, reason)."""
    record, earlier = _open_iteration(project)
    stop: tuple[str, str] | None = None
    last: StepOutcome | None = None
    skip_to: str | None = None
    pending = pending_steps(record)
    while pending:
        step = pending.pop(0)
        if skip_to is not None and step != skip_to:
            record = _record(project, record, step, StepOutcome(results={"skipped": True}))
            continue
        skip_to = None
        outcome = steps[step](make_context(record, earlier))
        if outcome.wait is not None:
            return record, "waiting", outcome.wait
        record = _record(project, record, step, outcome)
        last = outcome
        if outcome.rewind_to is not None:
            record, pending = _rewind(project, record, step, outcome.rewind_to)
            continue
        if outcome.stop is not None and stop is None:
            stop = (step, outcome.stop)
        skip_to = outcome.skip_to
    if stop is None:
        return _finish(project, record, "completed", last, None), "completed", None
    with project.store.session() as session:
        record = record_loop_note(
            session, iteration_id=record.id, note={"stopped_at": stop[0], "reason": stop[1]}
        )
    return _finish(project, record, "stopped", last, stop[1]), "stopped", stop[1]


def _rewind(
    project: Project, record: IterationRecord, step: str, target: str
) -> tuple[IterationRecord, list[str]]:
    """Mark the iteration as just before `target`, so that a kill during the rerun resumes there too."""
    if target not in STEPS or STEPS.index(target) >= STEPS.index(step):
        raise ValueError(f"step {step!r} may only rewind to an earlier step, not {target!r}")
    at = STEPS.index(target)
    with project.store.session() as session:
        record = record_step(session, iteration_id=record.id, step=STEPS[at - 1] if at else "")
    return record, list(STEPS[at:])


def run_loop(
    project: Project,
    cfg: LoopConfig,
    steps: Mapping[str, Step],
    *,
    say: Callable[[str], None],
    hooks: LoopHooks | None = None,
) -> LoopResult:
    """Finish `cfg.iterations` iterations (continuing an unfinished one first), stopping where one stops."""

    def make_context(record: IterationRecord, earlier: list[IterationRecord]) -> IterationContext:
        return IterationContext(project, cfg, record, earlier, say, hooks or LoopHooks())

    done: list[IterationRecord] = []
    for _ in range(cfg.iterations):
        record, status, reason = run_iteration(project, steps, make_context)
        done.append(record)
        if status != "completed":
            return LoopResult(done, status, reason)
    return LoopResult(done, "completed")
