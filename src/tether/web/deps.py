"""Request-scoped dependencies: the project, the signed-in rater, CSRF and role checks.

Roles are enforced here, on the server, for every route: a rater can only ever see their own
work, never another rater's judgments, hidden-anchor labels or an admin page.
"""

from __future__ import annotations

import fcntl
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from tether.errors import TetherInputError
from tether.labeling.context import LabelingContext
from tether.labeling.raters import hash_token, rater_roles
from tether.project import Project
from tether.store import DbSession
from tether.store.raters import RaterRecord, find_rater_by_token, get_rater

SESSION_RATER = "rater_id"
SESSION_CSRF = "csrf"
MAX_ID = 2**31 - 1
"""Largest row id a request may name (PostgreSQL `integer`); larger ones are a 422, not a 500."""


class SqliteTurns:
    """API transactions on a SQLite store take turns: on a lock within a worker process, and on
    an advisory file lock (`flock`) across the worker processes of `tether label serve --workers`.

    SQLite has one writer at a time, and a writer that finds the database locked waits in SQLite's
    busy handler, which sleeps in steps of up to 100 ms: under load most time goes to sleeping.
    A transaction queued on these locks instead starts the moment the previous one ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None  # opened in the worker process that uses it, never inherited

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._thread_lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class WebState:
    project: Project
    ctx: LabelingContext
    sqlite_turns: SqliteTurns | None = field(default=None, compare=False)
    """Set on SQLite stores: API transactions take turns (see `SqliteTurns`)."""


@contextmanager
def transaction(state: WebState) -> Iterator[DbSession]:
    """One committed transaction for an API call, run inside a single threadpool thread."""
    turns = state.sqlite_turns.turn() if state.sqlite_turns is not None else nullcontext()
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


def session_rater(request: Request, session: DbSession, state: WebState) -> RaterRecord | None:
    """The signed-in user of this browser session, or None (a stale session is cleared)."""
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
    rater = session_rater(request, session, state)
    if rater is None:
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    return rater


def unauthorized() -> HTTPException:
    """The 401 of a JSON API route whose caller has no valid bearer token."""
    return HTTPException(
        status_code=401, detail="missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
    )


RATER_TOKEN = HTTPBearer(
    auto_error=False,  # our own 401, with its message, rather than FastAPI's
    scheme_name="RaterToken",
    description="A rater's token, from `tether raters add` or an admin: `Authorization: Bearer <token>`.",
)
"""The JSON API's security scheme, declared in /api/v1/openapi.json for generated clients."""


def header_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, unchecked; None without one (for the
    checks that run before FastAPI's dependencies, `authz.refusal`)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(RATER_TOKEN)],
) -> str:
    """The bearer token, not yet checked (see `authenticated`); 401 without one.

    The two routes raters call in a loop check it inside their own transaction, which saves a
    second transaction (and, on SQLite, a second turn at the lock) per request."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise unauthorized()
    return token


def authenticated(session: DbSession, token: str) -> RaterRecord:
    """The rater a bearer token belongs to; 401 when it belongs to no one."""
    rater = rater_for_token(session, token)
    if rater is None:
        raise unauthorized()
    return rater


def api_rater(token: Annotated[str, Depends(bearer_token)], state: State) -> RaterRecord:
    """The caller of a JSON API route, looked up in a short transaction of its own."""
    with state.project.store.session() as session:
        return authenticated(session, token)


PageRater = Annotated[RaterRecord, Depends(page_rater)]
ApiRater = Annotated[RaterRecord, Depends(api_rater)]
BearerToken = Annotated[str, Depends(bearer_token)]


def require_admin(rater: RaterRecord) -> RaterRecord:
    if not rater.is_admin:
        raise HTTPException(status_code=403, detail="admins only")
    return rater


def require_rater(rater: RaterRecord) -> RaterRecord:
    if rater.is_admin:
        raise HTTPException(status_code=403, detail="admin accounts do not label")
    return rater


def require_role(rater: RaterRecord, role: str) -> RaterRecord:
    """A rater holding `role` (see `labeling.raters.ROLES`) and not excluded; 403 otherwise."""
    require_rater(rater)
    if role not in rater_roles(rater):
        raise HTTPException(status_code=403, detail=f"this needs the '{role}' role; ask a project admin")
    if rater.status == "excluded":
        raise HTTPException(status_code=403, detail="your account is excluded; contact the project admin")
    return rater
