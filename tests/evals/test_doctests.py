"""The examples in the evals module docstrings run and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tether.evals.stats",
    "tether.evals.results",
    "tether.evals.compare",
    "tether.evals.plan",
    "tether.evals.lint",
    "tether.evals.init_suites",
    "tether.evals.graders.programmatic",
    "tether.evals.graders.gold",
    "tether.evals.graders.human",
    "tether.evals.graders.llm_judge",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
