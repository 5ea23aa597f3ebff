"""What every labeling operation needs to know about its project, and anchor syncing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.project import Project
from tether.spec.anchors import Anchor, load_anchors
from tether.spec.model import LabelingPolicy
from tether.store import NewPrompt, add_prompts
from tether.store.prompts import prompt_ids_by_key
from tether.store.tasks import ANCHOR, NewTask, add_responses, add_tasks, anchor_task_ids

AnchorMeta = Callable[[Anchor], dict[str, Any]]


@dataclass(frozen=True)
class LabelingContext:
    """The project's labeling policy, its anchors and where they live in the store."""

    project_id: int
    spec_hash: str
    policy: LabelingPolicy
    anchors: dict[str, Anchor]
    anchor_tasks: dict[str, int]
    seed: int

    @property
    def calibration_keys(self) -> list[str]:
        """The calibration set: the first `calibration_size` clear-cut anchors."""
        clear = [key for key, a in self.anchors.items() if a.clear_cut]
        return clear[: self.policy.calibration_size]

    @property
    def task_anchor(self) -> dict[int, Anchor]:
        return {
            task_id: self.anchors[key] for key, task_id in self.anchor_tasks.items() if key in self.anchors
        }


def anchor_key(anchor: Anchor) -> str:
    """Anchors are keyed by id and content, so an edited anchor becomes a new task."""
    # exclude_none: anchors without messages keep the keys they had before conversations
    digest = hashlib.sha256(anchor.model_dump_json(exclude_none=True).encode()).hexdigest()[:10]
    return f"anchor:{anchor.id}:{digest}"


def sync_anchors(
    project: Project, anchors: list[Anchor], meta_for: AnchorMeta | None = None
) -> dict[str, int]:
    """Make sure each anchor has a task; returns anchor key -> task id. Idempotent."""
    with project.store.session() as session:
        existing = anchor_task_ids(session, project_id=project.project_id)
        missing = [a for a in anchors if anchor_key(a) not in existing]
        if missing:
            add_prompts(
                session,
                project_id=project.project_id,
                prompts=[
                    NewPrompt(
                        key=anchor_key(a),
                        text=a.prompt,
                        messages=None if not a.messages or len(a.messages) == 1 else a.messages,
                        dimension=a.dimension,
                        stratum=a.stratum,
                        split="anchor",
                        source="anchor",
                        meta=meta_for(a) if meta_for else {},
                    )
                    for a in missing
                ],
                spec_hash=project.spec_hash,
            )
            ids = prompt_ids_by_key(
                session, project_id=project.project_id, keys=[anchor_key(a) for a in missing]
            )
            responses = add_responses(
                session,
                project_id=project.project_id,
                items=[
                    item
                    for a in missing
                    for item in (
                        (ids[anchor_key(a)], a.response_a, "anchor"),
                        (ids[anchor_key(a)], a.response_b, "anchor"),
                    )
                ],
                spec_hash=project.spec_hash,
            )
            add_tasks(
                session,
                project_id=project.project_id,
                batch_id=None,
                tasks=[
                    NewTask(
                        prompt_id=ids[anchor_key(a)],
                        response_a_id=responses[2 * i],
                        response_b_id=responses[2 * i + 1],
                        kind=ANCHOR,
                        anchor_key=anchor_key(a),
                        origin="anchor",
                    )
                    for i, a in enumerate(missing)
                ],
                spec_hash=project.spec_hash,
            )
            existing = anchor_task_ids(session, project_id=project.project_id)
    return {anchor_key(a): existing[anchor_key(a)] for a in anchors}


def labeling_context(
    project: Project, *, seed: int = 0, meta_for: AnchorMeta | None = None
) -> LabelingContext:
    """Load the spec's anchors, sync them into the store, and bundle the labeling policy."""
    policy = project.spec.labeling
    anchors = load_anchors(project.root / policy.anchors_path, spec=project.spec)
    tasks = sync_anchors(project, anchors, meta_for)
    return LabelingContext(
        project_id=project.project_id,
        spec_hash=project.spec_hash,
        policy=policy,
        anchors={anchor_key(a): a for a in anchors},
        anchor_tasks=tasks,
        seed=seed,
    )


def project_labeling_context(project: Project) -> LabelingContext:
    """The labeling context; a sandbox project also gets ground truth on its anchor prompts,
    so that simulated raters can judge anchors like everything else."""
    from tether.world import world_for

    truth = world_for(project).anchor_truth(project)
    if truth is None:
        return labeling_context(project)
    seed, meta_for = truth
    return labeling_context(project, seed=seed, meta_for=meta_for)
