"""Human rubric grading: one response graded against one dimension's rubric, by page or JSON API.

    GET  /grade                      the rater's next grading task (a form)
    POST /grade                      submit it (CSRF), then the next one
    GET  /api/v1/grading/next        the next task as JSON; 204 when there is none
    POST /api/v1/grading/{task_id}   {score, rationale} with an Idempotency-Key header
    GET  /api/v1/grading/mine        the caller's own grades

Grading is open to active raters (the same calibration gate as live comparisons). The score
must be one of the rubric's level scores; a grade records the rubric's top score as its
`max_score`, so grades stay comparable if a rubric later gains levels. A task's `meta` never
leaves the server: it may hold sandbox ground truth.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tether.errors import TetherInputError
from tether.labeling.raters import rater_roles
from tether.labeling.submit import MAX_RATIONALE
from tether.project import Project
from tether.spec.model import Spec
from tether.store import DbSession
from tether.store.grading import (
    GradeRecord,
    GradingTaskRecord,
    count_open_for,
    get_grading_task,
    grade_by_key,
    next_grading_task,
    rater_grades,
    submit_grade,
)
from tether.store.raters import RaterRecord
from tether.web.authz import ApiCheck, PageCheck
from tether.web.deps import MAX_ID, ApiRater, Db, PageRater, State, check_csrf, refuse_nul
from tether.web.pages import render
from tether.web.views import rubrics

router = APIRouter()


class GradeIn(BaseModel):
    """A grade as submitted through the API."""

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=10)
    """One of the rubric's level scores."""
    rationale: str = Field(max_length=MAX_RATIONALE)
    """Why this level, at least the spec's `labeling.min_rationale_chars` characters."""


@dataclass(frozen=True)
class GradeResult:
    grade: GradeRecord
    replayed: bool
    """True when an earlier submission with the same Idempotency-Key was returned."""


# ---- rules -------------------------------------------------------------------------------------


def grading_refusal(rater: RaterRecord) -> str | None:
    """Why this rater may not grade right now, or None when they may."""
    if rater.is_admin:
        return "admin accounts do not label"
    if rater.status == "excluded":
        return "your account is not receiving work; contact the project admin"
    if rater.status != "active":
        return "grading opens once you have passed calibration on the comparison page"
    return None


def require_grader(rater: RaterRecord) -> RaterRecord:
    why = grading_refusal(rater)
    if why is not None:
        raise HTTPException(status_code=403, detail=why)
    return rater


GraderApi = Annotated[RaterRecord, Depends(ApiCheck(require_grader))]
GraderPage = Annotated[RaterRecord, Depends(PageCheck(require_grader))]


def level_scores(spec: Spec, dimension: str) -> list[int]:
    """The rubric's level scores, lowest first; an input error for a dimension the spec lacks."""
    for dim in spec.dimensions:
        if dim.id == dimension:
            return [level.score for level in dim.rubric]
    raise TetherInputError(f"dimension '{dimension}' is not in the spec, so this task cannot be graded")


def check_grade(spec: Spec, dimension: str, score: int, rationale: str, min_chars: int) -> int:
    """Validate a grade against the rubric and the rationale policy; returns the rubric's max score."""
    levels = level_scores(spec, dimension)
    if score not in levels:
        allowed = ", ".join(map(str, levels))
        raise TetherInputError(
            f"score {score} is not a level of the '{dimension}' rubric; use one of {allowed}"
        )
    if len(rationale.strip()) < min_chars:
        raise TetherInputError(
            f"the rationale needs at least {min_chars} characters (got {len(rationale.strip())})"
        )
    return max(levels)


def grade_task(
    session: DbSession,
    project: Project,
    rater: RaterRecord,
    *,
    task_id: int,
    score: int,
    rationale: str,
    idempotency_key: str,
    min_chars: int,
) -> GradeResult:
    """Check and store a grade; a retry with the same key returns the original (replayed).

    Raises 404 for a task that is not this project's, and TetherInputError for a bad grade.
    """
    refuse_nul(rationale=rationale, idempotency_key=idempotency_key)
    earlier = grade_by_key(session, rater_id=rater.id, idempotency_key=idempotency_key)
    if earlier is not None and earlier.task_id == task_id:
        return GradeResult(earlier, replayed=True)
    task = get_grading_task(session, project_id=project.project_id, task_id=task_id)
    if task is None:
        raise HTTPException(status_code=404, detail=f"unknown grading task {task_id}")
    max_score = check_grade(project.spec, task.dimension, score, rationale, min_chars)
    grade = submit_grade(
        session,
        task_id=task_id,
        rater_id=rater.id,
        score=score,
        max_score=max_score,
        rationale=rationale,
        idempotency_key=idempotency_key,
        spec_hash=project.spec_hash,
    )
    return GradeResult(grade, replayed=False)


def next_task(session: DbSession, project: Project, rater: RaterRecord) -> GradingTaskRecord | None:
    """The rater's next task among the dimensions the spec defines."""
    return next_grading_task(
        session, project_id=project.project_id, rater_id=rater.id, dimensions=project.spec.dimension_ids
    )


