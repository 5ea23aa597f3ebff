"""Rubric grading tasks and grades, red-team findings, API keys, production feedback, loop iterations.

Revision ID: 0006_evals_feedback_loop
Revises: 0005_runs_alerts
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_evals_feedback_loop"
down_revision = "0005_runs_alerts"
branch_labels = None
depends_on = None


def _project() -> sa.Column[Any]:
    return sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )


def _created(name: str = "created_at") -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "grading_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("source_key", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("dimension", sa.String(50), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("raters_needed", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        _created(),
        sa.UniqueConstraint("project_id", "source_key", name="uq_grading_tasks_source"),
    )
    _indexes("grading_tasks", "project_id", "origin", "dimension", "status")
    op.create_table(
        "grades",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "task_id", sa.Integer, sa.ForeignKey("grading_tasks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("max_score", sa.Integer, nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        _created(),
        sa.UniqueConstraint("rater_id", "idempotency_key", name="uq_grades_rater_key"),
        sa.UniqueConstraint("task_id", "rater_id", name="uq_grades_task_rater"),
    )
    _indexes("grades", "task_id", "rater_id")
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("dimension", sa.String(50), nullable=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("baseline_response", sa.Text, nullable=True),
        sa.Column("rm_score", sa.Float, nullable=True),
        sa.Column("grader_score", sa.Float, nullable=True),
        sa.Column("gap", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("submitted_by", sa.Integer, sa.ForeignKey("raters.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        _created(),
        sa.UniqueConstraint("project_id", "content_hash", name="uq_findings_content"),
    )
    _indexes("findings", "project_id", "source", "gap", "status")
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        _created(),
    )
    _indexes("api_keys", "project_id")
    op.create_table(
        "feedback_items",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("user_meta", sa.JSON, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column(
            "grading_task_id",
            sa.Integer,
            sa.ForeignKey("grading_tasks.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        _created("received_at"),
        sa.UniqueConstraint("project_id", "idempotency_key", name="uq_feedback_key"),
    )
    _indexes("feedback_items", "project_id", "status", "received_at")
    op.create_table(
        "iterations",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step", sa.String(30), nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.Column("focus", sa.JSON, nullable=False),
        sa.Column("diagnosis", sa.Text, nullable=False),
        sa.Column("reason_stopped", sa.Text, nullable=True),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        _created("started_at"),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("project_id", "number", name="uq_iterations_number"),
    )
    _indexes("iterations", "project_id", "status")


def downgrade() -> None:
    for table in ("iterations", "feedback_items", "api_keys", "findings", "grades", "grading_tasks"):
        op.drop_table(table)
