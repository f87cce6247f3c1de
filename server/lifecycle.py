"""Ending a consult: the one path the REST API and the pharmacist's `end-consult` share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import consults
from models.database import retrying
from models.panel_writer import PanelWriter
from models.tables import Consult
from server.documents import documents_ready_data
from server.openapi import PREFIX as API_PREFIX
from server.webhooks import WebhookSender


class ConsultNotFound(Exception):
    pass


class ConsultEnding:
    """Ends consults: the database with its webhooks (outbox), then this instance's panel
    cache, then every connection on every instance (`notify`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float],
        panel_writer: PanelWriter,
        webhooks: WebhookSender,
        notify: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._panel_writer = panel_writer
        self._webhooks = webhooks
        self._notify = notify

    async def end(
        self, consult_id: str, *, reason: str, ended_by: str, clinic: str | None = None
    ) -> Consult:
        """End the consult (of `clinic`, when given) for everyone; returns it as ended.

        Raises ConsultNotFound, or consults.ConsultAlreadyEnded (nothing changes)."""
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        # A join that committed between the end's read and its write (SQLite takes no row
        # lock): the end reads the consult again.
        consult = await retrying(lambda: self._end_once(consult_id, reason, ended_by, clinic, now))
        # Other instances' caches of this panel are fenced off by the database: their next
        # write finds the consult ended (models/panel_store.py).
        self._panel_writer.forget(consult_id)
        await self._notify(consult_id, reason)
        return consult

    async def _end_once(
        self, consult_id: str, reason: str, ended_by: str, clinic: str | None, now: dt.datetime
    ) -> Consult:
        async with self._sessions() as session, session.begin():
            consult = await consults.get_consult(session, consult_id, clinic=clinic, lock=True)
            if consult is None:
                raise ConsultNotFound(consult_id)
            consults.end(consult, reason=reason, now=now)
            # In the transaction of the end: the outbox holds them exactly when it happened.
            await self._webhooks.emit(
                session, "consult.ended", consult_id, {"reason": reason, "ended_by": ended_by}
            )
            await self._webhooks.emit(
                session,
                "consult.documents_ready",
                consult_id,
                documents_ready_data(consult, API_PREFIX),
            )
        return consult
