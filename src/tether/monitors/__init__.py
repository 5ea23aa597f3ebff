"""Reward-hacking monitors: small registered plugins that read each RL step's metrics and samples.

    from tether.monitors import DEFAULT_MONITORS, MonitorSuite, build_monitors, default_monitor_config
    suite = MonitorSuite(build_monitors(DEFAULT_MONITORS, **default_monitor_config(spec.rl)), baseline)
    alerts = suite.observe(step, metrics, generations)

Write a monitor with ``@register_monitor("name", kind="hacking")`` on a factory returning
``(MonitorInput) -> list[HackingAlert]``; see `tether.monitors.base`. Every alert is a ``hacking``
alert (the reward is being gamed) or a ``health`` alert (the optimization needs a look); severity,
not kind, decides whether a run stops.
"""

from tether.monitors.base import (
    AlertKind,
    AlertSink,
    Generation,
    HackingAlert,
    Monitor,
    MonitorInput,
    NamedMonitor,
    Severity,
    StepRecord,
    build_monitors,
    monitor_kind,
    monitor_names,
    register_monitor,
)
from tether.monitors.suite import DEFAULT_MONITORS, MonitorSuite, default_monitor_config, has_critical

__all__ = [
    "DEFAULT_MONITORS",
    "AlertKind",
    "AlertSink",
    "Generation",
    "HackingAlert",
    "Monitor",
    "MonitorInput",
    "MonitorSuite",
    "NamedMonitor",
    "Severity",
    "StepRecord",
    "build_monitors",
    "default_monitor_config",
    "has_critical",
    "monitor_kind",
    "monitor_names",
    "register_monitor",
]
