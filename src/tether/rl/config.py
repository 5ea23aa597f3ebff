"""Typed configuration of an RL run (`tether rl run`).

Kept free of heavy imports so that the CLI can show defaults without loading torch. Each field's
docstring is its documentation; derived values (`episodes_per_step`, `minibatch_size`) are computed
in one place, `__post_init__`. A checkpoint stores `as_dict()` in tether_rl.json; `from_dict` reads
it back, filling keys that older checkpoints lack with today's defaults and dropping unknown ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from tether.spec.model import RLPolicy

Algo = Literal["ppo", "rloo"]
KLMode = Literal["adaptive", "fixed"]
ValueInit = Literal["reward_model", "policy"]
ALGOS: tuple[Algo, ...] = ("ppo", "rloo")


@dataclass(frozen=True)
class RLConfig:
    """How one RL run samples, scores, penalizes KL and updates the policy."""

    algo: Algo = "ppo"
    """ppo: clipped PPO with a critic and GAE; rloo: REINFORCE leave-one-out, no critic (k1 KL in reward)."""
    steps: int | None = None
    """Total RL steps of the run, counted from the SFT policy (None: the spec's rl.steps_per_run)."""
    batch_size: int = 16
    """Prompts per step."""
    samples_per_prompt: int = 2
    """Responses sampled per prompt (the RLOO group k; at least 2 for rloo)."""
    max_new_tokens: int = 48
    """Longest response in tokens; a response that hits it without EOS is truncated."""
    temperature: float = 1.0
    """Sampling temperature; log-probabilities are computed from logits / temperature to match it."""
    lr: float = 1e-5
    """AdamW learning rate of the policy (and of the critic, which shares the optimizer)."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """constant, or linear decay to zero over `steps` (one scheduler step per RL step)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    ppo_epochs: int = 4
    """Passes over each step's rollouts (TRL's num_ppo_epochs)."""
    minibatches: int = 2
    """Minibatches per pass; the step's episodes must split evenly into them."""
    clip_eps: float = 0.2
    """PPO ratio clip ε."""
    value_clip: float = 0.2
    """PPO2 value clip: how far the critic may move from its rollout value before the loss stops paying."""
    vf_coef: float = 0.1
    """Weight of the value loss in the summed loss (TRL's default)."""
    gamma: float = 1.0
    """Discount; 1 for one-response episodes (Ziegler et al. 2019)."""
    lam: float = 0.95
    """GAE λ."""
    kl: KLMode = "adaptive"
    """adaptive: Ziegler et al.'s proportional controller targeting the spec's budget; fixed: constant β."""
    init_kl_coef: float = 0.15
    """Initial (or fixed) β of the KL penalty (Ziegler et al.: 0.15 with a 6-nat target)."""
    kl_horizon: int = 10_000
    """Adaptive controller horizon, in episodes."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    """Per-token KL in the reward; k1 is what the budget is the expectation of."""
    whiten: bool = True
    """Whiten advantages over the batch (PPO: token advantages; RLOO: sequence advantages)."""
    normalize_scores: bool = True
    """Standardize RM scores with the mean and std measured on SFT samples at step 0 (Ziegler et al.)."""
    score_clip: float = 0.0
    """Clip (normalized) scores to ±score_clip (PPO-max); 0 turns it off."""
    missing_eos_penalty: float = 0.0
    """Subtracted from the score of a response cut off without EOS (TRL's missing_eos_penalty); 0: off."""
    grad_clip: float = 1.0
    """Clip the gradient's global norm (0 turns clipping off)."""
    seed: int = 0
    """Seed of sampling, prompt order and minibatch order."""
    sample_every: int = 10
    """Save the step's generations to samples.jsonl every this many steps (and on the last step)."""
    save_every: int = 50
    """Write a resumable checkpoint every this many steps (0: only the final one)."""
    baseline_prompts: int = 64
    """Prompts the SFT policy answers at step 0 for the monitors' baseline and score normalization."""
    value_init: ValueInit = "reward_model"
    """Critic init: the reward model's backbone and head (classic recipe) or the SFT policy's backbone."""
    eval_every: int = 0
    """Run the quick behavioral suite every this many steps and log its mean as eval/score (0: off)."""
    eval_suite: str | None = None
    """The suite (file stem) the quick eval runs; None runs every suite."""
    episodes_per_step: int = field(init=False, default=0)
    """Derived: batch_size x samples_per_prompt responses per step."""
    minibatch_size: int = field(init=False, default=0)
    """Derived: episodes_per_step / minibatches."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            # A plain ValueError: the CLI turns it into a TetherInputError naming the option.
            raise ValueError("; ".join(problems))
        episodes = self.batch_size * self.samples_per_prompt
        object.__setattr__(self, "episodes_per_step", episodes)
        object.__setattr__(self, "minibatch_size", episodes // self.minibatches)

    def resolve(self, policy: RLPolicy) -> RLConfig:
        """This config with `steps` filled from the spec when unset."""
        return self if self.steps is not None else replace(self, steps=policy.steps_per_run)

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
        """A stored config; missing keys take today's defaults, unknown and derived keys are dropped."""
        known = {f.name for f in fields(cls) if f.init}
        return cls(**{key: value for key, value in data.items() if key in known})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _problems(cfg: RLConfig) -> list[str]:
    positive_ints = ("batch_size", "samples_per_prompt", "max_new_tokens", "ppo_epochs", "minibatches")
    out = [f"{n} must be at least 1, got {getattr(cfg, n)}" for n in positive_ints if getattr(cfg, n) < 1]
    choices = {
        "algo": ALGOS,
        "kl": ("adaptive", "fixed"),
        "kl_estimator": ("k1", "k2", "k3"),
        "value_init": ("reward_model", "policy"),
        "lr_schedule": ("constant", "linear"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            out.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.steps is not None and cfg.steps < 1:
        out.append(f"steps must be at least 1, got {cfg.steps}")
    if cfg.algo == "rloo" and cfg.samples_per_prompt < 2:
        out.append("rloo needs samples_per_prompt >= 2 (the leave-one-out baseline needs other samples)")
    if (cfg.batch_size * cfg.samples_per_prompt) % cfg.minibatches:
        out.append(
            f"batch_size x samples_per_prompt = {cfg.batch_size * cfg.samples_per_prompt} episodes "
            f"do not split into {cfg.minibatches} equal minibatches"
        )
    if not cfg.lr > 0 or not cfg.temperature > 0:
        out.append(f"lr and temperature must be positive, got {cfg.lr} and {cfg.temperature}")
    if cfg.init_kl_coef < 0 or (cfg.kl == "adaptive" and cfg.init_kl_coef == 0):
        out.append(f"init_kl_coef must be >= 0 (> 0 with the adaptive controller), got {cfg.init_kl_coef}")
    nonneg = ("clip_eps", "value_clip", "vf_coef", "score_clip", "missing_eos_penalty", "grad_clip")
    out += [f"{n} must be non-negative, got {getattr(cfg, n)}" for n in nonneg if getattr(cfg, n) < 0]
    out += [
        f"{n} must be in [0, 1], got {getattr(cfg, n)}"
        for n in ("gamma", "lam")
        if not 0 <= getattr(cfg, n) <= 1
    ]
    if cfg.eval_every < 0:
        out.append(f"eval_every must be >= 0 (0 turns the quick eval off), got {cfg.eval_every}")
    if cfg.sample_every < 1 or cfg.save_every < 0 or cfg.baseline_prompts < 2 or cfg.kl_horizon < 1:
        out.append("sample_every and kl_horizon must be >= 1, save_every >= 0 and baseline_prompts >= 2")
    return out
