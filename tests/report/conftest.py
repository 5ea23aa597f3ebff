"""A sandbox project with two loop iterations written through the store, as `tether loop` writes them.

Iteration 1 ran every step (RL with a metrics.jsonl and alerts in the results and the store), its
labeling figures under one "label" key. Iteration 2 runs under a changed spec with labeling split
into "plan" and "collect", reliability bins under rm_eval.json's own names, and a failing gate that
made the loop skip RL and the evals. Rater names, reasons, alert messages and diagnoses carry a
markup payload, to prove the report escapes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tether.project import Project
from tether.scaffold import init_project
from tether.store import add_alerts, create_run, record_spec_version
from tether.store.iterations import finish_iteration, record_loop_note, record_step, start_iteration

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
KL_BUDGET = 5.0
STEPS = 30
STOP_REASON = "the reward model failed its gate: safety accuracy 0.61 < 0.75"


@dataclass(frozen=True)
class LoopProject:
    project: Project
    run_id: str
    metrics: Path
    second_spec_hash: str


def metric_row(step: int) -> dict[str, float]:
    """KL climbs 0.1 per step to 3.0; RM score and gold utility rise with it."""
    row = {
        "step": step,
        "objective/rm_score": 0.05 * step,
        "objective/kl": 0.1 * step,
        "objective/kl_coef": 0.05,
        "gen/length_mean": 40.0 + step,
        "gen/hedge_rate": 0.2,
        "gen/list_rate": 0.1,
        "policy/entropy": 1.5,
        "gold/utility": 0.4 + 0.01 * step,
        "gold/accuracy": 0.5,
        "gold/parsed": 1.0,
    }
    if step % 10 == 0:
        row["eval/score"] = 0.6
    return row


def label_results(*, malicious: bool = True) -> dict[str, Any]:
    bad_name = f"mallory{PAYLOAD}" if malicious else "mallory"
    return {
        "batch": "batch-0001",
        "tasks": 120,
        "judgments": 360,
        "pairs": 300,
        "by_dimension": {"accuracy": 150, "safety": 120, "honesty": 90},
        "by_stratum": {"routine": 240, "hard": 120},
        "hard_share": 1 / 3,
        "by_origin": {"plan": 100, "redteam": 20, "production": 0},
        "agreement": {"pool": 0.78, "alpha": 0.61},
        "raters": [
            {"name": "ana", "status": "active", "expert_agreement": 0.9, "peer_agreement": 0.8,
             "judgments": 200, "excluded": False, "reason": None},
            {"name": bad_name, "status": "excluded", "expert_agreement": 0.41, "peer_agreement": None,
             "judgments": 160, "excluded": True, "reason": f"agreement with experts 0.41 < 0.70 {PAYLOAD}"},
        ],
        "export": "export-1",
    }  # fmt: skip


def gate_results(*, passed: bool) -> dict[str, Any]:
    def acc(value: float) -> dict[str, Any]:
        return {"accuracy": value, "low": value - 0.05, "high": value + 0.05, "n": 100}

    return {
        "report": ".tether/rm_eval/rm-1/rm_eval.json",
        "passed": passed,
        "failures": [] if passed else ["safety accuracy 0.61 < 0.75"],
        "warnings": ["honesty has 90 held-out pairs"],
        "overall": acc(0.74),
        "by_dimension": {"accuracy": acc(0.8), "safety": acc(0.78 if passed else 0.61), "honesty": acc(0.7)},
        "gold_by_dimension": None,
        "ece": 0.04,
        "brier": 0.2,
        "reliability": [
            {"bin_low": 0.5, "bin_high": 0.6, "mean_predicted": 0.55, "observed": 0.5, "n": 40},
            {"bin_low": 0.9, "bin_high": 1.0, "mean_predicted": 0.93, "observed": 0.95, "n": 60},
        ],
        "probes": [{"name": "filler", "mean_delta": 0.12, "low": 0.05, "high": 0.2, "n": 50}],
    }


def gate_attempts() -> list[dict[str, Any]]:
    """Two gate attempts: a failure that planned a targeted batch, then the failure that stopped."""
    probe = {"name": "confident", "mean_delta": 0.91, "low": 0.8, "high": 1.02, "n": 300}
    first = {
        "attempt": 1, "retry": 0, "reward_model": "rm-2a", "passed": False,
        "failures": [f"confident probe {PAYLOAD}"], "overall": {"accuracy": 0.71, "n": 400},
        "probes": [probe], "action": "remediate",
        "remediation": {"batch_id": 9, "batch": "loop-2-remediation-1", "tasks": 400,
                        "by_target": {"probe:confident": 400}},
    }  # fmt: skip
    second = {
        "attempt": 2, "retry": 1, "reward_model": "rm-2", "passed": False,
        "failures": ["safety accuracy 0.61 < 0.75"], "overall": {"accuracy": 0.72, "n": 440},
        "probes": [{**probe, "mean_delta": 0.41, "low": 0.3, "high": 0.52}], "action": "stop",
        "stop_reason": STOP_REASON,
    }  # fmt: skip
    return [first, second]


def split_label_results() -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan and collect steps' figures: the same labeling figures, split as the loop writes them."""
    label = label_results(malicious=False)
    plan = {"batch": "loop-2", "batch_id": 2, "tasks": 80, "overlapped": 8, "hard_share": 0.3, "policy": "p"}
    collect = {k: v for k, v in label.items() if k not in ("batch", "tasks")}
    collect |= {"batch": "loop-2", "tasks": 80, "excluded_now": ["mallory"], "train_pairs": 270}
    return plan, collect


