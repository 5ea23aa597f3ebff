"""Sampling, the response logits, and the single-pass RLOO update that reuses the rollout's forward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
import torch

from tests.rl.test_loop_support import TINY_RL, single_thread, tiny_project, tiny_template  # noqa: F401
from tether.artifacts import POLICY_KIND, resolve
from tether.project import Project
from tether.rl.config import RLConfig
from tether.rl.experience import ScoreProcessing, collect_experience, collect_experience_with_graph
from tether.rl.inputs import pool_prompts
from tether.rl.models import PolicyAndValue, build_models, response_logits
from tether.rl.prefix import prompt_groups
from tether.rl.prompts import repeat_each
from tether.rl.rollout import HFGenerateRollout, RolloutBatch, inverse_cdf_sampler, sample_inverse_cdf
from tether.rl.update import Targets, ppo_update, single_pass_update


def frequencies(draws: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(draws.flatten(), minlength=vocab).float() / draws.numel()


def test_inverse_cdf_draws_the_softmax_distribution() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    logits = probs.log().expand(20_000, 4)  # one row per draw; log 0 = -inf is never drawn
    torch.manual_seed(0)
    draws = sample_inverse_cdf(logits)
    # 20,000 draws: the standard error of a share is at most 0.0035, so 0.015 is over 4 of them
    assert torch.allclose(frequencies(draws, 4), probs, atol=0.015)
    assert int((draws == 3).sum()) == 0


def test_inverse_cdf_handles_extreme_logits_and_names_non_finite_ones() -> None:
    huge = torch.tensor([[1e30, 0.0, -1e30], [0.0, 0.0, 80.0]])
    torch.manual_seed(0)
    assert sample_inverse_cdf(huge).tolist() == [0, 2]
    with pytest.raises(ValueError, match="non-finite logits"):
        sample_inverse_cdf(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="non-finite logits"):
        sample_inverse_cdf(torch.full((1, 3), float("-inf")))


def test_the_logits_processor_leaves_one_token_drawn_at_the_temperature() -> None:
    scores = torch.tensor([[2.0, 1.0, 0.0]]).expand(20_000, 3)
    processor = inverse_cdf_sampler(0.5)
    torch.manual_seed(1)
    out = processor(torch.zeros(20_000, 1, dtype=torch.long), scores)  # type: ignore[operator]
    assert bool((torch.isfinite(out).sum(dim=1) == 1).all())
    # softmax([4, 2, 0]) = [0.867, 0.117, 0.016]: the temperature sharpened softmax([2, 1, 0]);
    # standard errors at most 0.0024 for 20,000 draws, so 0.015 is over 6 of them
    expected = torch.softmax(scores[0] / 0.5, dim=0)
    assert torch.allclose(frequencies(out.argmax(dim=1), 3), expected, atol=0.015)


@dataclass
class FixedRollout:
    """The same batch whatever the prompts: both update paths must see identical samples."""

    batch: RolloutBatch

    def generate(self, prompts: Sequence[str]) -> RolloutBatch:
        assert len(prompts) == self.batch.sequences.shape[0]
        return self.batch


class CharacterScorer:
    """A deterministic reward that tells responses apart: their character codes, mod 7."""

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.asarray([sum(map(ord, r)) % 7 for r in responses], dtype=np.float32)


def setup(project: Project, cfg: RLConfig):  # type: ignore[no-untyped-def]
    from accelerate import Accelerator

    from tether.rl.state import prepare

    sft = resolve(project, kind=POLICY_KIND, explicit=None).path
    models = build_models(
        sft, policy_path=None, critic_path=None, critic_from_rm=None, value_init="policy", seed=0
    )
    accelerator = Accelerator(cpu=True)
    model, optimizer, _ = prepare(models, cfg, accelerator)
    return models, model, optimizer, accelerator


@pytest.mark.parametrize("repeats", [1, 3])
def test_response_logits_and_their_gradients_match_a_full_forward(
    tiny_project: Project,  # noqa: F811
    repeats: int,
) -> None:
    """One row per prompt takes the plain path; three take the shared-prompt path (tether.rl.prefix).

    Compared in float64. A gradient entry is a sum over the batch's 240 token positions of terms of
    the order of the tensor's largest entries (~150 here), and the two paths sum them in different
    orders (the shared path runs 4 prompt rows and adds the 3 copies' gradients through the cache's
    index). In float32 that leaves up to ~7 eps of the tensor's scale on any entry, the small ones
    where the terms cancel included (c_proj.bias: 2.8e-5 on an entry of -0.155, over rtol 1e-4 plus
    atol 1e-5), so no per-entry rtol bounds it, and which entries land there depends on the CPU's
    kernels and on the tiny policy trained on it. Float64 leaves under 20 eps64 of the scale over 10
    seeds (1.2e-13 absolute here): rtol = atol = 1e-9 is a thousandfold margin, and a real discrepancy
    (a wrong position, mask or cache row; even a 1e-7 relative change to one path) exceeds it."""
    models, *_ = setup(tiny_project, TINY_RL)
    policy = models.trainable.policy
    prompts = [p.text for p in repeat_each(pool_prompts(tiny_project)[:4], repeats)]
    torch.manual_seed(0)
    batch = HFGenerateRollout(policy, models.tokenizer, 8).generate(prompts)  # sampled in float32
    policy.double()  # both reads below in float64; the token ids carry no dtype
    p = batch.prompt_width
    assert (prompt_groups(batch.sequences[:, :p], batch.attention_mask[:, :p]) is None) == (repeats == 1)
    shape = (batch.response_ids.shape[0], batch.response_ids.shape[1], policy.config.vocab_size)
    weights = torch.randn(shape, dtype=torch.float64)
    grads = []
    for read in ("full", "response_logits"):
        policy.zero_grad(set_to_none=True)
        if read == "full":
            inputs = {"attention_mask": batch.attention_mask, "position_ids": batch.position_ids}
            logits = policy(input_ids=batch.sequences, **inputs).logits[:, p - 1 : -1]  # (B, R, V)
        else:
            logits = response_logits(policy, batch)  # (B, R, V)
        (logits * weights).sum().backward()
        grads.append((logits.detach(), {k: v.grad.clone() for k, v in policy.named_parameters()}))
    (full, full_grads), (kept, kept_grads) = grads
    assert kept.shape == full.shape == (len(prompts), batch.sequences.shape[1] - p, full.shape[-1])
    assert kept.dtype == full.dtype == torch.float64
    assert torch.allclose(kept, full, rtol=1e-9, atol=1e-9)
    assert all(torch.allclose(kept_grads[k], full_grads[k], rtol=1e-9, atol=1e-9) for k in full_grads)


def test_shared_prefill_samples_the_tokens_a_full_prefill_does(tiny_project: Project) -> None:  # noqa: F811
    from transformers import LogitsProcessorList

    from tether.rl.rollout import left_padded
    from tether.sandbox.policy import prompt_ids

    models, *_ = setup(tiny_project, TINY_RL)
    policy, tok = models.trainable.policy, models.tokenizer
    prompts = [p.text for p in repeat_each(pool_prompts(tiny_project)[:4], 3)]
    torch.manual_seed(3)
    shared = HFGenerateRollout(policy, tok, 10).generate(prompts)
    ids, mask = left_padded(prompt_ids(tok, prompts), tok.pad_token_id)
    torch.manual_seed(3)
    full = policy.generate(  # type: ignore[operator]
        input_ids=ids,
        attention_mask=mask,
        do_sample=False,
        logits_processor=LogitsProcessorList([inverse_cdf_sampler(1.0)]),
        max_new_tokens=10,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )  # (B, P + R)
    response = full[:, ids.shape[1] :]
    assert shared.response_ids.shape == response.shape
    kept = shared.response_mask.bool()
    assert torch.equal(shared.response_ids[kept], response[kept])
    assert len(set(shared.responses)) > 4  # rows of one prompt drew different responses


def test_a_group_seeded_alone_draws_the_same_tokens_whatever_else_is_in_the_batch(
    tiny_project: Project,  # noqa: F811
) -> None:
    """`seed_per_prompt`: prompt B's k samples are the same tokens next to A (one rank holding both)
    or alone (another world size), and the global generator is left untouched."""
    models, *_ = setup(tiny_project, TINY_RL)
    rollout = HFGenerateRollout(models.trainable.policy, models.tokenizer, 10)
    a, b = (p.text for p in pool_prompts(tiny_project)[:2])
    before = torch.get_rng_state()
    both = rollout.generate_groups([a, a, a, b, b, b], [11, 22])
    alone = rollout.generate_groups([b, b, b], [22])
    assert torch.equal(torch.get_rng_state(), before)
    assert both.responses[3:] == alone.responses and len(set(both.responses)) > 2
    kept = alone.response_mask.bool()
    width = alone.response_ids.shape[1]
    assert torch.equal(both.response_ids[3:, :width][kept], alone.response_ids[kept])
    assert torch.equal(both.response_mask[3:, :width], alone.response_mask)
    assert rollout.generate_groups([b, b, b], [23]).responses != alone.responses  # another seed
    with pytest.raises(ValueError, match="equal groups"):
        rollout.generate_groups([a, a, b], [1, 2])


def test_single_pass_rloo_update_equals_the_two_pass_one(tiny_project: Project) -> None:  # noqa: F811
    """Reusing the rollout's forward for the update is the same step as TRL's no-grad pass + update."""
    cfg = replace(TINY_RL, algo="rloo", ppo_epochs=1, minibatches=1, lr=1e-2)
    assert cfg.single_pass
    items = repeat_each(pool_prompts(tiny_project)[:4], cfg.samples_per_prompt)
    models, *_ = setup(tiny_project, cfg)
    torch.manual_seed(0)
    batch = HFGenerateRollout(models.trainable.policy, models.tokenizer, 10).generate([p.text for p in items])
    kwargs = {"temperature": 1.0, "processing": ScoreProcessing(), "kl_estimator": "k1", "chunk": 8}
    after = []
    for fused in (False, True):
        models, model, optimizer, accelerator = setup(tiny_project, cfg)
        inner = accelerator.unwrap_model(model)
        assert isinstance(inner, PolicyAndValue)
        rollout, scorer = FixedRollout(batch), CharacterScorer()
        if fused:
            exp, logprobs = collect_experience_with_graph(
                model, models.reference, rollout, scorer, items, **kwargs
            )
        else:
            exp = collect_experience(inner, models.reference, rollout, scorer, items, **kwargs)
        advantages = (exp.scores - exp.scores.mean()).unsqueeze(1) * exp.mask.float()  # (B, R)
        targets = Targets(advantages, None)
        if fused:
            out = single_pass_update(model, optimizer, exp, logprobs, targets, cfg, accelerator=accelerator)
        else:
            out = ppo_update(model, optimizer, exp, targets, cfg, accelerator=accelerator, step=0)
        # Gradients, not weights: Adam's first step is lr·sign(g), which float noise flips where g ≈ 0
        grads = {k: v.grad.clone() for k, v in inner.policy.named_parameters() if v.grad is not None}
        after.append((exp, out, grads))
    (two, two_out, two_w), (one, one_out, one_w) = after
    assert torch.allclose(one.logprobs, two.logprobs, atol=1e-5)
    assert torch.allclose(one.entropy, two.entropy, atol=1e-5)
    assert torch.allclose(one.kl, two.kl, atol=1e-5)
    assert one_out["losses/grad_norm"] > 0
    assert one_out["losses/grad_norm"] == pytest.approx(two_out["losses/grad_norm"], rel=1e-4)
    assert one_w.keys() == two_w.keys() and len(one_w) > 4
    # float32 here (the log-probabilities and losses are float32 by design, so no float64 run). A
    # gradient entry is a sum over the batch's n = B·(P+R) token positions whose terms are of the order
    # of the tensor's largest entry, summed in a different order by each path: where they cancel, an
    # entry is small but its rounding error is not, so the bound is on the tensor's scale, n·eps of
    # max|g| (the worst-case bound on an n-term sum: 176 eps ≈ 2e-5; measured at most 4 eps).
    bound = batch.sequences.numel() * torch.finfo(torch.float32).eps
    assert all((one_w[k] - two_w[k]).abs().max() <= bound * two_w[k].abs().max() for k in two_w)
