"""Typed configuration of an RL run (`tether rl run`).

Kept free of heavy imports so that the CLI can show defaults without loading torch. Each field's
docstring is its documentation, and its type holds its range and choices (`tether.config_model`);
rules that tie fields together and the derived values (`episodes_per_step`, `minibatch_size`) are in
one place, `__post_init__`. A checkpoint stores `as_dict()` in tether_rl.json; `from_dict` reads
it back, filling keys that older checkpoints lack with today's defaults and dropping unknown ones.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Annotated, Any, Literal

from pydantic import Field

from tether.config_model import config
from tether.spec.model import RLPolicy

log = logging.getLogger(__name__)
AtLeast1 = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]

Algo = Literal["ppo", "rloo"]
KLMode = Literal["adaptive", "fixed"]
ValueInit = Literal["reward_model", "policy"]
ALGOS: tuple[Algo, ...] = ("ppo", "rloo")


@dataclass(frozen=True)
class LoraSettings:
    """A resolved LoRA adapter (`rl.lora` in the spec, `--lora` on the CLI); see `tether.rl.lora`."""

    r: int
    """Rank of each adapter's update."""
    alpha: int
    """The update is the adapter's product times alpha / r."""
    dropout: float
    """Dropout on the adapter's input in training mode."""
    target_modules: str | tuple[str, ...]
    """"all-linear" or the names of the modules that get an adapter."""


