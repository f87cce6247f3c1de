"""The visit timer (when the patient first entered the call) and the call's text chat.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "consult", sa.Column("visit_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "chat_message",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("participant_id", sa.String(40), nullable=False),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("author_role", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_chat_message_consult", "chat_message", ["consult_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_chat_message_consult", table_name="chat_message")
    op.drop_table("chat_message")
    with op.batch_alter_table("consult") as batch:
        batch.drop_column("visit_started_at")
