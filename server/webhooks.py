"""Signed lifecycle webhooks to the clinic (docs/api.md, "Webhooks").

`emit` writes the event to the outbox table in the caller's transaction, so an event exists
exactly when the change it reports was committed. A delivery task sends due events: each
is POSTed as JSON with `X-MTM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the shared secret>`, and retried after a network error or a non-2xx
answer with exponential backoff and jitter, up to `webhooks.max_attempts`. Pending events
survive a restart or a crash; several instances share the outbox, and each event is sent
by one of them at a time (models/webhook_outbox.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import webhook_outbox
from models.background import stop_task
from models.database import is_unavailable
from models.webhook_outbox import OutboxEvent
from server.config import WebhookSettings

log = logging.getLogger(__name__)

# How often the delivery task looks for due events it was not woken for (retries, events
# another instance wrote, events left by a process that died).
POLL_SECONDS = 1.0
# Events sent at once, at most one per consult.
BATCH = 16
# An attempt's claim lasts this much longer than its timeout: a process that dies mid-
# attempt leaves the event to another (or its restarted self) after that.
LEASE_MARGIN_SECONDS = 5.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-MTM-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance_seconds: float = 300
) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookSender:
    """The outbox's two ends: `emit` (in a transaction) and the delivery task."""

    def __init__(
        self,
        settings: WebhookSettings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float] = time.time,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        # `clock` is the application's (created_at, the signature's timestamp: what the
        # receiver checks); delivery times are the wall clock's, valid across processes.
        self._clock = clock
        self._wall_clock = wall_clock
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.settings.url is not None

    @property
    def running(self) -> bool:
        """The delivery task runs (readiness, when webhooks are on)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.enabled:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self._http = aiohttp.ClientSession(timeout=timeout)
            self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop sending; events not yet delivered stay in the outbox for the next start."""
        await stop_task(self._task)
        if self._http is not None:
            await self._http.close()

    async def emit(
        self,
        session: AsyncSession,
        event_type: str,
        consult_id: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Add one event to the outbox in `session`'s transaction; it is sent once that
        transaction commits (and never if it rolls back)."""
        if not self.enabled:
            return
        await webhook_outbox.add(
            session,
            event_id=f"evt_{secrets.token_urlsafe(12)}",
            consult_id=consult_id,
            event_type=event_type,
            data=data or {},
            created_at=dt.datetime.fromtimestamp(self._clock(), dt.UTC),
            due_at=self._wall_now(),
        )
        orm_event.listen(session.sync_session, "after_commit", self._on_commit, once=True)

    def _on_commit(self, _session: object) -> None:
        self._wake.set()

    def _wall_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._wall_clock(), dt.UTC)

    async def _run(self) -> None:
        while True:
            sleep = POLL_SECONDS
            # Cleared before looking, so that a commit during this round wakes the next.
            self._wake.clear()
            try:
                if await self._deliver_due():
                    continue  # there may be more, or the next of a consult just delivered
                async with self._sessions() as session:
                    due = await webhook_outbox.next_due(session)
                if due is not None:
                    sleep = (due - self._wall_now()).total_seconds()
            except Exception as exc:  # the task must outlive any fault
                if is_unavailable(exc):
                    log.warning(
                        "webhook delivery paused: database unavailable (%s)", type(exc).__name__
                    )
                else:
                    log.exception("webhook delivery round failed")
            try:
                async with asyncio.timeout(min(POLL_SECONDS, max(0.01, sleep))):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _deliver_due(self) -> bool:
        """Claim what is due and send it; whether anything was claimed."""
        now = self._wall_now()
        lease = dt.timedelta(seconds=self.settings.timeout_seconds + LEASE_MARGIN_SECONDS)
        async with self._sessions() as session, session.begin():
            claimed = await webhook_outbox.claim(
                session, now=now, lease_until=now + lease, limit=BATCH
            )
        await asyncio.gather(*(self._attempt(event) for event in claimed))
        return bool(claimed)

    async def _attempt(self, event: OutboxEvent) -> None:
        problem = await self._post(event)
        try:
            async with self._sessions() as session, session.begin():
                if problem is None:
                    await webhook_outbox.delivered(session, event.id, now=self._wall_now())
                    return
                retry_at = None
                if event.attempt < self.settings.max_attempts:
                    retry_at = self._wall_now() + dt.timedelta(seconds=self.backoff(event.attempt))
                await webhook_outbox.failed(session, event.id, error=problem, retry_at=retry_at)
        except Exception as exc:
            # Not recorded: the claim's lease ends and the event is sent again (a receiver
            # that got it drops the repeat by its X-MTM-Delivery id).
            log.warning(
                "webhook %s attempt %d: outcome not recorded (%s)",
                event.id,
                event.attempt,
                type(exc).__name__,
            )
            return
        if retry_at is None:
            log.error(
                "webhook %s (%s) not delivered after %d attempts: %s",
                event.id,
                event.event_type,
                event.attempt,
                problem,
            )
        else:
            log.warning("webhook %s attempt %d failed (%s)", event.id, event.attempt, problem)

    def backoff(self, attempt: int) -> float:
        """Seconds before the attempt after `attempt`: doubling from initial_backoff_seconds,
        capped at max_backoff_seconds, and "equal jitter" (half fixed, half random) so that
        receivers coming back are not hit by every instance at the same instant."""
        ceiling = min(
            self.settings.max_backoff_seconds,
            self.settings.initial_backoff_seconds * 2.0 ** (attempt - 1),
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _post(self, event: OutboxEvent) -> str | None:
        """One attempt; None when the receiver accepted it, else what went wrong."""
        assert self._http is not None and self.settings.url and self.settings.secret
        body = json.dumps(payload(event), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mtm-consult-webhooks",
            "X-MTM-Event": event.event_type,
            "X-MTM-Delivery": event.id,
            "X-MTM-Attempt": str(event.attempt),
            "X-MTM-Signature": signature(self.settings.secret, int(self._clock()), body),
        }
        try:
            async with self._http.post(self.settings.url, data=body, headers=headers) as answer:
                if 200 <= answer.status < 300:
                    return None
                return f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return type(exc).__name__


def payload(event: OutboxEvent) -> dict[str, Any]:
    """The JSON body, the same on every attempt."""
    return {
        "id": event.id,
        "type": event.event_type,
        "created_at": event.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sequence": event.sequence,
        "consult_id": event.consult_id,
        "data": event.data,
    }
