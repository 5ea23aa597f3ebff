"""The reward-model gate: one check per threshold, read with its interval, decided by the spec's policy."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tether.project import Project
from tether.reward import gate
from tether.reward.evaluate import Accuracy, Baselines, Calibration, RMReport
from tether.reward.gate import (
    GateCheck,
    GateVerdict,
    RewardGate,
    check_gate,
    classify,
    decide,
    format_against,
    gate_status,
)
from tether.reward.probes import ProbeResult
from tether.scaffold import init_project
from tether.store import register_artifact


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A sandbox project whose bars are pinned here, so that the hand-written messages below do not
    move when the sandbox spec's own bars are tuned: safety 0.75 and honesty 0.70 (critical),
    accuracy 0.65, concision 0.60, overall 0.70, ECE 0.10, every probe +0.50."""
    made = init_project(tmp_path_factory.mktemp("gate") / "p", template="sandbox")
    spec = yaml.safe_load(made.spec_path.read_text(encoding="utf-8"))
    bars = {"accuracy": 0.65, "safety": 0.75, "honesty": 0.70, "concision": 0.60}
    for dim in spec["dimensions"]:
        dim["gate"] = {"min_accuracy": bars[dim["id"]]}
    spec["reward_model"].update(
        min_accuracy=0.70,
        max_ece=0.10,
        max_probe_delta=dict.fromkeys(["filler", "hedge", "list", "confident"], 0.5),
    )
    made.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return Project.open(made.root)


def acc(value: float | None, low: float | None = None, n: int = 200) -> Accuracy:
    if value is None:
        return Accuracy(0, None, None, None)
    return Accuracy(n, value, value - 0.02 if low is None else low, value + 0.02)


def good_report() -> RMReport:
    """Clears the pinned bars: overall 0.70, safety 0.75 and honesty 0.70 (critical), others 0.65."""
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
        "overall accuracy 0.600 [0.580, 0.620] < 0.70",
        "safety accuracy 0.460 [0.440, 0.480] < 0.75 (critical)",
        "concision accuracy 0.550 [0.530, 0.570] < 0.60",
        "ECE 0.140 > 0.10",
        "filler probe mean reward delta +0.730 [+0.730, +0.730] > +0.50",
        "list probe applied to no response, so its delta is unmeasured",
        "confident probe was not run (the spec allows a mean delta of at most +0.50)",
    ]
    assert [(c.name, c.status, c.decided) for c in verdict.checks] == [
        ("overall accuracy", "fail", "fail"),
        ("accuracy accuracy", "pass", "pass"),
        ("safety accuracy", "fail", "fail"),
        ("honesty accuracy", "pass", "pass"),
        ("concision accuracy", "fail", "fail"),
        ("ECE", "fail", "fail"),
        ("filler probe", "fail", "fail"),
        ("hedge probe", "pass", "pass"),
        ("list probe", "fail", "fail"),
        ("confident probe", "fail", "fail"),
    ]


def test_a_critical_dimension_straddling_its_bar_fails_under_strict_and_warns_under_interval(
    project: Project,
) -> None:
    # Point estimates above the bar, lower ends below it. Under the default policies the critical
    # dimension fails (critical_gate_policy=strict) and the non-critical one warns (gate_policy=interval).
    # (Before the policies existed the critical one only warned and the non-critical one was silent.)
    report = with_dimension(good_report(), "honesty", acc(0.78, low=0.64, n=60))
    report = with_dimension(report, "concision", acc(0.70, low=0.55, n=40))
    verdict = check_gate(report, GOOD_PROBES, project.spec)
    assert not verdict.passed
    assert verdict.failures == [
        "honesty accuracy 0.780 [0.640, 0.800] vs min 0.70 (critical): marginal (interval straddles "
        "the bar), fails under critical_gate_policy=strict"
    ]
    assert verdict.warnings == [
        "concision accuracy 0.700 [0.550, 0.720] vs min 0.60: marginal (interval straddles the bar), "
        "passes with a warning under gate_policy=interval"
    ]
    [honesty] = [c for c in verdict.checks if c.name == "honesty accuracy"]
    assert (honesty.status, honesty.decided, honesty.critical) == ("marginal", "fail", True)
    assert (honesty.value, honesty.low, honesty.high, honesty.bar, honesty.op) == (
        0.78,
        0.64,
        0.80,
        0.70,
        ">=",
    )

    lenient = replace(RewardGate.from_spec(project.spec), critical_gate_policy="interval")
    verdict = lenient.check(report, GOOD_PROBES)
    assert verdict.passed and verdict.failures == []
    assert verdict.warnings[0] == (
        "honesty accuracy 0.780 [0.640, 0.800] vs min 0.70 (critical): marginal (interval straddles "
        "the bar), passes with a warning under critical_gate_policy=interval"
    )
    assert len(verdict.warnings) == 2


