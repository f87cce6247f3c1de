"""Async engine and session factory."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry


def make_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An engine for `url`; `schema` (Postgres only) isolates a test run's tables."""
    # No pool_pre_ping: it costs a round trip on every checkout, on the edit path; a
    # connection that died is invalidated on first use and the pool replaces it.
    kwargs: dict[str, Any] = {
        # A failed statement's message must never carry its values (patient names, notes,
        # medications): the error text says "[SQL parameters hidden]" instead.
        "hide_parameters": True,
        "pool_recycle": 3600,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if url.startswith("postgresql"):
        if schema is not None:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    elif schema is not None:
        raise ValueError("schema isolation needs Postgres")
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _json_dumps(value: Any) -> str:
    # orjson: the JSON columns (entity data, log values, receipts) are on the edit path.
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
