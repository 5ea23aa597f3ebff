"""Automated red-teaming: find outputs the reward model prefers and the independent graders reject.

    result = search(project, policy="sft", reward_model="models/rm-clean", prompts=300, samples_per_prompt=8)

1. draw `prompts` pool prompts from the hard strata, seeded (never the held-out eval split);
2. sample the policy `samples_per_prompt` times on each (sample k with seed + k, batched) and add the
   reward-model probe edits (filler, hedge, list, confident) of every distinct sample: the edits a
   length- or style-biased reward model rewards without the answer getting better;
3. sample the SFT policy once on each prompt (seed + BASELINE_SEED): the baseline every candidate
   on that prompt is measured from, and the response a rater later compares a finding with;
4. score every distinct candidate and baseline with the reward model and the independent grader;
5. rank by the gap (`redteam_gap`): how much more the reward model prefers the candidate over the
   baseline than the graders do; keep the `keep` largest positive gaps, at most `per_prompt` per prompt;
6. store the findings (source "search") and every candidate's scores, as a `redteam_search` artifact
   whose parents are the policy, the SFT policy and the reward model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tether.artifacts import REDTEAM_SEARCH_KIND, REWARD_MODEL_KIND, ModelInput, resolve
from tether.errors import TetherInputError
from tether.evals.checkpoints import EvaluatedPolicy, resolve_policy
from tether.evals.redteam_candidates import (
    HARD_STRATA,
    SEARCH_PROBES,
    Baseline,
    Progress,
    Ranked,
    collect_candidates,
    draw_prompts,
    rank,
    reward_scores,
)
from tether.evals.redteam_gap import GapScale
from tether.evals.redteam_inputs import BASELINE_SEED, IndependentGrader, independent_grader
from tether.evals.sampling import PolicySampler, SamplingConfig
from tether.hashing import content_sha256
from tether.reward.probes import make_probe, probe_context
from tether.store import register_artifact
from tether.store.findings import NewFinding, add_findings
from tether.store.prompts import PromptRecord

if TYPE_CHECKING:
    from tether.project import Project
    from tether.reward.scoring import Scorer


def sample_baselines(
    sampler: PolicySampler,
    prompts: Sequence[PromptRecord],
    model: Scorer,
    grader: IndependentGrader,
    *,
    seed: int,
) -> dict[int, Baseline]:
    """One SFT sample per prompt (seed + BASELINE_SEED), scored; by prompt id."""
    texts = sampler.sample_once([p.text for p in prompts], seed=seed + BASELINE_SEED)
    rm = model.score([p.text for p in prompts], texts) if prompts else np.zeros(0)
    grades = grader.grade(prompts, texts)
    return {p.id: Baseline(t, float(r), g) for p, t, r, g in zip(prompts, texts, rm, grades, strict=True)}


@dataclass(frozen=True)
class SearchResult:
    """What a search stored, and how its findings compare with everything it scored."""

    finding_ids: list[int]
    artifact_id: str
    path: Path
    """The candidate file (JSONL: every scored candidate with its reward, grade and gap)."""
    prompts: int
    samples: int
    """Non-empty policy samples drawn."""
    candidates: int
    """Distinct graded candidates: samples and probe edits."""
    scale: GapScale
    mean_rm: float
    """Mean reward of all graded candidates."""
    mean_grade: float
    """Mean independent grade of all graded candidates."""
    findings_mean_rm: float | None
    findings_mean_grade: float | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("scale", "path")}
        return {**out, "scale": self.scale.to_dict(), "path": str(self.path)}


@dataclass(frozen=True)
class SearchSettings:
    """What a search samples, scores and keeps; recorded with its artifact and findings."""

    policy: str = "latest"
    """Policy red-teamed: sft, latest (the newest RL checkpoint, else SFT), an artifact id or directory."""
    reward_model: str | None = None
    """Reward model artifact id or directory; None means the latest."""
    samples_per_prompt: int = 8
    """Policy samples per prompt (sample k has seed + k)."""
    prompts: int = 300
    """Pool prompts drawn (seeded) from `strata`."""
    strata: tuple[str, ...] = HARD_STRATA
    """Strata the prompts come from."""
    probes: bool = True
    """Add the probe edits (SEARCH_PROBES) of every distinct sample as candidates."""
    seed: int = 0
    """Seed of the prompt draw, the samples, the edits and the baselines."""
    keep: int = 200
    """Findings stored, largest gap first."""
    per_prompt: int | None = 2
    """At most this many findings from one prompt; None for no cap."""
    max_new_tokens: int = 64
    """Longest sampled response."""

    def __post_init__(self) -> None:
        for name in ("samples_per_prompt", "prompts", "keep", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise TetherInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.per_prompt is not None and self.per_prompt < 1:
            raise TetherInputError(
                f"per_prompt must be at least 1 (or None for no cap), got {self.per_prompt}"
            )
        if not self.strata:
            raise TetherInputError("strata: name at least one stratum")


def search(
    project: Project,
    *,
    policy: str = "latest",
    reward_model: str | None = None,
    samples_per_prompt: int = 8,
    prompts: int = 300,
    strata: Sequence[str] = HARD_STRATA,
    probes: bool = True,
    seed: int = 0,
    keep: int = 200,
    per_prompt: int | None = 2,
    max_new_tokens: int = 64,
    progress: Progress | None = None,
) -> SearchResult:
    """Search the policy for outputs the reward model loves and the graders reject; store the top ones.

    The arguments are `SearchSettings`' fields; the steps are in the module docstring."""
    settings = SearchSettings(
        policy=policy,
        reward_model=reward_model,
        samples_per_prompt=samples_per_prompt,
        prompts=prompts,
        strata=tuple(strata),
        probes=probes,
        seed=seed,
        keep=keep,
        per_prompt=per_prompt,
        max_new_tokens=max_new_tokens,
    )
    return run_search(project, settings, progress)


