"""Step (8): the namespaced metrics every RL step logs, which the hacking monitors read.

- ``objective/kl``: sequence KL in nats (k1 summed over each response, mean over the batch) — the
  unit of the spec's budget; ``objective/kl_k3`` the same with the low-variance k3 estimator;
- ``objective/kl_coef`` (β this step), ``objective/rm_score`` (raw RM score, mean),
  ``objective/score`` (as used in the reward), ``objective/rlhf_reward`` (score − β·KL);
- ``policy/entropy`` (mean token entropy, nats), ``policy/clipfrac``, ``policy/approx_kl``;
- ``val/explained_variance`` (PPO); ``gen/*`` text features (`tether.monitors.features`) plus
  ``gen/tokens_mean`` and ``gen/eos_rate``; ``gold/utility`` and ``gold/<dimension>`` (a world with
  known truth, the sandbox: the prompt's source names its world, which grades it).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from tether.rl.experience import Experience
from tether.rl.kl import kl_per_token, sequence_kl
from tether.rl.losses import TokenMean
from tether.rl.masked import masked_mean, masked_var
from tether.rl.prompts import PromptItem
from tether.world import load_world, world_names

if TYPE_CHECKING:
    from tether.world import GoldGrade

Variance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x, mask) -> 0-dim unbiased variance of the masked entries."""


def rollout_metrics(exp: Experience, beta: float, *, token_mean: TokenMean = masked_mean) -> dict[str, float]:
    """Metrics measured on this rank's rollouts, before the update. Each is a mean per episode (every
    rank holds as many episodes, so their average over ranks is the global batch's) or, for the
    entropy, a token mean taken by `token_mean` (a rank's share of the global token mean, see
    `tether.rl.global_batch`). The text and gold metrics are the gathered step's
    (`tether.rl.episodes.text_metrics`)."""
    mask = exp.mask  # (B, R)
    kl_k1 = sequence_kl(kl_per_token(exp.logprobs, exp.ref_logprobs, "k1"), mask)  # (B,)
    kl_k3 = sequence_kl(kl_per_token(exp.logprobs, exp.ref_logprobs, "k3"), mask)  # (B,)
    kl_reward = sequence_kl(exp.kl, mask)  # (B,) the estimator used in the reward
    return {
        "objective/kl": kl_k1.mean().item(),
        "objective/kl_k3": kl_k3.mean().item(),
        "objective/kl_coef": beta,
        "objective/rm_score": exp.raw_scores.mean().item(),
        "objective/score": exp.scores.mean().item(),
        "objective/rlhf_reward": (exp.scores - beta * kl_reward).mean().item(),
        "policy/entropy": token_mean(exp.entropy, mask).item(),
        "gen/tokens_mean": mask.float().sum(dim=1).mean().item(),
        "gen/eos_rate": exp.batch.has_eos.float().mean().item(),
    }


def gold_grades(prompts: Sequence[PromptItem], responses: Sequence[str]) -> list[GoldGrade | None]:
    """Each response's gold grade by the world its prompt's source names ("sandbox"); None for
    prompts from elsewhere (imported ones: no ground truth)."""
    worlds = {source: load_world(source) for source in {p.source for p in prompts} & set(world_names())}
    grades: list[GoldGrade | None] = []
    for p, r in zip(prompts, responses, strict=True):
        world = worlds.get(p.source)
        grades.append(None if world is None else world.grade(world.prompt_truth(dict(p.meta)), r))
    return grades


def experience_gold(exp: Experience) -> list[GoldGrade | None]:
    """The step's gold grades, graded on first use and kept on the experience."""
    if exp.gold is None:
        exp.gold = gold_grades(exp.prompts, exp.batch.responses)
    return exp.gold


def gold_metrics(grades: Sequence[GoldGrade | None]) -> dict[str, float]:
    """Gold: mean ``gold/utility``, ``gold/<dimension>`` and ``gold/parsed`` over the graded
    responses of the batch; {} when none has ground truth."""
    graded = [g for g in grades if g is not None]
    if not graded:
        return {}
    dimensions = [k for k in graded[0].as_dict() if k not in ("utility", "parsed")]
    out = {"gold/utility": statistics.fmean(g.utility for g in graded)}
    out |= {f"gold/{d}": statistics.fmean(g.dimension(d) for g in graded) for d in dimensions}
    out["gold/parsed"] = statistics.fmean(float(g.parsed) for g in graded)
    return out


def explained_variance_metric(
    values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, variance: Variance = masked_var
) -> dict[str, float]:
    """`val/explained_variance`, its variances taken by `variance` (the global batch's, with N ranks)."""
    from tether.rl.losses import explained_variance

    return {"val/explained_variance": explained_variance(values, returns, mask, variance=variance)}
