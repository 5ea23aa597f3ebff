"""Routing findings to labeling: each becomes a hard-case comparison, the finding against a baseline.

    result = route(project, top=50)          # `tether redteam route --top 50`

The open findings with the largest gaps become one new labeling batch. Each task compares the
finding's response with a baseline on the same prompt: the SFT output the search stored, or, for a
finding without one (a red-teamer's submission), a fresh sample of the SFT policy. Raters then say
which is better, and those labels teach the next reward model the failure the finding exposed.
Tasks carry origin "redteam" and the finding id in their meta, so exports show where each
comparison came from; every task goes to the spec's `raters_per_overlap` raters, because a hard
case is where one rater's mistake costs the most and where agreement is worth measuring.

Routing is idempotent: only open findings are routed, and the batch, its tasks and the findings'
"routed" status are written in one transaction, so routing twice never duplicates a task.
A finding is skipped, with the reason, when its prompt is in the held-out eval split (labels on
it would leak into training), when its prompt is new and it names no dimension, or when the SFT
policy keeps giving the finding's own response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tether.conversation import from_stored
from tether.errors import TetherInputError
from tether.evals.redteam_inputs import BASELINE_TRIES, prompts_by_text, sft_baselines
from tether.hashing import sha256_text
from tether.store import add_prompts
from tether.store.findings import FindingRecord, list_findings, mark_routed
from tether.store.prompts import NewPrompt, PromptRecord, prompt_ids_by_key
from tether.store.tasks import NewTask, add_responses, add_tasks, create_batch

if TYPE_CHECKING:
    from tether.project import Project

ORIGIN = "redteam"
NEW_PROMPT_STRATUM = "adversarial"
"""Stratum of a red-teamer's prompt that the pool did not have: it was written to break the model."""


@dataclass(frozen=True)
class RouteResult:
    """The batch routing created, and the findings it could not route."""

    batch_id: int | None
    """None when nothing was routed."""
    task_ids: list[int]
    finding_ids: list[int]
    """Routed findings, in the order of `task_ids`."""
    raters_per_task: int
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """(finding id, why) of chosen findings that were not routed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "task_ids": self.task_ids,
            "finding_ids": self.finding_ids,
            "raters_per_task": self.raters_per_task,
            "skipped": [{"finding_id": i, "reason": why} for i, why in self.skipped],
        }


def choose_findings(
    findings: Sequence[FindingRecord], *, top: int, min_gap: float | None
) -> list[FindingRecord]:
    """The first `top` findings (they arrive largest gap first) whose gap is at least `min_gap`.

    With a `min_gap`, findings without a gap (not scored) are left out: they cannot clear a bar."""
    if top < 1:
        raise TetherInputError(f"--top must be at least 1, got {top}")
    kept = [f for f in findings if min_gap is None or (f.gap is not None and f.gap >= min_gap)]
    return kept[:top]


def new_prompt_key(text: str) -> str:
    """A stable pool key for a red-teamer's prompt, so routing it twice never adds it twice."""
    return f"redteam-{sha256_text(text)[:16]}"


def place_prompt(
    finding: FindingRecord, known: dict[str, PromptRecord], dimensions: Sequence[str]
) -> PromptRecord | NewPrompt | str:
    """The stored prompt a finding's task goes on, a new pool prompt for it, or why there is none."""
    # A conversation is matched by none of the stored prompts' texts (those are single turns or
    # other conversations' last turns): it gets a prompt of its own.
    stored = None if finding.messages else known.get(finding.prompt)
    if stored is not None:
        if stored.split == "eval":
            return "its prompt is in the held-out eval split; labels on it would leak into training"
        return stored
    if finding.dimension is None:
        return "its prompt is not in the project and it names no dimension to file it under"
    if finding.dimension not in dimensions:
        return f"its dimension '{finding.dimension}' is not in the spec ({', '.join(dimensions)})"
    return NewPrompt(
        key=new_prompt_key(finding.prompt if not finding.messages else finding.content_hash),
        text=finding.prompt,
        messages=finding.messages,
        dimension=finding.dimension,
        stratum=NEW_PROMPT_STRATUM,
        split="pool",
        source=ORIGIN,
        meta={"finding_id": finding.id},
    )


def missing_baselines(
    project: Project, findings: Sequence[FindingRecord], *, seed: int
) -> tuple[dict[int, str], str]:
    """SFT samples for the findings without a usable baseline (none, or their own response), by id."""
    needing = [f for f in findings if not f.baseline_response or f.baseline_response == f.response]
    pairs = [(from_stored(f.prompt, f.messages), f.response) for f in needing]  # the whole conversation
    sampled, name = sft_baselines(project, pairs, seed=seed)
    return {needing[i].id: text for i, text in sampled.items()}, name


