"""Targeted relabeling after a failed gate: the fix is usually more diverse labels, not more RL steps.

    targets = remediation_targets(verdict.checks, dimensions=spec.dimension_ids, probes=probe_names())
    plan = plan_remediation(project, targets, n=400, sampler=sampler, label="policy-...", seed=7)

Each failed check of the gate becomes a target with `n` tasks of its own (a probe's bias needs a few
hundred counterfactual pairs to move against thousands of ordinary ones):

- **a probe** (the reward model pays for an edit that should not pay): counterfactual pairs made
  from that probe's own edit, the current policy's response on a fresh pool prompt against the same
  response edited. Raters say whether the edit made it better; a reward model trained on those
  labels sees the edit on its own, without the content it happened to travel with. This is the
  counterfactual augmentation of RM-Bench-style style probes turned into training data. Tasks carry
  origin `probe:<name>` through export and lineage.
- **a dimension's accuracy** (or too few held-out pairs on a critical dimension): that dimension's
  hard, adversarial and edge strata, where a reward model's errors concentrate.
- **overall accuracy or calibration**: the hard strata of the two least accurate dimensions.

Every task goes to the spec's `raters_per_overlap` raters, as red-team findings do: these are
the cases where one rater's taste costs the most. Planning never writes half a batch: prompts,
responses and tasks are written in one transaction, or nothing is.

Relabeling removes a bias only where the raters do not share it. `edit_preference` measures, on
the counterfactual pairs already labeled, how often the majority chose the edited response; when
its 95% interval lies above one half, the raters themselves prefer the edit, more of their labels
would teach the bias again, and the probe is not replanned: the remedy is the raters' guidelines
and calibration (or the spec's bar), which the gate's stop reason then says.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.labeling.metrics import wilson_interval
from tether.labeling.plan import HARD_STRATA
from tether.store import list_prompts
from tether.store.tasks import NewTask, add_responses, add_tasks, create_batch, used_prompt_ids

if TYPE_CHECKING:
    from tether.labeling.export import PreferenceRow
    from tether.project import Project
    from tether.reward.gate import GateCheck
    from tether.store.prompts import PromptRecord

PROBE_ORIGIN = "probe:{name}"
DIMENSION_ORIGIN = "remediation:{name}"
DRAW_ROUNDS = 4
"""Rounds of sampling fresh prompts for a probe's pairs (an edit applies to only some responses)."""

Sample = Callable[[Sequence["PromptRecord"]], list[str]]
"""One response of the current policy per prompt."""
Edit = Callable[[str, random.Random], "str | None"]
Guard = Callable[[str, str, str], bool]
"""(prompt, original, edited) -> True when the edit did not raise quality (the sandbox's gold)."""


@dataclass(frozen=True)
class Target:
    """What one failed check asks to be labeled."""

    kind: str
    """"probe" (counterfactual pairs of that probe's edit) or "dimension" (its hard strata)."""
    name: str
    """The probe's or the dimension's name."""
    reason: str
    """The gate's message for the check that failed."""


