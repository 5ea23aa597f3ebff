"""Turn collected pairwise judgments into a preference dataset: aggregate by majority, split held-out.

The engine behind `tether data export`; files are written by `labeling.export_files`, the store query
and CLI live elsewhere.

Formats (`labeling.export_files` writes them):

- TRL's *standard preference format with an explicit prompt* (``jsonl``, ``hf``): "prompt", "chosen" and
  "rejected" are plain strings, chosen/rejected the completions only. TRL's `RewardTrainer` takes this
  as-is with a plain tokenizer (no chat template): it appends EOS and tokenizes `prompt + chosen` and
  `prompt + rejected`. Only single-turn prompts fit it.
- TRL's *conversational* format (``trl-conversational``, the default once any prompt is a conversation or
  the spec sets a system prompt): "prompt" is a message list (the spec's system prompt first, unless the
  conversation has its own), "chosen" and "rejected" are one assistant message each. TRL applies the
  model's chat template, as Tether's reward stage does.

Two consequences of the standard format for consumers:

- TRL joins prompt and completion with no separator. Texts are exported verbatim, so any separator belongs
  to the stored prompt/response text or to the reward stage, not to this module.
- `RewardTrainer` picks up the "margin" column by itself: its loss is −log σ(r_c − r_r − margin), Llama 2's
  margin loss on the "small" scale (REFERENCES.md). Kept ties (`tie=True`, margin 0) carry no preference;
  filter them out before reward training.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from statistics import fmean
from typing import TYPE_CHECKING, Final, Literal, get_args

from tether.conversation import Prompt
from tether.errors import TetherInputError

if TYPE_CHECKING:
    pass

Choice = Literal["A", "B", "tie"]

# Llama 2's "small" margin scale (Touvron et al. 2023, REFERENCES.md) for slight / clear / strong preferences.
MARGIN_BY_STRENGTH: Final[Mapping[int, float]] = {1: 1 / 3, 2: 2 / 3, 3: 1.0}


@dataclass(frozen=True)
class Vote:
    """One rater's judgment; `choice` is in the task's canonical A/B order, whatever order was shown."""

    rater_id: int
    rater_name: str
    choice: Choice
    strength: int
    """1 slight, 2 clear, 3 strong (keys of MARGIN_BY_STRENGTH); ignored for "tie" votes."""


@dataclass(frozen=True)
class TaskVotes:
    """A pairwise task with every vote collected on it."""

    task_id: int
    prompt: Prompt
    """The prompt's text, or its conversation when it has more than one message."""
    response_a: str
    response_b: str
    dimension: str
    stratum: str
    origin: str
    """Where the prompt came from: "plan", "redteam", "production", ..."""
    votes: tuple[Vote, ...]
    spec_hash: str = ""
    """Hash of the spec the task was made under."""


@dataclass(frozen=True)
class PreferenceRow:
    """One row of the exported dataset: TRL's explicit-prompt preference columns plus provenance."""

    prompt: Prompt
    """A string, or a conversation (written in TRL's conversational format)."""
    chosen: str
    rejected: str
    dimension: str
    stratum: str
    origin: str
    margin: float
    """Mean MARGIN_BY_STRENGTH of the majority voters; 0.0 for a kept tie."""
    agreement: float
    """Share of all votes that went to the winning option (the largest option, for a kept tie)."""
    n_votes: int
    rater_ids: tuple[int, ...]
    """All voters on the task, in vote order."""
    rater_names: tuple[str, ...]
    task_id: int
    tie: bool = False
    """True for a tie kept with keep_ties=True: chosen is response_a, rejected response_b, margin 0.0."""
    spec_hash: str = ""
    """Hash of the spec the task was made under."""


@dataclass(frozen=True)
class AggregateStats:
    """What happened to the tasks given to `aggregate`; kept + the dropped counts == tasks."""

    tasks: int = 0
    kept: int = 0
    dropped_ties: int = 0
    dropped_no_majority: int = 0
    dropped_no_votes: int = 0
    kept_ties: int = 0
    """Rows in `kept` that are ties (only with keep_ties=True)."""


COLUMNS: Final = tuple(f.name for f in fields(PreferenceRow))


# --- aggregation ------------------------------------------------------------------------------------------

COUNTERFACTUAL_ORIGINS: Final = ("probe:",)
"""Origins of counterfactual pairs (a response against the same response with one style edit), whose
tie majority is kept: on such a pair "neither is better" is the answer the pair asks for (the edit adds
nothing), and the reward model trains it toward equal rewards. Dropping those ties left only the pairs
a biased minority decided (issue 16: 54% of the exported confident pairs went to the edit while the
careful raters called 55% of them ties)."""


