"""Consults and participants.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consult",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("clinic", sa.String(200), nullable=False),
        sa.Column("patient_name", sa.String(200), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(40), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_participant_consult", "participant", ["consult_id"])


def downgrade() -> None:
    op.drop_index("ix_participant_consult", table_name="participant")
    op.drop_table("participant")
    op.drop_table("consult")
