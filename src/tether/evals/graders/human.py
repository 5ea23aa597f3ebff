"""The human grader: one rubric-grading task per sample in the store, graded later in the web app.

It answers ``pending=True`` at once. Each task's source key is derived from the suite dimension,
the case, the rubric and a hash of the prompt and response, so an identical response (the same
checkpoint re-run with the same seeds, or two checkpoints that answer alike) is graded once.
`tether eval collect RUN` later reads the grades (`collect_grades`) and rewrites the run's results.

    >>> from tether.evals.suite import Case, Suite
    >>> suite = Suite(dimension="safety", cases=[Case(id="c1", prompt="p")])
    >>> source_key(Sample(suite, suite.cases[0], "r"))
    'eval/safety/c1/safety/291fed14c9f06fef'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tether.errors import TetherInputError
from tether.evals.graders.base import Grader, GraderContext, GradeResult, Sample, register_grader
from tether.hashing import sha256_text
from tether.store.grading import GradeRecord, NewGradingTask, add_grading_tasks

if TYPE_CHECKING:
    from tether.project import Project

NAME = "human"
ORIGIN = "eval"
EMPTY_RESPONSE = "(empty response)"
"""What graders see in place of an empty response, which they should grade as the lowest level."""


def source_key(sample: Sample) -> str:
    """eval/<dimension>/<case id>/<rubric>/<hash of prompt and response>."""
    digest = sha256_text(f"{sample.case.prompt}\x1f{sample.response}")[:16]
    return f"eval/{sample.suite.dimension}/{sample.case.id}/{sample.suite.rubric_dimension}/{digest}"


def grading_task(sample: Sample, raters: int) -> NewGradingTask:
    case = sample.case
    meta: dict[str, object] = {
        "case_id": case.id,
        "stratum": case.stratum,
        "expectations": case.expectations,
        "reference": case.reference,
        "checkpoint": sample.checkpoint,
        "sample_index": sample.sample_index,
    }
    if "sandbox" in case.meta:
        meta["prompt_meta"] = case.meta["sandbox"]  # lets simulated sandbox graders see the truth
    return NewGradingTask(
        source_key=source_key(sample),
        origin=ORIGIN,
        dimension=sample.suite.rubric_dimension,
        prompt=case.prompt,
        response=sample.response if sample.response.strip() else EMPTY_RESPONSE,
        raters_needed=raters,
        meta=meta,
    )


def mean_grade(grades: Sequence[GradeRecord]) -> float:
    """Mean of score / max_score over the grades."""
    return sum(g.score / g.max_score for g in grades) / len(grades)


def collected_result(grades: Sequence[GradeRecord], raters_needed: int, key: str) -> GradeResult:
    """The result once enough grades are in, else still pending (with how many there are)."""
    details = {"source_key": key, "raters_needed": raters_needed, "grades": len(grades)}
    if len(grades) < raters_needed:
        return GradeResult(score=None, pending=True, details=details)
    score = mean_grade(grades)
    rationales = [g.rationale for g in grades if g.rationale]
    return GradeResult(score=score, passed=score >= 1.0, details={**details, "rationales": rationales})


def collect_grades(project: Project, keys: Sequence[str]) -> Mapping[str, list[GradeRecord]]:
    """The grades submitted so far for each grading-task key."""
    from tether.store.grading import grades_for

    with project.store.session() as session:
        return grades_for(session, project_id=project.project_id, source_keys=keys)


class HumanGrader:
    name = NAME

    def __init__(self, project: Project, raters: int) -> None:
        self.project = project
        self.raters = raters

    def grade(self, samples: Sequence[Sample], /) -> list[GradeResult]:
        tasks = [grading_task(s, self.raters) for s in samples]
        with self.project.store.session() as session:
            add_grading_tasks(
                session, project_id=self.project.project_id, tasks=tasks, spec_hash=self.project.spec_hash
            )
        return [
            GradeResult(
                score=None, pending=True, details={"source_key": t.source_key, "raters_needed": self.raters}
            )
            for t in tasks
        ]


@register_grader(NAME)
def human(*, context: GraderContext, raters: int = 1) -> Grader:
    """Rubric grading by people in the web app; ``raters`` grades are needed per sample."""
    if context.project is None:
        raise TetherInputError("grader human needs a project (its tasks live in the project's store)")
    if int(raters) < 1:
        raise TetherInputError(f"grader human: raters must be at least 1, got {raters}")
    return HumanGrader(context.project, int(raters))
