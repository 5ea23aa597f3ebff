"""Every route, role and error of the rater web app, through FastAPI's TestClient.

The security list first (who may see what), then sign-in, escaping, idempotency, malformed
requests, the empty queue, the admin dashboard and the export download. Core flows run on
SQLite and PostgreSQL (`web`); the rest on SQLite only (`web_sqlite`) to keep the suite quick.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from tether.spec.anchors import Anchor
from tether.store import NewPrompt, add_prompts
from tether.store.prompts import prompt_ids_by_key
from tether.store.raters import get_rater
from tether.store.tasks import NewTask, add_responses, add_tasks, create_assignment
from tether.web.admin import router as admin_router
from tether.web.api import router as api_router
from tether.web.app import MAX_BODY, create_app
from tether.web.pages import router as pages_router
from tether.web.schemas import AssignmentOut, JudgmentOut

from .conftest import WebProject, bearer, form_csrf, make_web_project

Response = Any  # what TestClient returns (httpx or httpx2, depending on the Starlette version)

REASON = "the left answer is correct and shorter"
MARKUP = "<script>alert(1)</script>"
ANCHOR_FIELDS = ("label", "expert", "explanation", "anchor", "correct", "clear_cut")


# ---- helpers -------------------------------------------------------------------------------


def next_item(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/assignments/next", headers=bearer(token))
    assert response.status_code == 200, response.text
    item: dict[str, Any] = response.json()
    return item


def submit(
    client: TestClient,
    token: str,
    assignment_id: int,
    *,
    key: str,
    choice: str = "A",
    strength: int = 2,
    rationale: str = REASON,
) -> Response:
    body = {"assignment_id": assignment_id, "choice": choice, "strength": strength, "rationale": rationale}
    return client.post("/api/v1/judgments", headers={**bearer(token), "Idempotency-Key": key}, json=body)


def answer(client: TestClient, token: str, n: int, *, prefix: str = "k") -> list[dict[str, Any]]:
    """Answer the caller's next `n` items through the API; returns the submission results."""
    results = []
    for i in range(n):
        item = next_item(client, token)
        response = submit(client, token, item["assignment_id"], key=f"{prefix}-{i}")
        assert response.status_code == 201, response.text
        results.append(response.json())
    return results


