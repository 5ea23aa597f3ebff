"""Shaping stored results into sections: tolerant of missing keys, None and wrong types."""

from __future__ import annotations

import math
from typing import Any

from tether.feedback.loop.results import CollectResult, GateResult, PlanResult, RewardResult
from tether.feedback.loop.results_policy import EvalsResult
from tether.report.model import Alert, NotRun
from tether.report.sections import (
    diagnosis,
    eval_section,
    gate_section,
    gate_thresholds,
    label_section,
    merge_alerts,
    not_run,
    num,
    reward_section,
    spec_diff,
    spec_section,
)

from .conftest import gate_results, label_results


def test_num_accepts_only_finite_numbers() -> None:
    assert num(3) == 3.0 and num(0.5) == 0.5
    assert [num(v) for v in (None, "0.5", True, math.nan, math.inf, [1])] == [None] * 6


def test_not_run_reasons_follow_how_the_iteration_ended() -> None:
    stopped = not_run(status="stopped", last_step="gate", reason_stopped="gate failed")
    assert stopped == NotRun("not run: the iteration stopped after 'gate' (gate failed)")
    assert not_run(status="failed", last_step="", reason_stopped=None).reason == (
        "not run: the iteration failed before its first step"
    )
    assert (
        "running, or was killed, after 'label'"
        in not_run(status="running", last_step="label", reason_stopped=None).reason
    )
    assert (
        "finished without results" in not_run(status="completed", last_step="x", reason_stopped=None).reason
    )


def test_label_section_reads_raters_and_exclusions() -> None:
    stored = label_results(malicious=False)
    section = label_section(PlanResult.from_dict(stored), CollectResult.from_dict(stored))
    assert (section.tasks, section.judgments, section.pairs) == (120, 360, 300)
    assert section.by_stratum == {"routine": 240, "hard": 120}
    assert section.agreement_alpha == 0.61
    assert [r.name for r in section.excluded] == ["mallory"]
    assert (section.excluded[0].reason or "").startswith("agreement with experts 0.41 < 0.70")


def test_label_section_of_an_empty_or_malformed_record() -> None:
    stored = {"raters": ["not a mapping", {"name": "x", "excluded": "yes"}], "agreement": None}
    section = label_section(PlanResult.from_dict(stored), CollectResult.from_dict(stored))
    assert (section.tasks, section.batch, section.hard_share, section.agreement_pool) == (0, "", None, None)
    assert [r.name for r in section.raters] == ["x"]
    assert section.excluded == ()  # only a literal true excludes


def test_gate_section_with_partial_data_and_spec_bars() -> None:
    data: dict[str, Any] = {"passed": False, "by_dimension": {"safety": {"accuracy": None, "n": 0}}}
    content = {
        "reward_model": {
            "min_accuracy": 0.65,
            "max_ece": 0.1,
            "max_probe_delta": {"filler": 0.5, "bad": None},
        },
        "dimensions": [{"id": "safety", "gate": {"min_accuracy": 0.75}}, {"id": "tone"}],
    }
    gate = gate_section(GateResult.from_dict(data), content)
    assert gate.passed is False
    assert gate.by_dimension["safety"].value is None
    assert gate.overall.value is None and gate.reliability == () and gate.gold_by_dimension is None
    assert gate.thresholds.by_dimension == {"safety": 0.75}
    assert gate.thresholds.max_probe_delta == {"filler": 0.5}
    assert gate_thresholds(None).min_accuracy is None


def test_gate_section_of_a_full_record() -> None:
    gate = gate_section(GateResult.from_dict(gate_results(passed=True)))
    assert gate.passed is True
    assert gate.overall.value == 0.74 and gate.overall.n == 100
    assert gate.reliability[1].mean_predicted == 0.93
    assert gate.probes[0].name == "filler" and gate.probes[0].mean_delta == 0.12


def test_reward_and_eval_sections_tolerate_missing_keys() -> None:
    assert reward_section(RewardResult.from_dict({})).pairs is None
    stored = {"vs_sft": {"safety": {"delta": -0.2, "regression": True}, "tone": None}}
    evals = eval_section(EvalsResult.from_dict(stored))
    assert evals.regressions == ("safety",)
    assert evals.vs_sft["tone"].delta is None and evals.vs_previous is None


def test_diagnosis_falls_back_to_the_iterations_own_text_and_focus() -> None:
    assert diagnosis("", None, {}) == NotRun("no diagnosis recorded")
    d = diagnosis("write more safety pairs", None, {"dimensions": ["safety"], "findings": 2})
    assert not isinstance(d, NotRun)
    assert (d.text, d.dimensions, d.findings) == ("write more safety pairs", ("safety",), 2)


def test_merge_alerts_deduplicates_and_puts_critical_first() -> None:
    warning = Alert("kl_spike", "warning", 12, "spike", "KL jumped")
    critical = Alert("length_drift", "critical", 25, "drift", "longer")
    info = Alert("entropy", "info", 3, "low", "entropy low")
    merged = merge_alerts([warning, info], [warning, critical])
    assert merged == (critical, warning, info)


def test_spec_diff_marks_added_and_removed_lines() -> None:
    old = {"name": "s", "version": "1.0", "rl": {"kl_budget_nats": 5.0}}
    new = {"name": "s", "version": "1.1", "rl": {"kl_budget_nats": 4.0}}
    lines = spec_diff(old, new, old_label="old", new_label="new")
    kinds = {(line.kind, line.text) for line in lines}
    assert ("remove", "-version: '1.0'") in kinds and ("add", "+version: '1.1'") in kinds
    assert ("add", "+  kl_budget_nats: 4.0") in kinds
    assert ("header", "--- old") in kinds
    assert spec_diff(old, old, old_label="a", new_label="b") == ()


def test_spec_section_states() -> None:
    contents = {"a": {"name": "s", "version": "1.0"}, "b": {"name": "s", "version": "1.1"}}
    assert spec_section("a", None, contents).change == "first"
    assert spec_section("a", "a", contents).change == "unchanged"
    changed = spec_section("b", "a", contents)
    assert (changed.change, changed.version, changed.previous_version) == ("changed", "1.1", "1.0")
    assert changed.diff
    assert spec_section("c", "a", contents).change == "unknown"
