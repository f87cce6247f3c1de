"""The server's side of the pre-join network check.

The browser offers a peer connection with two data channels, using the same ICE servers
(and so the same TURN relay) as the call:

- `probe-ping` (unordered, no retransmits): each text message is echoed at once. The
  browser sends numbered, timestamped pings and computes round-trip time and loss.
- `probe-bulk` (reliable): the browser sends binary data as fast as it can; on the text
  message `done` the server answers `{"bytes": n, "seconds": s}`, the upload the server
  saw, from which the browser computes the bitrate.

Each probe closes itself after `lifetime_seconds`, and at most `max_concurrent` run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from media.ice import rtc_configuration
from models.errors import Refused

log = logging.getLogger(__name__)


class ProbeRefused(Refused):
    """The probe offer is refused (busy, or not a usable offer)."""


class _BulkCounter:
    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            now = time.monotonic()
            self.first = self.first if self.first is not None else now
            self.last = now
            self.bytes += len(message)
        elif message == "done":
            seconds = (self.last - self.first) if self.first and self.last else 0.0
            self.channel.send(json.dumps({"bytes": self.bytes, "seconds": round(seconds, 4)}))


class ProbeService:
    def __init__(self, *, max_concurrent: int, lifetime_seconds: float = 30.0) -> None:
        self.max_concurrent = max_concurrent
        self.lifetime_seconds = lifetime_seconds
        self._peers: set[RTCPeerConnection] = set()
        self._timers: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._peers)

    async def answer(self, offer: Mapping[str, Any], ice: Mapping[str, Any]) -> dict[str, str]:
        """Answer a browser's probe offer; the answer carries all gathered candidates."""
        if "m=application" not in str(offer.get("sdp", "")):
            raise ProbeRefused("invalid_payload", "The offer has no data channel to probe with.")
        if self.active >= self.max_concurrent:
            raise ProbeRefused("probe_busy", "The network check is busy; try again shortly.")
        peer = RTCPeerConnection(rtc_configuration(ice))
        self._peers.add(peer)

        @peer.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == "probe-ping":
                channel.on("message", channel.send)
            elif channel.label == "probe-bulk":
                counter = _BulkCounter(channel)
                channel.on("message", counter.on_message)

        @peer.on("connectionstatechange")
        async def on_state() -> None:
            if peer.connectionState in ("failed", "closed"):
                await self._close(peer)

        try:
            await peer.setRemoteDescription(
                RTCSessionDescription(sdp=str(offer["sdp"]), type=str(offer["type"]))
            )
            await peer.setLocalDescription(await peer.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            await self._close(peer)
            raise ProbeRefused("invalid_payload", f"The offer was not usable: {exc}") from None
        timer = asyncio.create_task(self._expire(peer))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
        local = peer.localDescription
        return {"type": local.type, "sdp": local.sdp}

    async def _expire(self, peer: RTCPeerConnection) -> None:
        await asyncio.sleep(self.lifetime_seconds)
        await self._close(peer)

    async def _close(self, peer: RTCPeerConnection) -> None:
        if peer in self._peers:
            self._peers.discard(peer)
            with contextlib.suppress(Exception):
                await peer.close()

    async def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        for peer in list(self._peers):
            await self._close(peer)
