"""Signed lifecycle webhooks to the clinic (docs/api.md, "Webhooks").

Each event is POSTed as JSON with `X-MTM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the shared secret>`, and retried with exponential backoff on a network
error or a non-2xx answer. Deliveries are held in memory: events still being retried when
the process stops are lost (logged).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from server.config import WebhookSettings

log = logging.getLogger(__name__)


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
    def __init__(self, settings: WebhookSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._sequence = 0

    @property
    def enabled(self) -> bool:
        return self.settings.url is not None

    async def start(self) -> None:
        if self.enabled:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self._http = aiohttp.ClientSession(timeout=timeout)

    async def stop(self) -> None:
        for task in self._pending:
            task.cancel()
        if self._pending:
            log.warning("%d webhook deliveries were still pending at shutdown", len(self._pending))
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def emit(self, event_type: str, consult_id: str, data: dict[str, Any] | None = None) -> None:
        """Queue one event for delivery; returns at once."""
        if self._http is None:
            return
        self._sequence += 1
        event = {
            "id": f"evt_{secrets.token_urlsafe(12)}",
            "type": event_type,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            "sequence": self._sequence,
            "consult_id": consult_id,
            "data": data or {},
        }
        task = asyncio.create_task(self._deliver(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, event: dict[str, Any]) -> None:
        assert self._http is not None and self.settings.url and self.settings.secret
        body = json.dumps(event, separators=(",", ":")).encode()
        delay = self.settings.initial_backoff_seconds
        for attempt in range(1, self.settings.max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "mtm-consult-webhooks",
                "X-MTM-Event": event["type"],
                "X-MTM-Delivery": event["id"],
                "X-MTM-Attempt": str(attempt),
                "X-MTM-Signature": signature(self.settings.secret, int(self._clock()), body),
            }
            try:
                async with self._http.post(self.settings.url, data=body, headers=headers) as answer:
                    if 200 <= answer.status < 300:
                        return
                    problem = f"HTTP {answer.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            if attempt == self.settings.max_attempts:
                log.error(
                    "webhook %s (%s) not delivered after %d attempts: %s",
                    event["id"],
                    event["type"],
                    attempt,
                    problem,
                )
                return
            log.warning("webhook %s attempt %d failed (%s)", event["id"], attempt, problem)
            await asyncio.sleep(delay)
            delay *= 2
