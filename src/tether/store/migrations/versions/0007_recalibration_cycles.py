"""Recalibration cycles: a rater's readmission time and the failed hidden-anchor windows.

Revision ID: 0007_recalibration_cycles
Revises: 0006_evals_feedback_loop
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_recalibration_cycles"
down_revision = "0006_evals_feedback_loop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raters") as batch:
        batch.add_column(sa.Column("readmitted_at", sa.DateTime(timezone=True), nullable=True))
    # Existing raters: the last time their history made them active (NULL if it never did).
    op.execute(
        "UPDATE raters SET readmitted_at = (SELECT max(e.created_at) FROM rater_events e "
        "WHERE e.rater_id = raters.id AND e.to_status = 'active')"
    )
    op.create_table(
        "recalibrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id", ondelete="CASCADE"), nullable=False),
        sa.Column("first_judgment_id", sa.Integer, nullable=False),
        sa.Column("failed_judgment_id", sa.Integer, nullable=False),
        sa.Column("through_judgment_id", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recalibrations_rater_id", "recalibrations", ["rater_id"])


def downgrade() -> None:
    op.drop_table("recalibrations")
    with op.batch_alter_table("raters") as batch:
        batch.drop_column("readmitted_at")
