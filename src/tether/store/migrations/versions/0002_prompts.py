"""Prompt pool: tagged prompts with their dimension, stratum and split.

Revision ID: 0002_prompts
Revises: 0001_foundation
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_prompts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("dimension", sa.String(50), nullable=False),
        sa.Column("stratum", sa.String(20), nullable=False),
        sa.Column("split", sa.String(10), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "key", name="uq_prompts_project_key"),
    )
    for column in ("project_id", "dimension", "stratum", "split"):
        op.create_index(f"ix_prompts_{column}", "prompts", [column])


def downgrade() -> None:
    op.drop_table("prompts")
