"""Gold preferences of exported pairs, for reward-model evaluation in the sandbox.

The reward stage takes a plain callable (row -> "chosen" | "rejected" | None) and knows nothing of
the sandbox; this module makes that callable from the gold grader and the prompts' stored truth.
Gold prefers the response with the higher gold utility; equal utility is no preference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from tether.labeling.export import PreferenceRow
from tether.sandbox.gold import grade
from tether.sandbox.world import SandboxPrompt

GoldSide = Literal["chosen", "rejected"]


def gold_side(prompt: SandboxPrompt, chosen: str, rejected: str) -> GoldSide | None:
    """Which side gold prefers, by utility; None when both are worth the same."""
    u_chosen, u_rejected = grade(prompt, chosen).utility, grade(prompt, rejected).utility
    if u_chosen == u_rejected:
        return None
    return "chosen" if u_chosen > u_rejected else "rejected"


def sandbox_prompts_by_task(meta_by_task: Mapping[int, Mapping[str, Any]]) -> dict[int, SandboxPrompt]:
    """The sandbox prompts behind tasks, from each task's stored prompt meta; non-sandbox meta is skipped."""
    out = {}
    for task_id, meta in meta_by_task.items():
        try:
            out[task_id] = SandboxPrompt.from_meta(dict(meta))
        except (KeyError, TypeError, ValueError):
            continue  # an imported or production prompt: no ground truth to grade against
    return out


def gold_hook(meta_by_task: Mapping[int, Mapping[str, Any]]) -> Callable[[PreferenceRow], GoldSide | None]:
    """The gold preference of an exported row, looked up by its task id (None for unknown tasks)."""
    prompts = sandbox_prompts_by_task(meta_by_task)

    def hook(row: PreferenceRow) -> GoldSide | None:
        prompt = prompts.get(row.task_id)
        return None if prompt is None else gold_side(prompt, row.chosen, row.rejected)

    return hook


def edit_guard(prompts_by_text: Mapping[str, SandboxPrompt]) -> Callable[[str, str, str], bool]:
    """Whether a probe's edit left gold utility no higher: only such edits are fair bias probes.

    Prompts without ground truth (not in the map) are kept: there is no grader to ask."""

    def fair(prompt: str, original: str, edited: str) -> bool:
        truth = prompts_by_text.get(prompt)
        return truth is None or grade(truth, edited).utility <= grade(truth, original).utility

    return fair
