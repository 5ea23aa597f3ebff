"""Property-based fuzz of the web app: whatever a client sends, the answer is a 4xx or a success, never a 5xx.

Hypothesis generates arbitrary JSON, near-valid judgments, odd Idempotency-Keys (empty, very
long, non-ASCII, NUL), random bearer tokens and random methods and paths around the API. All
in process through TestClient; no network. On PostgreSQL too when TETHER_TEST_POSTGRES_URL is
set, since PostgreSQL is stricter than SQLite about what it stores (NUL characters, int4 ids).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import WebProject, bearer

Response = Any  # what TestClient returns (httpx or httpx2, depending on the Starlette version)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

V1_PATHS = {
    "/api/v1/me": {"get"},
    "/api/v1/assignments/next": {"get"},
    "/api/v1/judgments": {"post"},
    "/api/v1/me/judgments": {"get"},
    "/api/v1/admin/raters": {"get"},
    "/api/v1/grading/next": {"get"},
    "/api/v1/grading/mine": {"get"},
    "/api/v1/grading/{task_id}": {"post"},
    "/api/v1/redteam/findings": {"get", "post"},
    "/api/v1/feedback": {"post"},
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

unicode_text = st.text(st.characters(codec="utf-8"), max_size=60)


def mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four, so that examples get past validation and reach the store.

    (`one_of` drops repeated branches, so each copy of `valid` is a distinct strategy object.)
    """
    return st.one_of(*(valid.map(lambda x: x) for _ in range(3)), invalid)


near_valid_judgments = st.fixed_dictionaries(
    {
        "assignment_id": st.one_of(
            st.integers(min_value=1, max_value=12),
            st.integers(min_value=2**31 - 2),  # past PostgreSQL's integer
            st.integers(min_value=2**63 - 2),  # past SQLite's INTEGER
            st.integers(),
            json_values,
        ),
        "choice": mostly(st.sampled_from(["A", "B", "tie"]), st.sampled_from(["C", "a", ""]) | json_values),
        "strength": mostly(st.integers(min_value=1, max_value=3), st.integers() | json_values),
        "rationale": mostly(st.text(min_size=20, max_size=80), st.text(max_size=6000) | json_values),
    },
    optional={
        "seconds": st.floats() | st.integers() | json_values,
        "rater_id": st.integers(),
        "expert_choice": st.sampled_from(["A", "B"]),
    },
)

idempotency_keys = mostly(
    st.text(min_size=1, max_size=30),
    st.one_of(st.none(), st.just(""), unicode_text, st.text(min_size=190, max_size=400), st.just("k\x00nul")),
)

paths = st.sampled_from(sorted(V1_PATHS)) | st.builds(
    lambda base, tail: base + tail,
    st.sampled_from(["/api/v1/", "/api/v1/me/", "/api/v1/judgments/", "/api/v1/admin/", "/api/"]),
    st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20).map(
        lambda t: t.replace("#", "").replace("?", "").replace("%", "")
    ),
)


def tokens(valid: list[str]) -> st.SearchStrategy[bytes | None]:
    """An Authorization header: a real token (rater or admin), garbage, or none at all."""
    return st.one_of(
        st.none(),
        st.sampled_from(valid).map(lambda t: b"Bearer " + t.encode()),
        unicode_text.map(lambda t: b"Bearer " + t.encode("utf-8")),
        unicode_text.map(lambda t: t.encode("utf-8")),
        st.binary(max_size=40).map(lambda b: b"Bearer " + b),
    )


def send(
    client: TestClient,
    method: str,
    path: str,
    *,
    authorization: bytes | None,
    key: str | None,
    body: Any,
) -> Response:
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if authorization is not None:
        headers.append((b"authorization", authorization.replace(b"\r", b"").replace(b"\n", b"")))
    if key is not None:
        headers.append((b"idempotency-key", key.encode("utf-8").replace(b"\r", b"").replace(b"\n", b"")))
    content = json.dumps(body).encode() if body is not None else b""
    return client.request(method, path, headers=headers, content=content)


