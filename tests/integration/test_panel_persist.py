"""The two ways a batch of panel changes is written (models/panel_store.py): one call of
`mtm_persist_panel` on Postgres, Core statements on SQLite. Both must store the same rows
and refuse the same stale batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.consults import create_consult
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from models.mutations import Actor, Changes, apply
from models.panel_store import StaleState, events_since, load, snapshot, write_batch
from models.tables import Consult
from tests.conftest import PanelDb

NOW = dt.datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[PanelDb]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'persist.sqlite3'}")
    await upgrade_to_head(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        consult = await create_consult(
            session, clinic="north", patient_name="Maria Lopez",
            scheduled_at=NOW, notes=None, now=NOW,
        )  # fmt: skip
        participants = {p.role: p.id for p in consult.participants}
    yield PanelDb(
        engine=engine, sessions=sessions, consult_id=consult.id, participants=participants
    )
    await engine.dispose()


MUTATIONS: list[dict[str, Any]] = [
    {"mutation_id": "a", "op": "add", "entity": "medication",
     "value": {"name": "Metformin", "strength": "500 mg", "how_taken": "twice daily"}},
    {"mutation_id": "b", "op": "add", "entity": "medication", "value": {"name": "Lisinopril"}},
    {"mutation_id": "c", "op": "set", "entity": "medication", "entity_id": "$0",
     "field": "notes", "value": "kidney function – eGFR 58 \u00e9t\u00e9 \U0001f48a"},
    {"mutation_id": "d", "op": "set", "entity": "medication", "entity_id": "$1",
     "field": "strength", "value": "10 mg", "base_version": 0},  # stale: a conflict
    {"mutation_id": "e", "op": "set", "entity": "medication", "entity_id": "$9",
     "field": "notes", "value": "no such medication"},  # refused, with a receipt
]  # fmt: skip


async def write(db: PanelDb, mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply `mutations` as the pharmacist to the consult's state and write them as one
    batch through the writer's path; returns their results."""
    actor = Actor(db.participants["pharmacist"], "Ana P.", "pharmacist")
    async with db.sessions() as session:
        state = await load(session, db.consult_id)
    first_seq, changes, results = state.last_seq, Changes(), []
    ids: list[str] = []
    for mutation in mutations:
        mutation = dict(mutation)
        if str(mutation.get("entity_id", "")).startswith("$"):
            index = int(mutation["entity_id"][1:])
            mutation["entity_id"] = ids[index] if index < len(ids) else "m_none"
        result, applied = apply(state, actor, mutation, now=NOW)
        if result.get("entity") and mutation["op"] == "add":
            ids.append(result["entity"]["id"])
        changes.extend(applied)
        results.append(result)
    await write_batch(db.engine, [(state, first_seq, changes)], now=NOW)
    return results


async def stored(db: PanelDb) -> dict[str, Any]:
    async with db.sessions() as session:
        state = await load(session, db.consult_id)
        return {
            "snapshot": await snapshot(session, db.consult_id),
            "events": await events_since(session, db.consult_id, 0),
            "receipts": state.receipts,
            "last_seq": state.last_seq,
        }


async def ended(engine: AsyncEngine, consult_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(Consult).where(Consult.id == consult_id).values(status="ended")
        )


async def test_both_backends_store_the_same_batch(panel_db: PanelDb, sqlite_db: PanelDb) -> None:
    assert panel_db.engine.dialect.name == "postgresql"  # ./run.sh test sets Postgres
    results = [await write(db, MUTATIONS) for db in (panel_db, sqlite_db)]
    assert [r["ok"] for r in results[0]] == [True, True, True, False, False]
    rows = [await stored(db) for db in (panel_db, sqlite_db)]
    postgres, sqlite = rows
    assert postgres["last_seq"] == sqlite["last_seq"] == 4  # two adds, a note, a conflict
    # Ids differ (random); everything else is the same, the JSON's key order included.
    ids = {
        pg["id"]: lite["id"]
        for pg, lite in zip(
            postgres["snapshot"]["entities"], sqlite["snapshot"]["entities"], strict=True
        )
    }
    text = repr(rows[0])
    for pg_id, lite_id in ids.items():
        text = text.replace(pg_id, lite_id)
    text = text.replace(panel_db.consult_id, sqlite_db.consult_id)
    for role in ("pharmacist", "clinician", "patient"):
        text = text.replace(panel_db.participants[role], sqlite_db.participants[role])
    assert text == repr(rows[1])
    assert list(postgres["snapshot"]["entities"][0]["data"]) == list(
        sqlite["snapshot"]["entities"][0]["data"]
    )


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_a_stale_or_ended_batch_writes_nothing(
    backend: str, panel_db: PanelDb, sqlite_db: PanelDb
) -> None:
    db = panel_db if backend == "postgres" else sqlite_db
    await write(db, MUTATIONS[:1])
    before = await stored(db)
    actor = Actor(db.participants["pharmacist"], "Ana P.", "pharmacist")
    async with db.sessions() as session:
        state = await load(session, db.consult_id)
    first_seq, changes = state.last_seq, Changes()
    _, applied = apply(state, actor, MUTATIONS[1], now=NOW)
    changes.extend(applied)
    # Another writer moved the log meanwhile: the fence refuses the whole batch.
    await write(db, [{**MUTATIONS[1], "mutation_id": "other"}])
    moved = await stored(db)
    with pytest.raises(StaleState):
        await write_batch(db.engine, [(state, first_seq, changes)], now=NOW)
    assert await stored(db) == moved != before
    # A consult that ended while its batch was being decided takes no more events.
    async with db.sessions() as session:
        state = await load(session, db.consult_id)
    first_seq, changes = state.last_seq, Changes()
    _, applied = apply(state, actor, {**MUTATIONS[1], "mutation_id": "late"}, now=NOW)
    changes.extend(applied)
    await ended(db.engine, db.consult_id)
    with pytest.raises(StaleState):
        await write_batch(db.engine, [(state, first_seq, changes)], now=NOW)
    assert (await stored(db))["events"] == moved["events"]
