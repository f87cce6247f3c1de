"""Group commit: many edits in one transaction, and two writers (as two server processes)
on one consult never fork its history."""

import asyncio
import datetime as dt
import time
from typing import Any

import asyncpg
import pytest

from models.consults import create_consult
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from models.mutations import Actor
from models.panel_store import apply_mutation
from models.panel_writer import PanelWriter
from tests.conftest import PanelDb
from tests.support.database import private_postgres_database


def notes(mid: str, entity_id: str, text: str) -> dict[str, Any]:
    return {
        "mutation_id": mid,
        "op": "set",
        "entity": "medication",
        "entity_id": entity_id,
        "field": "notes",
        "value": text,
    }


async def add_med(db: PanelDb) -> dict[str, Any]:
    result = await db.mutate(
        db.actor("pharmacist"),
        mutation_id="setup",
        op="add",
        entity="medication",
        value={"name": "Metformin", "strength": "500 mg"},
    )
    entity: dict[str, Any] = result["entity"]
    return entity


async def test_concurrent_edits_commit_together_in_order(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    writer = PanelWriter(panel_db.engine, panel_db.sessions, time.time)
    writer.start()
    try:
        actor = panel_db.actor("clinician")
        results = await asyncio.gather(
            *[
                writer.submit(panel_db.consult_id, actor, notes(f"n{i}", med["id"], f"note {i}"))
                for i in range(60)
            ]
        )
        assert [r["seq"] for r in results] == list(range(2, 62))
        again = await writer.submit(panel_db.consult_id, actor, notes("n5", med["id"], "x"))
        assert again == {**results[5], "replayed": True}
    finally:
        await writer.stop()
    events = await panel_db.events()
    assert [e["seq"] for e in events] == list(range(1, 62))
    assert (await panel_db.snapshot())["entities"][0]["data"]["notes"] == "note 59"


async def test_two_writers_on_one_consult_never_fork_the_history(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    first, second = (PanelWriter(panel_db.engine, panel_db.sessions, time.time) for _ in range(2))
    first.start()
    second.start()
    pharmacist: Actor = panel_db.actor("pharmacist")
    clinician: Actor = panel_db.actor("clinician")
    try:
        # Both cache the consult's panel...
        await first.submit(panel_db.consult_id, pharmacist, notes("a1", med["id"], "a1"))
        await second.submit(panel_db.consult_id, clinician, notes("b1", med["id"], "b1"))
        # ...so each next edit meets a cache the other made stale.
        for i in range(2, 6):
            a = await first.submit(panel_db.consult_id, pharmacist, notes(f"a{i}", med["id"], "a"))
            b = await second.submit(panel_db.consult_id, clinician, notes(f"b{i}", med["id"], "b"))
            assert a["ok"] and b["ok"] and b["seq"] == a["seq"] + 1
        # A compare-and-set decided on stale memory would be wrong: the slow path re-reads.
        seen = (await panel_db.snapshot())["entities"][0]["versions"]["strength"]
        change = {"op": "set", "entity": "medication", "entity_id": med["id"],
                  "field": "strength", "base_version": seen}  # fmt: skip
        won = await first.submit(
            panel_db.consult_id, pharmacist, {**change, "mutation_id": "s1", "value": "850 mg"}
        )
        lost = await second.submit(
            panel_db.consult_id, clinician, {**change, "mutation_id": "s2", "value": "1 g"}
        )
        assert won["ok"] is True
        assert lost["error"]["code"] == "conflict" and lost["current"]["value"] == "850 mg"
    finally:
        await first.stop()
        await second.stop()
    events = await panel_db.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert (await panel_db.snapshot())["entities"][0]["data"]["strength"] == "850 mg"


async def test_a_failed_batch_leaves_no_uncommitted_edit_in_the_cache(
    panel_db: PanelDb, database_url: tuple[str, str | None]
) -> None:
    """Regression: a connection reset while the batch loads a *second* consult used to leave
    the first consult's refused edit in the cache; the next edit then committed it without
    its audit event (seqs [.., 3, 5])."""
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    med = await add_med(panel_db)
    async with panel_db.sessions() as session, session.begin():
        other = await create_consult(
            session, clinic="north", patient_name="Other Patient",
            scheduled_at=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC), notes=None,
            now=dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC),
        )  # fmt: skip
    writer = PanelWriter(panel_db.engine, panel_db.sessions, time.time)
    writer.start()
    locker = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        actor = panel_db.actor("pharmacist")
        assert (await writer.submit(panel_db.consult_id, actor, notes("a1", med["id"], "ok")))["ok"]
        # Loading the other consult will block on this lock; then its backend is killed.
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute(f'LOCK TABLE "{schema}".mutation_receipt IN ACCESS EXCLUSIVE MODE')
        refused = asyncio.ensure_future(
            writer.submit(panel_db.consult_id, actor, notes("a2", med["id"], "NOT SAVED"))
        )
        loading = asyncio.ensure_future(
            writer.submit(other.id, actor, {**notes("b1", "m_x", "x"), "op": "add",
                                            "entity_id": None, "field": None,
                                            "value": {"name": "Aspirin"}})
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                killed = await locker.fetchval(
                    # Only the backends our lock blocks (a blocked parse shows the
                    # previous statement's text, so the query column cannot tell).
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                )
                if killed:
                    break
                await asyncio.sleep(0.05)
        for task in (refused, loading):
            # A lost connection is "not saved yet", never an internal error.
            assert (await task)["error"]["code"] == "database_unavailable"
        await transaction.rollback()
        later = await writer.submit(
            panel_db.consult_id, actor, {**notes("a3", med["id"], "x"), "field": "why"}
        )
        assert later["ok"], later
    finally:
        await writer.stop()
        await locker.close()
    events = await panel_db.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "NOT SAVED" not in repr(events)
    assert (await panel_db.snapshot())["entities"][0]["data"]["notes"] == "ok"


async def test_two_writers_editing_one_consult_at_once_never_deadlock_or_fail() -> None:
    """Regression: the batch path wrote change_event (a key-share lock on the consult row
    through its foreign key) and then updated the consult, while the one-by-one path locked
    the consult first: two writers deadlocked in Postgres (13-22 per 60 edits) and an edit
    could fail. One lock order everywhere; a deadlock or serialization failure is retried.

    On a database of its own, so that `pg_stat_database.deadlocks` counts only this test."""
    async with private_postgres_database("mtm_deadlock") as (url, dsn):
        engines = [make_engine(url) for _ in range(2)]
        await upgrade_to_head(engines[0])
        sessions = [make_sessionmaker(engine) for engine in engines]
        async with sessions[0]() as session, session.begin():
            consult = await create_consult(
                session, clinic="north", patient_name="Maria Lopez",
                scheduled_at=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC), notes=None,
                now=dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC),
            )  # fmt: skip
            roles = {p.role: p.id for p in consult.participants}
        writers = [PanelWriter(e, s, time.time) for e, s in zip(engines, sessions, strict=True)]
        for writer in writers:
            writer.start()
        statistics = await asyncpg.connect(dsn)
        try:
            actors = [
                Actor(participant_id=roles[role], name=role.title(), role=role)
                for role in ("pharmacist", "clinician")
            ]
            added = await writers[0].submit(
                consult.id, actors[0],
                {"mutation_id": "setup", "op": "add", "entity": "medication",
                 "value": {"name": "Metformin"}},
            )  # fmt: skip
            medication = added["entity"]["id"]
            deadlocks_before = await statistics.fetchval(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            )

            async def edits(index: int) -> list[dict[str, Any]]:
                """One writer's stream: bursts that commit as batches, racing the other's."""
                writer, actor = writers[index % 2], actors[index % 2]
                results: list[dict[str, Any]] = []
                for burst in range(10):
                    results += await asyncio.gather(
                        *[
                            writer.submit(
                                consult.id,
                                actor,
                                notes(f"w{index}-{burst}-{i}", medication, f"{index}/{burst}/{i}"),
                            )
                            for i in range(3)
                        ]
                    )
                return results

            streams = await asyncio.gather(
                *[edits(index) for index in range(6)], return_exceptions=True
            )
        finally:
            for writer in writers:
                await writer.stop()
            for engine in engines:
                await engine.dispose()
        try:
            deadlocks_after = await deadlocks_reported(statistics)
        finally:
            await statistics.close()
        failed = [stream for stream in streams if isinstance(stream, BaseException)]
        assert failed == []
        results = [result for stream in streams if isinstance(stream, list) for result in stream]
        assert [r for r in results if not r["ok"]] == []
        assert (deadlocks_after - deadlocks_before, len(results)) == (0, 180)
        seqs = sorted(result["seq"] for result in results)
        assert seqs == list(range(2, 182))


