"""Routing production feedback to people: `tether feedback review [--route]`.

    tether feedback review            # sample new items into rubric grading tasks (origin "production")
    tether feedback review --route    # ... and turn graded-low items into comparison tasks

(1) `review` takes every new item and chooses `spec.feedback.review_share` of them by a seeded hash
of the item's idempotency key, so the same item is always chosen or always not, whatever else
arrived. (2) A chosen item becomes a grading task (status "review") against one dimension's rubric:
the first spec dimension its flag reason names ("safety: ..."), else the dimension of the first
`unacceptable` failure mode it names, else the spec's first-priority dimension. The rest are
"skipped". (3) People grade the tasks in the web app (in the sandbox, simulated graders do).
(4) `route_reviewed` takes the items whose grading is done: one graded below the rubric's top level
(on average over its graders) becomes a comparison task with origin "production", the flagged
response against a fresh sample from the current policy on the same prompt, in a new labeling batch;
its prompt joins the prompt table (source "production", split "pool"). The next labeling round serves
it like any other task. An item graded at the top level is "ok": nothing to learn from it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import fmean

from tether.artifacts import POLICY_KINDS
from tether.conversation import Prompt
from tether.errors import TetherInputError
from tether.project import Project
from tether.spec.model import Spec
from tether.store import DbSession, NewPrompt, add_prompts, latest_artifact
from tether.store.feedback import FeedbackRecord, link_grading_tasks, list_feedback, set_feedback_status
from tether.store.grading import (
    GradeRecord,
    GradingTaskRecord,
    NewGradingTask,
    add_grading_tasks,
    get_grading_task,
    grades_for,
)
from tether.store.prompts import STRATA, prompt_ids_by_key
from tether.store.tasks import NewTask, add_responses, add_tasks, create_batch

ORIGIN = "production"


# --- pure decisions ---------------------------------------------------------------------------------------


def chosen_for_review(key: str, *, share: float, seed: int) -> bool:
    """Whether the item with this idempotency key goes to human review: a stable, seeded coin."""
    digest = hashlib.blake2b(f"review\x1f{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def first_priority(spec: Spec) -> str:
    return spec.trade_offs.priority[0] if spec.trade_offs.priority else spec.dimensions[0].id


def dimension_for_reason(reason: str, spec: Spec) -> str:
    """The rubric an item is graded against: the first dimension its reason names, else the first
    named failure mode's dimension, else the spec's first-priority dimension."""
    words = re.findall(r"[a-z][a-z0-9_]*", reason.lower())
    dimensions = set(spec.dimension_ids)
    for word in words:
        if word in dimensions:
            return word
    modes = {mode.id: mode.dimensions for mode in spec.unacceptable if mode.dimensions}
    for word in words:
        if word in modes:
            return modes[word][0]
    return first_priority(spec)


def graded_low(grades: Sequence[GradeRecord]) -> bool:
    """Graded below the rubric's top level, on average over the graders."""
    if not grades:
        raise ValueError("graded_low needs at least one grade")
    return fmean(g.score / g.max_score for g in grades) < 1.0


# --- (1)-(2) sampling new items into grading tasks --------------------------------------------------------


@dataclass(frozen=True)
class ReviewReport:
    considered: int
    """New items looked at."""
    to_review: int
    """Items sent to human review as grading tasks."""
    skipped: int
    grading_task_ids: list[int]


def _grading_task(item: FeedbackRecord, spec: Spec) -> NewGradingTask:
    meta: dict[str, object] = {
        "feedback_id": item.id,
        "reason": item.reason,
        "model_version": item.model_version,
    }
    if item.prompt_meta is not None:
        meta["prompt_meta"] = item.prompt_meta
    return NewGradingTask(
        source_key=f"feedback-{item.id}",
        origin=ORIGIN,
        dimension=dimension_for_reason(item.reason, spec),
        prompt=item.prompt,
        response=item.response,
        meta=meta,
        messages=item.messages,
    )


def review(project: Project, *, seed: int = 0) -> ReviewReport:
    """Choose `review_share` of the new items for human review (grading tasks); skip the rest."""
    share, project_id = project.spec.feedback.review_share, project.project_id
    with project.store.session() as session:
        items = list_feedback(session, project_id=project_id, status="new")
        chosen = [i for i in items if chosen_for_review(i.idempotency_key, share=share, seed=seed)]
        ids = add_grading_tasks(
            session,
            project_id=project_id,
            tasks=[_grading_task(i, project.spec) for i in chosen],
            spec_hash=project.spec_hash,
        )
        link_grading_tasks(session, links={i.id: task_id for i, task_id in zip(chosen, ids, strict=True)})
        picked = {i.id for i in chosen}
        rest = [i.id for i in items if i.id not in picked]
        set_feedback_status(session, item_ids=rest, status="skipped", only_from="new")
    return ReviewReport(len(items), len(chosen), len(rest), ids)


# --- (4) graded-low items into comparison tasks -----------------------------------------------------------


@dataclass(frozen=True)
class FreshSampler:
    """Writes one fresh response per prompt; `label` is recorded as the responses' source."""

    label: str
    respond: Callable[[list[Prompt]], list[str]]


