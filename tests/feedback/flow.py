"""The people in the feedback flow, played with the sandbox's gold grader: graders, raters, a policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether.feedback.ingest import ingest_file
from tether.feedback.review import FreshSampler, review, route_reviewed
from tether.labeling import raters as rater_ops
from tether.labeling.context import labeling_context
from tether.labeling.queue import next_item
from tether.labeling.submit import submit_judgment
from tether.project import Project
from tether.sandbox.gold import grade
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import SandboxPrompt, stable_rng
from tether.store.grading import open_grading_tasks, submit_grade
from tether.store.raters import get_rater

from .conftest import write_jsonl


def active_rater(project: Project, name: str) -> int:
    rater_ops.add_person(project, name=name)
    return rater_ops.readmit(project, name=name, reason="test: calibrated elsewhere").id


def gold_level(prompt_meta: dict[str, Any], dimension: str, response: str) -> int:
    """The rubric level (0, 1 or 2) the gold grader gives `response` on `dimension`."""
    return round(2 * grade(SandboxPrompt.from_meta(prompt_meta), response).dimension(dimension))  # type: ignore[arg-type]


def grade_open_tasks(project: Project, rater_id: int) -> int:
    """Grade every open grading task by gold, as a careful person would."""
    project_id = project.project_id
    with project.store.session() as session:
        tasks = open_grading_tasks(session, project_id=project_id)
        for task in tasks:
            submit_grade(
                session,
                task_id=task.id,
                rater_id=rater_id,
                score=gold_level(task.meta["prompt_meta"], task.dimension, task.response),
                max_score=2,
                rationale="graded against the rubric",
                idempotency_key=f"grade-{task.id}",
                spec_hash=project.spec_hash,
            )
    return len(tasks)


def grammar_sampler(items: list[dict[str, Any]], seed: int = 99) -> FreshSampler:
    """The current 'policy': the SFT grammar, on the prompts of these stream items."""
    prompts = {item["prompt"]: SandboxPrompt.from_meta(item["meta"]) for item in items}

    def respond(texts: list[str]) -> list[str]:
        return [render_sft_example(prompts[t], stable_rng("fresh", seed, t)) for t in texts]

    return FreshSampler("grammar-policy", respond)


def judge_open_slots(project: Project, name: str, *, limit: int | None = None) -> int:
    """An active rater judges open live slots by gold (at most `limit` of them)."""
    ctx = labeling_context(project)
    done = 0
    with project.store.session() as session:
        rater = get_rater(session, project_id=project.project_id, name=name)
        while (limit is None or done < limit) and (item := next_item(session, ctx, rater)) is not None:
            meta, dim = item.task.prompt_meta, item.task.dimension
            left, right = (gold_level(meta, dim, text) for text in (item.left, item.right))
            choice = "A" if left > right else "B" if right > left else "tie"
            submit_judgment(
                session,
                ctx,
                rater,
                assignment_id=item.assignment.id,
                choice=choice,
                strength=2,
                rationale="the better one follows the rubric for this dimension",
                seconds=5.0,
                idempotency_key=f"{name}-{item.assignment.id}",
            )
            done += 1
    return done


def routed(project: Project, tmp: Path, items: list[dict[str, Any]]) -> int:
    """Ingest, review, grade and route: the production comparison tasks made."""
    ingest_file(project, write_jsonl(tmp / "flagged.jsonl", items))
    review(project)
    grade_open_tasks(project, active_rater(project, "grader"))
    return route_reviewed(project, sampler=grammar_sampler(items))