async def deadlocks_reported(connection: asyncpg.Connection) -> int:
    """`pg_stat_database.deadlocks` of the connection's database, once every other backend
    of it has exited (a backend reports its statistics when it exits)."""
    async with asyncio.timeout(10):
        while await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ):
            await asyncio.sleep(0.05)
    count: int = await connection.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def test_an_edit_that_loses_a_real_deadlock_is_retried_not_failed() -> None:
    """Another transaction locks the medication's row and then the consult's, while the
    writer holds the consult's and waits for the medication's: Postgres aborts the writer
    (the other transaction's deadlock_timeout is longer). The edit is retried and applied.

    The writer's cached panel is made stale first, so the deadlock hits the one-by-one
    path (which used to retry only unique violations and answered internal_error)."""
    async with private_postgres_database("mtm_deadlock_retry") as (url, dsn):
        engine = make_engine(url)
        await upgrade_to_head(engine)
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            consult = await create_consult(
                session, clinic="north", patient_name="Maria Lopez",
                scheduled_at=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC), notes=None,
                now=dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC),
            )  # fmt: skip
            pharmacist = next(p for p in consult.participants if p.role == "pharmacist")
        actor = Actor(participant_id=pharmacist.id, name="Ana", role="pharmacist")
        writer = PanelWriter(engine, sessions, time.time)
        writer.start()
        other = await asyncpg.connect(dsn)
        try:
            added = await writer.submit(
                consult.id, actor,
                {"mutation_id": "setup", "op": "add", "entity": "medication",
                 "value": {"name": "Metformin"}},
            )  # fmt: skip
            medication = added["entity"]["id"]
            async with sessions() as session, session.begin():  # as another instance would
                await apply_mutation(
                    session, consult.id, actor, notes("elsewhere", medication, "x"),
                    now=dt.datetime.now(dt.UTC),
                )  # fmt: skip
            await other.execute("SET deadlock_timeout = '10s'")
            transaction = other.transaction()
            await transaction.start()
            await other.execute(
                "SELECT 1 FROM panel_entity WHERE consult_id = $1 AND id = $2 FOR UPDATE",
                consult.id,
                medication,
            )
            edit = asyncio.ensure_future(
                writer.submit(consult.id, actor, notes("n1", medication, "after the deadlock"))
            )
            async with asyncio.timeout(10):  # until the writer waits for the row we hold
                while not await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ):
                    await asyncio.sleep(0.02)
            # Now the consult's row, which the writer holds: a cycle.
            await other.execute("SELECT 1 FROM consult WHERE id = $1 FOR UPDATE", consult.id)
            await transaction.rollback()
            result = await asyncio.wait_for(edit, 20)
        finally:
            await writer.stop()
            await engine.dispose()
        try:
            deadlocks = await deadlocks_reported(other)
        finally:
            await other.close()
        assert result["ok"], result
        assert deadlocks == 1  # a real deadlock happened, and the edit still applied
