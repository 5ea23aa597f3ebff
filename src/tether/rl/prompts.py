"""The prompts an RL run trains on: the project's "pool" split, drawn in seeded epochs.

Never the "eval" split: those prompts are held out for behavioral suites. Each epoch is a fresh
permutation of the pool made from (seed, epoch) alone, so the data position is just two integers
(epoch, index) and a resumed run draws exactly the prompts the uninterrupted one would have.

A step's batch repeats each prompt `samples_per_prompt` times, ADJACENT (rows [i·k, (i+1)·k) are
prompt i), the layout `tether.rl.advantages.rloo_advantages` expects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tether.conversation import Conversation, Prompt
from tether.errors import TetherInputError


@dataclass(frozen=True)
class PromptItem:
    key: str
    text: str
    """The last user turn: what the grader, the monitors' samples and the reports show."""
    stratum: str = "routine"
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: str = "import"
    messages: Conversation | None = None
    """The whole conversation when it has more than one message; None for a single user turn."""

    @property
    def prompt(self) -> Prompt:
        """What the policy and the reward model read."""
        return self.text if self.messages is None else self.messages


@dataclass
class PromptSampler:
    """Seeded epochs over a fixed prompt list; `state_dict` is the data position."""

    prompts: Sequence[PromptItem]
    seed: int
    epoch: int = 0
    index: int = 0

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError("the prompt pool is empty")
        self._order = self._permutation(self.epoch)

    def _permutation(self, epoch: int) -> list[int]:
        rng = np.random.default_rng([self.seed, epoch])
        return [int(i) for i in rng.permutation(len(self.prompts))]

    def draw(self, n: int) -> list[PromptItem]:
        """The next `n` prompts, moving to a new epoch (new permutation) when this one runs out."""
        out = []
        for _ in range(n):
            if self.index >= len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self.prompts[self._order[self.index]])
            self.index += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index, "n_prompts": len(self.prompts)}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if int(state["n_prompts"]) != len(self.prompts):
            raise TetherInputError(
                f"the checkpoint drew from {state['n_prompts']} pool prompts, the project now has "
                f"{len(self.prompts)}; the data position cannot be restored exactly (start a new run instead)"
            )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = self._permutation(self.epoch)


def baseline_prompts(prompts: Sequence[PromptItem], n: int, seed: int) -> list[PromptItem]:
    """A seeded sample of `n` prompts for the SFT baseline, drawn apart from the training order."""
    rng = np.random.default_rng([seed, 0xBA5E])
    picked = rng.permutation(len(prompts))[: min(n, len(prompts))]
    return [prompts[int(i)] for i in picked]


def repeat_each(items: Sequence[PromptItem], k: int) -> list[PromptItem]:
    """[a, b] -> [a, a, b, b] for k = 2: each prompt's samples adjacent."""
    return [item for item in items for _ in range(k)]
