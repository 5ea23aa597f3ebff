"""A small sandbox labeling project on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tether.labeling.batches import plan_batch
from tether.labeling.context import LabelingContext, labeling_context
from tether.project import Project
from tether.sandbox.anchors import anchor_prompt_meta
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import SandboxPrompt, stable_rng
from tether.scaffold import init_project
from tether.store.prompts import PromptRecord


def sft_pairs(prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
    """Two SFT-style responses per prompt, without a model (the grammar's own sampler)."""
    out = []
    for record in prompts:
        prompt = SandboxPrompt.from_meta(record.meta)
        rng = stable_rng("test-pairs", record.key)
        out.append((render_sft_example(prompt, rng), render_sft_example(prompt, rng)))
    return out


@pytest.fixture
def lab(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, LabelingContext]:
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    project = init_project(tmp_path / "lab", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    plan_batch(project, n=120, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    return project, labeling_context(project, seed=0, meta_for=anchor_prompt_meta(0))
