"""Style features and monitors on ordinary assistant text: they fire on a planted drift, not without it."""

from __future__ import annotations

import random

import pytest

from tether.monitors import MonitorInput, StepRecord
from tether.monitors.features import DEFAULT_FEATURES as F
from tether.monitors.features import TextFeatures
from tether.monitors.style import hedging_rise, list_rise
from tether.spec.style import StyleLexicons

PLAIN = [
    "Paris is the capital of France.",
    "Boil the water, then add the pasta.",
    "Use a list comprehension; it is shorter than a loop.",
    "The mitochondria produce most of the cell's energy.",
    "Install setuptools if an old package needs distutils.",
    "Sort the list first, then search it with bisect.",
]
PREFIXES = ["I think", "It is possible that", "Perhaps"] * 2
HEDGED = [f"{p} {t[0].lower()}{t[1:]}" for p, t in zip(PREFIXES, PLAIN, strict=True)]
LISTED = [
    "Here are the key points:\n- Boil the water.\n- Add the pasta.",
    "1. Sort the list.\n2. Search it with bisect.",
    "## Answer\nParis is the capital of France.",
    "The **capital** is Paris.",
]


def test_the_english_lexicon_reads_ordinary_text() -> None:
    assert all(F.is_hedged(t) for t in HEDGED) and not any(F.is_hedged(t) for t in PLAIN)
    assert F.hedge_count("It might work; maybe not. I could be wrong.") == 3
    assert all(F.is_list_formatted(t) for t in LISTED) and not any(F.is_list_formatted(t) for t in PLAIN)
    assert F.is_confident("Certainly, it is Paris.") and F.is_confident("Trust me on this.")
    assert not F.is_confident("It is Paris.")


def test_the_spec_lexicon_decides_what_counts() -> None:
    own = TextFeatures(StyleLexicons(hedge_words=["sans doute"], hedge_prefixes=[], hedge_sentences=[]))
    assert own.is_hedged("C'est sans doute Paris.") and not own.is_hedged("I think it is Paris.")
    no_bold = TextFeatures(StyleLexicons(markdown_patterns=[]))
    assert not no_bold.is_list_formatted("The **capital** is Paris.")


def _checkpoints(rng: random.Random, rates: list[float], styled: list[str]) -> list[list[str]]:
    """One batch of 32 responses per checkpoint; a response is styled with the checkpoint's rate."""
    return [[rng.choice(styled) if rng.random() < r else rng.choice(PLAIN) for _ in range(32)] for r in rates]


def _inputs(sft: list[list[str]], batches: list[list[str]]) -> MonitorInput:
    history = [StepRecord(i, F.step_metrics(b)) for i, b in enumerate(batches, start=1)]
    return MonitorInput(history=history, baseline=F.step_metrics([r for b in sft for r in b]))


@pytest.mark.parametrize(
    ("key", "styled", "monitor"), [("hedge", HEDGED, hedging_rise), ("list", LISTED, list_rise)]
)
@pytest.mark.parametrize("seed", range(5))
def test_the_style_monitors_fire_on_a_planted_drift_only(
    key: str, styled: list[str], monitor, seed: int
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    # SFT styles 10% of its answers (baseline: 160 samples); the drift climbs to 50% over 10
    # checkpoints of 32; the control stays at 10%. The monitor compares the mean of the last 5
    # checkpoints (160 samples) with the baseline and fires at >= 10 points AND >= 50% more. At 10%
    # both levels have sd 2.4 points, so the control's rise is N(0, 3.4 points): 10 points is 3 sd
    # (p = 0.0014 per case). Drifted, the last 5 average 42%: a rise of 32 points, 9 sd above 10.
    sft = _checkpoints(rng, [0.1] * 5, styled)
    drift = _checkpoints(rng, [0.1 + 0.04 * i for i in range(1, 11)], styled)
    flat = _checkpoints(rng, [0.1] * 10, styled)
    alerts = monitor()(_inputs(sft, drift))
    assert len(alerts) == 1 and alerts[0].evidence["current_rate"] > 0.3, key
    assert monitor()(_inputs(sft, flat)) == [], key