@dataclass(frozen=True)
class RemediationPlan:
    """The targeted batch planned after a failed gate attempt."""

    batch_id: int | None
    """None when nothing could be planned (the pool is used up, or no edit applied)."""
    batch: str
    tasks: int
    by_target: dict[str, int] = field(default_factory=dict)
    """Tasks per target ("probe:confident", "remediation:safety")."""
    skipped: list[str] = field(default_factory=list)
    """Targets that got fewer tasks than asked, and why."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "batch": self.batch,
            "tasks": self.tasks,
            "by_target": dict(self.by_target),
            "skipped": list(self.skipped),
        }


def remediation_targets(
    checks: Sequence[GateCheck],
    *,
    dimensions: Sequence[str],
    probes: Sequence[str],
    accuracy: Mapping[str, float | None] | None = None,
) -> list[Target]:
    """One target per failed check, in the gate's order; overall accuracy and ECE name the weakest dimensions.

    `accuracy` (held-out accuracy by dimension) orders the weakest dimensions; unmeasured ones first.
    """
    out: dict[tuple[str, str], Target] = {}
    for check in checks:
        if check.decided != "fail":
            continue
        subject = check.name.rsplit(" ", 1)[0]
        if check.name.endswith(" probe") and subject in probes:
            out.setdefault(("probe", subject), Target("probe", subject, check.message))
        elif check.name.endswith(" accuracy") and subject in dimensions:
            out.setdefault(("dimension", subject), Target("dimension", subject, check.message))
        else:  # overall accuracy or calibration: more labels where the model is weakest
            for dim in weakest(dimensions, accuracy or {}, keep=2):
                out.setdefault(("dimension", dim), Target("dimension", dim, check.message))
    return list(out.values())


def weakest(dimensions: Sequence[str], accuracy: Mapping[str, float | None], *, keep: int) -> list[str]:
    """The `keep` dimensions with the lowest accuracy (unmeasured first, then by name).

    >>> weakest(["a", "b", "c"], {"a": 0.8, "b": 0.7, "c": None}, keep=2)
    ['c', 'b']
    """
    return sorted(dimensions, key=lambda d: (accuracy.get(d) is not None, accuracy.get(d) or 0.0, d))[:keep]


@dataclass(frozen=True)
class _Pair:
    prompt: PromptRecord
    response_a: str
    response_b: str
    source_a: str
    source_b: str
    origin: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class EditPreference:
    """How often the labeled counterfactual pairs of one probe went to the edited response."""

    probe: str
    pairs: int
    """Counterfactual pairs in the export: decided ones and ties (unresolved tasks are not exported)."""
    edited_chosen: int
    low: float | None = None
    """Lower end of the Wilson 95% interval of the share; None when there are no pairs."""
    high: float | None = None
    ties: int = 0
    """Pairs whose majority called the edit no better: ties, which count as not choosing it."""

    @property
    def share(self) -> float | None:
        return self.edited_chosen / self.pairs if self.pairs else None

    @property
    def raters_prefer_edit(self) -> bool:
        """The raters favor the edit beyond chance: relabeling by them cannot remove the bias."""
        return self.low is not None and self.low > 0.5

    def describe(self) -> str:
        if not self.pairs:
            return f"no labeled {self.probe} counterfactual pairs yet"
        ties = f"; {self.ties} were ties (the edit no better)" if self.ties else ""
        return (
            f"raters chose the {self.probe}-edited response in {self.edited_chosen} of {self.pairs} "
            f"counterfactual pairs ({self.share:.0%}, 95% CI {self.low:.0%}-{self.high:.0%}){ties}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "pairs": self.pairs, "edited_chosen": self.edited_chosen,
                "share": self.share, "low": self.low, "high": self.high, "ties": self.ties}  # fmt: skip


def edit_preference(project: Project, rows: Sequence[PreferenceRow], *, probe: str) -> EditPreference:
    """Of the exported rows of `probe`'s counterfactual tasks, how many chose the edited response."""
    from tether.store.tasks import task_view

    origin = PROBE_ORIGIN.format(name=probe)
    mine = [r for r in rows if r.origin == origin]
    chosen_edited = 0
    with project.store.session() as session:
        for row in mine:
            view = task_view(session, task_id=row.task_id)
            edited = view.response_a if view.meta.get("edited_side") == "a" else view.response_b
            chosen_edited += not row.tie and row.chosen == edited
    if not mine:
        return EditPreference(probe, 0, 0)
    ties = sum(row.tie for row in mine)
    return EditPreference(probe, len(mine), chosen_edited, *wilson_interval(chosen_edited, len(mine)), ties)


def fresh_prompts(project: Project, *, seed: int) -> list[PromptRecord]:
    """Unused pool prompts (never in a batch, never in the eval split), in a seeded order."""
    with project.store.session() as session:
        used = used_prompt_ids(session, project_id=project.project_id)
        pool = [
            p for p in list_prompts(session, project_id=project.project_id, split="pool") if p.id not in used
        ]
    random.Random(seed).shuffle(pool)
    return pool


def counterfactual_pairs(
    prompts: list[PromptRecord],
    *,
    probe: str,
    edit: Edit,
    n: int,
    sample: Sample,
    label: str,
    seed: int,
    guard: Guard | None = None,
) -> list[_Pair]:
    """Up to `n` (response, edited response) pairs on prompts taken from the front of `prompts`.

    Prompts are drawn in rounds of 2n, since an edit applies to some responses only (a hedge
    needs a plain answer); used prompts are removed from `prompts`. The edited side is A or B
    at random, so the canonical order tells nothing."""
    rng = random.Random(f"{seed}:{probe}")
    out: list[_Pair] = []
    for _ in range(DRAW_ROUNDS):
        if len(out) >= n or not prompts:
            break
        batch = prompts[: 2 * (n - len(out))]
        del prompts[: len(batch)]
        for prompt, response in zip(batch, sample(batch), strict=True):
            edited = edit(response, rng)
            if edited is None or edited == response or len(out) >= n:
                continue
            if guard is not None and not guard(prompt.text, response, edited):
                continue  # the edit made it better: not a bias to unlearn
            origin = PROBE_ORIGIN.format(name=probe)
            swap = rng.random() < 0.5
            a, b = (edited, response) if swap else (response, edited)
            sa, sb = (origin, label) if swap else (label, origin)
            meta = {"probe": probe, "edited_side": "a" if swap else "b"}
            out.append(_Pair(prompt, a, b, sa, sb, origin, meta))
    return out


