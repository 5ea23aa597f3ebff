"""How the realistic-size benchmarks measure: one fresh subprocess per measured run, a clock per step.

Each framework runs in its own Python process (`run_isolated`), so one's memory, threads, caches and
imports never touch another's, and the process's RSS high-water mark (`getrusage`, read right after
the training loop) is that run's own peak memory. torch's allocator is not seen by tracemalloc;
the kernel's count of resident pages is. The first optimizer step of every run is a warm-up and is
left out of the timing (`StepClock`): it pays one-off costs (allocator growth, lazy inits) that a
long run amortizes.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StepClock:
    """Wall-clock marks at the end of each step; `timed` leaves the first `warmup` steps out. The peak
    RSS is read at each mark too, so `peak_rss_mb` is the training loop's, before any saving or scoring."""

    marks: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def tick(self, *_: Any, **__: Any) -> None:
        self.marks.append(time.perf_counter())
        self.peak_rss_mb = peak_rss_mb()

    def timed(self, warmup: int = 1) -> tuple[float, int]:
        """(seconds, steps) from the end of step `warmup` to the end of the last step."""
        if len(self.marks) <= warmup:
            raise RuntimeError(f"{len(self.marks)} steps ran; need more than {warmup} to time any")
        return self.marks[-1] - self.marks[warmup - 1], len(self.marks) - warmup


def trl_step_clock(clock: StepClock) -> Any:
    """A transformers `TrainerCallback` that ticks `clock` after every optimizer step."""
    from transformers import TrainerCallback

    class Tick(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.tick()

    return Tick()


def run_isolated(script: Path, argv: Sequence[str], result: Path, *, timeout: float = 3600) -> dict[str, Any]:
    """Run `script argv` in a fresh interpreter and return the JSON it wrote to `result`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(script), *argv], timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{script.name} {' '.join(argv)} failed with exit code {done.returncode}")
    out: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    out["process_seconds"] = round(time.perf_counter() - start, 2)
    return out


def write_result(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if not isinstance(value, float):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
