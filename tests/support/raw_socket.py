"""A bare Engine.IO v4 / Socket.IO v5 client over one WebSocket, for sending what no
well-behaved client library would: reserved event names, unreadable JSON, bad headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class RawSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.closed = False
        # Socket.IO packets received, decoded: ("event", name, data) or ("ack", id, data).
        self.packets: list[tuple[str, Any, Any]] = []

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base_url: str) -> RawSocket:
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(url)
        opening = await ws.receive(timeout=5)
        assert isinstance(opening.data, str) and opening.data.startswith("0{"), opening
        return cls(ws)

    async def connect(self, token: str) -> dict[str, Any]:
        """Send the namespace CONNECT; the server's answer (`{"sid"}` or the error data)."""
        await self.send("40" + json.dumps({"token": token}))
        while True:
            frame = await self._frame(5)
            assert frame is not None, "closed while connecting"
            if frame.startswith("40"):
                return dict(json.loads(frame[2:]))
            if frame.startswith("44"):
                return {"error": json.loads(frame[2:])}

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def emit(self, event: str, *args: Any, ack_id: int | None = None) -> None:
        header = "42" if ack_id is None else f"42{ack_id}"
        await self.send(header + json.dumps([event, *args]))

    async def call(self, event: str, *args: Any, ack_id: int = 1) -> Any:
        await self.emit(event, *args, ack_id=ack_id)
        return await self.ack(ack_id)

    async def ack(self, ack_id: int, timeout: float = 5) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for index, (kind, key, data) in enumerate(self.packets):
                    if kind == "ack" and key == ack_id:
                        del self.packets[index]
                        return data
                await self._read_one(timeout)

    async def event(self, name: str, timeout: float = 5) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for index, (kind, key, data) in enumerate(self.packets):
                    if kind == "event" and key == name:
                        del self.packets[index]
                        return data
                await self._read_one(timeout)

    async def wait_closed(self, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not self.closed:
                await self._read_one(timeout)

    async def drain(self, seconds: float) -> None:
        """Read whatever arrives for `seconds` (the connection may close meanwhile)."""
        try:
            async with asyncio.timeout(seconds):
                while not self.closed:
                    await self._read_one(seconds)
        except TimeoutError:
            pass

    def names(self) -> list[str]:
        return [key for kind, key, _ in self.packets if kind == "event"]

    async def close(self) -> None:
        await self.ws.close()

    async def _read_one(self, timeout: float) -> None:
        frame = await self._frame(timeout)
        if frame is None or not frame.startswith("4"):
            return
        body = frame[1:]
        if body.startswith("2"):
            name, *rest = json.loads(body[1:])
            self.packets.append(("event", name, rest[0] if rest else None))
        elif body.startswith("3"):
            digits = len(body[1:]) - len(body[1:].lstrip("0123456789"))
            data = json.loads(body[1 + digits :])
            self.packets.append(("ack", int(body[1 : 1 + digits]), data[0] if data else None))

    async def _frame(self, timeout: float) -> str | None:
        """The next text frame, answering pings; None once the connection has closed."""
        if self.closed:
            raise ConnectionError("the server closed the connection")
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                self.closed = True
                return None
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame: str = message.data
            if frame == "2":
                await self.ws.send_str("3")
                continue
            if frame == "1":  # Engine.IO CLOSE
                self.closed = True
                return None
            return frame