def rm_eval_bins(gate: dict[str, Any]) -> dict[str, Any]:
    """The gate figures with reliability bins under rm_eval.json's names."""
    names = {"bin_low": "lower", "bin_high": "upper", "mean_predicted": "mean_probability", "n": "count"}
    bins = [{names.get(k, k): v for k, v in b.items()} for b in gate["reliability"]]
    return {**gate, "reliability": bins}


def rl_results(run_id: str, metrics: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "artifact": "policy-1",
        "checkpoint": ".tether/runs/rl/checkpoint",
        "metrics": metrics,
        "status": "completed",
        "reason_stopped": None,
        "kl_budget": KL_BUDGET,
        "steps": STEPS,
        "final": {"objective/kl": 2.95, "gold/utility": 0.7, "objective/rm_score": 1.5},
        "alerts": [
            {"monitor": "kl_spike", "severity": "warning", "step": 12, "condition": "spike",
             "message": f"KL jumped on prompt {PAYLOAD}"},
        ],
    }  # fmt: skip


def eval_results() -> dict[str, Any]:
    def score(value: float) -> dict[str, Any]:
        return {"score": value, "low": value - 0.1, "high": value + 0.1, "n": 50}

    return {
        "artifact": "eval-1",
        "scores": {"accuracy": score(0.8), "safety": score(0.6)},
        "sft_scores": {"accuracy": score(0.7), "safety": score(0.75)},
        "vs_sft": {
            "accuracy": {"delta": 0.1, "low": 0.02, "high": 0.18, "regression": False, "critical": False},
            "safety": {"delta": -0.15, "low": -0.25, "high": -0.05, "regression": True, "critical": True},
        },
        "vs_previous": None,
        "gold_utility": 0.7,
        "sft_gold_utility": 0.55,
    }


def write_metrics(path: Path) -> None:
    """Thirty steps, then the half-written line a killed logger leaves."""
    lines = [json.dumps(metric_row(step)) for step in range(1, STEPS + 1)]
    path.write_text("\n".join(lines) + '\n{"step": 31, "objective/k', encoding="utf-8")


def build_loop_project(root: Path) -> LoopProject:
    project = init_project(root, template="sandbox")
    metrics = project.path("runs", "rl-test", "metrics.jsonl")
    write_metrics(metrics)
    content = project.spec.model_dump(mode="json")
    changed = {**content, "version": "1.1", "rl": {**content["rl"], "kl_budget_nats": 4.0}}
    with project.store.session() as session:
        pid = project.project_id
        run = create_run(session, project_id=pid, kind="rl", config={}, spec_hash=project.spec_hash)
        add_alerts(
            session,
            run_id=run.id,
            alerts=[
                {**rl_results(run.id, "")["alerts"][0], "evidence": {}},
                {"monitor": "length_drift", "severity": "critical", "step": 25, "condition": "drift",
                 "message": "length up 60% against SFT", "evidence": {"ratio": 1.6}},
            ],
        )  # fmt: skip
        first = start_iteration(session, project_id=pid, spec_hash=project.spec_hash)
        steps: dict[str, dict[str, Any]] = {
            "label": label_results(),
            "reward": {
                "artifact": "rm-1",
                "pairs": 300,
                "seconds": 12.5,
                "sources": {"carol": 180, "import:hh-" + PAYLOAD: 120},
            },
            "gate": gate_results(passed=True),
            "rl": rl_results(run.id, project.relative(metrics)),
            "evals": eval_results(),
            "diagnose": {
                "summary": f"safety regressed {PAYLOAD}",
                "focus": {"dimensions": ["safety"], "strata": ["hard"], "findings": 3,
                          "alerts": ["length_drift"], "reasons": ["safety regressed against SFT"]},
            },
        }  # fmt: skip
        for name, results in steps.items():
            record_step(session, iteration_id=first.id, step=name, results=results)
        finish_iteration(
            session,
            iteration_id=first.id,
            status="completed",
            diagnosis=f"safety regressed {PAYLOAD}",
            focus=steps["diagnose"]["focus"],
        )
        second_hash = "f" * 64
        record_spec_version(
            session,
            project_id=pid,
            spec_hash=second_hash,
            name=changed["name"],
            version="1.1",
            content=changed,
        )
        second = start_iteration(session, project_id=pid, spec_hash=second_hash)
        plan, collect = split_label_results()
        later: dict[str, dict[str, Any]] = {
            "plan": plan,
            "collect": collect,
            "reward": {"artifact": "rm-2"},
            "gate": {**rm_eval_bins(gate_results(passed=False)), "attempts": gate_attempts()},
            "rl": {"skipped": True},
            "evals": {"skipped": True},
            "diagnose": {"summary": "the gate failed on safety", "focus": {"dimensions": ["safety"]}},
        }
        for name, results in later.items():
            record_step(session, iteration_id=second.id, step=name, results=results)
        record_loop_note(session, iteration_id=second.id, note={"stopped_at": "gate", "reason": STOP_REASON})
        finish_iteration(session, iteration_id=second.id, status="stopped", reason_stopped=STOP_REASON)
    return LoopProject(project, run.id, metrics, second_hash)


@pytest.fixture
def loop_project(tmp_path: Path) -> LoopProject:
    return build_loop_project(tmp_path / "p")
