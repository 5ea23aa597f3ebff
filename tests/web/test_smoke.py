"""A first pass over the app: sign-in, calibration screen, API round trip."""

from __future__ import annotations

from .conftest import WebProject, bearer


def test_sign_in_and_api_round_trip(web: WebProject) -> None:
    token = web.add("ana")
    client, _csrf = web.signed_in(token)
    page = client.get("/rate")
    assert page.status_code == 200 and "Calibration" in page.text
    api = web.client()
    item = api.get("/api/v1/assignments/next", headers=bearer(token)).json()
    body = {
        "assignment_id": item["assignment_id"],
        "choice": "A",
        "strength": 2,
        "rationale": "long enough reason here",
    }
    first = api.post("/api/v1/judgments", headers={**bearer(token), "Idempotency-Key": "k1"}, json=body)
    again = api.post("/api/v1/judgments", headers={**bearer(token), "Idempotency-Key": "k1"}, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["judgment_id"] == again.json()["judgment_id"]
