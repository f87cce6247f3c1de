"""The webhook outbox in the database: add an event in the caller's transaction, claim the
events that are due, record each attempt's outcome. Sending is server/webhooks.py's.

Sequence: each consult counts its events in `consult.webhook_seq`, moved in the transaction
that adds the event, so sequences are gap-free per consult and in commit order (the update
locks the consult row until that transaction ends).

Claiming (Postgres): `SELECT ... FOR UPDATE SKIP LOCKED` and, in the same transaction, the
claimed rows' `next_attempt_at` moves to the end of a lease. Two instances never claim one
event at once; an instance that dies mid-attempt leaves the event to be claimed again when
its lease ends. An event is claimed only when no earlier event of its consult is pending,
so each consult's events are sent one at a time, in sequence order. SQLite has no row locks
(and no `FOR UPDATE`): it serves one process, whose one delivery task claims.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models.tables import Consult, WebhookOutbox, WebhookState


@dataclass(frozen=True)
class OutboxEvent:
    """One claimed event, as the delivery task sends it."""

    id: str
    consult_id: str
    sequence: int
    event_type: str
    created_at: dt.datetime
    data: dict[str, Any]
    attempt: int  # this attempt's number, from 1


async def add(
    session: AsyncSession,
    *,
    event_id: str,
    consult_id: str,
    event_type: str,
    data: dict[str, Any],
    created_at: dt.datetime,
    due_at: dt.datetime,
) -> int:
    """Add one event in the caller's transaction; returns its sequence in the consult."""
    await session.flush()  # the consult row, when it is new in this transaction
    consult = _table(Consult)
    sequence = (
        await session.execute(
            update(consult)
            .where(consult.c.id == consult_id)
            .values(webhook_seq=consult.c.webhook_seq + 1)
            .returning(consult.c.webhook_seq)
        )
    ).scalar_one()
    await session.execute(
        insert(_table(WebhookOutbox)).values(
            id=event_id,
            consult_id=consult_id,
            sequence=sequence,
            event_type=event_type,
            created_at=created_at,
            data=data,
            state=WebhookState.PENDING.value,
            attempts=0,
            next_attempt_at=due_at,
        )
    )
    return int(sequence)


async def claim(
    session: AsyncSession, *, now: dt.datetime, lease_until: dt.datetime, limit: int
) -> list[OutboxEvent]:
    """Claim up to `limit` due events (at most one per consult) in the caller's transaction:
    each one's attempt count moves on and it is not due again before `lease_until`."""
    outbox = WebhookOutbox
    rows = (
        await session.execute(
            select(outbox)
            .where(_next_of_its_consult(), outbox.next_attempt_at <= now)
            .order_by(outbox.next_attempt_at, outbox.consult_id, outbox.sequence)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
            .execution_options(populate_existing=True)
        )
    ).scalars()
    claimed = [
        OutboxEvent(
            id=row.id,
            consult_id=row.consult_id,
            sequence=row.sequence,
            event_type=row.event_type,
            created_at=row.created_at,
            data=dict(row.data),
            attempt=row.attempts + 1,
        )
        for row in rows
    ]
    if claimed:
        table = _table(WebhookOutbox)
        await session.execute(
            update(table)
            .where(table.c.id.in_([event.id for event in claimed]))
            .values(attempts=table.c.attempts + 1, next_attempt_at=lease_until)
        )
    return claimed


async def delivered(session: AsyncSession, event_id: str, *, now: dt.datetime) -> None:
    table = _table(WebhookOutbox)
    await session.execute(
        update(table)
        .where(table.c.id == event_id)
        .values(state=WebhookState.DELIVERED.value, delivered_at=now, last_error=None)
    )


async def failed(
    session: AsyncSession, event_id: str, *, error: str, retry_at: dt.datetime | None
) -> None:
    """An attempt failed: try again at `retry_at`, or give up (None)."""
    table = _table(WebhookOutbox)
    values: dict[str, Any] = {"last_error": error[:200]}
    if retry_at is None:
        values["state"] = WebhookState.FAILED.value
    else:
        values["next_attempt_at"] = retry_at
    await session.execute(update(table).where(table.c.id == event_id).values(**values))


async def next_due(session: AsyncSession) -> dt.datetime | None:
    """When the next claimable event is due (to sleep until then)."""
    query = (
        select(WebhookOutbox.next_attempt_at)
        .where(_next_of_its_consult())
        .order_by(WebhookOutbox.next_attempt_at)
        .limit(1)
    )
    return (await session.execute(query)).scalar()


def _next_of_its_consult() -> ColumnElement[bool]:
    """Pending, and no earlier event of its consult is pending (one at a time, in order)."""
    earlier = aliased(WebhookOutbox)
    return and_(
        WebhookOutbox.state == WebhookState.PENDING.value,
        ~exists().where(
            earlier.consult_id == WebhookOutbox.consult_id,
            earlier.state == WebhookState.PENDING.value,
            earlier.sequence < WebhookOutbox.sequence,
        ),
    )


def _table(model: type[Consult] | type[WebhookOutbox]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table
