"""`WriteBatch` (models/batching.py) on a real database: many callers' transactions
committed as one, a refused or failing one rolled back alone, and a database cut off in the
middle of a batch leaving nothing acknowledged and nothing written."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from models.batching import WriteBatch
from models.database import make_engine, make_sessionmaker
from models.errors import Refused
from tests.support.tcp_proxy import TcpProxy, postgres_proxy, through


async def probe_table(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE batch_probe (k VARCHAR(20) PRIMARY KEY)"))


@pytest.fixture
async def engine(database_url: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url[0], schema=database_url[1])
    await probe_table(engine)
    yield engine
    await engine.dispose()


class Insert:
    """A caller's work: one row, and an answer that says which."""

    def __init__(self, key: str, *, refuse: bool = False) -> None:
        self.key = key
        self.refuse = refuse
        self.runs = 0

    async def __call__(self, session: AsyncSession) -> str:
        self.runs += 1
        await session.execute(text("INSERT INTO batch_probe (k) VALUES (:k)"), {"k": self.key})
        if self.refuse:
            raise Refused("refused", f"{self.key} is refused after writing its row")
        return self.key


async def keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT k FROM batch_probe ORDER BY k"))
        return [row[0] for row in rows]


def count_commits(engine: AsyncEngine) -> list[int]:
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _connection: commits.append(1))
    return commits


async def test_concurrent_callers_share_transactions_and_each_gets_its_own_answer(
    engine: AsyncEngine,
) -> None:
    batch = WriteBatch(make_sessionmaker(engine))
    commits = count_commits(engine)
    wanted = [f"k{n:02d}" for n in range(40)]
    answers = await asyncio.gather(*(batch.run(Insert(key)) for key in wanted))
    assert answers == wanted
    assert await keys(engine) == wanted
    # The first caller commits alone; those who arrived meanwhile go together.
    assert len(commits) <= 3, commits


async def test_a_refused_caller_leaves_no_trace_and_the_others_commit(
    engine: AsyncEngine,
) -> None:
    batch = WriteBatch(make_sessionmaker(engine))
    works = [Insert("a0"), Insert("a1"), Insert("b", refuse=True), Insert("a2")]
    results = await asyncio.gather(*(batch.run(work) for work in works), return_exceptions=True)
    assert results[:2] == ["a0", "a1"] and results[3] == "a2"
    assert isinstance(results[2], Refused) and results[2].code == "refused"
    assert await keys(engine) == ["a0", "a1", "a2"]
    # The refused one ran in the batch, then again alone, where it was refused for good.
    assert works[2].runs == 2


async def test_a_batch_whose_commit_fails_runs_each_caller_alone(engine: AsyncEngine) -> None:
    """Two callers writing the same row: together the batch cannot commit; alone, the
    first commits and the second gets the database's refusal."""
    batch = WriteBatch(make_sessionmaker(engine))
    first, again, other, lead = Insert("same"), Insert("same"), Insert("other"), Insert("lead")
    leading = asyncio.create_task(batch.run(lead))
    await asyncio.sleep(0)
    results = await asyncio.gather(
        batch.run(first), batch.run(again), batch.run(other), return_exceptions=True
    )
    assert await leading == "lead"
    assert results[0] == "same" and results[2] == "other"
    assert isinstance(results[1], IntegrityError)
    assert await keys(engine) == ["lead", "other", "same"]


async def test_a_caller_gone_during_a_failed_batch_is_not_run_again(
    engine: AsyncEngine,
) -> None:
    batch = WriteBatch(make_sessionmaker(engine))
    held = asyncio.Event()
    release = asyncio.Event()

    async def waiting(session: AsyncSession) -> str:
        await session.execute(text("INSERT INTO batch_probe (k) VALUES ('waiting')"))
        held.set()
        await release.wait()
        return "waiting"

    lead = asyncio.create_task(batch.run(Insert("lead")))
    await asyncio.sleep(0)
    gone, refused = Insert("gone"), Insert("refused", refuse=True)
    tasks = [
        asyncio.create_task(batch.run(waiting)),
        asyncio.create_task(batch.run(gone)),
        asyncio.create_task(batch.run(refused)),
    ]
    assert await lead == "lead"
    await held.wait()
    tasks[1].cancel()  # its client went away while the batch ran
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "waiting" and isinstance(results[2], Refused)
    assert isinstance(results[1], asyncio.CancelledError)
    assert gone.runs == 1  # in the batch, rolled back with it; not again alone
    assert await keys(engine) == ["lead", "waiting"]


async def test_no_free_connection_fails_the_batch_at_once(tmp_path: Path) -> None:
    """The pool's timeout is not the batch's fault: running each caller alone would only
    wait for a connection again, once per caller."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'busy.sqlite3'}",
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.2,
    )
    try:
        await probe_table(engine)
        batch = WriteBatch(make_sessionmaker(engine))
        works = [Insert(f"w{n}") for n in range(4)]
        async with engine.connect():  # the pool's only connection, held
            first = asyncio.create_task(batch.run(Insert("first")))
            await asyncio.sleep(0)
            results = await asyncio.gather(
                first, *(batch.run(work) for work in works), return_exceptions=True
            )
        assert all(isinstance(result, PoolTimeout) for result in results), results
        assert max(work.runs for work in works) <= 1  # none tried again alone
    finally:
        await engine.dispose()


async def test_a_database_cut_off_during_a_batch_acknowledges_nothing(
    database_url: tuple[str, str | None],
) -> None:
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    async with postgres_proxy(url) as proxy:
        engine = make_engine(through(proxy, url), schema=schema)
        try:
            await probe_table(engine)
            await cut_while_writing(engine, proxy)
        finally:
            await engine.dispose()
        direct = make_engine(url, schema=schema)
        try:
            assert await keys(direct) == ["before"]
        finally:
            await direct.dispose()


async def cut_while_writing(engine: AsyncEngine, proxy: TcpProxy) -> None:
    batch = WriteBatch(make_sessionmaker(engine))
    assert await batch.run(Insert("before")) == "before"
    held = asyncio.Event()

    async def slow(session: AsyncSession) -> str:
        await session.execute(text("INSERT INTO batch_probe (k) VALUES ('slow')"))
        held.set()
        await asyncio.sleep(0.5)  # the cut lands while this transaction is open
        await session.execute(text("INSERT INTO batch_probe (k) VALUES ('slow2')"))
        return "slow"

    writing = asyncio.create_task(batch.run(slow))
    await held.wait()
    # These wait for the next batch, which starts after the cut.
    others = [asyncio.create_task(batch.run(Insert(f"late{n}"))) for n in range(5)]
    await proxy.cut()
    results = await asyncio.gather(writing, *others, return_exceptions=True)
    assert all(isinstance(result, Exception) for result in results), results
    await proxy.restore()
