"""Storage: the only package that imports SQLAlchemy.

Everything else opens a `Store` with `open_store(url)` and calls keyword-only repository
functions with a session from `store.session()`.
"""

from tether.store.alerts import AlertRecord, add_alerts, list_alerts
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
from tether.store.runs import RunRecord, create_run, finish_run, get_run, list_runs

__all__ = [
    "AlertRecord",
    "ArtifactRecord",
    "DbSession",
    "NewPrompt",
    "ProjectRecord",
    "PromptRecord",
    "RunRecord",
    "SpecVersionRecord",
    "Store",
    "add_alerts",
    "add_prompts",
    "create_run",
    "ensure_project",
    "find_artifact_by_path",
    "finish_run",
    "get_artifact",
    "get_project",
    "get_run",
    "get_spec_version",
    "latest_artifact",
    "lineage",
    "list_alerts",
    "list_artifacts",
    "list_prompts",
    "list_runs",
    "list_spec_versions",
    "open_store",
    "prompt_counts",
    "record_spec_version",
    "register_artifact",
    "sqlite_url",
]