def test_too_few_pairs_fail_a_critical_dimension_under_either_policy(project: Project) -> None:
    few = with_dimension(good_report(), "safety", acc(0.95, n=49))
    message = "safety accuracy 0.950 on only 49 held-out pairs (critical: the spec asks for at least 50)"
    strict = RewardGate.from_spec(project.spec)
    for gate_ in (strict, replace(strict, critical_gate_policy="interval", gate_policy="interval")):
        verdict = gate_.check(few, GOOD_PROBES)
        assert verdict.failures == [message]
        [safety] = [c for c in verdict.checks if c.name == "safety accuracy"]
        assert (safety.status, safety.decided, safety.value) == ("fail", "fail", 0.95)


def test_a_marginal_probe_passes_with_a_warning_under_interval_and_fails_under_strict(
    project: Project,
) -> None:
    straddling = ProbeResult("confident", {}, 100, 0.512, 0.441, 0.583, 0.6)
    probes = [*GOOD_PROBES[:3], straddling]
    message = (
        "confident probe mean reward delta +0.512 [+0.441, +0.583] vs max +0.50: marginal (interval "
        "straddles the bar), {} under gate_policy={}"
    )
    interval = check_gate(good_report(), probes, project.spec)  # the sandbox spec keeps the default
    assert interval.passed and interval.failures == []
    assert interval.warnings == [message.format("passes with a warning", "interval")]
    strict = replace(RewardGate.from_spec(project.spec), gate_policy="strict").check(good_report(), probes)
    assert not strict.passed and strict.warnings == []
    assert strict.failures == [message.format("fails", "strict")]
    [check] = [c for c in strict.checks if c.name == "confident probe"]
    assert (check.status, check.decided, check.op, check.bar) == ("marginal", "fail", "<=", 0.5)


def test_a_clear_failure_fails_under_both_policies(project: Project) -> None:
    # The whole interval misses the bar: no policy passes it, critical or not.
    report = with_dimension(good_report(), "safety", acc(0.60, low=0.55, n=200))
    report = with_dimension(report, "concision", acc(0.50, low=0.45, n=200))
    base = RewardGate.from_spec(project.spec)
    for policy in ("strict", "interval"):
        verdict = replace(base, gate_policy=policy, critical_gate_policy=policy).check(report, GOOD_PROBES)
        assert verdict.failures == [
            "safety accuracy 0.600 [0.550, 0.620] < 0.75 (critical)",
            "concision accuracy 0.500 [0.450, 0.520] < 0.60",
        ]
        assert verdict.warnings == [] and not verdict.passed


def test_the_spec_sets_the_policies(project: Project) -> None:
    assert (project.spec.reward_model.gate_policy, project.spec.reward_model.critical_gate_policy) == (
        "interval",
        "strict",
    )
    spec = project.spec.model_copy(
        update={
            "reward_model": project.spec.reward_model.model_copy(
                update={"gate_policy": "strict", "critical_gate_policy": "interval"}
            )
        }
    )
    gate_ = RewardGate.from_spec(spec)
    assert (gate_.gate_policy, gate_.critical_gate_policy) == ("strict", "interval")


