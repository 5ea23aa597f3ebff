"""The one formatting path with conversations, on a byte-level BPE tokenizer with a ChatML template
(`tests.tiny_llama`): what the policy reads, what a reward model reads, and how long conversations
are cut by whole turns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tiny_llama import byte_level_tokenizer
from tether.conversation import as_dicts, conversation
from tether.generation import fitted_prompts
from tether.hf import ScoredLayout, chat_prompt, prompt_ids, reply_closing, scored_text
from tether.reward.data import PreferencePair, encode_pairs

CONV = conversation(
    [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "Another one, larger than ten?"},
        {"role": "assistant", "content": "Eleven."},
        {"role": "user", "content": "And one larger than a hundred?"},
    ]
)


@pytest.fixture(scope="module")
def tok() -> Any:
    return byte_level_tokenizer()


def _template_ids(tok: Any, messages: list[dict[str, str]], **kw: Any) -> list[int]:
    return list(tok.apply_chat_template(messages, tokenize=True, **kw)["input_ids"])


def test_the_policy_reads_the_template_with_a_generation_prompt(tok: Any) -> None:
    expected = _template_ids(tok, as_dicts(CONV), add_generation_prompt=True)
    assert prompt_ids(tok, [CONV]) == [expected]
    # A string is one user message, formatted exactly as before conversations.
    single = tok.apply_chat_template(
        [{"role": "user", "content": "q"}], add_generation_prompt=True, tokenize=False
    )
    assert chat_prompt(tok, "q") == single


def test_the_project_system_prompt_is_added_where_a_conversation_has_none(tok: Any) -> None:
    with_system = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "q"}]
    assert prompt_ids(tok, ["q"], system="Be kind.") == [
        _template_ids(tok, with_system, add_generation_prompt=True)
    ]
    assert prompt_ids(tok, [CONV], system="Be kind.") == prompt_ids(tok, [CONV])  # it has its own


def test_a_reward_model_reads_exactly_the_template_of_the_conversation_and_its_reply(tok: Any) -> None:
    assert reply_closing(tok) == "<|im_end|>\n"
    reply = "One hundred and one."
    layout = ScoredLayout.for_tokenizer(tok)
    expected = _template_ids(tok, [*as_dicts(CONV), {"role": "assistant", "content": reply}])
    assert layout.ids([CONV], [reply]) == [expected]


def test_templates_that_render_a_finished_turn_differently_close_with_eos(tok: Any) -> None:
    # The sandbox's template joins contents and adds its separator only as a generation prompt.
    sandbox_like = byte_level_tokenizer()
    sandbox_like.chat_template = (
        "{% for message in messages %}{{ message['content'] }}{% endfor %}"
        "{% if add_generation_prompt %} [SEP]{% endif %}"
    )
    assert reply_closing(sandbox_like) == sandbox_like.eos_token
    bare = byte_level_tokenizer()
    bare.chat_template = None
    assert reply_closing(bare) == bare.eos_token
    assert scored_text(bare, "q", "r") == f"q\n\nr{bare.eos_token}"  # the layout before conversations


def _length(tok: Any, prompt: Any) -> int:
    return len(prompt_ids(tok, [prompt])[0])


def test_a_long_conversation_loses_whole_turns_from_the_oldest(tok: Any) -> None:
    without_first = (CONV[0], *CONV[3:])  # system, then from the second user turn on
    essential = (CONV[0], CONV[-1])
    full, shorter, shortest = _length(tok, CONV), _length(tok, without_first), _length(tok, essential)
    assert full > shorter > shortest
    fitted, ids = fitted_prompts(tok, [CONV, "q"], budget=shorter, system=None)
    assert fitted[0] == without_first and fitted[1] == "q" and ids[0] == prompt_ids(tok, [without_first])[0]
    fitted, _ = fitted_prompts(tok, [CONV], budget=shortest, system=None)
    assert fitted == [essential]
    # Nothing fits: the shortest form comes back for the caller to refuse (generate raises).
    fitted, ids = fitted_prompts(tok, [CONV], budget=shortest - 1, system=None)
    assert fitted == [essential] and len(ids[0]) == shortest


def test_pairs_are_cut_the_same_on_both_sides_and_those_still_too_long_are_counted(tok: Any) -> None:
    layout = ScoredLayout.for_tokenizer(tok)
    pair = PreferencePair(CONV, "One hundred and one.", "Ninety-seven.", "helpfulness")
    kept_whole = max(map(len, layout.ids([CONV, CONV], [pair.chosen, pair.rejected])))
    cut = (CONV[0], *CONV[3:])
    kept_cut = max(map(len, layout.ids([cut, cut], [pair.chosen, pair.rejected])))
    assert kept_cut < kept_whole
    (encoded,), dropped = encode_pairs(layout, [pair], max_length=kept_cut)
    assert dropped == 0
    assert [encoded.chosen_ids, encoded.rejected_ids] == layout.ids([cut, cut], [pair.chosen, pair.rejected])
    essential = (CONV[0], CONV[-1])
    floor = max(map(len, layout.ids([essential] * 2, [pair.chosen, pair.rejected])))
    kept, dropped = encode_pairs(layout, [pair], max_length=floor - 1)
    assert kept == [] and dropped == 1
