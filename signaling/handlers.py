"""Socket.IO event handlers: join, presence, WebRTC relay (docs/protocol.md).

The server package wires this to the HTTP app and supplies a `SignalingBackend`; nothing
here knows about HTTP, tokens or the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from signaling.payloads import (
    JoinPayload,
    PanelHistoryPayload,
    PanelSyncPayload,
    SignalPayload,
    describe_validation_error,
)
from signaling.presence import PresenceStore, PresentParticipant

log = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT", bound=BaseModel)


class JoinRefused(Exception):
    """A connection or join is refused; `code` is one of docs/protocol.md's codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    consult_id: str
    participant_id: str
    role: str
    display_name: str


class SignalingBackend(Protocol):
    async def authenticate(self, token: str) -> Identity:
        """The identity behind a join token; raises JoinRefused."""

    async def record_join(self, identity: Identity, display_name: str | None) -> dict[str, Any]:
        """Persist the join (name, consult goes live); returns `{id, status}` of the consult.

        Raises JoinRefused if the consult can no longer be joined.
        """

    def ice_configuration(self, participant_id: str) -> dict[str, Any]: ...

    async def panel_snapshot(self, consult_id: str) -> dict[str, Any]:
        """`{seq, entities}`: the consult's medication panel now."""

    async def apply_mutation(self, identity: Identity, mutation: Any) -> dict[str, Any]:
        """Apply and commit one panel mutation; the result as docs/protocol.md gives it."""

    async def panel_history(self, identity: Identity, entity_id: str) -> dict[str, Any]:
        """`{ok, events}` for one entity, or `{ok: false, error}` if the role may not read it."""

    async def panel_events_since(self, consult_id: str, since: int) -> list[dict[str, Any]]: ...


@dataclass
class _Session:
    identity: Identity
    joined: bool = False
    display_name: str = ""
    leave_reason: str = "disconnected"
    join_ack: dict[str, Any] | None = None


class EventRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConsultSignaling:
    """Registers the consult events on `sio` and keeps presence in `presence`."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        backend: SignalingBackend,
        presence: PresenceStore,
        *,
        max_message_bytes: int,
    ) -> None:
        self.sio = sio
        self.backend = backend
        self.presence = presence
        self.max_message_bytes = max_message_bytes
        # Per-connection state; a socket id lives in exactly one process.
        self._sessions: dict[str, _Session] = {}
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("join", self._guarded("join", self._on_join, needs_join=False))
        sio.on("signal", self._guarded("signal", self._on_signal))
        sio.on("leave", self._guarded("leave", self._on_leave))
        sio.on("mutate", self._guarded("mutate", self._on_mutate))
        sio.on("panel-sync", self._guarded("panel-sync", self._on_panel_sync))
        sio.on("panel-history", self._guarded("panel-history", self._on_panel_history))
        # Mutations of one consult are applied and broadcast one at a time, so that
        # `panel-event`s leave this process in seq order.
        self._consult_locks: dict[str, asyncio.Lock] = {}
        sio.on("*", self._on_unknown)

    # -- connection lifecycle -------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError(
                "missing_token",
                {"code": "missing_token", "message": "Connect with auth {token: <join token>}."},
            )
        try:
            identity = await self.backend.authenticate(token)
        except JoinRefused as refused:
            raise socketio.exceptions.ConnectionRefusedError(
                refused.code, {"code": refused.code, "message": refused.message}
            ) from None
        self._sessions[sid] = _Session(identity=identity, display_name=identity.display_name)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is None or not session.joined:
            return
        identity = session.identity
        if await self.presence.remove(identity.consult_id, identity.participant_id, sid):
            await self.sio.emit(
                "participant-left",
                {"participant_id": identity.participant_id, "reason": session.leave_reason},
                room=identity.consult_id,
                skip_sid=sid,
            )

    # -- events ---------------------------------------------------------------------------

    def _guarded(
        self,
        event: str,
        handler: Callable[[str, _Session, Any], Awaitable[Any]],
        *,
        needs_join: bool = True,
    ) -> Callable[..., Awaitable[Any]]:
        """Wrap a handler: size limit, join check, and every refusal as an `error` event."""

        async def run(sid: str, *args: Any) -> Any:
            data = args[0] if args else None
            try:
                session = self._sessions.get(sid)
                if session is None:
                    raise EventRefused("not_joined", "This connection is not authenticated.")
                if needs_join and not session.joined:
                    raise EventRefused("not_joined", "Send 'join' first.")
                if _encoded_size(data) > self.max_message_bytes:
                    raise EventRefused(
                        "message_too_large",
                        f"The payload exceeds {self.max_message_bytes} bytes.",
                    )
                return await handler(sid, session, data)
            except EventRefused as refused:
                await self._emit_error(sid, event, refused.code, refused.message)
                return {"ok": False, "error": {"code": refused.code, "message": refused.message}}
            except Exception:
                log.exception("unexpected error handling %r", event)
                message = "The server could not handle this event; nothing was changed."
                await self._emit_error(sid, event, "internal_error", message)
                return {"ok": False, "error": {"code": "internal_error", "message": message}}

        return run

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> None:
        await self._emit_error(
            sid, str(event)[:64], "unknown_event", "This server has no such event."
        )

    async def _on_join(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        if session.join_ack is not None:
            return await self._with_panel(session.join_ack, session.identity.consult_id)
        payload = _parse(JoinPayload, {} if data is None else data)
        identity = session.identity
        try:
            consult = await self.backend.record_join(identity, payload.display_name)
        except JoinRefused as refused:
            raise EventRefused(refused.code, refused.message) from None
        session.display_name = payload.display_name or identity.display_name
        session.identity = identity = replace(identity, display_name=session.display_name)
        entry = PresentParticipant(
            participant_id=identity.participant_id,
            role=identity.role,
            display_name=session.display_name,
            sid=sid,
        )
        replaced = await self.presence.add(identity.consult_id, entry)
        if replaced is not None and replaced.sid != sid:
            await self._replace(replaced.sid)
        await self.sio.enter_room(sid, identity.consult_id)
        session.joined = True
        roster = [
            member.public()
            for member in await self.presence.roster(identity.consult_id)
            if member.participant_id != identity.participant_id
        ]
        await self.sio.emit(
            "participant-joined",
            {"participant": entry.public()},
            room=identity.consult_id,
            skip_sid=sid,
        )
        session.join_ack = {
            "ok": True,
            "self": entry.public(),
            "consult": consult,
            "roster": roster,
            "ice": self.backend.ice_configuration(identity.participant_id),
        }
        return await self._with_panel(session.join_ack, identity.consult_id)

    async def _with_panel(self, ack: dict[str, Any], consult_id: str) -> dict[str, Any]:
        # The panel is not kept in join_ack: a repeated join gets the panel as it is now.
        return {**ack, "panel": await self.backend.panel_snapshot(consult_id)}

    async def _replace(self, old_sid: str) -> None:
        await self.sio.emit(
            "replaced",
            {"message": "This consult was opened in another window; this one has left."},
            to=old_sid,
        )
        old_session = self._sessions.get(old_sid)
        if old_session is not None:
            old_session.joined = False  # its disconnect must not announce a departure
            await self.sio.leave_room(old_sid, old_session.identity.consult_id)
        await self.sio.disconnect(old_sid)

    async def _on_signal(self, sid: str, session: _Session, data: Any) -> None:
        payload = _parse(SignalPayload, data)
        identity = session.identity
        recipient = (
            None
            if payload.to == identity.participant_id
            else await self.presence.get(identity.consult_id, payload.to)
        )
        if recipient is None:
            raise EventRefused(
                "unknown_recipient", "'to' is not a participant present in this consult."
            )
        await self.sio.emit("signal", payload.relayed(identity.participant_id), to=recipient.sid)

    async def _on_mutate(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        consult_id = session.identity.consult_id
        lock = self._consult_locks.setdefault(consult_id, asyncio.Lock())
        async with lock:
            result = await self.backend.apply_mutation(session.identity, data)
            if result.get("seq") is not None and not result.get("replayed"):
                await self.sio.emit(
                    "panel-event",
                    {"event": result["event"], "entity": result.get("entity")},
                    room=consult_id,
                )
        if not result["ok"] and result["error"]["code"] != "conflict":
            await self._emit_error(
                sid, "mutate", result["error"]["code"], result["error"]["message"]
            )
        return result

    async def _on_panel_sync(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = _parse(PanelSyncPayload, {} if data is None else data)
        consult_id = session.identity.consult_id
        panel = await self.backend.panel_snapshot(consult_id)
        events = (
            await self.backend.panel_events_since(consult_id, payload.since)
            if payload.since is not None
            else []
        )
        return {"ok": True, "panel": panel, "events": events}

    async def _on_panel_history(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = _parse(PanelHistoryPayload, data)
        result = await self.backend.panel_history(session.identity, payload.entity_id)
        if not result["ok"]:
            raise EventRefused(result["error"]["code"], result["error"]["message"])
        return result

    async def _on_leave(self, sid: str, session: _Session, data: Any) -> None:
        session.leave_reason = "left"
        await self.sio.disconnect(sid)

    # -- called by the server -------------------------------------------------------------

    async def end_consult(self, consult_id: str, reason: str) -> None:
        """Tell everyone in the consult it ended, then close their connections."""
        await self.sio.emit("consult-ended", {"reason": reason}, room=consult_id)
        for member in await self.presence.roster(consult_id):
            await self.sio.disconnect(member.sid)
        for sid, session in list(self._sessions.items()):
            if session.identity.consult_id == consult_id:
                await self.sio.disconnect(sid)

    async def _emit_error(self, sid: str, event: str, code: str, message: str) -> None:
        await self.sio.emit("error", {"event": event, "code": code, "message": message}, to=sid)


def _parse(model: type[PayloadT], data: Any) -> PayloadT:
    if not isinstance(data, dict):
        raise EventRefused("invalid_payload", "The payload must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventRefused("invalid_payload", describe_validation_error(exc)) from None


def _encoded_size(data: Any) -> int:
    if data is None:
        return 0
    try:
        return len(json.dumps(data, separators=(",", ":")))
    except (TypeError, ValueError):
        return 0
