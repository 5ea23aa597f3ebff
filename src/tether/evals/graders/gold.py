"""The gold grader: a world's programmatic rubrics, for suites built from its prompts (the sandbox's).

A sandbox case carries its prompt's hidden truth in ``case.meta["sandbox"]`` (what
`SandboxPrompt.to_meta` writes; `tether eval init-suites` puts it there); the grader asks the world
of that name (`tether.world.load_world`) to read the truth and grade. The score is the gold
score of the suite's rubric dimension (``field="dimension"``, the default) or the gold utility
(``field="utility"``); the details hold every gold sub-score either way.

    >>> from tether.sandbox.world import generate_prompts
    >>> from tether.evals.suite import Case
    >>> p = generate_prompts(seed=0, n=1)[0]
    >>> sandbox_prompt(Case(id="c", prompt=p.text, meta={"sandbox": p.to_meta()})) == p
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from tether.errors import TetherInputError
from tether.evals.graders.base import Grader, GraderContext, GradeResult, Sample, register_grader
from tether.world import World, load_world

if TYPE_CHECKING:
    from tether.evals.suite import Case, Suite

NAME = "gold"
SANDBOX_META_KEY = "sandbox"
"""Where a case keeps its sandbox prompt (id, text, dimension, stratum, truth); the world's name."""
GoldField = Literal["dimension", "utility"]


def _world() -> World:
    return load_world(SANDBOX_META_KEY)


def sandbox_prompt(case: Case) -> Any:
    """The case's sandbox prompt, from ``meta["sandbox"]`` (or from ``meta`` itself when it has a truth)."""
    meta: Any = case.meta.get(SANDBOX_META_KEY, case.meta if "truth" in case.meta else None)
    if not isinstance(meta, dict):
        raise TetherInputError(
            f"case {case.id}: the gold grader needs the sandbox prompt's truth in meta.{SANDBOX_META_KEY} "
            "(suites from `tether eval init-suites` have it); use another grader for this suite"
        )
    try:
        return _world().prompt_truth({"id": case.id, "text": case.prompt, **meta})
    except (KeyError, TypeError, ValueError) as err:
        raise TetherInputError(
            f"case {case.id}: meta.{SANDBOX_META_KEY} is not a sandbox prompt: {err}"
        ) from err


def gold_dimension(suite: Suite) -> str:
    """The sandbox dimension a suite is scored on: its rubric dimension, else its dimension."""
    dimensions = _world().gold_dimensions
    for name in (suite.rubric_dimension, suite.dimension):
        if name in dimensions:
            return name
    raise TetherInputError(
        f"suite {suite.dimension}: the gold grader scores only the sandbox dimensions "
        f"({', '.join(dimensions)}); set the suite's rubric to one of them or use another grader"
    )


def grade_sample(sample: Sample, field: GoldField = "dimension") -> GradeResult:
    """Gold scores of one sample; passed means the top rubric level on the suite's dimension."""
    dimension = gold_dimension(sample.suite)
    scores = _world().grade(sandbox_prompt(sample.case), sample.response)
    own = scores.dimension(dimension)
    score = own if field == "dimension" else scores.utility
    details: dict[str, Any] = {"dimension": dimension, "field": field, **scores.as_dict()}
    return GradeResult(score=score, passed=own >= 1.0, details=details)


class GoldGrader:
    name = NAME

    def __init__(self, field: GoldField) -> None:
        self.field = field

    def grade(self, samples: Sequence[Sample], /) -> list[GradeResult]:
        return [grade_sample(s, self.field) for s in samples]


@register_grader(NAME)
def gold(*, context: GraderContext, field: str = "dimension") -> Grader:
    """The sandbox gold grader; ``field`` is "dimension" (the suite's rubric) or "utility"."""
    if field not in ("dimension", "utility"):
        raise TetherInputError(f"grader gold: field must be 'dimension' or 'utility', got {field!r}")
    return GoldGrader("dimension" if field == "dimension" else "utility")
