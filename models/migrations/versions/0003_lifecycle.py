"""Consult lifecycle times, admission state of participants, consent records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consult") as batch:
        batch.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("live_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("participant") as batch:
        batch.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_left_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "consent_record",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "participant_id",
            sa.String(40),
            sa.ForeignKey("participant.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_consent_record_consult", "consent_record", ["consult_id"])


def downgrade() -> None:
    op.drop_index("ix_consent_record_consult", table_name="consent_record")
    op.drop_table("consent_record")
    with op.batch_alter_table("participant") as batch:
        batch.drop_column("last_left_at")
        batch.drop_column("admitted_at")
    with op.batch_alter_table("consult") as batch:
        batch.drop_column("live_at")
        batch.drop_column("opened_at")
