"""Per-stratum sums: pooling several steps gives the mean and spread of all their responses together."""

from __future__ import annotations

import doctest
import statistics

import pytest

import tether.monitors.strata
from tether.monitors import Generation, MonitorSuite, build_monitors
from tether.monitors.strata import add_sums, pooled, strata_sums


def test_docstring_examples() -> None:
    result = doctest.testmod(tether.monitors.strata)
    assert result.attempted > 0 and result.failed == 0


def test_pooling_steps_equals_pooling_their_responses() -> None:
    step_a = [Generation("p", "r", "hard", 1.0, 0.5), Generation("p", "r", "routine", 4.0, 1.0)]
    step_b = [Generation("p", "r", "adversarial", 3.0, None), Generation("p", "r", "hard", 2.0, 0.0)]
    hard = pooled([strata_sums(step_a), strata_sums(step_b)], ("hard", "adversarial"), "rm")
    assert hard is not None and hard.n == 3
    assert hard.mean == pytest.approx(2.0) and hard.std == pytest.approx(statistics.pstdev([1.0, 3.0, 2.0]))
    gold = pooled([strata_sums(step_a), strata_sums(step_b)], ("hard", "adversarial"), "independent")
    assert gold is not None and (gold.n, gold.mean) == (2, 0.25)  # the response without gold is skipped
    other = pooled(
        [add_sums(strata_sums(step_a), strata_sums(step_b))], ("hard", "adversarial"), "rm", inside=False
    )
    assert other is not None and (other.n, other.mean, other.std) == (1, 4.0, 0.0)
    assert pooled([{}], ("hard",), "rm") is None


def test_the_suite_keeps_the_first_ten_steps_as_the_reference_and_resumes_with_it() -> None:
    suite = MonitorSuite(build_monitors(["strata_uniform_high"]), baseline={"policy/entropy": 2.0})
    for step in range(12):
        suite.observe(step, {}, [Generation("p", "r", "hard", float(step))])
    assert suite.baseline is not None and suite.baseline["strata/hard/rm/n"] == 10  # steps 0-9 only
    assert suite.baseline["strata/hard/rm/sum"] == sum(range(10)) and suite.baseline["policy/entropy"] == 2.0
    assert suite.history[-1].metrics["strata/hard/rm/sum"] == 11.0  # each step keeps its own sums
    resumed = MonitorSuite(build_monitors(["strata_uniform_high"]))
    resumed.load_state_dict(suite.state_dict())
    assert resumed.baseline == suite.baseline
