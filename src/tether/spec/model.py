"""The behavior spec: the contract between raters, reward model and evaluation.

Every field's docstring is its documentation; `tether spec check` and docs/spec.md read
them. Unknown keys are errors (``extra="forbid"``) because a misspelt policy key that is
silently ignored is a policy that is silently not enforced.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.spec.style import StyleLexicons

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")

# Ranges the field guidance asks for; leaving them needs an explicit `overrides` entry.
DISAGREEMENT_RANGE = (0.25, 0.30)
HARD_SHARE_RANGE = (0.20, 0.30)
CALIBRATION_RANGE = (15, 30)
KL_RECOMMENDED = (4.0, 6.0)
# Cross-field problems travel through one ValueError; the loader splits them back apart.
CROSS_CHECK_SEPARATOR = "\n"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RubricLevel(_Strict):
    """One graded level of a dimension's rubric."""

    score: int = Field(ge=0, le=10)
    """Numeric grade of this level; higher is better."""
    description: str = Field(min_length=1)
    """What a response at this level looks like."""


class DimensionGate(_Strict):
    """Reward-model thresholds for one dimension, checked before RL."""

    min_accuracy: Probability = 0.65
    """Minimum held-out pairwise accuracy of the reward model on this dimension."""


class Dimension(_Strict):
    """A behavior dimension that raters judge, the reward model learns and evals measure."""

    id: str
    """Short identifier (lowercase, digits, underscores), used everywhere as the key."""
    description: str = Field(min_length=1)
    """What the dimension is about, in one or two sentences."""
    rubric: list[RubricLevel]
    """Graded levels, at least two, with distinct scores."""
    critical: bool = False
    """A critical dimension has stricter gates and blocks RL when it regresses."""
    gate: DimensionGate = DimensionGate()
    """Reward-model gate thresholds for this dimension."""

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"'{value}' must be lowercase letters, digits or '_', starting with a letter")
        return value

    @field_validator("rubric")
    @classmethod
    def _levels(cls, levels: list[RubricLevel]) -> list[RubricLevel]:
        if len(levels) < 2:
            raise ValueError("must have at least 2 levels")
        scores = [level.score for level in levels]
        if len(set(scores)) != len(scores):
            raise ValueError(f"level scores must be distinct, got {scores}")
        return sorted(levels, key=lambda level: level.score)


class TradeOffs(_Strict):
    """How to decide when dimensions conflict."""

    priority: list[str] = []
    """Dimension ids from most to least important when they conflict."""
    rules: list[str] = []
    """Free-text rules for raters, e.g. 'a safe refusal beats a helpful harmful answer'."""


class FailureMode(_Strict):
    """An unacceptable failure: one occurrence is a finding, whatever the average says."""

    id: str
    """Short identifier of the failure mode."""
    description: str = Field(min_length=1)
    """What the failure looks like."""
    dimensions: list[str] = []
    """Dimensions the failure belongs to."""


class LabelingPolicy(_Strict):
    """Rules the labeling stage enforces."""

    min_rationale_chars: int = Field(default=20, ge=1)
    """Minimum length of a written rationale, enforced on page and server."""
    anchors_path: str = "anchors.jsonl"
    """Expert-labelled anchor comparisons, relative to the project directory."""
    calibration_size: int = 20
    """Anchors a new rater judges before live work (15-30)."""
    max_expert_disagreement: Probability = 0.25
    """Largest share of clear-cut anchors a rater may get wrong and stay in training data."""
    hard_case_share: Probability = 0.25
    """Share of each batch drawn from the hard, adversarial and edge strata."""
    min_dimension_share: Probability = 0.10
    """Smallest share of each batch that every dimension must get."""
    overlap_fraction: Probability = 0.20
    """Share of tasks given to several raters so that agreement can be measured."""
    raters_per_overlap: int = Field(default=3, ge=2)
    """Distinct raters per overlapped task."""
    hidden_anchor_rate: Probability = 0.05
    """Share of an active rater's queue that is a hidden anchor."""
    recalibrate_every_days: int | None = Field(default=None, ge=1)
    """Schedule rater recalibration every N days (None: only on demand)."""
    recalibrate_every_judgments: int | None = Field(default=None, ge=1)
    """Schedule rater recalibration every N judgments (None: only on demand)."""
    max_recalibrations: int = Field(default=2, ge=0)
    """Hidden-anchor failures a rater may recalibrate after; the next failure excludes them (0: the first)."""


