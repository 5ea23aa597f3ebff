"""Graders: independent scorers of suite responses, registered by name. See `base`."""

from tether.evals.graders.base import (
    Grader,
    GraderContext,
    GradeResult,
    GraderUnavailable,
    NamedGrader,
    Sample,
    build_grader,
    grader_names,
    register_grader,
)

__all__ = [
    "GradeResult",
    "Grader",
    "GraderContext",
    "GraderUnavailable",
    "NamedGrader",
    "Sample",
    "build_grader",
    "grader_names",
    "register_grader",
]
