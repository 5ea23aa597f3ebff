"""The quick suite during RL: `tether rl run --eval-every K` logs ``eval/score`` every K steps.

The first ``quick_cases_per_dimension`` cases of each suite, one sample each, graded by the gold
grader in the sandbox (else by the suites' own graders, minus human grading, which cannot answer
during a run). Every evaluation uses the same per-case seeds (see `tether.evals.sampling`), so the
curve moves with the policy rather than with sampling noise, and it never touches the run's random
state, which keeps resumed runs exact. Nothing is written: the scores go into the step's metrics,
where the monitors read ``eval/score`` as an independent signal next to the reward.

    quick = plan_quick_eval(project, suite=None, sandbox=True)         # checked before models load
    evaluate = QuickEval(quick, PolicySampler(policy, tokenizer, SamplingConfig(max_new_tokens=48)))
    evaluate(step)   # {"eval/score": 0.61, "eval/safety": 0.8, ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.errors import TetherInputError
from tether.evals.graders.human import NAME as HUMAN
from tether.evals.plan import SuitePlan, parse_grader_ref, plan_suites
from tether.evals.results import ResultRow, case_scores
from tether.evals.run import grade_plans, sample_plans
from tether.evals.sampling import PolicySampler

if TYPE_CHECKING:
    from tether.project import Project

SCORE_KEY = "eval/score"


def plan_quick_eval(project: Project, *, suite: str | None, sandbox: bool) -> list[SuitePlan]:
    """The quick suite's plan; TetherInputError (before any model loads) when there is nothing to run."""
    names = [suite] if suite else []
    if sandbox:
        return plan_suites(project, suites=names, graders=["gold"], quick=True)
    plans = plan_suites(project, suites=names, quick=True)
    kept = [
        SuitePlan(p.loaded, p.cases, [g for g in p.graders if g.name != HUMAN])
        for p in plans
        if any(parse_grader_ref(g).name != HUMAN for g in p.loaded.suite.graders)
    ]
    if not kept:
        raise TetherInputError(
            "--eval-every: every suite is graded only by people; give one an automatic grader"
        )
    return kept


def quick_scores(rows: Sequence[ResultRow]) -> dict[str, float]:
    """eval/score (mean over all cases) and eval/<dimension> (mean over the dimension's cases)."""
    scores = case_scores(rows)
    if not scores:
        return {}
    out = {SCORE_KEY: sum(scores.values()) / len(scores)}
    for dimension in sorted({d for d, _ in scores}):
        values = [v for (d, _), v in scores.items() if d == dimension]
        out[f"eval/{dimension}"] = sum(values) / len(values)
    return out


@dataclass
class QuickEval:
    """Samples the live policy on the quick suite and grades it; call it with the step."""

    plans: list[SuitePlan]
    sampler: PolicySampler

    def __call__(self, step: int) -> dict[str, float]:
        responses = sample_plans(self.sampler, self.plans, 1, None)
        rows: list[ResultRow] = []
        grade_plans(self.plans, responses, self.sampler.config.seeds(1), f"step {step}", rows.extend)
        return quick_scores(rows)
