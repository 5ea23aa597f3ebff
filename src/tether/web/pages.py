"""Server-rendered pages for raters: sign-in, calibration, comparison, and the empty queue."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tether.errors import TetherInputError
from tether.labeling.queue import next_item
from tether.labeling.submit import MAX_RATIONALE, submit_judgment
from tether.store.judgments import count_judgments_since
from tether.store.raters import RaterRecord
from tether.web.authz import LabelerPage
from tether.web.deps import (
    MAX_ID,
    SESSION_RATER,
    Db,
    PageRater,
    State,
    check_csrf,
    csrf_token,
    rater_for_token,
    refuse_nul,
)
from tether.web.views import item_payload, result_payload

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("csrf", csrf_token(request))
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status)
    return response


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/rate" if request.session.get(SESSION_RATER) else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login")
def login(
    request: Request,
    session: Db,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    rater = rater_for_token(session, token.strip())
    if rater is None:
        return render(request, "login.html", status=401, error="That token is not valid.")
    request.session.clear()  # a fresh session on sign-in, against session fixation
    request.session[SESSION_RATER] = rater.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse("/admin" if rater.is_admin else "/rate", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _today(session: Db, rater_id: int) -> int:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return count_judgments_since(session, rater_id=rater_id, since=midnight)


@router.get("/rate")
def rate_page(request: Request, rater: PageRater, session: Db, state: State) -> Response:
    return _rate_view(request, rater, session, state)


def _rate_view(
    request: Request, rater: RaterRecord, session: Db, state: State, error: str | None = None, draft: str = ""
) -> Response:
    """The rater's next item; `error` and `draft` come from a refused submission, never the URL."""
    from tether.web.grading import rater_links  # imported here: the grading module imports `render`

    if rater.is_admin:
        return RedirectResponse("/admin", status_code=303)
    item = next_item(session, state.ctx, rater)
    common: dict[str, Any] = {
        "rater": rater,
        "today": _today(session, rater.id),
        "min_chars": state.ctx.policy.min_rationale_chars,
        "links": rater_links(session, state.project, rater),
    }
    if item is None:
        return render(request, "empty.html", **common)
    return render(
        request,
        "rate.html",
        item=item_payload(item, state.project.spec),
        key=secrets.token_urlsafe(16),
        error=error,
        draft=draft,
        max_chars=MAX_RATIONALE,
        **common,
    )


@router.post("/rate")
def rate_submit(
    request: Request,
    rater: LabelerPage,
    session: Db,
    state: State,
    assignment_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    choice: Annotated[str, Form(max_length=4)],
    strength: Annotated[int, Form()],
    rationale: Annotated[str, Form(max_length=MAX_RATIONALE)],
    key: Annotated[str, Form(max_length=200)],
    seconds: Annotated[float, Form()] = 0.0,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        refuse_nul(rationale=rationale, key=key)
        result = submit_judgment(
            session,
            state.ctx,
            rater,
            assignment_id=assignment_id,
            choice=choice,
            strength=strength,
            rationale=rationale,
            seconds=max(0.0, min(seconds, 86_400.0)),
            idempotency_key=key,
        )
    except TetherInputError as exc:
        session.rollback()
        return _rate_view(request, rater, session, state, error=str(exc), draft=rationale)
    payload = result_payload(result)
    # A hidden anchor's outcome is never shown on the page: it must look like any other task.
    if payload["feedback"] is None and not result.round_complete:
        return RedirectResponse("/rate", status_code=303)
    return render(request, "feedback.html", rater=rater, result=payload, status_change=payload["status"])
