"""`tether data import-preferences` and the audit of an imported source (`tether.labeling.audit`).

The audit is planted: a calibrated rater who always picks the reply marked good labels each audited
pair. A clean source agrees on every clear-cut pair; one with 40% of its labels flipped agrees on
60%, over the 25% disagreement that excludes a rater, and is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tether.cli.main import app as cli
from tether.labeling import raters as rater_ops
from tether.labeling.audit import apply_audit, plan_audit
from tether.labeling.context import project_labeling_context
from tether.labeling.dataset import export_preferences
from tether.labeling.import_preferences import import_preferences, rejected_path
from tether.labeling.queue import next_item
from tether.labeling.submit import submit_judgment
from tether.project import Project
from tether.scaffold import init_project
from tether.store import NewPrompt, add_prompts, list_prompts
from tether.store.imports import source_task_ids
from tether.store.raters import get_rater

N = 60


def _project(root: Path) -> Project:
    project = init_project(root / "p", template="assistant")
    spec_file = project.root / "spec.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["labeling"]["hidden_anchor_rate"] = 0.0  # the planted rater answers by a marker anchors lack
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return Project.open(project.root)


def _trl_file(path: Path, *, flipped_every: int | None = None, n: int = N) -> Path:
    """n TRL rows; the good reply says GOOD. Rows i with i % 5 < 2 are flipped when asked (40%)."""
    rows = []
    for i in range(n):
        good, bad = f"GOOD answer {i}: step by step.", f"bad answer {i}."
        flip = flipped_every is not None and i % 5 < 2
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Question {i}: how do I fix this?"}],
                "chosen": [{"role": "assistant", "content": bad if flip else good}],
                "rejected": [{"role": "assistant", "content": good if flip else bad}],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _label_audit(project: Project, rater_name: str) -> int:
    """The planted rater answers every open item: the reply with GOOD wins."""
    ctx = project_labeling_context(project)
    done = 0
    while True:
        with project.store.session() as session:
            rater = get_rater(session, project_id=project.project_id, name=rater_name)
            item = next_item(session, ctx, rater)
            if item is None:
                return done
            choice = "A" if "GOOD" in item.left else "B"
            submit_judgment(
                session, ctx, rater, assignment_id=item.assignment.id, choice=choice, strength=2,
                rationale="the marked answer explains the fix", seconds=1.0, idempotency_key=f"k{done}",
            )  # fmt: skip
        done += 1


def test_a_clean_source_is_accepted_and_a_flipped_one_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    rater_ops.add_person(project, name="ana")
    rater_ops.readmit(project, name="ana", reason="test: calibrated elsewhere")
    clean = import_preferences(project, _trl_file(tmp_path / "clean.jsonl"), source="clean")
    flipped = import_preferences(
        project, _trl_file(tmp_path / "flipped.jsonl", flipped_every=5), source="flipped"
    )
    assert (clean.imported, flipped.imported) == (N, N) and clean.status == "calibrating"
    assert flipped.prompts_linked == N  # the same questions: linked to clean's prompts, not duplicated
    with project.store.session() as session:
        assert len(list_prompts(session, project_id=project.project_id)) == N

    # Not audited: neither source reaches an export (and nothing else is labeled yet).
    with pytest.raises(Exception, match="no judgments from included raters"):
        export_preferences(project, out=tmp_path / "early")

    for source in ("clean", "flipped"):
        plan = plan_audit(project, source=source, n=N)
        assert (plan.tasks, plan.slots) == (N, N)
    assert _label_audit(project, "ana") == 2 * N

    accepted = apply_audit(project, source="clean")
    refused = apply_audit(project, source="flipped")
    assert accepted.verdict == "accepted" and accepted.status == "active"
    assert accepted.overall is not None and accepted.overall.agreed == N and accepted.overall.pairs == N
    assert refused.verdict == "refused" and refused.status == "excluded"
    assert refused.overall is not None and refused.overall.agreed == 36  # 24 of 60 flipped
    assert refused.overall.low < 0.6 < refused.overall.high < 0.75  # the interval excludes 0.75

    # The export takes ana's labels on every audited pair and the accepted source's, not the refused one's.
    result = export_preferences(project, out=tmp_path / "export", heldout=0.0)
    assert "clean" in result.raters and "flipped" not in result.raters and "flipped" in result.left_out


def test_bad_rows_exit_2_naming_the_row_and_nothing_is_written(tmp_path: Path) -> None:
    project = _project(tmp_path)
    path = _trl_file(tmp_path / "pairs.jsonl", n=5)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = json.dumps({"prompt": "q", "chosen": 3, "rejected": "r"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["data", "import-preferences", str(path), "--source", "old", "--project", str(project.root)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "row 3" in result.output and "chosen" in result.output
    with project.store.session() as session:
        assert source_task_ids(session, project_id=project.project_id, source="old") == []
        with pytest.raises(Exception, match="unknown rater"):
            get_rater(session, project_id=project.project_id, name="old")

    result = CliRunner().invoke(cli, [*args, "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "imported 4 trl pairs" in result.output
    rejected = [json.loads(x) for x in rejected_path(path).read_text(encoding="utf-8").splitlines()]
    assert [(r["row"], r["field"]) for r in rejected] == [(3, "chosen")]
    again = CliRunner().invoke(cli, [*args, "--skip-invalid"])
    assert "imported 0 trl pairs" in again.output and "4 already imported" in again.output


def test_an_existing_prompt_is_linked_and_trust_lets_a_source_train_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    dimension = project.spec.dimension_ids[0]
    with project.store.session() as session:
        add_prompts(
            session, project_id=project.project_id, spec_hash=project.spec_hash,
            prompts=[NewPrompt(key="mine", text="Question 0: how do I fix this?", dimension=dimension,
                               stratum="routine")],
        )  # fmt: skip
    result = import_preferences(project, _trl_file(tmp_path / "t.jsonl", n=3), source="team", trust=True)
    assert (result.prompts_linked, result.prompts_added, result.status) == (1, 2, "active")
    export = export_preferences(project, out=tmp_path / "export", heldout=0.0)
    assert export.train == 3 and export.raters == ["team"]
