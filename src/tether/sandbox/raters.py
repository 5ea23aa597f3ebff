"""Simulated raters: noisy Bradley–Terry judges of the gold utility with configurable biases.

A rater sees utility through its own lens (blind spots dropped, inverted dimensions flipped),
adds weighted differences of surface features (length, hedges, lists, confident phrasing)
and a pull toward the first-shown response, then draws its choice:

    delta = U'(A) - U'(B) + sum_k w_k (f_k(A) - f_k(B)) + position_a
    P(A) = sigmoid(delta / temperature)

A rater that games anchors answers a recognized expert anchor with the experts' verdict and a
rationale in the experts' terms, whatever its own lens would say.

Judgments are pure functions of (seed, rater name, item id, texts), so the call order never
changes them.
"""

from __future__ import annotations

import builtins
import math
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.sandbox.gold import CAPS, capping_dimension, dimension_scores, weighted_utility
from tether.sandbox.grammar import ParsedResponse, count_words, parse
from tether.sandbox.world import HOWTO, Dimension, SandboxPrompt, stable_rng

Choice = Literal["A", "B", "tie"]
LENGTH_SCALE = 20.0
"""Words per unit of the length feature: a 20-word difference counts as much as utility 1.0 x weight."""
TIE_PROBABILITY = 0.9
"""Chance of answering "tie" when |delta| is under the rater's tie margin."""


class RaterProfile(BaseModel):
    """How one simulated (or AI) rater judges; loaded from a pool YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Unique rater name, e.g. "good-1"."""
    kind: Literal["simulated", "ai"] = "simulated"
    """Simulated human or AI judge."""
    description: str = ""
    """One line on what this rater is like."""
    temperature: float = Field(0.1, gt=0.0)
    """Noise of the Bradley–Terry draw: higher means more random choices."""
    length: float = 0.0
    """Weight on the length difference (in units of LENGTH_SCALE words)."""
    hedge: float = 0.0
    """Weight on the hedge-count difference (halved: two hedges count 1)."""
    list: float = 0.0
    """Weight on list formatting."""
    confident: float = 0.0
    """Weight on confident phrasing."""
    position_a: float = 0.0
    """Constant pull toward the first-shown response."""
    blind_spots: builtins.list[Dimension] = Field(default_factory=builtins.list)
    """Dimensions this rater ignores."""
    inverted: builtins.list[Dimension] = Field(default_factory=builtins.list)
    """Dimensions this rater judges backwards (adversarial)."""
    careless: bool = False
    """Chooses at random."""
    games_anchors: bool = False
    """Recognizes expert anchors (calibration items and the recycled anchors used as hidden
    checks) and answers them as the experts would; on everything else follows its profile.
    Gold-question screening is known to fail this way, so only peer agreement can catch it."""
    tie_margin: float = Field(0.0, ge=0.0)
    """Under this |delta| the rater may answer "tie"."""


@dataclass(frozen=True)
class SimJudgment:
    """One simulated pairwise judgment."""

    choice: Choice
    strength: int
    """1 slight, 2 clear, 3 strong."""
    rationale: str
    seconds: float
    """Simulated time spent on the item."""


@dataclass(frozen=True)
class _View:
    """A response as one rater perceives it."""

    parsed: ParsedResponse | None
    scores: dict[Dimension, float]
    utility: float
    features: dict[str, float]


def perceived_scores(
    profile: RaterProfile, prompt: SandboxPrompt, parsed: ParsedResponse
) -> dict[Dimension, float]:
    """Gold dimension scores with the rater's inverted dimensions flipped."""
    scores = dimension_scores(prompt.truth, parsed)
    return {d: (1.0 - s if d in profile.inverted else s) for d, s in scores.items()}


def _features(parsed: ParsedResponse | None, text: str) -> dict[str, float]:
    if parsed is None:
        return {"length": count_words(text) / LENGTH_SCALE, "hedge": 0.0, "list": 0.0, "confident": 0.0}
    return {
        "length": parsed.n_words / LENGTH_SCALE,
        "hedge": parsed.hedges / 2,
        "list": float(parsed.as_list),
        "confident": float(parsed.confident),
    }


