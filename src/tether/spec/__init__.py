"""The behavior spec: dimensions, rubrics, trade-offs and the policies every stage enforces."""

from tether.spec.loader import (
    SpecError,
    SpecProblem,
    load_spec,
    parse_spec,
    short_hash,
    spec_hash,
    spec_warnings,
)
from tether.spec.model import Dimension, Spec

__all__ = [
    "Dimension",
    "Spec",
    "SpecError",
    "SpecProblem",
    "load_spec",
    "parse_spec",
    "short_hash",
    "spec_hash",
    "spec_warnings",
]
