"""Stage configs validate from their types and still say what is wrong in Tether's words."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tether.errors import TetherInputError
from tether.project import read_config
from tether.reward.config import RewardTrainConfig
from tether.rl.config import RLConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algo": "trpo"}, "algo must be one of ppo, rloo, got 'trpo'"),
        ({"kl_estimator": "k4"}, "kl_estimator must be one of k1, k2, k3, got 'k4'"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"steps": 0}, "steps must be at least 1, got 0"),  # an optional field keeps its bound
        ({"gamma": 1.5}, "gamma must be in [0, 1], got 1.5"),
        ({"lr": 0.0}, "lr must be positive, got 0.0"),
        ({"clip_eps": -0.1}, "clip_eps must be non-negative, got -0.1"),
        ({"baseline_prompts": 1}, "baseline_prompts must be at least 2, got 1"),
        ({"batch_size": "many"}, "batch_size: input should be a valid integer"),
        ({"algo": "rloo", "samples_per_prompt": 1}, "rloo needs samples_per_prompt >= 2"),
        ({"kl": "adaptive", "init_kl_coef": 0.0}, "init_kl_coef must be > 0 with the adaptive controller"),
        ({"kl_coef": 0.1}, "kl_coef is not a setting"),
    ],
)
def test_rl_config_names_the_field_what_it_allows_and_what_it_got(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        RLConfig(**kwargs)
    assert message in str(err.value)
    assert "pydantic" not in str(err.value) and "\n" not in str(err.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError, match=r"^epochs must be at least 1, got 0; lr must be positive, got -1$"):
        RewardTrainConfig(epochs=0, lr=-1)
    with pytest.raises(ValueError, match=r"warmup_ratio must be in \[0, 1\), got 1"):
        RewardTrainConfig(warmup_ratio=1)


def test_configs_stay_frozen_dataclasses_that_round_trip(caplog: pytest.LogCaptureFixture) -> None:
    cfg = RLConfig(batch_size=8, samples_per_prompt=4, minibatches=4)
    assert (cfg.episodes_per_step, cfg.minibatch_size) == (32, 8)
    assert replace(cfg, minibatches=2).minibatch_size == 16
    with pytest.raises(AttributeError):
        cfg.lr = 1.0  # type: ignore[misc]
    with caplog.at_level(logging.WARNING):
        back = RLConfig.from_dict({**asdict(cfg), "retired_setting": 3})
    assert back == cfg and "retired_setting" in caplog.text
    assert RLConfig.from_dict({"lora_target_modules": ["q_proj", "v_proj"]}).lora_target_modules == (
        "q_proj",
        "v_proj",
    )
    rm = RewardTrainConfig(epochs=2)
    assert RewardTrainConfig.from_dict(rm.as_dict()) == rm


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project]\nname = 3\n", "[project] name must be a string"),
        ('[project]\nname = "p"\nbogus = 1\n', "[project] has unknown key 'bogus'"),
        ('[store]\nurl = "sqlite://"\n', "needs a [project] table with a string 'name'"),
        ('[project]\nname = "p"\n[store]\nurl = 5\n', "[store] url must be a string"),
        ("project = 3\n", "[project] must be a table"),
    ],
)
def test_tether_toml_problems_name_the_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tether.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TetherInputError) as err:
        read_config(path)
    assert str(err.value) == f"{path}: {message}"


def test_tether_toml_keeps_its_defaults_and_other_tools_tables(tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text('[project]\nname = "p"\n[tool.other]\nx = 1\n', encoding="utf-8")
    config = read_config(path)
    assert (config.name, config.spec, config.db_url, config.template) == ("p", "spec.yaml", None, "blank")
