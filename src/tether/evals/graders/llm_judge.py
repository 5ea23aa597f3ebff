"""The LLM-judge grader: a chat model grades responses against the spec's rubric.

It talks to any OpenAI-compatible ``/v1/chat/completions`` endpoint through the labeling judge's
client (`tether.labeling.ai_judge.ChatJudge`: timeouts, retries with exponential backoff,
Retry-After), in one of two modes per case:

- pointwise (no reference answer): the judge sees the rubric levels of the suite's dimension and
  the case's expectations, and names a level; the score is the level rescaled to [0, 1];
- pairwise (the case has a reference answer): the response is compared with the reference twice,
  once in each presentation order (position-swapped double judging); a consistent win scores 1,
  a consistent loss 0, and a tie or an order-dependent verdict 0.5.

A sample whose judging still fails after the last retry gets ``score=None`` and the error; the
run goes on. An endpoint that refuses every connection raises `GraderUnavailable`, and the eval
run stops after saving what it graded.

    tether eval run --grader "llm_judge:base_url=http://127.0.0.1:8000/v1,model=judge-7b"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tether.errors import TetherError, TetherInputError
from tether.evals.graders.base import (
    Grader,
    GraderContext,
    GradeResult,
    GraderUnavailable,
    Sample,
    register_grader,
)
from tether.labeling.ai_judge import (
    AIVerdict,
    ChatJudge,
    JudgeConfig,
    JudgeUnreachable,
    json_objects,
)
from tether.spec.model import Dimension, Spec

NAME = "llm_judge"
PAIRWISE_SCORES = {"A": 1.0, "tie": 0.5, "B": 0.0}
"""Score of the response (A) against the reference (B) by the combined two-order verdict."""


def _rubric_block(dim: Dimension) -> str:
    levels = [f"- score {lvl.score}: {lvl.description}" for lvl in sorted(dim.rubric, key=lambda x: -x.score)]
    return "\n".join(
        [f"Dimension '{dim.id}': {dim.description.strip()}", "Rubric, best level first:", *levels]
    )


def pointwise_messages(
    spec: Spec, dimension: str, prompt: str, response: str, expectations: str
) -> list[dict[str, str]]:
    """Chat messages asking the judge to grade one response on one dimension's rubric."""
    dim = spec.dimension(dimension)
    scores = ", ".join(str(lvl.score) for lvl in sorted(dim.rubric, key=lambda x: x.score))
    system = "\n\n".join(
        [
            f"You are an expert grader for the behavior spec '{spec.name}' (version {spec.version}). "
            "You grade ONE response to a prompt on ONE dimension, using its rubric.",
            _rubric_block(dim),
            "Do not reward length, hedging, list formatting or a confident tone by themselves; "
            "grade what the response does against the rubric and the case's expectations.",
            f'Reply with a single JSON object and nothing else: {{"score": one of {scores}, '
            '"rationale": "one or two sentences citing the rubric"}.',
        ]
    )
    user = (
        f"## Prompt\n{prompt}\n\n## Expectations\n{expectations.strip() or '(none beyond the rubric)'}\n\n"
        f"## Response\n{response}\n\n## Your grade\nReply with the JSON object only."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_level(text: str, levels: Sequence[int]) -> tuple[int, str] | None:
    """The rubric level (and rationale) in the judge's reply; None when no valid level is there.

    >>> parse_level('ok: {"score": 2, "rationale": "fine"}', [0, 1, 2])
    (2, 'fine')
    """
    for obj in json_objects(text):
        value = obj.get("score", obj.get("level"))
        if isinstance(value, bool):
            continue
        try:
            level = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if level in levels and float(value) == level:  # type: ignore[arg-type]
            return level, str(obj.get("rationale") or "").strip()
    return None


def level_score(level: int, levels: Sequence[int]) -> float:
    """A rubric level rescaled so the lowest level is 0 and the highest 1."""
    low, high = min(levels), max(levels)
    return (level - low) / (high - low) if high > low else 1.0


def pairwise_result(verdict: AIVerdict) -> GradeResult:
    """The response's score against the reference from the two-order verdict."""
    details = {
        "mode": "pairwise",
        "choice": verdict.choice,
        "strength": verdict.strength,
        "position_consistent": verdict.position_consistent,
        "rationale": verdict.rationale,
    }
    return GradeResult(score=PAIRWISE_SCORES[verdict.choice], passed=verdict.choice != "B", details=details)


class LLMJudgeGrader:
    """Grades with a chat model; see the module docstring."""

    name = NAME

    def __init__(self, judge: ChatJudge) -> None:
        self.judge = judge

    def grade(self, samples: Sequence[Sample], /) -> list[GradeResult]:
        return [self._one(s) for s in samples]

    def _one(self, sample: Sample) -> GradeResult:
        try:
            if sample.case.reference is not None:
                return self._pairwise(sample, sample.case.reference)
            return self._pointwise(sample)
        except JudgeUnreachable as exc:
            raise GraderUnavailable(f"grader {NAME}: {exc}") from exc
        except TetherInputError:
            raise  # a wrong endpoint, model or key (HTTP 4xx): nothing later will work either
        except TetherError as exc:  # retries exhausted, or an unreadable reply
            return GradeResult(score=None, error=str(exc), details={"mode": _mode(sample)})

    def _pairwise(self, sample: Sample, reference: str) -> GradeResult:
        dimension = sample.suite.rubric_dimension
        return pairwise_result(
            self.judge.judge(sample.case.prompt, sample.response, reference, dimension=dimension)
        )

    def _pointwise(self, sample: Sample) -> GradeResult:
        spec, dimension = self.judge.spec, sample.suite.rubric_dimension
        levels = [lvl.score for lvl in spec.dimension(dimension).rubric]
        messages = pointwise_messages(
            spec, dimension, sample.case.prompt, sample.response, sample.case.expectations
        )
        reply = self.judge.complete(messages)
        parsed = parse_level(reply, levels)
        if parsed is None:
            return GradeResult(
                score=None,
                error=f"judge reply has no valid rubric level ({', '.join(map(str, levels))}): "
                f"{reply[:200]!r}",
                details={"mode": "pointwise"},
            )
        level, rationale = parsed
        score = level_score(level, levels)
        details: dict[str, Any] = {"mode": "pointwise", "level": level, "rationale": rationale}
        return GradeResult(score=score, passed=level == max(levels), details=details)


def _mode(sample: Sample) -> str:
    return "pairwise" if sample.case.reference is not None else "pointwise"


@register_grader(NAME)
def llm_judge(
    *,
    context: GraderContext,
    base_url: str = "http://127.0.0.1:8000/v1",
    model: str = "judge",
    api_key_env: str | None = None,
    timeout: float = 30.0,
    max_retries: int = 3,
    backoff: float = 0.5,
    jitter: float = 0.5,
) -> Grader:
    """A chat-model judge at ``base_url``; the API key is read from the env var ``api_key_env`` if named."""
    api_key = None
    if api_key_env:
        api_key = os.environ.get(str(api_key_env))
        if not api_key:
            raise TetherInputError(f"grader {NAME}: the environment variable {api_key_env} is not set")
    try:
        config = JudgeConfig(
            endpoint=str(base_url),
            model=str(model),
            api_key=api_key,
            timeout_s=float(timeout),
            max_retries=int(max_retries),
            backoff_s=float(backoff),
            jitter=float(jitter),
        )
    except (TypeError, ValueError) as err:
        raise TetherInputError(f"grader {NAME}: {err}") from err
    return LLMJudgeGrader(ChatJudge(config, context.spec))
