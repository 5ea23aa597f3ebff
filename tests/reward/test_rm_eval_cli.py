"""`tether rm eval` and `tether rm probe` on a sandbox project with a registered tiny checkpoint."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tether.cli.main import app
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.labeling.batches import plan_batch
from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import write_export
from tether.project import Project
from tether.reward.gate import gate_status
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.sandbox.gold_pairs import gold_side
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import SandboxPrompt, stable_rng
from tether.scaffold import init_project
from tether.store import get_artifact, list_artifacts, register_artifact
from tether.store.prompts import PromptRecord
from tether.store.tasks import task_view

runner = CliRunner()


def lenient(spec: dict[str, Any]) -> None:
    """Every bar at its loosest: the gate passes whatever a tiny model scores."""
    for dim in spec["dimensions"]:
        dim["gate"] = {"min_accuracy": 0.0}
    spec["reward_model"].update(min_accuracy=0.0, min_critical_pairs=0, max_ece=1.0)
    spec["reward_model"]["max_probe_delta"] = dict.fromkeys(spec["reward_model"]["max_probe_delta"], 100.0)


def sft_pairs(prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
    out = []
    for record in prompts:
        rng = stable_rng("rm-eval-pairs", record.key)
        prompt = SandboxPrompt.from_meta(record.meta)
        out.append((render_sft_example(prompt, rng), render_sft_example(prompt, rng)))
    return out


def task_rows(project: Project) -> list[PreferenceRow]:
    """One row per stored task, gold's preferred side as chosen (gold ties left out)."""
    rows = []
    with project.store.session() as session:
        for task_id in range(1, 1000):
            try:
                view = task_view(session, task_id=task_id)
            except TetherInputError:
                break
            side = gold_side(SandboxPrompt.from_meta(view.prompt_meta), view.response_a, view.response_b)
            if side is None:
                continue
            a_won = side == "chosen"
            rows.append(
                PreferenceRow(
                    prompt=view.prompt,
                    chosen=view.response_a if a_won else view.response_b,
                    rejected=view.response_b if a_won else view.response_a,
                    dimension=view.dimension,
                    stratum=view.stratum,
                    origin=view.origin,
                    margin=1.0,
                    agreement=1.0,
                    n_votes=1,
                    rater_ids=(1,),
                    rater_names=("gold",),
                    task_id=view.task_id,
                    spec_hash=project.spec_hash,
                )
            )
    return rows


def register(project: Project, kind: str, path: Path, parents: list[str] | None = None) -> str:
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project.project_id,
            kind=kind,
            path=project.relative(path),
            content_hash=content_sha256(path),
            spec_hash=project.spec_hash,
            parents=parents or [],
        ).id


def write_and_register_export(
    project: Project, name: str, train: list[PreferenceRow], test: list[PreferenceRow]
) -> tuple[Path, str]:
    out = project.root / "exports" / name
    write_export(out, train, test, fmt="jsonl", manifest={"spec_hash": project.spec_hash})
    return out, register(project, "export", out)


Built = tuple[Project, str, str]


def build_project(
    root: Path, tiny_rm_dir: Path, *, spec_edits: Callable[[dict[str, Any]], None] | None = None
) -> Built:
    """A sandbox project with 80 labelled-by-gold tasks, an export, a sandbox world and a reward model."""
    project = init_project(root, template="sandbox")
    if spec_edits:
        spec = yaml.safe_load(project.spec_path.read_text(encoding="utf-8"))
        spec_edits(spec)
        project.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        project = Project.open(root)
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=600)), 0)
    plan_batch(project, n=80, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    rows = task_rows(project)
    _, export_id = write_and_register_export(project, "e1", rows[::2], rows[1::2])
    world = project.path("sandbox", "world-seed0.json")
    world.write_text("{}", encoding="utf-8")
    register(project, "sandbox_world", world)
    checkpoint = project.path("models", "rm-tiny", "x").parent
    shutil.copytree(tiny_rm_dir, checkpoint, dirs_exist_ok=True)
    meta = {"format": 1, "export": {"path": "elsewhere", "artifact_id": export_id}}
    (checkpoint / "tether_reward.json").write_text(json.dumps(meta), encoding="utf-8")
    rm_id = register(project, "reward_model", checkpoint, [export_id])
    return project, rm_id, export_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_rm_dir: Path) -> Built:
    return build_project(tmp_path_factory.mktemp("cli") / "proj", tiny_rm_dir)


