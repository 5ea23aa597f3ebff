"""Shared fixtures: real SQLite files and, when TETHER_TEST_POSTGRES_URL is set, real PostgreSQL."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_ENV = "TETHER_TEST_POSTGRES_URL"


def _postgres_database(base_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tether_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tether.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set; PostgreSQL tests need a server URL")
    yield from _postgres_database(base)


@pytest.fixture(autouse=True)
def _no_ambient_db_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's TETHER_DB_URL must never point tests at a real store.
    monkeypatch.delenv("TETHER_DB_URL", raising=False)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state() -> Iterator[None]:
    """accelerate keeps one process-wide state: a test that built an Accelerator with bf16 (TRL's
    trainers default to it) would otherwise put every later test's prepared models under bf16
    autocast. Each process of a real run builds one Accelerator, which this mirrors."""
    yield
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state(reset_partial_state=True)
        state.GradientState._reset_state()


@pytest.fixture(scope="session")
def sandbox_world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The default sandbox world (a full build, about a minute), shared by the slow tests.

    Tests may add labels to it but never rebuild or delete what the build wrote.
    """
    from tether.sandbox.build import build_world
    from tether.sandbox.config import SandboxConfig
    from tether.scaffold import init_project

    project = init_project(tmp_path_factory.mktemp("world") / "sandbox", template="sandbox")
    return project, build_world(project, SandboxConfig())
