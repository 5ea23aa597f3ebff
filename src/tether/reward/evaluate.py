"""Held-out evaluation of a reward model: accuracy by dimension and stratum, calibration, baselines.

Runs on an export's "test" split, which training never reads. Everything after scoring is a pure
function of the rewards (`report_from_rewards`), so it is tested without a model. Ties kept in an
export (`--keep-ties`) carry no preference and are skipped.

    model = load_reward_model(checkpoint)
    report = evaluate_reward_model(model, heldout_rows(export_dir), spec=project.spec)
    json.dumps(report.to_dict())
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tether.conversation import last_user_turn
from tether.errors import TetherInputError
from tether.labeling.export import PreferenceRow
from tether.reward import metrics as m
from tether.reward.scoring import Scorer
from tether.spec import Spec, spec_hash

GoldPreference = Literal["chosen", "rejected"]
GoldHook = Callable[[PreferenceRow], GoldPreference | None]
"""The gold preference of a pair ("chosen", "rejected"), or None when gold has none (equal, unknown)."""
FAILURES_PER_DIMENSION = 5


@dataclass(frozen=True)
class Accuracy:
    """Strict pairwise accuracy over n pairs with its bootstrap interval; None values when n is 0."""

    n: int
    accuracy: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Calibration:
    """σ(r_c − r_r) against the labels, each pair counted in both orders (see metrics)."""

    ece: float | None
    brier: float | None
    n_bins: int
    bins: list[m.ReliabilityBin]


@dataclass(frozen=True)
class Baselines:
    """Trivial rules on the same pairs; a reward model that does not beat them learned little else."""

    pick_longer: float | None
    """Pick the response with more words (length ties count half)."""
    pick_a: float | None
    """Pick position A."""
    position_source: Literal["canonical", "seeded"]
    """canonical: A is the task's stored response A; seeded: a fair seeded coin per pair (0.5 expected)."""


@dataclass(frozen=True)
class GoldAccuracy:
    """Accuracy against a gold grader (the sandbox) on pairs where gold has a strict preference."""

    overall: Accuracy
    by_dimension: dict[str, Accuracy]
    labels_agree: float | None
    """Share of those pairs where the raters' majority agreed with gold: the ceiling label noise allows."""


@dataclass(frozen=True)
class FailureRow:
    """A held-out pair the model got wrong, with how sure it was: σ(r_r − r_c)."""

    dimension: str
    stratum: str
    task_id: int
    prompt: str
    chosen: str
    rejected: str
    reward_chosen: float
    reward_rejected: float
    confidence: float


@dataclass(frozen=True)
class RMReport:
    """Everything `tether rm eval` measures; `to_dict` is its JSON form."""

    spec_hash: str
    n_pairs: int
    ties_skipped: int
    overall: Accuracy
    by_dimension: dict[str, Accuracy]
    by_stratum: dict[str, Accuracy]
    calibration: Calibration
    baselines: Baselines
    length_correlation: float | None
    """Pearson correlation of reward with response length in words, over every scored response."""
    mean_reward: float | None
    failures: list[FailureRow]
    gold: GoldAccuracy | None = None
    context: dict[str, str] = field(default_factory=dict)
    """Where the figures came from (checkpoint, export, artifact ids), filled in by the caller."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: NaN and infinities become None."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --- loading ----------------------------------------------------------------------------------------------


def heldout_rows(export_dir: Path) -> list[PreferenceRow]:
    """The export's "test" split as rows; raises when the export has no held-out pair."""
    from tether.labeling.export_files import load_rows

    test = load_rows(export_dir, "test")
    if not test:
        raise TetherInputError(
            f"{export_dir}: the export's test split is empty, so there is nothing held out to evaluate on; "
            "re-export with `tether data export --heldout 0.1` (or more labels)"
        )
    return test


# --- evaluation -------------------------------------------------------------------------------------------


def evaluate_reward_model(
    model: Scorer,
    rows: Sequence[PreferenceRow],
    *,
    spec: Spec,
    gold: GoldHook | None = None,
    a_is_chosen: Sequence[bool] | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> RMReport:
    """Score both sides of every non-tie pair in `rows` and report on them.

    `a_is_chosen` gives, per row, whether the task's canonical response A is the chosen one (for the
    pick-A baseline); without it a seeded fair assignment stands in. `gold` adds accuracy against gold.
    """
    keep = [i for i, row in enumerate(rows) if not row.tie]
    pairs = [rows[i] for i in keep]
    if not pairs:
        raise TetherInputError("no held-out pairs with a preference to evaluate (every row is a tie)")
    n = len(pairs)
    prompts = [p.prompt for p in pairs]
    rewards = model.score(prompts * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs], batch_size)
    positions = None if a_is_chosen is None else [bool(a_is_chosen[i]) for i in keep]
    return report_from_rewards(
        pairs,
        rewards[:n],
        rewards[n:],
        spec=spec,
        gold=[gold(p) for p in pairs] if gold else None,
        a_is_chosen=positions,
        ties_skipped=len(rows) - n,
        seed=seed,
    )


