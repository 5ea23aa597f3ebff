"""Fixtures for the web app: a small sandbox project with planned tasks, raters and clients."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tether.labeling import raters as rater_ops
from tether.labeling.batches import plan_batch
from tether.labeling.context import LabelingContext, project_labeling_context
from tether.project import Project
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.scaffold import init_project
from tether.web.app import create_app

from ..labeling.conftest import sft_pairs


@dataclass
class WebProject:
    project: Project
    ctx: LabelingContext
    app: FastAPI

    def add(self, name: str, *, admin: bool = False, active: bool = False) -> str:
        """Add a rater (or admin) and return their token; `active` skips calibration."""
        _, token = rater_ops.add_person(self.project, name=name, admin=admin)
        if active and not admin:
            rater_ops.readmit(self.project, name=name, reason="test: calibrated elsewhere")
        return token

    def client(self) -> TestClient:
        return TestClient(self.app)

    def signed_in(self, token: str) -> tuple[TestClient, str]:
        """A browser-like client signed in through the login form; returns (client, csrf)."""
        client = self.client()
        csrf = form_csrf(client.get("/login").text)
        response = client.post("/login", data={"token": token, "csrf": csrf}, follow_redirects=False)
        assert response.status_code == 303, response.text
        page = client.get(response.headers["location"])
        return client, form_csrf(page.text)


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def make_web_project(root: Path, *, tasks: int = 60) -> WebProject:
    project = init_project(root / "web", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=max(1200, tasks * 8))), 0)
    plan_batch(project, n=tasks, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    ctx = project_labeling_context(project)
    return WebProject(project, ctx, create_app(project, ctx))


@pytest.fixture
def web(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> WebProject:
    """On SQLite, then on PostgreSQL when TETHER_TEST_POSTGRES_URL is set."""
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    return make_web_project(tmp_path)


@pytest.fixture
def web_sqlite(tmp_path: Path) -> WebProject:
    return make_web_project(tmp_path)


Bearer = Callable[[str], dict[str, str]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium for the browser tests; they skip, saying why, where it cannot be had."""
    from .browser import chromium_path

    path, why_not = chromium_path()
    if path is None:
        pytest.skip(why_not)
    return path
