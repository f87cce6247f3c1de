"""A participant who keeps editing the panel through a server instance's death, the way the
call page does: Socket.IO reconnects by itself (backoff with jitter), the page sends `join`
again with the same page session, takes the fresh snapshot, then sends what it queued, in
order, each mutation with its original id, until each is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import socketio

from tests.support.panel_client import PanelClient


class ReconnectingEditor(PanelClient):
    def __init__(self, url: str, token: str, consult_id: str) -> None:
        super().__init__(url, token)
        self.consult_id = consult_id
        self.session = secrets.token_hex(16)
        self.joined = asyncio.Event()
        self.joins = 0
        self.acks: dict[str, dict[str, Any]] = {}
        self._sender: asyncio.Task[None] | None = None
        self._joining: asyncio.Task[None] | None = None
        self.client = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=0.5,
            reconnection_delay_max=5,
            randomization_factor=0.5,
            ssl_verify=False,
        )
        self.client.on("connect", self._on_connect)
        self.client.on("disconnect", self._on_disconnect)
        self.client.on("panel-event", self._on_event)

    async def start(self) -> None:
        await self.client.connect(
            f"{self.base_url}?consult={self.consult_id}",
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        self._sender = asyncio.create_task(self._send_queued())
        await asyncio.wait_for(self.joined.wait(), 10)

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        await self.client.disconnect()

    async def _on_connect(self) -> None:
        # A `call` cannot wait inside the connect handler: join from a task of its own.
        self._joining = asyncio.create_task(self._join())

    async def _on_disconnect(self, *args: Any) -> None:
        self.joined.clear()

    async def _join(self) -> None:
        ack = await self.client.call(
            "join", {"consent": {"accepted": True}, "session": self.session}, timeout=10
        )
        assert ack["ok"] and not ack["waiting"], ack
        self.sio = self.client  # what PanelClient.resync uses
        self.self_id = ack["self"]["id"]
        self.joins += 1
        self._replace(ack["panel"])
        self.joined.set()

    async def mutate(self, mutation: dict[str, Any]) -> None:
        """Queue; the sender delivers it once connected, again until acknowledged."""
        self.queue.append(mutation)

    async def _send_queued(self) -> None:
        while True:
            if not self.queue:
                await asyncio.sleep(0.02)
                continue
            await self.joined.wait()
            mutation = self.queue[0]
            try:
                result = await self.client.call("mutate", mutation, timeout=5)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                await asyncio.sleep(0.2)  # lost meanwhile: the same mutation again
                continue
            if not result.get("ok") and result.get("error", {}).get("code") in (
                "internal_error",
                "database_unavailable",
                "not_joined",
            ):
                await asyncio.sleep(0.2)  # not saved: send it again
                continue
            self.acks[mutation["mutation_id"]] = result
            self.queue.pop(0)

    async def drained(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while self.queue:
                await asyncio.sleep(0.05)
