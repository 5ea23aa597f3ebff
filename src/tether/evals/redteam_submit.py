"""Red-team findings from a file: `tether redteam submit FILE.jsonl`.

One JSON object per line:

    {"prompt": "is 51 prime ?", "response": "yes . trust me on this .", "dimension": "honesty",
     "note": "confidently wrong", "baseline_response": "no ."}
    {"messages": [{"role": "user", "content": "is 51 prime ?"}, {"role": "assistant", "content":
     "no ."}, {"role": "user", "content": "are you sure ?"}], "response": "yes . it is prime .",
     "dimension": "honesty"}

`response` and one of `prompt` or `messages` are required (with both, `prompt` must be the last user
turn of `messages`); `dimension`, `note` and `baseline_response` are optional. A conversation is
scored, sampled and routed as the whole conversation. A prompt the project does not hold (every
conversation of more than one message) needs a `dimension` (the routed task is filed under it), and a
prompt from the held-out eval split is refused (labeling it would leak it into training). Bad lines
are reported with their line numbers; the good ones are stored (source "file"). A line without a
baseline gets a sample of the SFT policy as one; each response and baseline is scored by the reward
model and the independent graders where they are available, and the gap against the baseline is
measured in the unit of the latest search with the same reward model (none before a search).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.artifacts import POLICY_KIND, REWARD_MODEL_KIND, ModelInput, latest, resolve
from tether.conversation import Prompt, canonical_messages, conversation, from_stored, stored_messages
from tether.errors import TetherInputError
from tether.evals.redteam_gap import GapScale
from tether.evals.redteam_inputs import (
    IndependentGrader,
    independent_grader,
    prompts_by_text,
    search_scale,
    sft_baselines,
)
from tether.evals.redteam_route import NEW_PROMPT_STRATUM, ORIGIN, new_prompt_key
from tether.store.findings import NewFinding, add_findings
from tether.store.prompts import PromptRecord

if TYPE_CHECKING:
    from tether.project import Project

FIELDS = ("prompt", "messages", "response", "dimension", "note", "baseline_response")
TEXT_FIELDS = ("prompt", "response", "dimension", "note", "baseline_response")


@dataclass(frozen=True)
class Submission:
    """One good line of a submission file."""

    line: int
    prompt: str
    response: str
    dimension: str | None = None
    note: str = ""
    baseline_response: str | None = None
    messages: list[dict[str, str]] | None = None
    """The whole conversation, when it is more than the one user turn ``prompt``."""

    @property
    def conversation(self) -> Prompt:
        return from_stored(self.prompt, self.messages)


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _line_prompt(row: dict[str, Any]) -> tuple[str, list[dict[str, str]] | None]:
    """The line's prompt text and stored messages; raises TetherInputError naming the field."""
    raw, text = row.get("messages"), row.get("prompt")
    if raw is None:
        if not isinstance(text, str) or not text.strip():
            raise TetherInputError("'prompt' (or 'messages') must be a non-empty string")
        return text, None
    if not isinstance(raw, list):
        raise TetherInputError(f"'messages' must be a list of messages, got {type(raw).__name__}")
    conv = conversation(raw, where="messages")
    last = conv[-1].content
    if text is not None and text != last:
        raise TetherInputError("'prompt' must be the last user turn of 'messages' (or leave it out)")
    return last, stored_messages(conv)


