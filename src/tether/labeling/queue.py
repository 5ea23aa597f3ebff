"""What a rater judges next: calibration anchors, hidden anchors, or a live task.

Work is pulled, not pushed: each fetch resumes the rater's unanswered item or claims a new
one, which is how the CLI simulation, the AI rater and the web app all take work.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.labeling.calibration import (
    anchor_rank,
    hidden_anchor_due,
    presentation_swapped,
    round_anchors,
)
from tether.labeling.context import LabelingContext
from tether.store import DbSession as Session
from tether.store.judgments import count_judgments, round_judgments
from tether.store.raters import RaterRecord
from tether.store.slots import claim_live_slot
from tether.store.tasks import (
    AssignmentRecord,
    TaskView,
    create_assignment,
    open_assignment,
    rater_assignments,
    task_view,
)

HIDDEN_ROUND = -1
"""Round number of hidden-anchor assignments (calibration rounds count from 1, live work is 0)."""


@dataclass(frozen=True)
class QueueItem:
    """An item as one rater sees it: responses in the order shown to that rater."""

    assignment: AssignmentRecord
    task: TaskView
    left: str
    right: str
    calibration_done: int
    calibration_total: int

    @property
    def is_calibration(self) -> bool:
        return self.assignment.purpose == "calibration"


def _item(
    session: Session, ctx: LabelingContext, assignment: AssignmentRecord, rater: RaterRecord
) -> QueueItem:
    task = task_view(session, task_id=assignment.task_id)
    left, right = (
        (task.response_b, task.response_a) if assignment.swapped else (task.response_a, task.response_b)
    )
    done = 0  # only calibration items show progress; live items skip the query
    if assignment.purpose == "calibration":
        done = len(round_judgments(session, rater_id=rater.id, round_=rater.calibration_round))
    return QueueItem(assignment, task, left, right, done, len(ctx.calibration_keys))


def _answered_before(session: Session, ctx: LabelingContext, rater: RaterRecord, round_: int) -> set[str]:
    """Anchor keys the rater was shown before calibration round `round_`: earlier rounds and
    hidden anchors (which come only between rounds, so the set holds still during a round)."""
    key_of = {task_id: key for key, task_id in ctx.anchor_tasks.items()}
    earlier = [
        a
        for purpose in ("calibration", "hidden_anchor")
        for a in rater_assignments(session, rater_id=rater.id, purpose=purpose)
        if purpose == "hidden_anchor" or a.round < round_
    ]
    return {key_of[a.task_id] for a in earlier if a.task_id in key_of}


def _calibration_assignment(
    session: Session, ctx: LabelingContext, rater: RaterRecord
) -> AssignmentRecord | None:
    round_ = rater.calibration_round
    judged = {
        a.task_id
        for a in rater_assignments(session, rater_id=rater.id, purpose="calibration")
        if a.round == round_
    }
    # A rater who has been active before is recalibrating (hidden anchors failed, or an admin
    # asked): that round is drawn from anchors they have not answered yet.
    recalibration = round_ > 1 and rater.readmitted_at is not None
    answered = _answered_before(session, ctx, rater, round_) if recalibration else set()
    clear_cut = [key for key, anchor in ctx.anchors.items() if anchor.clear_cut and key in ctx.anchor_tasks]
    keys = round_anchors(
        ctx.calibration_keys,
        clear_cut,
        answered,
        rater_id=rater.id,
        round_=round_,
        seed=ctx.seed,
        recalibration=recalibration,
    )
    for key in keys:
        task_id = ctx.anchor_tasks[key]
        if task_id not in judged:
            swapped = presentation_swapped(task_id=task_id, rater_id=rater.id, round_=round_, seed=ctx.seed)
            return create_assignment(
                session,
                task_id=task_id,
                rater_id=rater.id,
                purpose="calibration",
                round_=round_,
                swapped=swapped,
            )
    return None


def _hidden_anchor_assignment(
    session: Session, ctx: LabelingContext, rater: RaterRecord, judged: int
) -> AssignmentRecord | None:
    if not hidden_anchor_due(
        rater_id=rater.id, judged=judged, rate=ctx.policy.hidden_anchor_rate, seed=ctx.seed
    ):
        return None
    served = {a.task_id for a in rater_assignments(session, rater_id=rater.id, purpose="hidden_anchor")}
    calibration = set(ctx.calibration_keys)
    # Anchors outside the calibration set first: only the first calibration round (which is that
    # set) shows expert verdicts, so the rater has never been told these. Each group comes in an
    # order of the rater's own, so hidden anchors cannot be predicted.
    keys = sorted(ctx.anchor_tasks, key=lambda k: (k in calibration, anchor_rank(k, rater.id, ctx.seed)))
    for key in keys:
        task_id = ctx.anchor_tasks[key]
        if task_id not in served and ctx.anchors[key].clear_cut:
            swapped = presentation_swapped(
                task_id=task_id, rater_id=rater.id, round_=HIDDEN_ROUND, seed=ctx.seed
            )
            return create_assignment(
                session,
                task_id=task_id,
                rater_id=rater.id,
                purpose="hidden_anchor",
                round_=HIDDEN_ROUND,
                swapped=swapped,
            )
    return None


def next_item(session: Session, ctx: LabelingContext, rater: RaterRecord) -> QueueItem | None:
    """The rater's next item, or None when there is nothing for them to do."""
    if rater.status == "excluded" or rater.is_admin:
        return None
    current = open_assignment(session, rater_id=rater.id)
    if current is None and rater.status in ("calibrating", "needs_retraining"):
        current = _calibration_assignment(session, ctx, rater)
        if current is None:
            return None  # round complete; the status is decided when its last judgment lands
    if current is None:
        judged = count_judgments(session, rater_id=rater.id)
        current = _hidden_anchor_assignment(session, ctx, rater, judged)
    if current is None:
        swapped = presentation_swapped(task_id=judged, rater_id=rater.id, round_=0, seed=ctx.seed)
        current = claim_live_slot(session, project_id=ctx.project_id, rater_id=rater.id, swapped=swapped)
    return None if current is None else _item(session, ctx, current, rater)