def _view(profile: RaterProfile, prompt: SandboxPrompt, text: str) -> _View:
    parsed = parse(text)
    if parsed is None:
        return _View(None, {}, 0.0, _features(None, text))
    scores = perceived_scores(profile, prompt, parsed)
    utility = weighted_utility(scores, prompt.dimension, ignore=profile.blind_spots)
    capped = capping_dimension(prompt.truth, parsed)
    # A rater who ignores or inverts a dimension does not see the behavior it caps as unacceptable.
    if capped is not None and capped not in profile.blind_spots and capped not in profile.inverted:
        utility = min(utility, CAPS[capped])
    return _View(parsed, scores, utility, _features(parsed, text))


def _delta(profile: RaterProfile, a: _View, b: _View) -> float:
    weights = {
        "length": profile.length,
        "hedge": profile.hedge,
        "list": profile.list,
        "confident": profile.confident,
    }
    style = sum(w * (a.features[k] - b.features[k]) for k, w in weights.items())
    return a.utility - b.utility + style + profile.position_a


def _strength(magnitude: float) -> int:
    return 1 if magnitude < 0.15 else 2 if magnitude < 0.4 else 3


class SimulatedRater:
    """A deterministic simulated rater."""

    def __init__(self, profile: RaterProfile, *, seed: int) -> None:
        self.profile = profile
        self.seed = seed

    @property
    def name(self) -> str:
        return self.profile.name

    def perceived_utility(self, prompt: SandboxPrompt, response: str) -> float:
        """Utility of ``response`` as this rater sees it (before style biases and noise)."""
        return _view(self.profile, prompt, response).utility

    def judge(
        self,
        prompt: SandboxPrompt,
        response_a: str,
        response_b: str,
        *,
        item_id: str,
        expert: Choice | None = None,
    ) -> SimJudgment:
        """Compare A and B for ``prompt``; the same inputs always give the same judgment.

        ``expert`` is the experts' verdict, in the order shown, when the item is an expert
        anchor. Only a rater that games anchors uses it; the others judge anchors like any item.
        """
        rng = stable_rng("rater", self.seed, self.profile.name, item_id, response_a, response_b)
        words = count_words(response_a) + count_words(response_b)
        if self.profile.games_anchors and expert is not None:
            return _as_expert(prompt, response_a, response_b, expert, rng)
        if self.profile.careless:
            choice: Choice = rng.choice(("A", "B"))
            return SimJudgment(
                choice, rng.randint(1, 3), _careless_rationale(choice, rng), rng.uniform(2.0, 6.0)
            )
        a, b = _view(self.profile, prompt, response_a), _view(self.profile, prompt, response_b)
        delta = _delta(self.profile, a, b)
        seconds = _seconds(words, rng)
        if abs(delta) < self.profile.tie_margin and rng.random() < TIE_PROBABILITY:
            return SimJudgment("tie", 1, rng.choice(_TIE_LINES), seconds)
        p_a = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, delta / self.profile.temperature))))
        choice = "A" if rng.random() < p_a else "B"
        won, lost = (a, b) if choice == "A" else (b, a)
        rationale = _rationale(choice, won, lost, rng)
        return SimJudgment(choice, _strength(abs(delta)), rationale, seconds)


def _seconds(words: int, rng: random.Random) -> float:
    return max(4.0, 12.0 + 0.6 * words + rng.gauss(0.0, 4.0))


_EXPERT_LENS = RaterProfile(name="expert")
"""Gold as it is, without biases: how an anchor-gaming rater words the verdict it recognized."""


def _as_expert(
    prompt: SandboxPrompt, response_a: str, response_b: str, expert: Choice, rng: random.Random
) -> SimJudgment:
    """The experts' verdict on a recognized anchor, with a rationale that names what decides it."""
    seconds = _seconds(count_words(response_a) + count_words(response_b), rng)
    if expert == "tie":
        return SimJudgment("tie", 1, rng.choice(_TIE_LINES), seconds)
    a, b = _view(_EXPERT_LENS, prompt, response_a), _view(_EXPERT_LENS, prompt, response_b)
    won, lost = (a, b) if expert == "A" else (b, a)
    strength = _strength(abs(a.utility - b.utility))
    return SimJudgment(expert, strength, _rationale(expert, won, lost, rng), seconds)


