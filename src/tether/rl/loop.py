"""The step loop of an RL run: one algorithm step, KL control, monitors, logs, stop checks, checkpoints.

Each step, in order: (1)-(8) the algorithm's step at the current β (`tether.rl.ppo`, `tether.rl.rloo`)
(9) KL control: update β, add the step's KL to the running KL, check the budget (10) the learning-rate
schedule, and every `eval_every` steps the quick behavioral suite (eval/score) (11) monitors: the KL spike
detector and the monitor suite, alerts to every sink (12) logs: metrics.jsonl and trackers, samples.jsonl
every `sample_every` steps (13) stop when the budget says so or a critical alert fired (14) a periodic
checkpoint every `save_every` steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.monitors import HackingAlert, has_critical
from tether.monitors.base import AlertSink
from tether.rl.algorithm import RLAlgorithm, StepContext
from tether.rl.episodes import Episode, generations, sample_rows
from tether.rl.kl_control import RUNNING_KL_WINDOW, BudgetVerdict, KLBudget, running_kl
from tether.rl.loggers import MetricSink
from tether.rl.state import LoopState

StepCallback = Callable[[int, int, dict[str, float]], None]
"""on_step(step, total_steps, metrics), after each step's metrics are logged."""
SaveFn = Callable[[LoopState], object]
EvalFn = Callable[[int], dict[str, float]]
"""evaluate(step) -> metrics such as eval/score, from graders independent of the reward model."""


@dataclass(frozen=True)
class LoopOutcome:
    status: str
    """completed (all steps) or stopped (KL budget or a critical alert)."""
    reason: str | None
    metrics: dict[str, float]
    """The last step's metrics."""


@dataclass
class LoopIO:
    """Where the loop writes: the run directory's logs, trackers, alert sinks, progress, checkpoints."""

    run_dir: Path | None
    """None on the non-main processes of a data-parallel run, which write nothing."""
    trackers: Sequence[MetricSink]
    alert_sinks: Sequence[AlertSink]
    save: SaveFn
    on_step: StepCallback | None = None
    evaluate: EvalFn | None = None
    """The quick behavioral suite (`tether.evals.quick`), run every `cfg.eval_every` steps."""


def run_loop(
    ctx: StepContext, algo: RLAlgorithm, state: LoopState, budget: KLBudget, io: LoopIO
) -> LoopOutcome:
    """Run steps until `cfg.total_steps`, the KL budget or a critical alert; checkpoints every save_every."""
    cfg = ctx.cfg
    total = cfg.total_steps
    metrics: dict[str, float] = {}
    while state.step < total:
        step = state.step
        start = time.perf_counter()
        # (1)-(8) one algorithm step at the current β
        beta = state.controller.value
        out = algo.step(ctx, step, state.sampler, beta)
        # (9) KL control, on the global batch's KL and episode count (the same on every rank)
        verdict = control_kl(state, budget, out.metrics["objective/kl"], cfg.episodes_per_step)
        # (10) learning-rate schedule, one step per RL step
        state.scheduler.step()
        metrics = {
            **out.metrics,
            "objective/kl_running": verdict.running_kl,
            "objective/kl_coef_next": state.controller.value,
            "policy/lr": float(state.scheduler.get_last_lr()[0]),
            "time/step_s": time.perf_counter() - start,
        }
        if io.evaluate is not None and cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            metrics |= io.evaluate(step)
        # (11) monitors, on the global batch's metrics and episodes: every rank raises the same alerts
        alerts = observe(state, io.alert_sinks, step, metrics, out.episodes)
        # (12) logs
        state.step = step + 1
        log_step(io, step, metrics, out.episodes, due=step % cfg.sample_every == 0 or state.step == total)
        if io.on_step is not None:
            io.on_step(step, total, metrics)
        # (13) stop checks
        reason = stop_reason(verdict, alerts)
        if reason is not None:
            return LoopOutcome("stopped", reason, metrics)
        # (14) periodic checkpoint (the final one is written by the caller)
        if cfg.save_every and state.step % cfg.save_every == 0 and state.step < total:
            io.save(state)
    return LoopOutcome("completed", None, metrics)


def control_kl(state: LoopState, budget: KLBudget, kl: float, episodes: int) -> BudgetVerdict:
    """β update (per episode count, Ziegler et al.), running KL over the last steps, budget verdict."""
    state.controller.update(kl, n_steps=episodes)
    state.kl_history = [*state.kl_history, kl][-RUNNING_KL_WINDOW:]
    return budget.check(running_kl(state.kl_history))


def observe(
    state: LoopState,
    sinks: Sequence[AlertSink],
    step: int,
    metrics: dict[str, float],
    episodes: Sequence[Episode],
) -> list[HackingAlert]:
    """The spike detector's alert (sent to the sinks here) and the suite's (it sends its own)."""
    alerts: list[HackingAlert] = []
    spike = state.spike.update(metrics["objective/kl"])
    if spike is not None:
        evidence: dict[str, float | int | str] = {
            "kl": spike.kl,
            "z_level": spike.z_level,
            "z_delta": spike.z_delta,
            "window_mean": spike.window_mean,
            "window_std": spike.window_std,
        }
        alerts.append(HackingAlert("kl_spike", "warning", step, spike.message, evidence, "spike"))
        for sink in sinks:
            sink.emit(alerts)
    return alerts + state.suite.observe(step, metrics, generations(episodes))


def stop_reason(verdict: BudgetVerdict, alerts: Sequence[HackingAlert]) -> str | None:
    if verdict.stop:
        return f"KL budget: {verdict.message}"
    if has_critical(alerts):
        first = next(a for a in alerts if a.severity == "critical")
        return f"critical alert from {first.monitor} ({first.condition}): {first.message}"
    return None


def log_step(
    io: LoopIO, step: int, metrics: dict[str, float], episodes: Sequence[Episode], *, due: bool
) -> None:
    for tracker in io.trackers:
        tracker.log(step, metrics)
    if io.run_dir is None or not due:
        return
    with (io.run_dir / "samples.jsonl").open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in sample_rows(step, episodes))