def run_search(project: Project, s: SearchSettings, progress: Progress | None = None) -> SearchResult:
    """`search` with its settings as one value (what a caller that stores them passes)."""
    from tether.reward.scoring import load_reward_model

    target, sft = resolve_policy(project, s.policy), resolve_policy(project, "sft")
    rm_input = ModelInput.of(resolve(project, kind=REWARD_MODEL_KIND, explicit=s.reward_model))
    grader = independent_grader(project)
    drawn = draw_prompts(project, n=s.prompts, strata=s.strata, seed=s.seed)
    # 1. sample
    # The spec's temperature, top-k, top-p and stop strings; the search keeps its own length.
    config = SamplingConfig.from_generation(
        project.spec.generation, max_new_tokens=s.max_new_tokens, seed=s.seed
    )
    sampler = PolicySampler.load(target.path, config)
    total = len(drawn) * s.samples_per_prompt
    samples = sampler.sample(
        [p.text for p in drawn], samples=s.samples_per_prompt, on_batch=_counter(progress, total)
    )
    # 2. candidates: samples and their probe edits
    context = probe_context(project)
    specs = [make_probe(name, context) for name in SEARCH_PROBES] if s.probes else []
    candidates = collect_candidates(drawn, samples, specs, seed=s.seed)
    # 3. the SFT output on every prompt: what each candidate's gap is measured from
    model = load_reward_model(rm_input.path)
    base_sampler = sampler if sft.path == target.path else PolicySampler.load(sft.path, config)
    baselines = sample_baselines(base_sampler, drawn, model, grader, seed=s.seed)
    if progress is not None:
        progress("baseline", len(drawn), len(drawn))
    # 4. reward and grade
    rm = reward_scores(model, candidates, progress)
    grades = grader.grade([c.prompt for c in candidates], [c.response for c in candidates])
    # 5. rank by gap
    ranked = rank(candidates, rm, grades, baselines=baselines, keep=s.keep, per_prompt=s.per_prompt)
    meta = {
        **asdict(s),
        "strata": list(s.strata),
        "policy": _policy_meta(project, target),
        "baseline_policy": _policy_meta(project, sft),
        "reward_model": _model_meta(project, rm_input),
        "graders": grader.configs,
        "baseline_seed": s.seed + BASELINE_SEED,
        "prompts": len(drawn),
        "probes": [spec.name for spec in specs],
    }
    samples_drawn = sum(1 for responses in samples for r in responses if r.strip())
    return _store(project, ranked, baselines, meta, samples_drawn=samples_drawn)


