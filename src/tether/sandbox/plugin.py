"""The sandbox as a world (`tether.world.World`): what it gives the stages, found by name.

`tether.world` names this module in its registry; the stages call `world_for(project)` and reach
the sandbox's gold grader, grammar edits, phrase lists, simulated raters, anchors and eval cases
only through it. A project is a sandbox project once its world is built (`tether sandbox build`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.sandbox import gold_pairs
from tether.sandbox.gold import GoldScores, grade
from tether.sandbox.probes import PROBE_EDITS, SANDBOX_LEXICON
from tether.sandbox.world import DIMENSIONS, SandboxPrompt
from tether.spec.style import StyleLexicons
from tether.world import AnchorMeta, EditGuard, GoldHook, ProbeEdit

if TYPE_CHECKING:
    from tether.evals.suite import Case
    from tether.project import Project


class SandboxWorld:
    """The offline synthetic world where the truth is known."""

    name = "sandbox"
    gold_dimensions: tuple[str, ...] = DIMENSIONS

    def _built(self, project: Project) -> Any:
        from tether.artifacts import SANDBOX_WORLD_KIND
        from tether.store import latest_artifact

        with project.store.session() as session:
            return latest_artifact(session, project_id=project.project_id, kind=SANDBOX_WORLD_KIND)

    def claims(self, project: Project) -> bool:
        return self._built(project) is not None

    def lexicon(self, spec_style: StyleLexicons) -> StyleLexicons:
        # The grammar's phrases, whatever the spec says: the sandbox policy says nothing else.
        return SANDBOX_LEXICON

    def probe_edits(self) -> Mapping[str, ProbeEdit]:
        return PROBE_EDITS

    def prompt_truth(self, meta: Mapping[str, Any]) -> SandboxPrompt:
        return SandboxPrompt.from_meta(dict(meta))

    def grade(self, truth: Any, response: str) -> GoldScores:
        return grade(truth, response)

    def gold_hook(self, meta_by_task: Mapping[int, Mapping[str, Any]]) -> GoldHook | None:
        return gold_pairs.gold_hook(meta_by_task)

    def edit_guard(self, prompts: Iterable[tuple[str, Mapping[str, Any]]]) -> EditGuard | None:
        by_text = {}
        for text, meta in prompts:
            try:
                by_text[text] = SandboxPrompt.from_meta(dict(meta))
            except (KeyError, TypeError, ValueError):
                continue  # an imported prompt: no ground truth to grade against
        return gold_pairs.edit_guard(by_text)

    def eval_cases(self, project: Project) -> dict[str, list[Case]]:
        from tether.sandbox.suites import eval_cases

        return eval_cases(project)

    def anchor_truth(self, project: Project) -> tuple[int, AnchorMeta] | None:
        from tether.sandbox.anchors import anchor_prompt_meta

        world = self._built(project)
        if world is None:
            return None
        seed = int(world.meta.get("seed", 0))
        return seed, anchor_prompt_meta(seed)

    def write_anchors(self, path: Path) -> bool:
        # The sandbox derives its anchors from the gold grader instead of shipping them.
        from tether.sandbox.anchors import write_sandbox_anchors

        write_sandbox_anchors(path)
        return True

    def simulate_labels(self, project: Project, *, pool: Path | None, seed: int) -> tuple[int, int]:
        from tether.labeling.context import project_labeling_context
        from tether.sandbox.raters import default_pool, load_pool
        from tether.sandbox.simulate import simulate
        from tether.sandbox.simulate_grading import simulate_grading

        profiles = load_pool(pool) if pool else default_pool()
        summary = simulate(project, project_labeling_context(project), profiles, seed=seed)
        return summary.judgments, simulate_grading(project, seed=seed)


WORLD = SandboxWorld()
