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

Every alert has a KIND, separate from its severity:

- ``hacking``: evidence that the policy gains reward it has not earned: the RM score pulling away
  from an independent score, or the policy piling on what biased raters reward.
- ``health``: the optimization itself needs a look (KL moving too fast or too far, a policy
  sharpening); what every RL run shows to some degree, and no evidence by itself that the reward is
  being gamed.

A monitor declares its kind when it is registered (``@register_monitor("kl_spike", kind="health")``);
an alert takes its monitor's kind unless it names one (a monitor with conditions of both kinds, like
``diversity_collapse``, does). Severity still decides what happens: critical stops the run whatever
the kind (the KL budget is a health alert that stops runs).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
AlertKind = Literal["hacking", "health"]
ALERT_KINDS: tuple[AlertKind, ...] = ("hacking", "health")
INDEPENDENT_KEYS = ("gold/utility", "eval/score")
"""Scores that do not come from the reward model, most trusted first."""


@dataclass(frozen=True, init=False)
class HackingAlert:
    """One alert of a monitor. ``kind`` defaults to the monitor's registered kind (`monitor_kind`), so
    code that builds an alert by monitor name (the loop's KL-spike detector) gets the right kind."""

    monitor: str
    severity: Severity
    step: int
    message: str
    evidence: dict[str, float | int | str]
    """The numbers behind the alert: baseline, current value, thresholds, trends."""
    condition: str
    """What fired, within the monitor (e.g. "entropy" vs "distinct_2"); the suite de-duplicates on
    (monitor, condition), so an alert is raised once per onset, not on every step."""
    kind: AlertKind
    """hacking or health (see the module docstring)."""

    def __init__(
        self,
        monitor: str,
        severity: Severity,
        step: int,
        message: str,
        evidence: Mapping[str, float | int | str] | None = None,
        condition: str = "",
        kind: AlertKind | None = None,
    ) -> None:
        if kind is not None and kind not in ALERT_KINDS:
            raise ValueError(f"alert kind must be one of {', '.join(ALERT_KINDS)}, got {kind!r}")
        # A frozen dataclass: fields are set through object.__setattr__, as the generated __init__ does.
        object.__setattr__(self, "monitor", monitor)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "evidence", dict(evidence or {}))
        object.__setattr__(self, "condition", condition)
        object.__setattr__(self, "kind", kind if kind is not None else monitor_kind(monitor))

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "kind": self.kind,
            "severity": self.severity,
            "step": self.step,
            "condition": self.condition,
            "message": self.message,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HackingAlert:
        """The inverse of `to_dict`. Records written before alerts had a kind (or a store row, which
        keeps it in ``evidence["kind"]``) get it from there, else from the monitor's registered kind."""
        evidence = dict(data.get("evidence") or {})
        kind = data.get("kind") or evidence.get("kind")
        return cls(
            str(data["monitor"]),
            data["severity"],
            int(data["step"]),
            str(data["message"]),
            evidence,
            str(data.get("condition", "")),
            kind if kind in ALERT_KINDS else None,
        )


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
_KINDS: dict[str, AlertKind] = {}


def register_monitor(name: str, kind: AlertKind = "hacking") -> Callable[[F], F]:
    """Register a monitor factory under ``name``; its keyword arguments are the monitor's config.
    ``kind`` is the default kind of its alerts: hacking unless the monitor watches the optimization."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"monitor {name!r}: kind must be one of {', '.join(ALERT_KINDS)}, got {kind!r}")

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a monitor named {name!r} is already registered")
        _REGISTRY[name] = factory
        _KINDS[name] = kind
        return factory

    return decorate


def monitor_kind(name: str) -> AlertKind:
    """The registered kind of monitor ``name``; hacking for a name no monitor registered, so an
    unknown alert is never quietly filed as routine."""
    _load_builtins()
    return _KINDS.get(name, "hacking")


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
