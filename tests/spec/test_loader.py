"""Spec validation: every malformed spec gets a field-level message naming the rule broken."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.spec import SpecError, load_spec, parse_spec, spec_hash, spec_warnings
from tether.spec.loader import format_loc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def valid() -> dict[str, Any]:
    return {
        "name": "t",
        "version": "1",
        "dimensions": [
            {
                "id": "safety",
                "description": "refuse harm",
                "critical": True,
                "rubric": [{"score": 0, "description": "bad"}, {"score": 1, "description": "good"}],
                "gate": {"min_accuracy": 0.8},
            },
            {
                "id": "accuracy",
                "description": "be right",
                "rubric": [{"score": 0, "description": "wrong"}, {"score": 2, "description": "right"}],
            },
            {
                "id": "concision",
                "description": "be brief",
                "rubric": [{"score": 0, "description": "long"}, {"score": 1, "description": "short"}],
            },
        ],
        "trade_offs": {"priority": ["safety", "accuracy", "concision"], "rules": ["safety first"]},
    }


def problems_of(data: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return [str(p) for p in info.value.problems]


def mutate(path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path ('dimensions.2.rubric') in a copy of the valid spec."""
    data = valid()
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


MALFORMED = [
    (
        mutate("dimensions.2.rubric", [{"score": 0, "description": "x"}]),
        "dimensions[2].rubric: must have at least 2 levels",
    ),
    (mutate("dimensions.1.id", "Bad Id"), "dimensions[1].id: 'Bad Id' must be lowercase letters"),
    (
        mutate("dimensions.0.gate", {"min_accuracy": 1.5}),
        "dimensions[0].gate.min_accuracy: must be at most 1.0",
    ),
    (
        mutate("labeling", {"max_expert_disagreement": 0.4}),
        "labeling.max_expert_disagreement: 0.4 is outside 0.25-0.3",
    ),
    (mutate("labeling", {"hard_case_share": 0.1}), "labeling.hard_case_share: 0.1 is outside 0.2-0.3"),
    (mutate("labeling", {"calibration_size": 5}), "labeling.calibration_size: 5 is outside 15-30"),
    (mutate("trade_offs.priority", ["safety", "style"]), "trade_offs.priority[1]: unknown dimension 'style'"),
    (mutate("rl", {"kl_budget_nats": -1}), "rl.kl_budget_nats: must be greater than 0"),
    (mutate("rl", {"steps": 100}), "rl.steps: unknown key"),
    (mutate("labeling", {"raters_per_overlap": 1}), "labeling.raters_per_overlap: must be at least 2"),
    (mutate("dimensions", []), "dimensions: must list at least 1 dimension"),
    (mutate("dimensions.1.id", "safety"), "dimensions: duplicate dimension ids: safety"),
    (mutate("dimensions.0.critical", "maybe"), "dimensions[0].critical: must be true or false"),
    (
        mutate("dimensions.1.rubric", [{"score": 1, "description": "a"}, {"score": 1, "description": "b"}]),
        "dimensions[1].rubric: level scores must be distinct",
    ),
    (
        mutate("unacceptable", [{"id": "x", "description": "y", "dimensions": ["tone"]}]),
        "unacceptable[0].dimensions: unknown dimension 'tone'",
    ),
    (
        mutate("overrides", ["rl.kl_budget_nats"]),
        "overrides[0]: 'rl.kl_budget_nats' is not an overridable field",
    ),
    ({k: v for k, v in valid().items() if k != "name"}, "name: is required"),
    (mutate("labeling", {"min_rationale_chars": "long"}), "labeling.min_rationale_chars: must be an integer"),
]


@pytest.mark.parametrize(("data", "expected"), MALFORMED, ids=[m[1].split(":")[0] for m in MALFORMED])
def test_malformed_spec_gets_field_level_message(data: dict[str, Any], expected: str) -> None:
    problems = problems_of(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = mutate("rl", {"kl_budget_nats": 0})
    data["dimensions"][2]["rubric"] = []
    data["surprise"] = 1
    problems = problems_of(data)
    paths = {p.split(":")[0] for p in problems}
    assert {"rl.kl_budget_nats", "dimensions[2].rubric", "surprise"} <= paths


def test_override_allows_out_of_range_value_deliberately() -> None:
    data = mutate("labeling", {"hard_case_share": 0.4})
    data["overrides"] = ["labeling.hard_case_share"]
    assert parse_spec(data).labeling.hard_case_share == 0.4


def test_top_level_must_be_a_mapping() -> None:
    assert problems_of(["a", "b"]) == ["the spec must be a YAML mapping at the top level"]


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("name: x\ndimensions: [\n  - id: a\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_spec(bad)


def test_format_loc() -> None:
    assert format_loc(("dimensions", 2, "rubric")) == "dimensions[2].rubric"
    assert format_loc(("name",)) == "name"
    assert format_loc(()) == ""


def test_rubric_levels_are_sorted_by_score() -> None:
    data = mutate(
        "dimensions.0.rubric", [{"score": 2, "description": "hi"}, {"score": 0, "description": "lo"}]
    )
    assert [level.score for level in parse_spec(data).dimensions[0].rubric] == [0, 2]


def test_hash_ignores_key_order_whitespace_and_explicit_defaults(tmp_path: Path) -> None:
    data = valid()
    reordered = dict(reversed(list(copy.deepcopy(data).items())))
    reordered["dimensions"][1] = dict(reversed(list(reordered["dimensions"][1].items())))
    with_default = copy.deepcopy(data)
    with_default["rl"] = {"kl_budget_nats": 5.0}  # the default, spelled out
    compact = tmp_path / "a.yaml"
    spaced = tmp_path / "b.yaml"
    compact.write_text(yaml.safe_dump(data, default_flow_style=True), encoding="utf-8")
    spaced.write_text(
        "# comment\n\n" + yaml.safe_dump(reordered, indent=4, sort_keys=False), encoding="utf-8"
    )
    digests = {
        spec_hash(parse_spec(data)),
        spec_hash(parse_spec(reordered)),
        spec_hash(parse_spec(with_default)),
        spec_hash(load_spec(compact)),
        spec_hash(load_spec(spaced)),
    }
    assert len(digests) == 1


@pytest.mark.parametrize(
    "path_value",
    [("dimensions.0.gate", {"min_accuracy": 0.81}), ("name", "t2"), ("rl", {"kl_budget_nats": 4.0})],
)
def test_hash_changes_with_content(path_value: tuple[str, Any]) -> None:
    assert spec_hash(parse_spec(mutate(*path_value))) != spec_hash(parse_spec(valid()))


def test_hash_is_a_sha256_hex_digest() -> None:
    digest = spec_hash(parse_spec(valid()))
    assert len(digest) == 64
    int(digest, 16)


@pytest.mark.parametrize("example", ["sandbox", "assistant"])
def test_shipped_examples_validate(example: str) -> None:
    spec = load_spec(EXAMPLES / example / "spec.yaml")
    assert spec.dimensions
    assert any(d.critical for d in spec.dimensions)


def test_assistant_example_has_the_five_dimensions() -> None:
    spec = load_spec(EXAMPLES / "assistant" / "spec.yaml")
    assert set(spec.dimension_ids) == {"safety", "accuracy", "honesty", "helpfulness", "concision"}


def test_warnings_flag_kl_outside_recommended_range() -> None:
    spec = parse_spec(mutate("rl", {"kl_budget_nats": 9.0}))
    assert any(w.startswith("rl.kl_budget_nats") for w in spec_warnings(spec))
