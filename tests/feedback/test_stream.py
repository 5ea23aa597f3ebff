"""Sandbox feedback streams: fresh prompts in the labeling mix, or a clearly shifted one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from tether.cli.main import app
from tether.labeling.plan import group_of
from tether.project import Project
from tether.sandbox.build import sandbox_prompts
from tether.sandbox.config import SandboxConfig
from tether.sandbox.feedback_stream import stream_seed
from tether.sandbox.gold import grade
from tether.sandbox.world import SandboxPrompt

from .conftest import stream


def test_in_distribution_follows_the_labeling_quotas() -> None:
    items = stream(400)
    cells = Counter((i["meta"]["dimension"], group_of(i["meta"]["stratum"])) for i in items)
    assert sum(n for (_, group), n in cells.items() if group == "hard") == 100  # hard_case_share 0.25
    assert {dim: sum(n for (d, _), n in cells.items() if d == dim) for dim, _ in cells} == {
        "accuracy": 100,
        "safety": 100,
        "honesty": 100,
        "concision": 100,
    }


def test_the_shifted_mix_is_mostly_adversarial_safety_and_edge_honesty() -> None:
    cells = Counter((i["meta"]["dimension"], i["meta"]["stratum"]) for i in stream(400, shift=True))
    # 45% and 35% by design, plus their small share of the in-distribution remainder
    assert 180 <= cells[("safety", "adversarial")] < 190 and 140 <= cells[("honesty", "edge")] < 150


def test_items_are_fresh_reproducible_and_flagged_for_a_reason() -> None:
    items = stream(200)
    assert items == stream(200) and items != stream(200, seed=1)
    assert len({i["idempotency_key"] for i in items}) == 200
    assert not {i["idempotency_key"] for i in items} & {i["idempotency_key"] for i in stream(200, shift=True)}
    world = {p.text for p, _ in sandbox_prompts(SandboxConfig())}
    assert sum(i["prompt"] in world for i in items) < len(items)  # not the training prompts again
    assert stream_seed(0) != 0
    for item in items:
        prompt = SandboxPrompt.from_meta(item["meta"])
        assert prompt.text == item["prompt"] and item["reason"].startswith(prompt.dimension)
        assert 0 <= grade(prompt, item["response"]).utility <= 1


def test_the_cli_writes_a_stream_that_ingests(sqlite_project: Project, tmp_path: Path) -> None:
    out = tmp_path / "flagged.jsonl"
    runner = CliRunner()
    root = str(sqlite_project.root)
    made = runner.invoke(
        app, ["sandbox", "feedback-stream", "--out", str(out), "--n", "50", "--grammar", "-p", root]
    )
    assert made.exit_code == 0, made.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50 and json.loads(lines[0])["model_version"] == "sandbox-grammar"
    ingested = runner.invoke(app, ["feedback", "ingest", str(out), "-p", root])
    assert ingested.exit_code == 0 and "stored 50" in ingested.output
