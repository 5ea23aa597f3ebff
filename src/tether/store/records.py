"""Plain records returned by repository functions, so callers never hold ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class SpecVersionRecord:
    project_id: int
    spec_hash: str
    name: str
    version: str
    content: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ArtifactRecord:
    id: str
    project_id: int
    kind: str
    path: str
    content_hash: str
    spec_hash: str
    meta: dict[str, Any]
    created_at: datetime
    parents: tuple[str, ...] = field(default=())
