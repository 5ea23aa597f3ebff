"""What an eval run covers: the suites, their cases (all, or the quick subset) and their graders.

A grader is named as in a suite's ``graders:`` list or on the command line, optionally with
arguments after a colon; values are read as YAML scalars:

    programmatic
    gold:field=utility
    llm_judge:base_url=http://127.0.0.1:8000/v1,model=judge-7b,max_retries=3
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tether.errors import TetherInputError
from tether.evals.graders.base import GraderContext, NamedGrader, build_grader
from tether.evals.suite import Case, LoadedSuite, load_suites

if TYPE_CHECKING:
    from tether.project import Project


@dataclass(frozen=True)
class GraderRef:
    """A grader's name and its arguments, as written in a suite or on the command line."""

    name: str
    args: dict[str, Any]

    @property
    def key(self) -> str:
        return json.dumps({"name": self.name, "args": self.args}, sort_keys=True)


def _scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def parse_grader_ref(text: str) -> GraderRef:
    """``name`` or ``name:key=value,key=value``.

    >>> parse_grader_ref("llm_judge:model=j,max_retries=3")
    GraderRef(name='llm_judge', args={'model': 'j', 'max_retries': 3})
    """
    name, _, rest = text.strip().partition(":")
    if not name:
        raise TetherInputError(f"grader '{text}': empty grader name")
    args: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TetherInputError(f"grader '{text}': '{item}' is not key=value")
        args[key.strip()] = _scalar(value.strip())
    return GraderRef(name, args)


@dataclass(frozen=True)
class SuitePlan:
    """One suite of a run: the cases it samples and the graders that score them."""

    loaded: LoadedSuite
    cases: list[Case]
    graders: list[NamedGrader]

    @property
    def name(self) -> str:
        return self.loaded.name


def suites_dir(project: Project) -> Path:
    return project.root / project.spec.evals.suites_dir


def select_cases(cases: Sequence[Case], *, quick: bool, quick_cases: int) -> list[Case]:
    """All cases, or the first ``quick_cases`` of them (file order, so the quick suite is stable)."""
    return list(cases[:quick_cases] if quick else cases)


def plan_suites(
    project: Project,
    *,
    suites: Sequence[str] = (),
    graders: Sequence[str] = (),
    quick: bool = False,
    context: GraderContext | None = None,
) -> list[SuitePlan]:
    """Load and check the suites, pick their cases and build each distinct grader once."""
    spec = project.spec
    loaded = load_suites(suites_dir(project), suites)
    for item in loaded:
        for field, name in (("dimension", item.suite.dimension), ("rubric", item.suite.rubric_dimension)):
            if name not in spec.dimension_ids:
                raise TetherInputError(
                    f"{item.path}: unknown {field} '{name}'; the spec has {', '.join(spec.dimension_ids)} "
                    "(run `tether eval lint`)"
                )
    context = context or GraderContext(spec=spec, project=project)
    built: dict[str, NamedGrader] = {}
    plans = []
    for item in loaded:
        refs = [parse_grader_ref(g) for g in (graders or item.suite.graders)]
        for ref in refs:
            if ref.key not in built:
                built[ref.key] = build_grader(ref.name, context, **ref.args)
        cases = select_cases(item.suite.cases, quick=quick, quick_cases=spec.evals.quick_cases_per_dimension)
        plans.append(SuitePlan(item, cases, [built[r.key] for r in refs]))
    return plans
