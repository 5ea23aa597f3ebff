"""RL building blocks: pure, typed tensor functions that the PPO/RLOO loop composes.

- `logprobs`: per-token log-probabilities and entropy from logits;
- `masked`: sums, means and variances over the response tokens of right-padded batches;
- `kl`: the k1/k2/k3 KL estimators against the SFT (reference) policy, made overflow-safe;
- `rewards`: per-token rewards = −β·KL plus the reward-model score on the last token;
- `advantages`: GAE, whitening, RLOO and group-normalized (GRPO-style) baselines;
- `losses`: clipped PPO policy and value losses, explained variance;
- `kl_control`: fixed and adaptive β, the spec's KL budget, KL spike detection;
- `global_batch`: a step's global batch over data-parallel ranks: shards, per-prompt seeds, and
  token means and whitening over the global batch, so N ranks compute what one does.

Shapes: B sequences, T response tokens, V vocabulary. Every per-token tensor is (B, T) and comes
with a (B, T) mask that is 1 on response tokens and 0 on padding. Submodules are imported by
name (``from tether.rl.kl import kl_per_token``) so that importing `kl_control` alone, as the
monitors do, does not load torch.
"""