@dataclass(frozen=True)
class Routed:
    """One finding ready to become a task: where its prompt lives and what it is compared with."""

    finding: FindingRecord
    prompt: PromptRecord | NewPrompt
    baseline: str
    response_source: str
    """Recorded on the stored response: the policy that wrote it, or "redteam:<source>"."""
    baseline_source: str


def response_sources(finding: FindingRecord, sampled_from: str | None) -> tuple[str, str]:
    """Who wrote the finding's response and its baseline, as stored response sources record it."""
    policy = (finding.meta.get("policy") or {}).get("artifact_id")
    baseline = (finding.meta.get("baseline_policy") or {}).get("artifact_id")
    return policy or f"{ORIGIN}:{finding.source}", sampled_from or baseline or f"{ORIGIN}:baseline"


def route(project: Project, *, top: int = 50, min_gap: float | None = None, seed: int = 0) -> RouteResult:
    """Turn the `top` open findings (gap at least `min_gap`) into a labeling batch of comparisons."""
    with project.store.session() as session:
        open_findings = list_findings(session, project_id=project.project_id, status="open")
    chosen = choose_findings(open_findings, top=top, min_gap=min_gap)
    known = prompts_by_text(project)
    placed = {f.id: place_prompt(f, known, project.spec.dimension_ids) for f in chosen}
    skipped = [(f.id, where) for f in chosen if isinstance(where := placed[f.id], str)]
    routable = [f for f in chosen if not isinstance(placed[f.id], str)]
    sampled, sft_name = missing_baselines(project, routable, seed=seed)
    items: list[Routed] = []
    for f in routable:
        prompt = placed[f.id]
        assert not isinstance(prompt, str)  # narrowed: skipped findings are not routable
        if f.id in sampled:
            baseline, sources = sampled[f.id], response_sources(f, sft_name)
        elif f.baseline_response and f.baseline_response != f.response:
            baseline, sources = f.baseline_response, response_sources(f, None)
        else:
            skipped.append(
                (f.id, f"the SFT policy gave the finding's own response in {BASELINE_TRIES} samples")
            )
            continue
        items.append(Routed(f, prompt, baseline, *sources))
    return _write(project, items, skipped)


def _write(project: Project, items: Sequence[Routed], skipped: list[tuple[int, str]]) -> RouteResult:
    raters = project.spec.labeling.raters_per_overlap
    project_id, spec_hash = project.project_id, project.spec_hash
    with project.store.session() as session:
        # Re-read inside the writing transaction: a concurrent `route` may have taken some already.
        still_open = {f.id for f in list_findings(session, project_id=project_id, status="open")}
        items = [i for i in items if i.finding.id in still_open]
        if not items:
            return RouteResult(None, [], [], raters, skipped)
        new = {i.prompt.key: i.prompt for i in items if isinstance(i.prompt, NewPrompt)}
        add_prompts(session, project_id=project_id, prompts=list(new.values()), spec_hash=spec_hash)
        new_ids = prompt_ids_by_key(session, project_id=project_id, keys=list(new))
        prompt_ids = [
            new_ids[i.prompt.key] if isinstance(i.prompt, NewPrompt) else i.prompt.id for i in items
        ]
        batch_id = create_batch(
            session,
            project_id=project_id,
            name=f"redteam-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-n{len(items)}",
            meta=_batch_meta(items, raters),
            spec_hash=spec_hash,
        )
        responses = add_responses(
            session,
            project_id=project_id,
            items=[
                row
                for pid, i in zip(prompt_ids, items, strict=True)
                for row in (
                    (pid, i.finding.response, i.response_source),
                    (pid, i.baseline, i.baseline_source),
                )
            ],
            spec_hash=spec_hash,
        )
        tasks = [
            NewTask(
                prompt_id=pid,
                response_a_id=responses[2 * n],
                response_b_id=responses[2 * n + 1],
                raters_needed=raters,
                origin=ORIGIN,
                meta={"finding_id": i.finding.id, "finding_side": "a", "finding_source": i.finding.source},
            )
            for n, (pid, i) in enumerate(zip(prompt_ids, items, strict=True))
        ]
        task_ids = add_tasks(
            session, project_id=project_id, batch_id=batch_id, tasks=tasks, spec_hash=spec_hash
        )
        finding_ids = [i.finding.id for i in items]
        mark_routed(session, finding_ids=finding_ids, task_ids=task_ids)
    return RouteResult(batch_id, task_ids, finding_ids, raters, skipped)


def _batch_meta(items: Sequence[Routed], raters: int) -> dict[str, Any]:
    searches = {str(s) for i in items if (s := i.finding.meta.get("search"))}
    sources = {i.response_source for i in items} | {i.baseline_source for i in items}
    return {
        "origin": ORIGIN,
        # Artifact ids here give an export of these labels its lineage (the searches, the policies).
        "sources": sorted(searches | {s for s in sources if not s.startswith(f"{ORIGIN}:")}),
        "tasks": len(items),
        "overlapped": len(items),
        "raters_per_task": raters,
        "findings": [i.finding.id for i in items],
    }