def open_grading_count(session: DbSession, project: Project, rater: RaterRecord) -> int:
    """Tasks this rater could grade now; 0 when they may not grade (the link on the rater's pages)."""
    if grading_refusal(rater) is not None:
        return 0
    dims = project.spec.dimension_ids
    return count_open_for(session, project_id=project.project_id, rater_id=rater.id, dimensions=dims)


def rater_links(session: DbSession, project: Project, rater: RaterRecord) -> dict[str, Any]:
    """The header links of a rater's pages: open grading work, and the red-team page for that role."""
    return {
        "grading": open_grading_count(session, project, rater),
        "redteam": "redteam" in rater_roles(rater),
    }


# ---- views -------------------------------------------------------------------------------------


def task_payload(task: GradingTaskRecord, spec: Spec, min_chars: int) -> dict[str, Any]:
    """What a grader sees of a task: never its meta (it may hold sandbox ground truth)."""
    rubric = rubrics(spec, task.dimension)[0]
    return {
        "task_id": task.id,
        "origin": task.origin,
        "dimension": task.dimension,
        "prompt": task.prompt,
        "messages": task.messages or [{"role": "user", "content": task.prompt}],
        "response": task.response,
        "rubric": rubric,
        "max_score": max(level["score"] for level in rubric["levels"]),
        "min_rationale_chars": min_chars,
    }


def grade_payload(result: GradeResult) -> dict[str, Any]:
    g = result.grade
    return {
        "task_id": g.task_id,
        "score": g.score,
        "max_score": g.max_score,
        "rationale": g.rationale,
        "created_at": g.created_at.isoformat(),
        "replayed": result.replayed,
    }


# ---- JSON API ----------------------------------------------------------------------------------


@router.get("/api/v1/grading/next", tags=["grading"], responses={204: {"description": "nothing to grade"}})
def api_next(rater: GraderApi, session: Db, state: State) -> Response:
    """The caller's next grading task with its rubric; 204 when there is none."""
    task = next_task(session, state.project, rater)
    if task is None:
        return Response(status_code=204)
    return JSONResponse(task_payload(task, state.project.spec, state.ctx.policy.min_rationale_chars))


@router.get("/api/v1/grading/mine", tags=["grading"])
def api_mine(rater: ApiRater, session: Db) -> list[dict[str, Any]]:
    """The caller's own grades, oldest first (never anyone else's)."""
    return [grade_payload(GradeResult(g, replayed=False)) for g in rater_grades(session, rater_id=rater.id)]


@router.post("/api/v1/grading/{task_id}", tags=["grading"], status_code=201)
def api_grade(
    rater: GraderApi,
    task_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: GradeIn,
    session: Db,
    state: State,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Response:
    """Grade a task. A retry with the same Idempotency-Key returns the original grade (200)."""
    try:
        result = grade_task(
            session,
            state.project,
            rater,
            task_id=task_id,
            score=body.score,
            rationale=body.rationale,
            idempotency_key=idempotency_key,
            min_chars=state.ctx.policy.min_rationale_chars,
        )
    except TetherInputError as exc:
        status = 409 if "already" in str(exc) or "not in the spec" in str(exc) else 422
        raise HTTPException(status_code=status, detail=str(exc)) from None
    return JSONResponse(grade_payload(result), status_code=200 if result.replayed else 201)


# ---- pages -------------------------------------------------------------------------------------


@router.get("/grade", include_in_schema=False)
def grade_page(request: Request, rater: PageRater, session: Db, state: State) -> Response:
    return _grade_view(request, rater, session, state)


def _grade_view(
    request: Request,
    rater: RaterRecord,
    session: DbSession,
    state: State,
    error: str | None = None,
    draft: str = "",
) -> Response:
    """The next task; `error` and `draft` come from a refused submission, never the URL."""
    if rater.is_admin:
        return RedirectResponse("/admin", status_code=303)
    min_chars = state.ctx.policy.min_rationale_chars
    refusal = grading_refusal(rater)
    task = None if refusal else next_task(session, state.project, rater)
    return render(
        request,
        "grade.html",
        rater=rater,
        refusal=refusal,
        task=None if task is None else task_payload(task, state.project.spec, min_chars),
        key=secrets.token_urlsafe(16),
        error=error,
        draft=draft,
        min_chars=min_chars,
        max_chars=MAX_RATIONALE,
        redteam="redteam" in rater_roles(rater),
    )


@router.post("/grade", include_in_schema=False)
def grade_submit(
    request: Request,
    rater: GraderPage,
    session: Db,
    state: State,
    task_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    score: Annotated[int, Form(ge=0, le=10)],
    rationale: Annotated[str, Form(max_length=MAX_RATIONALE)],
    key: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        grade_task(
            session,
            state.project,
            rater,
            task_id=task_id,
            score=score,
            rationale=rationale,
            idempotency_key=key,
            min_chars=state.ctx.policy.min_rationale_chars,
        )
    except TetherInputError as exc:
        session.rollback()
        return _grade_view(request, rater, session, state, error=str(exc), draft=rationale)
    return RedirectResponse("/grade", status_code=303)
