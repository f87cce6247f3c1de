"""A version counter on each consult row, checked by every ORM update of it.

A join read its consult, then wrote it at its commit: an end committed in between was
overwritten (the consult set back to live). Now such a write finds the row changed and
is refused; the join then runs again on what the end left.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "consult", sa.Column("row_version", sa.Integer(), nullable=False, server_default="1")
    )


def downgrade() -> None:
    op.drop_column("consult", "row_version")
