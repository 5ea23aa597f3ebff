"""Where alerts go: the console, the run's alerts.jsonl, the store's `alerts` table.

Each sink is an `AlertSink` (``emit(alerts)``); `MonitorSuite` calls every sink with the alerts that
are new at a step, and the RL loop sends its own alerts (KL spikes) through the same sinks.

    suite = MonitorSuite(monitors, baseline, sinks=[ConsoleAlertSink(print),
                                                    JsonlAlertSink(run_dir / "alerts.jsonl"),
                                                    StoreAlertSink(project.store, run_id)])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tether.monitors.base import HackingAlert

if TYPE_CHECKING:
    from tether.store import Store

SEVERITY_STYLE = {"info": "dim", "warning": "bold yellow", "critical": "bold red"}


def format_alert(alert: HackingAlert) -> str:
    """One line: step, severity, monitor (condition), message."""
    condition = f" ({alert.condition})" if alert.condition else ""
    return f"step {alert.step} {alert.severity}: {alert.monitor}{condition}: {alert.message}"


@dataclass
class ConsoleAlertSink:
    """Prints each alert with `write` (a rich console's print, or plain print)."""

    write: Callable[[str], None]

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        for alert in alerts:
            self.write(format_alert(alert))


@dataclass
class JsonlAlertSink:
    """Appends one JSON object per alert (`HackingAlert.to_dict()`) to `path`."""

    path: Path

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        if not alerts:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            for alert in alerts:
                handle.write(json.dumps(alert.to_dict(), sort_keys=True) + "\n")


@dataclass
class StoreAlertSink:
    """Writes alerts to the store's `alerts` table under `run_id`, one transaction per step."""

    store: Store
    run_id: str

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        if not alerts:
            return
        from tether.store import add_alerts

        with self.store.session() as session:
            add_alerts(session, run_id=self.run_id, alerts=[a.to_dict() for a in alerts])


@dataclass
class CollectingAlertSink:
    """Keeps every alert it receives (the loop's record of what fired)."""

    alerts: list[HackingAlert]

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        self.alerts.extend(alerts)