def _counter(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        progress("sampling", done[0], total)

    return on_batch


def _policy_meta(project: Project, policy: EvaluatedPolicy) -> dict[str, Any]:
    return {"label": policy.label, "artifact_id": policy.artifact_id, "path": project.relative(policy.path)}


def _model_meta(project: Project, model: ModelInput) -> dict[str, Any]:
    return {
        "artifact_id": model.artifact_id,
        "path": project.relative(model.path),
        "sha256": model.content_sha256,
    }


def _candidate_rows(ranked: Ranked) -> list[dict[str, Any]]:
    kept = {i: rank_ for rank_, i in enumerate(ranked.kept, start=1)}
    return [
        {
            "prompt_key": c.prompt.key,
            "dimension": c.prompt.dimension,
            "stratum": c.prompt.stratum,
            "origin": c.origin,
            "sample_index": c.sample_index,
            "times": c.times,
            "response": c.response,
            "rm_score": float(ranked.rm[i]),
            "grader_score": float(ranked.grades[i]),
            "gap": float(ranked.gaps[i]),
            "baseline_rm_score": float(ranked.base_rm[i]),
            "baseline_grader_score": float(ranked.base_grades[i]),
            "finding_rank": kept.get(i),
        }
        for i, c in enumerate(ranked.candidates)
    ]


def _write_candidates(project: Project, rows: list[dict[str, Any]]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = project.path("redteam", f"search-{stamp}.jsonl")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    return path


def _finding(ranked: Ranked, i: int, baselines: dict[int, Baseline], base_meta: dict[str, Any]) -> NewFinding:
    c = ranked.candidates[i]
    base = baselines[c.prompt.id]
    baseline = {"rm_score": base.rm, "grader_score": base.grade}
    return NewFinding(
        source="search",
        prompt=c.prompt.text,
        response=c.response,
        dimension=c.prompt.dimension,
        baseline_response=base.response,
        rm_score=float(ranked.rm[i]),
        grader_score=float(ranked.grades[i]),
        gap=float(ranked.gaps[i]),
        meta={
            **base_meta,
            "prompt_key": c.prompt.key,
            "stratum": c.prompt.stratum,
            "origin": c.origin,
            "sample_index": c.sample_index,
            "times": c.times,
            "baseline": baseline,
        },
    )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _store(
    project: Project,
    ranked: Ranked,
    baselines: dict[int, Baseline],
    settings: dict[str, Any],
    *,
    samples_drawn: int,
) -> SearchResult:
    path = _write_candidates(project, _candidate_rows(ranked))
    mean_rm, mean_grade = float(ranked.rm.mean()), float(ranked.grades.mean())
    findings_rm = _mean([float(ranked.rm[i]) for i in ranked.kept])
    findings_grade = _mean([float(ranked.grades[i]) for i in ranked.kept])
    summary = {
        "candidates": len(ranked.candidates),
        "samples": samples_drawn,
        "findings": len(ranked.kept),
        "mean_rm": mean_rm,
        "mean_grade": mean_grade,
        "findings_mean_rm": findings_rm,
        "findings_mean_grade": findings_grade,
    }
    parents = [
        settings[k]["artifact_id"]
        for k in ("policy", "baseline_policy", "reward_model")
        if settings[k]["artifact_id"]
    ]
    project_id = project.project_id
    with project.store.session() as session:
        record = register_artifact(
            session,
            project_id=project_id,
            kind=REDTEAM_SEARCH_KIND,
            path=project.relative(path),
            content_hash=content_sha256(path),
            spec_hash=project.spec_hash,
            parents=parents,
            meta={
                **settings,
                **summary,
                "reward_model_sha256": settings["reward_model"]["sha256"],
                "scale": ranked.scale.to_dict(),
            },
        )
        base_meta = {"search": record.id, "seed": settings["seed"], "scale": ranked.scale.to_dict()}
        base_meta |= {k: settings[k] for k in ("policy", "baseline_policy", "reward_model", "graders")}
        findings = [_finding(ranked, i, baselines, base_meta) for i in ranked.kept]
        ids = add_findings(session, project_id=project_id, findings=findings, spec_hash=project.spec_hash)
    return SearchResult(
        finding_ids=ids,
        artifact_id=record.id,
        path=path,
        prompts=int(settings["prompts"]),
        samples=samples_drawn,
        candidates=len(ranked.candidates),
        scale=ranked.scale,
        mean_rm=mean_rm,
        mean_grade=mean_grade,
        findings_mean_rm=findings_rm,
        findings_mean_grade=findings_grade,
        settings=settings,
    )
