"""A formatted response survives every hop unchanged: plan -> rater page -> export -> RM input -> RL text.

The policy is a tiny random-init Llama with a byte-level BPE tokenizer and a ChatML template
(`tests.tiny_llama`); a logits processor makes it write the formatted text through the shared
generation path (`tether.generation.generate`), so the text that is planned, shown, exported,
scored and decoded in RL is what the model generated, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from markupsafe import escape

from tether.generation import decode_responses, generate
from tether.hf import ScoredLayout, load_causal_lm, prompt_ids, scored_text
from tether.labeling.batches import plan_batch
from tether.labeling.context import project_labeling_context
from tether.labeling.dataset import export_preferences
from tether.reward.data import encode_pairs, load_preference_data
from tether.rl.rollout import rollout_batch
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.scaffold import init_project
from tether.spec.model import GenerationPolicy
from tether.store.prompts import PromptRecord
from tether.web.app import create_app

from ..test_generation import Force
from ..tiny_llama import save_tiny_llama
from .conftest import WebProject, bearer

CODE = (
    "\nSure, here it is:\n\n```python\ndef clamp(x):\n    if x < 0 and 'a' != \"b\":\n"
    "        return 0  # & done\n    return x\n```\n\n1. first  point\n\t- nested\n"
)
"""Newlines, indentation, a fenced code block, a tab, double spaces and HTML-special characters."""
PLAIN = "Just   the answer,\n\nin two paragraphs. "


def test_a_formatted_response_reaches_raters_export_rm_and_rl_unchanged(tmp_path: Path) -> None:
    model, tokenizer = load_causal_lm(save_tiny_llama(tmp_path / "llama"))

    def write(prompts: list[str], text: str) -> list[str]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        start = max(len(seq) for seq in prompt_ids(tokenizer, prompts))
        sampling = GenerationPolicy(max_new_tokens=len(ids) + 1)  # the text, then EOS
        out = generate(model, tokenizer, prompts, sampling, do_sample=False,
                       logits_processor=Force(ids, int(tokenizer.eos_token_id), start))  # fmt: skip
        return decode_responses(tokenizer, out)

    def sampler(records: Sequence[PromptRecord]) -> list[tuple[str, str]]:
        texts = [r.text for r in records]
        return list(zip(write(texts, CODE), write(texts, PLAIN), strict=True))

    # plan
    project = init_project(tmp_path / "proj", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    plan_batch(project, n=20, sampler=sampler, labels=("sft", "sft"), seed=0)
    ctx = project_labeling_context(project)
    web = WebProject(project, ctx, create_app(project, ctx))
    tokens = [web.add(name, active=True) for name in ("ana", "bob", "cy")]
    # the rater's page: escaped, line breaks and spaces kept (shown with white-space: pre-wrap)
    client, _ = web.signed_in(tokens[0])
    page = client.get("/rate").text
    assert str(escape(CODE)) in page and str(escape(PLAIN)) in page
    assert "&lt; 0 and &#39;a&#39; != &#34;b&#34;" in page and "# &amp; done" in page
    css = client.get("/static/style.css").text
    assert ".text { white-space: pre-wrap;" in css
    # labels through the API: everyone prefers the code answer
    api = web.client()
    for n, token in enumerate(tokens):
        while (item := api.get("/api/v1/assignments/next", headers=bearer(token))).status_code == 200:
            body = item.json()
            choice = "A" if body["left"] == CODE else "B"  # A is the left one as shown
            judgment = {"assignment_id": body["assignment_id"], "choice": choice, "strength": 2,
                        "rationale": "the code answer is what was asked for"}  # fmt: skip
            key = {"Idempotency-Key": f"{n}-{body['assignment_id']}"}
            assert (
                api.post("/api/v1/judgments", headers={**bearer(token), **key}, json=judgment).status_code
                == 201
            )
    # export rows
    export_preferences(project, out=tmp_path / "export", heldout=0.0)
    rows = [
        json.loads(line) for line in (tmp_path / "export" / "train.jsonl").read_text("utf-8").splitlines()
    ]
    plan_rows = [r for r in rows if r["prompt"] in {t.text for t in _planned_prompts(project)}]
    assert plan_rows and all((r["chosen"], r["rejected"]) == (CODE, PLAIN) for r in plan_rows)
    # reward-model input: the encoded ids decode to the scored text, response intact
    data = load_preference_data(tmp_path / "export")
    pair = next(p for p in data.train if p.chosen == CODE)
    [encoded], _ = encode_pairs(ScoredLayout.for_tokenizer(tokenizer), [pair], max_length=512)
    read = tokenizer.decode(encoded.chosen_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert read == scored_text(tokenizer, pair.prompt, CODE) and CODE in read
    # an RL sample of the same text decodes to the same string, so the RM scores what it trained on
    ids = tokenizer(CODE, add_special_tokens=False)["input_ids"]
    force = Force(ids, int(tokenizer.eos_token_id), len(prompt_ids(tokenizer, [pair.prompt])[0]))
    sampling = GenerationPolicy(max_new_tokens=len(ids) + 1)
    out = generate(model, tokenizer, [pair.prompt], sampling, do_sample=False, logits_processor=force)
    batch = rollout_batch(out, decode_responses(tokenizer, out))
    assert batch.responses == [CODE]
    assert scored_text(tokenizer, pair.prompt, batch.responses[0]) == read


def _planned_prompts(project):  # type: ignore[no-untyped-def]
    from tether.store import list_prompts
    from tether.store.tasks import used_prompt_ids

    with project.store.session() as session:
        used = used_prompt_ids(session, project_id=project.project_id)
        return [p for p in list_prompts(session, project_id=project.project_id, split="pool") if p.id in used]