def my_judgments(client: TestClient, token: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/judgments", headers=bearer(token))
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


def statuses(client: TestClient, admin_token: str) -> dict[str, str]:
    report = client.get("/api/v1/admin/raters", headers=bearer(admin_token))
    assert report.status_code == 200, report.text
    return {r["name"]: r["status"] for r in report.json()["raters"]}


def rate_form(csrf: str, assignment_id: int | str, **fields: str) -> dict[str, str]:
    data = {
        "csrf": csrf,
        "assignment_id": str(assignment_id),
        "choice": "A",
        "strength": "2",
        "rationale": REASON,
        "key": "form-key",
        "seconds": "4.2",
    }
    return {**data, **fields}


def csrf_field(value: str | None) -> dict[str, str]:
    """The form's CSRF field, or no field at all for None."""
    return {} if value is None else {"csrf": value}


def assignment_on_page(html: str) -> int:
    match = re.search(r'name="assignment_id" value="(\d+)"', html)
    assert match, "the rate page has no assignment"
    return int(match.group(1))


def anchor_for(web: WebProject, prompt: str) -> Anchor | None:
    """The anchor whose prompt this is (None for a live task)."""
    return next((a for a in web.ctx.anchors.values() if a.prompt == prompt), None)


def with_hidden_anchors(web: WebProject) -> WebProject:
    """The same project served with every active rater's next item drawn as a hidden anchor."""
    policy = web.ctx.policy.model_copy(update={"hidden_anchor_rate": 1.0})
    ctx = dataclasses.replace(web.ctx, policy=policy)
    return WebProject(web.project, ctx, create_app(web.project, ctx))


def assign_markup_task(web: WebProject, rater: str, *, prompt: str, left: str, right: str) -> None:
    """Plan one live task with the given texts and hand it to `rater` as their open item."""
    project = web.project
    with project.store.session() as session:
        add_prompts(
            session,
            project_id=project.project_id,
            prompts=[NewPrompt(key="markup", text=prompt, dimension="accuracy", stratum="routine")],
            spec_hash=project.spec_hash,
        )
        prompt_id = prompt_ids_by_key(session, project_id=project.project_id, keys=["markup"])["markup"]
        a, b = add_responses(
            session,
            project_id=project.project_id,
            items=[(prompt_id, left, "test"), (prompt_id, right, "test")],
            spec_hash=project.spec_hash,
        )
        (task_id,) = add_tasks(
            session,
            project_id=project.project_id,
            batch_id=None,
            tasks=[NewTask(prompt_id=prompt_id, response_a_id=a, response_b_id=b, raters_needed=0)],
            spec_hash=project.spec_hash,
        )
        rater_id = get_rater(session, project_id=project.project_id, name=rater).id
        create_assignment(
            session, task_id=task_id, rater_id=rater_id, purpose="live", round_=0, swapped=False
        )


# ---- security: what a rater can never see or do ---------------------------------------------


def test_rater_reads_only_their_own_judgments(web: WebProject) -> None:
    ana, bob = web.add("ana", active=True), web.add("bob", active=True)
    api = web.client()
    answer(api, ana, 2, prefix="ana")
    answer(api, bob, 1, prefix="bob")
    mine, theirs = my_judgments(api, ana), my_judgments(api, bob)
    assert len(mine) == 2 and len(theirs) == 1
    assert not {j["assignment_id"] for j in mine} & {j["assignment_id"] for j in theirs}
    # No route takes another rater's id: the only path parameters are on admin actions.
    routes = [r for router in (pages_router, admin_router, api_router) for r in router.routes]
    templated = sorted(path for r in routes if "{" in (path := getattr(r, "path", "")))
    assert templated == ["/admin/raters/{name:path}/{action}"]
    # ...and grading names a task, which is shared work: the grade written is always the caller's own.
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert [p for p in paths if "{" in p] == ["/api/v1/grading/{task_id}"]


def test_rater_cannot_submit_another_raters_assignment(web: WebProject) -> None:
    ana, bob = web.add("ana", active=True), web.add("bob", active=True)
    api = web.client()
    judged = answer(api, ana, 1)[0]["assignment_id"]
    open_item = next_item(api, ana)["assignment_id"]
    answer(api, bob, 1)
    for assignment_id in (open_item, judged):
        response = submit(api, bob, assignment_id, key=f"steal-{assignment_id}")
        assert response.status_code in (409, 422)
        assert "not assigned" in response.json()["detail"]
    assert len(my_judgments(api, bob)) == 1
    assert [j["assignment_id"] for j in my_judgments(api, ana)] == [judged]
    # The form refuses it too, and says why on the page.
    client, csrf = web.signed_in(bob)
    page = client.post("/rate", data=rate_form(csrf, open_item, key="steal-form"))
    assert page.status_code == 200 and "not assigned" in page.text


def test_rater_cannot_reach_admin_routes(web: WebProject) -> None:
    admin = web.add("boss", admin=True)
    ana, bob = web.add("ana", active=True), web.add("bob", active=True)
    client, csrf = web.signed_in(ana)
    assert client.get("/admin").status_code == 403
    assert client.get("/admin/export.zip").status_code == 403
    for action in ("exclude", "readmit", "recalibrate"):
        refused = client.post(f"/admin/raters/bob/{action}", data={"csrf": csrf, "reason": "takeover"})
        assert refused.status_code == 403
    api = web.client()
    assert api.get("/api/v1/admin/raters", headers=bearer(ana)).status_code == 403
    assert api.get("/api/v1/admin/raters", headers=bearer(bob)).json() == {"detail": "admins only"}
    assert statuses(api, admin) == {"boss": "active", "ana": "active", "bob": "active"}


def test_admin_accounts_do_not_label(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    api = web_sqlite.client()
    assert api.get("/api/v1/assignments/next", headers=bearer(admin)).status_code == 403
    assert submit(api, admin, 1, key="k").status_code == 403
    client, csrf = web_sqlite.signed_in(admin)
    page = client.get("/rate", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/admin")
    assert client.post("/rate", data=rate_form(csrf, 1)).status_code == 403


def test_calibration_anchor_label_only_after_the_answer(web: WebProject) -> None:
    token = web.add("ana")
    api = web.client()
    item = next_item(api, token)
    anchor = anchor_for(web, item["prompt"])
    assert item["purpose"] == "calibration" and anchor is not None
    assert item["calibration"] == {"done": 0, "total": len(web.ctx.calibration_keys)}
    assert not any(field in key for key in item for field in ANCHOR_FIELDS)
    assert anchor.explanation not in json.dumps(item)
    AssignmentOut.model_validate(item)  # what is sent is what the OpenAPI schema documents
    result = submit(api, token, item["assignment_id"], key="c1")
    assert result.status_code == 201
    JudgmentOut.model_validate(result.json())
    feedback = result.json()["feedback"]
    assert feedback["explanation"] == anchor.explanation
    assert feedback["expert_choice"] in ("A", "B")
    assert feedback["correct"] == (feedback["expert_choice"] == "A")


def test_calibration_page_shows_the_verdict_only_after_the_answer(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana")
    client, csrf = web_sqlite.signed_in(token)
    page = client.get("/rate")
    assert page.status_code == 200 and "Calibration" in page.text
    item = next_item(web_sqlite.client(), token)
    anchor = anchor_for(web_sqlite, item["prompt"])
    assert anchor is not None and assignment_on_page(page.text) == item["assignment_id"]
    assert anchor.explanation not in page.text and 'id="expert"' not in page.text
    verdict = client.post("/rate", data=rate_form(csrf, item["assignment_id"]))
    assert verdict.status_code == 200 and 'id="expert"' in verdict.text
    assert str(escape(anchor.explanation)) in verdict.text


def test_hidden_anchor_looks_exactly_like_a_task(web: WebProject) -> None:
    live = next_item(web.client(), web.add("carl", active=True))
    assert live["purpose"] == "task" and anchor_for(web, live["prompt"]) is None
    hidden_web = with_hidden_anchors(web)
    token = hidden_web.add("ana", active=True)
    api = hidden_web.client()
    item = next_item(api, token)
    anchor = anchor_for(hidden_web, item["prompt"])
    assert anchor is not None, "the policy should have served a hidden anchor"
    assert item["purpose"] == "task" and item["calibration"] is None
    assert item.keys() == live.keys()
    assert anchor.explanation not in json.dumps(item)
    result = submit(api, token, item["assignment_id"], key="h1")
    assert result.status_code == 201
    assert result.json()["feedback"] is None and anchor.explanation not in result.text
    (judged,) = my_judgments(api, token)
    assert not any(field in key for key in judged for field in ANCHOR_FIELDS)


def test_hidden_anchor_page_looks_like_a_task_page(web_sqlite: WebProject) -> None:
    hidden_web = with_hidden_anchors(web_sqlite)
    token = hidden_web.add("ana", active=True)
    client, csrf = hidden_web.signed_in(token)
    page = client.get("/rate")
    item = next_item(hidden_web.client(), token)
    anchor = anchor_for(hidden_web, item["prompt"])
    assert anchor is not None
    assert "<title>Compare" in page.text and "Calibration" not in page.text
    assert anchor.explanation not in page.text
    after = client.post("/rate", data=rate_form(csrf, item["assignment_id"]), follow_redirects=False)
    assert (after.status_code, after.headers["location"]) == (303, "/rate")


# ---- authentication -----------------------------------------------------------------------


def test_anonymous_pages_redirect_to_login(web: WebProject) -> None:
    client = web.client()
    for path in ("/", "/rate", "/admin", "/admin/export.zip"):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path
    posted = client.post("/rate", data=rate_form("x", 1), follow_redirects=False)
    assert (posted.status_code, posted.headers["location"]) == (303, "/login")
    assert client.get("/login").status_code == 200


API_ROUTES = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/assignments/next"),
    ("GET", "/api/v1/me/judgments"),
    ("GET", "/api/v1/admin/raters"),
    ("POST", "/api/v1/judgments"),
]


def test_api_requires_a_valid_bearer_token(web: WebProject) -> None:
    token = web.add("ana", active=True)
    client = web.client()
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"Authorization": f"Bearer {'x' * 5000}"},
    ]
    for method, path in API_ROUTES:
        for headers in bad_headers:
            response = client.request(
                method, path, headers={**headers, "Idempotency-Key": "k"}, json={"assignment_id": 1}
            )
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"detail": "missing or invalid bearer token"}
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/me", headers=bearer(token)).json() == {
        "name": "ana",
        "kind": "human",
        "status": "active",
        "admin": False,
    }


