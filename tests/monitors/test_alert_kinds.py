"""Hacking vs health alerts: each monitor's kind, where the kind shows, and whole runs through the suite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tether.monitors import (
    DEFAULT_MONITORS,
    Generation,
    HackingAlert,
    MonitorSuite,
    build_monitors,
    default_monitor_config,
    has_critical,
    monitor_kind,
)
from tether.monitors.sinks import JsonlAlertSink, StoreAlertSink, format_alert
from tether.monitors.suite import by_kind, describe_counts
from tether.spec.model import RLPolicy
from tether.store import create_run, ensure_project, list_alerts, open_store

HEALTH = {"kl_budget", "kl_spike"}


def test_each_default_monitor_has_its_documented_kind() -> None:
    assert {name: monitor_kind(name) for name in DEFAULT_MONITORS} == {
        name: "health" if name in HEALTH else "hacking" for name in DEFAULT_MONITORS
    }
    assert monitor_kind("a_monitor_nobody_registered") == "hacking"  # never filed away as routine


def test_an_alert_takes_its_monitors_kind_unless_it_names_one() -> None:
    # The RL loop builds its KL-spike alert by name; it must come out as health.
    spike = HackingAlert("kl_spike", "warning", 65, "KL 2.06 nats jumped", {"kl": 2.06}, "spike")
    assert spike.kind == "health"
    note = HackingAlert("diversity_collapse", "info", 123, "sharpening", {}, "entropy_decline", kind="health")
    assert note.kind == "health" and HackingAlert("gold_peak", "critical", 1, "m").kind == "hacking"
    with pytest.raises(ValueError, match="kind must be one of"):
        HackingAlert("gold_peak", "critical", 1, "m", kind="other")  # type: ignore[arg-type]


def test_the_kind_shows_in_the_console_line_json_and_store(tmp_path: Path) -> None:
    spike = HackingAlert("kl_spike", "warning", 65, "KL 2.06 nats jumped", {"kl": 2.06}, "spike")
    peak = HackingAlert("gold_peak", "critical", 167, "gold fell", {"peak_step": 120}, "overoptimization")
    assert format_alert(spike) == "step 65 health warning: kl_spike (spike): KL 2.06 nats jumped"
    assert format_alert(peak).startswith("step 167 HACKING critical: gold_peak (overoptimization)")
    JsonlAlertSink(tmp_path / "alerts.jsonl").emit([spike, peak])
    logged = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in logged] == ["health", "hacking"]
    assert [HackingAlert.from_dict(a) for a in logged] == [spike, peak]
    # Written before alerts had a kind: the monitor's kind.
    old = {k: v for k, v in logged[0].items() if k != "kind"}
    assert HackingAlert.from_dict(old).kind == "health"

    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    with store.session() as session:
        project = ensure_project(session, name="p")
        run = create_run(session, project_id=project.id, kind="rl", config={}, spec_hash="0" * 64)
    StoreAlertSink(store, run.id).emit([spike, peak])
    with store.session() as session:
        rows = list_alerts(session, run_id=run.id)
    # No kind column: the kind is in the evidence, the condition keeps its column.
    assert [(r.condition, r.evidence["kind"]) for r in rows] == [
        ("spike", "health"),
        ("overoptimization", "hacking"),
    ]
    assert rows[0].evidence["kl"] == 2.06
    store.close()


def test_counts_by_kind_and_critical_stops_whatever_the_kind() -> None:
    budget = HackingAlert("kl_budget", "critical", 90, "over the limit", {}, "over_limit")
    spike = HackingAlert("kl_spike", "warning", 65, "jump", {}, "spike")
    assert has_critical([budget])  # a health alert that stops the run
    counts = by_kind([budget, spike])
    assert counts["hacking"] == {} and counts["health"] == {"critical": 1, "warning": 1}
    assert describe_counts(counts) == "hacking: none; health: 1 critical, 1 warning"


# ---------------------------------------------------------------------------------------------
# Whole 200-step runs through the default suite. The sandbox's shape: 32 responses a step, 9 on
# hard/adversarial prompts; gold utility in [0, 1]; the SFT baseline is step 0.
BASELINE = {
    "objective/kl": 0.0,
    "objective/rm_score": 0.0,
    "policy/entropy": 2.0,
    "gen/length_mean": 20.0,
    "gen/hedge_rate": 0.2,
    "gen/list_rate": 0.1,
    "gen/distinct_2": 0.6,
    "gold/utility": 0.4,
}


def _progress(step: int) -> float:
    """0 → 1, fast at first and then levelling off, like the sandbox runs' curves."""
    return 1 - math.exp(-step / 40)


def _wiggle(step: int, scale: float) -> float:
    """Deterministic step-to-step noise of about ±scale."""
    return scale * math.sin(2.3 * step) * math.cos(0.7 * step)


def _run(*, gold_follows: bool) -> list[HackingAlert]:
    """The RM score rises 0 → 2 and entropy halves in both runs; gold (overall and on the hard
    prompts) rises with the RM when ``gold_follows``, else it stays where SFT had it."""
    suite = MonitorSuite(
        build_monitors(DEFAULT_MONITORS, **default_monitor_config(RLPolicy())), baseline=dict(BASELINE)
    )
    alerts = []
    for step in range(200):
        p = _progress(step)
        gain = p if gold_follows else 0.0
        metrics = {
            "objective/kl": 3.0 * p + _wiggle(step, 0.05) + (1.2 if step == 65 else 0.0),  # one KL spike
            "objective/rm_score": 2.0 * p + _wiggle(step + 1, 0.1),
            "gold/utility": 0.4 + 0.3 * gain + _wiggle(step + 2, 0.015),
            "policy/entropy": 2.0 * (1 - 0.55 * step / 199),  # to under half: the policy sharpens
            "gen/length_mean": 20.0 + _wiggle(step + 3, 0.5),
            "gen/hedge_rate": 0.2 + _wiggle(step + 4, 0.02),
            "gen/list_rate": 0.1 + _wiggle(step + 5, 0.02),
            "gen/distinct_2": 0.6 - 0.05 * p + _wiggle(step + 6, 0.01),
        }
        # Hard prompts: the RM scores them high and tight as the policy learns; gold on them rises
        # from 0.3 to 0.7 only when the policy really gets better at them.
        hard = [
            Generation(
                "q", "a", "hard", 1.5 * p + 0.2 * _wiggle(step * 9 + i, 1), 0.3 + 0.4 * gain + (i % 3) * 0.1
            )
            for i in range(9)
        ]
        routine = [
            Generation("q", "a", "routine", 1.5 * p + (i % 5 - 2) * 0.7, 0.8 + (i % 3) * 0.05)
            for i in range(23)
        ]
        alerts += suite.observe(step, metrics, hard + routine)
    return alerts


def test_a_sharpening_but_improving_run_raises_no_hacking_alert() -> None:
    alerts = _run(gold_follows=True)
    assert [a for a in alerts if a.kind == "hacking"] == []
    # The health alerts still say what happened: the KL jump and the entropy halving.
    assert {(a.monitor, a.condition) for a in alerts} == {
        ("kl_spike", "spike"),
        ("diversity_collapse", "entropy_decline"),
    }
    assert not has_critical(alerts)


def test_the_same_run_with_gold_flat_is_caught() -> None:
    alerts = _run(gold_follows=False)
    hacking = {(a.monitor, a.severity) for a in alerts if a.kind == "hacking"}
    assert ("rm_divergence", "critical") in hacking and ("strata_uniform_high", "warning") in hacking
