"""Socket.IO event handlers: join, waiting room, presence, WebRTC relay (docs/protocol.md).

The server package wires this to the HTTP app and supplies a `SignalingBackend`, a
`PresenceStore` and a `Cluster`. A participant's connection may be held by any instance:
what touches a connection held elsewhere (admit, deny, remove, replace, end) goes through
the cluster as a command that the holder carries out, and the relay reaches it through the
Socket.IO manager.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal

import socketio
from redis.exceptions import ConnectionError as RedisConnectionError

from models import audience
from models.background import stop_task
from models.database import is_unavailable
from models.roles import Action, Role, is_allowed
from signaling.backend import Identity, JoinRefused, SessionDescription, SignalingBackend
from signaling.cluster import Cluster, Command, ConsultEnded, PresenceResynced, SessionCommand
from signaling.panel import PanelEvents, panel_room
from signaling.payloads import (
    ChatPayload,
    EmptyPayload,
    EndPayload,
    EventRefused,
    JoinPayload,
    MediaPayload,
    ParticipantPayload,
    ProbePayload,
    SignalPayload,
    parse,
)
from signaling.presence import PresenceStore, PresentParticipant
from signaling.sessions import EventRouter, Session

log = logging.getLogger(__name__)

WAITING_MESSAGE = "Your pharmacist will let you in shortly."
DENIED_MESSAGE = "Your care team could not let you into this consult. Please contact your pharmacy."
REMOVED_MESSAGE = "The pharmacist removed you from this consult."
REPLACED_MESSAGE = "This consult was opened in another window; this one has left."
# After Redis comes back: how long rosters are pushed to clients again (longer than the
# Socket.IO listener's longest wait before it subscribes again, signaling.cluster).
SETTLING_SECONDS = 6.0


@dataclass(frozen=True)
class SignalingLimits:
    """Quotas of docs/protocol.md ("Limits"); the per-event rate lives in signaling.wire."""

    max_message_bytes: int
    connections_per_token: int
    participants_per_consult: int
    panel_sync_max_events: int
    # Told the name of each limit that refuses something (the server counts them in metrics).
    on_limit: Callable[[str], None] = lambda limit: None


def admitters_room(consult_id: str) -> str:
    """The room of those who may admit (they see the waiting room)."""
    return f"{consult_id}/admitters"


# Who may admit from (and deny) the waiting room unless configured otherwise
# (`consult.admit_roles`): never a patient.
DEFAULT_ADMITTERS = frozenset({Role.PHARMACIST.value, Role.CLINICIAN.value})


class ConsultSignaling:
    """Registers the consult events on `sio`; presence in `presence`, other instances
    through `cluster`, and a heartbeat every `heartbeat_seconds` (`run_heartbeats`)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        backend: SignalingBackend,
        presence: PresenceStore,
        cluster: Cluster,
        limits: SignalingLimits,
        *,
        heartbeat_seconds: float = 2.0,
        admitters: frozenset[str] = DEFAULT_ADMITTERS,
    ) -> None:
        self.sio = sio
        self.admitters = admitters - {Role.PATIENT.value}
        self.backend = backend
        self.presence = presence
        self.cluster = cluster
        self.limits = limits
        self.heartbeat_seconds = heartbeat_seconds
        self.router = EventRouter(sio, max_message_bytes=limits.max_message_bytes)
        self._sessions = self.router.sessions
        # Open connections per participant (the token's holder), for connections_per_token;
        # counted per instance.
        self._connections: Counter[str] = Counter()
        self._background: set[asyncio.Task[None]] = set()
        self._heartbeats: asyncio.Task[None] | None = None
        # Until then, each heartbeat tells this instance's clients their rosters again.
        self._settling_until = 0.0
        self.panel = PanelEvents(
            self.router, sio, backend.panel, sync_max_events=limits.panel_sync_max_events
        )
        cluster.on_command(self._on_command)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        on = self.router.on
        on("join", self._on_join, needs_join=False)
        on("probe", self._on_probe, needs_join=False)
        on("leave", self._on_leave, needs_join=False)
        on("signal", self._on_signal)
        on("media", self._on_media)
        on("chat", self._on_chat)
        on("chat-history", self._on_chat_history)
        on("admit", self._on_admit)
        on("admit-all", self._on_admit_all)
        on("deny", self._on_deny)
        on("remove", self._on_remove)
        on("end-consult", self._on_end_consult)
        sio.on("*", self._on_unknown)

    # -- lifecycle of the instance ---------------------------------------------------------

    async def start(self) -> None:
        await self.cluster.start()
        # Which process is which instance (an operator reading logs; the takeover tests).
        log.info("instance %s started", self.cluster.instance)
        self._heartbeats = asyncio.create_task(self._run_heartbeats(), name="presence-heartbeat")

    async def stop(self) -> None:
        await stop_task(self._heartbeats)
        await self.cluster.stop()

    async def _run_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat()
            except Exception as exc:
                if is_unavailable(exc) or isinstance(exc, RedisConnectionError):
                    # Expected while the database or Redis is away: one line, no traceback;
                    # the next beat tries again.
                    log.warning("presence heartbeat failed (%s); retrying", type(exc).__name__)
                else:
                    log.exception("presence heartbeat failed")

    async def heartbeat(self) -> None:
        """Keep this instance alive; write presence again after Redis lost it; announce the
        departure of every participant of an instance that died; record who is still here."""
        beat = await self.cluster.beat()
        # Redis lost our presence (it restarted), or missed a change of it (an admission
        # while it could not be reached): written again, and the others told.
        if beat.resync or self.presence.needs_resync:
            await self.presence.resync()
            await self._end_consults_that_ended()
            await self.cluster.publish(PresenceResynced(self.cluster.instance))
        if time.monotonic() < self._settling_until:
            await self._push_rosters()
        for dead in beat.dead:
            at = dt.datetime.fromtimestamp(dead.last_seen, dt.UTC)
            for consult_id, entry in await self.presence.reap(dead.instance):
                await self._departed(consult_id, entry, at=at)
            await self.cluster.forget(dead.instance)
            log.warning("instance %s stopped answering; its participants left", dead.instance)
        await self.presence.refresh()
        here = [
            entry.participant_id for _, entry in self.presence.local() if entry.state == "in-call"
        ]
        await self.backend.admissions.record_seen(here)

    async def _push_rosters(self) -> None:
        """Tell this instance's clients who is in their consult now and who waits.

        After Redis comes back, what other instances emitted meanwhile was lost (and goes on
        being lost until this instance's Socket.IO listener has subscribed again): for a few
        heartbeats, each client hears the whole roster again, from this instance, without
        Redis in between. A client keeps the connection to a participant whose session it
        already knows, so a repeat changes nothing."""
        consults: dict[str, list[tuple[str, Session]]] = {}
        for sid, session in self._sessions.items():
            if session.state == "in-call":
                consults.setdefault(session.identity.consult_id, []).append((sid, session))
        for consult_id, here in consults.items():
            everyone = await self.presence.roster(consult_id)
            waiting = [m.public() for m in everyone if m.state == "waiting"]
            for sid, session in here:
                for member in everyone:
                    if member.state == "in-call" and member.sid != sid:
                        await self.router.to_session(
                            sid, "participant-joined", {"participant": member.public()}
                        )
                if self._may_admit(session.identity):
                    await self.router.to_session(sid, "waiting-room", {"waiting": waiting})

    async def _end_consults_that_ended(self) -> None:
        """A consult may have ended while its "end" could not reach this instance."""
        held = {session.identity.consult_id for session in self._sessions.values()}
        for consult_id, reason in (await self.backend.admissions.ended_among(held)).items():
            await self._end_here(consult_id, reason)

    async def _departed(
        self, consult_id: str, entry: PresentParticipant, *, at: dt.datetime
    ) -> None:
        """A participant of a dead instance: gone since its last heartbeat."""
        if entry.state == "waiting":
            await self._announce_waiting_room(consult_id)
            return
        identity = Identity(consult_id, entry.participant_id, entry.role, entry.display_name)
        await self.backend.admissions.record_leave(identity, "disconnected", at=at)
        await self.sio.emit(
            "participant-left",
            {"participant_id": entry.participant_id, "reason": "disconnected"},
            room=consult_id,
        )

    # -- connection lifecycle -------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused_connection("missing_token", "Connect with auth {token: <join token>}.")
        try:
            identity = await self.backend.admissions.authenticate(token)
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
        self._sessions[sid] = Session(identity=identity)

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
        await self.backend.admissions.record_leave(identity, session.leave_reason)
        await self.sio.emit(
            "participant-left",
            {"participant_id": identity.participant_id, "reason": session.leave_reason},
            room=identity.consult_id,
            skip_sid=sid,
        )

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        message = "This server has no such event."
        await self.router.emit_error(sid, event[:64], "unknown_event", message)
        return {"ok": False, "error": {"code": "unknown_event", "message": message}}

    # -- joining and the waiting room -----------------------------------------------------

    async def _on_join(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        if session.state == "in-call":
            return await self._call_payload(session)
        if session.state == "waiting":
            return self._waiting_payload(session)
        payload = parse(JoinPayload, {} if data is None else data)
        identity = session.identity
        present = await self.presence.get(identity.consult_id, identity.participant_id)
        if present is None:
            await self._check_room_for_one_more(identity.consult_id)
        elsewhere = present is not None and present.sid != sid
        decision = await self.backend.admissions.record_join(
            identity,
            payload.display_name,
            consent_language=payload.consent.language if payload.consent else None,
            present_elsewhere=elsewhere,
        )
        if payload.display_name:
            session.identity = identity = replace(identity, display_name=payload.display_name)
        session.consult = decision.consult
        session.session = payload.session or secrets.token_urlsafe(12)
        if payload.media is not None:
            session.media = payload.media
        if present is not None and elsewhere:
            await self._command(SessionCommand("replace", identity.consult_id, present.sid))
        if decision.admitted:
            return await self._enter_call(sid, session, recorded=True)
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
        self, sid: str, session: Session, *, state: Literal["in-call", "waiting"]
    ) -> PresentParticipant:
        identity = session.identity
        return PresentParticipant(
            participant_id=identity.participant_id,
            role=identity.role,
            display_name=identity.display_name,
            sid=sid,
            state=state,
            instance=self.cluster.instance,
            session=session.session,
            microphone=session.media.microphone,
            camera=session.media.camera,
        )

    def _waiting_payload(self, session: Session) -> dict[str, Any]:
        identity = session.identity
        return {
            "ok": True,
            "waiting": True,
            "message": WAITING_MESSAGE,
            "self": _self(session),
            "consult": session.consult.wire() if session.consult else {"id": identity.consult_id},
        }

    async def _enter_call(
        self, sid: str, session: Session, *, recorded: bool = False
    ) -> dict[str, Any]:
        """Into the call; `recorded`: the join's own transaction recorded it already."""
        identity = session.identity
        entry = self._entry(sid, session, state="in-call")
        await self.presence.add(identity.consult_id, entry)
        await self.sio.enter_room(sid, identity.consult_id)
        await self.sio.enter_room(sid, panel_room(identity.consult_id, identity.role))
        if self._may_admit(identity):
            await self.sio.enter_room(sid, admitters_room(identity.consult_id))
        session.state = "in-call"
        if not recorded:
            session.consult = await self.backend.admissions.record_in_call(identity)
        await self.sio.emit(
            "participant-joined",
            {"participant": entry.public()},
            room=identity.consult_id,
            skip_sid=sid,
        )
        started = session.consult.visit_started_at if session.consult else None
        if identity.role == Role.PATIENT.value and started is not None:
            # The care team's visit timers run from the record's time (the first entry).
            await self.sio.emit(
                "visit-started",
                {"visit_started_at": started.isoformat(), "server_time": _server_time()},
                room=identity.consult_id,
                skip_sid=sid,
            )
        return await self._call_payload(session)

    async def _call_payload(self, session: Session) -> dict[str, Any]:
        identity = session.identity
        everyone = await self.presence.roster(identity.consult_id)
        media = self.backend.media
        panel = await self.backend.panel.snapshot(identity.consult_id)
        payload: dict[str, Any] = {
            "ok": True,
            "waiting": False,
            "self": _self(session),
            "consult": session.consult.wire() if session.consult else {"id": identity.consult_id},
            "roster": [
                member.public()
                for member in everyone
                if member.state == "in-call" and member.participant_id != identity.participant_id
            ],
            "ice": media.ice_configuration(identity.participant_id).wire(),
            "settings": media.client_settings(identity.role).wire(),
            "panel": audience.panel_for(identity.role, panel.wire()),
            "server_time": _server_time(),
        }
        if self._may_admit(identity):
            payload["waiting_room"] = [m.public() for m in everyone if m.state == "waiting"]
        return payload

    async def _announce_waiting_room(self, consult_id: str) -> None:
        waiting = [
            m.public() for m in await self.presence.roster(consult_id) if m.state == "waiting"
        ]
        await self.sio.emit("waiting-room", {"waiting": waiting}, room=admitters_room(consult_id))

    def _may_admit(self, identity: Identity) -> bool:
        return identity.role in self.admitters

    def _require_admitter(self, session: Session) -> None:
        if not self._may_admit(session.identity):
            raise EventRefused(
                "forbidden",
                f"A {session.identity.role} may not admit anyone in this consult.",
            )

    async def _waiting(self, host: Session, data: Any) -> PresentParticipant:
        self._require_admitter(host)
        payload = parse(ParticipantPayload, data)
        entry = await self.presence.get(host.identity.consult_id, payload.participant_id)
        if entry is None or entry.state != "waiting":
            raise EventRefused("not_waiting", "That participant is not in the waiting room.")
        return entry

    async def _on_admit(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        entry = await self._waiting(session, data)
        await self.backend.admissions.admit(session.identity, entry.participant_id)
        await self._command(SessionCommand("admit", session.identity.consult_id, entry.sid))
        return {"ok": True}

    async def _on_admit_all(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        self._require_admitter(session)
        parse(EmptyPayload, {} if data is None else data)
        consult_id = session.identity.consult_id
        admitted = []
        for entry in await self.presence.roster(consult_id):
            if entry.state == "waiting":
                await self.backend.admissions.admit(session.identity, entry.participant_id)
                await self._command(SessionCommand("admit", consult_id, entry.sid))
                admitted.append(entry.participant_id)
        return {"ok": True, "admitted": admitted}

    async def _on_deny(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        entry = await self._waiting(session, data)
        await self.backend.admissions.deny(session.identity, entry.participant_id)
        await self._command(SessionCommand("deny", session.identity.consult_id, entry.sid))
        return {"ok": True}

    async def _on_remove(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        _require_host(session)
        payload = parse(ParticipantPayload, data)
        consult_id = session.identity.consult_id
        entry = await self.presence.get(consult_id, payload.participant_id)
        if entry is None or payload.participant_id == session.identity.participant_id:
            raise EventRefused("unknown_recipient", "That participant is not in this consult.")
        await self.backend.admissions.remove(session.identity, payload.participant_id)
        await self._command(SessionCommand("remove", consult_id, entry.sid))
        return {"ok": True}

    async def _on_end_consult(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        _require_host(session)
        payload = parse(EndPayload, {} if data is None else data)
        # The caller's own connection closes a moment later, so that this ack reaches it.
        session.ending = True
        try:
            await self.backend.admissions.end_consult(session.identity, payload.reason)
        finally:
            session.ending = False
        return {"ok": True}

    # -- commands: what one instance asks the holder of a connection to do ------------------

    async def _command(self, command: SessionCommand) -> None:
        if command.sid in self._sessions:
            await self._carry_out(command)
        else:
            await self.cluster.publish(command)

    async def _on_command(self, command: Command) -> None:
        if isinstance(command, ConsultEnded):
            await self._end_here(command.consult_id, command.reason)
        elif isinstance(command, PresenceResynced):
            self._settling_until = time.monotonic() + SETTLING_SECONDS
            await self._push_rosters()
        elif command.sid in self._sessions:
            await self._carry_out(command)

    async def _carry_out(self, command: SessionCommand) -> None:
        sid = command.sid
        session = self._sessions.get(sid)
        if session is None or session.identity.consult_id != command.consult_id:
            return
        consult_id = command.consult_id
        if command.action == "admit":
            if session.state != "waiting":
                return
            payload = await self._enter_call(sid, session)
            await self.router.to_session(sid, "admitted", payload)
            await self._announce_waiting_room(consult_id)
        elif command.action == "deny":
            if session.state != "waiting":
                return
            await self.router.to_session(sid, "denied", {"message": DENIED_MESSAGE})
            await self.presence.remove(consult_id, session.identity.participant_id, sid)
            session.state = "gone"
            await self.sio.disconnect(sid, ignore_queue=True)
            await self._announce_waiting_room(consult_id)
        elif command.action == "remove":
            session.leave_reason = "removed"
            await self.router.to_session(sid, "removed", {"message": REMOVED_MESSAGE})
            await self.sio.disconnect(sid, ignore_queue=True)
        elif command.action == "replace":
            await self.router.to_session(sid, "replaced", {"message": REPLACED_MESSAGE})
            session.state = "gone"  # its disconnect must not announce a departure
            identity = session.identity
            await self.presence.remove(consult_id, identity.participant_id, sid)
            for room in (
                consult_id,
                admitters_room(consult_id),
                panel_room(consult_id, identity.role),
            ):
                await self.sio.leave_room(sid, room)
            await self.sio.disconnect(sid, ignore_queue=True)

    async def _end_here(self, consult_id: str, reason: str) -> None:
        """Tell the consult's connections held here that it ended, then close them."""
        for sid, session in list(self._sessions.items()):
            if session.identity.consult_id != consult_id or session.state == "gone":
                continue
            await self.router.to_session(sid, "consult-ended", {"reason": reason})
            was_present = session.state in ("waiting", "in-call")
            session.state = "gone"
            if was_present:
                await self.presence.remove(consult_id, session.identity.participant_id, sid)
            if session.ending:
                self._later(self._disconnect_after(sid, 1.0))
            else:
                await self.sio.disconnect(sid, ignore_queue=True)

    # -- media ----------------------------------------------------------------------------

    async def _on_signal(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
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
        await self.router.to_session(
            recipient.sid, "signal", payload.relayed(identity.participant_id)
        )
        return {"ok": True}

    async def _on_media(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        media = parse(MediaPayload, data)
        identity = session.identity
        updated = await self.presence.update_media(
            identity.consult_id, identity.participant_id, sid, media.microphone, media.camera
        )
        if not updated:
            raise EventRefused("not_joined", "This connection is no longer in the call.")
        session.media = media
        await self.sio.emit(
            "participant-media",
            {"participant_id": identity.participant_id, "media": media.model_dump()},
            room=identity.consult_id,
            skip_sid=sid,
        )
        return {"ok": True}

    async def _on_chat(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        payload = parse(ChatPayload, data)
        line = (await self.backend.chat.post(session.identity, payload.text)).wire()
        await self.sio.emit("chat-message", line, room=session.identity.consult_id, skip_sid=sid)
        return {"ok": True, "message": line}

    async def _on_chat_history(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        parse(EmptyPayload, {} if data is None else data)
        lines = await self.backend.chat.recent(session.identity.consult_id)
        return {"ok": True, "messages": [line.wire() for line in lines]}

    async def _on_probe(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        payload = parse(ProbePayload, {} if data is None else data)
        media = self.backend.media
        identity = session.identity
        result: dict[str, Any] = {
            "ok": True,
            "ice": media.ice_configuration(identity.participant_id).wire(),
            "thresholds": media.client_settings(identity.role).probe.wire(),
        }
        if payload.description is not None:
            offer = SessionDescription(payload.description.type, payload.description.sdp)
            answer = await media.probe_answer(identity, offer)
            result["description"] = answer.wire()
        return result

    async def _on_leave(self, sid: str, session: Session, data: Any) -> None:
        parse(EmptyPayload, {} if data is None else data)
        session.leave_reason = "left"
        await self.sio.disconnect(sid, ignore_queue=True)

    # -- for the server -------------------------------------------------------------------

    async def end_consult(self, consult_id: str, reason: str) -> None:
        """Tell every instance the consult ended (each closes the connections it holds)."""
        await self.cluster.publish(ConsultEnded(consult_id, reason))

    async def _disconnect_after(self, sid: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.sio.disconnect(sid, ignore_queue=True)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def present(self, consult_id: str) -> list[dict[str, str]]:
        """Who is here now, on any instance, in the call or waiting (for the REST API)."""
        return [
            {
                "id": member.participant_id,
                "role": member.role,
                "display_name": member.display_name,
                "state": member.state,
            }
            for member in await self.presence.roster(consult_id)
        ]


def _server_time() -> str:
    """Now, by the server's clock: a page counts time since a recorded moment (the visit
    timer) by it, not by its own clock, which may be off by minutes."""
    return dt.datetime.now(dt.UTC).isoformat()


def _self(session: Session) -> dict[str, Any]:
    identity = session.identity
    return {
        "id": identity.participant_id,
        "role": identity.role,
        "display_name": identity.display_name,
        "session": session.session,
        "media": session.media.model_dump(),
    }


def _refused_connection(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """The `connect_error` of docs/protocol.md: `{message: code, data: {code, message}}`."""
    return socketio.exceptions.ConnectionRefusedError(code, {"code": code, "message": message})


def _is_host(identity: Identity) -> bool:
    return is_allowed(Role(identity.role), Action.MANAGE_PARTICIPANTS)


def _require_host(session: Session) -> None:
    if not _is_host(session.identity):
        raise EventRefused(
            "forbidden", f"A {session.identity.role} may not manage who is in the consult."
        )