class RewardModelPolicy(_Strict):
    """Data sufficiency and readiness gate for the reward model."""

    min_pairs: int = Field(default=5000, ge=1)
    """Warn when the training export has fewer preference pairs than this."""
    min_pairs_per_dimension: int = Field(default=500, ge=0)
    """Warn when a dimension has fewer pairs than this."""
    min_accuracy: Probability = 0.65
    """Minimum overall held-out accuracy."""
    max_ece: Probability = 0.10
    """Maximum expected calibration error of sigma(r_A - r_B)."""
    max_probe_delta: dict[str, float] = {}
    """Maximum allowed mean reward change per counterfactual probe (e.g. filler: 0.5)."""
    min_critical_pairs: int = Field(default=50, ge=0)
    """Held-out pairs a critical dimension needs before the gate will pass it."""
    gate_policy: Literal["strict", "interval"] = "interval"
    """A marginal non-critical check (95% interval straddles the bar): strict fails, interval warns."""
    critical_gate_policy: Literal["strict", "interval"] = "strict"
    """The same for critical dimensions' accuracy (strict: a straddling interval fails)."""


class LoraPolicy(_Strict):
    """LoRA for RL: train a low-rank adapter (peft) on the SFT policy instead of every weight."""

    enabled: bool = False
    """Train an adapter instead of the full policy; the KL reference is then the same model with the
    adapter switched off, so no second copy is loaded (`tether rl run --lora` turns it on for one run)."""
    r: int = Field(default=16, ge=1)
    """Rank of each adapter's weight update."""
    alpha: int = Field(default=32, ge=1)
    """Scale of the update: the adapter's product is multiplied by alpha / r."""
    dropout: float = Field(default=0.0, ge=0, lt=1)
    """Dropout on the adapter's input during updates; 0 keeps the rollout's and the update's
    log-probabilities on the same function, as the rest of the policy runs without dropout."""
    target_modules: Literal["all-linear"] | Annotated[tuple[str, ...], Field(min_length=1)] = "all-linear"
    """Modules that get an adapter: "all-linear" (every linear layer but the output head) or a list
    of module names, e.g. [q_proj, v_proj]."""


class RLPolicy(_Strict):
    """Policy for RL runs."""

    kl_budget_nats: float = Field(default=5.0, gt=0)
    """Sequence-level KL budget against the SFT policy, in nats (recommended 4-6)."""
    kl_budget_margin: float = Field(default=0.2, ge=0)
    """A run stops when running KL exceeds the budget by this fraction."""
    steps_per_run: int = Field(default=200, ge=1)
    """PPO steps per short run."""
    lora: LoraPolicy = LoraPolicy()
    """Train a LoRA adapter instead of the full policy (off by default)."""


class EvalPolicy(_Strict):
    """Where the behavioral test suites live."""

    suites_dir: str = "suites"
    """Folder of suite files, relative to the project directory."""
    min_cases_per_dimension: int = Field(default=50, ge=1)
    """`tether eval lint` warns when a dimension's suite has fewer cases than this (target 50-200)."""
    samples_per_case: int = Field(default=3, ge=1)
    """Responses sampled per case and checkpoint, each with its own fixed seed."""
    quick_cases_per_dimension: int = Field(default=12, ge=1)
    """Cases per dimension in the quick suite that `tether rl run --eval-every K` runs."""


class FeedbackPolicy(_Strict):
    """How production feedback is stored, reviewed and checked for drift."""

    review_share: Probability = 0.2
    """Share of flagged production items routed to human review."""
    store_user_metadata: bool = False
    """Keep the optional user metadata sent with flagged items (off: it is dropped on arrival)."""
    drift_alpha: Probability = 0.01
    """Permutation p-value below which the production prompt mix counts as drifted."""
    drift_window: int = Field(default=500, ge=20)
    """Most recent production prompts compared with the reward model's training prompts."""


class LoopPolicy(_Strict):
    """Short RLHF iterations: how much each one labels."""

    pairs_per_iteration: int = Field(default=6400, ge=1)
    """Comparison tasks planned in each iteration's labeling batch."""
    first_iteration_pairs: int | None = Field(default=None, ge=1)
    """Tasks in the first batch, when the reward model needs a larger start (None: pairs_per_iteration)."""
    focus_share: Probability = 0.3
    """Share of an iteration's batch steered to the previous diagnosis's weak dimensions and strata."""
    max_gate_retries: int = Field(default=2, ge=0)
    """After a failed gate: targeted relabel, retrain and re-gate rounds before the iteration stops."""
    remediation_pairs: int = Field(default=400, ge=1)
    """Comparison tasks per failed gate check in each targeted batch."""


