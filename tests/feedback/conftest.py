"""A sandbox project for feedback tests, on SQLite and (when configured) PostgreSQL, and its streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.project import Project
from tether.sandbox.feedback_stream import feedback_stream, grammar_responses
from tether.scaffold import init_project
from tether.spec.model import LabelingPolicy


@pytest.fixture
def project(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    return init_project(tmp_path / "fb", template="sandbox")


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "fb", template="sandbox")


def with_policy(project: Project, section: str, **values: Any) -> Project:
    """The project reopened after setting `section.key: value` in its spec."""
    spec = yaml.safe_load(project.spec_path.read_text(encoding="utf-8"))
    spec.setdefault(section, {}).update(values)
    project.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return Project.open(project.root)


def stream(
    n: int, *, shift: bool = False, seed: int = 0, policy: LabelingPolicy | None = None
) -> list[dict[str, Any]]:
    """Flagged sandbox items answered by the SFT grammar (no model needed)."""
    return feedback_stream(
        n=n,
        shift=shift,
        seed=seed,
        policy=policy or LabelingPolicy(),
        respond=grammar_responses,
        model_version="sandbox-grammar",
    )


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path