def hard_pairs(
    prompts: list[PromptRecord], *, dimension: str, n: int, sample_two: Callable[..., list[tuple[str, str]]],
    label: tuple[str, str],
) -> list[_Pair]:  # fmt: skip
    """Up to `n` pairs of two policy samples on the dimension's unused hard, adversarial and edge prompts."""
    origin = DIMENSION_ORIGIN.format(name=dimension)
    eligible = [p for p in prompts if p.dimension == dimension and p.stratum in HARD_STRATA]
    out: list[_Pair] = []
    for _ in range(DRAW_ROUNDS):
        if len(out) >= n or not eligible:
            break
        batch = eligible[: round(1.25 * (n - len(out))) + 1]
        del eligible[: len(batch)]
        for prompt, (a, b) in zip(batch, sample_two(batch), strict=True):
            if a != b and len(out) < n:
                out.append(_Pair(prompt, a, b, label[0], label[1], origin, {"remediation": dimension}))
    taken = {p.prompt.id for p in out}
    prompts[:] = [p for p in prompts if p.id not in taken]
    return out


def write_batch(project: Project, pairs: Sequence[_Pair], *, name: str, meta: dict[str, Any]) -> int:
    """The batch, its responses and its tasks in one transaction; every task to `raters_per_overlap`."""
    raters = project.spec.labeling.raters_per_overlap
    project_id, spec_hash = project.project_id, project.spec_hash
    with project.store.session() as session:
        batch_id = create_batch(session, project_id=project_id, name=name, meta=meta, spec_hash=spec_hash)
        ids = add_responses(
            session,
            project_id=project_id,
            items=[
                row
                for p in pairs
                for row in ((p.prompt.id, p.response_a, p.source_a), (p.prompt.id, p.response_b, p.source_b))
            ],
            spec_hash=spec_hash,
        )
        tasks = [
            NewTask(
                prompt_id=p.prompt.id,
                response_a_id=ids[2 * i],
                response_b_id=ids[2 * i + 1],
                raters_needed=raters,
                origin=p.origin,
                meta=p.meta,
            )
            for i, p in enumerate(pairs)
        ]
        add_tasks(session, project_id=project_id, batch_id=batch_id, tasks=tasks, spec_hash=spec_hash)
    return batch_id


def plan_remediation(
    project: Project,
    targets: Sequence[Target],
    *,
    n: int,
    sample: Sample,
    sample_two: Callable[..., list[tuple[str, str]]],
    labels: tuple[str, str],
    name: str,
    seed: int,
    edits: Mapping[str, Edit],
    guard: Guard | None = None,
) -> RemediationPlan:
    """Plan `n` tasks for each of `targets` on fresh pool prompts and write them as one batch.

    `edits` maps each probe's name to its edit; `sample` gives one policy response per prompt and
    `sample_two` two (for a dimension's hard pairs), `labels` name their sources."""
    prompts = fresh_prompts(project, seed=seed)
    pairs: list[_Pair] = []
    by_target: dict[str, int] = {}
    skipped: list[str] = []
    for target in targets:
        budget = n
        if target.kind == "probe":
            got = counterfactual_pairs(
                prompts,
                probe=target.name,
                edit=edits[target.name],
                n=budget,
                sample=sample,
                label=labels[0],
                seed=seed,
                guard=guard,
            )
            key = PROBE_ORIGIN.format(name=target.name)
        else:
            got = hard_pairs(prompts, dimension=target.name, n=budget, sample_two=sample_two, label=labels)
            key = DIMENSION_ORIGIN.format(name=target.name)
        pairs.extend(got)
        by_target[key] = len(got)
        if len(got) < budget:
            skipped.append(f"{key}: {len(got)} of {budget} tasks (the unused pool ran short)")
    if not pairs:
        return RemediationPlan(None, name, 0, by_target, skipped)
    meta = {
        "origin": "remediation",
        "sources": sorted({labels[0], labels[1]}),
        "tasks": len(pairs),
        "overlapped": len(pairs),
        "raters_per_task": project.spec.labeling.raters_per_overlap,
        "targets": [{"kind": t.kind, "name": t.name, "reason": t.reason} for t in targets],
        "by_target": by_target,
    }
    batch_id = write_batch(project, pairs, name=name, meta=meta)
    return RemediationPlan(batch_id, name, len(pairs), by_target, skipped)