@config
class RLConfig:
    """How one RL run samples, scores, penalizes KL and updates the policy."""

    algo: Algo = "ppo"
    """ppo: clipped PPO with a critic and GAE; rloo: REINFORCE leave-one-out, no critic (k1 KL in reward)."""
    steps: AtLeast1 | None = None
    """Total RL steps of the run, counted from the SFT policy (None: the spec's rl.steps_per_run)."""
    batch_size: AtLeast1 = 16
    """Prompts per step, over all processes: a global batch, of which each of N data-parallel
    processes takes batch_size / N (`tether.rl.global_batch`)."""
    samples_per_prompt: AtLeast1 = 2
    """Responses sampled per prompt (the RLOO group k; at least 2 for rloo)."""
    max_new_tokens: AtLeast1 = 48
    """Longest response in tokens; a response that hits it without EOS is truncated."""
    temperature: Positive = 1.0
    """Sampling temperature; log-probabilities are computed from logits / temperature to match it."""
    lr: Positive = 1e-5
    """AdamW learning rate of the policy (and of the critic, which shares the optimizer)."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """constant, or linear decay to zero over `steps` (one scheduler step per RL step)."""
    weight_decay: NonNegative = 0.0
    """AdamW weight decay."""
    ppo_epochs: AtLeast1 = 4
    """Passes over each step's rollouts (TRL's num_ppo_epochs)."""
    minibatches: AtLeast1 = 2
    """Minibatches per pass; the step's episodes must split evenly into them."""
    clip_eps: NonNegative = 0.2
    """PPO ratio clip ε."""
    value_clip: NonNegative = 0.2
    """PPO2 value clip: how far the critic may move from its rollout value before the loss stops paying."""
    vf_coef: NonNegative = 0.1
    """Weight of the value loss in the summed loss (TRL's default)."""
    gamma: Share = 1.0
    """Discount; 1 for one-response episodes (Ziegler et al. 2019)."""
    lam: Share = 0.95
    """GAE λ."""
    kl: KLMode = "adaptive"
    """adaptive: Ziegler et al.'s proportional controller targeting the spec's budget; fixed: constant β."""
    init_kl_coef: NonNegative = 0.15
    """Initial (or fixed) β of the KL penalty (Ziegler et al.: 0.15 with a 6-nat target)."""
    kl_horizon: AtLeast1 = 10_000
    """Adaptive controller horizon, in episodes."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    """Per-token KL in the reward; k1 is what the budget is the expectation of."""
    whiten: bool = True
    """Whiten advantages over the batch (PPO: token advantages; RLOO: sequence advantages)."""
    normalize_scores: bool = True
    """Standardize RM scores with the mean and std measured on SFT samples at step 0 (Ziegler et al.)."""
    score_clip: NonNegative = 0.0
    """Clip (normalized) scores to ±score_clip (PPO-max); 0 turns it off."""
    missing_eos_penalty: NonNegative = 0.0
    """Subtracted from the score of a response cut off without EOS (TRL's missing_eos_penalty); 0: off."""
    grad_clip: NonNegative = 1.0
    """Clip the gradient's global norm (0 turns clipping off)."""
    seed: int = 0
    """Seed of sampling, prompt order and minibatch order."""
    seed_per_prompt: bool = False
    """Seed each prompt's k samples from (seed, step, prompt key and place in the step's draw), so that
    the same run draws the same tokens on any number of processes; generates one prompt group at a
    time, which is slower."""
    sample_every: AtLeast1 = 10
    """Save the step's generations to samples.jsonl every this many steps (and on the last step)."""
    save_every: Annotated[int, Field(ge=0)] = 50
    """Write a resumable checkpoint every this many steps (0: only the final one)."""
    baseline_prompts: Annotated[int, Field(ge=2)] = 64
    """Prompts the SFT policy answers at step 0 for the monitors' baseline and score normalization."""
    value_init: ValueInit = "reward_model"
    """Critic init: the reward model's backbone and head (classic recipe) or the SFT policy's backbone.
    Not used with LoRA, where the PPO critic is a value head on the policy (`tether.rl.lora`)."""
    eval_every: Annotated[int, Field(ge=0)] = 0
    """Run the quick behavioral suite every this many steps and log its mean as eval/score (0: off)."""
    eval_suite: str | None = None
    """The suite (file stem) the quick eval runs; None runs every suite."""
    lora: bool | None = None
    """Train a LoRA adapter instead of every policy weight (None: the spec's rl.lora.enabled)."""
    lora_r: AtLeast1 | None = None
    """LoRA rank (None: the spec's rl.lora.r)."""
    lora_alpha: AtLeast1 | None = None
    """LoRA scale: the adapter's product is multiplied by alpha / r (None: the spec's rl.lora.alpha)."""
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] | None = None
    """Dropout on the adapters' input during updates (None: the spec's rl.lora.dropout)."""
    lora_target_modules: str | tuple[str, ...] | None = None
    """"all-linear" or module names that get an adapter (None: the spec's rl.lora.target_modules)."""
    episodes_per_step: int = field(init=False, default=0)
    """Derived: batch_size x samples_per_prompt responses per step (over all processes)."""
    minibatch_size: int = field(init=False, default=0)
    """Derived: episodes_per_step / minibatches (over all processes)."""

    def __post_init__(self) -> None:
        if isinstance(self.lora_target_modules, list):  # read back from JSON
            object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        problems = _problems(self)
        if problems:
            # A plain ValueError: the CLI turns it into a TetherInputError naming the option.
            raise ValueError("; ".join(problems))
        episodes = self.batch_size * self.samples_per_prompt
        object.__setattr__(self, "episodes_per_step", episodes)
        object.__setattr__(self, "minibatch_size", episodes // self.minibatches)

    def resolve(self, policy: RLPolicy) -> RLConfig:
        """This config with `steps` and the LoRA settings filled from the spec where unset."""
        spec: dict[str, Any] = {
            "steps": policy.steps_per_run,
            "lora": policy.lora.enabled,
            "lora_r": policy.lora.r,
            "lora_alpha": policy.lora.alpha,
            "lora_dropout": policy.lora.dropout,
            "lora_target_modules": policy.lora.target_modules,
        }
        unset = {name: value for name, value in spec.items() if getattr(self, name) is None}
        return replace(self, **unset) if unset else self

    @property
    def lora_settings(self) -> LoraSettings | None:
        """The adapter to train, or None for full fine-tuning."""
        if not self.lora:
            return None
        if self.lora_r is None or self.lora_alpha is None or self.lora_dropout is None:
            raise ValueError("the LoRA settings are unset; call resolve(spec.rl) first")
        return LoraSettings(
            self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_target_modules or "all-linear"
        )

    @property
    def single_pass(self) -> bool:
        """One gradient step per batch (one epoch, one minibatch): RLOO then reuses the rollout's
        policy forward for the update (`collect_experience_with_graph`)."""
        return self.ppo_epochs == 1 and self.minibatches == 1

    @property
    def total_steps(self) -> int:
        if self.steps is None:
            raise ValueError("steps is unset; call resolve(spec.rl) first")
        return self.steps

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RLConfig:
        """A stored config; missing keys take today's defaults, unknown and derived keys are dropped.
        A config stored before LoRA existed was full fine-tuning, whatever the spec says now."""
        known = {f.name for f in fields(cls) if f.init}
        derived = {f.name for f in fields(cls) if not f.init}
        unknown = sorted(set(data) - known - derived)
        if unknown:
            log.warning("stored RL config: ignoring settings this version lacks: %s", ", ".join(unknown))
        return cls(**{"lora": False, **{key: value for key, value in data.items() if key in known}})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _problems(cfg: RLConfig) -> list[str]:
    """The rules that tie fields together; each field's own range and choices are in its type."""
    out = []
    if cfg.algo == "rloo" and cfg.samples_per_prompt < 2:
        out.append("rloo needs samples_per_prompt >= 2 (the leave-one-out baseline needs other samples)")
    if (cfg.batch_size * cfg.samples_per_prompt) % cfg.minibatches:
        out.append(
            f"batch_size x samples_per_prompt = {cfg.batch_size * cfg.samples_per_prompt} episodes "
            f"do not split into {cfg.minibatches} equal minibatches"
        )
    if cfg.kl == "adaptive" and cfg.init_kl_coef == 0:
        out.append("init_kl_coef must be > 0 with the adaptive controller, got 0")
    modules = cfg.lora_target_modules
    if modules is not None and (modules == () or (isinstance(modules, str) and modules != "all-linear")):
        out.append(f'lora_target_modules must be "all-linear" or a list of module names, got {modules!r}')
    return out
