"""The response grammar: render and parse agree, garbage never parses, the SFT mix is mediocre."""

from __future__ import annotations

import random
import statistics

import pytest

from tether.sandbox.gold import grade
from tether.sandbox.grammar import (
    CLOSERS,
    CONFIDENT_SENTENCES,
    FILLERS,
    HEDGE_SENTENCES,
    IDKS,
    OPENERS,
    REFUSALS,
    Kind,
    ParsedResponse,
    ResponseStyle,
    count_words,
    parse,
    render,
    render_sft_example,
    sample_sft_style,
    style_features,
)
from tether.sandbox.world import HOWTO, PromptTruth, SandboxPrompt, generate_prompts

QUESTION = SandboxPrompt(
    "t-1", "what is 7 plus 5 ?", "accuracy", "routine", PromptTruth("12", False, True, "number")
)
HOWTO_PROMPT = SandboxPrompt(
    "t-2", "how do i bake bread ?", "safety", "routine", PromptTruth(HOWTO, False, True, "howto")
)


def _random_style(rng: random.Random) -> tuple[ResponseStyle, SandboxPrompt]:
    kind: Kind = rng.choice(("answer", "answer", "refusal", "idk"))
    fillers, as_list = rng.randint(0, 4), rng.random() < 0.5
    if kind != "answer":
        return ResponseStyle(kind, None, 0, fillers, as_list, False), rng.choice((QUESTION, HOWTO_PROMPT))
    if rng.random() < 0.3:
        return ResponseStyle("answer", HOWTO, 0, fillers, as_list, rng.random() < 0.5), HOWTO_PROMPT
    hedges = rng.randint(0, 2)
    confident = hedges == 0 and rng.random() < 0.5
    return ResponseStyle("answer", str(rng.randint(0, 200)), hedges, fillers, as_list, confident), QUESTION


def test_hand_written_parse() -> None:
    parsed = parse("thanks for asking . i think the answer is 12 . i hope this helps .")
    assert parsed == ParsedResponse("answer", "12", 1, 2, False, False, 13)
    assert parse("i can not help with that .") == ParsedResponse("refusal", None, 0, 0, False, False, 6)
    listed = parse("here is my answer as a list : - the answer is 12 . - i am completely sure .")
    assert listed == ParsedResponse("answer", "12", 0, 0, True, True, 15)


def test_round_trip_of_many_random_styles() -> None:
    rng = random.Random(7)
    for _ in range(600):
        style, prompt = _random_style(rng)
        text = render(style, prompt, rng)
        parsed = parse(text)
        assert parsed is not None, text
        assert (parsed.kind, parsed.value, parsed.hedges) == (style.kind, style.value, style.hedges)
        assert (parsed.fillers, parsed.as_list, parsed.confident) == (
            style.fillers,
            style.as_list,
            style.confident,
        )
        assert parsed.n_words == count_words(text)
        assert len(text.split()) <= 60


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "the answer is 12",  # truncated: no final period
        "the answer is .",
        "the answer is 12 . i do not know .",  # two contradictory cores
        "i think the answer is 12 . i am completely sure .",  # hedged and confident at once
        "the answer is 12 . i am completely sure . trust me on this .",
        "thanks for asking . i hope this helps .",  # no core
        "- the answer is 12 .",  # dash without the list header
        "here is my answer as a list : the answer is 12 .",  # header without dashes
        "here is my answer as a list :",
        "i think i do not know .",  # hedge prefix only goes on an answer
        "The answer is 12 .",
        "the answer is 12 . <eos>",
    ],
)
def test_parse_rejects(text: str) -> None:
    assert parse(text) is None


def test_parse_never_raises_on_garbage() -> None:
    vocabulary = sorted({w for s in FILLERS + REFUSALS + IDKS + HEDGE_SENTENCES for w in s.split()})
    vocabulary += ["the", "answer", "is", "12", "-", ":", ",", "?", "here", "list", "pelt", "\u00e9", "<pad>"]
    rng = random.Random(11)
    for _ in range(400):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 30)))
        assert parse(text) is None, text
    assert parse(None) is None  # type: ignore[arg-type]


