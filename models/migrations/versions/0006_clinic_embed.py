"""Clinics' embedding settings: allowed origins and what the embed's events may name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinic_embed",
        sa.Column("clinic", sa.String(200), primary_key=True),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("medication_names_in_events", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clinic_embed")