def report_from_rewards(
    pairs: Sequence[PreferenceRow],
    chosen: np.ndarray,
    rejected: np.ndarray,
    *,
    spec: Spec,
    gold: Sequence[GoldPreference | None] | None = None,
    a_is_chosen: Sequence[bool] | None = None,
    ties_skipped: int = 0,
    seed: int = 0,
) -> RMReport:
    """The report for rewards already computed: chosen[i], rejected[i] belong to pairs[i]."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    correct = m.correct_pairs(c, r)
    dims = [p.dimension for p in pairs]
    dim_order = spec.dimension_ids + sorted(set(dims) - set(spec.dimension_ids))
    words = np.array([[m.word_count(p.chosen), m.word_count(p.rejected)] for p in pairs])  # (N, 2)
    return RMReport(
        spec_hash=spec_hash(spec),
        n_pairs=len(pairs),
        ties_skipped=ties_skipped,
        overall=accuracy(correct, seed=seed),
        by_dimension=grouped_accuracy(correct, dims, dim_order, seed=seed),
        by_stratum=grouped_accuracy(correct, [p.stratum for p in pairs], None, seed=seed),
        calibration=calibration(c, r),
        baselines=baselines(words, a_is_chosen, seed=seed),
        length_correlation=m.pearson(np.concatenate([c, r]), np.concatenate([words[:, 0], words[:, 1]])),
        mean_reward=float(np.mean(np.concatenate([c, r]))),
        failures=failure_table(pairs, c, r),
        gold=None
        if gold is None
        else gold_accuracy(c, r, gold, dims, dim_order, correct_label=correct, seed=seed),
    )


def accuracy(correct: np.ndarray, *, seed: int = 0) -> Accuracy:
    values = np.asarray(correct, dtype=np.float64)
    if values.size == 0:
        return Accuracy(0, None, None, None)
    low, high = m.bootstrap_interval(values, seed=seed)
    return Accuracy(int(values.size), float(values.mean()), low, high)


def grouped_accuracy(
    correct: np.ndarray, groups: Sequence[str], order: Sequence[str] | None, *, seed: int = 0
) -> dict[str, Accuracy]:
    """Accuracy per group, in `order` (groups absent from the data get n=0) or sorted by name."""
    keys = list(order) if order is not None else sorted(set(groups))
    labels = np.array(groups, dtype=object)
    return {key: accuracy(correct[labels == key], seed=seed) for key in keys}


def calibration(chosen: np.ndarray, rejected: np.ndarray, *, n_bins: int = m.N_BINS) -> Calibration:
    probs, outcomes = m.pair_calibration_points(chosen, rejected)
    return Calibration(
        ece=m.expected_calibration_error(probs, outcomes, n_bins=n_bins),
        brier=m.brier_score(probs, outcomes),
        n_bins=n_bins,
        bins=m.reliability_bins(probs, outcomes, n_bins=n_bins),
    )


def baselines(words: np.ndarray, a_is_chosen: Sequence[bool] | None, *, seed: int = 0) -> Baselines:
    """Pick-longer and pick-A on the same pairs; `words` is (N, 2): chosen and rejected word counts."""
    source: Literal["canonical", "seeded"] = "seeded" if a_is_chosen is None else "canonical"
    positions = m.seeded_positions(len(words), seed=seed) if a_is_chosen is None else np.asarray(a_is_chosen)
    return Baselines(
        pick_longer=m.pick_longer_accuracy(words[:, 0], words[:, 1]),
        pick_a=m.pick_a_accuracy(positions),
        position_source=source,
    )


def failure_table(
    pairs: Sequence[PreferenceRow],
    chosen: np.ndarray,
    rejected: np.ndarray,
    *,
    k: int = FAILURES_PER_DIMENSION,
) -> list[FailureRow]:
    """Up to k most confident wrong pairs per dimension, dimensions in order of first appearance."""
    picked = m.most_confident_wrong(chosen, rejected, [p.dimension for p in pairs], k=k)
    probs = m.bt_probability(rejected, chosen)
    return [
        FailureRow(
            dimension=pairs[i].dimension,
            stratum=pairs[i].stratum,
            task_id=pairs[i].task_id,
            prompt=last_user_turn(pairs[i].prompt),
            chosen=pairs[i].chosen,
            rejected=pairs[i].rejected,
            reward_chosen=float(chosen[i]),
            reward_rejected=float(rejected[i]),
            confidence=float(probs[i]),
        )
        for indices in picked.values()
        for i in indices
    ]


def gold_accuracy(
    chosen: np.ndarray,
    rejected: np.ndarray,
    gold: Sequence[GoldPreference | None],
    dims: Sequence[str],
    order: Sequence[str],
    *,
    correct_label: np.ndarray,
    seed: int = 0,
) -> GoldAccuracy:
    """Accuracy against gold on the pairs where gold prefers one side strictly."""
    has_gold = np.array([g is not None for g in gold], dtype=bool)
    gold_chosen = np.array([g == "chosen" for g in gold], dtype=bool)
    # Right by gold: the side gold prefers got strictly the higher reward.
    right = np.where(gold_chosen, correct_label, np.asarray(rejected) > np.asarray(chosen))[has_gold]
    kept_dims = [d for d, keep in zip(dims, has_gold, strict=True) if keep]
    return GoldAccuracy(
        overall=accuracy(right, seed=seed),
        by_dimension=grouped_accuracy(right, kept_dims, order, seed=seed),
        labels_agree=float(gold_chosen[has_gold].mean()) if has_gold.any() else None,
    )
