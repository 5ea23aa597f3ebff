"""Metric sinks: metrics.jsonl always; TensorBoard, MLflow or W&B when the package is importable.

A sink is anything with ``log(step, metrics)`` and ``close()``. Tether depends on none of the
tracking libraries: `optional_sinks` builds the ones asked for and says which are missing.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tether.errors import TetherInputError

OPTIONAL = ("tensorboard", "mlflow", "wandb")


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


class TensorBoardSink:
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class MLflowSink:
    def __init__(self, run_name: str, config: Mapping[str, Any]) -> None:
        import mlflow

        self.mlflow: Any = mlflow
        mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v) for k, v in config.items()})

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        # MLflow metric names may not contain some characters; "/" is fine.
        self.mlflow.log_metrics(dict(metrics), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class WandbSink:
    def __init__(self, run_name: str, config: Mapping[str, Any]) -> None:
        import wandb

        self.run: Any = wandb.init(name=run_name, config=dict(config))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


def check_trackers(names: Sequence[str]) -> None:
    """TetherInputError for a tracker name that is unknown or whose package is not installed."""
    unknown = [n for n in names if n not in OPTIONAL]
    if unknown:
        raise TetherInputError(
            f"--log-to: unknown tracker(s) {', '.join(unknown)}; choose from {', '.join(OPTIONAL)}"
        )
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise TetherInputError(
            f"--log-to {', '.join(missing)}: not installed here; `pip install {' '.join(missing)}`"
        )


def optional_sinks(
    names: Sequence[str], *, run_dir: Path, run_name: str, config: Mapping[str, Any]
) -> list[MetricSink]:
    """The tracking sinks named in `names` (see `check_trackers` for the errors)."""
    check_trackers(names)
    sinks: list[MetricSink] = []
    for name in names:
        if name == "tensorboard":
            sinks.append(TensorBoardSink(run_dir / "tensorboard"))
        elif name == "mlflow":
            sinks.append(MLflowSink(run_name, config))
        else:
            sinks.append(WandbSink(run_name, config))
    return sinks
