"""Stratified batch planning: `tether label plan --n N`.

A batch meets the spec's quotas exactly: the hard-case share across the `hard`,
`adversarial` and `edge` strata, and a minimum share per dimension. When the pool cannot
meet a quota the plan fails with the shortfall per stratum and dimension; it never
under-delivers silently.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tether.errors import TetherInputError
from tether.spec.model import LabelingPolicy
from tether.store.prompts import PromptRecord

Cell = tuple[str, str]
"""(dimension, stratum group): the group is 'routine' or 'hard' (hard, adversarial, edge)."""
Generate = Callable[[Sequence[PromptRecord]], list[tuple[str, str]]]
"""Two candidate responses for each prompt."""

HARD_STRATA = ("hard", "adversarial", "edge")
OVERSAMPLE = 1.25
"""Extra prompts drawn per cell, because identical response pairs are dropped."""
MAX_ROUNDS = 4


def group_of(stratum: str) -> str:
    return "hard" if stratum in HARD_STRATA else "routine"


def plan_quotas(n: int, dimensions: Sequence[str], policy: LabelingPolicy) -> dict[Cell, int]:
    """Tasks per (dimension, group): the hard share of `n`, spread evenly over dimensions.

    Even spreading gives every dimension 1/len(dimensions) of the batch (±1 task), which the
    spec's minimum dimension share must not exceed.
    """
    if n < 1:
        raise TetherInputError(f"--n must be at least 1, got {n}")
    if policy.min_dimension_share * len(dimensions) > 1 + 1e-9:
        raise TetherInputError(
            f"labeling.min_dimension_share {policy.min_dimension_share} cannot hold for "
            f"{len(dimensions)} dimensions at once"
        )
    n_hard = round(n * policy.hard_case_share)
    k = len(dimensions)
    quotas: dict[Cell, int] = {}
    # The routine remainder starts where the hard remainder stopped, so dimensions stay within one task.
    for group, total, start in (("hard", n_hard, 0), ("routine", n - n_hard, n_hard % k)):
        base, extra = divmod(total, k)
        for i, dim in enumerate(dimensions):
            quotas[(dim, group)] = base + (1 if (i - start) % k < extra else 0)
    return quotas


def dimension_weights(
    dimensions: Sequence[str], focus: Mapping[str, float], share: float, floor: float
) -> dict[str, float]:
    """Each dimension's share of a batch whose `share` is steered toward `focus` (weights by dimension).

    The unsteered part is spread evenly; the steered part follows the focus weights. Every dimension
    keeps at least `floor` (the spec's minimum dimension share): what the floor adds is taken from the
    dimensions above it, in proportion to their excess, so the shares still sum to 1.

    >>> w = dimension_weights(["a", "b", "c", "d"], {"a": 1.0}, 0.4, 0.1)
    >>> {d: round(v, 3) for d, v in w.items()}
    {'a': 0.55, 'b': 0.15, 'c': 0.15, 'd': 0.15}
    """
    k = len(dimensions)
    total = sum(max(0.0, focus.get(d, 0.0)) for d in dimensions)
    if total <= 0 or share <= 0:
        return {d: 1 / k for d in dimensions}
    raw = {d: (1 - share) / k + share * max(0.0, focus.get(d, 0.0)) / total for d in dimensions}
    short = {d: floor - v for d, v in raw.items() if v < floor}
    if not short:
        return raw
    excess = {d: v - floor for d, v in raw.items() if d not in short}
    room = sum(excess.values())
    need = sum(short.values())
    return {d: floor if d in short else raw[d] - need * excess[d] / room for d in dimensions}


def _allocate(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of `total` over `weights` (which sum to 1)."""
    exact = {d: total * w for d, w in weights.items()}
    out = {d: int(v) for d, v in exact.items()}
    by_remainder = sorted(weights, key=lambda d: (-(exact[d] - out[d]), list(weights).index(d)))
    for d in by_remainder[: total - sum(out.values())]:
        out[d] += 1
    return out


def focus_quotas(
    n: int, dimensions: Sequence[str], policy: LabelingPolicy, focus: Mapping[str, float], share: float
) -> dict[Cell, int]:
    """`plan_quotas` with `share` of the batch steered to the focus dimensions (the loop's diagnosis).

    The hard-case share stays the spec's in every dimension; only the split between dimensions moves.
    """
    if not focus or share <= 0:
        return plan_quotas(n, dimensions, policy)
    plan_quotas(n, dimensions, policy)  # the same input checks
    unknown = sorted(set(focus) - set(dimensions))
    if unknown:
        raise TetherInputError(f"focus names unknown dimension(s) {', '.join(unknown)}")
    weights = dimension_weights(dimensions, focus, share, policy.min_dimension_share)
    n_hard = round(n * policy.hard_case_share)
    quotas: dict[Cell, int] = {}
    for group, total in (("hard", n_hard), ("routine", n - n_hard)):
        for dim, count in _allocate(total, weights).items():
            quotas[(dim, group)] = count
    return quotas


def shortfall_message(need: dict[Cell, int], have: dict[Cell, int]) -> str:
    names = {"hard": "hard+adversarial+edge", "routine": "routine"}
    lines = [
        f"  - {dim} / {names[group]}: need {n}, have {have.get((dim, group), 0)}"
        for (dim, group), n in sorted(need.items())
        if have.get((dim, group), 0) < n
    ]
    return "the prompt pool cannot meet the spec's quotas:\n" + "\n".join(lines)


@dataclass(frozen=True)
class PlannedPair:
    prompt: PromptRecord
    response_a: str
    response_b: str


def draw_pairs(
    pool: Sequence[PromptRecord], quotas: dict[Cell, int], generate: Generate, *, seed: int
) -> list[PlannedPair]:
    """Prompts per quota cell with two distinct responses each; raises with the shortfall."""
    rng = random.Random(seed)
    by_cell: dict[Cell, list[PromptRecord]] = defaultdict(list)
    for prompt in pool:
        by_cell[(prompt.dimension, group_of(prompt.stratum))].append(prompt)
    for prompts in by_cell.values():
        rng.shuffle(prompts)
    available = {cell: len(by_cell.get(cell, [])) for cell in quotas}
    if any(available[cell] < need for cell, need in quotas.items()):
        raise TetherInputError(shortfall_message(quotas, available))
    chosen: dict[Cell, list[PlannedPair]] = defaultdict(list)
    for _ in range(MAX_ROUNDS):
        wanted = {cell: need - len(chosen[cell]) for cell, need in quotas.items() if len(chosen[cell]) < need}
        if not wanted:
            break
        batch = []
        for cell, missing in wanted.items():
            take = min(len(by_cell[cell]), max(missing, round(missing * OVERSAMPLE)))
            batch.extend(by_cell[cell][:take])
            del by_cell[cell][:take]
        for prompt, (a, b) in zip(batch, generate(batch), strict=True):
            cell = (prompt.dimension, group_of(prompt.stratum))
            if a != b and len(chosen[cell]) < quotas[cell]:
                chosen[cell].append(PlannedPair(prompt, a, b))
    got = {cell: len(pairs) for cell, pairs in chosen.items()}
    if any(got.get(cell, 0) < need for cell, need in quotas.items()):
        raise TetherInputError(
            shortfall_message(quotas, got) + "\n(after dropping pairs whose two responses were identical)"
        )
    pairs = [pair for cell in sorted(quotas) for pair in chosen[cell]]
    rng.shuffle(pairs)
    return pairs


def overlap_flags(n: int, policy: LabelingPolicy, *, seed: int) -> list[bool]:
    """Which tasks go to several raters: exactly round(overlap_fraction * n) of them."""
    k = round(n * policy.overlap_fraction)
    flags = [True] * k + [False] * (n - k)
    random.Random(seed + 1).shuffle(flags)
    return flags


@dataclass(frozen=True)
class PlanSummary:
    tasks: int
    overlapped: int
    hard_share: float
    dimension_shares: dict[str, float]
    strata: dict[str, int]


def summarize(pairs: Sequence[PlannedPair], flags: Sequence[bool]) -> PlanSummary:
    n = len(pairs)
    dims = Counter(p.prompt.dimension for p in pairs)
    strata = Counter(p.prompt.stratum for p in pairs)
    return PlanSummary(
        tasks=n,
        overlapped=sum(flags),
        hard_share=sum(strata[s] for s in HARD_STRATA) / n,
        dimension_shares={d: c / n for d, c in sorted(dims.items())},
        strata=dict(sorted(strata.items())),
    )
