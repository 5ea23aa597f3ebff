"""`GET /api/v1/assignments/next` gives the whole conversation in `messages`, with `prompt` keeping its
meaning (the last user turn), so existing clients keep working."""

from __future__ import annotations

from pathlib import Path

import yaml

from tether.labeling.context import project_labeling_context
from tether.project import Project
from tether.scaffold import init_project
from tether.web.app import create_app

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
