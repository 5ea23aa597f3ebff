"""Request-scoped dependencies: the project, the signed-in rater, CSRF and role checks.

Roles are enforced here, on the server, for every route: a rater can only ever see their own
work, never another rater's judgments, hidden-anchor labels or an admin page.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from tether.labeling.context import LabelingContext
from tether.labeling.raters import hash_token
from tether.project import Project
from tether.store import DbSession
from tether.store.raters import RaterRecord, find_rater_by_token, get_rater

SESSION_RATER = "rater_id"
SESSION_CSRF = "csrf"


@dataclass(frozen=True)
class WebState:
    project: Project
    ctx: LabelingContext


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


State = Annotated[WebState, Depends(web_state)]


def db_session(state: State) -> Iterator[DbSession]:
    with state.project.store.session() as session:
        yield session


Db = Annotated[DbSession, Depends(db_session)]


def rater_for_token(session: DbSession, token: str) -> RaterRecord | None:
    """The rater whose token this is. Lookup is by hash; the final check is constant-time."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    rater = find_rater_by_token(session, token_hash=digest)
    if rater is None or not hmac.compare_digest(rater.token_hash or "", digest):
        return None
    return rater


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return str(token)


def check_csrf(request: Request, submitted: str) -> None:
    expected = request.session.get(SESSION_CSRF, "")
    if not expected or not hmac.compare_digest(str(expected), submitted or ""):
        raise HTTPException(
            status_code=403, detail="the form's CSRF token is missing or stale; reload the page"
        )


def _session_rater(request: Request, session: DbSession, state: WebState) -> RaterRecord | None:
    rater_id = request.session.get(SESSION_RATER)
    if not isinstance(rater_id, int):
        return None
    try:
        return get_rater(session, project_id=state.project.project_id, rater_id=rater_id)
    except Exception:
        request.session.clear()
        return None


def page_rater(request: Request, session: Db, state: State) -> RaterRecord:
    """The signed-in user of an HTML page; anonymous visitors are sent to sign in."""
    rater = _session_rater(request, session, state)
    if rater is None:
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    return rater


def api_rater(request: Request, session: Db) -> RaterRecord:
    """The caller of a JSON API route, from `Authorization: Bearer <token>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    rater = rater_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
    if rater is None:
        raise HTTPException(
            status_code=401, detail="missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return rater


PageRater = Annotated[RaterRecord, Depends(page_rater)]
ApiRater = Annotated[RaterRecord, Depends(api_rater)]


def require_admin(rater: RaterRecord) -> RaterRecord:
    if not rater.is_admin:
        raise HTTPException(status_code=403, detail="admins only")
    return rater


def require_rater(rater: RaterRecord) -> RaterRecord:
    if rater.is_admin:
        raise HTTPException(status_code=403, detail="admin accounts do not label")
    return rater
