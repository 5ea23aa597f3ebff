"""A partial index on open, unclaimed live slots, in id order.

A rater's fetch claims the first open slot in id order (see `store.slots.claim_live_slot`). Without
this index PostgreSQL gathers every open slot and sorts them on each fetch (about 7 ms with a few
thousand open slots, measured); with it, the scan walks slots in order and stops at the first one
the rater may take. SQLite uses it the same way.

Revision ID: 0004_open_slot_index
Revises: 0003_labeling
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_open_slot_index"
down_revision = "0003_labeling"
branch_labels = None
depends_on = None

OPEN = "status = 'open' AND rater_id IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_assignments_open_slots",
        "assignments",
        ["id"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_open_slots", table_name="assignments")
