"""Applies panel mutations with group commit: many edits, one transaction.

Edits queue here from every connection. One task takes whatever has queued, applies each
mutation to its consult's panel held in memory (loaded once from the database), writes all
their events, entities and receipts with a few bulk statements, commits once, and only
then resolves each edit's result, so an acknowledgement still means "committed". While one
batch commits, the next one gathers.

The in-memory state is a cache of what is committed. If a batch fails (another process
wrote one of its consults, a consult ended, a database error), every consult in it is
dropped from the cache and each of its mutations is retried alone on fresh state. A
deadlock or serialization failure is retried, never answered as a failed edit.

While the database cannot be reached, every mutation is answered `database_unavailable`
("not saved yet"): nothing is acknowledged that was not committed, and the client sends
the same mutation again later (its id makes the repeat apply once, even if the commit that
lost its connection did happen).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models import panel_store
from models.background import stop_task
from models.database import DatabaseUnavailable, is_retryable, is_unavailable
from models.mutations import DEFAULT_MAX_ENTITIES, Actor, Changes, MutationError, PanelState, apply

log = logging.getLogger(__name__)


class BatchObserver(Protocol):
    """Told the size of each batch and how long its commit took (the server's metrics)."""

    def batch(self, size: int) -> None: ...

    def committed(self, seconds: float) -> None: ...


class _Unobserved:
    def batch(self, size: int) -> None:
        return None

    def committed(self, seconds: float) -> None:
        return None


@dataclass
class _Pending:
    consult_id: str
    actor: Actor
    raw: Any
    result: asyncio.Future[dict[str, Any]]


class PanelWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float],
        *,
        max_batch: int = 500,
        cached_consults: int = 5000,
        observer: BatchObserver | None = None,
        max_entities: int = DEFAULT_MAX_ENTITIES,
    ) -> None:
        self._max_entities = max_entities
        self._observer = observer if observer is not None else _Unobserved()
        self._engine = engine
        self._sessions = sessions
        self._clock = clock
        self._max_batch = max_batch
        self._cached_consults = cached_consults
        self._cache: OrderedDict[str, PanelState] = OrderedDict()
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="panel-writer")

    @property
    def running(self) -> bool:
        """Started and not stopped or dead (readiness: without it no edit is saved)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        await stop_task(self._task)
        for pending in self._queue:
            if not pending.result.done():
                pending.result.set_exception(RuntimeError("the server is stopping"))

    async def submit(self, consult_id: str, actor: Actor, raw: Any) -> dict[str, Any]:
        """Apply one mutation; returns its result once committed (or refused)."""
        if not self.running:
            raise RuntimeError("the panel writer is not running")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(consult_id, actor, raw, future))
        self._wake.set()
        return await future

    def forget(self, consult_id: str) -> None:
        """Drop a consult's cached panel (it ended, or was changed elsewhere)."""
        self._cache.pop(consult_id, None)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    await self._process(batch)
                except Exception as exc:  # never let one batch stop the writer
                    if is_unavailable(exc):
                        # Expected during an outage: no traceback (its text is of no use
                        # and a long log of them hides the first one).
                        log.warning(
                            "panel batch of %d not saved: database unavailable (%s)",
                            len(batch),
                            type(exc).__name__,
                        )
                        answer = DatabaseUnavailable().result()
                        for pending in batch:
                            if not pending.result.done():
                                pending.result.set_result(answer)
                        continue
                    log.exception("panel batch failed")
                    for pending in batch:
                        if not pending.result.done():
                            pending.result.set_exception(exc)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def _process(self, batch: list[_Pending]) -> None:
        try:
            await self._apply_and_commit(batch)
        except BaseException:
            # Whatever failed (a database error while loading another consult of the batch,
            # a crash in persist), the cache may hold mutations that were never committed:
            # drop every consult of the batch so the next edit reads the database again.
            for pending in batch:
                self.forget(pending.consult_id)
            raise

    async def _apply_and_commit(self, batch: list[_Pending]) -> None:
        now = self._now()
        results: list[tuple[_Pending, dict[str, Any]]] = []
        touched: dict[str, tuple[PanelState, int, Changes]] = {}
        async with self._sessions() as session:
            for pending in batch:
                try:
                    state = await self._state(session, pending.consult_id)
                except MutationError as refused:
                    results.append((pending, refused.result()))
                    continue
                if pending.consult_id not in touched:
                    touched[pending.consult_id] = (state, state.last_seq, Changes())
                try:
                    result, changes = apply(state, pending.actor, pending.raw, now=now)
                except MutationError as refused:
                    results.append((pending, refused.result()))
                    continue
                touched[pending.consult_id][2].extend(changes)
                results.append((pending, result))
            if session.in_transaction():
                await session.rollback()  # end the read transaction of the loads
        self._observer.batch(len(batch))
        commit_started = time.perf_counter()
        try:
            # A plain connection, not the ORM session: a batch is one statement (Postgres)
            # or a handful of Core executemany statements, and the session's machinery
            # would cost more than they.
            await panel_store.write_batch(self._engine, touched.values(), now=now)
            self._observer.committed(time.perf_counter() - commit_started)
        except (IntegrityError, DBAPIError, panel_store.StaleState) as exc:
            if is_unavailable(exc):
                raise  # retrying one by one cannot help; _run answers "not saved yet"
            log.warning(
                "panel batch of %d conflicted (%s); retrying one by one",
                len(batch),
                type(exc).__name__,
            )
            for consult_id in touched:
                self.forget(consult_id)
            for pending in batch:
                await self._one(pending)
            return
        for pending, result in results:
            if not pending.result.done():
                pending.result.set_result(result)

    async def _state(self, session: AsyncSession, consult_id: str) -> PanelState:
        state = self._cache.get(consult_id)
        if state is None:
            state = await panel_store.load(session, consult_id, max_entities=self._max_entities)
            self._cache[consult_id] = state
            while len(self._cache) > self._cached_consults:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(consult_id)
        return state

    async def _one(self, pending: _Pending, attempts: int = 6) -> None:
        """The slow path: fresh state under lock, one mutation, one transaction.

        A conflict that only says "try again" (another writer's key, a deadlock or
        serialization failure the database broke) is retried after a short jittered pause;
        the edit is never answered with it."""
        for attempt in range(attempts):
            if attempt:
                # Short, growing and jittered: two writers that just collided should not
                # collide again at the same instant.
                await asyncio.sleep(random.uniform(0.5, 1.0) * 0.01 * 2**attempt)
            try:
                async with self._sessions() as session, session.begin():
                    result = await panel_store.apply_mutation(
                        session,
                        pending.consult_id,
                        pending.actor,
                        pending.raw,
                        now=self._now(),
                        max_entities=self._max_entities,
                    )
            except MutationError as refused:
                result = refused.result()
            except (DBAPIError, panel_store.StaleState) as exc:
                if not worth_retrying(exc) or attempt + 1 == attempts:
                    raise
                continue
            if not pending.result.done():
                pending.result.set_result(result)
            return


def worth_retrying(exc: BaseException) -> bool:
    """Whether `exc` is a lost race (run the transaction again), not a failure: another
    writer's key or fence, a deadlock victim, a serialization failure."""
    return isinstance(exc, IntegrityError | panel_store.StaleState) or is_retryable(exc)
