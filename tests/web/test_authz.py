"""Authorization before validation (`tether.web.authz`): a caller without the role a route needs gets
403 whatever it sends, and a caller with it gets the 422 that describes the bad input.

Each route is tried with a body of the wrong shape, with a body that is not JSON at all (FastAPI
decodes that before it solves any dependency) and, where the path has a typed parameter, with an
invalid one. The allowed caller's 422 on the same requests shows that each request was bad."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tether.labeling import raters as rater_ops

from .conftest import WebProject, bearer, make_web_project

World = tuple[WebProject, dict[str, str]]
NOT_JSON = b'{"choice": "A",'  # cut off mid-object


@dataclass(frozen=True)
class ApiCase:
    method: str
    path: str
    refused: str
    """Which caller lacks what the route needs: admin, rater (no role), pending (not calibrated)."""
    allowed: str
    body: bool = True


API_CASES = [
    ApiCase("POST", "/api/v1/judgments", refused="admin", allowed="rater"),
    ApiCase("GET", "/api/v1/assignments/next", refused="admin", allowed="rater", body=False),
    ApiCase("POST", "/api/v1/redteam/findings", refused="rater", allowed="redteamer"),
    ApiCase("GET", "/api/v1/redteam/findings", refused="rater", allowed="redteamer", body=False),
    ApiCase("POST", "/api/v1/grading/1", refused="pending", allowed="rater"),
    ApiCase("POST", "/api/v1/grading/0", refused="admin", allowed="rater"),  # task_id must be ≥ 1
    ApiCase("GET", "/api/v1/grading/next", refused="pending", allowed="rater", body=False),
    ApiCase("GET", "/api/v1/admin/raters", refused="rater", allowed="admin", body=False),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[WebProject, dict[str, str]]:
    web = make_web_project(Path(tmp_path_factory.mktemp("authz")), tasks=4)
    _, redteamer = rater_ops.add_person(web.project, name="rita", roles=["redteam"])
    rater_ops.readmit(web.project, name="rita", reason="test: calibrated elsewhere")
    tokens = {
        "admin": web.add("boss", admin=True),
        "rater": web.add("ana", active=True),
        "pending": web.add("pat"),
        "redteamer": redteamer,
    }
    return web, tokens


def _send(
    client: TestClient, case: ApiCase, token: str, content: bytes | None, headers: dict[str, str]
) -> int:
    headers = {**bearer(token), "Idempotency-Key": "k-authz", **headers}
    if content is None:
        return client.request(case.method, case.path, headers=headers).status_code
    return client.request(case.method, case.path, headers=headers, content=content).status_code


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: f"{c.method} {c.path}")
def test_api_routes_refuse_before_they_validate(world: World, case: ApiCase) -> None:
    web, tokens = world
    client = web.client()
    json_type = {"Content-Type": "application/json"}
    bodies = [(b'{"unexpected": 1}', json_type), (NOT_JSON, json_type)] if case.body else [(None, {})]
    for content, headers in bodies:
        assert _send(client, case, tokens[case.refused], content, headers) == 403, (case, content)
        assert _send(client, case, "not-a-token", content, headers) == 401, (case, content)
        allowed = _send(client, case, tokens[case.allowed], content, headers)
        # A GET without a body succeeds (200, or 204 with nothing queued); a bad body is a 422.
        assert allowed == 422 if case.body else allowed in (200, 204), (case, content, allowed)


# (path, the caller without what it needs, the caller with it): each posted with a form missing
# every field it needs and no CSRF token, which the allowed caller gets a 422 for.
PAGE_CASES = [
    ("/rate", "admin", "rater"),
    ("/grade", "pending", "rater"),
    ("/redteam", "rater", "redteamer"),
    ("/admin/raters/ana/promote", "rater", "admin"),  # 'promote' is not an action
]


@pytest.mark.parametrize(("path", "refused", "allowed"), PAGE_CASES, ids=[c[0] for c in PAGE_CASES])
def test_form_routes_refuse_before_they_validate(world: World, path: str, refused: str, allowed: str) -> None:
    web, tokens = world
    bad_form = {"unexpected": "1"}
    assert web.signed_in(tokens[refused])[0].post(path, data=bad_form).status_code == 403
    anonymous = web.client().post(path, data=bad_form, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    assert web.signed_in(tokens[allowed])[0].post(path, data=bad_form).status_code == 422


def test_the_export_download_is_for_admins_only(world: World) -> None:
    web, tokens = world
    assert web.signed_in(tokens["rater"])[0].get("/admin/export.zip").status_code == 403
