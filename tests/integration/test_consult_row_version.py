"""A consult row written from a stale read is refused (models/tables.py `row_version`), on
both databases: an end committed while joins were being recorded stays ended, an end that
read the consult before a join's commit reads it again, and of two ends at once one ends
the consult and the other finds it ended."""

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models import consults
from models.consults import ConsultAlreadyEnded
from tests.conftest import RunningServer, fresh_database, token_of
from tests.integration.test_join_burst import CARE_TEAM, recorded, statements
from tests.support.sockets import RecordingClient


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """Both databases, whatever MTM_TEST_DATABASE_URL says: SQLite takes no row lock, so
    its reads and writes interleave differently."""
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if request.param == "postgres" and not url:
        pytest.skip("MTM_TEST_DATABASE_URL names no Postgres")
    async with fresh_database(tmp_path, url if request.param == "postgres" else None) as db:
        yield db


async def wait_for(seen: list[str], after: int, *starts: str, count: int = 1) -> None:
    """Until `count` statements beginning with one of `starts` were sent after `after`."""
    async with asyncio.timeout(4):
        while sum(s.startswith(starts) for s in seen[after:]) < count:
            await asyncio.sleep(0.01)


async def test_an_end_committed_while_joins_are_being_recorded_is_not_undone(
    server: RunningServer,
) -> None:
    """The joins read the consult before another transaction ended it and write it after:
    their writes find the row changed, run again on the ended consult and are refused.
    Before, the end was overwritten: the consult was live again, and both were recorded in
    the call of an ended consult."""
    consult = await server.create_consult(admit_patient=False)
    clients = [RecordingClient() for _ in CARE_TEAM]
    for client, role in zip(clients, CARE_TEAM, strict=True):
        await client.connect(server.base_url, token_of(consult["links"][role]))
    try:
        with statements(server.state.engine) as seen:
            async with server.state.sessions() as session, session.begin():
                row = await consults.get_consult(session, consult["id"], lock=True)
                assert row is not None
                consults.end(row, reason="ended elsewhere", now=dt.datetime.now(dt.UTC))
                # Written, not committed: the row's lock (Postgres) or the database's write
                # lock (SQLite) is held, and the joins' reads see the consult as it was.
                await session.flush()
                before = len(seen)
                joins = asyncio.gather(*(client.join(consent=False) for client in clients))
                await wait_for(seen, before, "INSERT", "UPDATE")
                await asyncio.sleep(0.2)  # the joins' write now waits for the end's lock
        acks = await joins
        for ack in acks:
            assert ack["ok"] is False and ack["error"]["code"] == "consult_ended", ack
        assert await recorded(server, consult["id"]) == ("ended", set())
    finally:
        for client in clients:
            if client.sio.connected:
                await client.sio.disconnect()


async def test_an_end_that_read_the_consult_before_a_join_committed_reads_it_again(
    server: RunningServer,
) -> None:
    """A join's write (the consult opened) is held uncommitted while the end reads the
    consult; it commits, then the end writes. On SQLite (no row lock) the end's write finds
    the row changed and the end runs again; on Postgres it waits for the row and reads it
    after. Either way the consult ends, and the join's change is kept."""
    consult = await server.create_consult(admit_patient=False)
    opened = dt.datetime.now(dt.UTC)
    with statements(server.state.engine) as seen:
        async with server.state.sessions() as session, session.begin():
            row = await consults.get_consult(session, consult["id"])
            assert row is not None
            assert consults.mark_arrived(row, now=opened) == ["consult.opened"]
            await session.flush()
            before = len(seen)
            ending = asyncio.create_task(
                server.state.ending.end(consult["id"], reason="done", ended_by="pharmacist")
            )
            await wait_for(seen, before, "SELECT consult")
            await asyncio.sleep(0.2)  # the end's write (or its locked read) now waits
        ended = await ending
    reads = [s for s in seen[before:] if s.startswith("SELECT consult")]
    # SQLite: read, refused write, read again. Postgres: one read, after the join's commit.
    assert len(reads) == (2 if server.state.engine.dialect.name == "sqlite" else 1), reads
    assert ended.status == "ended"
    async with server.state.sessions() as session:
        stored = await consults.get_consult(session, consult["id"])
        assert stored is not None
        assert (stored.status, stored.end_reason) == ("ended", "done")
        assert stored.opened_at == opened


async def test_of_two_ends_at_once_one_ends_the_consult_and_the_other_finds_it_ended(
    server: RunningServer,
) -> None:
    """Both ends read the consult while a write elsewhere holds the database (SQLite: one
    writer), then write one after the other. Before, on SQLite, both succeeded: the second
    overwrote the first's reason and both sent `consult.ended`."""
    consult = await server.create_consult(admit_patient=False)
    other = await server.create_consult(admit_patient=False)
    with statements(server.state.engine) as seen:
        async with server.state.sessions() as session, session.begin():
            row = await consults.get_consult(session, other["id"])
            assert row is not None
            consults.mark_arrived(row, now=dt.datetime.now(dt.UTC))
            await session.flush()  # SQLite's write lock is held until this commits
            before = len(seen)
            ends = asyncio.gather(
                *(
                    server.state.ending.end(consult["id"], reason=reason, ended_by="pharmacist")
                    for reason in ("first", "second")
                ),
                return_exceptions=True,
            )
            await wait_for(seen, before, "SELECT consult", count=2)
            await asyncio.sleep(0.2)
        results = await ends
    refused = [r for r in results if isinstance(r, ConsultAlreadyEnded)]
    ended = [r for r in results if not isinstance(r, BaseException)]
    assert len(ended) == 1 and len(refused) == 1, results
    async with server.state.sessions() as session:
        stored = await consults.get_consult(session, consult["id"])
        assert stored is not None
        assert (stored.status, stored.end_reason) == ("ended", ended[0].end_reason)