def check(response: Response, path: str) -> None:
    """Never a server error; API answers are JSON (or empty for 204 and HEAD)."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 204 or response.request.method == "HEAD":
        assert response.content == b""
        return
    if path.startswith("/api/v1/"):
        assert response.headers["content-type"].startswith("application/json"), response.headers
        json.loads(response.content)


def test_fuzzed_judgment_submissions_never_5xx(web: WebProject) -> None:
    rater = web.add("ana", active=True)
    calibrating = web.add("bea")
    admin = web.add("boss", admin=True)
    client = web.client()
    for token in (rater, calibrating):  # give both an open assignment to aim at
        client.get("/api/v1/assignments/next", headers=bearer(token))

    signed = st.sampled_from([rater, calibrating]).map(lambda t: b"Bearer " + t.encode())

    @FUZZ
    @given(
        authorization=mostly(signed, tokens([rater, calibrating, admin])),
        key=idempotency_keys,
        body=mostly(near_valid_judgments, json_values),
    )
    def submit(authorization: bytes | None, key: str | None, body: Any) -> None:
        response = send(client, "POST", "/api/v1/judgments", authorization=authorization, key=key, body=body)
        check(response, "/api/v1/judgments")
        if response.status_code in (200, 201):
            assert set(response.json()) >= {"judgment_id", "assignment_id", "replayed", "feedback"}

    submit()
    for token in (rater, calibrating):
        mine = client.get("/api/v1/me/judgments", headers=bearer(token))
        assert mine.status_code == 200
        ids = [j["assignment_id"] for j in mine.json()]
        assert len(ids) == len(set(ids)), "an assignment was judged twice"


def test_fuzzed_methods_paths_and_tokens_never_5xx(web_sqlite: WebProject) -> None:
    rater = web_sqlite.add("ana", active=True)
    admin = web_sqlite.add("boss", admin=True)
    client = web_sqlite.client()

    @FUZZ
    @given(
        method=st.sampled_from(METHODS),
        path=paths,
        authorization=tokens([rater, admin]),
        key=idempotency_keys,
        body=st.none() | json_values | near_valid_judgments,
    )
    def request(method: str, path: str, authorization: bytes | None, key: str | None, body: Any) -> None:
        response = send(client, method, path, authorization=authorization, key=key, body=body)
        check(response, path)
        allowed = V1_PATHS.get(path.rstrip("/"), set())
        if method.lower() not in allowed and method != "HEAD":
            assert response.status_code in (401, 404, 405, 422), (method, path, response.status_code)

    request()


def test_fuzzed_forms_never_5xx(web_sqlite: WebProject) -> None:
    """The HTML forms too: random field values after a real sign-in, with a valid CSRF token."""
    admin = web_sqlite.add("boss", admin=True)
    rater_client, rater_csrf = web_sqlite.signed_in(web_sqlite.add("ana", active=True))
    admin_client, admin_csrf = web_sqlite.signed_in(admin)
    field = st.text(max_size=30) | unicode_text | st.integers().map(str) | st.just("\x00")

    @settings(FUZZ, max_examples=60)
    @given(
        route=st.sampled_from(["/rate", "/admin/raters/ana/exclude", "/admin/raters/ana/readmit", "/login"]),
        fields=st.dictionaries(
            st.sampled_from(
                ["assignment_id", "choice", "strength", "rationale", "key", "seconds", "reason", "token"]
            ),
            field,
            max_size=8,
        ),
    )
    def post(route: str, fields: dict[str, str]) -> None:
        client, csrf = (rater_client, rater_csrf) if route == "/rate" else (admin_client, admin_csrf)
        response = client.post(route, data={**fields, "csrf": csrf}, follow_redirects=False)
        assert response.status_code < 500, (route, fields, response.text[:300])

    post()


def test_openapi_lists_the_v1_paths(web_sqlite: WebProject) -> None:
    response = web_sqlite.client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "Tether labeling"
    assert {path: set(ops) for path, ops in schema["paths"].items()} == V1_PATHS
    post = schema["paths"]["/api/v1/judgments"]["post"]
    key = next(p for p in post["parameters"] if p["name"].lower() == "idempotency-key")
    assert key["in"] == "header" and key["required"] is True
    judgment = schema["components"]["schemas"]["JudgmentIn"]
    assert judgment["additionalProperties"] is False
    assert set(judgment["required"]) == {"assignment_id", "choice", "strength", "rationale"}
    assert judgment["properties"]["choice"]["enum"] == ["A", "B", "tie"]


def test_openapi_declares_the_security_schemes_of_raters_and_feedback_keys(web_sqlite: WebProject) -> None:
    schema = web_sqlite.client().get("/api/v1/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["RaterToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["RaterToken"]["description"],
    }
    assert schemes["FeedbackKey"]["type"] == "apiKey"
    assert (schemes["FeedbackKey"]["in"], schemes["FeedbackKey"]["name"]) == ("header", "X-API-Key")
    assert schemes["FeedbackKeyBearer"]["scheme"] == "bearer"

    def security(path: str, method: str) -> list[str]:
        return sorted(name for req in schema["paths"][path][method].get("security", []) for name in req)

    for path, method in [
        ("/api/v1/me", "get"),
        ("/api/v1/assignments/next", "get"),
        ("/api/v1/judgments", "post"),
        ("/api/v1/admin/raters", "get"),
        ("/api/v1/grading/next", "get"),
        ("/api/v1/redteam/findings", "post"),
    ]:
        assert security(path, method) == ["RaterToken"], path
    assert security("/api/v1/feedback", "post") == ["FeedbackKey", "FeedbackKeyBearer"]
