"""Evals fixtures: the template specs, a tiny sandbox project (shared with the RL tests) and suites."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from tests.rl.test_loop_support import single_thread, tiny_project, tiny_template  # noqa: F401
from tether.spec import load_spec
from tether.spec.model import Spec


def template_spec(name: str) -> Spec:
    return load_spec(Path(str(files("tether") / "templates" / name / "spec.yaml")))


@pytest.fixture(scope="session")
def sandbox_spec() -> Spec:
    return template_spec("sandbox")


@pytest.fixture(scope="session")
def assistant_spec() -> Spec:
    return template_spec("assistant")
