"""Planning a labeling batch into the store: prompts, two candidate responses, tasks and slots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.conversation import Prompt
from tether.generation import Sampling, sample_responses
from tether.hf import load_causal_lm
from tether.labeling.plan import (
    Generate,
    PlannedPair,
    PlanSummary,
    draw_pairs,
    focus_quotas,
    overlap_flags,
    summarize,
)
from tether.project import Project
from tether.store import list_prompts
from tether.store.prompts import PromptRecord
from tether.store.tasks import NewTask, add_responses, add_tasks, create_batch, used_prompt_ids


@dataclass(frozen=True)
class PolicySource:
    """A checkpoint that writes candidate responses; `label` is recorded with each response."""

    path: Path
    label: str


class PairSampler:
    """Two responses per prompt: two samples of one policy, or the policy against a baseline.

    `generation` is how both sample: the project's spec `generation` section with any CLI overrides
    applied. It has no default, so no caller samples with lengths its project did not ask for."""

    def __init__(
        self,
        policy: PolicySource,
        baseline: PolicySource | None,
        *,
        seed: int,
        generation: Sampling,
    ) -> None:
        self.policy, self.baseline, self.seed = policy, baseline, seed
        self.generation = generation
        self._models = {policy.path: load_causal_lm(policy.path)}
        if baseline is not None:
            self._models[baseline.path] = load_causal_lm(baseline.path)
        self.calls = 0

    def _sample(self, source: PolicySource, texts: list[Prompt], seed: int) -> list[str]:
        model, tokenizer = self._models[source.path]
        return sample_responses(model, tokenizer, texts, config=self.generation, seed=seed)

    def sample_one(self, prompts: Sequence[PromptRecord]) -> list[str]:
        """One response of the policy per prompt (a counterfactual pair edits it)."""
        base = self.seed + 1000 * self.calls
        self.calls += 1
        return self._sample(self.policy, [p.prompt for p in prompts], base)

    def __call__(self, prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
        texts = [p.prompt for p in prompts]
        base = self.seed + 1000 * self.calls
        self.calls += 1
        first = self._sample(self.policy, texts, base)
        second = self._sample(self.baseline or self.policy, texts, base + 1)
        return list(zip(first, second, strict=True))

    @property
    def labels(self) -> tuple[str, str]:
        return self.policy.label, (self.baseline or self.policy).label


@dataclass(frozen=True)
class PlannedBatch:
    batch_id: int
    summary: PlanSummary


def plan_batch(
    project: Project,
    *,
    n: int,
    sampler: Generate,
    labels: tuple[str, str],
    seed: int,
    name: str | None = None,
    origin: str = "plan",
    focus: Mapping[str, float] | None = None,
    focus_share: float = 0.0,
) -> PlannedBatch:
    """Draw a stratified batch from unused pool prompts and write it as tasks.

    `sampler` writes two candidate responses per prompt (a `PairSampler` over checkpoints, or
    any function with that signature); `labels` name the two sources on the stored responses.
    `focus` (weights by dimension) steers `focus_share` of the batch, as `tether loop` does with
    the previous iteration's diagnosis.
    """
    policy = project.spec.labeling
    with project.store.session() as session:
        used = used_prompt_ids(session, project_id=project.project_id)
        pool = [
            p for p in list_prompts(session, project_id=project.project_id, split="pool") if p.id not in used
        ]
    quotas = focus_quotas(n, project.spec.dimension_ids, policy, focus or {}, focus_share)
    pairs = draw_pairs(pool, quotas, sampler, seed=seed)
    flags = overlap_flags(len(pairs), policy, seed=seed)
    summary = summarize(pairs, flags)
    batch_id = _write(project, pairs, flags, labels, name or f"batch-seed{seed}-n{n}", summary, origin)
    return PlannedBatch(batch_id, summary)


def _write(
    project: Project,
    pairs: Sequence[PlannedPair],
    flags: Sequence[bool],
    labels: tuple[str, str],
    name: str,
    summary: PlanSummary,
    origin: str,
) -> int:
    k = project.spec.labeling.raters_per_overlap
    meta = {
        "sources": list(labels),
        "tasks": summary.tasks,
        "overlapped": summary.overlapped,
        "hard_share": summary.hard_share,
        "dimension_shares": summary.dimension_shares,
    }
    with project.store.session() as session:
        batch_id = create_batch(
            session, project_id=project.project_id, name=name, meta=meta, spec_hash=project.spec_hash
        )
        ids = add_responses(
            session,
            project_id=project.project_id,
            items=[
                item
                for p in pairs
                for item in ((p.prompt.id, p.response_a, labels[0]), (p.prompt.id, p.response_b, labels[1]))
            ],
            spec_hash=project.spec_hash,
        )
        add_tasks(
            session,
            project_id=project.project_id,
            batch_id=batch_id,
            tasks=[
                NewTask(
                    prompt_id=p.prompt.id,
                    response_a_id=ids[2 * i],
                    response_b_id=ids[2 * i + 1],
                    raters_needed=k if flag else 1,
                    origin=origin,
                )
                for i, (p, flag) in enumerate(zip(pairs, flags, strict=True))
            ],
            spec_hash=project.spec_hash,
        )
    return batch_id
