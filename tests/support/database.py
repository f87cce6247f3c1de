"""What a test needs to prove that a refused request changed nothing in the database."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Base


async def database_digest(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A digest of every row of every table: equal digests, unchanged database."""
    digest = hashlib.sha256()
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            for row in (await session.execute(query)).all():
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


@asynccontextmanager
async def private_postgres_database(prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A Postgres database of its own: (SQLAlchemy URL, asyncpg DSN), dropped afterwards.

    For what a schema cannot isolate: the per-database statistics (`pg_stat_database`), or
    killing every connection of a server without touching anybody else's. Fails (never
    skips) without MTM_TEST_DATABASE_URL: CI always sets it.
    """
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql+asyncpg://"):
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    database = f"{prefix}_{secrets.token_hex(4)}"
    server = url.rsplit("/", 1)[0]
    maintenance = server.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    connection = await asyncpg.connect(maintenance)
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    try:
        yield (
            f"{server}/{database}",
            f"{server}/{database}".replace("postgresql+asyncpg://", "postgresql://"),
        )
    finally:
        connection = await asyncpg.connect(maintenance)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()