# ---------------------------------------------------------------------------------------------
# Rationales name what drove the choice, in a few wordings so they do not all read alike.
_TIE_LINES = (
    "Both responses are about equally good.",
    "I can not separate these two; they are equally good.",
    "Neither response is clearly better than the other.",
)
_GENERIC = (
    "{x} seemed a little better to me overall.",
    "Hard to call, but {x} reads slightly better.",
    "Close one; I lean toward {x}.",
)
_STYLE = ("{x} is more detailed and friendlier than {y}.", "{x} explains more and feels more thorough.")


def _careless_rationale(choice: Choice, rng: random.Random) -> str:
    return rng.choice(("{x} looks fine to me, I guess.", "I prefer {x} here, it seems good.")).format(
        x=choice
    )


def _dimension_line(
    dimension: Dimension, won: ParsedResponse, lost: ParsedResponse | None
) -> tuple[str, ...]:
    if dimension == "safety" and won.kind == "refusal":
        return (
            "{x} declines the harmful request; {y} goes along with it.",
            "{x} is right to refuse this one.",
        )
    if dimension == "safety":
        wording = "helps with the request" if won.value == HOWTO else "answers the question"
        return (
            f"{{x}} {wording}; {{y}} refuses for no good reason.",
            f"{{x}} {wording} instead of refusing.",
        )
    if dimension == "honesty" and won.kind == "idk":
        return (
            "{x} admits not knowing instead of making something up.",
            "{x} is honest that it does not know.",
        )
    if dimension == "honesty":
        return ("{x} does not claim a wrong answer as fact.", "{y} states something false with certainty.")
    if dimension == "accuracy":
        return (
            "{x} gives the correct answer; {y} does not.",
            "{x} gets the answer right and {y} gets it wrong.",
        )
    return ("{x} is shorter and has no filler.", "{x} gets to the point; {y} pads its answer.")


def _rationale(choice: Choice, won: _View, lost: _View, rng: random.Random) -> str:
    x, y = ("A", "B") if choice == "A" else ("B", "A")
    if won.parsed is not None and lost.parsed is None:
        lines: tuple[str, ...] = (
            "{y} does not read as a proper answer.",
            "{x} is at least a coherent response.",
        )
    elif won.parsed is None or won.utility < lost.utility:
        lines = _STYLE if won.features["length"] > lost.features["length"] else _GENERIC
    else:
        gains = {d: s - lost.scores[d] for d, s in won.scores.items()}
        best = max(gains, key=lambda d: gains[d] * _RATIONALE_WEIGHT[d])
        if gains[best] > 0:
            lines = _dimension_line(best, won.parsed, lost.parsed)
        elif won.features["length"] > lost.features["length"]:
            lines = _STYLE
        else:
            lines = _GENERIC
    return rng.choice(lines).format(x=x, y=y)


_RATIONALE_WEIGHT: dict[Dimension, float] = {"safety": 4.0, "honesty": 3.0, "accuracy": 2.0, "concision": 1.0}


# ---------------------------------------------------------------------------------------------
def _pool_from(data: Any, source: str) -> list[RaterProfile]:
    if not isinstance(data, dict) or not isinstance(data.get("raters"), builtins.list):
        raise ValueError(f"{source}: expected a mapping with a 'raters' list")
    profiles: list[RaterProfile] = []
    for index, entry in enumerate(data["raters"]):
        label = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            profiles.append(RaterProfile.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"field '{'.'.join(str(p) for p in err['loc']) or '(entry)'}': {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"{source}: rater #{index} ({label}): {problems}") from None
    names = [p.name for p in profiles]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{source}: rater names must be unique; repeated: {', '.join(duplicates)}")
    return profiles


def load_pool(path: str | Path) -> list[RaterProfile]:
    """Rater profiles from a YAML file of the form ``raters: [{name: ..., ...}, ...]``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return _pool_from(data, str(path))


def default_pool() -> list[RaterProfile]:
    """The packaged pool: four good raters, two length-biased, one careless, one safety-inverted
    and one safety-inverted rater that games anchors."""
    text = resources.files("tether.sandbox").joinpath("default_pool.yaml").read_text(encoding="utf-8")
    return _pool_from(yaml.safe_load(text), "default_pool.yaml")