def run(project: Project, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rm", *args, "--project", str(project.root)])
    return result.exit_code, result.output


def test_eval_writes_json_and_html_and_registers_an_rm_eval(built: Built) -> None:
    project, rm_id, export_id = built
    code, out = run(project, "eval")
    assert code == 0, out
    assert f"using reward_model {rm_id}" in out and f"using export {export_id}" in out  # recorded export
    assert "held-out accuracy" in out and "safety" in out and "ECE" in out and "pick longer" in out
    folder = project.state_dir / "rm_eval" / rm_id
    data = json.loads((folder / "rm_eval.json").read_text(encoding="utf-8"))
    report = data["report"]
    assert report["n_pairs"] > 20 and report["baselines"]["position_source"] == "canonical"
    assert report["gold"]["overall"]["n"] == report["n_pairs"]  # sandbox: gold hook, rows ordered by gold
    assert report["gold"]["labels_agree"] == 1.0
    assert data["probes"] == [] and "gate" not in data
    assert (folder / "rm_eval.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    with project.store.session() as session:
        [record] = list_artifacts(session, project_id=project.project_id, kind="rm_eval")
        assert set(record.parents) == {rm_id, export_id}
        assert record.meta["gated"] is False and record.meta["reward_model"] == rm_id
        assert get_artifact(session, artifact_id=rm_id) is not None
    assert not gate_status(project, rm_id).passed


def test_eval_gate_runs_probes_and_exits_3_with_every_failure(built: Built) -> None:
    project, rm_id, _ = built
    code, out = run(project, "eval", rm_id, "--gate", "--probe-limit", "40")
    assert code == 3, out
    assert "gate failed" in out and "(critical)" in out and "failed its gate" in out
    data = json.loads((project.state_dir / "rm_eval" / rm_id / "rm_eval.json").read_text(encoding="utf-8"))
    assert {p["name"] for p in data["probes"]} == {"filler", "hedge", "list", "confident", "position"}
    assert all(p["n"] <= 40 for p in data["probes"])
    status = gate_status(project, rm_id)
    assert not status.passed and status.report_artifact_id is not None
    assert status.failures == data["gate"]["failures"] and status.failures


def test_eval_gate_passes_when_the_spec_allows_it(tmp_path: Path, tiny_rm_dir: Path) -> None:
    project, rm_id, _ = build_project(tmp_path / "lenient", tiny_rm_dir, spec_edits=lenient)
    out_dir = tmp_path / "out"
    code, out = run(project, "eval", "--gate", "--out", str(out_dir), "--probe-limit", "20")
    assert code == 0, out
    assert (
        "gate passed" in out and (out_dir / "rm_eval.json").is_file() and (out_dir / "rm_eval.html").is_file()
    )
    status = gate_status(project, rm_id)
    assert status.passed and status.failures == []


def test_probe_command_runs_chosen_probes(built: Built) -> None:
    project, rm_id, _ = built
    code, out = run(project, "probe", "--probe", "filler", "--probe", "position", "--probe-limit", "30")
    assert code == 0, out
    data = json.loads((project.state_dir / "rm_eval" / rm_id / "rm_probes.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in data["probes"]] == ["filler", "position"]
    assert "scalar reward model" in data["probes"][1]["note"]
    code, out = run(project, "probe", "--probe", "nope")
    assert code == 2 and "unknown probe 'nope'" in out


BadInput = Callable[[Project, Path], list[str]]


def _pickled_checkpoint(project: Project, tmp: Path) -> list[str]:
    bad = tmp / "pickled"
    bad.mkdir()
    (bad / "pytorch_model.bin").write_bytes(b"x")
    return ["eval", str(bad)]


def _not_an_export(project: Project, tmp: Path) -> list[str]:
    (tmp / "notes.txt").write_text("hello", encoding="utf-8")
    return ["eval", "--data", str(tmp)]


def _empty_test_split(project: Project, tmp: Path) -> list[str]:
    _, export_id = write_and_register_export(project, f"empty-{tmp.name}", [], [])
    return ["eval", "--data", export_id]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (_pickled_checkpoint, "Tether never unpickles checkpoints"),
        (
            lambda project, tmp: ["eval", "--data", str(tmp / "missing")],
            "neither an artifact id nor an existing path",
        ),
        (_not_an_export, "not a Tether export"),
        (_empty_test_split, "test split is empty"),
        (lambda project, tmp: ["eval", "no-such-artifact"], "neither an artifact id nor an existing path"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    built: Built, tmp_path: Path, make_args: BadInput, message: str
) -> None:
    project, _, _ = built
    code, out = run(project, *make_args(project, tmp_path))
    assert code == 2, out
    assert message in " ".join(out.split())


def test_a_project_without_a_reward_model_exits_2(tmp_path: Path) -> None:
    project = init_project(tmp_path / "blank", template="sandbox")
    code, out = run(project, "eval")
    assert code == 2 and "no reward_model artifact yet" in out
