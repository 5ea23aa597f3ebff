"""Simulated graders: the sandbox rater pool grades open rubric-grading tasks that carry sandbox truth.

Sandbox truth travels in ONE meta key of a grading task: `meta["prompt_meta"]` holds the
prompts-table meta of the sandbox prompt (`SandboxPrompt.to_meta()`), so that
`SandboxPrompt.from_meta(meta["prompt_meta"])` rebuilds it. Evals and production feedback put it
there; tasks without it (or whose dimension the sandbox does not grade) are left for people.

A simulated rater grades the way it judges pairs (`tether.sandbox.raters`):

    s = gold score of the dimension, in [0, 1] (rubric score / max, see sandbox.gold)
    s' = 1 - s on an inverted dimension; 1 on a blind spot (it sees nothing wrong there)
    s' += sum_k w_k f_k(response)       on concision only: the style the rater likes (length, ...)
    s' += Normal(0, temperature)        the rater's noise, in units of the [0, 1] score
    level = the rubric level nearest to s' mapped onto [lowest, highest level]

A careless rater picks a level at random. Grades are pure functions of (seed, rater, task key),
so re-running never changes them, and they go through the same store function as people's grades.
Only active simulated raters grade: grading has the same calibration gate as live comparisons.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tether.project import Project
from tether.sandbox.grammar import ParsedResponse, parse
from tether.sandbox.raters import LENGTH_SCALE, RaterProfile, perceived_scores
from tether.sandbox.world import DIMENSIONS, SandboxPrompt, stable_rng
from tether.spec.model import Dimension as SpecDimension
from tether.store.grading import GradingTaskRecord, graders_of, open_grading_tasks, submit_grade
from tether.store.raters import RaterRecord, list_raters

PROMPT_META = "prompt_meta"
"""The grading-task meta key holding the sandbox prompt's meta (its ground truth)."""


@dataclass(frozen=True)
class SimGrader:
    """An active simulated rater and the profile it grades with."""

    rater_id: int
    profile: RaterProfile


def sandbox_prompt(meta: dict[str, Any]) -> SandboxPrompt | None:
    """The sandbox prompt a grading task's meta carries, or None when it carries no usable truth."""
    prompt_meta = meta.get(PROMPT_META)
    if not isinstance(prompt_meta, dict):
        return None
    try:
        return SandboxPrompt.from_meta(prompt_meta)
    except (KeyError, TypeError, ValueError):
        return None


def rubric_level(score: float, levels: Sequence[int]) -> int:
    """The level nearest to `score` in [0, 1] mapped linearly onto [lowest, highest]; ties go down.

    >>> rubric_level(0.75, [0, 1, 2]), rubric_level(0.8, [0, 1, 2]), rubric_level(1.7, [1, 3, 5])
    (1, 2, 5)
    """
    lo, hi = min(levels), max(levels)
    target = lo + max(0.0, min(1.0, score)) * (hi - lo)
    return min(levels, key=lambda level: (abs(level - target), level))


def style_pull(profile: RaterProfile, parsed: ParsedResponse) -> float:
    """How much the rater's taste for style (length, hedges, lists, confidence) lifts a response."""
    return (
        profile.length * parsed.n_words / LENGTH_SCALE
        + profile.hedge * parsed.hedges / 2
        + profile.list * float(parsed.as_list)
        + profile.confident * float(parsed.confident)
    )


def perceived_grade(
    profile: RaterProfile, prompt: SandboxPrompt, response: str, dimension: str, rng: random.Random
) -> float:
    """The [0, 1] score (before rounding to a level) a simulated rater gives one dimension."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"the sandbox grades {', '.join(DIMENSIONS)}, not '{dimension}'")
    if profile.careless:
        return rng.random()
    parsed = parse(response)
    if parsed is None:
        return 0.0  # gold grades an unparseable response 0 everywhere, and so does every rater
    if dimension in profile.blind_spots:
        return 1.0
    scores = perceived_scores(profile, prompt, parsed)
    score = next(value for dim, value in scores.items() if dim == dimension)
    if dimension == "concision":
        score += style_pull(profile, parsed)
    return score + rng.gauss(0.0, profile.temperature)


def rationale_for(dimension: SpecDimension, level: int, min_chars: int) -> str:
    """A rationale that quotes the chosen level, long enough for the spec's rationale policy."""
    described = {lvl.score: lvl.description for lvl in dimension.rubric}[level]
    text = f"Level {level} of {dimension.rubric[-1].score} on {dimension.id}: {described}"
    if len(text) < min_chars:
        text += " A simulated grade, from the sandbox gold grader's score."
    return text.ljust(min_chars, ".")


def _graders(raters: Sequence[RaterRecord]) -> list[SimGrader]:
    out = []
    for r in raters:
        if r.kind != "simulated" or r.status != "active" or r.is_admin:
            continue
        fields = {k: v for k, v in r.profile.items() if k != "roles"}
        try:
            out.append(SimGrader(r.id, RaterProfile.model_validate(fields)))
        except ValidationError:
            continue  # not a sandbox pool rater: it has no lens to grade with
    return out


def pick_graders(
    graders: Sequence[SimGrader], task: GradingTaskRecord, done: set[int], seed: int
) -> list[SimGrader]:
    """The graders a task still needs, drawn from those who have not graded it, in a stable order."""
    free = [g for g in graders if g.rater_id not in done]
    stable_rng("graders", seed, task.source_key).shuffle(free)
    return free[: max(0, task.raters_needed - len(done))]


def _gradable(task: GradingTaskRecord, dims: dict[str, SpecDimension]) -> SandboxPrompt | None:
    if task.dimension not in DIMENSIONS or task.dimension not in dims:
        return None
    return sandbox_prompt(task.meta)


def simulate_grading(project: Project, *, seed: int = 0) -> int:
    """Grade every open task that carries sandbox truth with the active simulated raters.

    Returns how many grades were submitted (0 when no task carries truth or no simulated rater
    is active yet). One transaction per task, so a long run never holds the store's lock for long.
    """
    dims = {d.id: d for d in project.spec.dimensions}
    min_chars = project.spec.labeling.min_rationale_chars
    pid = project.project_id
    with project.store.session() as session:
        tasks = [(t, p) for t in open_grading_tasks(session, project_id=pid) if (p := _gradable(t, dims))]
        graders = _graders(list_raters(session, project_id=pid)) if tasks else []
        done = graders_of(session, task_ids=[t.id for t, _ in tasks])
    if not graders:
        return 0
    submitted = 0
    for task, prompt in tasks:
        dimension = dims[task.dimension]
        levels = [lvl.score for lvl in dimension.rubric]
        with project.store.session() as session:
            for grader in pick_graders(graders, task, done.get(task.id, set()), seed):
                rng = stable_rng("grade", seed, grader.profile.name, task.source_key)
                level = rubric_level(
                    perceived_grade(grader.profile, prompt, task.response, task.dimension, rng), levels
                )
                submit_grade(
                    session,
                    task_id=task.id,
                    rater_id=grader.rater_id,
                    score=level,
                    max_score=max(levels),
                    rationale=rationale_for(dimension, level, min_chars),
                    idempotency_key=f"sim-grade-{task.id}",
                    spec_hash=project.spec_hash,
                )
                submitted += 1
    return submitted
