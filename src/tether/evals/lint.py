"""`tether eval lint`: check every suite against the spec before anything is sampled.

Errors (exit 2): a file that does not parse, an unknown dimension or rubric, an unknown grader,
an invalid regular expression, a case id used twice within one dimension, a gold-graded case
without its sandbox truth. Warnings (exit 0): a dimension with fewer cases than the spec's
``evals.min_cases_per_dimension``, a spec dimension without any suite.

    >>> from tether.spec.model import Dimension, RubricLevel, Spec
    >>> levels = [RubricLevel(score=0, description="bad"), RubricLevel(score=1, description="good")]
    >>> dim = Dimension(id="safety", description="d", rubric=levels)
    >>> spec = Spec(name="s", version="1", dimensions=[dim])
    >>> [i.message for i in uncovered_dimensions(spec, [])]
    ['dimension safety has no suite']
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tether.errors import TetherInputError
from tether.evals.graders.base import grader_names
from tether.evals.graders.gold import NAME as GOLD
from tether.evals.graders.gold import SANDBOX_META_KEY
from tether.evals.plan import parse_grader_ref
from tether.evals.suite import LoadedSuite, load_suite, suite_files
from tether.spec.model import Spec

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class LintIssue:
    severity: Severity
    where: str
    """The file, or file:case id."""
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class LintReport:
    suites: list[LoadedSuite]
    """The suites that parsed."""
    issues: list[LintIssue]

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "warning"]


def _names(spec: Spec) -> str:
    return ", ".join(spec.dimension_ids)


def check_dimensions(spec: Spec, item: LoadedSuite) -> list[LintIssue]:
    suite, where = item.suite, str(item.path)
    out = []
    if suite.dimension not in spec.dimension_ids:
        out.append(
            LintIssue("error", where, f"unknown dimension '{suite.dimension}'; the spec has {_names(spec)}")
        )
    if suite.rubric and suite.rubric not in spec.dimension_ids:
        out.append(LintIssue("error", where, f"unknown rubric '{suite.rubric}'; the spec has {_names(spec)}"))
    return out


def check_graders(item: LoadedSuite, known: Sequence[str]) -> list[LintIssue]:
    out = []
    for text in item.suite.graders:
        try:
            name = parse_grader_ref(text).name
        except TetherInputError as err:
            out.append(LintIssue("error", str(item.path), str(err)))
            continue
        if name not in known:
            out.append(
                LintIssue(
                    "error", str(item.path), f"unknown grader '{name}'; known graders: {', '.join(known)}"
                )
            )
    return out


def _grader_name(text: str) -> str | None:
    try:
        return parse_grader_ref(text).name
    except TetherInputError:
        return None


def check_cases(item: LoadedSuite) -> list[LintIssue]:
    """Invalid regular expressions, and gold-graded cases without sandbox truth."""
    gold = any(_grader_name(g) == GOLD for g in item.suite.graders)
    out = []
    for case in item.suite.cases:
        where = f"{item.path}:{case.id}"
        for field_name, patterns in (("required", case.required), ("forbidden", case.forbidden)):
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as err:
                    out.append(
                        LintIssue(
                            "error", where, f"{field_name}: invalid regular expression {pattern!r}: {err}"
                        )
                    )
        if gold and SANDBOX_META_KEY not in case.meta and "truth" not in case.meta:
            out.append(
                LintIssue(
                    "error", where, f"graded by gold but has no meta.{SANDBOX_META_KEY} (sandbox truth)"
                )
            )
    return out


def check_duplicates(suites: Sequence[LoadedSuite]) -> list[LintIssue]:
    """A case id may appear once per dimension: comparisons pair cases by (dimension, id)."""
    seen: dict[tuple[str, str], Path] = {}
    out = []
    for item in suites:
        for case in item.suite.cases:
            key = (item.suite.dimension, case.id)
            if key in seen:
                out.append(LintIssue("error", f"{item.path}:{case.id}", f"case id also used in {seen[key]} "
                                     f"for dimension {key[0]}; cases pair by (dimension, id)"))  # fmt: skip
            seen.setdefault(key, item.path)
    return out


def case_count_warnings(spec: Spec, suites: Sequence[LoadedSuite]) -> list[LintIssue]:
    counts: Counter[str] = Counter()
    files: dict[str, list[str]] = defaultdict(list)
    for item in suites:
        counts[item.suite.dimension] += len(item.suite.cases)
        files[item.suite.dimension].append(item.path.name)
    floor = spec.evals.min_cases_per_dimension
    return [
        LintIssue(
            "warning",
            ", ".join(files[d]),
            f"dimension {d} has {n} cases, fewer than "
            f"evals.min_cases_per_dimension = {floor}; comparisons will have wide intervals",
        )
        for d, n in sorted(counts.items())
        if n < floor and d in spec.dimension_ids
    ]


def uncovered_dimensions(spec: Spec, suites: Sequence[LoadedSuite]) -> list[LintIssue]:
    covered = {item.suite.dimension for item in suites}
    return [
        LintIssue("warning", "spec", f"dimension {d} has no suite")
        for d in spec.dimension_ids
        if d not in covered
    ]


def lint_suites(spec: Spec, directory: Path) -> LintReport:
    """Every check on every suite file of ``directory``; never raises for a bad suite."""
    try:
        files = suite_files(directory)
    except TetherInputError as err:
        return LintReport([], [LintIssue("error", str(directory), str(err))])
    issues: list[LintIssue] = []
    suites: list[LoadedSuite] = []
    for path in files:
        try:
            suites.append(load_suite(path))
        except TetherInputError as err:
            issues.append(LintIssue("error", str(path), str(err).replace(f"{path}: ", "")))
    known = grader_names()
    for item in suites:
        issues += check_dimensions(spec, item) + check_graders(item, known) + check_cases(item)
    issues += (
        check_duplicates(suites) + case_count_warnings(spec, suites) + uncovered_dimensions(spec, suites)
    )
    if not files:
        issues.append(LintIssue("error", str(directory), "holds no suite files (.yaml, .yml, .jsonl)"))
    return LintReport(suites, issues)
