"""`POST /api/v1/feedback`: flagged production outputs from machine clients, with a project API key.

    curl -X POST http://127.0.0.1:8000/api/v1/feedback -H "Authorization: Bearer $TETHER_FEEDBACK_KEY" \\
         -H "Idempotency-Key: req-8f2c" -H "Content-Type: application/json" \\
         -d '{"prompt": "...", "response": "...", "model_version": "rl-7", "reason": "safety: harmful"}'

The key (`tether feedback keys create NAME`) goes in `Authorization: Bearer` or `X-API-Key`; only
keys of scope "feedback" work here, and they work nowhere else (a rater token is refused here, and
this key is refused by the rater API). The body is one item, whose idempotency key may come in the
`Idempotency-Key` header, or a batch `{"items": [...]}` of up to MAX_ITEMS items, each with its own
`idempotency_key`. A request is all or nothing: any bad item is a 422 naming the item and field, and
nothing of it is stored. Each item is stored once per key; the reply says per item whether it was
"stored" or a "duplicate" (201 when anything was stored, 200 for a pure retry). Reusing a key for
different content is a 409.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tether.feedback.ingest import FlaggedItem, Problem, check_item, to_new_feedback
from tether.store.api_keys import verify_api_key
from tether.store.feedback import FeedbackOutcome, add_feedback
from tether.web.deps import State, WebState, transaction

router = APIRouter(prefix="/api/v1", tags=["feedback"])

MAX_ITEMS = 500
"""Most items in one request (the app also caps a request body at 64 KiB)."""
SCOPE = "feedback"


FEEDBACK_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="FeedbackKeyBearer",
    description="A feedback key (`tether feedback keys create NAME`) as `Authorization: Bearer <key>`.",
)
FEEDBACK_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="FeedbackKey",
    description="A feedback key (`tether feedback keys create NAME`) in the `X-API-Key` header.",
)


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` or else an `X-API-Key: <key>` header, unchecked."""
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return (header or "").strip() or None


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="missing, unknown or revoked API key; send a feedback key as 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _check_key(state: WebState, key: str) -> None:
    with state.project.store.session() as session:
        if verify_api_key(session, project_id=state.project.project_id, key=key, scope=SCOPE) is None:
            raise _unauthorized()


class RequestProblem(Exception):
    """A request that cannot be stored: its status code and a JSON body naming what is wrong."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail"))
        self.status_code, self.body = status_code, body


def _invalid(problems: list[Problem]) -> RequestProblem:
    # The same shape as the app's other 422s; at most 50 problems, never the submitted values.
    listed = [{"field": p.field, "message": p.message} for p in problems[:50]]
    return RequestProblem(422, {"detail": "invalid request", "problems": listed})


def parse_items(raw: bytes, header_key: str | None) -> list[FlaggedItem]:
    """The request's items: one object, or `{"items": [...]}`; raises a 400 or 422 `RequestProblem`."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(400, {"detail": f"the body is not valid JSON: {exc}"}) from None
    if isinstance(body, dict) and "items" in body:
        if header_key is not None:
            raise _invalid([Problem("Idempotency-Key", "a batch carries an idempotency_key per item")])
        return _batch(body)
    checked = check_item(body, key=header_key)
    if isinstance(checked, list):
        raise _invalid(checked)
    return [checked]


def _batch(body: dict[str, Any]) -> list[FlaggedItem]:
    extra = sorted(set(body) - {"items"})
    if extra:
        raise _invalid([Problem(name, 'unknown field (a batch is {"items": [...]})') for name in extra])
    raw_items = body["items"]
    if not isinstance(raw_items, list) or not raw_items:
        raise _invalid([Problem("items", "expected a non-empty list of items")])
    if len(raw_items) > MAX_ITEMS:
        raise _invalid([Problem("items", f"{len(raw_items)} items; send at most {MAX_ITEMS} per request")])
    items: list[FlaggedItem] = []
    problems: list[Problem] = []
    for index, data in enumerate(raw_items):
        checked = check_item(data, where=f"items[{index}]")
        if isinstance(checked, list):
            problems.extend(checked)
        else:
            items.append(checked)
    if problems:
        raise _invalid(problems)
    return items


def _store(state: WebState, items: list[FlaggedItem]) -> list[FeedbackOutcome]:
    project, project_id = state.project, state.project.project_id
    new = [to_new_feedback(item, project.spec.feedback) for item in items]
    with transaction(state) as session:
        outcomes = add_feedback(session, project_id=project_id, items=new, spec_hash=project.spec_hash)
        clashes = [f"items[{i}]" for i, o in enumerate(outcomes) if o.outcome == "conflict"]
        if clashes:  # raised inside the transaction: nothing of this request is stored
            raise HTTPException(
                status_code=409,
                detail=f"idempotency key already used for different content: {', '.join(clashes[:20])}",
            )
    return outcomes


@router.post("/feedback", status_code=201, responses={200: {"description": "every item was a duplicate"}})
async def post_feedback(
    request: Request,
    state: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(FEEDBACK_BEARER)],
    header: Annotated[str | None, Depends(FEEDBACK_HEADER)],
) -> JSONResponse:
    """Store flagged production items (one, or a batch); each is stored once per idempotency key."""
    key = presented_key(bearer, header)
    if key is None:
        raise _unauthorized()
    await run_in_threadpool(_check_key, state, key)
    try:
        items = parse_items(await request.body(), request.headers.get("idempotency-key"))
    except RequestProblem as problem:
        return JSONResponse(problem.body, status_code=problem.status_code)
    outcomes = await run_in_threadpool(_store, state, items)
    stored = sum(o.outcome == "stored" for o in outcomes)
    payload = {
        "stored": stored,
        "duplicates": len(outcomes) - stored,
        "items": [
            {"index": i, "idempotency_key": o.idempotency_key, "id": o.id, "status": o.outcome}
            for i, o in enumerate(outcomes)
        ],
    }
    return JSONResponse(payload, status_code=201 if stored else 200)