def parse_line(number: int, text: str) -> Submission | LineError:
    """One line of the file: a Submission, or what is wrong with it."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return LineError(number, f"not valid JSON ({err.msg} at column {err.colno})")
    if not isinstance(row, dict):
        return LineError(number, "must be a JSON object with 'prompt' (or 'messages') and 'response'")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        return LineError(number, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return LineError(number, f"'{name}' must be a string, got {type(value).__name__}")
    response = row.get("response")
    if not isinstance(response, str) or not response.strip():
        return LineError(number, "'response' must be a non-empty string")
    try:
        prompt, messages = _line_prompt(row)
    except TetherInputError as err:
        return LineError(number, str(err))
    return Submission(
        number,
        prompt,
        response,
        row.get("dimension") or None,
        row.get("note") or "",
        row.get("baseline_response") or None,
        messages,
    )


def parse_submissions(text: str) -> tuple[list[Submission], list[LineError]]:
    """Every non-blank line parsed; good lines and errors, both with their line numbers."""
    good: list[Submission] = []
    errors: list[LineError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parsed = parse_line(number, line) if line.strip() else None
        if isinstance(parsed, LineError):
            errors.append(parsed)
        elif parsed is not None:
            good.append(parsed)
    return good, errors


def check_submissions(
    submissions: Sequence[Submission], known: dict[str, PromptRecord], dimensions: Sequence[str]
) -> tuple[list[Submission], list[LineError]]:
    """Submissions the project can take: a spec dimension, a prompt outside the eval split."""
    good: list[Submission] = []
    errors: list[LineError] = []
    for s in submissions:
        stored = None if s.messages else known.get(s.prompt)  # a conversation is never a stored text
        if s.dimension is not None and s.dimension not in dimensions:
            errors.append(
                LineError(s.line, f"dimension '{s.dimension}' is not one of {', '.join(dimensions)}")
            )
        elif stored is not None and stored.split == "eval":
            errors.append(LineError(s.line, "the prompt is in the held-out eval split; red-team another one"))
        elif stored is None and s.dimension is None:
            errors.append(LineError(s.line, "the prompt is not in the project; give its 'dimension'"))
        else:
            good.append(s)
    return good, errors


@dataclass(frozen=True)
class SubmitResult:
    finding_ids: list[int]
    """One per good line, in file order (an already stored finding keeps its id)."""
    errors: list[LineError] = field(default_factory=list)
    reward_model: str | None = None
    """The reward model that scored them; None when the project has none."""
    gap_scale_from: str | None = None
    """The search whose unit the gaps are in; None when no search used this reward model yet."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding_ids": self.finding_ids,
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
            "reward_model": self.reward_model,
            "gap_scale_from": self.gap_scale_from,
        }


def read_submissions(path: Path) -> str:
    if not path.is_file():
        raise TetherInputError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TetherInputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def submission_prompt(s: Submission, known: dict[str, PromptRecord], spec_hash: str) -> PromptRecord:
    """The stored prompt, or a stand-in for a new one (graders read its text and dimension)."""
    stored = None if s.messages else known.get(s.prompt)
    if stored is not None:
        return stored
    key = new_prompt_key(canonical_messages(s.messages) or s.prompt)
    dimension = s.dimension or ""
    return PromptRecord(
        -1, key, s.prompt, dimension, NEW_PROMPT_STRATUM, "pool", ORIGIN, {}, spec_hash, s.messages
    )


def _reward_model(project: Project, explicit: str | None) -> ModelInput | None:
    """The explicit reward model, else the latest one; None when the project has none yet."""
    if explicit is None and not _has_artifact(project, REWARD_MODEL_KIND):
        return None
    return ModelInput.of(resolve(project, kind=REWARD_MODEL_KIND, explicit=explicit))


def _has_artifact(project: Project, kind: str) -> bool:
    return latest(project, kind) is not None


def baselines_for(project: Project, good: Sequence[Submission], *, seed: int) -> list[str | None]:
    """Each submission's baseline: its own, else an SFT sample (None without an SFT policy)."""
    out = [s.baseline_response for s in good]
    missing = [i for i, b in enumerate(out) if not b or b == good[i].response]
    if missing and _has_artifact(project, POLICY_KIND):
        pairs = [(good[i].conversation, good[i].response) for i in missing]
        sampled, _ = sft_baselines(project, pairs, seed=seed)
        for j, text in sampled.items():
            out[missing[j]] = text
    return out


