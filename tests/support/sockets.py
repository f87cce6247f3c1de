"""A python-socketio client that records what the server sends, for signaling tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio

SERVER_EVENTS = (
    "participant-joined",
    "participant-left",
    "participant-media",
    "chat-message",
    "visit-started",
    "signal",
    "replaced",
    "consult-ended",
    "error",
    "panel-event",
    "waiting-room",
    "admitted",
    "denied",
    "removed",
)


class RecordingClient:
    def __init__(self, *, ssl_verify: bool = True) -> None:
        # ssl_verify=False: through the tests' nginx, whose certificate is self-signed.
        self.sio = socketio.AsyncClient(reconnection=False, ssl_verify=ssl_verify)
        self.events: list[tuple[str, Any]] = []
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Condition()
        for event in SERVER_EVENTS:
            self.sio.on(event, self._recorder(event))
        self.sio.on("disconnect", self._on_disconnect)
        self.connect_error: Any = None
        self.sio.on("connect_error", self._on_connect_error)

    def _recorder(self, event: str) -> Any:
        async def record(data: Any = None) -> None:
            async with self._changed:
                self.events.append((event, data))
                self._changed.notify_all()

        return record

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def _on_connect_error(self, data: Any = None) -> None:
        self.connect_error = data

    async def connect(
        self, base_url: str, token: str | None, *, consult: str | None = None
    ) -> None:
        """`consult`: in the URL's query, as the call page puts it (a load balancer routes
        by it, docs/deploy.md)."""
        auth = {} if token is None else {"token": token}
        url = base_url if consult is None else f"{base_url}?consult={consult}"
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)

    async def join(
        self,
        display_name: str | None = None,
        *,
        consent: bool = True,
        media: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"consent": {"accepted": True}} if consent else {}
        if display_name is not None:
            payload["display_name"] = display_name
        if media is not None:
            payload["media"] = media
        ack: dict[str, Any] = await self.sio.call("join", payload, timeout=5)
        return ack

    async def wait_for(self, event: str, timeout: float = 5.0) -> Any:
        """The first recorded `event` not yet taken; removes it from the record."""

        async def first() -> Any:
            async with self._changed:
                while True:
                    for index, (name, data) in enumerate(self.events):
                        if name == event:
                            del self.events[index]
                            return data
                    await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@asynccontextmanager
async def joined(
    base_url: str,
    token: str,
    display_name: str | None = None,
    *,
    consult: str | None = None,
    ssl_verify: bool = True,
) -> AsyncIterator[tuple[RecordingClient, dict[str, Any]]]:
    client = RecordingClient(ssl_verify=ssl_verify)
    await client.connect(base_url, token, consult=consult)
    try:
        ack = await client.join(display_name)
        assert ack["ok"], ack
        yield client, ack
    finally:
        if client.sio.connected:
            await client.sio.disconnect()
