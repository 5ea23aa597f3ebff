"""Conversations: a prompt may carry its messages; task origins long enough for import sources.

A NULL ``messages`` means what every row meant before: one user message, the row's text. Rows with
messages keep their last user turn as the text, so every reader of ``text`` keeps its meaning.

Revision ID: 0008_conversations
Revises: 0007_recalibration_cycles
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_conversations"
down_revision = "0007_recalibration_cycles"
branch_labels = None
depends_on = None

TABLES_WITH_PROMPTS = ("prompts", "findings", "feedback_items", "grading_tasks")


def upgrade() -> None:
    for table in TABLES_WITH_PROMPTS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("messages", sa.JSON, nullable=True))
    # "import:<source>" and "probe:<name>" origins; 20 characters held only the built-in ones.
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("origin", type_=sa.String(120), existing_type=sa.String(20))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("origin", type_=sa.String(20), existing_type=sa.String(120))
    for table in reversed(TABLES_WITH_PROMPTS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("messages")