def policy_sampler(project: Project, *, seed: int = 0) -> FreshSampler:
    """The current policy (newest RL checkpoint, else newest policy) as a sampler."""
    from tether.generation import sample_responses
    from tether.hf import load_causal_lm

    with project.store.session() as session:
        found = [latest_artifact(session, project_id=project.project_id, kind=k) for k in POLICY_KINDS]
    candidates = [a for a in found if a is not None]
    if not candidates:
        raise TetherInputError("the project has no policy yet to sample fresh responses from")
    newest = max(candidates, key=lambda a: a.created_at)
    model, tokenizer = load_causal_lm(project.resolve(newest.path))
    generation = project.spec.generation
    return FreshSampler(
        newest.id, lambda texts: sample_responses(model, tokenizer, texts, config=generation, seed=seed)
    )


@dataclass(frozen=True)
class _Graded:
    item: FeedbackRecord
    task: GradingTaskRecord
    low: bool


def _graded_items(project: Project) -> list[_Graded]:
    project_id = project.project_id
    with project.store.session() as session:
        items = list_feedback(session, project_id=project_id, status="review")
        tasks = {
            i.id: get_grading_task(session, project_id=project_id, task_id=i.grading_task_id)
            for i in items
            if i.grading_task_id
        }
        grades = grades_for(session, project_id=project_id, source_keys=[f"feedback-{i.id}" for i in items])
    out = []
    for item in items:
        task = tasks.get(item.id)
        if task is not None and task.status == "done" and grades.get(task.source_key):
            out.append(_Graded(item, task, graded_low(grades[task.source_key])))
    return out


def _production_prompt(graded: _Graded) -> NewPrompt:
    meta = dict(graded.item.prompt_meta or {})
    stratum = str(meta.get("stratum", "routine"))
    return NewPrompt(
        key=f"production-{graded.item.id}",
        text=graded.item.prompt,
        messages=graded.item.messages,
        dimension=graded.task.dimension,
        stratum=stratum if stratum in STRATA else "routine",
        split="pool",
        source=ORIGIN,
        meta={**meta, "feedback_id": graded.item.id, "reason": graded.item.reason},
    )


def route_reviewed(project: Project, *, sampler: FreshSampler | None = None, seed: int = 0) -> int:
    """Turn graded-low items into production comparison tasks; returns how many tasks were made.

    Items graded at the top level become "ok". An item whose fresh sample equals the flagged
    response stays in review for the next call (a comparison needs two different responses)."""
    graded = _graded_items(project)
    low = [g for g in graded if g.low]
    fresh: list[str] = []
    if low:
        sampler = sampler or policy_sampler(project, seed=seed)
        fresh = sampler.respond([g.item.conversation for g in low])
    pairs = [
        (g, text) for g, text in zip(low, fresh, strict=True) if text.strip() and text != g.item.response
    ]
    ok = [g.item.id for g in graded if not g.low]
    with project.store.session() as session:
        moved = set_feedback_status(session, item_ids=ok, status="ok", only_from="review")
        moved += set_feedback_status(
            session, item_ids=[g.item.id for g, _ in pairs], status="routed", only_from="review"
        )
        if moved != len(ok) + len(pairs):  # raised inside the transaction: nothing is written
            raise TetherInputError("another `tether feedback review --route` moved these items; run it again")
        if pairs:
            label = sampler.label if sampler else "policy"
            _write_comparisons(session, project, pairs, label)
    return len(pairs)


def _write_comparisons(
    session: DbSession, project: Project, pairs: list[tuple[_Graded, str]], label: str
) -> int:
    project_id, spec_hash = project.project_id, project.spec_hash
    prompts = [_production_prompt(g) for g, _ in pairs]
    add_prompts(session, project_id=project_id, prompts=prompts, spec_hash=spec_hash)
    ids = prompt_ids_by_key(session, project_id=project_id, keys=[p.key for p in prompts])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    batch_id = create_batch(
        session,
        project_id=project_id,
        name=f"production-{stamp}",
        meta={"sources": [ORIGIN, label], "origin": ORIGIN, "feedback_ids": [g.item.id for g, _ in pairs]},
        spec_hash=spec_hash,
    )
    responses = add_responses(
        session,
        project_id=project_id,
        items=[
            item
            for (g, text), p in zip(pairs, prompts, strict=True)
            for item in (
                (ids[p.key], g.item.response, f"{ORIGIN}:{g.item.model_version}"[:100]),
                (ids[p.key], text, label[:100]),
            )
        ],
        spec_hash=spec_hash,
    )
    tasks = [
        NewTask(
            prompt_id=ids[p.key],
            response_a_id=responses[2 * i],
            response_b_id=responses[2 * i + 1],
            origin=ORIGIN,
            meta={"feedback_id": g.item.id},
        )
        for i, ((g, _), p) in enumerate(zip(pairs, prompts, strict=True))
    ]
    add_tasks(session, project_id=project_id, batch_id=batch_id, tasks=tasks, spec_hash=spec_hash)
    return batch_id
