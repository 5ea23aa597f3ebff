"""The loop's typed step results: what a step stores is what every reader gets back.

A fully populated result of each step survives `to_dict` -> JSON -> `from_dict` unchanged, so a
field renamed in one place and not the other fails here instead of emptying a report section.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tether.feedback.loop.results import (
    CollectResult,
    Estimate,
    GateAttempt,
    GateResult,
    PlanResult,
    ProbeFigures,
    RaterFigures,
    ReliabilityFigures,
    RemediationFigures,
    RewardResult,
)
from tether.feedback.loop.results_policy import (
    AlertFigures,
    DeltaFigures,
    DiagnoseResult,
    EvalsResult,
    RedteamFigures,
    RLResult,
)
from tether.reward.gate import GateCheck

EST = Estimate(0.8, 0.7, 0.9, 120)
CHECK = GateCheck(
    name="safety accuracy",
    value=0.8,
    low=0.7,
    high=0.9,
    bar=0.75,
    op=">=",
    status="marginal",
    critical=True,
    decided="fail",
    message="safety accuracy 0.800 [0.700, 0.900] vs min 0.75: marginal",
)
PROBE = ProbeFigures("confident", 0.51, 0.44, 0.58, 400)
ATTEMPT = GateAttempt(
    attempt=1,
    retry=0,
    reward_model="reward_model-1",
    rm_eval="rm_eval-1",
    passed=False,
    failures=("safety accuracy ...",),
    warnings=("confident probe ...",),
    overall=EST,
    by_dimension={"safety": EST},
    probes=(PROBE,),
    action="remediate",
    remediation=RemediationFigures(7, "loop-1-remediation-1", 400, {"probe:confident": 200}, ("x",)),
)

RESULTS: list[Any] = [
    PlanResult(
        "loop-1", 3, 6400, 1280, 0.25, {"safety": 0.25}, {"hard": 1600}, {"weights": {"a": 1.0}}, 0.3, "p"
    ),
    CollectResult(
        batch_id=3,
        batch="loop-1",
        tasks=6400,
        by_dimension={"safety": 10},
        by_stratum={"hard": 4},
        hard_share=0.25,
        by_origin={"plan": 6000, "probe:confident": 200},
        agreement_pool=0.7,
        agreement_alpha=0.5,
        raters=(RaterFigures("ana", "active", 0.9, 0.8, 12, False, None, ("safety",)),),
        judgments=12,
        pairs=10,
        train_pairs=9,
        heldout_pairs=1,
        export="export-1",
        grades=4,
        excluded_now=("mallory",),
    ),
    RewardResult("reward_model-1", 4600, 12.5, ("fewer than 5000 pairs",), {"ana": 4600, "import:hh": 300}),
    GateResult(
        passed=False,
        failures=("f",),
        warnings=("w",),
        checks=(CHECK,),
        overall=EST,
        by_dimension={"safety": EST},
        by_stratum={"hard": EST},
        gold_by_dimension={"safety": EST},
        ece=0.03,
        brier=0.17,
        reliability=(ReliabilityFigures(0.5, 0.6, 40, 0.55, 0.5),),
        probes=(PROBE,),
        report=".tether/rm_eval/loop-1/attempt-1/rm_eval.json",
        rm_eval="rm_eval-1",
        attempts=(ATTEMPT,),
    ),
    RLResult(
        run_id="r",
        artifact="rl_checkpoint-1",
        checkpoint="c",
        metrics="m.jsonl",
        status="completed",
        reason_stopped=None,
        kl_budget=5.0,
        steps=100,
        final={"objective/kl": 1.5},
        max_kl=2.0,
        seconds=60.0,
        alerts=(AlertFigures("kl_spike", "warning", 12, "spike", "KL jumped"),),
    ),
    EvalsResult(
        artifact="eval_run-1",
        sft_artifact="eval_run-0",
        scores={"safety": EST},
        sft_scores={"safety": EST},
        vs_sft={"safety": DeltaFigures(0.1, 0.05, 0.15, False, True)},
        vs_previous={"safety": DeltaFigures(-0.1, -0.2, 0.0, True, True)},
        gold_utility=0.7,
        sft_gold_utility=0.4,
    ),
    DiagnoseResult(
        "iteration 1 ...",
        {"weights": {"safety": 1.0}},
        RedteamFigures("rs", 9, 1.0, 0.2, 0.4, 5, {"safety": 5}),
    ),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_a_full_result_survives_the_store(result: Any) -> None:
    stored = json.loads(json.dumps(result.to_dict()))
    assert type(result).from_dict(stored) == result


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_an_empty_or_malformed_row_reads_as_no_values(result: Any) -> None:
    cls = type(result)
    assert cls.from_dict(None) == cls.from_dict({}) == cls.from_dict("garbage")


def test_the_stored_shapes_are_the_documented_ones() -> None:
    gate = GateResult(overall=EST, attempts=(ATTEMPT,)).to_dict()
    assert gate["overall"] == {"accuracy": 0.8, "low": 0.7, "high": 0.9, "n": 120}
    assert gate["attempts"][0]["action"] == "remediate"
    assert gate["attempts"][0]["remediation"]["by_target"] == {"probe:confident": 200}
    collect = CollectResult(agreement_pool=0.7, agreement_alpha=0.5).to_dict()
    assert collect["agreement"] == {"pool": 0.7, "alpha": 0.5}
    evals = EvalsResult(scores={"safety": EST}).to_dict()
    assert evals["scores"]["safety"] == {"score": 0.8, "low": 0.7, "high": 0.9, "n": 120}
