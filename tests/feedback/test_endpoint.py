"""`POST /api/v1/feedback` on a real uvicorn server: idempotent, authenticated by a project API key.

The acceptance test: 1,000 flagged items posted twice with the same idempotency keys, in batches
(concurrently the second time), are stored exactly once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from tether.labeling import raters as rater_ops
from tether.labeling.context import project_labeling_context
from tether.project import Project
from tether.store.api_keys import create_api_key, revoke_api_key
from tether.store.feedback import feedback_counts, list_feedback
from tether.web.app import BATCH_BODY, create_app
from tether.web.feedback_api import MAX_ITEMS

from .conftest import stream

BATCH = 50
"""Items per request: 50 sandbox items are about 27 KB."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(project: Project) -> Iterator[str]:
    """The web app served by uvicorn on a free loopback port, in a thread; yields the base URL."""
    app = create_app(project, project_labeling_context(project))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            assert thread.is_alive(), "uvicorn stopped"
            try:
                if httpx.get(f"{base}/login").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not come up"
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def new_key(project: Project, name: str = "gateway") -> str:
    project_id = project.project_id
    with project.store.session() as session:
        return create_api_key(session, project_id=project_id, name=name)[1]


def post(base: str, key: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}", **headers}
    )


def batches(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"items": items[i : i + BATCH]} for i in range(0, len(items), BATCH)]


def test_1000_items_posted_twice_are_stored_exactly_once(project: Project) -> None:
    items = stream(1000)
    key = new_key(project)
    with live_server(project) as base:
        first = [post(base, key, body) for body in batches(items)]
        with ThreadPoolExecutor(4) as pool:  # the retry arrives concurrently, and twice per batch
            again = list(pool.map(lambda body: post(base, key, body), batches(items) * 2))
    assert {r.status_code for r in first} == {201}, first[0].text
    assert sum(r.json()["stored"] for r in first) == 1000
    assert {r.status_code for r in again} == {200}
    assert sum(r.json()["duplicates"] for r in again) == 2000
    assert all(i["status"] == "duplicate" for r in again for i in r.json()["items"])
    with project.store.session() as session:
        stored = list_feedback(session, project_id=project.project_id)
        assert feedback_counts(session, project_id=project.project_id)["new"] == 1000
    assert len(stored) == 1000
    assert {s.idempotency_key for s in stored} == {i["idempotency_key"] for i in items}
    assert all(s.user_meta is None for s in stored)  # dropped: the spec does not allow storing it
    print(f"\nacceptance: posted {len(items)} items twice (+ a concurrent retry), stored {len(stored)}")


def test_only_a_live_feedback_key_gets_in(sqlite_project: Project) -> None:
    key = new_key(sqlite_project)
    _, rater_token = rater_ops.add_person(sqlite_project, name="ana")
    item = stream(1)[0]
    with live_server(sqlite_project) as base:
        url = f"{base}/api/v1/feedback"
        assert httpx.post(url, json=item).status_code == 401
        assert post(base, "tfk_wrong", item).status_code == 401
        assert post(base, rater_token, item).status_code == 401  # a rater token is not an API key
        # ... and the API key is not a rater token
        assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        assert httpx.post(url, json=item, headers={"X-API-Key": key}).status_code == 201
        with sqlite_project.store.session() as session:
            revoke_api_key(session, project_id=sqlite_project.project_id, name="gateway")
        revoked = post(base, key, {**item, "idempotency_key": "new"})
        # An unauthenticated caller learns nothing about its body.
        unauthenticated_bad_body = post(base, "tfk_wrong", {"items": [{"prompt": 1}]})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert unauthenticated_bad_body.status_code == 401


def test_bad_items_are_4xx_naming_the_item_and_field_and_nothing_is_stored(sqlite_project: Project) -> None:
    key = new_key(sqlite_project)
    items = stream(5)
    broken = [*items[:3], {**items[3], "prompt": ""}, {k: v for k, v in items[4].items() if k != "reason"}]
    with live_server(sqlite_project) as base:
        bad = post(base, key, {"items": broken})
        tiny = {"idempotency_key": "k", "prompt": "p", "response": "r", "model_version": "v", "reason": "x"}
        too_many = post(base, key, {"items": [tiny] * (MAX_ITEMS + 1)})
        too_big = post(
            base, key, {"items": [{**items[0], "prompt": "x" * BATCH_BODY}]}
        )  # over the batch limit
        not_json = httpx.post(
            f"{base}/api/v1/feedback", content=b"{nope", headers={"Authorization": f"Bearer {key}"}
        )
        header_on_batch = post(base, key, {"items": items}, **{"Idempotency-Key": "k"})
        extra = post(base, key, {"items": items, "source": "x"})
        no_key = post(base, key, {k: v for k, v in items[0].items() if k != "idempotency_key"})
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        {"field": "items[3].prompt", "message": "String should have at least 1 character"},
        {"field": "items[4].reason", "message": "Field required"},
    ]
    assert too_many.status_code == 422 and f"at most {MAX_ITEMS}" in too_many.json()["problems"][0]["message"]
    assert too_big.status_code == 413
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]
    assert header_on_batch.status_code == 422 and extra.status_code == 422
    assert no_key.status_code == 422 and no_key.json()["problems"][0]["field"] == "idempotency_key"
    with sqlite_project.store.session() as session:
        assert list_feedback(session, project_id=sqlite_project.project_id) == []


def test_a_single_item_takes_its_key_from_the_header_and_a_reused_key_is_409(sqlite_project: Project) -> None:
    key = new_key(sqlite_project)
    item = {k: v for k, v in stream(1)[0].items() if k != "idempotency_key"}
    with live_server(sqlite_project) as base:
        first = post(base, key, item, **{"Idempotency-Key": "req-1"})
        retry = post(base, key, item, **{"Idempotency-Key": "req-1"})
        clash = post(base, key, {**item, "response": "something else ."}, **{"Idempotency-Key": "req-1"})
        mixed = post(
            base,
            key,
            {
                "items": [
                    {**item, "idempotency_key": "req-2"},
                    {**item, "idempotency_key": "req-1", "reason": "x"},
                ]
            },
        )
    assert first.status_code == 201 and first.json()["items"][0]["status"] == "stored"
    assert retry.status_code == 200 and retry.json()["items"][0] == {
        **first.json()["items"][0],
        "status": "duplicate",
    }
    assert clash.status_code == 409 and "items[0]" in clash.json()["detail"]
    assert mixed.status_code == 409 and "items[1]" in mixed.json()["detail"]
    with sqlite_project.store.session() as session:
        stored = list_feedback(session, project_id=sqlite_project.project_id)
    assert [s.idempotency_key for s in stored] == ["req-1"]  # the 409 batch stored nothing, req-2 included


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_either_header_carries_the_key(sqlite_project: Project, header: str) -> None:
    key = new_key(sqlite_project)
    value = key if header == "X-API-Key" else f"Bearer {key}"
    with live_server(sqlite_project) as base:
        response = httpx.post(f"{base}/api/v1/feedback", json=stream(1)[0], headers={header: value})
    assert response.status_code == 201
