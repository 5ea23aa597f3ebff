"""The monitor plugin interface: what a monitor reads, what it returns, and the registry by name.

A monitor is a callable ``(MonitorInput) -> list[HackingAlert]`` made by a factory registered
under a name (Inspect AI's solver/scorer pattern). A run records each monitor's ``{name, args}``
(`NamedMonitor.config`), so the same monitors can be rebuilt from the run's log.

Monitors are stateless: everything they need (the recent per-step metrics, the SFT baseline,
this step's generations) is in `MonitorInput`, which `MonitorSuite` assembles. That keeps them
testable with a hand-made input and makes resume exact (only the suite has state).

Metric keys, namespaced as the loop logs them: ``objective/kl``, ``objective/kl_k3``,
``objective/kl_coef``, ``objective/rm_score``, ``policy/entropy``, ``policy/clipfrac``,
``policy/approx_kl``, ``val/explained_variance``, ``gen/length_mean``, ``gen/hedge_rate``,
``gen/list_rate``, ``gen/distinct_2``, ``gold/*`` (sandbox only, e.g. ``gold/utility``) and
``eval/score`` (an independent eval, on the steps where it ran).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
INDEPENDENT_KEYS = ("gold/utility", "eval/score")
"""Scores that do not come from the reward model, most trusted first."""


@dataclass(frozen=True)
class HackingAlert:
    monitor: str
    severity: Severity
    step: int
    message: str
    evidence: dict[str, float | int | str] = field(default_factory=dict)
    """The numbers behind the alert: baseline, current value, thresholds, trends."""
    condition: str = ""
    """What fired, within the monitor (e.g. "entropy" vs "distinct_2"); the suite de-duplicates on
    (monitor, condition), so an alert is raised once per onset, not on every step."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "severity": self.severity,
            "step": self.step,
            "condition": self.condition,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Generation:
    """One sampled response of the step, as the monitors see it."""

    prompt: str
    response: str
    stratum: str = "routine"
    """The prompt's stratum in the pool: routine, hard, adversarial or edge."""
    rm_score: float | None = None
    independent: float | None = None
    """An independent grader's score of this response (the sandbox's gold utility), if any."""


@dataclass(frozen=True)
class StepRecord:
    step: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class MonitorInput:
    """What a monitor sees at one step. ``history`` is oldest first; its last record is this step."""

    history: Sequence[StepRecord]
    baseline: Mapping[str, float]
    """The SFT policy's metrics (step 0), the reference for "rising" and "collapsed"."""
    generations: Sequence[Generation] = ()

    @property
    def step(self) -> int:
        return self.history[-1].step if self.history else 0

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.history[-1].metrics if self.history else {}

    def series(self, key: str, window: int | None = None) -> tuple[list[int], list[float]]:
        """(steps, values) of ``key`` over the last ``window`` records, skipping steps where it is
        missing or not finite (an eval score is logged only on the steps where the eval ran)."""
        records = self.history if window is None else self.history[-window:]
        pairs = [(r.step, r.metrics[key]) for r in records if key in r.metrics]
        kept = [(s, float(v)) for s, v in pairs if math.isfinite(v)]
        return [s for s, _ in kept], [v for _, v in kept]

    def baseline_value(self, key: str) -> float | None:
        value = self.baseline.get(key)
        return float(value) if value is not None and math.isfinite(value) else None


class Monitor(Protocol):
    def __call__(self, window: MonitorInput, /) -> list[HackingAlert]: ...


class AlertSink(Protocol):
    """Where alerts go (console, run log, store); the loop wires them to `MonitorSuite`."""

    def emit(self, alerts: Sequence[HackingAlert]) -> None: ...


# ---------------------------------------------------------------------------------------------
MonitorFactory = Callable[..., Monitor]
F = TypeVar("F", bound=MonitorFactory)
_REGISTRY: dict[str, MonitorFactory] = {}


def register_monitor(name: str) -> Callable[[F], F]:
    """Register a monitor factory under ``name``; its keyword arguments are the monitor's config."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a monitor named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


@dataclass(frozen=True)
class NamedMonitor:
    """A built monitor with the name and arguments that rebuild it."""

    name: str
    args: Mapping[str, Any]
    check: Monitor

    def __call__(self, window: MonitorInput) -> list[HackingAlert]:
        return self.check(window)

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}


def _load_builtins() -> None:
    # Imported for their @register_monitor side effect; late, because they import this module.
    from tether.monitors import kl, reward, style  # noqa: F401


def monitor_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def build_monitors(names: Iterable[str], **cfg: Mapping[str, Any]) -> list[NamedMonitor]:
    """Monitors by name, each with its keyword config: ``build_monitors(["kl_budget"],
    kl_budget={"budget_nats": 6.0})``. Unknown names or arguments raise ValueError naming them."""
    _load_builtins()
    names = list(names)
    unknown = [n for n in [*names, *cfg] if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown monitor(s) {', '.join(unknown)}; known: {', '.join(sorted(_REGISTRY))}")
    stray = [n for n in cfg if n not in names]
    if stray:
        raise ValueError(f"config given for monitor(s) not built: {', '.join(stray)}; add them to the names")
    built = []
    for name in names:
        args = dict(cfg.get(name, {}))
        factory = _REGISTRY[name]
        try:
            inspect.signature(factory).bind(**args)
        except TypeError as err:
            raise ValueError(f"monitor {name!r}: bad arguments {sorted(args)}: {err}") from err
        built.append(NamedMonitor(name, args, factory(**args)))
    return built
