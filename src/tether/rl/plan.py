"""Step (1) of an RL run: resolve and check everything it consumes before any model loads.

The SFT policy, the reward model and its gate (refused unless passed or --force), the pool prompts,
a checkpoint to resume (`--from`) or one whose policy a new run starts from (`--init-from`), and the
quick eval suites; `RunPlan` carries them to the rest of the run (`tether.rl.run`, `tether.rl.session`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.artifacts import (
    POLICY_KIND,
    REWARD_MODEL_KIND,
    GateRecord,
    ModelInput,
    is_sandbox,
    require_passed_gate,
    resolve,
)
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.rl.checkpoint import ADAPTER_DIR, LoadedCheckpoint, load_checkpoint
from tether.rl.config import RLConfig
from tether.rl.inputs import pool_prompts, resolve_checkpoint
from tether.rl.prompts import PromptItem

if TYPE_CHECKING:
    from pathlib import Path

    from tether.evals.plan import SuitePlan
    from tether.project import Project


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
        sft = ModelInput.of(resolve(project, kind=POLICY_KIND, explicit=policy))
        rm_default = None
    if reward_model is not None or rm_default is None:
        rm = ModelInput.of(resolve(project, kind=REWARD_MODEL_KIND, explicit=reward_model))
    else:
        rm = rm_default
    gate = require_passed_gate(project, rm, force=force)
    prompts, sandbox = pool_prompts(project), is_sandbox(project)
    quick = None
    if cfg.eval_every:
        from tether.evals.quick import plan_quick_eval

        quick = plan_quick_eval(project, suite=cfg.eval_suite, sandbox=sandbox)
    init = _init_policy(project, init_from, sft) if init_from is not None else None
    if init is not None:
        _check_lora_source(init.path, cfg, "--init-from")
    if resume is not None and resume.meta.get("init_from"):
        # a resumed warm start keeps its origin for the lineage (its weights come from the checkpoint)
        init = ModelInput.from_dict(resume.meta["init_from"], "checkpoint")
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
    _check_lora_source(resume.path, cfg, "--from")


def _check_lora_source(path: Path, cfg: RLConfig, option: str) -> None:
    """A LoRA run continues an adapter, so it resumes or warm-starts only from a LoRA checkpoint;
    a full-fine-tuning run resumes only from a full one (its optimizer state is for every weight)."""
    has_adapter = (path / ADAPTER_DIR).is_dir()
    if cfg.lora and not has_adapter:
        raise TetherInputError(
            f"{option} {path}: a full-fine-tuning checkpoint has no LoRA adapter to continue; drop --lora "
            "(with LoRA the reference is the adapter-free SFT base, which this policy is not)"
        )
    if option == "--from" and not cfg.lora and has_adapter:
        raise TetherInputError(f"--from {path}: a LoRA checkpoint resumes with LoRA; drop --no-lora")
    settings = cfg.lora_settings
    if settings is not None:
        from tether.rl.lora import check_adapter

        check_adapter(path / ADAPTER_DIR, settings)


def _stored_input(entry: dict[str, Any], what: str) -> ModelInput:
    stored = ModelInput.from_dict(entry, "checkpoint")
    if not stored.path.is_dir():
        raise TetherInputError(
            f"the checkpoint's {what} {stored.path} is gone; the run cannot be rebuilt without it"
        )
    return stored
