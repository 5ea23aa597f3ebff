"""Human rubric grading through the web app: API round trip, bad input, roles, the page and admin.

The acceptance point of the issue: create grading tasks, grade them through the HTTP API with a
rater's token, and see the grades aggregated by `grades_for` and `grading_summary`. That flow
runs on SQLite and PostgreSQL; the rest on SQLite only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from tether.labeling import raters as rater_ops
from tether.store.grading import NewGradingTask, add_grading_tasks, grades_for, grading_summary

from .conftest import WebProject, bearer, make_web_project

RATIONALE = "states the correct capital and nothing else"
MARKUP = "<script>alert('graded')</script>"


@pytest.fixture
def gweb(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> WebProject:
    """A small sandbox project, on SQLite and then on PostgreSQL when configured."""
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    return make_web_project(tmp_path, tasks=4)


@pytest.fixture
def gweb_sqlite(tmp_path: Path) -> WebProject:
    return make_web_project(tmp_path, tasks=4)


def add_tasks(web: WebProject, *tasks: NewGradingTask) -> list[int]:
    with web.project.store.session() as session:
        return add_grading_tasks(
            session, project_id=web.project.project_id, tasks=list(tasks), spec_hash=web.project.spec_hash
        )


def task(key: str, dimension: str = "accuracy", needed: int = 1, **extra: Any) -> NewGradingTask:
    fields: dict[str, Any] = {
        "source_key": key,
        "origin": "eval",
        "dimension": dimension,
        "prompt": f"What is the capital of Veloria? ({key})",
        "response": "The capital of Veloria is Port Amsel.",
        "raters_needed": needed,
        "meta": {"prompt_meta": {"truth": "secret gold answer"}},
    }
    return NewGradingTask(**{**fields, **extra})


def grade(
    client: TestClient, token: str, task_id: int, *, key: str, score: Any = 2, rationale: str = RATIONALE
) -> Any:
    headers = {**bearer(token), "Idempotency-Key": key}
    return client.post(
        f"/api/v1/grading/{task_id}", headers=headers, json={"score": score, "rationale": rationale}
    )


def next_task(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/grading/next", headers=bearer(token))
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


# ---- the acceptance round trip -----------------------------------------------------------------


def test_grading_round_trips_through_the_api_and_is_aggregated(gweb: WebProject) -> None:
    first, second = add_tasks(gweb, task("t1", needed=2), task("t2", "safety"))
    ana, bob = gweb.add("ana", active=True), gweb.add("bob", active=True)
    api = gweb.client()

    shown = next_task(api, ana)
    assert shown["task_id"] == first and shown["dimension"] == "accuracy" and shown["max_score"] == 2
    assert [level["score"] for level in shown["rubric"]["levels"]] == [2, 1, 0]
    assert shown["min_rationale_chars"] == 20 and "meta" not in shown and "secret" not in str(shown)

    created = grade(api, ana, first, key="ana-1", score=2)
    assert created.status_code == 201, created.text
    assert created.json() | {"created_at": None} == {
        "task_id": first,
        "score": 2,
        "max_score": 2,
        "rationale": RATIONALE,
        "created_at": None,
        "replayed": False,
    }
    retried = grade(api, ana, first, key="ana-1", score=0)  # a retry: the original stands
    assert retried.status_code == 200 and retried.json()["replayed"] and retried.json()["score"] == 2
    assert next_task(api, ana)["task_id"] == second
    assert next_task(api, bob)["task_id"] == first
    assert grade(api, bob, first, key="bob-1", score=1).status_code == 201
    assert grade(api, bob, second, key="bob-2", score=0).status_code == 201
    assert api.get("/api/v1/grading/next", headers=bearer(bob)).status_code == 204
    mine = api.get("/api/v1/grading/mine", headers=bearer(bob)).json()
    assert [(g["task_id"], g["score"]) for g in mine] == [(first, 1), (second, 0)]

    with gweb.project.store.session() as session:
        grades = grades_for(session, project_id=gweb.project.project_id, source_keys=["t1", "t2"])
        summary = grading_summary(session, project_id=gweb.project.project_id)
    assert [(g.score, g.max_score) for g in grades["t1"]] == [(2, 2), (1, 2)]
    assert [g.score for g in grades["t2"]] == [0]
    assert summary == [
        {
            "dimension": "accuracy",
            "origin": None,
            "tasks": 1,
            "done": 1,
            "grades": 2,
            "mean": pytest.approx(0.75),
        },
        {
            "dimension": "safety",
            "origin": None,
            "tasks": 1,
            "done": 1,
            "grades": 1,
            "mean": pytest.approx(0.0),
        },
    ]


# ---- bad input ---------------------------------------------------------------------------------


def test_bad_grades_get_clear_4xx_answers(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    first, second = add_tasks(web, task("t1"), task("t2"))
    ana = web.add("ana", active=True)
    api = web.client()

    not_a_level = grade(api, ana, first, key="k1", score=3)
    assert not_a_level.status_code == 422
    assert (
        not_a_level.json()["detail"] == "score 3 is not a level of the 'accuracy' rubric; use one of 0, 1, 2"
    )
    assert grade(api, ana, first, key="k2", score=11).status_code == 422
    assert grade(api, ana, first, key="k3", score="high").status_code == 422
    short = grade(api, ana, first, key="k4", rationale="   too short        ")
    assert (
        short.status_code == 422
        and short.json()["detail"] == "the rationale needs at least 20 characters (got 9)"
    )
    assert grade(api, ana, first, key="k5", rationale=RATIONALE + "\x00").status_code == 422
    unknown = grade(api, ana, 999, key="k6")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown grading task 999"
    assert grade(api, ana, 2**40, key="k7").status_code == 422
    extra = api.post(
        f"/api/v1/grading/{first}",
        headers={**bearer(ana), "Idempotency-Key": "k8"},
        json={"score": 2, "rationale": RATIONALE, "rater_id": 1},
    )
    assert extra.status_code == 422
    no_key = api.post(
        f"/api/v1/grading/{first}", headers=bearer(ana), json={"score": 2, "rationale": RATIONALE}
    )
    assert no_key.status_code == 422
    assert api.post(f"/api/v1/grading/{first}", json={"score": 2, "rationale": RATIONALE}).status_code == 401

    assert grade(api, ana, first, key="ok").status_code == 201
    again = grade(api, ana, first, key="other")
    assert again.status_code == 409 and "already graded" in again.json()["detail"]
    reused = grade(api, ana, second, key="ok")
    assert reused.status_code == 409 and "already used for grading task" in reused.json()["detail"]
    with web.project.store.session() as session:
        grades = grades_for(session, project_id=web.project.project_id, source_keys=["t1", "t2"])
    assert [g.score for g in grades["t1"]] == [2] and grades["t2"] == []


def test_tasks_of_dimensions_the_spec_lacks_wait_and_cannot_be_graded(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    [odd] = add_tasks(web, task("odd", dimension="tone"))
    ana = web.add("ana", active=True)
    api = web.client()
    assert api.get("/api/v1/grading/next", headers=bearer(ana)).status_code == 204
    refused = grade(api, ana, odd, key="k")
    assert refused.status_code == 409 and "'tone' is not in the spec" in refused.json()["detail"]


# ---- roles -------------------------------------------------------------------------------------


def test_only_active_raters_grade(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    [first] = add_tasks(web, task("t1"))
    admin, new, gone = web.add("boss", admin=True), web.add("new"), web.add("gone", active=True)
    rater_ops.exclude(web.project, name="gone", reason="test")
    api = web.client()
    for token, why in (
        (admin, "admin accounts do not label"),
        (new, "grading opens once you have passed calibration on the comparison page"),
        (gone, "your account is not receiving work; contact the project admin"),
    ):
        assert api.get("/api/v1/grading/next", headers=bearer(token)).json() == {"detail": why}
        refused = grade(api, token, first, key="k")
        assert (refused.status_code, refused.json()["detail"]) == (403, why)
    assert api.get("/api/v1/grading/next", headers=bearer("not-a-token")).status_code == 401
    with web.project.store.session() as session:
        assert grades_for(session, project_id=web.project.project_id, source_keys=["t1"]) == {"t1": []}


# ---- pages -------------------------------------------------------------------------------------


def test_the_grading_page_shows_the_rubric_escapes_text_and_submits(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    first, second = add_tasks(web, task("t1", response=f"Port Amsel {MARKUP}"), task("t2", "concision"))
    ana = web.add("ana", active=True)
    client, csrf = web.signed_in(ana)

    rate = client.get("/rate").text
    assert 'href="/grade"' in rate and "Rubric grading (2 open)" in rate
    page = client.get("/grade").text
    assert str(escape(MARKUP)) in page and MARKUP not in page
    assert re.findall(r'name="score" value="(\d+)"', page) == ["2", "1", "0"]
    assert "States the correct answer." in page and 'minlength="20"' in page
    assert "secret gold answer" not in page
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf, "task_id": str(first), "score": "2", "rationale": RATIONALE, "key": key}

    assert client.post("/grade", data={**form, "csrf": "forged"}).status_code == 403
    refused = client.post("/grade", data={**form, "score": "7", "rationale": f"draft {MARKUP} kept here"})
    assert refused.status_code == 200 and "is not a level of the" in refused.text
    assert str(escape(f"draft {MARKUP} kept here")) in refused.text
    done = client.post("/grade", data=form, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/grade")
    assert client.post("/grade", data=form, follow_redirects=False).status_code == 303  # a double submit
    assert "Rubric grading (1 open)" in client.get("/rate").text
    assert "concision" in client.get("/grade").text
    with web.project.store.session() as session:
        grades = grades_for(session, project_id=web.project.project_id, source_keys=["t1", "t2"])
    assert [(g.score, g.rationale) for g in grades["t1"]] == [(2, RATIONALE)] and grades["t2"] == []
    assert second


def test_the_grading_page_shows_the_whole_conversation_in_order(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    messages = [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": f"Where is Veloria? {MARKUP}"},
        {"role": "assistant", "content": "On the north coast."},
        {"role": "user", "content": "And its capital?"},
    ]
    add_tasks(web, task("c1", prompt="And its capital?", messages=messages))
    client, _ = web.signed_in(web.add("ana", active=True))
    page = client.get("/grade").text
    turn = r'<li class="turn turn-(\w+)"><span class="role">\w+</span><div class="text"[^>]*>([^<]*)'
    turns = re.findall(turn, page)
    assert turns == [(m["role"], str(escape(m["content"]))) for m in messages]
    assert MARKUP not in page and 'id="prompt">And its capital?<' in page


def test_the_grading_page_explains_when_there_is_nothing_or_no_access(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    client, _ = web.signed_in(web.add("ana", active=True))
    assert "Nothing to grade right now" in client.get("/grade").text
    assert "Rubric grading" not in client.get("/rate").text  # no link without open work
    add_tasks(web, task("t1"))
    newcomer, newcomer_csrf = web.signed_in(web.add("new"))
    page = newcomer.get("/grade").text
    assert "grading opens once you have passed calibration" in page and 'name="score"' not in page
    form = {"csrf": newcomer_csrf, "task_id": "1", "score": "2", "rationale": RATIONALE, "key": "k"}
    assert newcomer.post("/grade", data=form).status_code == 403
    boss, _ = web.signed_in(web.add("boss", admin=True))
    redirect = boss.get("/grade", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (303, "/admin")
    assert web.client().get("/grade", follow_redirects=False).headers["location"] == "/login"


def test_the_admin_dashboard_summarizes_grading(gweb_sqlite: WebProject) -> None:
    web = gweb_sqlite
    first, _ = add_tasks(web, task("t1"), task("p1", "safety", origin="production"))
    ana = web.add("ana", active=True)
    assert grade(web.client(), ana, first, key="k", score=1).status_code == 201
    boss, _ = web.signed_in(web.add("boss", admin=True))
    page = boss.get("/admin").text
    rows = re.findall(
        r"<tr><td>(\w+)</td><td>(\w+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td></tr>",
        page,
    )
    assert ("accuracy", "eval", "1", "1", "1", "0.50") in rows
    assert ("safety", "production", "1", "0", "0", "–") in rows
