"""The grader plugin interface: what a grader reads, what it returns, and the registry by name.

A grader scores responses to suite cases on a 0-1 scale without ever calling the reward model;
that independence is the point of evaluation. A grader is made by a factory registered under a
name (Inspect AI's scorer pattern); a run records each grader's ``{name, args}`` so it can be
rebuilt from the run's results.

    @register_grader("exact")
    def exact(*, context: GraderContext) -> Grader:
        class _Exact:
            name = "exact"
            def grade(self, samples):
                return [GradeResult(score=float(s.response == s.case.reference)) for s in samples]
        return _Exact()

Graders that cannot answer at once (human rubric grading) return ``score=None`` with
``pending=True``; `tether eval collect` fills those in later.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tether.errors import TetherError, TetherInputError

if TYPE_CHECKING:
    from tether.evals.suite import Case, Suite
    from tether.project import Project
    from tether.spec.model import Spec


@dataclass(frozen=True)
class Sample:
    """One sampled response to one case, as a grader sees it."""

    suite: Suite
    case: Case
    response: str
    sample_index: int = 0
    """Which of the case's samples this is (each has its own fixed seed)."""
    checkpoint: str = ""
    """Label of the policy that produced it (an artifact id or a path)."""

    @property
    def key(self) -> str:
        """Stable identity of the sample across runs of the same checkpoint and suite."""
        return f"{self.suite.dimension}/{self.case.id}/{self.sample_index}"


@dataclass(frozen=True)
class GradeResult:
    """A grader's verdict on one sample."""

    score: float | None
    """In [0, 1]; None when pending (human grading) or when the grader failed on this sample."""
    passed: bool | None = None
    """Whether the response met the case's hard expectations, where the grader can tell."""
    pending: bool = False
    """True when the grade will arrive later (human rubric grading)."""
    error: str | None = None
    """Why the grader could not score this sample (e.g. the judge endpoint failed after retries)."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the grader saw: matched patterns, judge verdicts, gold sub-scores, rubric level."""


@dataclass(frozen=True)
class GraderContext:
    """What graders may need beyond the samples; never the reward model."""

    spec: Spec
    project: Project | None = None
    """The project, for graders that use the store (human rubric grading) or the sandbox world."""


class GraderUnavailable(TetherError):
    """A grader cannot grade anything more (e.g. its judge endpoint is unreachable).

    Raised from `Grader.grade` instead of returning errors; the eval run saves the results it has,
    then stops with this message."""


class Grader(Protocol):
    name: str

    def grade(self, samples: Sequence[Sample], /) -> list[GradeResult]:
        """One result per sample, in order. Must not raise for one bad sample: return an error."""
        ...


# ---------------------------------------------------------------------------------------------
GraderFactory = Callable[..., Grader]
F = TypeVar("F", bound=GraderFactory)
_REGISTRY: dict[str, GraderFactory] = {}


def register_grader(name: str) -> Callable[[F], F]:
    """Register a grader factory under ``name``. It takes ``context`` plus its own keyword config."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a grader named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    # Imported for their @register_grader side effect; late, because they import this module.
    import importlib

    for module in ("programmatic", "gold", "human", "llm_judge"):
        try:
            importlib.import_module(f"tether.evals.graders.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"tether.evals.graders.{module}":
                raise


def grader_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


@dataclass(frozen=True)
class NamedGrader:
    """A built grader with the name and arguments that rebuild it."""

    name: str
    args: Mapping[str, Any]
    grader: Grader

    def grade(self, samples: Sequence[Sample]) -> list[GradeResult]:
        return self.grader.grade(samples)

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}


def build_grader(name: str, context: GraderContext, **args: Any) -> NamedGrader:
    """A grader by name; an unknown name or argument is a TetherInputError naming the known ones."""
    _load_builtins()
    if name not in _REGISTRY:
        raise TetherInputError(f"unknown grader {name!r}; known graders: {', '.join(sorted(_REGISTRY))}")
    factory = _REGISTRY[name]
    try:
        inspect.signature(factory).bind(context=context, **args)
    except TypeError as err:
        raise TetherInputError(f"grader {name!r}: bad arguments {sorted(args)}: {err}") from err
    return NamedGrader(name, dict(args), factory(context=context, **args))
