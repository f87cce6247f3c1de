"""Panel meaning: per-field authors of entities; source and detail of change events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch (copy-and-move) rebuild of change_event on
    # SQLite would drop its append-only triggers.
    op.add_column("panel_entity", sa.Column("authors", sa.JSON(), nullable=True))
    op.add_column("change_event", sa.Column("source", sa.String(20), nullable=True))
    op.add_column("change_event", sa.Column("detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("change_event", "detail")
    op.drop_column("change_event", "source")
    op.drop_column("panel_entity", "authors")