def test_login_with_a_wrong_token_is_refused_without_echo(web: WebProject) -> None:
    web.add("ana")
    client = web.client()
    csrf = form_csrf(client.get("/login").text)
    guess = "guess-" + "z" * 30
    response = client.post("/login", data={"token": guess, "csrf": csrf})
    assert response.status_code == 401
    assert "That token is not valid." in response.text and guess not in response.text
    assert client.get("/rate", follow_redirects=False).status_code == 303


def test_login_sets_a_fresh_httponly_lax_cookie_and_never_echoes_the_token(web: WebProject) -> None:
    token = web.add("ana")
    client = web.client()
    login_page = client.get("/login")
    before = login_page.cookies.get("tether_session")
    response = client.post(
        "/login", data={"token": token, "csrf": form_csrf(login_page.text)}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/rate")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tether_session=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http in development; see the test below
    assert token not in cookie and token not in response.text
    assert client.cookies.get("tether_session") != before  # a new session on sign-in
    page = client.get("/rate")
    assert page.status_code == 200 and token not in page.text


def test_secure_cookies_are_marked_secure(web_sqlite: WebProject) -> None:
    app = create_app(web_sqlite.project, web_sqlite.ctx, secure_cookies=True)
    client = TestClient(app, base_url="https://testserver")
    response = client.get("/login")
    assert "secure" in {p.strip().lower() for p in response.headers["set-cookie"].split(";")}


def test_logout_ends_the_session(web: WebProject) -> None:
    client, csrf = web.signed_in(web.add("ana"))
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/rate", follow_redirects=False).headers["location"] == "/login"


def test_every_form_post_needs_the_csrf_token(web: WebProject) -> None:
    admin = web.add("boss", admin=True)
    ana = web.add("ana", active=True)
    fresh = web.client()
    fresh.get("/login")
    for csrf in (None, "", "forged"):
        assert fresh.post("/login", data={"token": ana, **csrf_field(csrf)}).status_code == 403
    rater, rater_csrf = web.signed_in(ana)
    boss, boss_csrf = web.signed_in(admin)
    assignment = assignment_on_page(rater.get("/rate").text)
    # Each session's token is refused by the other session: tokens are bound to their session.
    for rater_csrf_try, boss_csrf_try in (
        (None, None),
        ("", ""),
        ("forged", "forged"),
        (boss_csrf, rater_csrf),
    ):
        form = rate_form("unused", assignment)
        form.pop("csrf")
        assert rater.post("/rate", data={**form, **csrf_field(rater_csrf_try)}).status_code == 403
        logout = rater.post("/logout", data=csrf_field(rater_csrf_try))
        assert logout.status_code == 403 and "reload the page" in logout.json()["detail"]
        for action in ("exclude", "readmit", "recalibrate"):
            posted = boss.post(
                f"/admin/raters/ana/{action}", data={"reason": "csrf test", **csrf_field(boss_csrf_try)}
            )
            assert posted.status_code == 403, (action, boss_csrf_try)
    api = web.client()
    assert my_judgments(api, ana) == []
    assert statuses(api, admin)["ana"] == "active"
    assert rater.get("/rate").status_code == 200  # still signed in
    assert rater.post("/logout", data={"csrf": rater_csrf}, follow_redirects=False).status_code == 303


# ---- escaping -----------------------------------------------------------------------------


def test_markup_in_prompts_and_responses_is_shown_as_text(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana", active=True)
    assign_markup_task(web_sqlite, "ana", prompt=f"Prompt {MARKUP}", left=f"Left {MARKUP}", right="<b>x</b>")
    client, csrf = web_sqlite.signed_in(token)
    page = client.get("/rate").text
    assert "Prompt &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Left &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>x</b>" not in page
    # A rationale bounced back as a draft (too short) is escaped too.
    refused = client.post(
        "/rate", data=rate_form(csrf, assignment_on_page(page), rationale=f"{MARKUP}", choice="C")
    ).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in refused and "<script>alert" not in refused
    # The API returns the texts verbatim, as JSON strings.
    item = next_item(web_sqlite.client(), token)
    assert (item["left"], item["right"]) == (f"Left {MARKUP}", "<b>x</b>")


def test_markup_in_names_and_reasons_on_the_dashboard_is_text(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    web_sqlite.add("<b>x</b>")
    client, csrf = web_sqlite.signed_in(admin)
    # Post to the form action the dashboard renders for this rater (the name has a slash).
    actions = re.findall(r'action="(/admin/raters/[^"]+/exclude)"', client.get("/admin").text)
    (action,) = [a for a in actions if "boss" not in a]
    excluded = client.post(action, data={"csrf": csrf, "reason": MARKUP})
    assert excluded.status_code == 200, excluded.text  # followed the redirect back to /admin
    assert statuses(web_sqlite.client(), admin)["<b>x</b>"] == "excluded"
    assert (
        "&lt;b&gt;x&lt;/b&gt;" in excluded.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in excluded.text
    )
    assert "<b>x</b>" not in excluded.text and "<script>alert" not in excluded.text


def test_error_text_cannot_be_injected_through_the_url(web_sqlite: WebProject) -> None:
    rater, _ = web_sqlite.signed_in(web_sqlite.add("ana"))
    page = rater.get("/rate", params={"error": "Your account is locked", "draft": "call 555"})
    assert "Your account is locked" not in page.text and "call 555" not in page.text
    boss, _ = web_sqlite.signed_in(web_sqlite.add("boss", admin=True))
    dashboard = boss.get("/admin", params={"error": "Send your token to evil.example"})
    assert "evil.example" not in dashboard.text


# ---- idempotency --------------------------------------------------------------------------


def test_retry_with_the_same_key_replays_the_original(web: WebProject) -> None:
    token = web.add("ana", active=True)
    api = web.client()
    item = next_item(api, token)
    first = submit(api, token, item["assignment_id"], key="retry-1")
    again = submit(api, token, item["assignment_id"], key="retry-1")
    changed = submit(api, token, item["assignment_id"], key="retry-1", choice="B", strength=3)
    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 200)
    assert first.json()["replayed"] is False and again.json()["replayed"] is True
    assert again.json()["judgment_id"] == first.json()["judgment_id"] == changed.json()["judgment_id"]
    assert (changed.json()["choice"], changed.json()["strength"]) == ("A", 2)
    assert len(my_judgments(api, token)) == 1


def test_same_key_on_another_assignment_is_refused(web: WebProject) -> None:
    token = web.add("ana", active=True)
    api = web.client()
    answer(api, token, 1, prefix="once")
    other = next_item(api, token)["assignment_id"]
    response = submit(api, token, other, key="once-0")
    assert response.status_code in (409, 422)
    assert "already used for assignment" in response.json()["detail"]
    assert len(my_judgments(api, token)) == 1


def test_second_submission_with_a_new_key_is_refused(web: WebProject) -> None:
    token = web.add("ana", active=True)
    api = web.client()
    item = next_item(api, token)
    assert submit(api, token, item["assignment_id"], key="first").status_code == 201
    response = submit(api, token, item["assignment_id"], key="second")
    assert response.status_code == 409 and "already judged" in response.json()["detail"]
    assert len(my_judgments(api, token)) == 1


def test_form_resubmission_does_not_write_twice(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana", active=True)
    client, csrf = web_sqlite.signed_in(token)
    assignment = assignment_on_page(client.get("/rate").text)
    form = rate_form(csrf, assignment, key="double-click")
    assert client.post("/rate", data=form, follow_redirects=False).status_code == 303
    assert client.post("/rate", data=form, follow_redirects=False).status_code == 303
    assert len(my_judgments(web_sqlite.client(), token)) == 1


# ---- malformed requests -------------------------------------------------------------------

GOOD = {"choice": "A", "strength": 2, "rationale": REASON}

MALFORMED: list[tuple[str, dict[str, Any], int, str]] = [
    # name, request overrides, expected status, text expected in the response
    ("bad json", {"content": b'{"choice": "A",'}, 422, "JSON"),
    ("json array", {"json": [1, 2, 3]}, 422, "invalid request"),
    ("json string", {"json": "A"}, 422, "invalid request"),
    ("empty body", {"content": b""}, 422, "invalid request"),
    ("not json", {"content": b"choice=A", "ctype": "application/x-www-form-urlencoded"}, 422, "invalid"),
    ("id as text", {"body": {"assignment_id": "first"}}, 422, "assignment_id"),
    ("id zero", {"body": {"assignment_id": 0}}, 422, "assignment_id"),
    ("id too big", {"body": {"assignment_id": 2**63}}, 422, "assignment_id"),
    ("id float", {"body": {"assignment_id": 1.5}}, 422, "assignment_id"),
    ("strength as text", {"body": {"strength": "two"}}, 422, "strength"),
    ("extra field", {"body": {"rater": "bob"}}, 422, "rater"),
    ("missing choice", {"drop": "choice"}, 422, "choice"),
    ("choice C", {"body": {"choice": "C"}}, 422, "choice"),
    ("choice lowercase", {"body": {"choice": "a"}}, 422, "choice"),
    ("strength 7", {"body": {"strength": 7}}, 422, "strength"),
    ("strength 0", {"body": {"strength": 0}}, 422, "strength"),
    ("rationale null", {"body": {"rationale": None}}, 422, "rationale"),
    ("rationale too short", {"body": {"rationale": "too short"}}, 422, "at least 20"),
    ("rationale only spaces", {"body": {"rationale": " " * 40}}, 422, "at least 20"),
    ("rationale too long", {"body": {"rationale": "x" * 5001}}, 422, "5000"),
    ("rationale with NUL", {"body": {"rationale": "fine reason\x00 with a NUL byte"}}, 422, "NUL"),
    ("negative seconds", {"body": {"seconds": -1}}, 422, "seconds"),
    ("seconds NaN", {"content": b"NAN"}, 422, "invalid request"),
    ("missing key", {"key": None}, 422, "idempotency-key"),
    ("empty key", {"key": ""}, 422, "idempotency-key"),
    ("key too long", {"key": "k" * 201}, 422, "idempotency-key"),
    ("key with NUL", {"key": "a\x00b"}, 422, "NUL"),
    ("body over 64 KiB", {"content": b"x" * (MAX_BODY + 1)}, 413, "65536"),
    ("body over 64 KiB, chunked", {"chunks": True}, 413, "65536"),
]


@pytest.mark.parametrize(
    ("overrides", "status", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_judgments_get_a_clear_4xx(
    web_sqlite: WebProject, overrides: dict[str, Any], status: int, expected: str
) -> None:
    token = web_sqlite.add("ana", active=True)
    api = web_sqlite.client()
    item = next_item(api, token)
    body: dict[str, Any] = {"assignment_id": item["assignment_id"], **GOOD, **overrides.get("body", {})}
    body.pop(overrides.get("drop", ""), None)
    headers = {**bearer(token), "Idempotency-Key": "malformed"}
    if "key" in overrides:
        headers.pop("Idempotency-Key")
        if overrides["key"] is not None:
            headers["Idempotency-Key"] = overrides["key"]
    request: dict[str, Any] = {"json": body}
    if "json" in overrides:
        request = {"json": overrides["json"]}
    if "content" in overrides:
        headers["Content-Type"] = overrides.get("ctype", "application/json")
        request = {"content": overrides["content"]}
    if overrides.get("chunks"):
        headers["Content-Type"] = "application/json"
        request = {"content": (b"x" * 4096 for _ in range(20))}
    response = api.post("/api/v1/judgments", headers=headers, **request)
    assert response.status_code == status, response.text
    assert expected.lower() in response.text.lower()
    assert "detail" in response.json()
    assert my_judgments(api, token) == []


def test_validation_errors_never_echo_the_submitted_values(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana", active=True)
    secret = "s3cret-value-" + "q" * 5000
    response = web_sqlite.client().post(
        "/api/v1/judgments",
        headers={**bearer(token), "Idempotency-Key": "k"},
        json={"assignment_id": 1, "choice": "A", "strength": 2, "rationale": secret},
    )
    assert response.status_code == 422 and "s3cret" not in response.text
    problems = response.json()["problems"]
    assert problems == [{"field": "rationale", "message": "String should have at most 5000 characters"}]


def test_malformed_rate_forms_get_a_4xx_or_the_page_with_the_error(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana", active=True)
    client, csrf = web_sqlite.signed_in(token)
    assignment = assignment_on_page(client.get("/rate").text)
    for missing in ("assignment_id", "choice", "strength", "rationale", "key"):
        form = rate_form(csrf, assignment)
        form.pop(missing)
        response = client.post("/rate", data=form)
        assert response.status_code == 422 and missing in response.text, missing
    for fields in ({"assignment_id": "x"}, {"assignment_id": str(2**40)}, {"strength": "two"}):
        assert client.post("/rate", data={**rate_form(csrf, assignment), **fields}).status_code == 422, fields
    shown = [
        ({"choice": "C"}, "choice must be one of A, B, tie"),
        ({"strength": "7"}, "strength must be 1"),
        ({"rationale": "too short"}, "at least 20"),
        ({"rationale": "a reason with a NUL \x00 inside"}, "NUL"),
        ({"seconds": "nan"}, None),  # clamped to 0 and accepted
    ]
    for fields, message in shown:
        response = client.post("/rate", data=rate_form(csrf, assignment, **fields, key=str(fields)))
        assert response.status_code == 200, (fields, response.text)
        if message is None:
            continue
        assert message in response.text and assignment_on_page(response.text) == assignment
        if "rationale" in fields and "\x00" not in fields["rationale"]:
            assert f">{fields['rationale']}</textarea>" in response.text  # the draft is kept
    assert len(my_judgments(web_sqlite.client(), token)) == 1
    oversized = client.post("/rate", data=rate_form(csrf, assignment, rationale="x" * (MAX_BODY + 10)))
    assert oversized.status_code == 413


# ---- the queue and the rater's day --------------------------------------------------------


def test_empty_queue_page_and_204_after_everything_is_answered(tmp_path: Path) -> None:
    web = make_web_project(tmp_path, tasks=3)
    token = web.add("ana", active=True)
    api = web.client()
    for i in range(60):
        response = api.get("/api/v1/assignments/next", headers=bearer(token))
        if response.status_code == 204:
            break
        assert submit(api, token, response.json()["assignment_id"], key=f"all-{i}").status_code == 201
    else:
        pytest.fail("the queue never emptied")
    assert response.content == b""
    client, _ = web.signed_in(token)
    page = client.get("/rate")
    assert page.status_code == 200 and "Nothing to do right now" in page.text
    assert "Your queue is empty" in page.text and 'name="assignment_id"' not in page.text
    assert f"{len(my_judgments(api, token))} done today" in page.text


def test_excluded_rater_gets_the_empty_page_and_204(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    token = web_sqlite.add("ana", active=True)
    boss, csrf = web_sqlite.signed_in(admin)
    boss.post("/admin/raters/ana/exclude", data={"csrf": csrf, "reason": "careless rationales"})
    api = web_sqlite.client()
    assert api.get("/api/v1/assignments/next", headers=bearer(token)).status_code == 204
    client, _ = web_sqlite.signed_in(token)
    page = client.get("/rate")
    assert page.status_code == 200 and "not receiving work" in page.text


def test_done_today_counter_increments_after_a_submission(web_sqlite: WebProject) -> None:
    token = web_sqlite.add("ana", active=True)
    client, csrf = web_sqlite.signed_in(token)
    page = client.get("/rate")
    assert "0 done today" in page.text
    after = client.post("/rate", data=rate_form(csrf, assignment_on_page(page.text)))
    assert after.status_code == 200 and "1 done today" in after.text  # followed the 303 to /rate
    answer(web_sqlite.client(), token, 1, prefix="api")
    assert "2 done today" in client.get("/rate").text


# ---- admin --------------------------------------------------------------------------------


def test_dashboard_renders_raters_progress_and_alpha(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    web_sqlite.add("ana")
    answer(web_sqlite.client(), web_sqlite.add("bob", active=True), 2)
    client, _ = web_sqlite.signed_in(admin)
    page = client.get("/admin")
    assert page.status_code == 200
    assert "Krippendorff's alpha" in page.text and 'aria-label="alpha by dimension"' in page.text
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page.text)
    assert ("ana", "calibrating", "0") in rows and ("bob", "active", "2") in rows
    for dimension in ("accuracy", "safety", "honesty", "concision"):
        assert dimension in page.text


def test_exclude_without_a_reason_shows_an_error(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    web_sqlite.add("ana", active=True)
    client, csrf = web_sqlite.signed_in(admin)
    for reason in ({}, {"reason": ""}, {"reason": "   "}):
        response = client.post("/admin/raters/ana/exclude", data={"csrf": csrf, **reason})
        assert response.status_code == 200 and 'class="error"' in response.text
        assert "reason is required" in response.text
    assert statuses(web_sqlite.client(), admin)["ana"] == "active"


def test_admin_actions_change_status_with_a_reason(web: WebProject) -> None:
    admin = web.add("boss", admin=True)
    web.add("ana", active=True)
    client, csrf = web.signed_in(admin)
    api = web.client()
    for action, status in (("exclude", "excluded"), ("readmit", "active"), ("recalibrate", "calibrating")):
        reason = f"{action}: decided in review"
        response = client.post(f"/admin/raters/ana/{action}", data={"csrf": csrf, "reason": reason})
        assert response.status_code == 200 and response.url.path == "/admin"
        report = {
            r["name"]: r for r in api.get("/api/v1/admin/raters", headers=bearer(admin)).json()["raters"]
        }
        assert (report["ana"]["status"], report["ana"]["reason"]) == (status, reason)
    plain = client.post("/admin/raters/ana/recalibrate", data={"csrf": csrf})
    assert plain.status_code == 200 and statuses(api, admin)["ana"] == "calibrating"


def test_admin_action_errors_are_shown_not_raised(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    client, csrf = web_sqlite.signed_in(admin)
    unknown = client.post("/admin/raters/nobody/exclude", data={"csrf": csrf, "reason": "why not"})
    assert unknown.status_code == 200 and "unknown rater" in unknown.text
    self_ban = client.post("/admin/raters/boss/exclude", data={"csrf": csrf, "reason": "oops"})
    assert self_ban.status_code == 200 and "is an admin account" in self_ban.text
    nul = client.post("/admin/raters/boss%00/exclude", data={"csrf": csrf, "reason": "a\x00b"})
    assert nul.status_code == 200 and "NUL" in nul.text
    bad_action = client.post("/admin/raters/boss/promote", data={"csrf": csrf, "reason": "x"})
    assert bad_action.status_code == 422


def test_export_zip_is_409_before_judgments_then_a_zip(web_sqlite: WebProject) -> None:
    admin = web_sqlite.add("boss", admin=True)
    client, _ = web_sqlite.signed_in(admin)
    empty = client.get("/admin/export.zip")
    assert empty.status_code == 409 and "no judgments" in empty.json()["detail"]
    api = web_sqlite.client()
    for name in ("ana", "bob", "cleo"):
        answer(api, web_sqlite.add(name, active=True), 12, prefix=name)
    response = client.get("/admin/export.zip")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert re.match(r'attachment; filename="[\w.-]+\.zip"', response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"train.jsonl", "test.jsonl", "manifest.json"} <= names
        manifest = json.loads(archive.read("manifest.json"))
        train = archive.read("train.jsonl").decode().splitlines()
    assert manifest and len(train) > 0
    assert all(isinstance(json.loads(line), dict) for line in train)
