"""Real eval runs of a tiny SFT policy on sandbox suites: files, registration, determinism, partial
results when a judge goes away, human grades collected later, and checkpoint comparison."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.labeling.fake_openai import closed_port_endpoint
from tests.rl.test_loop_support import latest_id, register
from tether.errors import TetherError, TetherInputError
from tether.evals.history import collect_run, comparison_pairs, list_eval_runs
from tether.evals.init_suites import init_sandbox_suites
from tether.evals.results import RESULTS_FILE, RUN_FILE, SUMMARY_FILE, read_rows
from tether.evals.run import EVAL_RUN_KIND, load_eval_run, run_eval
from tether.evals.sampling import PolicySampler, SamplingConfig
from tether.evals.suite import load_suites
from tether.project import Project
from tether.store import get_artifact, list_prompts
from tether.store.grading import open_grading_tasks, submit_grade
from tether.store.raters import add_rater

FAST = SamplingConfig(max_new_tokens=16, batch_size=32)


@pytest.fixture
def project(tiny_project: Project) -> Project:
    init_sandbox_suites(tiny_project, per_dimension=4)
    return tiny_project


def test_init_suites_uses_only_the_eval_split_and_refuses_to_overwrite(tiny_project: Project) -> None:
    paths = init_sandbox_suites(tiny_project, per_dimension=4)
    assert [p.name for p in paths] == ["accuracy.yaml", "safety.yaml", "honesty.yaml", "concision.yaml"]
    with tiny_project.store.session() as session:
        held_out = {r.key for r in list_prompts(session, project_id=tiny_project.project_id, split="eval")}
    suites = load_suites(paths[0].parent)
    ids = [c.id for s in suites for c in s.suite.cases]
    assert ids and set(ids) <= held_out and all(s.suite.graders == ["gold", "programmatic"] for s in suites)
    safety = next(s.suite for s in suites if s.suite.dimension == "safety")
    assert all(c.must_refuse == c.meta["sandbox"]["truth"]["must_refuse"] for c in safety.cases)
    with pytest.raises(TetherInputError, match="--force"):
        init_sandbox_suites(tiny_project, per_dimension=4)
    assert init_sandbox_suites(tiny_project, per_dimension=2, force=True) == paths


def test_run_writes_results_summary_and_a_registered_artifact(project: Project) -> None:
    sft = latest_id(project, "policy")
    seen: list[tuple[str, int, int]] = []
    run = run_eval(project, checkpoint="sft", samples=2, sampling=FAST, progress=lambda *a: seen.append(a))
    rows = read_rows(run.run_dir / RESULTS_FILE)
    n_cases = sum(m["cases"] for m in run.meta["suites"])
    assert len(rows) == n_cases * 2 * 2  # samples x graders (gold, programmatic)
    assert {r.seed for r in rows} == {0, 1} and {r.grader for r in rows} == {"gold", "programmatic"}
    assert run.checkpoint == sft and run.checkpoint_kind == "policy"
    summary = json.loads((run.run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert set(summary["dimensions"]) == {"accuracy", "safety", "honesty", "concision"}
    for entry in summary["dimensions"].values():
        assert entry["low"] <= entry["mean"] <= entry["high"] and entry["n_cases"] >= 1
    assert run.scores == {d: e["mean"] for d, e in summary["dimensions"].items()}
    with project.store.session() as session:
        artifact = get_artifact(session, artifact_id=run.artifact_id or "")
    assert artifact is not None and artifact.kind == EVAL_RUN_KIND and artifact.parents == (sft,)
    assert artifact.spec_hash == project.spec_hash
    assert set(artifact.meta["suites"]) == {"accuracy", "safety", "honesty", "concision"}
    assert artifact.meta["graders"]["safety"] == [
        {"name": "gold", "args": {}},
        {"name": "programmatic", "args": {}},
    ]
    assert artifact.meta["seeds"] == [0, 1] and artifact.meta["checkpoint_label"] == "sft"
    assert seen[-1] == ("grade", n_cases, n_cases) and ("sample", 2 * n_cases, 2 * n_cases) in seen
    # the same policy, suites and seeds give the same responses; loading by id or directory agrees
    again = run_eval(project, checkpoint="sft", samples=2, sampling=FAST, suites=["safety"])
    first = {(r.case_id, r.sample_index): r.response for r in rows if r.dimension == "safety"}
    assert {(r.case_id, r.sample_index): r.response for r in again.rows()} == first
    assert load_eval_run(project, str(run.run_dir)).artifact_id == run.artifact_id
    assert load_eval_run(project, run.artifact_id or "").scores == run.scores
    assert [r.id for r in list_eval_runs(project)] == [run.artifact_id, again.artifact_id]


def test_sampling_never_moves_the_callers_random_state(project: Project) -> None:
    import torch

    sampler = PolicySampler.load(project.path("models", "sft-seed0"), FAST)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    out = sampler.sample(["what is 2 plus 2 ?", "how do i bake bread ?"], samples=2)
    assert len(out) == 2 and all(len(r) == 2 for r in out)
    assert torch.equal(before, torch.get_rng_state())
    assert sampler.sample(["what is 2 plus 2 ?", "how do i bake bread ?"], samples=2) == out


def test_an_unreachable_judge_ends_the_run_after_saving_partial_results(project: Project) -> None:
    judge = f"llm_judge:base_url={closed_port_endpoint()},max_retries=1,backoff=0"
    with pytest.raises(TetherError, match=r"failed after 2 attempts.*graded so far are in") as err:
        run_eval(
            project,
            checkpoint="sft",
            samples=1,
            sampling=FAST,
            suites=["safety"],
            graders=["programmatic", judge],
        )
    (run_dir,) = (project.state_dir / "evals").iterdir()
    assert str(run_dir / RESULTS_FILE) in str(err.value)
    rows = read_rows(run_dir / RESULTS_FILE)
    assert len(rows) == 1 and rows[0].grader == "programmatic"  # the first case's programmatic grade
    assert json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))["status"] == "failed"
    assert json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["status"] == "failed"
    assert list_eval_runs(project) == []


def test_bad_inputs_fail_before_sampling(project: Project) -> None:
    with pytest.raises(TetherInputError, match="unknown grader 'vibes'; known graders: gold, human"):
        run_eval(project, checkpoint="sft", graders=["vibes"])
    with pytest.raises(TetherInputError, match="is not sft, latest"):
        run_eval(project, checkpoint="not-a-checkpoint")
    with pytest.raises(TetherInputError, match="no suite named nope"):
        run_eval(project, checkpoint="sft", suites=["nope"])
    assert not (project.state_dir / "evals").exists()


def test_human_grades_are_collected_into_the_run(project: Project) -> None:
    run = run_eval(project, checkpoint="sft", samples=1, sampling=FAST, suites=["safety"], graders=["human"])
    assert run.pending == len(run.rows()) > 0 and all(s is None for s in run.scores.values())
    with project.store.session() as session:
        tasks = open_grading_tasks(session, project_id=project.project_id)
        rater = add_rater(
            session, project_id=project.project_id, name="ann", kind="human", spec_hash=project.spec_hash
        )
        graded = tasks[:2]
        for i, task in enumerate(graded):
            submit_grade(session, task_id=task.id, rater_id=rater.id, score=2 * (i % 2), max_score=2,
                         rationale="r", idempotency_key=f"k{i}", spec_hash=project.spec_hash)  # fmt: skip
    assert {t.dimension for t in tasks} == {"safety"} and all(t.origin == "eval" for t in tasks)
    collected = collect_run(project, run.artifact_id or "")
    # one sample per distinct case prompt, so each grade fills exactly one row: 0/2 and 2/2
    assert collected.filled == 2 and collected.still_pending == run.pending - 2
    assert sorted(r.score for r in collected.run.rows() if r.score is not None) == [0.0, 1.0]
    assert collected.run.scores == {"safety": 0.5}
    with project.store.session() as session:
        artifact = get_artifact(session, artifact_id=collected.run.artifact_id or "")
    assert artifact is not None and run.artifact_id in artifact.parents
    assert collect_run(project, collected.run.artifact_id or "").filled == 0


def test_comparison_pairs_name_the_missing_runs_then_compare_against_sft(project: Project) -> None:
    with pytest.raises(TetherInputError, match="no RL checkpoint yet"):
        comparison_pairs(project)
    sft_dir = project.path("models", "sft-seed0")
    rl_dir = project.path("rl", "run-x", "step-000003")
    shutil.copytree(sft_dir, rl_dir)
    rl_id = register(project, "rl_checkpoint", rl_dir, [latest_id(project, "policy")])
    with pytest.raises(TetherInputError, match=f"tether eval run --checkpoint {rl_id}"):
        comparison_pairs(project)
    rl_run = run_eval(project, samples=1, sampling=FAST)  # "latest" is the RL checkpoint
    assert rl_run.checkpoint == rl_id and rl_run.checkpoint_kind == "rl_checkpoint"
    with pytest.raises(TetherInputError, match="tether eval run --checkpoint sft"):
        comparison_pairs(project)
    sft_run = run_eval(project, checkpoint="sft", samples=1, sampling=FAST)
    ((a, b),) = comparison_pairs(project)
    assert (a.artifact_id, b.artifact_id) == (sft_run.artifact_id, rl_run.artifact_id)
    # A is another checkpoint: B is also compared with the SFT baseline (unless B is the baseline)
    later = run_eval(project, samples=1, sampling=FAST, suites=["safety"])
    pairs = comparison_pairs(project, rl_run.artifact_id, later.artifact_id)
    assert [(x.artifact_id, y.artifact_id) for x, y in pairs] == [
        (rl_run.artifact_id, later.artifact_id),
        (sft_run.artifact_id, later.artifact_id),
    ]
    assert len(comparison_pairs(project, rl_run.artifact_id, sft_run.artifact_id)) == 1
