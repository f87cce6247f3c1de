"""What arrives from the wire, read strictly before python-socketio dispatches it.

python-socketio hands any event name a client sends to the handlers, `connect` and
`disconnect` included, and meets a packet it cannot read (NaN, a lone surrogate, JSON
nested past orjson's limit, a malformed header) with a traceback in the log and no answer.
`GuardedServer` reads every packet first and answers what it refuses as
docs/protocol.md ("Hostile input and limits") says:

- a packet that cannot be read, or that breaks the protocol: an `error` event with code
  `malformed_packet`, then the connection is closed (as the reference Socket.IO server
  does on a parse error);
- a reserved event name (`connect`, `disconnect`, ...): `reserved_event`, never dispatched;
- an event beyond the connection's token bucket: `rate_limited` with `retry_after`, and
  nothing more is read from that connection until a token is back.

Each is logged as one line without the packet's content (it may hold health data), and
those lines are rate-limited for the whole process so a client cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import engineio
import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as sio_packet

log = logging.getLogger(__name__)

# Names Socket.IO keeps for itself (python-socketio's and the JavaScript library's): a
# client may never trigger them with an EVENT packet.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

MALFORMED_MESSAGE = "The server could not read this packet; the connection is closed."
RESERVED_MESSAGE = "This event name is reserved by Socket.IO and cannot be sent."
RATE_LIMITED_MESSAGE = "Too many events from this connection; wait {seconds} s and send again."
EXTRA_ARGUMENTS_MESSAGE = "Send one payload per event (an object), not several arguments."


class MalformedPacket(Exception):
    """A packet that is not Socket.IO v5 as this server speaks it; `reason` is fixed text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ignore(limit: str) -> None:
    """No one is counting."""


@dataclass(frozen=True)
class WireLimits:
    events_per_second: float
    event_burst: int
    # Told the name of each limit that refuses something (the server counts them in metrics).
    on_limit: Callable[[str], None] = _ignore


class LogLimiter:
    """At most `lines` log lines per `period` seconds for the whole process.

    Lines over the budget are counted and the next line that is let through says how many
    were dropped, so an operator still sees that something is going on.
    """

    def __init__(
        self, lines: int = 20, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bucket = TokenBucket(rate=lines / period, burst=lines, clock=clock)
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """(whether to log now, how many lines were suppressed since the last one)."""
        if self._bucket.take() > 0:
            self.suppressed += 1
            return False, 0
        suppressed, self.suppressed = self.suppressed, 0
        return True, suppressed


@dataclass
class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; `take` spends one if there is one."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = self.clock()

    def take(self) -> float:
        """0 if a token was spent; otherwise the seconds until one will be there."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


_limiter = LogLimiter()


def log_limited(logger: logging.Logger, level: int, message: str, *args: Any) -> None:
    """Log one line through the process-wide budget for lines a client can provoke."""
    allowed, suppressed = _limiter.allow()
    if not allowed:
        return
    if suppressed:
        message += " (%d similar lines suppressed)"
        args = (*args, suppressed)
    logger.log(level, message, *args)


class _NoTracebacks(logging.Filter):
    """For python-socketio's and python-engineio's own loggers: what they log about a
    client's bad input becomes one line (the exception's type, never its text or a
    traceback), through the process-wide budget."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info[0] else "error"
            record.msg = f"{record.getMessage()} ({kind})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        allowed, suppressed = _limiter.allow()
        if allowed and suppressed:
            record.msg = f"{record.getMessage()} ({suppressed} similar lines suppressed)"
            record.args = None
        return allowed


def library_logger(name: str) -> logging.Logger:
    """A logger for python-socketio or python-engineio: warnings and up, one line each,
    through the application's handlers (never a stream handler of the library's own)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    if not any(isinstance(existing, _NoTracebacks) for existing in logger.filters):
        logger.addFilter(_NoTracebacks())
    return logger


# An Engine.IO v4 text packet over WebSocket starts with its type, 0-6. ("b" + base64 is
# for long-polling only; over WebSocket binary data travels in binary frames.)
_ENGINEIO_TEXT = re.compile(r"[0-6]")


class _CheckedWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp WebSocket wrapper, closing the connection on a text frame
    that is not an Engine.IO packet (engine.io would raise on it outside any handler and
    aiohttp would log the traceback)."""

    async def wait(self) -> str | bytes:
        data: str | bytes = await super().wait()
        if isinstance(data, str) and not _ENGINEIO_TEXT.match(data):
            log_limited(log, logging.WARNING, "closed a connection: a frame that is not Engine.IO")
            raise OSError("not an Engine.IO packet")  # the transport closes the socket
        return data


