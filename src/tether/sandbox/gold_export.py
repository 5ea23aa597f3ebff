"""A held-out preference set labeled by the gold grader: `tether sandbox gold-pairs`.

    tether sandbox gold-pairs --out exports/gold --samples 8

Pairs of SFT samples on the world's eval-split prompts (never planned, labeled or trained on),
each labeled by gold utility (pairs gold calls equal are dropped). It is written as a normal export
whose test split holds the pairs, so `tether rm eval --data exports/gold` scores any reward model
against the truth on thousands of pairs instead of the ~150 per dimension a 10% held-out split of
rater labels gives: narrow enough intervals to compare two reward models on one dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherInputError
from tether.hf import load_causal_lm
from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import write_export
from tether.project import Project
from tether.sandbox.gold import grade
from tether.sandbox.policy import sample_responses
from tether.sandbox.world import SandboxPrompt
from tether.store import list_prompts


@dataclass(frozen=True)
class GoldPairs:
    out: Path
    prompts: int
    pairs: int
    dropped_equal: int
    by_dimension: dict[str, int]


def eval_prompts(project: Project) -> list[SandboxPrompt]:
    """The project's sandbox prompts in the eval split (held out from every other stage)."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="eval")
    prompts = [SandboxPrompt.from_meta(r.meta) for r in records if r.source == "sandbox"]
    if not prompts:
        raise TetherInputError(
            "the project has no eval-split sandbox prompts; run 'tether sandbox build' first"
        )
    return prompts


def gold_row(prompt: SandboxPrompt, a: str, b: str, index: int) -> PreferenceRow | None:
    """The pair labeled by gold utility, or None when gold sees no difference."""
    ua, ub = grade(prompt, a).utility, grade(prompt, b).utility
    if ua == ub:
        return None
    chosen, rejected = (a, b) if ua > ub else (b, a)
    return PreferenceRow(
        prompt=prompt.text,
        chosen=chosen,
        rejected=rejected,
        dimension=prompt.dimension,
        stratum=prompt.stratum,
        origin="gold",
        margin=abs(ua - ub),
        agreement=1.0,
        n_votes=0,
        rater_ids=(),
        rater_names=("gold",),
        task_id=-(index + 1),  # no task: these pairs were never labeled by anyone
    )


def write_gold_pairs(project: Project, *, policy_dir: Path, out: Path, samples: int, seed: int) -> GoldPairs:
    """Sample `samples` responses per eval prompt (paired off in sampling order), label by gold, write."""
    if samples < 2 or samples % 2:
        raise TetherInputError(f"--samples must be an even number of at least 2, got {samples}")
    prompts = eval_prompts(project)
    model, tokenizer = load_causal_lm(policy_dir)
    texts = [p.text for p in prompts]
    draws = [sample_responses(model, tokenizer, texts, seed=seed + k) for k in range(samples)]
    rows: list[PreferenceRow] = []
    equal = 0
    for k in range(0, samples, 2):
        for i, prompt in enumerate(prompts):
            row = gold_row(prompt, draws[k][i], draws[k + 1][i], len(rows) + equal)
            if row is None:
                equal += 1
            else:
                rows.append(row)
    if not rows:
        raise TetherInputError("gold saw no difference in any sampled pair; sample more (--samples)")
    manifest = {"spec_hash": project.spec_hash, "variant": "gold-labeled eval-split pairs", "seed": seed}
    write_export(out, [], rows, fmt="jsonl", manifest=manifest)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.dimension] = counts.get(row.dimension, 0) + 1
    return GoldPairs(out, len(prompts), len(rows), equal, counts)
