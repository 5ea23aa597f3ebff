"""`tether eval init-suites`: suites written from the world's held-out eval prompts.

The sandbox build puts about a tenth of its prompts in the "eval" split, which is never used for
SFT, labeling, reward-model training or RL. This writes one suite per spec dimension from the cases
the project's world makes of those prompts (`World.eval_cases`; the sandbox's carry their truth for
the gold grader and expectations for the programmatic one): up to ``per_dimension`` cases,
allocated to strata in proportion to what the split holds and interleaved so that every prefix
(the quick suite is a prefix) is stratified too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tether.errors import TetherInputError
from tether.evals.plan import suites_dir
from tether.evals.results import write_text_atomic
from tether.evals.suite import Case, Suite
from tether.world import world_for

if TYPE_CHECKING:
    from tether.project import Project

SANDBOX_GRADERS = ["gold", "programmatic"]


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


def interleave(groups: dict[str, list[Case]]) -> list[Case]:
    """Merge strata so that each prefix holds them in proportion: sort by (rank + 0.5) / group size."""
    keyed = [
        ((i + 0.5) / len(items), order, p)
        for order, items in enumerate(groups.values())
        for i, p in enumerate(items)
    ]
    return [p for _, _, p in sorted(keyed, key=lambda t: (t[0], t[1]))]


def sandbox_suite(dimension: str, cases: Sequence[Case], per_dimension: int) -> Suite:
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in sorted(cases, key=lambda c: c.id):
        groups[case.stratum].append(case)
    counts = allocate({s: len(g) for s, g in groups.items()}, per_dimension)
    picked = interleave({s: groups[s][: counts[s]] for s in groups})
    return Suite(
        dimension=dimension,
        graders=list(SANDBOX_GRADERS),
        description=f"Sandbox held-out eval prompts of {dimension} (split 'eval', never trained or "
        "labeled on), stratified over strata.",
        cases=picked,
    )


def suite_yaml(suite: Suite) -> str:
    data = suite.model_dump(mode="json", exclude_defaults=True)
    data = {"dimension": data.pop("dimension"), **data}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def init_sandbox_suites(project: Project, *, per_dimension: int = 100, force: bool = False) -> list[Path]:
    """Write suites/<dimension>.yaml for every spec dimension the eval split covers; returns the paths."""
    if per_dimension < 1:
        raise TetherInputError(f"--per-dimension must be at least 1, got {per_dimension}")
    prompts = world_for(project).eval_cases(project)
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
