"""The SQLite pool (models/database.py): a burst of sessions reuses a fixed set of
connections. With the default overflow, each connection past the pool's size was opened
(a thread and the file) and closed again for every use."""

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from models.database import SQLITE_POOL_SIZE, make_engine, make_sessionmaker


async def test_a_burst_of_sqlite_sessions_opens_no_connection_past_the_pool(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")
    sessions = make_sessionmaker(engine)
    opened: list[int] = []

    def on_connect(*_args: Any) -> None:
        opened.append(1)

    event.listen(engine.sync_engine, "connect", on_connect)

    async def one() -> int:
        async with sessions() as session:
            value = await session.scalar(text("SELECT 1"))
            await asyncio.sleep(0.01)  # held a while, as a join's transaction is
            return int(value or 0)

    try:
        for _ in range(3):
            assert await asyncio.gather(*(one() for _ in range(30))) == [1] * 30
    finally:
        await engine.dispose()
    assert len(opened) <= SQLITE_POOL_SIZE
