"""Authorization before validation: a route's role check runs before its body is looked at.

A caller without the role a route needs gets 403 whatever it sent, never a 422 that describes the
route's schema. Two mechanisms, because FastAPI reports problems in two places:

- The checks are dependencies (`ApiCheck`, `PageCheck`). FastAPI solves a route's dependencies
  before it reports field errors in the body, path, query or headers, so a 401 or 403 raised by
  one wins over a well-formed body with wrong fields.
- FastAPI decodes the body before it solves anything, so a body that is not JSON (or a form it
  cannot parse) raises its 422 first. The app's 422 handler therefore asks `refusal` whether the
  matched route's check would have refused the caller, and answers with that instead.

The two hot labeling routes check their token inside their own transaction (one transaction per
request, see `tether.web.api`); `DeclaredCheck` only declares their check for the 422 handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exception_handlers import http_exception_handler
from fastapi.routing import APIRoute

from tether.store.raters import RaterRecord
from tether.web.deps import (
    ApiRater,
    PageRater,
    WebState,
    header_token,
    rater_for_token,
    require_admin,
    require_rater,
    require_role,
    session_rater,
    unauthorized,
)

Check = Callable[[RaterRecord], RaterRecord]
"""Returns the rater it was given, or raises a 403 `HTTPException` saying what is missing."""


class ApiCheck:
    """Dependency: the bearer-token caller of a JSON route, passed through ``check``."""

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, rater: ApiRater) -> RaterRecord:
        return self.check(rater)


class PageCheck:
    """Dependency: the signed-in user of an HTML form route, passed through ``check``."""

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, rater: PageRater) -> RaterRecord:
        return self.check(rater)


class DeclaredCheck:
    """Dependency that does nothing at request time: the route applies ``check`` itself, inside its
    own transaction. It tells the 422 handler which check to apply before describing a bad body."""

    def __init__(self, check: Check) -> None:
        self.check = check

    async def __call__(self) -> None:
        return None


def role(name: str) -> Check:
    """The check for one rater role (`tether.labeling.raters.ROLES`), e.g. ``role("redteam")``."""

    def check(rater: RaterRecord) -> RaterRecord:
        return require_role(rater, name)

    check.__name__ = f"require_{name}_role"
    return check


AnyCheck = ApiCheck | PageCheck | DeclaredCheck


def route_check(route: Any) -> AnyCheck | None:
    """The check among the route's dependencies (searched depth-first), or None when it has none."""
    if not isinstance(route, APIRoute):
        return None
    pending: list[Dependant] = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop(0)
        if isinstance(dependant.call, ApiCheck | PageCheck | DeclaredCheck):
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def _caller_refusal(request: Request, found: AnyCheck) -> HTTPException | None:
    """Blocking: the 401, 303 or 403 that ``found`` gives this request's caller, or None."""
    state: WebState = request.app.state.web
    if isinstance(found, PageCheck):
        with state.project.store.session() as session:
            rater = session_rater(request, session, state)
        if rater is None:
            return HTTPException(status_code=303, headers={"Location": "/login"})
    else:
        token = header_token(request)
        with state.project.store.session() as session:
            rater = None if token is None else rater_for_token(session, token)
        if rater is None:
            return unauthorized()
    try:
        found.check(rater)
    except HTTPException as refused:
        return refused
    return None


async def refusal(request: Request) -> Response | None:
    """The response the matched route's check gives this caller, or None when it passes (or the
    route needs no check): what the 422 handler answers before it describes a bad body."""
    from starlette.concurrency import run_in_threadpool

    found = route_check(request.scope.get("route"))
    if found is None:
        return None
    refused = await run_in_threadpool(_caller_refusal, request, found)
    return None if refused is None else await http_exception_handler(request, refused)


AdminApi = Annotated[RaterRecord, Depends(ApiCheck(require_admin))]
AdminPage = Annotated[RaterRecord, Depends(PageCheck(require_admin))]
LabelerPage = Annotated[RaterRecord, Depends(PageCheck(require_rater))]
REDTEAM = role("redteam")
RedteamApi = Annotated[RaterRecord, Depends(ApiCheck(REDTEAM))]
RedteamPage = Annotated[RaterRecord, Depends(PageCheck(REDTEAM))]
