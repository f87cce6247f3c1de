"""Many callers' small database reads and writes gathered into one statement or transaction.

When a clinic's whole morning connects at once, every connection reads its join link's
participant, every joiner records its arrival and reads its consult's panel: hundreds of
small transactions a second, each paying a session, its statements and a commit (on
SQLite, half a dozen hops to its thread each) for a row or two. These classes answer them
the way the panel writer commits edits: the first call starts at once; calls that arrive
while it runs wait for the next run, which takes them all together. A lone call costs what
it did before.

- `ReadBatch`: reads of many keys by one statement. A read is never answered from data
  older than the read itself: a key asked while a fetch is running waits for the next
  fetch, so a caller that did something first (entered a room, then read the panel) sees
  at least what was committed when it asked.
- `WriteBatch`: transactions of many callers committed as one. Each caller's work runs
  in turn in the one session; the result is given only once the whole batch committed,
  so a result still means "committed". If any work raises (a refusal, say) or the commit
  fails, the batch is rolled back and each work runs again alone in its own transaction:
  a refused caller leaves no trace and the others still commit. A batch locks the rows of
  several consults in no set order, so two instances' batches may deadlock: the database
  aborts one, whose works then run alone (a deadlock there is retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.database import is_unavailable, retrying

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

Fetch = Callable[[Collection[K]], Awaitable[Mapping[K, V]]]
Work = Callable[[AsyncSession], Awaitable[T]]


class ReadBatch(Generic[K, V]):
    """`get(key)` through `fetch(keys)`, which returns what it found (absent: None)."""

    def __init__(self, fetch: Fetch[K, V], *, max_keys: int = 200) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._running: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self._running = _started(self._running, self._run)
        # A caller that gives up (its client gone) cancels only its own future: the fetch
        # the others wait on goes on.
        return await future

    async def _run(self) -> None:
        while self._waiting:
            keys = list(self._waiting)[: self._max_keys]
            asked = {key: self._waiting.pop(key) for key in keys}
            try:
                found = await self._fetch(keys)
            except asyncio.CancelledError:
                _cancel([f for futures in asked.values() for f in futures])
                _cancel([f for futures in self._waiting.values() for f in futures])
                self._waiting.clear()
                raise
            except Exception as exc:
                for futures in asked.values():
                    _fail(futures, exc)
                continue
            for key, futures in asked.items():
                _resolve(futures, found.get(key))


@dataclass
class _Pending(Generic[T]):
    work: Work[T]
    key: Hashable | None = None
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


Preload = Callable[[AsyncSession, list[Any]], Awaitable[object]]


class WriteBatch:
    """`run(work)`: `work(session)` in a transaction shared with whoever else is waiting.

    `preload(session, keys)`, given, loads what a batch's works will read, by one statement
    for all (the `key` each `run` names) into the session, where the works then find it
    without a statement each; what it returns is held until the works are done. In a
    batch the session does not flush before each query: the works' changes are written
    together at the commit.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        preload: Preload | None = None,
        max_works: int = 100,
    ) -> None:
        self._sessions = sessions
        self._preload = preload
        self._max_works = max_works
        self._waiting: list[_Pending[Any]] = []
        self._running: asyncio.Task[None] | None = None

    async def run(self, work: Work[T], *, key: Hashable | None = None) -> T:
        pending: _Pending[T] = _Pending(work, key)
        self._waiting.append(pending)
        self._running = _started(self._running, self._run)
        return await pending.future

    async def _run(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_works]
            del self._waiting[: self._max_works]
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                _cancel([p.future for p in batch + self._waiting])
                self._waiting.clear()
                raise

    async def _commit(self, batch: list[_Pending[Any]]) -> None:
        live = [pending for pending in batch if not pending.future.done()]
        if not live:
            return
        if len(live) == 1:
            await self._alone(live[0])
            return
        try:
            async with self._sessions() as session, session.begin():
                keys = list({p.key: None for p in live if p.key is not None})
                # Held in this frame while the works run: the session keeps only weak
                # references to objects nobody changed.
                _held = await self._preload(session, keys) if self._preload and keys else None
                with session.no_autoflush:
                    results = [await pending.work(session) for pending in live]
        except Exception as exc:
            if is_unavailable(exc) or isinstance(exc, PoolTimeout):
                # No use running each alone: none would reach the database either.
                for pending in live:
                    _fail([pending.future], exc)
                return
            # One work refused, or the commit failed: nothing of the batch was kept.
            for pending in live:
                if not pending.future.done():  # a caller gone meanwhile is not run again
                    await self._alone(pending)
            return
        for pending, result in zip(live, results, strict=True):
            _resolve([pending.future], result)

    async def _alone(self, pending: _Pending[Any]) -> None:
        async def transaction() -> Any:
            async with self._sessions() as session, session.begin():
                return await pending.work(session)

        # Two instances' batches can lock the same rows in opposite orders: the database
        # picks a victim, which runs again.
        try:
            result = await retrying(transaction)
        except Exception as exc:
            _fail([pending.future], exc)
        else:
            _resolve([pending.future], result)


def _started(
    running: asyncio.Task[None] | None, run: Callable[[], Coroutine[Any, Any, None]]
) -> asyncio.Task[None]:
    """The runner task, started anew unless one is running. A runner ends once nothing is
    waiting (no await between its last look and its end), or was cancelled, possibly
    before it ever ran."""
    if running is not None and not running.done():
        return running
    return asyncio.create_task(run())


def _resolve(futures: list[asyncio.Future[Any]], value: Any) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


def _fail(futures: list[asyncio.Future[Any]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)


def _cancel(futures: list[asyncio.Future[Any]]) -> None:
    for future in futures:
        future.cancel()
