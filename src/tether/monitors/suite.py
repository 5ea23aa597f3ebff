"""`MonitorSuite`: runs the monitors each step, raises each alert once per onset, feeds the sinks.

De-duplication: an alert is identified by (monitor, condition). It is returned on the step its
condition starts, and again only if it escalates (warning → critical) or if the condition clears
for a step and comes back. A condition that stays on for 50 steps is one alert, not 50.

The suite keeps the last ``history_size`` steps of metrics and the baseline; ``state_dict()``
holds both and the active conditions, so a resumed run alerts exactly as an uninterrupted one.

Each kept step also holds its generations' per-stratum score sums (``strata/*``,
`tether.monitors.strata`), so monitors can pool responses over several steps; the sums of the
first ``STRATA_REFERENCE_STEPS`` steps are added to the baseline as the per-stratum reference
(the SFT baseline itself is measured over all strata together).

Alert kinds: every alert is ``hacking`` or ``health`` (`tether.monitors.base`); `by_kind` counts
them for the console, ``tether rl runs`` and ``bench/replay_monitors.py``.

    suite = MonitorSuite(build_monitors(DEFAULT_MONITORS, **default_monitor_config(spec.rl)),
                         baseline=sft_metrics)
    alerts = suite.observe(step, metrics, generations)
    if has_critical(alerts): ...stop the run (exit 3)
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tether.monitors.base import (
    ALERT_KINDS,
    SEVERITY_RANK,
    AlertKind,
    AlertSink,
    Generation,
    HackingAlert,
    MonitorInput,
    NamedMonitor,
    Severity,
    StepRecord,
)
from tether.monitors.strata import add_sums, strata_sums
from tether.spec.model import RLPolicy

DEFAULT_MONITORS = (
    "kl_budget",
    "kl_spike",
    "rm_divergence",
    "gold_peak",
    "length_creep",
    "hedging_rise",
    "list_rise",
    "diversity_collapse",
    "strata_uniform_high",
)


def default_monitor_config(policy: RLPolicy) -> dict[str, dict[str, Any]]:
    """Per-monitor config taken from the spec (only the KL budget reads it today)."""
    return {"kl_budget": {"budget_nats": policy.kl_budget_nats, "margin": policy.kl_budget_margin}}


STRATA_REFERENCE_STEPS = 10
"""Steps whose per-stratum sums form the reference: about 85 hard/adversarial responses (8–9 a step),
so the reference mean's standard error is a tenth of the scores' spread, taken while the policy is
still next to SFT (as long as the running KL's window)."""


def has_critical(alerts: Sequence[HackingAlert]) -> bool:
    """Whether any alert is critical: the run stops, whatever the alert's kind."""
    return any(a.severity == "critical" for a in alerts)


def by_kind(alerts: Iterable[HackingAlert]) -> dict[AlertKind, Counter[Severity]]:
    """How many alerts of each severity, per kind (both kinds always present)."""
    counts: dict[AlertKind, Counter[Severity]] = {kind: Counter() for kind in ALERT_KINDS}
    for alert in alerts:
        counts[alert.kind][alert.severity] += 1
    return counts


def describe_counts(counts: Mapping[AlertKind, Counter[Severity]]) -> str:
    """A line like "hacking: 1 critical; health: 2 warning, 1 info" (most severe first, "none" if empty)."""
    parts = []
    for kind in ALERT_KINDS:
        ranked = sorted(counts.get(kind, Counter()).items(), key=lambda kv: -SEVERITY_RANK[kv[0]])
        parts.append(f"{kind}: {', '.join(f'{n} {sev}' for sev, n in ranked if n) or 'none'}")
    return "; ".join(parts)


class MonitorSuite:
    def __init__(
        self,
        monitors: Sequence[NamedMonitor],
        baseline: Mapping[str, float] | None = None,
        sinks: Sequence[AlertSink] = (),
        history_size: int = 100,
        reference_steps: int = STRATA_REFERENCE_STEPS,
    ) -> None:
        """``baseline`` is the SFT policy's metrics; when None, the first observed step's are used.
        The per-stratum sums of steps below ``reference_steps`` are added to it (0: none are)."""
        self.monitors = list(monitors)
        self.reference_steps = reference_steps
        self.sinks = list(sinks)
        self.baseline: dict[str, float] | None = dict(baseline) if baseline is not None else None
        self.history: deque[StepRecord] = deque(maxlen=history_size)
        self.active: dict[tuple[str, str], Severity] = {}

    @property
    def config(self) -> list[dict[str, Any]]:
        """``{name, args}`` of each monitor, to store in the run log."""
        return [m.config for m in self.monitors]

    def observe(
        self, step: int, metrics: Mapping[str, float], generations: Sequence[Generation] = ()
    ) -> list[HackingAlert]:
        """Record this step, run every monitor, and return (and emit) the alerts that are new."""
        if self.baseline is None:
            self.baseline = dict(metrics)
        sums = strata_sums(generations)
        if step < self.reference_steps:
            self.baseline = add_sums(self.baseline, sums)
        self.history.append(StepRecord(step, {**metrics, **sums}))
        window = MonitorInput(list(self.history), self.baseline, list(generations))
        fired = [alert for monitor in self.monitors for alert in monitor(window)]
        fresh = self._new_onsets(fired)
        for sink in self.sinks:
            sink.emit(fresh)
        return fresh

    def _new_onsets(self, fired: list[HackingAlert]) -> list[HackingAlert]:
        now: dict[tuple[str, str], Severity] = {}
        fresh = []
        for alert in fired:
            key = (alert.monitor, alert.condition)
            before = self.active.get(key)
            if key not in now and (before is None or SEVERITY_RANK[alert.severity] > SEVERITY_RANK[before]):
                fresh.append(alert)
            if key not in now or SEVERITY_RANK[alert.severity] > SEVERITY_RANK[now[key]]:
                now[key] = alert.severity
        # Keep the highest severity seen while a condition stays on, so it does not re-fire when it
        # dips from critical to warning and back.
        rank = SEVERITY_RANK.__getitem__
        self.active = {k: max(s, self.active.get(k, s), key=rank) for k, s in now.items()}
        return fresh

    def state_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "history": [{"step": r.step, "metrics": dict(r.metrics)} for r in self.history],
            "active": [[m, c, s] for (m, c), s in self.active.items()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.baseline = dict(state["baseline"]) if state["baseline"] is not None else None
        records = (StepRecord(int(r["step"]), dict(r["metrics"])) for r in state["history"])
        self.history = deque(records, maxlen=self.history.maxlen)
        self.active = {(m, c): s for m, c, s in state["active"]}
