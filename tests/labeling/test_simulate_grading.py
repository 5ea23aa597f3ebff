"""Simulated rubric graders: the level mapping, each rater lens, and grading open tasks in a store."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import app as cli
from tether.labeling import raters as rater_ops
from tether.labeling.context import labeling_context
from tether.project import Project
from tether.sandbox.anchors import anchor_prompt_meta
from tether.sandbox.gold import grade as gold_grade
from tether.sandbox.grammar import parse, render_sft_example
from tether.sandbox.raters import RaterProfile, default_pool
from tether.sandbox.simulate import ensure_simulated_raters
from tether.sandbox.simulate_grading import (
    PROMPT_META,
    perceived_grade,
    rationale_for,
    rubric_level,
    sandbox_prompt,
    simulate_grading,
)
from tether.sandbox.world import SandboxPrompt, generate_prompts, stable_rng
from tether.scaffold import init_project
from tether.store.grading import NewGradingTask, add_grading_tasks, grades_for, open_grading_tasks
from tether.store.raters import list_raters

SHARP = RaterProfile(name="sharp", temperature=1e-9)
LEVELS = [0, 1, 2]


def samples(n: int) -> list[tuple[SandboxPrompt, str]]:
    """Sandbox prompts of every dimension with one SFT-style response each."""
    prompts = generate_prompts(seed=0, n=n)
    return [(p, render_sft_example(p, stable_rng("grading-test", p.id))) for p in prompts]


# ---- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "levels", "expected"),
    [
        (0.0, LEVELS, 0),
        (0.24, LEVELS, 0),
        (0.25, LEVELS, 0),  # halfway between 0 and 1 goes down
        (0.26, LEVELS, 1),
        (0.75, LEVELS, 1),
        (0.8, LEVELS, 2),
        (1.4, LEVELS, 2),  # clamped
        (-0.3, LEVELS, 0),
        (0.5, [1, 3, 5], 3),  # 1 + 0.5 * 4 = 3
        (0.4, [1, 3, 5], 3),  # 2.6 is nearest 3
        (0.3, [0, 4, 10], 4),  # 3.0 is nearest 4 (uneven levels)
    ],
)
def test_rubric_level_is_the_nearest_level_on_a_linear_scale(
    score: float, levels: list[int], expected: int
) -> None:
    assert rubric_level(score, levels) == expected


def test_a_sharp_unbiased_rater_grades_as_gold_and_an_inverted_one_flips_safety() -> None:
    inverted = RaterProfile(name="inv", temperature=1e-9, inverted=["safety"])
    blind = RaterProfile(name="blind", temperature=1e-9, blind_spots=["accuracy"])
    for prompt, response in samples(24):
        gold = gold_grade(prompt, response)
        for dim in ("accuracy", "safety", "honesty", "concision"):
            assert perceived_grade(SHARP, prompt, response, dim, random.Random(0)) == pytest.approx(
                gold.dimension(dim), abs=1e-6
            )
        flipped = perceived_grade(inverted, prompt, response, "safety", random.Random(0))
        assert flipped == pytest.approx(1.0 - gold.safety, abs=1e-6)
        assert perceived_grade(blind, prompt, response, "accuracy", random.Random(0)) == 1.0


def test_length_taste_lifts_concision_only_and_unparseable_text_scores_zero() -> None:
    wordy = RaterProfile(name="wordy", temperature=1e-9, length=0.65)
    prompt, response = samples(4)[0]
    parsed = parse(response)
    assert parsed is not None
    lifted = perceived_grade(wordy, prompt, response, "concision", random.Random(0))
    assert lifted == pytest.approx(
        gold_grade(prompt, response).concision + 0.65 * parsed.n_words / 20, abs=1e-6
    )
    assert perceived_grade(wordy, prompt, response, "accuracy", random.Random(0)) == pytest.approx(
        gold_grade(prompt, response).accuracy, abs=1e-6
    )
    assert perceived_grade(SHARP, prompt, "(empty response)", "accuracy", random.Random(0)) == 0.0
    with pytest.raises(ValueError, match="not 'tone'"):
        perceived_grade(SHARP, prompt, response, "tone", random.Random(0))


def test_noise_and_carelessness() -> None:
    prompt, response = samples(4)[0]
    noisy = RaterProfile(name="noisy", temperature=0.3)
    careless = RaterProfile(name="careless", careless=True)
    draws = [perceived_grade(noisy, prompt, response, "accuracy", random.Random(i)) for i in range(200)]
    gold = gold_grade(prompt, response).accuracy
    # Gaussian noise of sd 0.3 on the gold score: the mean of 200 draws has standard error 0.021, so
    # the old 0.08 was 3.8 of them; 0.11 is 5. Their range is ~5.5 sd (1.6), far above 0.5.
    assert abs(sum(draws) / len(draws) - gold) < 0.11 and max(draws) - min(draws) > 0.5
    picks = {
        rubric_level(perceived_grade(careless, prompt, response, "accuracy", random.Random(i)), LEVELS)
        for i in range(50)
    }
    assert picks == {0, 1, 2}


def test_rationales_quote_the_level_and_meet_the_minimum_length(tmp_path: Path) -> None:
    spec = init_project(tmp_path / "p", template="sandbox").spec
    accuracy = next(d for d in spec.dimensions if d.id == "accuracy")
    text = rationale_for(accuracy, 2, 20)
    assert text == "Level 2 of 2 on accuracy: States the correct answer."
    longer = rationale_for(accuracy, 2, 60)
    assert longer == f"{text} A simulated grade, from the sandbox gold grader's score."
    assert len(rationale_for(accuracy, 0, 200)) == 200


def test_sandbox_truth_is_read_from_prompt_meta_only() -> None:
    prompt, _ = samples(1)[0]
    assert sandbox_prompt({PROMPT_META: prompt.to_meta()}) == prompt
    assert sandbox_prompt({}) is None
    assert sandbox_prompt({PROMPT_META: "x"}) is None
    assert sandbox_prompt({PROMPT_META: {"dimension": "accuracy"}}) is None
    assert sandbox_prompt({"sandbox": prompt.to_meta()}) is None


# ---- grading a store ---------------------------------------------------------------------------


def sandbox_project(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    return init_project(tmp_path / "sim", template="sandbox")


def add_tasks(project: Project, pairs: list[tuple[SandboxPrompt, str]], needed: int) -> list[NewGradingTask]:
    tasks = [
        NewGradingTask(
            source_key=f"eval/{p.id}",
            origin="eval",
            dimension=p.dimension,
            prompt=p.text,
            response=r,
            raters_needed=needed,
            meta={PROMPT_META: p.to_meta()},
        )
        for p, r in pairs
    ]
    people = NewGradingTask(
        source_key="prod/1", origin="production", dimension="accuracy", prompt="q", response="a"
    )
    with project.store.session() as session:
        add_grading_tasks(
            session, project_id=project.project_id, tasks=[*tasks, people], spec_hash=project.spec_hash
        )
    return tasks


def test_active_simulated_raters_grade_tasks_with_truth_and_leave_the_rest(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = sandbox_project(tmp_path, db_url, monkeypatch)
    pairs = samples(16)
    tasks = add_tasks(project, pairs, needed=2)
    assert simulate_grading(project) == 0  # no simulated raters yet: nothing happens

    pool = {p.name: p for p in default_pool()}
    ensure_simulated_raters(project, [pool["good-1"], pool["careless"], pool["safety-inverted"]])
    for name in ("good-1", "safety-inverted"):
        rater_ops.readmit(project, name=name, reason="test: calibrated")
    assert simulate_grading(project, seed=3) == 2 * len(tasks)
    assert simulate_grading(project, seed=3) == 0  # everything with truth is done

    keys = [t.source_key for t in tasks]
    with project.store.session() as session:
        names = {r.id: r.name for r in list_raters(session, project_id=project.project_id)}
        grades = grades_for(session, project_id=project.project_id, source_keys=keys)
        still_open = [t.source_key for t in open_grading_tasks(session, project_id=project.project_id)]
    assert still_open == ["prod/1"]  # no sandbox truth: left for people
    for (prompt, response), key in zip(pairs, keys, strict=True):
        by_rater = {names[g.rater_id]: g for g in grades[key]}
        assert set(by_rater) == {"good-1", "safety-inverted"}  # the careless rater is not active
        gold_level = rubric_level(gold_grade(prompt, response).dimension(prompt.dimension), LEVELS)
        if prompt.dimension != "concision":  # concision carries the rater's mild taste for length
            assert by_rater["good-1"].score == gold_level
        if prompt.dimension == "safety":
            assert by_rater["safety-inverted"].score == 2 - gold_level
        assert all(g.max_score == 2 and len(g.rationale) >= 20 for g in by_rater.values())


def test_label_simulate_also_grades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = sandbox_project(tmp_path, f"sqlite:///{tmp_path / 'sim.db'}", monkeypatch)
    labeling_context(project, seed=0, meta_for=anchor_prompt_meta(0))  # anchor tasks with their truth
    tasks = add_tasks(project, samples(4), needed=1)
    result = CliRunner().invoke(cli, ["label", "simulate", "--project", str(project.root)])
    assert result.exit_code == 0, result.output
    assert f"{len(tasks)} rubric grades of open grading tasks" in result.output
    with project.store.session() as session:
        grades = grades_for(session, project_id=project.project_id, source_keys=[t.source_key for t in tasks])
    assert all(len(g) == 1 for g in grades.values())
