"""`tether data export`: the preference dataset from the store, registered with its lineage."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.artifacts import ANCHORS_KIND, EXPORT_KIND
from tether.conversation import from_stored, is_single_turn
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.labeling.export import (
    COUNTERFACTUAL_ORIGINS,
    AggregateStats,
    TaskVotes,
    Vote,
    aggregate,
    split_heldout,
)
from tether.labeling.export_files import CONVERSATIONAL, ExportFormat, write_export
from tether.project import Project
from tether.store import ArtifactRecord, get_artifact, latest_artifact, register_artifact
from tether.store.exports import VoteFacts, live_votes
from tether.store.raters import held_label_counts, list_raters
from tether.store.tasks import batch_sources


@dataclass(frozen=True)
class ExportResult:
    artifact: ArtifactRecord
    stats: AggregateStats
    train: int
    test: int
    raters: list[str]
    left_out: list[str]
    held: dict[str, int] = field(default_factory=dict)
    """Active raters' labels held out by a failed hidden-anchor window, by rater name."""


def task_votes(facts: list[VoteFacts]) -> list[TaskVotes]:
    out = []
    for _, group in itertools.groupby(facts, key=lambda f: f.task_id):
        votes = list(group)
        first = votes[0]
        out.append(
            TaskVotes(
                task_id=first.task_id,
                prompt=from_stored(first.prompt, first.messages),
                response_a=first.response_a,
                response_b=first.response_b,
                dimension=first.dimension,
                stratum=first.stratum,
                origin=first.origin,
                votes=tuple(Vote(v.rater_id, v.rater_name, v.choice, v.strength) for v in votes),  # type: ignore[arg-type]
                spec_hash=first.spec_hash,
            )
        )
    return out


def export_preferences(
    project: Project,
    *,
    out: Path,
    fmt: ExportFormat | None = None,
    include_excluded: bool = False,
    keep_ties: bool = False,
    heldout: float = 0.1,
    seed: int = 0,
) -> ExportResult:
    """Aggregate live judgments by majority, split held-out by dimension and stratum, write, register.

    ``fmt`` None: TRL's conversational format once any prompt is a conversation or the spec sets a
    system prompt, else the standard JSONL (`tether.labeling.export`)."""
    # --include-excluded keeps everything, held labels too; otherwise active raters only, less
    # the labels their failed hidden-anchor windows hold until they pass recalibration.
    statuses = None if include_excluded else {"active"}
    with project.store.session() as session:
        facts = live_votes(
            session, project_id=project.project_id, statuses=statuses, hold_out=not include_excluded
        )
        raters = list_raters(session, project_id=project.project_id)
        counts = {} if include_excluded else held_label_counts(session, project_id=project.project_id)
        world = latest_artifact(session, project_id=project.project_id, kind=ANCHORS_KIND)
    if not facts:
        raise TetherInputError("no judgments from included raters yet; label (or simulate) before exporting")
    rows, stats = aggregate(task_votes(facts), keep_ties=keep_ties, ties_of=COUNTERFACTUAL_ORIGINS)
    if not rows:
        raise TetherInputError("every labelled task was a tie or had no majority; nothing to export")
    train, test = split_heldout(rows, share=heldout, seed=seed)
    system = project.spec.generation.system_prompt
    if fmt is None:
        single = system is None and all(is_single_turn(row.prompt) for row in rows)
        fmt = "jsonl" if single else CONVERSATIONAL
    used = sorted({f.rater_name for f in facts})
    left_out = sorted(r.name for r in raters if r.name not in used and not r.is_admin)
    manifest: dict[str, Any] = {
        "spec_hash": project.spec_hash,
        "project": project.config.name,
        "include_excluded": include_excluded,
        "keep_ties": keep_ties,
        "heldout_share": heldout,
        "seed": seed,
        "raters": used,
        "raters_left_out": left_out,
        "batches": sorted({f.batch_id for f in facts if f.batch_id is not None}),
        # Where the pairs came from (plan, redteam, production, probe:<name>, remediation:<dim>).
        "origins": dict(sorted(Counter(r.origin for r in rows).items())),
        # Pairs each rater or imported source voted on, so each reward model says what trained it.
        "sources": dict(sorted(Counter(name for r in rows for name in set(r.rater_names)).items())),
        "aggregate": vars(stats),
    }
    if system is not None:  # only when set, so exports without one keep their content hash
        manifest["system_prompt"] = system
    held = {r.name: counts[r.id] for r in raters if r.status == "active" and r.id in counts}
    if held:  # only when something is held, so exports without holds keep their content hash
        manifest["held_out"] = held
    write_export(out, train, test, fmt=fmt, manifest=manifest, system=system)
    with project.store.session() as session:
        sources = batch_sources(session, batch_ids=manifest["batches"])
        # Lineage: the checkpoints that wrote the responses, and the anchors raters were held to.
        parents = [a.id for s in sorted(sources) if (a := get_artifact(session, artifact_id=s)) is not None]
        parents += [world.id] if world else []
        artifact = register_artifact(
            session,
            project_id=project.project_id,
            kind=EXPORT_KIND,
            path=project.relative(out),
            content_hash=content_sha256(out),
            spec_hash=project.spec_hash,
            parents=parents,
            meta={"format": fmt, "train": len(train), "test": len(test), **manifest},
        )
    return ExportResult(artifact, stats, len(train), len(test), used, left_out, held)
