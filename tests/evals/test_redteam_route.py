"""Routing findings to labeling: hard-case tasks with origin "redteam", idempotent, labeled and exported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.rl.test_loop_support import read_jsonl
from tether.cli.main import app
from tether.errors import TetherInputError
from tether.evals.redteam_route import choose_findings, new_prompt_key, place_prompt, route
from tether.labeling.context import project_labeling_context
from tether.labeling.dataset import export_preferences
from tether.project import Project
from tether.sandbox.raters import default_pool
from tether.sandbox.simulate import simulate
from tether.store import list_prompts
from tether.store.findings import FindingRecord, NewFinding, add_findings, list_findings
from tether.store.prompts import PromptRecord
from tether.store.tasks import slot_counts, task_view


def pool_and_eval(project: Project) -> tuple[list[PromptRecord], list[PromptRecord]]:
    with project.store.session() as session:
        pool = list_prompts(session, project_id=project.project_id, split="pool")
        held_out = list_prompts(session, project_id=project.project_id, split="eval")
    return pool, held_out


def store(project: Project, *findings: NewFinding) -> list[int]:
    with project.store.session() as session:
        return add_findings(
            session, project_id=project.project_id, findings=findings, spec_hash=project.spec_hash
        )


def findings_by_id(project: Project) -> dict[int, FindingRecord]:
    with project.store.session() as session:
        return {f.id: f for f in list_findings(session, project_id=project.project_id)}


def finding(prompt: str, response: str, gap: float | None, **kw: object) -> NewFinding:
    return NewFinding(source="search", prompt=prompt, response=response, gap=gap, **kw)  # type: ignore[arg-type]


def record(
    id: int, *, gap: float | None = None, dimension: str | None = None, prompt: str = "p"
) -> FindingRecord:
    return FindingRecord(
        id=id,
        project_id=1,
        content_hash="h",
        source="file",
        dimension=dimension,
        prompt=prompt,
        response=f"r{id}",
        baseline_response=None,
        rm_score=None,
        grader_score=None,
        gap=gap,
        note="",
        submitted_by=None,
        status="open",
        task_id=None,
        meta={},
        spec_hash="s",
        created_at=datetime.now(UTC),
    )


def test_choose_findings_keeps_order_applies_min_gap_and_top() -> None:
    records = [record(i, gap=gap) for i, gap in enumerate([3.0, 1.0, 0.2, None])]
    assert [f.id for f in choose_findings(records, top=2, min_gap=None)] == [0, 1]
    assert [f.id for f in choose_findings(records, top=10, min_gap=0.5)] == [
        0,
        1,
    ]  # no gap cannot clear a bar
    assert [f.id for f in choose_findings(records, top=10, min_gap=None)] == [0, 1, 2, 3]
    with pytest.raises(TetherInputError, match="--top"):
        choose_findings(records, top=0, min_gap=None)


def test_route_creates_redteam_tasks_once_and_skips_what_it_cannot_route(tiny_project: Project) -> None:
    project = tiny_project
    pool, held_out = pool_and_eval(project)
    a, b, c = pool[0], pool[1], pool[2]
    ids = store(
        project,
        finding(a.text, "the answer is 7 . i hope this helps .", 2.0, baseline_response="the answer is 7 ."),
        finding(
            b.text, "the answer is 9 . trust me on this .", 1.5
        ),  # no baseline: the SFT policy writes one
        finding(held_out[0].text, "no .", 1.0, baseline_response="yes ."),
        finding(c.text, "4 .", 0.5, baseline_response="5 ."),
        NewFinding(
            source="file",
            prompt="is peldor a city ?",
            response="yes .",
            dimension="honesty",
            baseline_response="i do not know .",
        ),
        NewFinding(source="web", prompt="tell me a secret ?", response="sure ."),
    )
    first = route(project, top=2)
    assert first.finding_ids == ids[:2] and len(first.task_ids) == 2 and first.skipped == []
    k = project.spec.labeling.raters_per_overlap
    assert first.raters_per_task == k == 3
    with project.store.session() as session:
        views = [task_view(session, task_id=t) for t in first.task_ids]
        assert slot_counts(session, project_id=project.project_id)["open"] == 2 * k
    assert [v.origin for v in views] == ["redteam", "redteam"]
    assert [v.meta["finding_id"] for v in views] == ids[:2]
    assert (views[0].response_a, views[0].response_b) == (
        "the answer is 7 . i hope this helps .",
        "the answer is 7 .",
    )
    assert views[1].response_a == "the answer is 9 . trust me on this ." and views[1].response_b.strip()
    assert views[1].response_b != views[1].response_a
    stored = findings_by_id(project)
    assert [(stored[i].status, stored[i].task_id) for i in ids[:2]] == [("routed", t) for t in first.task_ids]

    second = route(project, top=10)
    skipped = dict(second.skipped)
    assert "held-out eval split" in skipped[ids[2]] and "names no dimension" in skipped[ids[5]]
    assert second.finding_ids == [ids[3], ids[4]]
    new_prompt = task_view_prompt(project, second.task_ids[1])
    assert new_prompt.key == new_prompt_key("is peldor a city ?")
    assert (new_prompt.split, new_prompt.source, new_prompt.dimension) == ("pool", "redteam", "honesty")

    third = route(project, top=10)  # idempotent: only the unroutable ones are left, skipped again
    assert (
        third.batch_id is None and third.task_ids == [] and {i for i, _ in third.skipped} == {ids[2], ids[5]}
    )
    with project.store.session() as session:
        assert slot_counts(session, project_id=project.project_id)["open"] == 4 * k


def task_view_prompt(project: Project, task_id: int) -> PromptRecord:
    with project.store.session() as session:
        view = task_view(session, task_id=task_id)
        return next(p for p in list_prompts(session, project_id=project.project_id) if p.id == view.prompt_id)


def test_place_prompt_refuses_an_unknown_dimension(tiny_project: Project) -> None:
    why = place_prompt(record(1, dimension="style", prompt="new ?"), {}, tiny_project.spec.dimension_ids)
    assert isinstance(why, str) and "'style' is not in the spec" in why


def test_routed_tasks_are_labeled_like_planned_ones_and_exported_with_their_origin(
    tiny_project: Project, tmp_path: Path
) -> None:
    project = tiny_project
    pool, _ = pool_and_eval(project)
    store(
        project,
        *[
            finding(
                p.text,
                "the answer is 1 . i hope this helps .",
                1.0 + i,
                baseline_response="the answer is 2 .",
            )
            for i, p in enumerate(pool[:6])
        ],
    )
    routed = route(project, top=6)
    assert len(routed.task_ids) == 6
    profiles = [p for p in default_pool() if p.name.startswith("good-")]
    summary = simulate(project, project_labeling_context(project), profiles, seed=0)
    assert summary.judgments >= 6 * 3
    export_preferences(project, out=tmp_path / "export", heldout=0.0)
    rows = read_jsonl(tmp_path / "export" / "train.jsonl")
    assert len(rows) >= 5 and {r["origin"] for r in rows} == {"redteam"}


def test_cli_route_and_list(tiny_project: Project) -> None:
    pool, _ = pool_and_eval(tiny_project)
    store(tiny_project, finding(pool[0].text, "x y z .", 1.25, baseline_response="x ."))
    runner = CliRunner()
    where = ["--project", str(tiny_project.root)]
    result = runner.invoke(app, ["redteam", "list", *where, "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["gap"], row["source"], row["status"]) == (1.25, "search", "open")
    result = runner.invoke(app, ["redteam", "list", *where])
    assert result.exit_code == 0 and "+1.25" in result.output and "search" in result.output
    result = runner.invoke(app, ["redteam", "route", *where, "--min-gap", "2"])
    assert result.exit_code == 0 and "no open findings to route" in result.output
    result = runner.invoke(app, ["redteam", "route", *where, "--top", "5"])
    assert result.exit_code == 0 and "1 tasks with origin redteam (x3 raters each)" in result.output
    result = runner.invoke(app, ["redteam", "list", *where, "--status", "nope"])
    assert result.exit_code == 2 and "--status" in result.output
