"""`GET /api/v1/assignments/next` gives the whole conversation in `messages`, with `prompt` keeping its
meaning (the last user turn), so existing clients keep working."""

from __future__ import annotations

from pathlib import Path

import yaml

from tether.labeling.context import project_labeling_context
from tether.project import Project
from tether.scaffold import init_project
from tether.web.app import create_app
from tether.web.schemas import AssignmentOut

from .browser import plant_task
from .conftest import WebProject, bearer

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello. What do you need?"},
    {"role": "user", "content": "A synonym for <quick>."},
]


def _web(root: Path, *, system: str | None = None) -> WebProject:
    project = init_project(root / "web", template="sandbox")
    if system is not None:
        spec_file = project.root / "spec.yaml"
        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        spec["generation"]["system_prompt"] = system
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        project = Project.open(project.root)
    ctx = project_labeling_context(project)
    return WebProject(project, ctx, create_app(project, ctx))


def test_the_next_assignment_carries_the_conversation(tmp_path: Path) -> None:
    web = _web(tmp_path)
    plant_task(
        web.project, key="c", prompt="A synonym for <quick>.", messages=MESSAGES, responses=("fast", "slow")
    )
    item = web.client().get("/api/v1/assignments/next", headers=bearer(web.add("ana", active=True))).json()
    assert item["messages"] == MESSAGES and item["prompt"] == "A synonym for <quick>."
    AssignmentOut.model_validate(item)


def test_the_openapi_schema_documents_the_replies_with_their_messages(tmp_path: Path) -> None:
    schema = _web(tmp_path).client().get("/api/v1/openapi.json").json()
    next_200 = schema["paths"]["/api/v1/assignments/next"]["get"]["responses"]["200"]
    assert next_200["content"]["application/json"]["schema"]["$ref"].endswith("/AssignmentOut")
    judged = schema["paths"]["/api/v1/judgments"]["post"]["responses"]
    for code in ("200", "201"):
        assert judged[code]["content"]["application/json"]["schema"]["$ref"].endswith("/JudgmentOut")
    components = schema["components"]["schemas"]
    assert components["AssignmentOut"]["properties"]["messages"]["items"]["$ref"].endswith("/MessageOut")
    assert components["MessageOut"]["properties"]["role"]["enum"] == ["system", "user", "assistant"]


def test_a_single_turn_is_one_user_message_and_the_spec_system_prompt_comes_first(tmp_path: Path) -> None:
    web = _web(tmp_path, system="Be kind.")
    assert web.project.spec.generation.system_prompt == "Be kind."
    plant_task(web.project, key="s", prompt="Name a colour.", responses=("Blue.", "No."))
    item = web.client().get("/api/v1/assignments/next", headers=bearer(web.add("ana", active=True))).json()
    assert item["prompt"] == "Name a colour."
    assert item["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Name a colour."},
    ]


def test_a_finding_can_be_a_conversation(tmp_path: Path) -> None:
    from tether.labeling import raters as rater_ops
    from tether.store.findings import list_findings

    web = _web(tmp_path)
    _, token = rater_ops.add_person(web.project, name="rita", roles=["redteam"])
    body = {
        "messages": MESSAGES,
        "response": "Fast, fast, fast!",
        "note": "repeats itself instead of answering",
    }
    headers = {**bearer(token), "Idempotency-Key": "k1"}
    created = web.client().post("/api/v1/redteam/findings", json=body, headers=headers)
    assert created.status_code == 201, created.text
    again = web.client().post(
        "/api/v1/redteam/findings", json=body, headers={**headers, "Idempotency-Key": "k2"}
    )
    assert again.status_code == 200 and again.json()["replayed"] is True  # keyed by the conversation
    with web.project.store.session() as session:
        (finding,) = list_findings(session, project_id=web.project.project_id)
    assert finding.prompt == "A synonym for <quick>." and finding.messages == MESSAGES
    mine = web.client().get("/api/v1/redteam/findings", headers=bearer(token)).json()
    assert mine[0]["messages"] == MESSAGES
    wrong = {**body, "prompt": "not the last turn"}
    refused = web.client().post(
        "/api/v1/redteam/findings", json=wrong, headers={**headers, "Idempotency-Key": "k3"}
    )
    assert refused.status_code == 422
