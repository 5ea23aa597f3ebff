"""Bias probes: each edit does what it says, stays inside the sandbox grammar, and is measured."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from tether.reward.probes import (
    SCALAR_ORDER_NOTE,
    ProbeContext,
    make_probe,
    probe_names,
    register_probe,
    run_probes,
)
from tether.reward.scoring import RewardModel
from tether.sandbox import grammar as g
from tether.sandbox.plugin import WORLD as SANDBOX_WORLD
from tether.sandbox.world import generate_prompts
from tether.spec.style import StyleLexicons

SANDBOX = ProbeContext.for_world(SANDBOX_WORLD, StyleLexicons())
"""The sandbox's probes: its grammar's edits (text outside the grammar gets its fixed English edit)."""


def edit(name: str, response: str, seed: int = 0) -> str | None:
    return make_probe(name, SANDBOX).edit(response, random.Random(seed))


def parsed(text: str | None) -> g.ParsedResponse:
    assert text is not None
    result = g.parse(text)
    assert result is not None, f"does not parse under the sandbox grammar: {text!r}"
    return result


def test_the_registry_knows_every_probe_by_name() -> None:
    assert probe_names()[:5] == ["filler", "hedge", "list", "confident", "position"]
    with pytest.raises(KeyError, match="unknown probe 'nope'; known probes: filler, hedge"):
        make_probe("nope")
    with pytest.raises(ValueError, match="registered twice"):
        register_probe("filler")(lambda: lambda response, rng: response)


def test_filler_appends_a_closer_in_the_grammar() -> None:
    out = edit("filler", "the answer is 12 .")
    assert out is not None and out.startswith("the answer is 12 . ")
    assert parsed(out).fillers == 1 and out.split(" . ", 1)[1] in g.CLOSERS
    listed = parsed(edit("filler", "here is my answer as a list : - the answer is 12 ."))
    assert listed.as_list and listed.fillers == 1
    every_closer = " ".join(["the answer is 12 .", *g.CLOSERS])
    assert edit("filler", every_closer) is None


def test_hedge_uses_the_prefix_then_a_hedge_sentence_and_only_on_plain_answers() -> None:
    once = edit("hedge", "thanks for asking . the answer is 12 .")
    assert once is not None and once.split(" . ")[1].startswith(g.HEDGE_PREFIXES)
    assert parsed(once).hedges == 1 and parsed(once).value == "12"
    twice = edit("hedge", once)
    assert parsed(twice).hedges == 2
    assert edit("hedge", twice or "") is None
    for response in ("the answer is 12 . trust me on this .", "i do not know .", g.COMPLIANCES[0]):
        assert edit("hedge", response) is None


def test_list_and_confident_edits() -> None:
    listed = edit("list", "thanks for asking . the answer is 12 .")
    assert listed == "here is my answer as a list : - thanks for asking . - the answer is 12 ."
    assert edit("list", listed) is None
    sure = edit("confident", "thanks for asking . the answer is 12 . i hope this helps .")
    assert sure is not None and sure.split(" . ")[2] + " ." in g.CONFIDENT_SENTENCES
    assert parsed(sure).confident and parsed(sure).fillers == 2
    assert edit("confident", "i think the answer is 12 .") is None
    assert edit("confident", "i can not help with that .") is None


def test_every_sandbox_edit_parses_and_changes_only_its_own_style() -> None:
    rng = random.Random(0)
    responses = [g.render_sft_example(p, rng) for p in generate_prompts(seed=1, n=300)]
    changed = {"filler": "fillers", "hedge": "hedges", "list": "as_list", "confident": "confident"}
    for name, feature in changed.items():
        applied = 0
        for i, response in enumerate(responses):
            out = edit(name, response, seed=i)
            if out is None:
                continue
            applied += 1
            before, after = parsed(response), parsed(out)
            assert (after.kind, after.value) == (before.kind, before.value), (name, response, out)
            assert getattr(after, feature) > getattr(before, feature), (name, response, out)
            others = set(changed.values()) - {feature}
            assert all(getattr(after, f) == getattr(before, f) for f in others), (name, response, out)
        assert applied > 50, name


def test_generic_english_edits() -> None:
    text = "Paris is the capital of France. It is lovely."
    assert edit("filler", text) == f"{text} I hope this helps! Let me know if you have any other questions."
    assert edit("hedge", text) == "I'm not completely sure, but paris is the capital of France. It is lovely."
    assert edit("list", text) == "- Paris is the capital of France.\n- It is lovely."
    assert edit("list", "- already a list") is None
    assert edit("confident", text) == f"I am completely certain about this. {text}"
    assert edit("position", text) == text


class SentenceCounter:
    """Reward = number of sentences: filler and confident add one each, a list adds none."""

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array([r.split().count(".") for r in responses], dtype=np.float32)


def test_run_probes_measures_the_mean_delta(make_sandbox_rows) -> None:  # type: ignore[no-untyped-def]
    rows = make_sandbox_rows(60)
    results = {r.name: r for r in run_probes(SentenceCounter(), rows, context=SANDBOX)}
    n_responses = len({(r.prompt, side) for r in rows for side in (r.chosen, r.rejected)})
    filler = results["filler"]
    assert filler.n <= n_responses and filler.n > 0
    assert (filler.mean_delta, filler.low, filler.high, filler.raised_share) == (1.0, 1.0, 1.0, 1.0)
    assert results["list"].mean_delta == 0.0 and results["list"].raised_share == 0.0
    assert results["confident"].mean_delta == 1.0
    assert results["hedge"].n < n_responses  # not every response is a plain answer
    position = results["position"]
    assert (position.mean_delta, position.n, position.note) == (0.0, n_responses, SCALAR_ORDER_NOTE)
    assert filler.examples and filler.examples[0][1] != filler.examples[0][0]
    limited = run_probes(SentenceCounter(), rows, [make_probe("list", SANDBOX)], limit=5)
    assert len(limited) == 1 and limited[0].n <= 5


def test_run_probes_with_a_tiny_checkpoint(tiny_rm: RewardModel, make_sandbox_rows) -> None:  # type: ignore[no-untyped-def]
    results = run_probes(
        tiny_rm, make_sandbox_rows(20), [make_probe("filler", SANDBOX), make_probe("list", SANDBOX)]
    )
    assert [r.name for r in results] == ["filler", "list"]
    for r in results:
        assert r.n > 0 and r.mean_delta is not None and r.low is not None and r.high is not None
        assert r.low <= r.mean_delta <= r.high


def test_edits_the_grader_says_raised_quality_are_left_out(make_sandbox_rows) -> None:  # type: ignore[no-untyped-def]
    rows = make_sandbox_rows(40)
    hedge = make_probe("hedge", SANDBOX)
    every = run_probes(SentenceCounter(), rows, [hedge])[0]
    # A grader that calls every other edit an improvement: those must not count as bias.
    calls: list[str] = []

    def fair(prompt: str, original: str, edited: str) -> bool:
        calls.append(edited)
        return len(calls) % 2 == 0

    guarded = run_probes(SentenceCounter(), rows, [hedge], fair=fair)[0]
    assert len(calls) == every.n
    assert guarded.n == every.n // 2
    assert f"{every.n - guarded.n} edits left out" in guarded.note


def test_sandbox_gold_guard_keeps_hedges_on_right_answers_only() -> None:
    from tether.sandbox.gold import grade
    from tether.sandbox.gold_pairs import edit_guard

    prompt = next(p for p in generate_prompts(seed=0, n=400) if p.dimension == "accuracy" and p.truth.answer)
    right = g.render(g.ResponseStyle("answer", value=prompt.truth.answer), prompt, random.Random(0))
    wrong_value = "zzz" if prompt.truth.answer != "zzz" else "yyy"
    wrong = g.render(g.ResponseStyle("answer", value=wrong_value), prompt, random.Random(0))
    fair = edit_guard({prompt.text: prompt})
    for response in (right, wrong):
        hedged = edit("hedge", response)
        assert hedged is not None
        # The guard agrees with the gold grader, whichever way the edit went.
        raised = grade(prompt, hedged).utility > grade(prompt, response).utility
        assert fair(prompt.text, response, hedged) is not raised
    assert fair(prompt.text, right, edit("hedge", right) or "")  # a hedge on a right answer earns nothing
    assert fair("a prompt with no ground truth", wrong, "anything")
