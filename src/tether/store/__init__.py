"""Storage: the only package that imports SQLAlchemy.

Everything else opens a `Store` with `open_store(url)` and calls keyword-only repository
functions with a session from `store.session()`.
"""

from tether.store.artifacts import (
    find_artifact_by_path,
    get_artifact,
    latest_artifact,
    lineage,
    list_artifacts,
    register_artifact,
)
from tether.store.engine import DbSession, Store, open_store, sqlite_url
from tether.store.projects import (
    ensure_project,
    get_project,
    get_spec_version,
    list_spec_versions,
    record_spec_version,
)
from tether.store.prompts import NewPrompt, PromptRecord, add_prompts, list_prompts, prompt_counts
from tether.store.records import ArtifactRecord, ProjectRecord, SpecVersionRecord

__all__ = [
    "ArtifactRecord",
    "DbSession",
    "NewPrompt",
    "ProjectRecord",
    "PromptRecord",
    "SpecVersionRecord",
    "Store",
    "add_prompts",
    "ensure_project",
    "find_artifact_by_path",
    "get_artifact",
    "get_project",
    "get_spec_version",
    "latest_artifact",
    "lineage",
    "list_artifacts",
    "list_prompts",
    "list_spec_versions",
    "open_store",
    "prompt_counts",
    "record_spec_version",
    "register_artifact",
    "sqlite_url",
]
