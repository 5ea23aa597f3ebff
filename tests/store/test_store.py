"""Store round trips and migrations, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from tether.errors import TetherInputError
from tether.store import (
    ensure_project,
    find_artifact_by_path,
    get_artifact,
    latest_artifact,
    lineage,
    list_artifacts,
    list_spec_versions,
    open_store,
    record_spec_version,
    register_artifact,
)
from tether.store.engine import make_engine
from tether.store.migrate import current_revision, head_revision, upgrade


def test_migrations_create_every_table_on_an_empty_database(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "spec_versions", "artifacts", "artifact_parents", "alembic_version"} <= tables
    upgrade(engine)  # a second open is a no-op, not an error
    engine.dispose()


def test_project_and_spec_version_round_trip(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        project = ensure_project(s, name="demo")
        again = ensure_project(s, name="demo")
        first = record_spec_version(
            s, project_id=project.id, spec_hash="a" * 64, name="spec", version="1", content={"k": [1, 2]}
        )
        record_spec_version(
            s, project_id=project.id, spec_hash="a" * 64, name="spec", version="1", content={}
        )
        record_spec_version(
            s, project_id=project.id, spec_hash="b" * 64, name="spec", version="2", content={}
        )
    assert again.id == project.id
    with store.session() as s:
        versions = list_spec_versions(s, project_id=project.id)
    assert [v.spec_hash[0] for v in versions] == ["a", "b"]
    assert versions[0].content == {"k": [1, 2]} == first.content
    assert versions[0].created_at.tzinfo is not None
    store.close()


def test_artifact_registry_lineage_and_latest(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        pid = ensure_project(s, name="p").id
        sft = register_artifact(s, project_id=pid, kind="sft", path="m/sft", content_hash="h1", spec_hash="s")
        export = register_artifact(
            s, project_id=pid, kind="export", path="e/1", content_hash="h2", spec_hash="s", meta={"pairs": 10}
        )
        rm = register_artifact(
            s,
            project_id=pid,
            kind="rm",
            path="rm/1",
            content_hash="h3",
            spec_hash="s",
            parents=[sft.id, export.id],
        )
        export2 = register_artifact(
            s, project_id=pid, kind="export", path="e/2", content_hash="h4", spec_hash="s"
        )
    with store.session() as s:
        assert get_artifact(s, artifact_id=rm.id) == rm
        assert set(rm.parents) == {sft.id, export.id}
        assert {a.id for a in lineage(s, artifact_id=rm.id)} == {rm.id, sft.id, export.id}
        assert latest_artifact(s, project_id=pid, kind="export") == export2
        assert latest_artifact(s, project_id=pid, kind="export", where_meta={"pairs": 10}) == export
        assert latest_artifact(s, project_id=pid, kind="policy") is None
        assert find_artifact_by_path(s, project_id=pid, path="rm/1") == rm
        assert [a.id for a in list_artifacts(s, project_id=pid, kind="export")] == [export.id, export2.id]
        assert get_artifact(s, artifact_id="nope") is None
    store.close()


def test_registering_the_same_artifact_twice_is_idempotent(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        pid = ensure_project(s, name="p").id
        a = register_artifact(s, project_id=pid, kind="sft", path="m", content_hash="h", spec_hash="s")
        b = register_artifact(s, project_id=pid, kind="sft", path="m", content_hash="h", spec_hash="s")
    assert a.id == b.id
    with store.session() as s:
        assert len(list_artifacts(s, project_id=pid)) == 1
    store.close()


def test_unknown_parent_is_rejected_and_nothing_is_written(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        pid = ensure_project(s, name="p").id
    with pytest.raises(TetherInputError, match="parents not found"), store.session() as s:
        register_artifact(
            s, project_id=pid, kind="rm", path="r", content_hash="h", spec_hash="s", parents=["ghost"]
        )
    with store.session() as s:
        assert list_artifacts(s, project_id=pid) == []
    store.close()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_bad_urls_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TetherInputError, match="not a valid SQLAlchemy URL"):
        open_store("not a url")
    with pytest.raises(TetherInputError, match="only sqlite and postgresql"):
        open_store("mysql://x@localhost/db")


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tether.store.models import Base

    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
