"""The JSON API under /api/v1, for programmatic raters (AI raters) and integrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tether.errors import TetherInputError
from tether.labeling.queue import next_item
from tether.labeling.submit import MAX_RATIONALE, SubmitResult, submit_judgment
from tether.store.judgments import rater_judgments
from tether.web.authz import AdminApi, DeclaredCheck
from tether.web.deps import (
    MAX_ID,
    ApiRater,
    BearerToken,
    Db,
    State,
    WebState,
    authenticated,
    refuse_nul,
    require_rater,
    transaction,
)
from tether.web.schemas import AssignmentOut, JudgmentOut
from tether.web.views import item_payload, result_payload

router = APIRouter(prefix="/api/v1", tags=["labeling"])
T = TypeVar("T")
LABELER = Depends(DeclaredCheck(require_rater))
"""The hot routes check `require_rater` in their own transaction; this declares it for bad bodies."""


class JudgmentIn(BaseModel):
    """A judgment as submitted: `choice` is in the order the rater saw (left = A)."""

    model_config = ConfigDict(extra="forbid")

    assignment_id: int = Field(ge=1, le=MAX_ID)
    choice: Literal["A", "B", "tie"]
    strength: int = Field(ge=1, le=3)
    rationale: str = Field(max_length=MAX_RATIONALE)
    seconds: float = Field(default=0.0, ge=0, le=86_400)


@router.get("/me")
def me(rater: ApiRater) -> dict[str, Any]:
    """The caller's own account."""
    return {"name": rater.name, "kind": rater.kind, "status": rater.status, "admin": rater.is_admin}


# The two routes raters call in a loop are async and do all their database work (the token
# check included) in one threadpool call, in one transaction that commits before the reply is
# built. A sync route would hold its connection (and, on SQLite, the write lock) through further
# threadpool hops (response serialization, the session's exit), which under load wait behind
# threads that are themselves waiting for that connection or lock.


def _next_payload(state: WebState, token: str) -> dict[str, Any] | None:
    with transaction(state) as session:
        rater = require_rater(authenticated(session, token))
        item = next_item(session, state.ctx, rater)
        return None if item is None else item_payload(item, state.project.spec)


def _submit(state: WebState, token: str, body: JudgmentIn, idempotency_key: str) -> SubmitResult:
    with transaction(state) as session:
        rater = require_rater(authenticated(session, token))
        return submit_judgment(
            session,
            state.ctx,
            rater,
            assignment_id=body.assignment_id,
            choice=body.choice,
            strength=body.strength,
            rationale=body.rationale,
            seconds=body.seconds,
            idempotency_key=idempotency_key,
        )


async def _run(state: WebState, fn: Callable[..., T], *args: Any) -> T:
    """Run a hot route's transaction: on SQLite in the event loop itself, elsewhere in a thread.

    SQLite transactions take turns on one lock whatever thread runs them, so a threadpool adds
    only the cost of two thread switches per request, which measured about a fifth of the
    server's CPU per judgment under load. On PostgreSQL transactions do run side by side, and
    the threadpool lets them."""
    if state.sqlite_turns is not None:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


@router.get(
    "/assignments/next",
    responses={200: {"model": AssignmentOut}, 204: {"description": "nothing to do"}},
    dependencies=[LABELER],
)
async def next_assignment(token: BearerToken, state: State) -> Any:
    """The caller's next item (calibration anchors first); 204 when the queue is empty."""
    payload = await _run(state, _next_payload, state, token)
    # A JSONResponse directly: the payload is plain JSON already, and FastAPI's generic encoder
    # would walk it again on every fetch.
    return Response(status_code=204) if payload is None else JSONResponse(payload)


@router.post(
    "/judgments",
    status_code=201,
    responses={201: {"model": JudgmentOut}, 200: {"model": JudgmentOut, "description": "a replay"}},
    dependencies=[LABELER],
)
async def submit(
    body: JudgmentIn,
    token: BearerToken,
    state: State,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Any:
    """Submit a judgment. A retry with the same Idempotency-Key returns the original (200)."""
    try:
        refuse_nul(rationale=body.rationale, idempotency_key=idempotency_key)
        result = await _run(state, _submit, state, token, body, idempotency_key)
    except TetherInputError as exc:
        status = 409 if "already" in str(exc) else 422
        raise HTTPException(status_code=status, detail=str(exc)) from None
    return JSONResponse(result_payload(result), status_code=200 if result.replayed else 201)


@router.get("/me/judgments")
def my_judgments(rater: ApiRater, session: Db) -> list[dict[str, Any]]:
    """The caller's own judgments, oldest first (never anyone else's)."""
    return [
        {
            "judgment_id": j.id,
            "assignment_id": j.assignment_id,
            "choice": j.shown_choice,
            "strength": j.strength,
            "rationale": j.rationale,
            "seconds": j.seconds,
            "created_at": j.created_at.isoformat(),
        }
        for j in rater_judgments(session, rater_id=rater.id)
    ]


@router.get("/admin/raters")
def admin_raters(rater: AdminApi, state: State) -> dict[str, Any]:
    """The rater agreement and bias report (admins only)."""
    from tether.labeling.report import raters_status

    return raters_status(state.project)
