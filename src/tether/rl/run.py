"""`tether rl run`: a short, resumable RL run against the SFT policy with a hard KL budget.

    tether rl run --steps 200                          # PPO, latest SFT policy and gated reward model
    tether rl run --algo rloo --samples-per-prompt 4   # RLOO
    tether rl run --from .tether/rl/rl-3f2a…/step-000050 --steps 200   # resume exactly
    accelerate launch --multi_gpu --num_processes 2 -m tether rl run --seed-per-prompt ...  # 2 ranks

Steps: (1) inputs: the SFT policy, the reward model and its gate (refused unless passed or --force),
the pool prompts, or a checkpoint to resume (2) the run's row in the store and its directory
(3) models: policy, frozen reference, critic (PPO), prepared by `accelerate` (4) the SFT baseline at
step 0: generation metrics for the monitors, RM score mean/std for normalization — or, when
resuming, every piece of state restored from the checkpoint (5) the loop (`tether.rl.loop`)
(6) the final checkpoint, registered as an `rl_checkpoint` artifact with the SFT policy and the
reward model as parents, and the run row closed with its status and reason.

A run that stops on the KL budget or a critical alert still saves its checkpoint first; the CLI
then exits 3 (`RunResult.critical`).

Data-parallel (`tether.rl.global_batch`): every rank runs steps (1) and (3)-(5) on its shard of each
global batch; rank 0 alone opens the row, prints, writes the logs and checkpoints and registers the
artifact, and the other ranks return rank 0's `RunResult`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether import __version__
from tether.artifacts import RL_CHECKPOINT_KIND, GateRecord
from tether.distributed import BatchSplit, is_main_process, process_state
from tether.hashing import content_sha256
from tether.monitors import (
    DEFAULT_MONITORS,
    HackingAlert,
    MonitorSuite,
    build_monitors,
    default_monitor_config,
)
from tether.monitors.base import AlertSink
from tether.monitors.sinks import CollectingAlertSink, ConsoleAlertSink, JsonlAlertSink, StoreAlertSink
from tether.rl.checkpoint import LOG_FILES, truncated_log
from tether.rl.config import RLConfig
from tether.rl.global_batch import describe_split, rl_batch_split
from tether.rl.kl_control import KLBudget
from tether.rl.loggers import JsonlMetricSink
from tether.rl.loop import LoopIO, LoopOutcome, StepCallback
from tether.rl.plan import RunPlan, plan_run, resume_config
from tether.store import ArtifactRecord, create_run, finish_run, register_artifact

if TYPE_CHECKING:
    from tether.project import Project

log = logging.getLogger(__name__)
RUN_KIND = "rl"
LOOP_MONITORS = tuple(m for m in DEFAULT_MONITORS if m != "kl_spike")
"""The suite's monitors; KL spikes come from the loop's own `KLSpikeDetector` (its state is checkpointed)."""


@dataclass(frozen=True)
class RunResult:
    run_id: str
    run_dir: Path
    checkpoint: Path
    artifact: ArtifactRecord | None
    status: str
    """completed, or stopped (KL budget or a critical alert)."""
    reason: str | None
    steps: int
    """Steps completed, counted from the SFT policy (a resumed run includes the checkpoint's)."""
    alerts: list[HackingAlert]
    gate: GateRecord
    metrics: dict[str, float]
    """The last step's metrics."""
    seconds: float

    @property
    def critical(self) -> bool:
        """The run stopped on its KL budget or a critical alert: the CLI exits 3."""
        return self.status == "stopped"


def run_rl(
    project: Project,
    cfg: RLConfig | None = None,
    *,
    policy: str | None = None,
    reward_model: str | None = None,
    resume_from: str | None = None,
    force: bool = False,
    on_step: StepCallback | None = None,
    on_message: Callable[[str], None] | None = None,
    trackers: Sequence[str] = (),
    init_from: str | None = None,
) -> RunResult:
    """Run RL on `project`. `cfg` defaults to RLConfig() (or, resuming, the checkpoint's config).

    `policy`/`reward_model`: artifact ids or directories (default: the latest of each kind);
    `resume_from`: an rl_checkpoint id or directory; `init_from`: one whose policy a new run starts from
    (a warm start: fresh optimizer and controller, KL still against SFT); `force`: train on an RM
    that failed its gate (recorded);
    `on_step(step, total, metrics)`; `on_message(text)` receives alerts and notices; `trackers`:
    optional metric sinks (tensorboard, mlflow, wandb)."""
    from tether.rl.session import open_run_dir
    from tether.trackers import check_trackers

    started = time.perf_counter()
    say = on_message or log.info
    if cfg is None:
        cfg = resume_config(project, resume_from) if resume_from is not None else RLConfig()
    trackers = check_trackers(trackers)
    # (1) inputs
    plan = plan_run(
        project,
        cfg,
        policy=policy,
        reward_model=reward_model,
        resume_from=resume_from,
        force=force,
        init_from=init_from,
    )
    # every rank checks the split before any row, file or model exists; a failure is exit 2 on each
    split = rl_batch_split(plan.cfg, process_state().num_processes)
    if not is_main_process():
        return _follow(project, plan, started)
    _announce(plan, split, say)
    # (2) the run's row and directory
    run_id = _open_run_row(project, plan)
    run_dir = open_run_dir(project, run_id, plan)
    collected = CollectingAlertSink([])
    sinks: list[AlertSink] = [
        collected,
        ConsoleAlertSink(say),
        JsonlAlertSink(run_dir / "alerts.jsonl"),
        StoreAlertSink(project.store, run_id),
    ]
    # (3)-(5) models, baseline or restored state, the loop, the final checkpoint
    io = LoopIO(run_dir, [JsonlMetricSink(run_dir / "metrics.jsonl")], sinks, lambda s: None, on_step)
    outcome, checkpoint = _train_recorded(project, plan, run_id, io, trackers)
    # (6) register the final checkpoint and close the run
    steps = _steps(checkpoint)
    artifact = _register(project, plan, checkpoint)
    if outcome.reason:
        say(f"run stopped after {steps} steps: {outcome.reason}")
    _close_run_row(project, run_id, outcome.status, outcome.reason, artifact.id, {"steps": steps})
    seconds = time.perf_counter() - started
    result = RunResult(
        run_id, run_dir, checkpoint, artifact, outcome.status, outcome.reason, steps,
        collected.alerts, plan.gate, outcome.metrics, seconds,
    )  # fmt: skip
    return _shared(result)


def _announce(plan: RunPlan, split: BatchSplit, say: Callable[[str], None]) -> None:
    """Rank 0's opening lines: how the global batch splits (on more than one process), a forced gate."""
    if split.world_size > 1:
        say(describe_split(plan.cfg, split))
    if plan.gate.forced:
        say(
            f"reward model {plan.reward_model.artifact_id or plan.reward_model.path} did NOT pass its gate; "
            f"training on it anyway (--force), recorded with the run: {'; '.join(plan.gate.failures)}"
        )


def _follow(project: Project, plan: RunPlan, started: float) -> RunResult:
    """The other processes of a data-parallel run: the same steps and collectives, no files, no rows,
    no messages; then they wait for rank 0 to register the checkpoint and return its result."""
    from tether.rl.session import train

    train(project, plan, "", LoopIO(None, [], [], lambda s: None))
    return _shared(None)


def _shared(result: RunResult | None) -> RunResult:
    """Rank 0's result on every rank (itself alone). The broadcast is the last barrier of a run: the
    other ranks wait there while rank 0 registers the checkpoint and closes the run's row, and then
    end as it does (the same status, so the same exit code)."""
    if process_state().num_processes == 1:
        assert result is not None
        return result
    from accelerate.utils import broadcast_object_list

    box = [result]
    broadcast_object_list(box, from_process=0)
    shared = box[0]
    assert shared is not None
    return shared


def _train_recorded(
    project: Project, plan: RunPlan, run_id: str, io: LoopIO, trackers: Sequence[str]
) -> tuple[LoopOutcome, Path]:
    """`session.train`, with the run row closed as failed (or interrupted) when anything raises."""
    from tether.rl.session import train

    metric_sinks = list(io.trackers)
    try:
        return train(project, plan, run_id, replace(io, trackers=metric_sinks), trackers=trackers)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        _close_run_row(project, run_id, status, f"{type(exc).__name__}: {exc}", None, {})
        raise
    finally:
        for sink in metric_sinks:
            sink.close()


def _steps(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[-1])


def run_meta(
    plan: RunPlan, run_id: str, step: int, outcome: LoopOutcome | None, suite: MonitorSuite
) -> dict[str, Any]:
    """What tether_rl.json holds: enough to rebuild the run and trace it to its inputs."""
    return {
        "run_id": run_id,
        "algo": plan.cfg.algo,
        "step": step,
        "tether_version": __version__,
        "config": plan.cfg.as_dict(),
        "spec_hash": plan.spec_hash,
        "sft": plan.sft.to_dict(),
        "reward_model": plan.reward_model.to_dict(),
        "gate": plan.gate.to_dict(),
        "init_from": plan.init_policy.to_dict() if plan.init_policy else None,
        "resumed_from": {
            "path": str(plan.resume.path),
            "artifact_id": plan.resume_artifact,
            "step": plan.resume.step,
        }
        if plan.resume
        else None,
        "monitors": suite.config,
        "stopped": None
        if outcome is None or outcome.reason is None
        else {"status": outcome.status, "reason": outcome.reason},
        "final_metrics": outcome.metrics if outcome is not None else None,
    }


def build_suite(project: Project, sinks: Sequence[Any]) -> MonitorSuite:
    monitors = build_monitors(LOOP_MONITORS, **default_monitor_config(project.spec.rl))
    return MonitorSuite(monitors, baseline=None, sinks=sinks)


def kl_budget(project: Project) -> KLBudget:
    return KLBudget.from_spec(project.spec.rl)


def _open_run_row(project: Project, plan: RunPlan) -> str:
    meta = {
        "sft": plan.sft.to_dict(),
        "reward_model": plan.reward_model.to_dict(),
        "gate": plan.gate.to_dict(),
        "resumed_from": str(plan.resume.path) if plan.resume else None,
    }
    project_id = project.project_id
    with project.store.session() as session:
        run = create_run(
            session,
            project_id=project_id,
            kind=RUN_KIND,
            config=plan.cfg.as_dict(),
            spec_hash=project.spec_hash,
            meta=meta,
            gate_overridden=plan.gate.forced,
        )
    return run.id


def _close_run_row(
    project: Project,
    run_id: str,
    status: str,
    reason: str | None,
    artifact_id: str | None,
    meta: dict[str, Any],
) -> None:
    with project.store.session() as session:
        finish_run(session, run_id=run_id, status=status, reason=reason, artifact_id=artifact_id, meta=meta)


def _register(project: Project, plan: RunPlan, checkpoint: Path) -> ArtifactRecord:
    init = plan.init_policy.artifact_id if plan.init_policy else None
    parents = [
        i for i in (plan.sft.artifact_id, plan.reward_model.artifact_id, plan.resume_artifact, init) if i
    ]
    project_id = project.project_id
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project_id,
            kind=RL_CHECKPOINT_KIND,
            path=project.relative(checkpoint),
            content_hash=content_sha256(checkpoint),
            spec_hash=project.spec_hash,
            parents=parents,
            meta={
                "algo": plan.cfg.algo,
                "step": _steps(checkpoint),
                "gate_forced": plan.gate.forced,
                "reward_model": plan.reward_model.artifact_id,
                "sft": plan.sft.artifact_id,
            },
        )


def copy_resumed_logs(plan: RunPlan, run_dir: Path) -> None:
    """A resumed run's logs start with the checkpoint's, so metrics.jsonl holds the whole history."""
    if plan.resume is None:
        return
    for name in LOG_FILES:
        truncated_log(plan.resume.path / name, run_dir / name, before_step=plan.resume.step)


__all__ = ["RunPlan", "RunResult", "plan_run", "resume_config", "run_rl"]
