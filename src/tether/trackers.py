"""Experiment trackers (`--log-to`) through accelerate's tracker API.

`accelerate` already wraps TensorBoard, W&B, MLflow, Trackio, Aim, ClearML, Comet, DVCLive and
SwanLab, logs on the main process only, and is how every training run here is launched, so Tether
keeps no tracker code of its own: a run names its trackers, `accelerator_options` hands them to the
`Accelerator`, and `TrackerSink` logs each step's metrics through it. metrics.jsonl, which the report
reads, is written whatever the trackers (`tether.rl.loggers.JsonlMetricSink`, the RM's metrics.jsonl).
Tether depends on none of the tracking packages (`pip install -e '.[trackers]'` installs three).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from accelerate import Accelerator

PACKAGES = {"comet_ml": "comet-ml"}
"""pip names that differ from the tracker's name."""


def known_trackers() -> list[str]:
    """Every tracker accelerate can drive, installed or not."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return sorted(LOGGER_TYPE_TO_CLASS)


def check_trackers(names: Sequence[str]) -> list[str]:
    """`names` without repeats; TetherInputError for one that is unknown or not installed here."""
    from accelerate.tracking import get_available_trackers

    wanted = list(dict.fromkeys(names))
    known = known_trackers()
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise TetherInputError(
            f"--log-to: unknown tracker(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    available = {str(t) for t in get_available_trackers()}
    missing = [n for n in wanted if n not in available]
    if missing:
        packages = " ".join(PACKAGES.get(n, n) for n in missing)
        raise TetherInputError(f"--log-to {', '.join(missing)}: not installed here; `pip install {packages}`")
    return wanted


def accelerator_options(names: Sequence[str], *, logging_dir: Path) -> dict[str, Any]:
    """Keyword arguments for `Accelerator` that turn the trackers on ({} for none). Trackers that
    write files (TensorBoard, Aim) write under `logging_dir/<run name>/`."""
    if not names:
        return {}
    return {"log_with": list(names), "project_dir": str(logging_dir)}


def hyperparameters(config: Mapping[str, Any]) -> dict[str, bool | int | float | str | None]:
    """A config as trackers take hyperparameters: scalars kept, anything else as its text."""
    return {
        key: value if value is None or isinstance(value, bool | int | float | str) else str(value)
        for key, value in config.items()
    }


class TrackerSink:
    """A metric sink (``log(step, metrics)``, ``close()``) over an Accelerator's trackers."""

    def __init__(self, accelerator: Accelerator, *, run_name: str, config: Mapping[str, Any]) -> None:
        self.accelerator = accelerator
        accelerator.init_trackers(run_name, config=hyperparameters(config))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.accelerator.log(dict(metrics), step=step)

    def close(self) -> None:
        self.accelerator.end_training()


def tracker_sinks(
    accelerator: Accelerator, names: Sequence[str], *, run_name: str, config: Mapping[str, Any]
) -> list[TrackerSink]:
    """One sink for the Accelerator's trackers when `names` asks for any, else none."""
    return [TrackerSink(accelerator, run_name=run_name, config=config)] if names else []