class GenerationPolicy(_Strict):
    """How every stage samples the policy: labeling, evals, red-teaming, feedback review and RL."""

    max_new_tokens: int = Field(default=256, ge=1)
    """Longest response in tokens; a prompt plus this must fit the model's context."""
    temperature: float = Field(default=1.0, gt=0)
    """Sampling temperature; 1 samples the policy's own distribution."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling: keep the smallest token set with this much probability (1 = off; not in RL)."""
    top_k: int = Field(default=0, ge=0)
    """Sample among the k most likely tokens (0 = off; not in RL)."""
    stop: list[str] = []
    """Strings that end a response: the text is cut at the first one (not in RL)."""
    system_prompt: str | None = Field(default=None, min_length=1)
    """The system message every conversation starts with unless it has its own: in labeling samples,
    evals, red-teaming, RL rollouts and the reward model's input alike (none by default)."""


class Spec(_Strict):
    """A versioned behavior spec."""

    name: str = Field(min_length=1)
    """Human name of the spec."""
    version: str = Field(min_length=1)
    """Human version label; the content hash is the real version id."""
    description: str = ""
    """What the model is for."""
    dimensions: list[Dimension]
    """Behavior dimensions, at least one."""
    trade_offs: TradeOffs = TradeOffs()
    """Conflict resolution between dimensions."""
    unacceptable: list[FailureMode] = []
    """Failure modes that are never acceptable."""
    labeling: LabelingPolicy = LabelingPolicy()
    """Labeling rules."""
    reward_model: RewardModelPolicy = RewardModelPolicy()
    """Reward-model data and gate policy."""
    rl: RLPolicy = RLPolicy()
    """RL policy."""
    evals: EvalPolicy = EvalPolicy()
    """Evaluation suites."""
    feedback: FeedbackPolicy = FeedbackPolicy()
    """Production feedback and drift."""
    loop: LoopPolicy = LoopPolicy()
    """Loop iterations."""
    generation: GenerationPolicy = GenerationPolicy()
    """How responses are sampled from the policy, in every stage."""
    style: StyleLexicons = StyleLexicons()
    """Filler, hedge, confidence and list phrases: what the bias probes add and the style monitors count."""
    overrides: list[str] = []
    """Policy fields deliberately set outside their recommended range, e.g. 'labeling.hard_case_share'."""

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, dims: list[Dimension]) -> list[Dimension]:
        if not dims:
            raise ValueError("must list at least 1 dimension")
        ids = [d.id for d in dims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate dimension ids: {', '.join(dupes)}")
        return dims

    @model_validator(mode="after")
    def _cross_checks(self) -> Spec:
        problems = list(_reference_problems(self)) + list(_range_problems(self))
        if problems:
            raise ValueError(CROSS_CHECK_SEPARATOR.join(problems))
        return self

    def dimension(self, dim_id: str) -> Dimension:
        for dim in self.dimensions:
            if dim.id == dim_id:
                return dim
        raise KeyError(dim_id)

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]


KNOWN_OVERRIDES = (
    "labeling.max_expert_disagreement",
    "labeling.hard_case_share",
    "labeling.calibration_size",
)


def _reference_problems(spec: Spec) -> list[str]:
    """Names that must point at declared dimensions. Each message starts with its field path."""
    known = set(spec.dimension_ids)
    out = []
    for i, dim_id in enumerate(spec.trade_offs.priority):
        if dim_id not in known:
            out.append(f"@trade_offs.priority[{i}]: unknown dimension '{dim_id}'")
    if len(set(spec.trade_offs.priority)) != len(spec.trade_offs.priority):
        out.append("@trade_offs.priority: lists a dimension more than once")
    for i, mode in enumerate(spec.unacceptable):
        for dim_id in mode.dimensions:
            if dim_id not in known:
                out.append(f"@unacceptable[{i}].dimensions: unknown dimension '{dim_id}'")
    for i, name in enumerate(spec.overrides):
        if name not in KNOWN_OVERRIDES:
            out.append(
                f"@overrides[{i}]: '{name}' is not an overridable field ({', '.join(KNOWN_OVERRIDES)})"
            )
    return out


def _range_problems(spec: Spec) -> list[str]:
    lab = spec.labeling
    checks = [
        ("labeling.max_expert_disagreement", lab.max_expert_disagreement, DISAGREEMENT_RANGE),
        ("labeling.hard_case_share", lab.hard_case_share, HARD_SHARE_RANGE),
        ("labeling.calibration_size", lab.calibration_size, CALIBRATION_RANGE),
    ]
    out = []
    for path, value, (low, high) in checks:
        if not low <= value <= high and path not in spec.overrides:
            out.append(
                f"@{path}: {value} is outside {low}-{high}; add '{path}' to overrides to set it deliberately"
            )
    return out