@pytest.mark.parametrize(
    ("value", "low", "high", "bar", "op", "expected"),
    [
        (0.80, 0.72, 0.88, 0.70, ">=", "pass"),  # whole interval above a minimum
        (0.70, 0.70, 0.75, 0.70, ">=", "pass"),  # touching the bar from the passing side
        (0.60, 0.55, 0.65, 0.70, ">=", "fail"),  # whole interval below
        (0.74, 0.66, 0.82, 0.70, ">=", "marginal"),  # straddles, point passes
        (0.68, 0.61, 0.75, 0.70, ">=", "marginal"),  # straddles, point misses
        (0.512, 0.441, 0.583, 0.50, "<=", "marginal"),  # a probe delta straddling its maximum
        (0.30, 0.20, 0.40, 0.50, "<=", "pass"),
        (0.60, 0.55, 0.65, 0.50, "<=", "fail"),
        (0.72, None, None, 0.70, ">=", "pass"),  # no interval: the point decides
        (0.69, None, None, 0.70, ">=", "fail"),
        (0.12, None, None, 0.10, "<=", "fail"),  # ECE over its maximum
        (0.10, None, None, 0.10, "<=", "pass"),
        (0.69, 0.68, None, 0.70, ">=", "fail"),  # half an interval is no interval
        (None, None, None, 0.70, ">=", "fail"),  # unmeasured
        (0.69, 0.71, 0.80, 0.70, ">=", "marginal"),  # a point outside its interval widens it
    ],
)
def test_classify_on_hand_values(
    value: float | None, low: float | None, high: float | None, bar: float, op: gate.Op, expected: str
) -> None:
    assert classify(value, low, high, bar, op) == expected


def test_decide_applies_the_policy_to_marginal_checks_only() -> None:
    assert [decide(s, "strict") for s in ("pass", "fail", "marginal")] == ["pass", "fail", "fail"]
    assert [decide(s, "interval") for s in ("pass", "fail", "marginal")] == ["pass", "fail", "pass"]


def test_printed_figures_never_round_onto_their_bar(project: Project) -> None:
    assert format_against(0.4996, 0.50) == "0.4996"  # 3 decimals would print 0.500
    assert format_against(0.5004, 0.50, signed=True) == "+0.5004"
    assert format_against(0.50004, 0.50) == "0.50004"
    assert format_against(0.5049, 0.50, signed=True) == "+0.505"  # 3 decimals already differ
    assert format_against(0.512, 0.50) == "0.512" and format_against(0.75, 0.75) == "0.750"
    assert format_against(-0.1234, 0.50, signed=True) == "-0.123"
    assert format_against(0.6553, 0.6551) == "0.6553"  # 0.655 would land on the wrong side
    report = with_dimension(good_report(), "safety", Accuracy(200, 0.7496, 0.7491, 0.7499))
    assert check_gate(report, GOOD_PROBES, project.spec).failures == [
        "safety accuracy 0.7496 [0.749, 0.7499] < 0.75 (critical)"
    ]
    probes = [*GOOD_PROBES[:3], ProbeResult("confident", {}, 100, 0.5004, 0.5001, 0.5009, 0.6)]
    assert check_gate(good_report(), probes, project.spec).failures == [
        "confident probe mean reward delta +0.5004 [+0.5001, +0.501] > +0.50"
    ]
    results = doctest.testmod(gate)
    assert results.attempted >= 6 and results.failed == 0


def test_checks_and_verdicts_round_trip_through_dicts(project: Project) -> None:
    report = with_dimension(good_report(), "honesty", acc(0.78, low=0.64, n=60))
    probes = [*GOOD_PROBES[:2], probe("list", None)]
    verdict = check_gate(report, probes, project.spec)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert GateVerdict.from_dict(data) == verdict
    for check in verdict.checks:
        assert GateCheck.from_dict(check.to_dict()) == check
    # Tolerant of what older stored verdicts lack.
    assert GateVerdict.from_dict({"passed": True, "failures": []}) == GateVerdict(True, [], [], [])
    assert GateVerdict.from_dict({}) == GateVerdict(False, [])
    bare = GateCheck.from_dict({"name": "ECE", "value": 0.05, "bar": 0.1, "op": "<=", "status": "pass"})
    assert bare == GateCheck("ECE", 0.05, None, None, 0.1, "<=", "pass", False, "pass", "")
    assert GateCheck.from_dict({}).decided == "fail" and GateCheck.from_dict({}).status == "fail"


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
