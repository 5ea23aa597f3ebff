"""Runs and their alerts: one row per `tether rl run` (and later, other long jobs), one per alert raised.

Revision ID: 0005_runs_alerts
Revises: 0004_open_slot_index
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_runs_alerts"
down_revision = "0004_open_slot_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("gate_overridden", sa.Boolean, nullable=False),
        sa.Column("reason_stopped", sa.Text, nullable=True),
        sa.Column(
            "artifact_id", sa.String(40), sa.ForeignKey("artifacts.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    for column in ("project_id", "kind", "status", "artifact_id", "started_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("monitor", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("condition", sa.String(100), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("project_id", "run_id", "monitor", "severity"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("runs")
