"""Reads behind the preference export: live tasks with their votes and voters."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.store.models import JudgmentRow, PromptRow, RaterRow, ResponseRow, TaskRow
from tether.store.raters import held_judgments


@dataclass(frozen=True)
class VoteFacts:
    """One vote on a live task, with what the export needs about the task."""

    task_id: int
    batch_id: int | None
    prompt: str
    response_a: str
    response_b: str
    dimension: str
    stratum: str
    origin: str
    spec_hash: str
    rater_id: int
    rater_name: str
    choice: str
    strength: int
    messages: list[dict[str, str]] | None = None
    """The prompt's conversation when it has more than one message (`PromptRow.messages`)."""


def live_votes(
    session: Session, *, project_id: int, statuses: Collection[str] | None, hold_out: bool = False
) -> list[VoteFacts]:
    """Votes on live comparison tasks, from raters in `statuses` (None: every rater); `hold_out`
    leaves out the labels that failed hidden-anchor windows hold until their rater recalibrates."""
    a = ResponseRow.__table__.alias("ra")
    b = ResponseRow.__table__.alias("rb")
    query = (
        select(
            TaskRow.id,
            TaskRow.batch_id,
            PromptRow.text,
            a.c.text,
            b.c.text,
            PromptRow.dimension,
            PromptRow.stratum,
            TaskRow.origin,
            TaskRow.spec_hash,
            RaterRow.id,
            RaterRow.name,
            JudgmentRow.choice,
            JudgmentRow.strength,
            PromptRow.messages,
        )
        .join(TaskRow, TaskRow.id == JudgmentRow.task_id)
        .join(RaterRow, RaterRow.id == JudgmentRow.rater_id)
        .join(PromptRow, PromptRow.id == TaskRow.prompt_id)
        .join(a, a.c.id == TaskRow.response_a_id)
        .join(b, b.c.id == TaskRow.response_b_id)
        .where(TaskRow.project_id == project_id, TaskRow.kind == "compare")
        .order_by(TaskRow.id, JudgmentRow.id)
    )
    if statuses is not None:
        query = query.where(RaterRow.status.in_(list(statuses)))
    if hold_out:
        held = held_judgments().subquery()
        query = query.where(JudgmentRow.id.not_in(select(held.c.id)))
    return [VoteFacts(*row) for row in session.execute(query)]
