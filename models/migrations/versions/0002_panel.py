"""Medication panel: entities, the append-only change log, mutation receipts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_POSTGRES_GUARDS = [
    """CREATE FUNCTION change_event_is_append_only() RETURNS trigger AS $$
       BEGIN
           RAISE EXCEPTION 'change_event is append-only: history cannot be edited';
       END;
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER change_event_no_update BEFORE UPDATE OR DELETE ON change_event
       FOR EACH ROW EXECUTE FUNCTION change_event_is_append_only()""",
]

_SQLITE_GUARDS = [
    """CREATE TRIGGER change_event_no_update BEFORE UPDATE ON change_event
       BEGIN SELECT RAISE(ABORT, 'change_event is append-only: history cannot be edited'); END""",
    """CREATE TRIGGER change_event_no_delete BEFORE DELETE ON change_event
       BEGIN SELECT RAISE(ABORT, 'change_event is append-only: history cannot be edited'); END""",
]


def upgrade() -> None:
    with op.batch_alter_table("consult") as batch:
        batch.add_column(sa.Column("last_seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "panel_entity",
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("position", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("created_seq", sa.Integer(), nullable=False),
        sa.Column("updated_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_name", sa.String(200), nullable=False),
        sa.Column("updated_by_role", sa.String(20), nullable=False),
    )
    op.create_table(
        "change_event",
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="RESTRICT"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("op", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("mutation_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
    )
    op.create_index("ix_change_event_entity", "change_event", ["consult_id", "entity_id"])
    op.create_table(
        "mutation_receipt",
        sa.Column(
            "consult_id",
            sa.String(40),
            sa.ForeignKey("consult.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("participant_id", sa.String(64), primary_key=True),
        sa.Column("mutation_id", sa.String(64), primary_key=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    guards = _POSTGRES_GUARDS if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER change_event_no_update ON change_event")
        op.execute("DROP FUNCTION change_event_is_append_only()")
    op.drop_table("mutation_receipt")
    op.drop_index("ix_change_event_entity", table_name="change_event")
    op.drop_table("change_event")
    op.drop_table("panel_entity")
    with op.batch_alter_table("consult") as batch:
        batch.drop_column("last_seq")
