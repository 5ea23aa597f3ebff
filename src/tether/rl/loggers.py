"""Metric sinks: anything with ``log(step, metrics)`` and ``close()``.

metrics.jsonl (`JsonlMetricSink`) is always written: the report and the curves read it. Experiment
trackers (`--log-to`) go through accelerate (`tether.trackers.TrackerSink`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol


class MetricSink(Protocol):
    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class JsonlMetricSink:
    """One JSON line per step: {"step": n, ...metrics}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")

    def close(self) -> None:
        """Nothing is held open between steps."""
