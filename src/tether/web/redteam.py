"""The red-team role: people who hunt for outputs the reward model may love but should not.

    GET  /redteam                    the submission form and the red-teamer's own findings
    POST /redteam                    submit a finding (CSRF), with earlier turns as repeated
                                     turn_role / turn_content fields
    POST /api/v1/redteam/findings    {prompt | messages, response, dimension, note} with an
                                     Idempotency-Key
    GET  /api/v1/redteam/findings    the caller's own findings

Only raters holding the "redteam" role (`tether raters add NAME --role redteam`) may use these;
everyone else gets 403. A finding is stored with `source="web"` and the red-teamer's rater id.
Findings are identified by their content, so a retried submission returns the stored finding.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tether.conversation import check_messages, fill_prompt
from tether.errors import TetherInputError
from tether.labeling.submit import MAX_RATIONALE
from tether.project import Project
from tether.store import DbSession
from tether.store.findings import FindingRecord, NewFinding, add_findings, finding_id, list_findings
from tether.store.raters import RaterRecord
from tether.web.authz import RedteamApi, RedteamPage
from tether.web.deps import Db, PageRater, State, check_csrf, refuse_nul, require_role
from tether.web.pages import render

router = APIRouter()
ROLE = "redteam"
MAX_TEXT = 20_000
"""Longest prompt or response a red-teamer may submit, in characters."""
MAX_TURNS = 200
"""Most messages a finding's conversation may hold."""
SHOWN = 200
"""How many of their own findings a red-teamer's page lists, newest first."""


class FindingIn(BaseModel):
    """A finding as a red-teamer submits it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    """The prompt that elicited the response: the last user turn of ``messages`` when given (filled in
    from them when left out)."""
    messages: list[dict[str, str]] | None = Field(default=None, max_length=MAX_TURNS)
    """The conversation the response answers (`tether.conversation`), for a multi-turn finding."""
    response: str = Field(min_length=1, max_length=MAX_TEXT)
    """The response found bad, verbatim."""
    dimension: str | None = Field(default=None, max_length=50)
    """The spec dimension it fails, if one applies."""
    note: str = Field(max_length=MAX_RATIONALE)
    """Why it is bad, at least the spec's `labeling.min_rationale_chars` characters."""

    _prompt_from_messages = model_validator(mode="before")(fill_prompt)

    @model_validator(mode="after")
    def _messages_end_with_prompt(self) -> FindingIn:
        check_messages(self.messages, self.prompt)
        return self


@dataclass(frozen=True)
class Submitted:
    finding_id: int
    replayed: bool
    """True when this content was already stored (a retry, or someone found it first)."""


def submit_finding(
    session: DbSession,
    project: Project,
    rater: RaterRecord,
    *,
    prompt: str,
    response: str,
    dimension: str | None,
    note: str,
    idempotency_key: str,
    messages: list[dict[str, str]] | None = None,
) -> Submitted:
    """Validate a red-teamer's finding and store it once; raises TetherInputError on bad input."""
    refuse_nul(prompt=prompt, response=response, note=note, idempotency_key=idempotency_key)
    if not prompt.strip() or not response.strip():
        raise TetherInputError("prompt and response must not be blank")
    if dimension is not None and dimension not in project.spec.dimension_ids:
        known = ", ".join(project.spec.dimension_ids)
        raise TetherInputError(f"dimension '{dimension}' is not in the spec; use one of {known}")
    min_chars = project.spec.labeling.min_rationale_chars
    if len(note.strip()) < min_chars:
        raise TetherInputError(f"the note needs at least {min_chars} characters (got {len(note.strip())})")
    pid = project.project_id
    messages = messages if messages and len(messages) > 1 else None  # a lone user turn is the prompt
    existing = finding_id(session, project_id=pid, prompt=prompt, response=response, messages=messages)
    if existing is not None:
        return Submitted(existing, replayed=True)
    finding = NewFinding(
        source="web",
        prompt=prompt,
        messages=messages,
        response=response,
        dimension=dimension,
        note=note,
        submitted_by=rater.id,
        meta={"idempotency_key": idempotency_key},
    )
    [new_id] = add_findings(session, project_id=pid, findings=[finding], spec_hash=project.spec_hash)
    return Submitted(new_id, replayed=False)


def finding_payload(f: FindingRecord) -> dict[str, Any]:
    """A red-teamer's view of their own finding (no reward-model or grader internals)."""
    return {
        "finding_id": f.id,
        "prompt": f.prompt,
        "messages": f.messages or [{"role": "user", "content": f.prompt}],
        "response": f.response,
        "dimension": f.dimension,
        "note": f.note,
        "status": f.status,
        "created_at": f.created_at.isoformat(),
    }


