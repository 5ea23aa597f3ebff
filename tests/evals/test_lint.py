"""`lint_suites`: errors for unknown dimensions, rubrics, graders and bad regexes; warnings for thin ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tether.evals.lint import lint_suites
from tether.spec.model import Spec


def write_suite(folder: Path, name: str, dimension: str, n: int, **extra: object) -> Path:
    cases = [{"id": f"{name}-{i}", "prompt": f"question {i} ?", "required": ["answer"]} for i in range(n)]
    data = {"dimension": dimension, "cases": cases, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_clean_suites_have_no_issues(tmp_path: Path, sandbox_spec: Spec) -> None:
    for dim in sandbox_spec.dimension_ids:
        write_suite(tmp_path, dim, dim, 50)
    report = lint_suites(sandbox_spec, tmp_path)
    assert report.issues == [] and len(report.suites) == 4


def test_unknown_dimension_and_rubric_are_errors_naming_file_and_known_ids(
    tmp_path: Path, sandbox_spec: Spec
) -> None:
    write_suite(tmp_path, "kindness", "kindness", 50)
    write_suite(tmp_path, "safety", "safety", 50, rubric="tone")
    errors = [str(e) for e in lint_suites(sandbox_spec, tmp_path).errors]
    assert any(
        "kindness.yaml" in e and "unknown dimension 'kindness'" in e and "accuracy, safety" in e
        for e in errors
    )
    assert any("safety.yaml" in e and "unknown rubric 'tone'" in e for e in errors)


def test_unknown_grader_lists_the_known_graders(tmp_path: Path, sandbox_spec: Spec) -> None:
    write_suite(tmp_path, "safety", "safety", 50, graders=["programmatic", "vibes"])
    (error,) = lint_suites(sandbox_spec, tmp_path).errors
    assert "unknown grader 'vibes'" in error.message
    assert "gold, human, llm_judge, programmatic" in error.message


def test_invalid_regex_names_file_and_case(tmp_path: Path, sandbox_spec: Spec) -> None:
    path = write_suite(tmp_path, "safety", "safety", 50)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["cases"][3]["forbidden"] = ["[unclosed"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    (error,) = lint_suites(sandbox_spec, tmp_path).errors
    assert error.where == f"{path}:safety-3" and "forbidden: invalid regular expression" in error.message


def test_gold_without_truth_and_duplicate_ids_are_errors(tmp_path: Path, sandbox_spec: Spec) -> None:
    write_suite(tmp_path, "safety", "safety", 50, graders=["gold"])
    path = write_suite(tmp_path, "safety2", "safety", 1)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["cases"][0]["id"] = "safety-0"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    messages = [i.message for i in lint_suites(sandbox_spec, tmp_path).errors]
    assert sum("graded by gold" in m for m in messages) == 50
    assert any("also used in" in m for m in messages)


def test_thin_and_missing_dimensions_are_warnings(tmp_path: Path, sandbox_spec: Spec) -> None:
    write_suite(tmp_path, "safety", "safety", 7)
    report = lint_suites(sandbox_spec, tmp_path)
    assert report.errors == []
    warnings = [i.message for i in report.warnings]
    assert "dimension safety has 7 cases, fewer than evals.min_cases_per_dimension = 50" in warnings[0]
    assert sorted(w for w in warnings if "has no suite" in w) == [
        f"dimension {d} has no suite" for d in ("accuracy", "concision", "honesty")
    ]


@pytest.mark.parametrize("content", ["dimension: [unclosed", "- just a list"])
def test_unparseable_file_is_an_error_and_others_are_still_checked(
    tmp_path: Path, sandbox_spec: Spec, content: str
) -> None:
    (tmp_path / "broken.yaml").write_text(content, encoding="utf-8")
    write_suite(tmp_path, "safety", "safety", 50, graders=["nope"])
    errors = lint_suites(sandbox_spec, tmp_path).errors
    assert {e.where.rsplit("/", 1)[-1] for e in errors} == {"broken.yaml", "safety.yaml"}


def test_missing_folder_is_an_error(tmp_path: Path, sandbox_spec: Spec) -> None:
    (error,) = lint_suites(sandbox_spec, tmp_path / "nowhere").errors
    assert "no suites folder" in error.message
