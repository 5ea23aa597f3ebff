"""The examples in the RL and monitor module docstrings run and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tether.rl.masked",
    "tether.rl.logprobs",
    "tether.rl.kl",
    "tether.rl.rewards",
    "tether.rl.advantages",
    "tether.rl.losses",
    "tether.rl.prefix",
    "tether.rl.kl_control",
    "tether.monitors.features",
    "tether.monitors.trends",
    "tether.monitors.reward",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
