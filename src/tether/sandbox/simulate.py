"""`tether label simulate`: the sandbox rater pool answers open work through the human code path.

Each simulated rater pulls items with `next_item` and answers with `submit_judgment`, exactly
as a person in the web app does: calibration first, hidden anchors along the way, and the
same validation, idempotency and status rules. A rater that games anchors is told the experts'
verdict on anchor items (`RaterProfile.games_anchors`), as if it recognized them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tether.errors import TetherInputError
from tether.labeling.context import LabelingContext
from tether.labeling.queue import QueueItem, next_item
from tether.labeling.submit import canonical, submit_judgment
from tether.project import Project
from tether.sandbox.raters import Choice, RaterProfile, SimulatedRater
from tether.sandbox.world import SandboxPrompt
from tether.store.raters import RaterRecord, add_rater, get_rater, list_raters
from tether.store.tasks import ANCHOR


@dataclass(frozen=True)
class SimulationSummary:
    judgments: int
    by_rater: dict[str, int]
    statuses: dict[str, str]


def ensure_simulated_raters(project: Project, profiles: Sequence[RaterProfile]) -> list[RaterRecord]:
    """Create the pool's raters on first use; an existing rater must be a simulated one."""
    with project.store.session() as session:
        existing = {r.name: r for r in list_raters(session, project_id=project.project_id)}
        out = []
        for profile in profiles:
            rater = existing.get(profile.name)
            if rater is None:
                rater = add_rater(
                    session,
                    project_id=project.project_id,
                    name=profile.name,
                    kind="simulated",
                    spec_hash=project.spec_hash,
                    profile=profile.model_dump(mode="json"),
                )
            elif rater.kind != "simulated":
                raise TetherInputError(
                    f"rater '{profile.name}' exists and is a {rater.kind} rater, not simulated"
                )
            out.append(rater)
    return out


def expert_verdict(ctx: LabelingContext, item: QueueItem) -> Choice | None:
    """The experts' verdict on an anchor item, in the order the rater sees it; None for live work."""
    key = item.task.anchor_key
    if item.task.kind != ANCHOR or key is None or key not in ctx.anchors:
        return None
    shown = canonical(ctx.anchors[key].label, bool(item.assignment.swapped))
    return "A" if shown == "A" else "B" if shown == "B" else "tie"


def _step(project: Project, ctx: LabelingContext, rater_id: int, sim: SimulatedRater) -> bool:
    """One pull and answer for one rater; False when the rater has nothing left to do."""
    with project.store.session() as session:
        rater = get_rater(session, project_id=project.project_id, rater_id=rater_id)
        item = next_item(session, ctx, rater)
        if item is None:
            return False
        if not item.task.prompt_meta:
            raise TetherInputError(
                f"task {item.task.task_id} has no sandbox ground truth; simulation needs a sandbox project"
            )
        prompt = SandboxPrompt.from_meta(item.task.prompt_meta)
        verdict = sim.judge(
            prompt, item.left, item.right, item_id=str(item.assignment.id), expert=expert_verdict(ctx, item)
        )
        submit_judgment(
            session,
            ctx,
            rater,
            assignment_id=item.assignment.id,
            choice=verdict.choice,
            strength=verdict.strength,
            rationale=verdict.rationale,
            seconds=verdict.seconds,
            idempotency_key=f"sim-{item.assignment.id}",
        )
    return True


def simulate(
    project: Project,
    ctx: LabelingContext,
    profiles: Sequence[RaterProfile],
    *,
    seed: int,
    on_judgment: Callable[[str], None] | None = None,
) -> SimulationSummary:
    """Round-robin over the pool until no rater has anything left to do."""
    raters = ensure_simulated_raters(project, profiles)
    sims = {r.id: SimulatedRater(p, seed=seed) for r, p in zip(raters, profiles, strict=True)}
    names = {r.id: r.name for r in raters}
    counts: Counter[str] = Counter()
    waiting = [r.id for r in raters]
    while waiting:
        for rater_id in list(waiting):
            if not _step(project, ctx, rater_id, sims[rater_id]):
                waiting.remove(rater_id)
                continue
            counts[names[rater_id]] += 1
            if on_judgment is not None:
                on_judgment(names[rater_id])
    with project.store.session() as session:
        statuses = {
            r.name: r.status for r in list_raters(session, project_id=project.project_id) if r.id in names
        }
    return SimulationSummary(sum(counts.values()), dict(counts), statuses)
