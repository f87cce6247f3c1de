"""Socket.IO event handlers: join, waiting room, presence, WebRTC relay (docs/protocol.md).

The server package wires this to the HTTP app and supplies a `SignalingBackend`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
import socketio

from models import audience
from models.errors import Refused
from models.roles import Action, Role, is_allowed
from signaling.backend import Identity, JoinRefused, SignalingBackend
from signaling.panel import PanelEvents, panel_room
from signaling.payloads import (
    EmptyPayload,
    EndPayload,
    EventRefused,
    JoinPayload,
    ParticipantPayload,
    ProbePayload,
    SignalPayload,
    parse,
)
from signaling.presence import PresenceStore, PresentParticipant

log = logging.getLogger(__name__)

SessionState = Literal["connected", "waiting", "in-call", "gone"]

WAITING_MESSAGE = "Your pharmacist will let you in shortly."
DENIED_MESSAGE = "The pharmacist could not let you into this consult. Please contact your pharmacy."
REMOVED_MESSAGE = "The pharmacist removed you from this consult."


@dataclass(frozen=True)
class SignalingLimits:
    """Quotas of docs/protocol.md ("Limits"); the per-event rate lives in signaling.wire."""

    max_message_bytes: int
    connections_per_token: int
    participants_per_consult: int
    panel_sync_max_events: int
    # Told the name of each limit that refuses something (the server counts them in metrics).
    on_limit: Callable[[str], None] = lambda limit: None


@dataclass
class _Session:
    identity: Identity
    state: SessionState = "connected"
    leave_reason: str = "disconnected"
    consult: dict[str, Any] | None = None  # {id, status} as of the last lifecycle change


Handler = Callable[[str, "_Session", Any], Awaitable[Any]]


def hosts_room(consult_id: str) -> str:
    """The room of those who manage the consult (they see the waiting room)."""
    return f"{consult_id}/hosts"


class ConsultSignaling:
    """Registers the consult events on `sio` and keeps presence in `presence`."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        backend: SignalingBackend,
        presence: PresenceStore,
        limits: SignalingLimits,
    ) -> None:
        self.sio = sio
        self.backend = backend
        self.presence = presence
        self.limits = limits
        # Per-connection state; a socket id lives in exactly one process.
        self._sessions: dict[str, _Session] = {}
        # Open connections per participant (the token's holder), for connections_per_token.
        self._connections: Counter[str] = Counter()
        self._background: set[asyncio.Task[None]] = set()
        self.panel = PanelEvents(self)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        self.on("join", self._on_join, needs_join=False)
        self.on("probe", self._on_probe, needs_join=False)
        self.on("leave", self._on_leave, needs_join=False)
        self.on("signal", self._on_signal)
        self.on("admit", self._on_admit)
        self.on("admit-all", self._on_admit_all)
        self.on("deny", self._on_deny)
        self.on("remove", self._on_remove)
        self.on("end-consult", self._on_end_consult)
        sio.on("*", self._on_unknown)

    def on(self, event: str, handler: Handler, *, needs_join: bool = True) -> None:
        """Register `handler` for `event`: size limit, join check, refusals as `error`."""

        async def run(sid: str, *args: Any) -> Any:
            data = args[0] if args else None
            try:
                session = self._sessions.get(sid)
                if session is None:
                    raise EventRefused("not_joined", "This connection is not authenticated.")
                if needs_join and session.state != "in-call":
                    message = (
                        "Wait to be admitted first."
                        if session.state == "waiting"
                        else "Send 'join' first."
                    )
                    raise EventRefused("not_joined", message)
                if _encoded_size(data) > self.limits.max_message_bytes:
                    raise EventRefused(
                        "message_too_large",
                        f"The payload exceeds {self.limits.max_message_bytes} bytes.",
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

    # -- connection lifecycle -------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused_connection("missing_token", "Connect with auth {token: <join token>}.")
        try:
            identity = await self.backend.authenticate(token)
        except JoinRefused as refused:
            raise _refused_connection(refused.code, refused.message) from None
        except Exception:
            # A client must never be left waiting for its own timeout.
            log.exception("unexpected error checking a join token")
            raise _refused_connection(
                "internal_error", "The server could not check this link; try again."
            ) from None
        if self._connections[identity.participant_id] >= self.limits.connections_per_token:
            self.limits.on_limit("connections_per_token")
            raise _refused_connection(
                "too_many_connections",
                f"This link is open in {self.limits.connections_per_token} connections "
                "already; close one first.",
            )
        self._connections[identity.participant_id] += 1
        self._sessions[sid] = _Session(identity=identity)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            participant_id = session.identity.participant_id
            self._connections[participant_id] -= 1
            if self._connections[participant_id] <= 0:
                del self._connections[participant_id]
        if session is None or session.state in ("connected", "gone"):
            return
        identity = session.identity
        if not await self.presence.remove(identity.consult_id, identity.participant_id, sid):
            return
        if session.state == "waiting":
            await self._announce_waiting_room(identity.consult_id)
            return
        await self.backend.record_leave(identity, session.leave_reason)
        await self.sio.emit(
            "participant-left",
            {"participant_id": identity.participant_id, "reason": session.leave_reason},
            room=identity.consult_id,
            skip_sid=sid,
        )

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        message = "This server has no such event."
        await self.emit_error(sid, event[:64], "unknown_event", message)
        return {"ok": False, "error": {"code": "unknown_event", "message": message}}

    # -- joining and the waiting room -----------------------------------------------------

    async def _on_join(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        if session.state == "in-call":
            return await self._call_payload(session)
        if session.state == "waiting":
            return self._waiting_payload(session)
        payload = parse(JoinPayload, {} if data is None else data)
        identity = session.identity
        present = await self.presence.get(identity.consult_id, identity.participant_id)
        if present is None:
            await self._check_room_for_one_more(identity.consult_id)
        decision = await self.backend.record_join(
            identity,
            payload.display_name,
            consent_accepted=bool(payload.consent and payload.consent.accepted),
            present_elsewhere=present is not None and present.sid != sid,
        )
        if payload.display_name:
            session.identity = identity = replace(identity, display_name=payload.display_name)
        session.consult = decision.consult
        if present is not None and present.sid != sid:
            await self._replace(present.sid)
        if decision.admitted:
            return await self._enter_call(sid, session)
        await self.presence.add(identity.consult_id, self._entry(sid, session, state="waiting"))
        session.state = "waiting"
        await self._announce_waiting_room(identity.consult_id)
        return self._waiting_payload(session)

    async def _check_room_for_one_more(self, consult_id: str) -> None:
        everyone = await self.presence.roster(consult_id)
        if len(everyone) >= self.limits.participants_per_consult:
            self.limits.on_limit("participants_per_consult")
            raise EventRefused(
                "consult_full",
                f"This consult has {self.limits.participants_per_consult} participants "
                "already, the most it allows.",
            )

    def _entry(
        self, sid: str, session: _Session, *, state: Literal["in-call", "waiting"]
    ) -> PresentParticipant:
        identity = session.identity
        return PresentParticipant(
            participant_id=identity.participant_id,
            role=identity.role,
            display_name=identity.display_name,
            sid=sid,
            state=state,
        )

    def _waiting_payload(self, session: _Session) -> dict[str, Any]:
        identity = session.identity
        return {
            "ok": True,
            "waiting": True,
            "message": WAITING_MESSAGE,
            "self": {
                "id": identity.participant_id,
                "role": identity.role,
                "display_name": identity.display_name,
            },
            "consult": session.consult or {"id": identity.consult_id},
        }

    async def _enter_call(self, sid: str, session: _Session) -> dict[str, Any]:
        identity = session.identity
        entry = self._entry(sid, session, state="in-call")
        await self.presence.add(identity.consult_id, entry)
        await self.sio.enter_room(sid, identity.consult_id)
        await self.sio.enter_room(sid, panel_room(identity.consult_id, identity.role))
        if _is_host(identity):
            await self.sio.enter_room(sid, hosts_room(identity.consult_id))
        session.state = "in-call"
        session.consult = await self.backend.record_in_call(identity)
        await self.sio.emit(
            "participant-joined",
            {"participant": entry.public()},
            room=identity.consult_id,
            skip_sid=sid,
        )
        return await self._call_payload(session)

    async def _call_payload(self, session: _Session) -> dict[str, Any]:
        identity = session.identity
        everyone = await self.presence.roster(identity.consult_id)
        payload: dict[str, Any] = {
            "ok": True,
            "waiting": False,
            "self": {
                "id": identity.participant_id,
                "role": identity.role,
                "display_name": identity.display_name,
            },
            "consult": session.consult or {"id": identity.consult_id},
            "roster": [
                member.public()
                for member in everyone
                if member.state == "in-call" and member.participant_id != identity.participant_id
            ],
            "ice": self.backend.ice_configuration(identity.participant_id),
            "settings": self.backend.client_settings(identity.role),
            "panel": audience.panel_for(
                identity.role, await self.backend.panel_snapshot(identity.consult_id)
            ),
        }
        if _is_host(identity):
            payload["waiting_room"] = [m.public() for m in everyone if m.state == "waiting"]
        return payload

    async def _announce_waiting_room(self, consult_id: str) -> None:
        waiting = [
            m.public() for m in await self.presence.roster(consult_id) if m.state == "waiting"
        ]
        await self.sio.emit("waiting-room", {"waiting": waiting}, room=hosts_room(consult_id))

    async def _replace(self, old_sid: str) -> None:
        await self.sio.emit(
            "replaced",
            {"message": "This consult was opened in another window; this one has left."},
            to=old_sid,
        )
        old_session = self._sessions.get(old_sid)
        if old_session is not None:
            old_session.state = "gone"  # its disconnect must not announce a departure
            old = old_session.identity
            await self.sio.leave_room(old_sid, old.consult_id)
            await self.sio.leave_room(old_sid, hosts_room(old.consult_id))
            await self.sio.leave_room(old_sid, panel_room(old.consult_id, old.role))
        await self.sio.disconnect(old_sid)

    async def _waiting_target(self, host: _Session, data: Any) -> tuple[str, _Session]:
        _require_host(host)
        payload = parse(ParticipantPayload, data)
        entry = await self.presence.get(host.identity.consult_id, payload.participant_id)
        target = self._sessions.get(entry.sid) if entry is not None else None
        if entry is None or entry.state != "waiting" or target is None:
            raise EventRefused("not_waiting", "That participant is not in the waiting room.")
        return entry.sid, target

    async def _admit(self, host: _Session, sid: str, target: _Session) -> None:
        await self.backend.admit(host.identity, target.identity.participant_id)
        payload = await self._enter_call(sid, target)
        await self.sio.emit("admitted", payload, to=sid)

    async def _on_admit(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        target_sid, target = await self._waiting_target(session, data)
        await self._admit(session, target_sid, target)
        await self._announce_waiting_room(session.identity.consult_id)
        return {"ok": True}

    async def _on_admit_all(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        _require_host(session)
        parse(EmptyPayload, {} if data is None else data)
        consult_id = session.identity.consult_id
        admitted = []
        for entry in await self.presence.roster(consult_id):
            target = self._sessions.get(entry.sid)
            if entry.state == "waiting" and target is not None:
                await self._admit(session, entry.sid, target)
                admitted.append(entry.participant_id)
        await self._announce_waiting_room(consult_id)
        return {"ok": True, "admitted": admitted}

    async def _on_deny(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        target_sid, target = await self._waiting_target(session, data)
        await self.backend.deny(session.identity, target.identity.participant_id)
        await self.sio.emit("denied", {"message": DENIED_MESSAGE}, to=target_sid)
        await self.presence.remove(
            session.identity.consult_id, target.identity.participant_id, target_sid
        )
        target.state = "gone"
        await self.sio.disconnect(target_sid)
        await self._announce_waiting_room(session.identity.consult_id)
        return {"ok": True}

    async def _on_remove(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        _require_host(session)
        payload = parse(ParticipantPayload, data)
        consult_id = session.identity.consult_id
        entry = await self.presence.get(consult_id, payload.participant_id)
        if entry is None or payload.participant_id == session.identity.participant_id:
            raise EventRefused("unknown_recipient", "That participant is not in this consult.")
        await self.backend.remove(session.identity, payload.participant_id)
        await self.sio.emit("removed", {"message": REMOVED_MESSAGE}, to=entry.sid)
        target = self._sessions.get(entry.sid)
        if target is not None:
            target.leave_reason = "removed"
        await self.sio.disconnect(entry.sid)
        return {"ok": True}

    async def _on_end_consult(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        _require_host(session)
        payload = parse(EndPayload, {} if data is None else data)
        await self.backend.end_consult(session.identity, payload.reason)
        # The caller's own connection closes a moment later, so that this ack reaches it.
        await self.end_consult(session.identity.consult_id, payload.reason, spare_sid=sid)
        return {"ok": True}

    # -- media ----------------------------------------------------------------------------

    async def _on_signal(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = parse(SignalPayload, data)
        identity = session.identity
        recipient = (
            None
            if payload.to == identity.participant_id
            else await self.presence.get(identity.consult_id, payload.to)
        )
        if recipient is None or recipient.state != "in-call":
            raise EventRefused(
                "unknown_recipient", "'to' is not a participant present in this consult."
            )
        await self.sio.emit("signal", payload.relayed(identity.participant_id), to=recipient.sid)
        return {"ok": True}

    async def _on_probe(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = parse(ProbePayload, {} if data is None else data)
        result: dict[str, Any] = {
            "ok": True,
            "ice": self.backend.ice_configuration(session.identity.participant_id),
            "thresholds": self.backend.client_settings(session.identity.role)["probe"],
        }
        if payload.description is not None:
            result["description"] = await self.backend.probe_answer(
                session.identity, payload.description.model_dump()
            )
        return result

    async def _on_leave(self, sid: str, session: _Session, data: Any) -> None:
        parse(EmptyPayload, {} if data is None else data)
        session.leave_reason = "left"
        await self.sio.disconnect(sid)

    # -- called by the server -------------------------------------------------------------

    async def end_consult(
        self, consult_id: str, reason: str, *, spare_sid: str | None = None
    ) -> None:
        """Tell everyone in the consult it ended, then close their connections."""
        await self.sio.emit("consult-ended", {"reason": reason}, room=consult_id)
        for sid, session in list(self._sessions.items()):
            if session.identity.consult_id != consult_id:
                continue
            if session.state in ("connected", "waiting"):
                # Not in the consult's room: a pre-join screen or the waiting room.
                await self.sio.emit("consult-ended", {"reason": reason}, to=sid)
            session.state = "gone"
            await self.presence.remove(consult_id, session.identity.participant_id, sid)
            if sid == spare_sid:
                self._later(self._disconnect_after(sid, 1.0))
            else:
                await self.sio.disconnect(sid)

    async def _disconnect_after(self, sid: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.sio.disconnect(sid)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def present(self, consult_id: str) -> list[dict[str, str]]:
        """Who is here now, in the call or waiting (for the REST API)."""
        return [
            {**member.public(), "state": member.state}
            for member in await self.presence.roster(consult_id)
        ]

    async def emit_error(self, sid: str, event: str, code: str, message: str) -> None:
        await self.sio.emit("error", {"event": event, "code": code, "message": message}, to=sid)


def _refused_connection(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """The `connect_error` of docs/protocol.md: `{message: code, data: {code, message}}`."""
    return socketio.exceptions.ConnectionRefusedError(code, {"code": code, "message": message})


def _is_host(identity: Identity) -> bool:
    return is_allowed(Role(identity.role), Action.MANAGE_PARTICIPANTS)


def _require_host(session: _Session) -> None:
    if not _is_host(session.identity):
        raise EventRefused(
            "forbidden", f"A {session.identity.role} may not manage who is in the consult."
        )


def _encoded_size(data: Any) -> int:
    if data is None:
        return 0
    try:
        return len(orjson.dumps(data))
    except TypeError:
        return 0
