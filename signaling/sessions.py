"""The connections this instance holds, and how an event reaches its handler.

`handlers.py` (join, the waiting room, the relay) and `panel.py` (the medication panel)
both register their events here; neither imports the other's internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import socketio

from models.errors import Refused
from signaling.backend import ConsultState, Identity
from signaling.payloads import EventRefused, MediaPayload

log = logging.getLogger(__name__)

SessionState = Literal["connected", "waiting", "in-call", "gone"]


@dataclass
class Session:
    """One connection: who it is, and where it stands."""

    identity: Identity
    state: SessionState = "connected"
    leave_reason: str = "disconnected"
    consult: ConsultState | None = None  # as of the last lifecycle change
    session: str = ""  # the client's session (kept across its reconnects)
    media: MediaPayload = field(default_factory=lambda: MediaPayload(microphone="on", camera="on"))
    # The consult is ending and this connection asked for it: close it a moment later, so
    # that its acknowledgement arrives first.
    ending: bool = False


Handler = Callable[[str, Session, Any], Awaitable[Any]]


class EventRouter:
    """Registers client events on `sio` with what each goes through: a known connection,
    a joined one (unless the event says otherwise), the size limit, refusals as `error`."""

    def __init__(self, sio: socketio.AsyncServer, *, max_message_bytes: int) -> None:
        self.sio = sio
        self.max_message_bytes = max_message_bytes
        # Per-connection state; a socket id lives in exactly one instance.
        self.sessions: dict[str, Session] = {}

    def on(self, event: str, handler: Handler, *, needs_join: bool = True) -> None:
        async def run(sid: str, *args: Any) -> Any:
            data = args[0] if args else None
            try:
                session = self.sessions.get(sid)
                if session is None:
                    raise EventRefused("not_joined", "This connection is not authenticated.")
                if needs_join and session.state != "in-call":
                    message = (
                        "Wait to be admitted first."
                        if session.state == "waiting"
                        else "Send 'join' first."
                    )
                    raise EventRefused("not_joined", message)
                if _encoded_size(data) > self.max_message_bytes:
                    raise EventRefused(
                        "message_too_large",
                        f"The payload exceeds {self.max_message_bytes} bytes.",
                    )
                return await handler(sid, session, data)
            except Refused as refused:
                await self.emit_error(sid, event, refused.code, refused.message)
                return {"ok": False, "error": {"code": refused.code, "message": refused.message}}
            except Exception:
                log.exception("unexpected error handling %r", event)
                message = "The server could not handle this event; nothing was changed."
                await self.emit_error(sid, event, "internal_error", message)
                return {"ok": False, "error": {"code": "internal_error", "message": message}}

        self.sio.on(event, run)

    async def emit_error(self, sid: str, event: str, code: str, message: str) -> None:
        await self.to_session(sid, "error", {"event": event, "code": code, "message": message})

    async def to_session(self, sid: str, event: str, data: Any) -> None:
        """Emit to one connection: held here, so without a detour through Redis."""
        await self.sio.emit(event, data, to=sid, ignore_queue=sid in self.sessions)


def _encoded_size(data: Any) -> int:
    if data is None:
        return 0
    try:
        return len(orjson.dumps(data))
    except TypeError:
        return 0