def aggregate(
    tasks: Iterable[TaskVotes], *, keep_ties: bool = False, ties_of: Sequence[str] = ()
) -> tuple[list[PreferenceRow], AggregateStats]:
    """Majority vote per task over three options (A, B, tie); a unique plurality wins.

    A "tie" plurality, or no unique plurality (e.g. one vote each for A, B and tie), yields no preference:
    such tasks are dropped unless `keep_ties`, which keeps them as tie rows. Tasks without votes are dropped.
    A "tie" plurality on a task whose origin starts with one of `ties_of` is kept as a tie row whatever
    `keep_ties` says (see `COUNTERFACTUAL_ORIGINS`).

    >>> votes = (Vote(1, "ann", "B", 3), Vote(2, "bob", "B", 1), Vote(3, "cy", "A", 2))
    >>> rows, stats = aggregate([TaskVotes(7, "p", "a", "b", "helpful", "s", "plan", votes)])
    >>> (rows[0].chosen, rows[0].margin, round(rows[0].agreement, 3), stats.kept)
    ('b', 0.6666666666666666, 0.667, 1)
    """
    rows: list[PreferenceRow] = []
    counts: Counter[str] = Counter()
    for task in tasks:
        counts["tasks"] += 1
        if not task.votes:
            counts["dropped_no_votes"] += 1
            continue
        _check_votes(task)
        winner = _plurality(task.votes)
        if winner in ("A", "B"):
            rows.append(_preference_row(task, winner))
        elif keep_ties or (winner == "tie" and task.origin.startswith(tuple(ties_of))):
            rows.append(_tie_row(task))
            counts["kept_ties"] += 1
        else:
            counts["dropped_ties" if winner == "tie" else "dropped_no_majority"] += 1
    counts["kept"] = len(rows)
    return rows, AggregateStats(**counts)


def _check_votes(task: TaskVotes) -> None:
    for vote in task.votes:
        if vote.choice not in get_args(Choice):
            raise TetherInputError(
                f"task {task.task_id}: rater {vote.rater_name!r} voted {vote.choice!r}; expected A, B or tie"
            )
        # A tie vote's strength never reaches a margin, so stores may record anything there.
        if vote.choice != "tie" and vote.strength not in MARGIN_BY_STRENGTH:
            raise TetherInputError(
                f"task {task.task_id}: rater {vote.rater_name!r} gave strength {vote.strength}; "
                f"expected one of {sorted(MARGIN_BY_STRENGTH)}"
            )


def _plurality(votes: Sequence[Vote]) -> Choice | None:
    """The option with strictly the most votes, or None when the top count is shared."""
    ranked = Counter(vote.choice for vote in votes).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def _top_share(votes: Sequence[Vote]) -> float:
    return max(Counter(vote.choice for vote in votes).values()) / len(votes)


def _preference_row(task: TaskVotes, winner: Literal["A", "B"]) -> PreferenceRow:
    majority = [vote for vote in task.votes if vote.choice == winner]
    chosen, rejected = (
        (task.response_a, task.response_b) if winner == "A" else (task.response_b, task.response_a)
    )
    return _row(task, chosen, rejected, margin=fmean(MARGIN_BY_STRENGTH[v.strength] for v in majority))


def _tie_row(task: TaskVotes) -> PreferenceRow:
    return _row(task, task.response_a, task.response_b, margin=0.0, tie=True)


def _row(task: TaskVotes, chosen: str, rejected: str, *, margin: float, tie: bool = False) -> PreferenceRow:
    return PreferenceRow(
        prompt=task.prompt,
        chosen=chosen,
        rejected=rejected,
        dimension=task.dimension,
        stratum=task.stratum,
        origin=task.origin,
        margin=margin,
        agreement=_top_share(task.votes),
        n_votes=len(task.votes),
        rater_ids=tuple(vote.rater_id for vote in task.votes),
        rater_names=tuple(vote.rater_name for vote in task.votes),
        task_id=task.task_id,
        tie=tie,
        spec_hash=task.spec_hash,
    )


# --- held-out split ---------------------------------------------------------------------------------------


def split_heldout(
    rows: Sequence[PreferenceRow], *, share: float = 0.1, seed: int = 0
) -> tuple[list[PreferenceRow], list[PreferenceRow]]:
    """(train, test), stratified by (dimension, stratum); both keep the input order.

    Each cell of n rows sends `heldout_count(n, share)` rows to test, picked by a shuffle seeded from `seed`
    and the cell's name through SHA-256 (Python's hash() of a str changes per process): the split reproduces
    across runs, and adding rows to one cell leaves the other cells' splits alone.
    """
    if not 0 <= share < 1:
        raise TetherInputError(f"held-out share must be in [0, 1); got {share}")
    cells: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        cells[(row.dimension, row.stratum)].append(index)
    test_indices: set[int] = set()
    for (dimension, stratum), indices in cells.items():
        # Sort first so the pick depends on the rows, not on the order the store returned them in.
        ordered = sorted(indices, key=lambda i: (rows[i].task_id, i))
        random.Random(_cell_seed(seed, dimension, stratum)).shuffle(ordered)
        test_indices.update(ordered[: heldout_count(len(ordered), share)])
    train = [row for i, row in enumerate(rows) if i not in test_indices]
    test = [row for i, row in enumerate(rows) if i in test_indices]
    return train, test


def heldout_count(n: int, share: float) -> int:
    """Rows of an n-row cell that go to test: round(share * n), at least 1 when n >= 2 and share > 0.

    Capped at n - 1 so every cell keeps a training row: a cell seen only at test time would measure
    generalization to an unseen stratum rather than held-out accuracy. A single-row cell stays in train.
    Python's round() rounds halves to even (round(0.5) == 0); the floor of 1 covers that case.
    """
    if n < 2 or share <= 0:
        return 0
    return min(max(round(share * n), 1), n - 1)


def _cell_seed(seed: int, dimension: str, stratum: str) -> int:
    key = json.dumps([seed, dimension, stratum]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
