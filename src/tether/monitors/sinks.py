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
from typing import TYPE_CHECKING, Any

from tether.monitors.base import HackingAlert

if TYPE_CHECKING:
    from tether.store import Store

SEVERITY_STYLE = {"info": "dim", "warning": "bold yellow", "critical": "bold red"}


def format_alert(alert: HackingAlert) -> str:
    """One line: step, kind and severity, monitor (condition), message. The kind leads, so a reader
    tells "the reward is being gamed" (hacking) from "the optimizer moved fast" (health) at a glance:

        step 167 HACKING critical: gold_peak (overoptimization): gold/utility (mean of 10 steps) fell ...
        step 65 health warning: kl_spike (spike): KL 2.06 nats jumped ...
    """
    condition = f" ({alert.condition})" if alert.condition else ""
    kind = "HACKING" if alert.kind == "hacking" else alert.kind
    return f"step {alert.step} {kind} {alert.severity}: {alert.monitor}{condition}: {alert.message}"


def store_row(alert: HackingAlert) -> dict[str, Any]:
    """`HackingAlert.to_dict()` shaped for the store's `alerts` table, which has no kind column:
    the kind goes into the evidence JSON (`HackingAlert.from_dict` reads it back from there)."""
    row = alert.to_dict()
    row["evidence"] = {**row["evidence"], "kind": row.pop("kind")}
    return row


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
    """Writes alerts to the store's `alerts` table under `run_id`, one transaction per step; the kind
    is kept in each row's evidence (`store_row`)."""

    store: Store
    run_id: str

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        if not alerts:
            return
        from tether.store import add_alerts

        with self.store.session() as session:
            add_alerts(session, run_id=self.run_id, alerts=[store_row(a) for a in alerts])


@dataclass
class CollectingAlertSink:
    """Keeps every alert it receives (the loop's record of what fired)."""

    alerts: list[HackingAlert]

    def emit(self, alerts: Sequence[HackingAlert]) -> None:
        self.alerts.extend(alerts)
