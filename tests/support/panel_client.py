"""A protocol-level panel client: it sends the raw mutations a test writes (with the
mutation ids the test names), applies events in seq order, resyncs on a gap or reconnect
and keeps a mutation answered `database_unavailable` queued, after docs/protocol.md.

The browser's own store is what the convergence, audience and database-outage tests drive
(tests/support/js_panel_client.py runs web/static/panel-store.js in Node). This client stays
for the server-side tests that need a socket of their own under the panel (socket limits,
Redis faults, and tests/support/reconnecting.py's reconnect through an instance's death)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

# Refusals that mean "not now" rather than "no": the mutation stays queued and is retried.
RETRY_LATER = frozenset({"database_unavailable"})


class PanelClient:
    def __init__(self, base_url: str, token: str, *, retry_seconds: float = 0.5) -> None:
        self.base_url = base_url
        self.token = token
        self.sio: socketio.AsyncClient | None = None
        self.seq = 0
        self.entities: dict[str, dict[str, Any]] = {}
        self.queue: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        # Answers that kept a mutation queued: (mutation_id, error code), in order.
        self.not_saved: list[tuple[str, str]] = []
        self.retry_seconds = retry_seconds
        self._retry: asyncio.Task[None] | None = None
        self.self_id = ""
        self._resync_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._advanced = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.sio is not None and self.sio.connected

    async def connect(self) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("panel-event", self._on_event)
        await sio.connect(
            self.base_url, auth={"token": self.token}, transports=["websocket"], wait_timeout=5
        )
        ack = await sio.call("join", {"consent": {"accepted": True}}, timeout=10)
        assert ack["ok"], ack
        self.sio = sio
        self.self_id = ack["self"]["id"]
        self._replace(ack["panel"])
        await self.flush()

    async def disconnect(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.sio is not None:
            await self.sio.disconnect()
            self.sio = None

    async def mutate(self, mutation: dict[str, Any]) -> None:
        """Send now if connected, else queue (as the browser keeps it in sessionStorage)."""
        self.queue.append(mutation)
        if self.connected:
            await self.flush()

    async def flush(self) -> None:
        async with self._flush_lock:  # one mutation in flight, as the browser sends them
            await self._flush()

    async def _flush(self) -> None:
        while self.queue and self.connected:
            mutation = self.queue[0]
            assert self.sio is not None
            result = await self.sio.call("mutate", mutation, timeout=10)
            if not result["ok"] and result["error"]["code"] in RETRY_LATER:
                self.not_saved.append((mutation["mutation_id"], result["error"]["code"]))
                if self._retry is None or self._retry.done():
                    self._retry = asyncio.create_task(self._flush_later())
                return
            self.queue.pop(0)
            self.sent.append(mutation)
            self.results.setdefault(mutation["mutation_id"], result)
            if result.get("entity") and result.get("seq", 0) == self.seq + 1:
                self._apply(result["event"], result["entity"])
                for effect in result.get("effects") or []:
                    if effect["event"]["seq"] == self.seq + 1:
                        self._apply(effect["event"], effect["entity"])

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.retry_seconds)
        self._retry = None  # a refusal now schedules the next try
        await self.flush()

    async def wait_until_sent(self, timeout: float = 30.0) -> None:
        """Until the queue is empty: every mutation has its (final) answer."""
        async with asyncio.timeout(timeout):
            while self.queue:
                await asyncio.sleep(0.05)

    async def resync(self) -> None:
        async with self._resync_lock:
            assert self.sio is not None
            ack = await self.sio.call("panel-sync", {"since": self.seq}, timeout=10)
            assert ack["ok"], ack
            if ack["panel"]["seq"] >= self.seq:
                self._replace(ack["panel"])

    async def _on_event(self, data: dict[str, Any]) -> None:
        seq = data["event"]["seq"]
        if seq <= self.seq:
            return
        if seq == self.seq + 1:
            self._apply(data["event"], data["entity"])
        else:
            await self.resync()

    def _apply(self, event: dict[str, Any], entity: dict[str, Any] | None) -> None:
        """One event in seq order: an entity replaces ours, a "remove" (the entity was made
        care-team-only) deletes it, a "hidden" one only moves the seq."""
        if entity is not None:
            self.entities[entity["id"]] = entity
        elif event["op"] == "remove":
            self.entities.pop(event["entity_id"], None)
        self.seq = event["seq"]
        self._advanced.set()

    async def wait_for_seq(self, seq: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.seq < seq:
                self._advanced.clear()
                await self._advanced.wait()

    def _replace(self, panel: dict[str, Any]) -> None:
        self.entities = {entity["id"]: entity for entity in panel["entities"]}
        self.seq = panel["seq"]
        self._advanced.set()

    def view(self) -> dict[str, Any]:
        return {"seq": self.seq, "entities": dict(sorted(self.entities.items()))}
