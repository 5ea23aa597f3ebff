"""Request-scoped dependencies: the project, the signed-in rater, CSRF and role checks.

Roles are enforced here, on the server, for every route: a rater can only ever see their own
work, never another rater's judgments, hidden-anchor labels or an admin page.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from tether.errors import TetherInputError
from tether.labeling.context import LabelingContext
from tether.labeling.raters import hash_token
from tether.project import Project
from tether.store import DbSession
from tether.store.raters import RaterRecord, find_rater_by_token, get_rater

SESSION_RATER = "rater_id"
SESSION_CSRF = "csrf"
MAX_ID = 2**31 - 1
"""Largest row id a request may name (PostgreSQL `integer`); larger ones are a 422, not a 500."""


@dataclass(frozen=True)
class WebState:
    project: Project
    ctx: LabelingContext
    sqlite_turns: threading.Lock = field(default_factory=threading.Lock, compare=False)
    """API transactions take turns on SQLite (see `transaction`)."""


@contextmanager
def transaction(state: WebState) -> Iterator[DbSession]:
    """One committed transaction for an API call, run inside a single threadpool thread.

    SQLite has one writer at a time, and a writer that finds the lock taken waits in SQLite's busy
    handler, which sleeps in steps of up to 100 ms: under load most time goes to sleeping. So on
    SQLite this process's API transactions queue on a lock instead and start the moment it frees.
    """
    turns = state.sqlite_turns if state.project.store.url.startswith("sqlite") else nullcontext()
    with turns, state.project.store.session() as session:
        yield session


async def web_state(request: Request) -> WebState:
    # async: nothing blocks here, so it needs no trip through the threadpool
    state: WebState = request.app.state.web
    return state


State = Annotated[WebState, Depends(web_state)]


def db_session(state: State) -> Iterator[DbSession]:
    with state.project.store.session() as session:
        yield session


Db = Annotated[DbSession, Depends(db_session, scope="function")]
"""One transaction per request, committed before the response is sent, so a client is never told
"saved" about a write that has not been committed (FastAPI's default would commit afterwards)."""


def rater_for_token(session: DbSession, token: str) -> RaterRecord | None:
    """The rater whose token this is. Lookup is by hash; the final check is constant-time."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    rater = find_rater_by_token(session, token_hash=digest)
    if rater is None or not hmac.compare_digest(rater.token_hash or "", digest):
        return None
    return rater


def refuse_nul(**fields: str) -> None:
    """Refuse text with NUL characters before it reaches the store: PostgreSQL cannot hold them."""
    for name, value in fields.items():
        if "\x00" in value:
            raise TetherInputError(f"{name} contains a NUL (\\x00) character; remove it and resubmit")


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


def api_rater(request: Request, state: State) -> RaterRecord:
    """The caller of a JSON API route, from `Authorization: Bearer <token>`.

    Looked up in a short transaction of its own: a connection held from here into the route
    would wait for a free threadpool thread while other requests wait for its connection."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    rater = None
    if scheme.lower() == "bearer":
        with state.project.store.session() as session:
            rater = rater_for_token(session, token.strip())
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