def own_findings(session: DbSession, project: Project, rater: RaterRecord) -> list[FindingRecord]:
    found = list_findings(session, project_id=project.project_id, submitted_by=rater.id, limit=SHOWN)
    return sorted(found, key=lambda f: f.id, reverse=True)


# ---- JSON API ----------------------------------------------------------------------------------


@router.post("/api/v1/redteam/findings", tags=["redteam"], status_code=201)
def api_submit(
    rater: RedteamApi,
    body: FindingIn,
    session: Db,
    state: State,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Response:
    """Submit a finding; 200 with the stored id when the same prompt and response are already in."""
    try:
        result = submit_finding(
            session,
            state.project,
            rater,
            prompt=body.prompt,
            response=body.response,
            dimension=body.dimension,
            note=body.note,
            idempotency_key=idempotency_key,
            messages=body.messages,
        )
    except TetherInputError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    payload = {"finding_id": result.finding_id, "replayed": result.replayed}
    return JSONResponse(payload, status_code=200 if result.replayed else 201)


@router.get("/api/v1/redteam/findings", tags=["redteam"])
def api_mine(rater: RedteamApi, session: Db, state: State) -> list[dict[str, Any]]:
    """The caller's own findings, newest first."""
    return [finding_payload(f) for f in own_findings(session, state.project, rater)]


# ---- pages -------------------------------------------------------------------------------------


@router.get("/redteam", include_in_schema=False)
def redteam_page(request: Request, rater: PageRater, session: Db, state: State) -> Response:
    if rater.is_admin:
        return RedirectResponse("/admin", status_code=303)
    require_role(rater, ROLE)
    return _redteam_view(request, rater, session, state)


def _redteam_view(
    request: Request,
    rater: RaterRecord,
    session: DbSession,
    state: State,
    error: str | None = None,
    draft: dict[str, Any] | None = None,
) -> Response:
    """The form and the rater's findings; `error` and `draft` come from a refused submission."""
    return render(
        request,
        "redteam.html",
        rater=rater,
        dimensions=state.project.spec.dimension_ids,
        findings=[finding_payload(f) for f in own_findings(session, state.project, rater)],
        error=error,
        draft=draft or {},
        min_chars=state.project.spec.labeling.min_rationale_chars,
        max_text=MAX_TEXT,
        max_chars=MAX_RATIONALE,
        saved=request.query_params.get("saved") == "1",
        key=secrets.token_urlsafe(16),
    )


def form_messages(roles: list[str], contents: list[str], prompt: str) -> list[dict[str, str]] | None:
    """The form's earlier turns (blank ones left out) and the prompt as one conversation; None for
    the prompt alone. `submit_finding` checks the conversation's rules and names what is wrong."""
    if len(roles) != len(contents):
        raise TetherInputError(f"{len(roles)} turn roles but {len(contents)} turn texts")
    turns = [{"role": r, "content": c} for r, c in zip(roles, contents, strict=True) if c.strip()]
    return [*turns, {"role": "user", "content": prompt}] if turns else None


@router.post("/redteam", include_in_schema=False)
def redteam_submit(
    request: Request,
    rater: RedteamPage,
    session: Db,
    state: State,
    prompt: Annotated[str, Form(max_length=MAX_TEXT)],
    response: Annotated[str, Form(max_length=MAX_TEXT)],
    note: Annotated[str, Form(max_length=MAX_RATIONALE)],
    key: Annotated[str, Form(min_length=1, max_length=200)],
    dimension: Annotated[str, Form(max_length=50)] = "",
    turn_role: Annotated[list[str] | None, Form(max_length=MAX_TURNS)] = None,
    turn_content: Annotated[list[str] | None, Form(max_length=MAX_TURNS)] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    roles, contents = turn_role or [], turn_content or []
    turns = [{"role": r, "content": c} for r, c in zip(roles, contents, strict=False)]
    draft = {"prompt": prompt, "response": response, "note": note, "dimension": dimension, "turns": turns}
    try:
        if any(len(c) > MAX_TEXT for c in contents):
            raise TetherInputError(f"an earlier turn is longer than {MAX_TEXT} characters")
        submit_finding(
            session,
            state.project,
            rater,
            prompt=prompt,
            response=response,
            dimension=dimension or None,
            note=note,
            idempotency_key=key,
            messages=form_messages(roles, contents, prompt),
        )
    except TetherInputError as exc:
        session.rollback()
        return _redteam_view(request, rater, session, state, error=str(exc), draft=draft)
    return RedirectResponse("/redteam?saved=1", status_code=303)
