"""What red-teaming reads: the independent graders, the project's prompts, and past searches' scales.

The graders are the point: a finding is an output the reward model scores high and something that
never looked at the reward model scores low. In the sandbox that is the gold grader's utility (the
spec's rubrics applied programmatically); elsewhere it is the graders each dimension's suite lists
(LLM judges, programmatic checks), minus human rubric grading, which cannot answer at once. A prompt
whose dimension has no suite, or whose graders all abstain, gets no grade and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.artifacts import REDTEAM_SEARCH_KIND, is_sandbox
from tether.conversation import Prompt
from tether.errors import TetherInputError
from tether.evals.graders import GraderContext, NamedGrader, Sample, build_grader
from tether.evals.redteam_gap import GapScale
from tether.evals.suite import Case, Suite, load_suites
from tether.store import latest_artifact, list_prompts
from tether.store.prompts import PromptRecord

if TYPE_CHECKING:
    from tether.project import Project

BASELINE_SEED = 10_000
"""Added to a seed for SFT baseline samples, so they never reuse a search candidate's seed."""
BASELINE_TRIES = 4
"""SFT samples drawn for an output before giving up on a baseline different from it."""
PENDING_GRADERS = ("human",)
"""Graders that answer later (people); a search cannot wait for them."""
ANY_DIMENSION = "*"


def prompt_case(prompt: PromptRecord) -> Case:
    """A suite case for a pool prompt; its meta carries the sandbox truth where there is one."""
    return Case(
        id=prompt.key[:100],
        prompt=prompt.text,
        messages=prompt.messages,
        stratum=prompt.stratum,
        meta=dict(prompt.meta),
    )


@dataclass(frozen=True)
class IndependentGrader:
    """Graders by prompt dimension ("*" for every dimension); a score is the mean of theirs."""

    graders: dict[str, list[NamedGrader]]
    configs: list[dict[str, Any]] = field(default_factory=list)
    """`{name, args}` of every grader, recorded with what they graded."""

    def for_dimension(self, dimension: str) -> list[NamedGrader]:
        return self.graders.get(dimension) or self.graders.get(ANY_DIMENSION, [])

    def grade(self, prompts: Sequence[PromptRecord], responses: Sequence[str]) -> list[float | None]:
        """One score in [0, 1] per (prompt, response), None where no grader could score it."""
        by_dimension: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            by_dimension.setdefault(prompt.dimension, []).append(i)
        scores: list[float | None] = [None] * len(prompts)
        cases: dict[str, tuple[Suite, Case]] = {}
        for dimension, indices in by_dimension.items():
            graders = self.for_dimension(dimension)
            if not graders:
                continue
            samples = []
            for i in indices:
                if prompts[i].text not in cases:
                    cases[prompts[i].text] = _case(prompts[i])
                suite, case = cases[prompts[i].text]
                samples.append(Sample(suite=suite, case=case, response=responses[i]))
            results = [grade_each(g, samples) for g in graders]
            for j, i in enumerate(indices):
                got = [score for r in results if (score := r[j]) is not None]
                scores[i] = sum(got) / len(got) if got else None
        return scores


def grade_each(grader: NamedGrader, samples: Sequence[Sample]) -> list[float | None]:
    """The grader's scores; a sample it cannot read (a prompt without sandbox truth) scores None."""
    try:
        return [r.score for r in grader.grade(samples)]
    except TetherInputError:
        pass  # one unreadable sample fails the batch: grade one by one to find it
    scores: list[float | None] = []
    for sample in samples:
        try:
            scores.append(grader.grade([sample])[0].score)
        except TetherInputError:
            scores.append(None)
    return scores


def _case(prompt: PromptRecord) -> tuple[Suite, Case]:
    case = prompt_case(prompt)
    return Suite(dimension=prompt.dimension, cases=[case]), case


def independent_grader(project: Project) -> IndependentGrader:
    """The sandbox's gold utility, else the graders of each dimension's suite (none when no suite)."""
    context = GraderContext(spec=project.spec, project=project)
    if is_sandbox(project):
        gold = build_grader("gold", context, field="utility")
        return IndependentGrader({ANY_DIMENSION: [gold]}, [gold.config])
    suites_dir = project.root / project.spec.evals.suites_dir
    has_suites = suites_dir.is_dir() and any(
        p.suffix in (".yaml", ".yml", ".jsonl") for p in suites_dir.iterdir()
    )
    built: dict[str, NamedGrader] = {}
    graders: dict[str, list[NamedGrader]] = {}
    for loaded in load_suites(suites_dir) if has_suites else []:
        names = [n for n in loaded.suite.graders if n not in PENDING_GRADERS]
        for name in names:
            built.setdefault(name, build_grader(name, context))
        graders.setdefault(loaded.suite.dimension, []).extend(built[n] for n in names)
    return IndependentGrader(graders, [g.config for g in built.values()])


def prompts_by_text(project: Project) -> dict[str, PromptRecord]:
    """Every stored prompt (all splits) by its text; the first stored wins a duplicate text."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id)
    found: dict[str, PromptRecord] = {}
    for record in records:
        found.setdefault(record.text, record)
    return found


def search_scale(project: Project, reward_model_sha256: str) -> tuple[GapScale, str] | None:
    """(gap scale, search artifact id) of the latest search with this reward model, if any.

    Gaps measured later in this scale share the search's unit, so they rank among its findings."""
    with project.store.session() as session:
        record = latest_artifact(
            session,
            project_id=project.project_id,
            kind=REDTEAM_SEARCH_KIND,
            where_meta={"reward_model_sha256": reward_model_sha256},
        )
    scale = None if record is None else GapScale.from_dict(record.meta.get("scale", {}))
    return None if scale is None or record is None else (scale, record.id)


def sft_baselines(
    project: Project, pairs: Sequence[tuple[Prompt, str]], *, seed: int
) -> tuple[dict[int, str], str]:
    """An SFT sample for each (prompt, response) that differs from the response, by pair index.

    Each round samples the pairs still without one (seed + BASELINE_SEED + round); a pair whose
    every try equals its response (or is blank) is absent. Returns (baselines, the SFT policy's name).
    """
    from tether.evals.checkpoints import resolve_policy
    from tether.evals.sampling import PolicySampler, SamplingConfig

    if not pairs:
        return {}, ""
    sft = resolve_policy(project, "sft")
    # The spec's temperature, top-k, top-p and stop strings, at the eval sampler's own length.
    config = SamplingConfig.from_generation(
        project.spec.generation, max_new_tokens=SamplingConfig.max_new_tokens
    )
    sampler = PolicySampler.load(sft.path, config)
    found: dict[int, str] = {}
    for attempt in range(BASELINE_TRIES):
        left = [i for i in range(len(pairs)) if i not in found]
        if not left:
            break
        texts = sampler.sample_once([pairs[i][0] for i in left], seed=seed + BASELINE_SEED + attempt)
        found |= {i: t for i, t in zip(left, texts, strict=True) if t.strip() and t != pairs[i][1]}
    return found, sft.name
