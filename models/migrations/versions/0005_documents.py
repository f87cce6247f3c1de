"""Documents: the seq a consult ended at (its documents' default state).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consult", sa.Column("ended_seq", sa.Integer(), nullable=True))
    # Consults that ended before this column: nothing was written after their end.
    op.execute("UPDATE consult SET ended_seq = last_seq WHERE status = 'ended'")


def downgrade() -> None:
    op.drop_column("consult", "ended_seq")
