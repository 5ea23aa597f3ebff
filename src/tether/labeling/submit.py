"""Submitting a judgment: validate, record once, and move the rater through calibration.

Every path that records a judgment (CLI simulation, AI rater, import, web app, API) comes
through `submit_judgment`, so the rules below hold everywhere: the rationale is required and
long enough, a rater can only answer their own assignment, a retry with the same idempotency
key returns the original result and writes nothing, and nothing is half-written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.errors import TetherInputError
from tether.labeling.calibration import (
    HIDDEN_WINDOW,
    StatusDecision,
    calibration_decision,
    hidden_anchor_decision,
)
from tether.labeling.context import LabelingContext
from tether.store import DbSession as Session
from tether.store.judgments import (
    JudgmentRecord,
    NewJudgment,
    add_judgment,
    judgment_by_key,
    judgment_for_assignment,
    rater_judgments,
    round_judgments,
)
from tether.store.raters import (
    RaterRecord,
    add_recalibration,
    close_recalibrations,
    rater_recalibrations,
    set_rater_status,
)
from tether.store.tasks import AssignmentRecord, complete_assignment, get_assignment

CHOICES = ("A", "B", "tie")
MAX_RATIONALE = 5000
MAX_KEY = 200


@dataclass(frozen=True)
class AnchorFeedback:
    """Shown after each anchor of a first calibration round: the expert verdict, in the rater's order.

    Later rounds show none: they reuse anchors whose verdicts the rater may have been shown, or use
    new ones whose verdicts would let a rater pass later checks by replaying them."""

    expert_choice: str
    explanation: str
    correct: bool


@dataclass(frozen=True)
class SubmitResult:
    judgment: JudgmentRecord
    replayed: bool
    feedback: AnchorFeedback | None
    status: StatusDecision | None
    round_complete: bool = False
    """This judgment ended a calibration round (`status` holds its outcome)."""


def canonical(choice: str, swapped: bool) -> str:
    """The choice in the task's own A/B order, given the order the rater saw."""
    if not swapped or choice == "tie":
        return choice
    return "B" if choice == "A" else "A"


def _validate(
    ctx: LabelingContext, *, choice: str, strength: int, rationale: str, seconds: float, key: str
) -> None:
    if choice not in CHOICES:
        raise TetherInputError(f"choice must be one of A, B, tie (got {choice!r})")
    if strength not in (1, 2, 3):
        raise TetherInputError(f"strength must be 1 (slight), 2 (clear) or 3 (strong), got {strength!r}")
    text = rationale.strip()
    minimum = ctx.policy.min_rationale_chars
    if len(text) < minimum:
        raise TetherInputError(f"rationale is {len(text)} characters; the spec asks for at least {minimum}")
    if len(text) > MAX_RATIONALE:
        raise TetherInputError(f"rationale is {len(text)} characters; at most {MAX_RATIONALE} are accepted")
    if not math.isfinite(seconds) or seconds < 0:
        raise TetherInputError(f"seconds must be a non-negative number, got {seconds!r}")
    if not key or len(key) > MAX_KEY:
        raise TetherInputError(f"idempotency key must be 1-{MAX_KEY} characters")


def _assignment_for(session: Session, rater: RaterRecord, assignment_id: int) -> AssignmentRecord:
    assignment = get_assignment(session, assignment_id=assignment_id)
    if assignment is None or assignment.rater_id != rater.id:
        raise TetherInputError(f"assignment {assignment_id} is not assigned to rater '{rater.name}'")
    if judgment_for_assignment(session, assignment_id=assignment_id) is not None:
        raise TetherInputError(f"assignment {assignment_id} was already judged; duplicate submission refused")
    return assignment


def _feedback(
    ctx: LabelingContext, assignment: AssignmentRecord, judgment: JudgmentRecord
) -> AnchorFeedback | None:
    anchor = ctx.task_anchor.get(assignment.task_id)
    if anchor is None or assignment.purpose != "calibration" or assignment.round > 1:
        return None
    shown = canonical(anchor.label, bool(assignment.swapped))
    return AnchorFeedback(shown, anchor.explanation, judgment.choice == anchor.label)


def _replay(
    session: Session, ctx: LabelingContext, rater: RaterRecord, previous: JudgmentRecord, assignment_id: int
) -> SubmitResult:
    if previous.assignment_id != assignment_id:
        raise TetherInputError(
            f"idempotency key '{previous.idempotency_key}' was already used "
            f"for assignment {previous.assignment_id}"
        )
    assignment = get_assignment(session, assignment_id=assignment_id)
    assert assignment is not None
    return SubmitResult(previous, True, _feedback(ctx, assignment, previous), None)


