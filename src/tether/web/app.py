"""The rater web app: `tether label serve`.

    tether label serve --host 127.0.0.1 --port 8000

FastAPI with server-rendered Jinja2 pages (autoescaped), a little plain JavaScript for keyboard
shortcuts, and no CDN: everything ships inside the package and works offline.
"""

from __future__ import annotations

import os
import secrets
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether import __version__
from tether.labeling.context import LabelingContext, project_labeling_context
from tether.project import Project
from tether.web import admin, api, authz, feedback_api, grading, pages, redteam
from tether.web.deps import SqliteTurns, WebState, header_token, rater_for_token

MAX_BODY = 64 * 1024
"""Largest request body accepted, in bytes (rationales are capped far below this)."""
BATCH_BODY = 2 * 1024 * 1024
"""Largest body for the batch endpoints (`BATCH_PATHS`): 500 flagged production items fit."""
BATCH_PATHS = ("/api/v1/feedback",)


class BodyLimit:
    """Refuse request bodies over MAX_BODY (BATCH_BODY on batch endpoints) with 413, with or without
    a Content-Length header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = BATCH_BODY if scope.get("path") in BATCH_PATHS else MAX_BODY
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)(
                scope, receive, send
            )
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(status_code=413, detail=f"request body over {limit} bytes")
            return message

        await self.app(scope, limited, send)


def session_secret(project: Project) -> str:
    """A per-project signing key for session cookies, created on first use, readable only by its owner."""
    path = project.path("web", "session.key")
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def create_app(project: Project, ctx: LabelingContext, *, secure_cookies: bool = False) -> FastAPI:
    app = FastAPI(
        title="Tether labeling", version=__version__, docs_url="/api/docs", openapi_url="/api/v1/openapi.json"
    )
    turns = SqliteTurns(project.path("web", "sqlite.turns")) if project.db_url.startswith("sqlite") else None
    app.state.web = WebState(project, ctx, turns)
    app.state.templates = Jinja2Templates(directory=str(files("tether.web") / "templates"))
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(project),
        session_cookie="tether_session",
        same_site="lax",
        https_only=secure_cookies,
        max_age=12 * 3600,
    )
    app.add_middleware(BodyLimit)
    app.mount("/static", StaticFiles(directory=str(files("tether.web") / "static")), name="static")
    app.include_router(api.router)  # first: routes are matched in order, and the API is the hot path
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(grading.router)
    app.include_router(redteam.router)
    app.include_router(feedback_api.router)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # A caller the route's check refuses gets that 401/403 (or the page's sign-in redirect),
        # never a description of the body it sent (`tether.web.authz`).
        refused = await authz.refusal(request)
        if refused is not None:
            return refused
        if request.url.path.startswith("/api/") and not await run_in_threadpool(_has_valid_token, request):
            return JSONResponse(
                {"detail": "missing or invalid bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Field-level messages, never a 500, and never the submitted values echoed back.
        problems = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)

    return app


def _has_valid_token(request: Request) -> bool:
    state: WebState = request.app.state.web
    token = header_token(request)
    if token is None:
        return False
    with state.project.store.session() as session:
        return rater_for_token(session, token) is not None


PROJECT_ENV = "TETHER_WEB_PROJECT"
SECURE_ENV = "TETHER_WEB_SECURE_COOKIES"


def app_from_env() -> FastAPI:
    """The app for the project named in the environment: the factory each worker process of
    `tether label serve --workers N` calls (uvicorn starts workers from an import string)."""
    project = Project.open(Path(os.environ[PROJECT_ENV]))
    secure = os.environ.get(SECURE_ENV) == "1"
    return create_app(project, project_labeling_context(project), secure_cookies=secure)