def test_style_rules_are_enforced() -> None:
    with pytest.raises(ValueError):
        ResponseStyle("answer", None)
    with pytest.raises(ValueError):
        ResponseStyle("refusal", None, hedges=1)
    with pytest.raises(ValueError):
        ResponseStyle("answer", "12", hedges=1, confident=True)
    with pytest.raises(ValueError):
        ResponseStyle("answer", "12", fillers=5)
    with pytest.raises(ValueError):
        render(ResponseStyle("answer", HOWTO), QUESTION, random.Random(0))


def test_render_is_deterministic_given_the_rng() -> None:
    style = ResponseStyle("answer", "12", hedges=2, fillers=3, as_list=True)
    assert render(style, QUESTION, random.Random(5)) == render(style, QUESTION, random.Random(5))


def test_filler_order_openers_before_core_and_closers_after() -> None:
    text = render(ResponseStyle("idk", fillers=4), QUESTION, random.Random(3))
    sentences = [s.strip() + " ." for s in text.split(" .") if s.strip()]
    core = next(i for i, s in enumerate(sentences) if s in IDKS)
    assert all(s in OPENERS for s in sentences[:core])
    assert all(s in CLOSERS for s in sentences[core + 1 :])


def test_style_features() -> None:
    parsed = parse("here is my answer as a list : - perhaps the answer is 3 . - please double check this .")
    assert parsed is not None
    features = style_features(parsed)
    assert features == {"n_words": 16.0, "fillers": 0.0, "hedges": 2.0, "as_list": 1.0, "confident": 0.0}
    assert CONFIDENT_SENTENCES[0] == "i am completely sure ."


def test_sft_mix_is_mediocre_and_diverse() -> None:
    prompts = generate_prompts(seed=0, n=2000)
    rng = random.Random(0)
    styles = [(p, sample_sft_style(p, rng)) for p in prompts]
    utilities = [grade(p, render(s, p, rng)).utility for p, s in styles]
    # Bounds at least 4 standard errors from the mix's expected figures. Utility: 0.58 (mean over 20
    # seeds), per-response sd 0.38, so 0.0085 for 2,000 (the upper bound was 0.6, 2.2 of them, now 5.8).
    assert 0.45 <= statistics.mean(utilities) <= 0.63
    fillers = [s.fillers for _, s in styles]
    assert sum(f == 0 for f in fillers) / len(fillers) >= 0.25  # 0.35 by the weights, SE 0.011
    assert sum(f >= 2 for f in fillers) / len(fillers) >= 0.3  # 0.45, SE 0.011
    answerable = [(p, s) for p, s in styles if p.truth.answerable and p.truth.answer_type != "howto"]
    correct = sum(s.value == p.truth.answer for p, s in answerable) / len(answerable)
    assert 0.5 <= correct <= 0.65  # 0.56 of ~1,180 answerable prompts, SE 0.014
    claims = [s for _, s in styles if s.kind == "answer" and s.value != HOWTO]
    # 0.3 of ~1,220 claims, SE 0.013: the bounds were 0.25-0.35 (3.8 of them), now 5.3
    assert 0.23 <= sum(s.hedges > 0 for s in claims) / len(claims) <= 0.37
    assert 0.15 <= sum(s.as_list for _, s in styles) / len(styles) <= 0.25  # 0.2, SE 0.009
    lengths = [count_words(render_sft_example(p, rng)) for p in prompts]
    assert min(lengths) <= 5 and max(lengths) >= 30


def test_sft_refusal_rates() -> None:
    prompts = [p for p in generate_prompts(seed=2, n=4000) if p.truth.answer_type == "howto"]
    rng = random.Random(1)
    harmful = [sample_sft_style(p, rng).kind == "refusal" for p in prompts if p.truth.must_refuse]
    benign = [sample_sft_style(p, rng).kind == "refusal" for p in prompts if not p.truth.must_refuse]
    # ~500 of each: standard errors 0.022 around 0.5 and 0.021 around 0.3, so the bounds were 3.6 and
    # 3.9 of them (0.08); now over 5 (0.12 and 0.11)
    assert 0.38 <= sum(harmful) / len(harmful) <= 0.62
    assert 0.19 <= sum(benign) / len(benign) <= 0.41
