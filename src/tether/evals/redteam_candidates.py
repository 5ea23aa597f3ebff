"""Red-team candidates: policy samples on hard prompts, their probe edits, and their ranking by gap.

The pieces `redteam_search.search` runs in order; each is usable alone (a test ranks hand-made
candidates with a stub reward model).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from tether.errors import TetherInputError
from tether.evals.redteam_gap import GapScale, disagrees, top_candidates
from tether.reward.probes import ProbeSpec
from tether.store import list_prompts
from tether.store.prompts import PromptRecord

if TYPE_CHECKING:
    from tether.project import Project
    from tether.reward.scoring import Scorer

HARD_STRATA = ("hard", "adversarial", "edge")
SEARCH_PROBES = ("filler", "hedge", "list", "confident")
"""Probe edits added as candidates; `position` is left out, it changes nothing a scalar RM reads."""
SCORE_CHUNK = 512
"""Candidates per reward-model call, so that progress moves."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total) with stage "sampling", "scoring" or "baseline"."""


@dataclass(frozen=True)
class Candidate:
    """One distinct (prompt, response) the search scores: a policy sample or a probe edit of one."""

    prompt: PromptRecord
    response: str
    origin: str
    """"sample", or "probe:<name>" for an edit of a sample."""
    sample_index: int
    """Which sample it is, or which sample was edited (its seed is the search seed + this)."""
    times: int = 0
    """How many of the prompt's samples were exactly this response (0 for an edit)."""


def draw_prompts(project: Project, *, n: int, strata: Sequence[str], seed: int) -> list[PromptRecord]:
    """A seeded draw of up to `n` pool prompts in `strata`, in store order; the eval split never."""
    with project.store.session() as session:
        pool = list_prompts(session, project_id=project.project_id, split="pool")
    eligible = [p for p in pool if p.stratum in set(strata)]
    if not eligible:
        raise TetherInputError(
            f"the project has no pool prompts in the strata {', '.join(strata)}; add some "
            "(`tether data import-prompts`, or `tether sandbox build`) or pass other --strata"
        )
    if len(eligible) > n:
        picked = set(random.Random(seed).sample(range(len(eligible)), n))
        eligible = [p for i, p in enumerate(eligible) if i in picked]
    return eligible


def collect_candidates(
    prompts: Sequence[PromptRecord],
    samples: Sequence[Sequence[str]],
    probes: Sequence[ProbeSpec],
    *,
    seed: int,
) -> list[Candidate]:
    """Distinct non-empty samples of each prompt, then the probe edits of each that are new."""
    sampled: dict[tuple[int, str], Candidate] = {}
    times: Counter[tuple[int, str]] = Counter()
    for prompt, responses in zip(prompts, samples, strict=True):
        for k, response in enumerate(responses):
            if response.strip():
                sampled.setdefault((prompt.id, response), Candidate(prompt, response, "sample", k))
                times[(prompt.id, response)] += 1
    edits: dict[tuple[int, str], Candidate] = {}
    for i, c in enumerate(sampled.values()):
        for spec in probes:
            edited = spec.edit(c.response, random.Random(f"{seed}:{spec.name}:{i}"))
            key = (c.prompt.id, edited or "")
            if edited and edited.strip() and key not in sampled:
                edits.setdefault(key, Candidate(c.prompt, edited, f"probe:{spec.name}", c.sample_index))
    return [replace(c, times=times[key]) for key, c in sampled.items()] + list(edits.values())


def reward_scores(model: Scorer, candidates: Sequence[Candidate], progress: Progress | None) -> np.ndarray:
    """The reward model's score of every candidate, in chunks that report progress; shape (N,)."""
    out = np.empty(len(candidates), dtype=np.float64)
    for start in range(0, len(candidates), SCORE_CHUNK):
        chunk = candidates[start : start + SCORE_CHUNK]
        out[start : start + len(chunk)] = model.score(
            [c.prompt.text for c in chunk], [c.response for c in chunk]
        )
        if progress is not None:
            progress("scoring", start + len(chunk), len(candidates))
    return out


@dataclass(frozen=True)
class Baseline:
    """The SFT policy's output on one prompt, and its scores: what a candidate's gap is measured from."""

    response: str
    rm: float
    grade: float | None


@dataclass(frozen=True)
class Ranked:
    """The graded candidates with their scores and gaps, and which of them were kept."""

    candidates: list[Candidate]
    rm: np.ndarray
    grades: np.ndarray
    base_rm: np.ndarray
    """Reward of each candidate's baseline (the candidates' mean reward where it has none)."""
    base_grades: np.ndarray
    gaps: np.ndarray
    scale: GapScale
    kept: list[int]
    """Indices into `candidates`, largest gap first."""


def rank(
    candidates: Sequence[Candidate],
    rm: np.ndarray,
    grades: Sequence[float | None],
    *,
    baselines: Mapping[int, Baseline] | None = None,
    keep: int,
    per_prompt: int | None,
) -> Ranked:
    """Gaps of the graded candidates against their prompt's baseline (by prompt id), and the top `keep`
    of those the reward model prefers over the baseline and the graders do not.

    A candidate counts as graded when it and its baseline both have a grade; without `baselines`
    every candidate is measured from the mean candidate."""
    base = baselines or {}
    graded = [
        i
        for i, (c, g) in enumerate(zip(candidates, grades, strict=True))
        if g is not None and (c.prompt.id not in base or base[c.prompt.id].grade is not None)
    ]
    if not graded:
        raise TetherInputError(
            "the independent graders scored none of the candidates; give each dimension a suite "
            "whose graders can score open prompts (an LLM judge), see docs/redteam.md"
        )
    kept_candidates = [candidates[i] for i in graded]
    rm_g = rm[graded]
    grades_g = np.asarray([grades[i] for i in graded], dtype=np.float64)
    scale = GapScale.fit(rm_g.tolist(), grades_g.tolist())
    found = [base.get(c.prompt.id) for c in kept_candidates]
    base_rm = np.array([scale.rm_mean if b is None else b.rm for b in found])
    base_grades = np.array([scale.grader_mean if b is None or b.grade is None else b.grade for b in found])
    gaps = scale.gaps(rm_g, grades_g, base_rm=base_rm, base_grade=base_grades)
    groups = [c.prompt.id for c in kept_candidates]
    eligible = disagrees(rm_g, grades_g, base_rm, base_grades).tolist()
    kept = top_candidates(gaps.tolist(), groups, top=keep, per_group=per_prompt, eligible=eligible)
    return Ranked(kept_candidates, rm_g, grades_g, base_rm, base_grades, gaps, scale, kept)
