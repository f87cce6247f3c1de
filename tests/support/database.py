"""What a test needs to prove that a refused request changed nothing in the database."""

from __future__ import annotations

import hashlib

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
