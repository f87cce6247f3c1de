"""Postgres: one statement writes a batch of panel changes (models/panel_store.py).

A batch used to be seven round trips (BEGIN, the fence, the log, entities, receipts, the
consult's seq, COMMIT); on this edit path each round trip costs more CPU than the rest of
the edit. `mtm_persist_panel(after_end, fence, events, created, updated, receipts,
moved)` does the same work in the same order inside the database, so a batch is one
statement: its own transaction when run alone, or part of the caller's. SQLite (one
process, no network) keeps the Core statements.

Each argument but `after_end` is a JSON list of rows whose keys are the columns
(models/panel_store.py builds them), one argument each so that each is parsed once. `json`,
not `jsonb`: the JSON columns keep the text they were given, key order included.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLSTATE raised when the fence refuses a batch: models.panel_store.STALE_SQLSTATE (a
# migration keeps its own copy of what it installed); class "MT" is this application's own.
STALE_SQLSTATE = "MT001"

PERSIST_FUNCTION = f"""
CREATE OR REPLACE FUNCTION mtm_persist_panel(
    after_end boolean, fence json, events json, created json, updated json, receipts json,
    moved json
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The fence (see "Lock order" in models/panel_store.py): lock the consults' rows in id
    -- order before anything else is written, then check each is still at the seq its
    -- changes were decided on and, if it gets events, not ended.
    PERFORM 1 FROM consult
        WHERE id IN (SELECT f.id FROM json_to_recordset(fence) AS f(id varchar))
        ORDER BY id
        FOR NO KEY UPDATE;
    IF EXISTS (
        SELECT 1
        FROM json_to_recordset(fence)
            AS f(id varchar, last_seq integer, has_events boolean)
        LEFT JOIN consult c ON c.id = f.id
        WHERE c.id IS NULL
            OR c.last_seq <> f.last_seq
            OR (f.has_events AND c.status = 'ended' AND NOT after_end)
    ) THEN
        RAISE EXCEPTION 'the panel changed under a cached state' USING ERRCODE = '{STALE_SQLSTATE}';
    END IF;

    INSERT INTO change_event (consult_id, seq, at, actor_id, actor_name, actor_role, op,
                              entity_type, entity_id, field, old, new, mutation_id, outcome,
                              source, detail)
        SELECT consult_id, seq, at, actor_id, actor_name, actor_role, op, entity_type,
               entity_id, field, old, new, mutation_id, outcome, source, detail
        FROM json_populate_recordset(NULL::change_event, events);

    INSERT INTO panel_entity (consult_id, id, entity_type, position, data, versions,
                              created_seq, updated_seq, updated_at, updated_by_name,
                              updated_by_role, authors)
        SELECT consult_id, id, entity_type, position, data, versions, created_seq,
               updated_seq, updated_at, updated_by_name, updated_by_role, authors
        FROM json_populate_recordset(NULL::panel_entity, created);

    UPDATE panel_entity AS e
        SET entity_type = u.entity_type, position = u.position, data = u.data,
            versions = u.versions, created_seq = u.created_seq, updated_seq = u.updated_seq,
            updated_at = u.updated_at, updated_by_name = u.updated_by_name,
            updated_by_role = u.updated_by_role, authors = u.authors
        FROM (SELECT * FROM json_populate_recordset(NULL::panel_entity, updated)) AS u
        WHERE e.consult_id = u.consult_id AND e.id = u.id;

    INSERT INTO mutation_receipt (consult_id, participant_id, mutation_id, result, created_at)
        SELECT consult_id, participant_id, mutation_id, result, created_at
        FROM json_populate_recordset(NULL::mutation_receipt, receipts);

    UPDATE consult AS c
        SET last_seq = m.last_seq
        FROM json_to_recordset(moved) AS m(id varchar, last_seq integer)
        WHERE c.id = m.id;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PERSIST_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION mtm_persist_panel(boolean, json, json, json, json, json, json)")
