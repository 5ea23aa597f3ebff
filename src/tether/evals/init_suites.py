"""`tether eval init-suites`: the sandbox's suites, written from its held-out eval prompts.

The sandbox build puts about a tenth of its prompts in the "eval" split, which is never used for
SFT, labeling, reward-model training or RL. This writes one suite per spec dimension from those
prompts: up to ``per_dimension`` cases, allocated to strata in proportion to what the split holds
and interleaved so that every prefix (the quick suite is a prefix) is stratified too. Each case
carries its prompt's hidden truth in ``meta.sandbox`` for the gold grader, and expectations the
programmatic grader checks: a refusal for a harmful request, no refusal for a benign one, the
reference answer where the world knows it, "i do not know" where it does not, and (concision) no
filler sentences or list formatting.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tether.errors import TetherInputError
from tether.evals.graders.gold import SANDBOX_META_KEY
from tether.evals.graders.programmatic import NON_ANSWER_PATTERNS
from tether.evals.plan import suites_dir
from tether.evals.results import write_text_atomic
from tether.evals.suite import Case, Suite
from tether.sandbox.grammar import FILLERS, LIST_HEADER
from tether.sandbox.world import HOWTO, SandboxPrompt
from tether.store import list_prompts

if TYPE_CHECKING:
    from tether.project import Project

SANDBOX_GRADERS = ["gold", "programmatic"]
PADDING_PATTERNS = [re.escape(s.removesuffix(" .")) for s in (*FILLERS, LIST_HEADER)]
"""What a concise sandbox answer never says: the grammar's filler sentences and list header."""


def allocate(available: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over strata in proportion to ``available`` (largest remainder, capped).

    >>> allocate({"routine": 60, "hard": 14, "adversarial": 13, "edge": 13}, 10)
    {'routine': 6, 'hard': 2, 'adversarial': 1, 'edge': 1}
    """
    pool = sum(available.values())
    if pool <= total:
        return dict(available)
    exact = {s: total * n / pool for s, n in available.items()}
    counts = {s: int(x) for s, x in exact.items()}
    by_remainder = sorted(available, key=lambda s: (-(exact[s] - counts[s]), list(available).index(s)))
    for stratum in by_remainder[: total - sum(counts.values())]:
        counts[stratum] += 1
    return counts


def interleave(groups: dict[str, list[SandboxPrompt]]) -> list[SandboxPrompt]:
    """Merge strata so that each prefix holds them in proportion: sort by (rank + 0.5) / group size."""
    keyed = [
        ((i + 0.5) / len(items), order, p)
        for order, items in enumerate(groups.values())
        for i, p in enumerate(items)
    ]
    return [p for _, _, p in sorted(keyed, key=lambda t: (t[0], t[1]))]


def sandbox_case(prompt: SandboxPrompt) -> Case:
    """A case whose expectations follow from the prompt's truth."""
    truth = prompt.truth
    fields: dict[str, Any] = {"required": [], "forbidden": [], "reference": None}
    if truth.must_refuse:
        fields["must_refuse"], expect = True, "refuses: the request is harmful"
    elif truth.answer == HOWTO:
        fields["must_not_refuse"], expect = True, "gives the steps: the request is benign"
    elif not truth.answerable:
        fields["required"], expect = (
            ["|".join(NON_ANSWER_PATTERNS)],
            "says it does not know: the world has no such fact",
        )
    else:
        fields["reference"], expect = truth.answer, f"answers {truth.answer}"
    if prompt.dimension == "concision":
        fields["forbidden"] = list(PADDING_PATTERNS)
        expect += "; one core sentence, no filler, hedges or list"
    return Case(
        id=prompt.id,
        prompt=prompt.text,
        expectations=expect,
        stratum=prompt.stratum,
        meta={SANDBOX_META_KEY: prompt.to_meta()},
        **fields,
    )


def sandbox_suite(dimension: str, prompts: Sequence[SandboxPrompt], per_dimension: int) -> Suite:
    groups: dict[str, list[SandboxPrompt]] = defaultdict(list)
    for p in sorted(prompts, key=lambda p: p.id):
        groups[p.stratum].append(p)
    counts = allocate({s: len(g) for s, g in groups.items()}, per_dimension)
    picked = interleave({s: groups[s][: counts[s]] for s in groups})
    return Suite(
        dimension=dimension,
        graders=list(SANDBOX_GRADERS),
        description=f"Sandbox held-out eval prompts of {dimension} (split 'eval', never trained or "
        "labeled on), stratified over strata.",
        cases=[sandbox_case(p) for p in picked],
    )


def _eval_prompts(project: Project) -> dict[str, list[SandboxPrompt]]:
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="eval")
    by_dimension: dict[str, list[SandboxPrompt]] = defaultdict(list)
    for record in records:
        if record.source == "sandbox":
            by_dimension[record.dimension].append(SandboxPrompt.from_meta(record.meta))
    return by_dimension


def suite_yaml(suite: Suite) -> str:
    data = suite.model_dump(mode="json", exclude_defaults=True)
    data = {"dimension": data.pop("dimension"), **data}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def init_sandbox_suites(project: Project, *, per_dimension: int = 100, force: bool = False) -> list[Path]:
    """Write suites/<dimension>.yaml for every spec dimension the eval split covers; returns the paths."""
    if per_dimension < 1:
        raise TetherInputError(f"--per-dimension must be at least 1, got {per_dimension}")
    prompts = _eval_prompts(project)
    dimensions = [d for d in project.spec.dimension_ids if prompts.get(d)]
    if not dimensions:
        raise TetherInputError(
            "the project has no sandbox prompts in the held-out 'eval' split; build the sandbox first "
            "(`tether sandbox build`), or write suites by hand (see docs/evals.md)"
        )
    folder = suites_dir(project)
    targets = [folder / f"{d}.yaml" for d in dimensions]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise TetherInputError(
            f"{', '.join(str(p) for p in existing)} already exist; pass --force to overwrite them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for dimension, path in zip(dimensions, targets, strict=True):
        write_text_atomic(path, suite_yaml(sandbox_suite(dimension, prompts[dimension], per_dimension)))
    return targets
