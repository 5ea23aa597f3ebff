"""Auditing an imported preference source: the rule that screens raters, applied to a dataset.

(1) `plan_audit` opens more slots on a seeded sample of the source's pairs (`tether label plan
--audit NAME --n N`), which calibrated raters then label like any live task; (2) `audit_report`
compares the source's label of each audited pair with the majority of the active raters who
labeled it, per dimension, with Wilson 95% intervals; (3) `apply_audit` (`tether label audit
NAME`) lets the source train reward models when its disagreement on clear-cut pairs is at most the
spec's ``labeling.max_expert_disagreement`` (the share that excludes a rater), and excludes it
otherwise. Its labels are kept either way, for analysis; only ``active`` sources reach an export.

Clear-cut: the raters' majority is A or B (not a tie, no tied vote count) and the source's label is
not a tie, as a rater is screened on clear-cut anchors. Departure from rater screening: raters are
compared with expert anchors, a source with calibrated raters, who are themselves only as good as
their calibration; a source whose labels are better than the raters' cannot show it here.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tether.errors import TetherInputError
from tether.labeling.metrics import wilson_interval
from tether.project import Project
from tether.store import DbSession
from tether.store.imports import SourceVote, add_audit_slots, audited_task_ids, source_task_ids, source_votes
from tether.store.raters import RaterRecord, get_rater, set_rater_status

MIN_CLEAR_CUT = 30
"""Clear-cut audited pairs needed before a verdict: at 30 pairs and 80% agreement the Wilson 95%
interval is about ±0.14 wide, enough to tell a clean source (≥ 0.8) from a 40%-flipped one (~0.6)."""


@dataclass(frozen=True)
class AuditPlan:
    source: str
    tasks: int
    """Pairs given audit slots now."""
    slots: int
    already: int
    """Pairs audited before."""
    available: int
    """The source's pairs not audited before this plan."""


@dataclass(frozen=True)
class Agreement:
    dimension: str
    pairs: int
    """Clear-cut audited pairs."""
    agreed: int
    share: float
    low: float
    high: float

    @property
    def disagreement(self) -> float:
        return 1.0 - self.share


@dataclass(frozen=True)
class AuditReport:
    source: str
    status: str
    audited: int
    """Pairs with audit slots."""
    labeled: int
    """Audited pairs with at least one active rater's label."""
    by_dimension: list[Agreement]
    overall: Agreement | None
    max_disagreement: float
    verdict: Literal["accepted", "refused", "pending"]
    reason: str


def _source(project: Project, session: DbSession, name: str) -> RaterRecord:
    rater = get_rater(session, project_id=project.project_id, name=name)
    if rater.kind != "import":
        raise TetherInputError(f"'{name}' is a {rater.kind} rater, not an imported source")
    return rater


def plan_audit(project: Project, *, source: str, n: int, raters: int = 1, seed: int = 0) -> AuditPlan:
    """Open ``raters`` slots on each of ``n`` of the source's pairs not audited yet (seeded sample)."""
    if n < 1 or raters < 1:
        raise TetherInputError(f"--n and --raters must be at least 1, got {n} and {raters}")
    with project.store.session() as session:
        _source(project, session, source)
        tasks = source_task_ids(session, project_id=project.project_id, source=source)
        if not tasks:
            raise TetherInputError(f"source '{source}' has no imported pairs to audit")
        done = audited_task_ids(session, task_ids=tasks)
        open_ = [t for t in tasks if t not in done]
        picked = sorted(random.Random(seed).sample(open_, min(n, len(open_))))
        slots = add_audit_slots(session, task_ids=picked, raters=raters)
    return AuditPlan(source, len(picked), slots, len(done), len(open_))


def _agreement(dimension: str, agreed: int, pairs: int) -> Agreement:
    low, high = wilson_interval(agreed, pairs)
    return Agreement(dimension, pairs, agreed, agreed / pairs, low, high)


