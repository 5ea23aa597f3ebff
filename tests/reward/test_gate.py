"""The reward-model gate: every failure as a message, critical dimensions held to their interval."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tether.project import Project
from tether.reward.evaluate import Accuracy, Baselines, Calibration, RMReport
from tether.reward.gate import RewardGate, check_gate, gate_status
from tether.reward.probes import ProbeResult
from tether.scaffold import init_project
from tether.store import register_artifact


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return init_project(tmp_path_factory.mktemp("gate") / "p", template="sandbox")


def acc(value: float | None, low: float | None = None, n: int = 200) -> Accuracy:
    if value is None:
        return Accuracy(0, None, None, None)
    return Accuracy(n, value, value - 0.02 if low is None else low, value + 0.02)


def good_report() -> RMReport:
    """Clears the sandbox spec: overall 0.70, safety 0.75 and honesty 0.70 (critical), others 0.65."""
    return RMReport(
        spec_hash="h",
        n_pairs=800,
        ties_skipped=0,
        overall=acc(0.85),
        by_dimension={"accuracy": acc(0.8), "safety": acc(0.9), "honesty": acc(0.85), "concision": acc(0.8)},
        by_stratum={},
        calibration=Calibration(ece=0.05, brier=0.2, n_bins=10, bins=[]),
        baselines=Baselines(0.5, 0.5, "seeded"),
        length_correlation=0.1,
        mean_reward=0.0,
        failures=[],
    )


def probe(name: str, delta: float | None) -> ProbeResult:
    return ProbeResult(name, {}, 0 if delta is None else 100, delta, delta, delta, 0.5)


GOOD_PROBES = [probe(name, 0.1) for name in ("filler", "hedge", "list", "confident")]


def with_dimension(report: RMReport, dim: str, value: Accuracy) -> RMReport:
    return replace(report, by_dimension={**report.by_dimension, dim: value})


def test_a_report_that_clears_every_bar_passes(project: Project) -> None:
    verdict = check_gate(good_report(), GOOD_PROBES, project.spec)
    assert verdict.passed and verdict.failures == []


def test_each_threshold_reports_its_own_message(project: Project) -> None:
    report = replace(
        with_dimension(good_report(), "safety", acc(0.46)),
        overall=acc(0.60),
        calibration=Calibration(ece=0.14, brier=0.3, n_bins=10, bins=[]),
    )
    report = with_dimension(report, "concision", acc(0.55))
    probes = [probe("filler", 0.73), probe("hedge", 0.1), probe("list", None)]
    verdict = check_gate(report, probes, project.spec)
    assert not verdict.passed
    assert verdict.failures == [
        "overall accuracy 0.60 < 0.70",
        "safety accuracy 0.46 < 0.75 (critical)",
        "concision accuracy 0.55 < 0.60",
        "ECE 0.14 > 0.10",
        "filler probe mean reward delta +0.73 > +0.50",
        "list probe applied to no response, so its delta is unmeasured",
        "confident probe was not run (the spec allows a mean delta of at most +0.50)",
    ]


def test_critical_dimensions_need_enough_pairs_and_warn_on_a_wide_interval(project: Project) -> None:
    # Point estimates above the bar, lower ends below it: a warning for the critical dimension only.
    report = with_dimension(good_report(), "honesty", acc(0.78, low=0.64, n=60))
    report = with_dimension(report, "concision", acc(0.70, low=0.55, n=40))
    verdict = check_gate(report, GOOD_PROBES, project.spec)
    assert verdict.passed and verdict.failures == []
    assert verdict.warnings == [
        "honesty accuracy 0.78 clears 0.70, but its 95% interval reaches 0.64 (n=60); "
        "more held-out honesty pairs would settle it (critical)"
    ]
    # Too few held-out pairs for a critical dimension: it cannot pass, whatever its accuracy.
    few = with_dimension(good_report(), "safety", acc(0.95, n=49))
    assert check_gate(few, GOOD_PROBES, project.spec).failures == [
        "safety accuracy 0.95 on only 49 held-out pairs (critical: the spec asks for at least 50)"
    ]


def test_a_dimension_without_held_out_pairs_fails(project: Project) -> None:
    report = with_dimension(good_report(), "safety", acc(None))
    report = replace(report, by_dimension={k: v for k, v in report.by_dimension.items() if k != "concision"})
    verdict = RewardGate.from_spec(project.spec).check(report, GOOD_PROBES)
    assert verdict.failures == [
        "safety accuracy unmeasured: no held-out pairs (critical)",
        "concision accuracy unmeasured: no held-out pairs",
    ]


def test_gate_status_reads_the_latest_gated_evaluation(project: Project, tmp_path: Path) -> None:
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "model.safetensors").write_bytes(b"x")
    with project.store.session() as session:
        rm = register_artifact(
            session,
            project_id=project.project_id,
            kind="reward_model",
            path=str(tmp_path / "rm"),
            content_hash="rm",
            spec_hash=project.spec_hash,
        )
    status = gate_status(project, rm.id)
    assert not status.passed and status.report_artifact_id is None
    assert status.failures == [
        f"reward model {rm.id} has no gated evaluation; run `tether rm eval {rm.id} --gate`"
    ]

    def record(content: str, meta: dict[str, object], spec_hash: str = project.spec_hash) -> str:
        with project.store.session() as session:
            return register_artifact(
                session,
                project_id=project.project_id,
                kind="rm_eval",
                path=f"{content}.json",
                content_hash=content,
                spec_hash=spec_hash,
                parents=[rm.id],
                meta={"reward_model": rm.id, **meta},
            ).id

    record("ungated", {"gated": False})
    assert gate_status(project, rm.id).report_artifact_id is None
    failed = record("failed", {"gated": True, "gate": {"passed": False, "failures": ["ECE 0.14 > 0.10"]}})
    assert gate_status(project, rm.id) == type(status)(False, failed, ["ECE 0.14 > 0.10"])
    passed = record("passed", {"gated": True, "gate": {"passed": True, "failures": []}})
    assert gate_status(project, rm.id) == type(status)(True, passed, [])
    stale = record("stale", {"gated": True, "gate": {"passed": True, "failures": []}}, spec_hash="0" * 64)
    status = gate_status(project, rm.id)
    assert not status.passed and status.report_artifact_id == stale
    assert "gated under spec 000000000000; the spec changed since" in status.failures[0]
