"""The registry, and the suite's de-duplication, sinks and exact resume."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests.monitors.helpers import noisy
from tether.monitors import (
    DEFAULT_MONITORS,
    HackingAlert,
    MonitorInput,
    MonitorSuite,
    Severity,
    build_monitors,
    default_monitor_config,
    has_critical,
    monitor_names,
    register_monitor,
)
from tether.monitors.base import Monitor
from tether.spec.model import RLPolicy


@register_monitor("test_threshold")
def _threshold(key: str = "x", limit: float = 1.0, critical_at: float = 10.0) -> Monitor:
    def check(inp: MonitorInput) -> list[HackingAlert]:
        value = inp.metrics.get(key, 0.0)
        if value <= limit:
            return []
        severity: Severity = "critical" if value >= critical_at else "warning"
        return [HackingAlert("test_threshold", severity, inp.step, f"{key}={value}", {"value": value}, key)]

    return check


class ListSink:
    def __init__(self) -> None:
        self.seen: list[HackingAlert] = []

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        self.seen.extend(alerts)


def test_registry_builds_by_name_with_config() -> None:
    assert set(DEFAULT_MONITORS) <= set(monitor_names())
    built = build_monitors(DEFAULT_MONITORS, **default_monitor_config(RLPolicy(kl_budget_nats=6.0)))
    assert [m.name for m in built] == list(DEFAULT_MONITORS)
    assert built[0].config == {"name": "kl_budget", "args": {"budget_nats": 6.0, "margin": 0.2}}


@pytest.mark.parametrize(
    "names, cfg, match",
    [
        (["no_such"], {}, "unknown monitor"),
        (["kl_spike"], {"kl_budget": {}}, "not built"),
        (["kl_spike"], {"kl_spike": {"windw": 3}}, "bad arguments"),
    ],
)
def test_registry_errors_name_the_problem(
    names: list[str], cfg: dict[str, dict[str, object]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build_monitors(names, **cfg)


def test_suite_fires_once_per_onset_escalation_and_recurrence() -> None:
    sink = ListSink()
    suite = MonitorSuite(build_monitors(["test_threshold"]), baseline={}, sinks=[sink])
    values = [0, 2, 3, 4, 20, 3, 0, 5]
    fired = {step: suite.observe(step, {"x": v}) for step, v in enumerate(values)}
    assert [s for s, alerts in fired.items() if alerts] == [1, 4, 7]  # onset, escalation, recurrence
    assert [a.severity for a in sink.seen] == ["warning", "critical", "warning"]
    assert has_critical(fired[4]) and not has_critical(fired[1])


def test_suite_uses_the_first_step_as_baseline_when_none_is_given() -> None:
    suite = MonitorSuite(build_monitors(["hedging_rise"]))
    assert suite.observe(0, {"gen/hedge_rate": 0.1}) == []
    alerts = [a for step in range(1, 8) for a in suite.observe(step, {"gen/hedge_rate": 0.5})]
    assert len(alerts) == 1 and alerts[0].evidence["baseline_rate"] == 0.1


def test_suite_resumes_exactly() -> None:
    names = ["kl_budget", "kl_spike", "test_threshold"]
    kl = noisy(3.0, 40, 0.1, seed=0, slope=0.12)
    kl[25] += 3.0  # a spike after the resume point
    steps = [{"objective/kl": k, "x": 5.0 if 10 <= i < 30 else 0.0} for i, k in enumerate(kl)]

    def run(suite: MonitorSuite, part: list[dict[str, float]], start: int) -> list[tuple[int, str, str]]:
        return [
            (a.step, a.monitor, a.severity) for i, m in enumerate(part) for a in suite.observe(start + i, m)
        ]

    straight = MonitorSuite(build_monitors(names))
    expected = run(straight, steps, 0)
    first = MonitorSuite(build_monitors(names))
    got = run(first, steps[:20], 0)
    resumed = MonitorSuite(build_monitors(names))
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))  # as a checkpoint stores it
    got += run(resumed, steps[20:], 20)
    assert got == expected
    kinds = {(m, s) for _, m, s in expected}
    assert {("kl_budget", "warning"), ("kl_budget", "critical"), ("kl_spike", "warning")} <= kinds