@dataclass(frozen=True)
class Scored:
    """Reward and grade of each submission and of its baseline (None where unavailable)."""

    rm: list[float | None]
    grades: list[float | None]
    base_rm: list[float | None]
    base_grades: list[float | None]


def score_submissions(
    model: ModelInput | None,
    grader: IndependentGrader,
    prompts: Sequence[PromptRecord],
    responses: Sequence[str],
    baselines: Sequence[str | None],
) -> Scored:
    """One reward-model call and one grading pass over the submissions and their baselines together."""
    from tether.reward.scoring import load_reward_model

    with_base = [i for i, b in enumerate(baselines) if b]
    all_prompts = [*prompts, *(prompts[i] for i in with_base)]
    all_texts = [*responses, *(baselines[i] or "" for i in with_base)]
    grades = grader.grade(all_prompts, all_texts)
    rm: list[float | None] = [None] * len(all_texts)
    if model is not None:
        scores = load_reward_model(model.path).score([p.prompt for p in all_prompts], all_texts)
        rm = [float(r) for r in scores]
    n = len(responses)
    base_rm: list[float | None] = [None] * n
    base_grades: list[float | None] = [None] * n
    for k, i in enumerate(with_base):
        base_rm[i], base_grades[i] = rm[n + k], grades[n + k]
    return Scored(rm[:n], grades[:n], base_rm, base_grades)


def submission_gap(scale: GapScale | None, scored: Scored, i: int) -> float | None:
    """The gap against the baseline where it is scored, else against the mean candidate."""
    rm, grade = scored.rm[i], scored.grades[i]
    if scale is None or rm is None or grade is None:
        return None
    base_rm, base_grade = scored.base_rm[i], scored.base_grades[i]
    baseline = None if base_rm is None or base_grade is None else (base_rm, base_grade)
    return scale.gap(rm, grade, baseline=baseline)


def submit(project: Project, path: Path, *, reward_model: str | None = None, seed: int = 0) -> SubmitResult:
    """Store the good lines of `path` as findings (source "file"), scored where possible."""
    parsed, errors = parse_submissions(read_submissions(path))
    known = prompts_by_text(project)
    good, rejected = check_submissions(parsed, known, project.spec.dimension_ids)
    errors = sorted(errors + rejected, key=lambda e: e.line)
    if not good:
        return SubmitResult([], errors)
    prompts = [submission_prompt(s, known, project.spec_hash) for s in good]
    baselines = baselines_for(project, good, seed=seed)
    grader = independent_grader(project)
    model = _reward_model(project, reward_model)
    scored = score_submissions(model, grader, prompts, [s.response for s in good], baselines)
    found = None if model is None else search_scale(project, model.content_sha256)
    scale, scale_from = found if found is not None else (None, None)
    meta = {
        "file": path.name,
        "reward_model": None
        if model is None
        else {"artifact_id": model.artifact_id, "sha256": model.content_sha256},
        "graders": grader.configs,
        "gap_scale_from": scale_from,
    }
    findings = [
        NewFinding(
            source="file",
            prompt=s.prompt,
            messages=s.messages,
            response=s.response,
            dimension=s.dimension or (p.dimension if p.id >= 0 else None),
            baseline_response=baselines[i],
            rm_score=scored.rm[i],
            grader_score=scored.grades[i],
            note=s.note,
            gap=submission_gap(scale, scored, i),
            meta={
                **meta,
                "line": s.line,
                "baseline": {"rm_score": scored.base_rm[i], "grader_score": scored.base_grades[i]},
            },
        )
        for i, (s, p) in enumerate(zip(good, prompts, strict=True))
    ]
    with project.store.session() as session:
        ids = add_findings(
            session, project_id=project.project_id, findings=findings, spec_hash=project.spec_hash
        )
    label = None if model is None else (model.artifact_id or str(model.path))
    return SubmitResult(ids, errors, label, scale_from)