def clear_cut_outcomes(votes: Sequence[SourceVote], source_id: int) -> list[tuple[str, bool]]:
    """(dimension, the source agreed) for each clear-cut audited pair, in task order.

    >>> own = SourceVote(1, "d", 9, "import", "calibrating", "A")
    >>> clear_cut_outcomes([own, SourceVote(1, "d", 2, "human", "active", "B")], source_id=9)
    [('d', False)]
    """
    by_task: dict[int, list[SourceVote]] = defaultdict(list)
    for vote in votes:
        by_task[vote.task_id].append(vote)
    out = []
    for task in by_task.values():
        own = next((v for v in task if v.rater_id == source_id), None)
        others = Counter(v.choice for v in task if v.rater_kind != "import" and v.rater_status == "active")
        if own is None or own.choice == "tie" or not others:
            continue
        (top, count), *rest = others.most_common()
        if top == "tie" or (rest and rest[0][1] == count):
            continue  # not clear-cut: the raters tie, or call it a tie
        out.append((task[0].dimension, top == own.choice))
    return out


def audit_report(project: Project, *, source: str) -> AuditReport:
    """The source's agreement with calibrated raters on its audited pairs, and the verdict."""
    with project.store.session() as session:
        rater = _source(project, session, source)
        votes = source_votes(session, project_id=project.project_id, source=source)
        audited = len(audited_task_ids(session, task_ids=sorted({v.task_id for v in votes})))
    outcomes = clear_cut_outcomes(votes, rater.id)
    labeled = len({v.task_id for v in votes if v.rater_id != rater.id and v.rater_status == "active"})
    per: dict[str, list[bool]] = defaultdict(list)
    for dimension, agreed in outcomes:
        per[dimension].append(agreed)
    by_dimension = [_agreement(d, sum(a), len(a)) for d, a in sorted(per.items())]
    overall = _agreement("overall", sum(a for _, a in outcomes), len(outcomes)) if outcomes else None
    limit = project.spec.labeling.max_expert_disagreement
    verdict, reason = _verdict(overall, by_dimension, limit)
    return AuditReport(source, rater.status, audited, labeled, by_dimension, overall, limit, verdict, reason)


def _verdict(
    overall: Agreement | None, by_dimension: Sequence[Agreement], limit: float
) -> tuple[Literal["accepted", "refused", "pending"], str]:
    if overall is None or overall.pairs < MIN_CLEAR_CUT:
        have = 0 if overall is None else overall.pairs
        return "pending", f"{have} clear-cut audited pairs labeled; a verdict needs {MIN_CLEAR_CUT}"
    worse = [a for a in by_dimension if a.pairs >= MIN_CLEAR_CUT and a.disagreement > limit]
    if overall.disagreement > limit or worse:
        where = ", ".join(f"{a.dimension} {a.disagreement:.1%}" for a in worse) or "overall"
        return "refused", (
            f"disagrees with calibrated raters on {overall.disagreement:.1%} of {overall.pairs} clear-cut "
            f"audited pairs (agreement {overall.share:.3f} [{overall.low:.3f}, {overall.high:.3f}]; "
            f"over the {limit:.0%} that excludes a rater: {where})"
        )
    return "accepted", (
        f"agrees with calibrated raters on {overall.share:.1%} of {overall.pairs} clear-cut audited pairs "
        f"[{overall.low:.3f}, {overall.high:.3f}]; disagreement {overall.disagreement:.1%} is within "
        f"{limit:.0%}"
    )


def apply_audit(project: Project, *, source: str) -> AuditReport:
    """`audit_report`, then the verdict applied to the source's status (a pending one changes nothing)."""
    report = audit_report(project, source=source)
    target = {"accepted": "active", "refused": "excluded"}.get(report.verdict)
    if target is None or target == report.status:
        return report
    with project.store.session() as session:
        rater = _source(project, session, source)
        reason = f"audit {report.verdict}: {report.reason}"
        set_rater_status(
            session, rater_id=rater.id, status=target, reason=reason, spec_hash=project.spec_hash
        )
    return AuditReport(**{**vars(report), "status": target})
