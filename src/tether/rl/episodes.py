"""One step's responses as the logs and the monitors see them: the GLOBAL batch, gathered from every rank.

Each rank samples its shard of the step's prompts (`tether.rl.global_batch`); the monitors, the text
metrics (`gen/*`, `gold/*`) and samples.jsonl need the whole step. So every rank gathers every rank's
episodes (prompt, response, scores, KL, EOS, gold grade: plain Python values, a few kB) back into the
global draw order, and computes them from that list. Hence:

- the text metrics are the global batch's, not an average of per-rank values (distinct-2 or a
  hedging rate do not average: distinct-2 of two halves is not the distinct-2 of the whole);
- every rank's monitor suite observes the same step and raises the same alerts, so a critical
  alert stops every rank at the same step (a rank that carried on alone would wait forever);
- rank 0 writes the same samples.jsonl, in the same order, as a single process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.monitors import Generation
from tether.monitors.features import TextFeatures
from tether.rl.experience import Experience
from tether.rl.global_batch import Ranks, interleave
from tether.rl.kl import sequence_kl
from tether.rl.metrics import experience_gold, gold_metrics
from tether.rl.prompts import PromptItem

if TYPE_CHECKING:
    from tether.world import GoldGrade


@dataclass(frozen=True)
class Episode:
    """One sampled response and what was measured on it."""

    prompt: PromptItem
    response: str
    rm_score: float
    """The reward model's score as it gave it."""
    score: float
    """The score as used in the reward (`tether.rl.experience.ScoreProcessing`)."""
    kl: float
    """Sequence KL in nats, with the estimator used in the reward."""
    eos: bool
    gold: GoldGrade | None
    """The world's gold grade (sandbox), None without ground truth."""


def local_episodes(exp: Experience) -> list[Episode]:
    """This rank's episodes, in its batch order."""
    columns = zip(
        exp.prompts,
        exp.batch.responses,
        exp.raw_scores.tolist(),
        exp.scores.tolist(),
        sequence_kl(exp.kl, exp.mask).tolist(),  # (B,)
        exp.batch.has_eos.tolist(),
        experience_gold(exp),
        strict=True,
    )
    return [Episode(p, r, raw, score, kl, bool(eos), g) for p, r, raw, score, kl, eos, g in columns]


def step_episodes(exp: Experience, ranks: Ranks, group: int) -> list[Episode]:
    """Every rank's episodes in the global draw order (this rank's own, alone); `group` = k samples."""
    mine = local_episodes(exp)
    if ranks.world_size == 1:
        return mine
    return interleave(ranks.all_gather(mine), group)


def text_metrics(episodes: Sequence[Episode], *, gold: bool, features: TextFeatures) -> dict[str, float]:
    """The ``gen/*`` text features of the step's responses and, in a world with known truth, ``gold/*``."""
    out = features.step_metrics([e.response for e in episodes])
    if gold:
        out |= gold_metrics([e.gold for e in episodes])
    return out


def generations(episodes: Sequence[Episode]) -> list[Generation]:
    """The episodes as the monitor suite reads them."""
    return [
        Generation(e.prompt.text, e.response, e.prompt.stratum, e.rm_score, _utility(e.gold))
        for e in episodes
    ]


def _utility(grade: GoldGrade | None) -> float | None:
    return None if grade is None else grade.utility


def sample_rows(step: int, episodes: Sequence[Episode]) -> list[dict[str, Any]]:
    """samples.jsonl's rows for one step."""
    return [
        {
            "step": step,
            "prompt_key": e.prompt.key,
            "stratum": e.prompt.stratum,
            "prompt": e.prompt.text,
            "response": e.response,
            "rm_score": e.rm_score,
            "score": e.score,
            "kl": e.kl,
            "eos": e.eos,
        }
        for e in episodes
    ]
