"""Async engine and session factory, and what a database error means for the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import ConnectionPoolEntry

from models.errors import Refused

# SQLSTATEs that say "the database cannot be reached or is going away", not "your statement
# is wrong": connection exceptions (class 08), shutting down or starting up (57P01-57P03),
# too many connections (53300).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# A deadlock victim or a serialization failure: the transaction did nothing; run it again.
_RETRYABLE_STATES = frozenset({"40P01", "40001"})

T = TypeVar("T")


class DatabaseUnavailable(Refused):
    """The database cannot be reached: nothing was saved, and the same request may be sent
    again (a mutation's id makes a repeat apply once)."""

    def __init__(self) -> None:
        super().__init__(
            "database_unavailable",
            "The database cannot be reached, so this change is not saved yet. It stays "
            "queued on this device and is sent again automatically; keep the page open.",
        )


SQLITE_POOL_SIZE = 5


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
    elif sqlite_file(url) is not None:
        # SQLite takes one writer at a time: connections beyond a few only wait on its lock,
        # in its busy handler's sleeps, and the pool's overflow connections are opened and
        # closed again per use (a thread and a file each time). A fixed pool, no overflow:
        # a burst waits for a connection instead (900 joining participants connected in
        # 4.0-4.4 s instead of 6.0, `./run.sh bench --quick --db sqlite capacity`).
        kwargs["pool_size"] = SQLITE_POOL_SIZE
        kwargs["max_overflow"] = 0
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database `url` names; None for another database or SQLite in
    memory (whose pool is its one connection)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


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


def sqlstate(exc: BaseException) -> str | None:
    origin = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(origin, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (a restart, a network cut,
    a failover): the statement's outcome is unknown to this process, the data was not
    refused. Connecting raises the driver's OSError (refused, reset) or a timeout unwrapped;
    a connection lost while in use is a DBAPIError that invalidated it."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    return state is not None and state.startswith(_UNAVAILABLE_STATES)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock victim, a serialization failure, or an update of a row changed since it
    was read (models/tables.py `row_version`): rolled back, safe to run again."""
    return isinstance(exc, StaleDataError) or sqlstate(exc) in _RETRYABLE_STATES


async def retrying(transaction: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """`transaction()` (one whole transaction), run again while it fails `is_retryable`, at
    most `attempts` times in all; the last failure is raised."""
    for _ in range(attempts - 1):
        try:
            return await transaction()
        except Exception as exc:
            if not is_retryable(exc):
                raise
    return await transaction()
