"""End-to-end RL runs on a tiny policy and reward model: parameters move, metrics are complete and
finite, artifacts and run rows are written, the KL budget stops a run, the gate is enforced."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from tests.rl.test_loop_support import (  # noqa: F401
    TINY_RL,
    latest_id,
    pass_gate,
    read_jsonl,
    register,
    single_thread,
    tighten_budget,
    tiny_project,
    tiny_template,
)
from tether.errors import QualityGateFailed
from tether.project import Project
from tether.rl.run import run_rl
from tether.store import get_artifact, get_run, list_alerts, list_prompts

ALWAYS = {
    "objective/kl",
    "objective/kl_k3",
    "objective/kl_coef",
    "objective/rm_score",
    "policy/entropy",
    "policy/clipfrac",
    "policy/approx_kl",
    "gen/length_mean",
    "gen/hedge_rate",
    "gen/list_rate",
    "gen/distinct_2",
    "gold/utility",
    "gold/accuracy",
    "gold/safety",
    "gold/honesty",
    "gold/concision",
}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> int:
    return sum(not torch.equal(before[k], after[k]) for k in before if k in after)


def test_ppo_run_updates_the_policy_and_logs_every_metric(tiny_project: Project) -> None:  # noqa: F811
    project = tiny_project
    sft_id, rm_id = latest_id(project, "policy"), latest_id(project, "reward_model")
    result = run_rl(project, TINY_RL)
    assert result.status == "completed" and result.steps == 3 and not result.critical
    # parameters changed: policy and critic (initialized from the reward model)
    sft_dir = project.root / ".tether" / "models" / "sft-seed0"
    rm_dir = project.root / ".tether" / "models" / "rm-tiny"
    before, after = (
        load_file(str(sft_dir / "model.safetensors")),
        load_file(str(result.checkpoint / "model.safetensors")),
    )
    assert changed(before, after) >= len(before) // 2
    critic_before = load_file(str(rm_dir / "model.safetensors"))
    critic_after = load_file(str(result.checkpoint / "value" / "model.safetensors"))
    assert critic_before.keys() == critic_after.keys() and changed(critic_before, critic_after) > 0
    # metrics: one row per step, every key present and finite; step 0 is on the SFT policy itself
    rows = read_jsonl(result.run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert ALWAYS | {"val/explained_variance"} <= row.keys()
        assert all(math.isfinite(row[k]) for k in ALWAYS)
    assert rows[0]["objective/kl"] == pytest.approx(0.0, abs=1e-5)  # policy = reference before any update
    assert rows[-1]["objective/kl_k3"] > 0  # k3 is >= 0 per token; k1 of 8 samples may be negative
    assert (
        rows[0]["objective/kl_coef"] == TINY_RL.init_kl_coef != rows[-1]["objective/kl_coef_next"]
    )  # adaptive
    # samples only from the pool split, every step (sample_every=1)
    samples = read_jsonl(result.run_dir / "samples.jsonl")
    with project.store.session() as session:
        pool = {p.key for p in list_prompts(session, project_id=project.project_id, split="pool")}
    assert {s["step"] for s in samples} == {0, 1, 2} and {s["prompt_key"] for s in samples} <= pool
    assert len(samples) == 3 * TINY_RL.episodes_per_step
    # checkpoint metadata, artifact lineage, run row
    meta = json.loads((result.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))
    assert meta["step"] == 3 and meta["spec_hash"] == project.spec_hash and meta["algo"] == "ppo"
    assert meta["sft"]["artifact_id"] == sft_id and meta["reward_model"]["artifact_id"] == rm_id
    assert len(meta["sft"]["content_sha256"]) == 64 and meta["gate"] == {
        "passed": True,
        "forced": False,
        "report_artifact_id": meta["gate"]["report_artifact_id"],
        "failures": [],
    }
    assert meta["config"]["steps"] == 3 and meta["config"]["episodes_per_step"] == 8
    with project.store.session() as session:
        artifact = get_artifact(session, artifact_id=result.artifact.id if result.artifact else "")
        run = get_run(session, run_id=result.run_id)
    assert (
        artifact is not None and artifact.kind == "rl_checkpoint" and set(artifact.parents) == {sft_id, rm_id}
    )
    assert run is not None and run.status == "completed" and run.artifact_id == artifact.id
    assert run.ended_at is not None and not run.gate_overridden and run.meta["steps"] == 3


def test_rloo_run_has_no_critic_and_a_fixed_beta(tiny_project: Project) -> None:  # noqa: F811
    cfg = replace(TINY_RL, algo="rloo", kl="fixed", init_kl_coef=0.05)
    result = run_rl(tiny_project, cfg)
    assert result.status == "completed"
    assert not (result.checkpoint / "value").exists()
    rows = read_jsonl(result.run_dir / "metrics.jsonl")
    assert all(r.keys() >= ALWAYS and "val/explained_variance" not in r for r in rows)
    assert {r["objective/kl_coef"] for r in rows} == {0.05} == {r["objective/kl_coef_next"] for r in rows}


def test_kl_budget_stops_the_run_with_a_checkpoint_and_a_reason(tiny_project: Project) -> None:  # noqa: F811
    project = tighten_budget(tiny_project, 0.001)
    result = run_rl(project, replace(TINY_RL, steps=6, lr=3e-3))
    assert result.status == "stopped" and result.critical and result.steps < 6
    assert result.reason is not None and result.reason.startswith("KL budget: running KL")
    assert (result.checkpoint / "model.safetensors").is_file()
    meta = json.loads((result.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))
    assert meta["stopped"]["reason"] == result.reason and meta["step"] == result.steps
    assert any(a.monitor == "kl_budget" and a.severity == "critical" for a in result.alerts)
    logged = read_jsonl(result.run_dir / "alerts.jsonl")
    assert any(a["monitor"] == "kl_budget" and a["severity"] == "critical" for a in logged)
    with project.store.session() as session:
        run = get_run(session, run_id=result.run_id)
        stored = list_alerts(session, run_id=result.run_id)
    assert run is not None and run.status == "stopped" and run.reason_stopped == result.reason
    assert run.artifact_id == (result.artifact.id if result.artifact else None)
    assert [a.monitor for a in stored] == [a["monitor"] for a in logged]


def test_an_ungated_reward_model_is_refused_unless_forced(tiny_project: Project) -> None:  # noqa: F811
    project = tiny_project
    source = project.root / ".tether" / "models" / "rm-tiny"
    copy = project.root / ".tether" / "models" / "rm-ungated"
    shutil.copytree(source, copy)
    (copy / "tether_reward.json").write_text('{"format": 1, "note": "never gated"}', encoding="utf-8")
    rm_id = register(project, "reward_model", copy)
    with pytest.raises(QualityGateFailed, match=f"reward model {rm_id} has not passed its gate.*--force"):
        run_rl(project, TINY_RL, reward_model=rm_id)
    messages: list[str] = []
    result = run_rl(
        project, replace(TINY_RL, steps=1), reward_model=rm_id, force=True, on_message=messages.append
    )
    assert result.status == "completed" and result.gate.forced and not result.gate.passed
    assert any("did NOT pass its gate" in m for m in messages)
    meta = json.loads((result.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))
    assert meta["gate"]["forced"] is True and meta["gate"]["failures"]
    with project.store.session() as session:
        run = get_run(session, run_id=result.run_id)
        artifact = get_artifact(session, artifact_id=result.artifact.id if result.artifact else "")
    assert run is not None and run.gate_overridden and run.meta["gate"]["forced"] is True
    assert artifact is not None and artifact.meta["gate_forced"] is True and rm_id in artifact.parents


def test_a_warm_start_keeps_sft_as_reference_and_records_where_it_started(
    tiny_project: Project,  # noqa: F811
) -> None:
    from tether.errors import TetherInputError

    first = run_rl(tiny_project, replace(TINY_RL, lr=3e-3))
    assert first.artifact is not None
    second = run_rl(tiny_project, replace(TINY_RL, steps=2, save_every=1), init_from=first.artifact.id)
    assert second.status == "completed" and second.steps == 2
    rows = read_jsonl(second.run_dir / "metrics.jsonl")
    # KL against SFT from the first step: the policy starts where the first run ended, not at SFT.
    # k3 = (r - 1) - log r is >= 0 token by token and 0 only where policy and reference agree, so
    # unlike the sampled k1 mean it cannot come out negative on a handful of samples; at the first
    # step of a fresh run the policy is SFT itself, so k3 there is float32 round-off: log-ratios of
    # order eps32 ~ 1e-7 give k3 ~ r^2 / 2 ~ 1e-14, far under 1e-6.
    first_rows = read_jsonl(first.run_dir / "metrics.jsonl")
    assert first_rows[0]["objective/kl_k3"] < 1e-6
    assert rows[0]["objective/kl_k3"] > 1e-4
    meta = json.loads((second.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))
    assert meta["init_from"]["artifact_id"] == first.artifact.id
    assert meta["sft"] == json.loads((first.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))["sft"]
    with tiny_project.store.session() as session:
        artifact = get_artifact(session, artifact_id=second.artifact.id if second.artifact else "")
    assert artifact is not None and first.artifact.id in artifact.parents
    # resumed from its step-1 checkpoint, the warm-started run keeps its origin
    resumed = run_rl(tiny_project, resume_from=str(second.run_dir / "step-000001"))
    assert resumed.artifact is not None and first.artifact.id in resumed.artifact.parents
    assert (
        json.loads((resumed.checkpoint / "tether_rl.json").read_text(encoding="utf-8"))["init_from"]
        == meta["init_from"]
    )
    with pytest.raises(TetherInputError, match="pass one of them"):
        run_rl(tiny_project, TINY_RL, init_from=first.artifact.id, resume_from=first.artifact.id)
    with pytest.raises(TetherInputError, match="--init-from 'nowhere' is neither"):
        run_rl(tiny_project, TINY_RL, init_from="nowhere")
    # a checkpoint trained from another SFT policy: its KL would not be against this one
    stray = tiny_project.root / "stray"
    shutil.copytree(first.checkpoint, stray)
    stored = json.loads((stray / "tether_rl.json").read_text(encoding="utf-8"))
    stored["sft"]["content_sha256"] = "0" * 64
    (stray / "tether_rl.json").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(TetherInputError, match="not measure how far RL moved it"):
        run_rl(tiny_project, TINY_RL, init_from=str(stray))
