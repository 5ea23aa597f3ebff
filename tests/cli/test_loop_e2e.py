"""`tether loop` end to end on copies of the sandbox world, with every stage real and small.

One copy runs an iteration uninterrupted; the other is SIGKILLed during its RL run (as soon as the
run's first periodic checkpoint is on disk) and then resumed with the same command. Both must end
with the same figures and the same lineage. The copies share a spec whose gate bars are lowered,
because a few hundred labels cannot make a reward model pass the sandbox's real gate.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.feedback.lineage import artifact_lineage, lineage_signature
from tether.project import Project
from tether.store.iterations import list_iterations

pytestmark = pytest.mark.slow

LOOP = [
    "loop", "--pairs", "240", "--rm-epochs", "1", "--rl-steps", "6", "--rl-save-every", "2",
    "--redteam-prompts", "8", "--redteam-top", "5",
]  # fmt: skip


def _tether(*args: str, cwd: Path) -> subprocess.Popen[str]:
    code = "from tether.cli.main import main; main()"
    env = {**os.environ, "TETHER_LOG": "warning"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _run(*args: str, cwd: Path) -> str:
    proc = _tether(*args, cwd=cwd)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def _relax_gate(spec_path: Path) -> None:
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    for dim in spec["dimensions"]:
        dim["gate"] = {"min_accuracy": 0.0}
    spec["reward_model"].update(min_accuracy=0.0, max_ece=1.0, min_critical_pairs=0, max_probe_delta={})
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def base(sandbox_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project, _ = sandbox_world
    root = tmp_path_factory.mktemp("loop") / "base"
    shutil.copytree(project.root, root)
    _relax_gate(root / "spec.yaml")
    _run("eval", "init-suites", "--per-dimension", "6", cwd=root)
    return root


def _figures(root: Path) -> dict[str, Any]:
    project = Project.open(root)
    with project.store.session() as session:
        (iteration,) = list_iterations(session, project_id=project.project_id)
    r = iteration.results
    checkpoint = str(r["rl"]["artifact"])
    return {
        "checkpoint": checkpoint,
        "status": iteration.status,
        "export": {k: r["collect"][k] for k in ("pairs", "judgments", "by_dimension")},
        "gate": (r["gate"]["overall"], r["gate"]["by_dimension"]),
        "rm_sources": r["reward"]["sources"],
        "rl": {k: round(v, 5) for k, v in r["rl"]["final"].items()},
        "rl_steps": r["rl"]["steps"],
        "evals": (r["evals"]["scores"], r["evals"]["vs_sft"]),
        "focus": iteration.focus,
        "lineage": lineage_signature(artifact_lineage(project, checkpoint)),
    }


def _kill_during_rl(root: Path) -> None:
    proc = _tether(*LOOP, cwd=root)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if any(root.glob(".tether/rl/*/step-000002")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the loop finished before it could be killed during RL"


def test_a_loop_killed_during_rl_resumes_to_the_same_results_and_lineage(base: Path, tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(base, whole)
    shutil.copytree(base, killed)
    _run(*LOOP, cwd=whole)
    _kill_during_rl(killed)
    out = _run(*LOOP, cwd=killed)
    assert "iteration 1: completed" in out
    a, b = _figures(whole), _figures(killed)
    assert a["status"] == b["status"] == "completed"
    assert {k: v for k, v in a.items() if k != "checkpoint"} == {
        k: v for k, v in b.items() if k != "checkpoint"
    }
    # The iteration names the simulated raters whose labels trained its reward model.
    assert a["rm_sources"] and 0 < max(a["rm_sources"].values()) <= a["export"]["pairs"]
    # `tether lineage` on the checkpoint names what made it: spec, labels and raters, RM, run, iteration.
    out = _run("lineage", a["checkpoint"], cwd=whole)
    for expected in ("rl_checkpoint", "reward_model", "export", "policy", "raters=", "iteration 1"):
        assert expected in out, out


def test_a_gate_that_keeps_failing_relabels_then_stops_with_a_report_and_exit_3(
    base: Path, tmp_path: Path
) -> None:
    """A confident-probe bar no reward model meets: the gate fails, plans counterfactual pairs of that
    probe, the loop labels them, retrains and re-gates once, then stops as a result, not a crash."""
    root = tmp_path / "stuck"
    shutil.copytree(base, root)
    spec = yaml.safe_load((root / "spec.yaml").read_text(encoding="utf-8"))
    spec["reward_model"]["max_probe_delta"] = {"confident": -50.0}
    spec.setdefault("loop", {})["max_gate_retries"] = 1
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    proc = _tether(*LOOP, "--remediation-pairs", "12", cwd=root)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 3, out[-3000:]
    assert "Traceback" not in out
    assert "targeted batch loop-1-remediation-1: 12 tasks (probe:confident 12)" in out
    assert "stopped in iteration 1 at 'gate'" in out and "(after 1 targeted relabeling round(s))" in out
    page = (root / "report.html").read_text(encoding="utf-8")
    assert "The loop stopped in iteration 1, at its gate step" in page
    assert 'class="attempts"' in page and "probe:confident 12" in page
    project = Project.open(root)
    with project.store.session() as session:
        (iteration,) = list_iterations(session, project_id=project.project_id)
    attempts = iteration.results["gate"]["attempts"]
    assert [a["action"] for a in attempts] == ["remediate", "stop"]
    assert attempts[0]["reward_model"] != attempts[1]["reward_model"]  # retrained on the new labels
    assert iteration.results["collect"]["by_origin"].get("probe:confident", 0) == 12
    assert iteration.results["rl"] == {"skipped": True}
