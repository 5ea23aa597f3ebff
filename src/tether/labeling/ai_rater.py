"""An AI rater (RLAIF) working the labeling queue like a person: calibration first, then live work.

The judge call happens between two short transactions (fetch, then submit), so a slow or
retried endpoint never holds a database write lock, and every judgment made before an
endpoint failure is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tether.errors import TetherError, TetherInputError
from tether.labeling.ai_judge import ChatJudge, JudgeConfig, JudgeUnavailable
from tether.labeling.context import LabelingContext
from tether.labeling.queue import QueueItem, next_item
from tether.labeling.submit import submit_judgment
from tether.project import Project
from tether.store.raters import RaterRecord, add_rater, get_rater, list_raters


@dataclass(frozen=True)
class AIRaterSummary:
    judgments: int
    position_inconsistent: int
    status: str


def ensure_ai_rater(project: Project, *, name: str, config: JudgeConfig) -> RaterRecord:
    with project.store.session() as session:
        existing = {r.name: r for r in list_raters(session, project_id=project.project_id)}
        rater = existing.get(name)
        if rater is None:
            return add_rater(
                session,
                project_id=project.project_id,
                name=name,
                kind="ai",
                spec_hash=project.spec_hash,
                profile={"endpoint": config.endpoint, "model": config.model},
            )
    if rater.kind != "ai":
        raise TetherInputError(f"rater '{name}' exists and is a {rater.kind} rater, not an AI rater")
    return rater


def _fetch(project: Project, ctx: LabelingContext, rater_id: int) -> tuple[RaterRecord, QueueItem | None]:
    with project.store.session() as session:
        rater = get_rater(session, project_id=project.project_id, rater_id=rater_id)
        return rater, next_item(session, ctx, rater)


def _rationale(text: str, minimum: int, model: str) -> str:
    note = f" (AI rater {model}, judged in both orders.)"
    return text if len(text.strip()) >= minimum else text.strip() + note


def run_ai_rater(
    project: Project,
    ctx: LabelingContext,
    config: JudgeConfig,
    *,
    name: str,
    limit: int | None = None,
    on_judgment: Callable[[], None] | None = None,
) -> AIRaterSummary:
    """Judge until the queue is empty (or `limit`); an unreachable endpoint stops with the count saved."""
    rater = ensure_ai_rater(project, name=name, config=config)
    done = inconsistent = 0
    with ChatJudge(config, project.spec) as judge:
        while limit is None or done < limit:
            rater, item = _fetch(project, ctx, rater.id)
            if item is None:
                break
            dimension = item.task.dimension if item.task.dimension in project.spec.dimension_ids else None
            try:
                verdict = judge.judge(item.task.prompt, item.left, item.right, dimension=dimension)
            except JudgeUnavailable as exc:
                raise TetherError(f"{exc}; {done} judgments were saved before the endpoint failed") from None
            with project.store.session() as session:
                submit_judgment(
                    session,
                    ctx,
                    rater,
                    assignment_id=item.assignment.id,
                    choice=verdict.choice,
                    strength=verdict.strength,
                    rationale=_rationale(verdict.rationale, ctx.policy.min_rationale_chars, config.model),
                    seconds=0.0,
                    idempotency_key=f"ai-{item.assignment.id}",
                )
            done += 1
            inconsistent += not verdict.position_consistent
            if on_judgment is not None:
                on_judgment()
    with project.store.session() as session:
        final = get_rater(session, project_id=project.project_id, rater_id=rater.id)
    return AIRaterSummary(done, inconsistent, final.status)
