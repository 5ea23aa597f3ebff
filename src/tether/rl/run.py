"""`tether rl run`: a short, resumable RL run against the SFT policy with a hard KL budget.

    tether rl run --steps 200                          # PPO, latest SFT policy and gated reward model
    tether rl run --algo rloo --samples-per-prompt 4   # RLOO
    tether rl run --from .tether/rl/rl-3f2a…/step-000050 --steps 200   # resume exactly
    accelerate launch -m tether.cli.main rl run ...    # the same loop, data-parallel

Steps: (1) inputs: the SFT policy, the reward model and its gate (refused unless passed or --force),
the pool prompts, or a checkpoint to resume (2) the run's row in the store and its directory
(3) models: policy, frozen reference, critic (PPO), prepared by `accelerate` (4) the SFT baseline at
step 0: generation metrics for the monitors, RM score mean/std for normalization — or, when
resuming, every piece of state restored from the checkpoint (5) the loop (`tether.rl.loop`)
(6) the final checkpoint, registered as an `rl_checkpoint` artifact with the SFT policy and the
reward model as parents, and the run row closed with its status and reason.

A run that stops on the KL budget or a critical alert still saves its checkpoint first; the CLI
then exits 3 (`RunResult.critical`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether import __version__
from tether.errors import TetherInputError
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
from tether.rl.checkpoint import LOG_FILES, LoadedCheckpoint, load_checkpoint, truncated_log
from tether.rl.config import RLConfig
from tether.rl.inputs import (
    RL_CHECKPOINT_KIND,
    GateRecord,
    ModelInput,
    check_gate,
    is_sandbox,
    pool_prompts,
    resolve_checkpoint,
    resolve_model,
)
from tether.rl.kl_control import KLBudget
from tether.rl.loggers import JsonlMetricSink
from tether.rl.loop import LoopIO, LoopOutcome, StepCallback
from tether.rl.prompts import PromptItem
from tether.store import ArtifactRecord, create_run, finish_run, register_artifact

if TYPE_CHECKING:
    from tether.evals.plan import SuitePlan
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


@dataclass(frozen=True)
class RunPlan:
    """Step (1): everything the run consumes, resolved and checked before any model loads."""

    cfg: RLConfig
    spec_hash: str
    sft: ModelInput
    reward_model: ModelInput
    gate: GateRecord
    prompts: list[PromptItem]
    sandbox: bool
    resume: LoadedCheckpoint | None = None
    resume_artifact: str | None = None
    quick_eval: list[SuitePlan] | None = None
    """The quick behavioral suite run every `cfg.eval_every` steps (None when off)."""
    init_policy: ModelInput | None = None
    """An earlier run's checkpoint the policy starts from (`--init-from`); the KL reference, the
    monitors' baseline and the score normalization stay the SFT policy's."""


def resume_config(project: Project, resume_from: str, overrides: dict[str, Any] | None = None) -> RLConfig:
    """The config stored in a checkpoint, with `overrides` (for instance a larger `steps`) applied."""
    path, _ = resolve_checkpoint(project, resume_from)
    stored = RLConfig.from_dict(load_checkpoint(path).meta["config"]).as_dict()
    try:
        return RLConfig.from_dict({**stored, **(overrides or {})})
    except ValueError as exc:
        raise TetherInputError(f"--from {resume_from}: {exc}") from None


def plan_run(
    project: Project,
    cfg: RLConfig,
    *,
    policy: str | None = None,
    reward_model: str | None = None,
    resume_from: str | None = None,
    force: bool = False,
    init_from: str | None = None,
) -> RunPlan:
    """Resolve and check the inputs; raises TetherInputError (exit 2) or QualityGateFailed (exit 3)."""
    cfg = cfg.resolve(project.spec.rl)
    if init_from is not None and resume_from is not None:
        raise TetherInputError("--init-from starts a new run and --from continues one; pass one of them")
    resume, resume_id = None, None
    if resume_from is not None:
        path, resume_id = resolve_checkpoint(project, resume_from)
        resume = load_checkpoint(path)
        _check_resumable(resume, cfg)
        sft = _stored_input(resume.meta["sft"], "SFT policy")
        rm_default: ModelInput | None = _stored_input(resume.meta["reward_model"], "reward model")
    else:
        sft = resolve_model(project, kind="policy", explicit=policy)
        rm_default = None
    if reward_model is not None or rm_default is None:
        rm = resolve_model(project, kind="reward_model", explicit=reward_model)
    else:
        rm = rm_default
    gate = check_gate(project, rm, force=force)
    prompts, sandbox = pool_prompts(project), is_sandbox(project)
    quick = None
    if cfg.eval_every:
        from tether.evals.quick import plan_quick_eval

        quick = plan_quick_eval(project, suite=cfg.eval_suite, sandbox=sandbox)
    init = _init_policy(project, init_from, sft) if init_from is not None else None
    if resume is not None and resume.meta.get("init_from"):
        # a resumed warm start keeps its origin for the lineage (its weights come from the checkpoint)
        entry = resume.meta["init_from"]
        init = ModelInput(
            Path(entry["path"]), entry.get("artifact_id"), str(entry["content_sha256"]), "checkpoint"
        )
    return RunPlan(cfg, project.spec_hash, sft, rm, gate, prompts, sandbox, resume, resume_id, quick, init)


def _init_policy(project: Project, init_from: str, sft: ModelInput) -> ModelInput:
    """The checkpoint a warm start loads its policy from; it must descend from the same SFT policy,
    since its KL is measured against that one."""
    path, artifact_id = resolve_checkpoint(project, init_from, option="--init-from")
    started = load_checkpoint(path).meta.get("sft") or {}
    if started.get("content_sha256") != sft.content_sha256:
        raise TetherInputError(
            f"--init-from {init_from}: that run started from SFT policy {started.get('path')}, not "
            f"{sft.path}; KL against this SFT policy would not measure how far RL moved it"
        )
    return ModelInput(path, artifact_id, content_sha256(path), "checkpoint")


def _check_resumable(resume: LoadedCheckpoint, cfg: RLConfig) -> None:
    if resume.step >= cfg.total_steps:
        raise TetherInputError(
            f"{resume.path}: the checkpoint has run {resume.step} steps already; pass --steps above that"
        )
    if cfg.algo == "ppo" and resume.critic_path is None:
        raise TetherInputError(
            f"{resume.path}: an rloo checkpoint has no critic to resume PPO with; use --algo rloo"
        )


def _stored_input(entry: dict[str, Any], what: str) -> ModelInput:
    path = Path(entry["path"])
    if not path.is_dir():
        raise TetherInputError(
            f"the checkpoint's {what} {path} is gone; the run cannot be rebuilt without it"
        )
    return ModelInput(path, entry.get("artifact_id"), str(entry["content_sha256"]), "checkpoint")


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
    from tether.rl.loggers import check_trackers
    from tether.rl.session import open_run_dir

    started = time.perf_counter()
    say = on_message or log.info
    if cfg is None:
        cfg = resume_config(project, resume_from) if resume_from is not None else RLConfig()
    check_trackers(trackers)
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
    if plan.gate.forced:
        say(
            f"reward model {plan.reward_model.artifact_id or plan.reward_model.path} did NOT pass its gate; "
            f"training on it anyway (--force), recorded with the run: {'; '.join(plan.gate.failures)}"
        )
    if not _is_main_process():
        return _follow(project, plan, started)
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
    return RunResult(
        run_id, run_dir, checkpoint, artifact, outcome.status, outcome.reason, steps,
        collected.alerts, plan.gate, outcome.metrics, seconds,
    )  # fmt: skip


def _is_main_process() -> bool:
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # The same CPU flag as Accelerator reads: the first state created fixes the process layout.
    return bool(PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")).is_main_process)


def _follow(project: Project, plan: RunPlan, started: float) -> RunResult:
    """The other processes of a data-parallel run: same steps and collectives, no files, no rows."""
    from tether.rl.session import train

    outcome, checkpoint = train(project, plan, "", LoopIO(None, [], [], lambda s: None))
    steps = _steps(checkpoint)
    return RunResult(
        "", checkpoint.parent, checkpoint, None, outcome.status, outcome.reason, steps, [], plan.gate,
        outcome.metrics, time.perf_counter() - started,
    )  # fmt: skip


def _train_recorded(
    project: Project, plan: RunPlan, run_id: str, io: LoopIO, trackers: Sequence[str]
) -> tuple[LoopOutcome, Path]:
    """`session.train`, with the run row closed as failed (or interrupted) when anything raises."""
    from tether.rl.loggers import optional_sinks
    from tether.rl.session import train

    metric_sinks = list(io.trackers)
    try:
        run_dir = io.run_dir or project.root
        metric_sinks += optional_sinks(trackers, run_dir=run_dir, run_name=run_id, config=plan.cfg.as_dict())
        return train(project, plan, run_id, replace(io, trackers=metric_sinks))
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