class _GuardedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._async: dict[str, Any] = {**self._async, "websocket": _CheckedWebSocket}

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await super().handle_request(request)
        except Exception as exc:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                raise  # the WebSocket answer has been sent already; nothing to replace
            # python-engineio raises on some requests for a session that has just closed
            # (KeyError 'Session is disconnected'): a client's mistake, not a server error.
            log_limited(
                log, logging.WARNING, "refused a long-polling request (%s)", type(exc).__name__
            )
            return web.Response(status=400, text="Bad request")
        return response


class TextPacket(sio_packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet of this protocol: JSON only, never a binary attachment (a binary
    frame is refused on reading), so no payload is walked looking for bytes before it is
    sent (python-socketio's default does that for every packet, on the edit path)."""

    uses_binary_events = False


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """`socketio.AsyncServer` that reads each packet itself before dispatching it."""

    def __init__(self, *, limits: WireLimits, **options: Any) -> None:
        super().__init__(
            logger=library_logger("socketio.server"),
            engineio_logger=library_logger("engineio.server"),
            serializer=TextPacket,
            **options,
        )
        self.limits = limits
        self._buckets: dict[str, TokenBucket] = {}
        self._told_limited_at: dict[str, float] = {}
        # What was refused, by code: for metrics and tests.
        self.refusals: Counter[str] = Counter()
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _GuardedEngineIO

    # -- reading ---------------------------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        try:
            pkt = self._read(eio_sid, data)
        except MalformedPacket as bad:
            await self._close_malformed(eio_sid, bad.reason)
            return
        namespace = pkt.namespace or "/"
        if pkt.packet_type == sio_packet.CONNECT:
            wait = self._spend_or_wait(eio_sid)
            if wait > 0:
                await self._refuse_connect(eio_sid, namespace, wait)
                await asyncio.sleep(wait)  # see _dispatch_event
                return
            await self._handle_connect(eio_sid, namespace, pkt.data)
        elif pkt.packet_type == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == sio_packet.ACK:
            await self._handle_ack(eio_sid, namespace, pkt.id, pkt.data)
        else:
            await self._dispatch_event(eio_sid, namespace, pkt)

    def _read(self, eio_sid: str, data: str | bytes) -> Any:
        """The decoded packet, or MalformedPacket saying in fixed words what is wrong."""
        if not isinstance(data, str):
            raise MalformedPacket("a binary frame (this protocol has none)")
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:  # whatever the decoder raises, the input alone caused it
            raise MalformedPacket("unreadable packet or JSON") from None
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            if pkt.data is not None and not isinstance(pkt.data, dict):
                raise MalformedPacket("connect data that is not an object")
            return pkt
        if kind == sio_packet.DISCONNECT:
            return pkt  # python-socketio ignores one for a namespace not connected
        if kind not in (sio_packet.EVENT, sio_packet.ACK):
            raise MalformedPacket("a packet type a client may not send")
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/")
        if sid is None or not self.manager.is_connected(sid, pkt.namespace or "/"):
            raise MalformedPacket("a packet before connecting to the namespace")
        if kind == sio_packet.EVENT:
            if not isinstance(pkt.data, list) or not pkt.data:
                raise MalformedPacket("an event without a name")
            if not isinstance(pkt.data[0], str):
                raise MalformedPacket("an event name that is not a string")
        elif kind == sio_packet.ACK and not isinstance(pkt.data, list):
            raise MalformedPacket("an acknowledgement without a list")
        return pkt

    async def _dispatch_event(self, eio_sid: str, namespace: str, pkt: Any) -> None:
        name: str = pkt.data[0]
        wait = self._spend_or_wait(eio_sid)
        if wait > 0:
            await self._refuse_rate_limited(eio_sid, namespace, pkt.id, name, wait)
            # Read nothing more from this connection until a token is back: a connection's
            # packets are read one after another, so a flood waits in its own TCP buffers
            # instead of costing the server an answer per packet.
            await asyncio.sleep(wait)
            return
        if name in RESERVED_EVENTS:
            await self._refuse(eio_sid, namespace, pkt.id, name, "reserved_event", RESERVED_MESSAGE)
            return
        if len(pkt.data) > 2:
            await self._refuse(
                eio_sid, namespace, pkt.id, name, "invalid_payload", EXTRA_ARGUMENTS_MESSAGE
            )
            return
        await self._handle_event(eio_sid, namespace, pkt.id, pkt.data)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._buckets.pop(eio_sid, None)
        self._told_limited_at.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    # -- limits ----------------------------------------------------------------------------

    def _spend_or_wait(self, eio_sid: str) -> float:
        bucket = self._buckets.get(eio_sid)
        if bucket is None:
            bucket = self._buckets[eio_sid] = TokenBucket(
                rate=self.limits.events_per_second, burst=self.limits.event_burst
            )
        return bucket.take()

    # -- answers ---------------------------------------------------------------------------

    async def _refuse(
        self,
        eio_sid: str,
        namespace: str,
        ack_id: int | None,
        event: str | None,
        code: str,
        message: str,
        *,
        send_event: bool = True,
        **extra: Any,
    ) -> None:
        """Answer a refused packet as every refused event is answered (docs/protocol.md):
        an `error` event and, if the client asked for one, an acknowledgement."""
        self.refusals[code] += 1
        error = {"code": code, "message": message, **extra}
        if send_event:
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    sio_packet.EVENT,
                    namespace=namespace,
                    data=["error", {"event": event[:64] if event else None, **error}],
                ),
            )
        if ack_id is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    sio_packet.ACK,
                    namespace=namespace,
                    id=ack_id,
                    data=[{"ok": False, "error": error}],
                ),
            )

    async def _refuse_rate_limited(
        self, eio_sid: str, namespace: str, ack_id: int | None, event: str, wait: float
    ) -> None:
        self.limits.on_limit("events_per_connection")
        # Every acknowledgement asked for is answered; the `error` event at most once a
        # second, so a flood is not answered by a flood.
        now = time.monotonic()
        told = self._told_limited_at.get(eio_sid)
        send_event = told is None or now - told >= 1.0
        if send_event:
            self._told_limited_at[eio_sid] = now
        seconds = _retry_after(wait)
        await self._refuse(
            eio_sid,
            namespace,
            ack_id,
            event,
            "rate_limited",
            RATE_LIMITED_MESSAGE.format(seconds=seconds),
            send_event=send_event,
            retry_after=seconds,
        )

    async def _refuse_connect(self, eio_sid: str, namespace: str, wait: float) -> None:
        self.refusals["rate_limited"] += 1
        self.limits.on_limit("events_per_connection")
        seconds = _retry_after(wait)
        message = RATE_LIMITED_MESSAGE.format(seconds=seconds)
        await self._send_packet(
            eio_sid,
            self.packet_class(
                sio_packet.CONNECT_ERROR,
                namespace=namespace,
                data={
                    "message": "rate_limited",
                    "data": {"code": "rate_limited", "message": message, "retry_after": seconds},
                },
            ),
        )

    async def _close_malformed(self, eio_sid: str, reason: str) -> None:
        self.refusals["malformed_packet"] += 1
        log_limited(log, logging.WARNING, "closed a connection: %s", reason)
        if self.manager.sid_from_eio_sid(eio_sid, "/") is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    sio_packet.EVENT,
                    data=[
                        "error",
                        {"event": None, "code": "malformed_packet", "message": MALFORMED_MESSAGE},
                    ],
                ),
            )
        # Not awaited here: closing waits until the client has read what is queued, and a
        # long-polling client reads only after this request (its POST) has been answered.
        task = asyncio.create_task(self.eio.disconnect(eio_sid))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _retry_after(wait: float) -> float:
    """Seconds to tell the client, rounded up to the hundredth (never 0)."""
    return max(0.01, math.ceil(wait * 100) / 100)