def _round_decision(
    session: Session, ctx: LabelingContext, rater: RaterRecord, assignment: AssignmentRecord
) -> StatusDecision | None:
    """The outcome of a calibration round once its last anchor is judged; None before that."""
    answered = round_judgments(session, rater_id=rater.id, round_=assignment.round)
    if len(answered) < len(ctx.calibration_keys):
        return None
    graded = [j for j in answered if j.correct is not None]
    wrong = sum(not j.correct for j in graded)
    decision = calibration_decision(
        round_=assignment.round, wrong=wrong, total=len(graded), threshold=ctx.policy.max_expert_disagreement
    )
    if decision.status == "active":
        close_recalibrations(session, rater_id=rater.id, release=True)  # held labels count again
    return decision


def _hidden_anchor_check(session: Session, ctx: LabelingContext, rater: RaterRecord) -> StatusDecision | None:
    """The rolling hidden-anchor check over the judgments since the rater's latest readmission."""
    since = rater_judgments(session, rater_id=rater.id, purpose="hidden_anchor", after=rater.readmitted_at)
    graded = [j for j in since if j.correct is not None]
    failures = len(rater_recalibrations(session, rater_id=rater.id))
    decision = hidden_anchor_decision(
        [j.correct for j in graded if j.correct is not None],
        threshold=ctx.policy.max_expert_disagreement,
        round_=rater.calibration_round,
        failures=failures,
        max_recalibrations=ctx.policy.max_recalibrations,
    )
    if decision is not None:
        # The failed window's labels are held from its first hidden anchor on (docs/labeling.md).
        window = graded[-HIDDEN_WINDOW:]
        add_recalibration(
            session,
            rater_id=rater.id,
            first_judgment_id=window[0].id,
            failed_judgment_id=window[-1].id,
            outcome=decision.status,
        )
    return decision


def _advance(
    session: Session, ctx: LabelingContext, rater: RaterRecord, assignment: AssignmentRecord
) -> StatusDecision | None:
    """Decide the rater's status when a calibration round ends or hidden anchors drift."""
    decision = None
    if assignment.purpose == "calibration":
        decision = _round_decision(session, ctx, rater, assignment)
    elif assignment.purpose == "hidden_anchor" and rater.status == "active":
        decision = _hidden_anchor_check(session, ctx, rater)
    if decision is not None:
        set_rater_status(
            session,
            rater_id=rater.id,
            status=decision.status,
            reason=decision.reason,
            spec_hash=ctx.spec_hash,
            calibration_round=decision.next_round,
        )
    return decision


def submit_judgment(
    session: Session,
    ctx: LabelingContext,
    rater: RaterRecord,
    *,
    assignment_id: int,
    choice: str,
    strength: int,
    rationale: str,
    seconds: float,
    idempotency_key: str,
) -> SubmitResult:
    """Record `rater`'s answer to one assignment; `choice` is in the order the rater saw."""
    previous = judgment_by_key(session, rater_id=rater.id, idempotency_key=idempotency_key)
    if previous is not None:
        return _replay(session, ctx, rater, previous, assignment_id)
    _validate(
        ctx, choice=choice, strength=strength, rationale=rationale, seconds=seconds, key=idempotency_key
    )
    assignment = _assignment_for(session, rater, assignment_id)
    swapped = bool(assignment.swapped)
    task_choice = canonical(choice, swapped)
    anchor = ctx.task_anchor.get(assignment.task_id)
    correct = (task_choice == anchor.label) if anchor is not None and anchor.clear_cut else None
    judgment = add_judgment(
        session,
        judgment=NewJudgment(
            assignment_id=assignment.id,
            task_id=assignment.task_id,
            rater_id=rater.id,
            choice=task_choice,
            shown_choice=choice,
            swapped=swapped,
            strength=strength,
            rationale=rationale.strip(),
            seconds=float(seconds),
            idempotency_key=idempotency_key,
            correct=correct,
            spec_hash=ctx.spec_hash,
        ),
    )
    complete_assignment(session, assignment_id=assignment.id)
    decision = _advance(session, ctx, rater, assignment)
    ended = assignment.purpose == "calibration" and decision is not None
    return SubmitResult(judgment, False, _feedback(ctx, assignment, judgment), decision, ended)
