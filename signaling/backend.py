"""What signaling needs from the rest of the server: three Protocols and the typed values
that cross them.

Signaling knows nothing about HTTP, tokens, the database or aiortc. The server package
implements `Admissions` (who may be in a consult: links, the waiting room, the lifecycle),
`PanelService` (the medication panel) and `MediaService` (ICE settings, the network probe)
and hands them over together as a `SignalingBackend`. Values cross as dataclasses; each
builds its own wire form (`wire()`), which only signaling calls, at the Socket.IO edge.
Panel entities and events are the one exception: `models/` builds them as JSON objects
(`JsonObject`) because that is also how they are stored and audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from documents.text import Language
from models.errors import Refused

# A JSON object as `models/` builds it for the wire and the audit log (an entity, an event).
JsonObject = dict[str, Any]


class JoinRefused(Refused):
    """A connection, join or lobby action is refused; `code` is from docs/protocol.md."""


@dataclass(frozen=True)
class Identity:
    consult_id: str
    participant_id: str
    role: str
    display_name: str


@dataclass(frozen=True)
class ConsultState:
    """A consult's lifecycle as participants see it."""

    id: str
    status: str
    # When the patient first entered the call (the care team's visit timer), if they did.
    visit_started_at: dt.datetime | None = None

    def wire(self) -> dict[str, str | None]:
        started = self.visit_started_at
        return {
            "id": self.id,
            "status": self.status,
            "visit_started_at": started.isoformat() if started else None,
        }


@dataclass(frozen=True)
class JoinDecision:
    consult: ConsultState
    admitted: bool  # False: the participant waits to be admitted


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def wire(self) -> dict[str, Any]:
        server: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            server["username"] = self.username
            server["credential"] = self.credential
        return server


@dataclass(frozen=True)
class IceConfiguration:
    """An RTCConfiguration: the servers one participant may use, and the transport policy."""

    servers: tuple[IceServer, ...]
    transport_policy: str

    def wire(self) -> dict[str, Any]:
        return {
            "iceServers": [server.wire() for server in self.servers],
            "iceTransportPolicy": self.transport_policy,
        }


@dataclass(frozen=True)
class ProbeThresholds:
    max_rtt_ms: float
    max_loss_percent: float
    min_kbps: float

    def wire(self) -> dict[str, float]:
        return {
            "max_rtt_ms": self.max_rtt_ms,
            "max_loss_percent": self.max_loss_percent,
            "min_kbps": self.min_kbps,
        }


@dataclass(frozen=True)
class ClientSettings:
    """What the client UI needs: what this role may do, the panel's schema, the probe's bar."""

    may: Mapping[str, bool]
    panel_schema: JsonObject
    probe: ProbeThresholds
    # How long a participant whose connection dropped is shown as reconnecting before the
    # others are told that they left.
    reconnect_grace_seconds: float

    def wire(self) -> dict[str, Any]:
        return {
            "may": dict(self.may),
            "panel_schema": self.panel_schema,
            "probe": self.probe.wire(),
            "reconnect_grace_seconds": self.reconnect_grace_seconds,
        }


@dataclass(frozen=True)
class SessionDescription:
    """An SDP offer or answer (the network probe's; signaling never parses SDP)."""

    type: str
    sdp: str

    def wire(self) -> dict[str, str]:
        return {"type": self.type, "sdp": self.sdp}


@dataclass(frozen=True)
class PanelSnapshot:
    """The whole panel at one seq."""

    seq: int
    entities: list[JsonObject]

    def wire(self) -> JsonObject:
        return {"seq": self.seq, "entities": self.entities}


@dataclass(frozen=True)
class PanelChange:
    """One logged event and its entity as it is after it (None: nothing to show)."""

    event: JsonObject
    entity: JsonObject | None


@dataclass(frozen=True)
class MutationOutcome:
    """What one `mutate` did.

    `ack` is the acknowledgement as docs/protocol.md gives it to the care team (signaling
    filters it for a patient); `changes` are the events it logged, in seq order, for
    everyone else: the mutation's own (applied, or a conflict), then its effects.
    """

    ack: JsonObject
    seq: int | None
    replayed: bool
    refusal: Refused | None
    changes: tuple[PanelChange, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @classmethod
    def from_result(cls, result: JsonObject) -> MutationOutcome:
        """The outcome of a result of `models.mutations.apply`."""
        refusal = None
        if not result.get("ok"):
            error = result["error"]
            refusal = Refused(error["code"], error["message"])
        replayed = bool(result.get("replayed"))
        changes: tuple[PanelChange, ...] = ()
        if "event" in result and not replayed:
            changes = (
                PanelChange(result["event"], result.get("entity")),
                *(PanelChange(effect["event"], effect["entity"]) for effect in result["effects"]),
            )
        return cls(
            ack=result,
            seq=result.get("seq"),
            replayed=replayed,
            refusal=refusal,
            changes=changes,
        )


@dataclass(frozen=True)
class PanelHistory:
    entity_id: str
    events: list[JsonObject]

    def wire(self) -> JsonObject:
        return {"ok": True, "entity_id": self.entity_id, "events": self.events}


@dataclass(frozen=True)
class ChatLine:
    """One chat message as participants see it (docs/protocol.md, "Chat")."""

    id: int
    participant_id: str
    display_name: str
    role: str
    at: dt.datetime
    text: str

    def wire(self) -> JsonObject:
        return {
            "id": self.id,
            "author": {
                "id": self.participant_id,
                "role": self.role,
                "display_name": self.display_name,
            },
            "at": self.at.isoformat(),
            "text": self.text,
        }


class Admissions(Protocol):
    """Who may be in a consult: join links, the waiting room, the consult's lifecycle."""

    async def authenticate(self, token: str) -> Identity:
        """The identity behind a join token; raises JoinRefused."""

    async def record_join(
        self,
        identity: Identity,
        display_name: str | None,
        *,
        consent_language: Language | None,
        present_elsewhere: bool,
    ) -> JoinDecision:
        """Persist the arrival (name, consent, lifecycle) and decide call or waiting room;
        `consent_language` is the language of the consent text accepted (None: not given).
        a participant let straight into the call is recorded in it too (`record_in_call`
        is for those admitted from the waiting room).

        Raises JoinRefused (consult ended, consent required…)."""

    async def record_in_call(self, identity: Identity) -> ConsultState:
        """The participant, admitted from the waiting room, is now in the call."""

    async def record_leave(
        self, identity: Identity, reason: str, *, at: dt.datetime | None = None
    ) -> None:
        """The participant left (`at`: when, if not now: a crashed instance's last sign)."""

    async def record_seen(self, participant_ids: Collection[str]) -> None:
        """These participants are still connected now (presence's heartbeat)."""

    async def admit(self, host: Identity, participant_id: str) -> None: ...

    async def deny(self, host: Identity, participant_id: str) -> None: ...

    async def remove(self, host: Identity, participant_id: str) -> None: ...

    async def end_consult(self, host: Identity, reason: str) -> None:
        """End the consult for everyone, on every instance; raises JoinRefused if it ended."""

    async def ended_among(self, consult_ids: Collection[str]) -> dict[str, str]:
        """Those of these consults that have ended, with their end reasons (to catch up
        after missed messages)."""


class PanelService(Protocol):
    """The medication panel: its state, its mutations, its audit log."""

    async def snapshot(self, consult_id: str) -> PanelSnapshot: ...

    async def mutate(self, identity: Identity, mutation: object) -> MutationOutcome:
        """Apply and commit one mutation (an unparsed payload; models/ validates it)."""

    async def history(self, identity: Identity, entity_id: str) -> PanelHistory:
        """Every event of one entity; raises Refused if the role may not read it."""

    async def events_since(self, consult_id: str, since: int, *, limit: int) -> list[JsonObject]:
        """At most `limit` events after seq `since`, in seq order."""


class ChatService(Protocol):
    """The call's text chat, kept in the consult's record."""

    async def post(self, identity: Identity, text: str) -> ChatLine:
        """Keep one message; raises Refused (bad text, consult ended, chat full)."""

    async def recent(self, consult_id: str) -> list[ChatLine]:
        """The latest messages, oldest first."""


class MediaService(Protocol):
    """What the media plane needs from the server: ICE settings and the network probe."""

    def ice_configuration(self, participant_id: str) -> IceConfiguration: ...

    def client_settings(self, role: str) -> ClientSettings: ...

    async def probe_answer(
        self, identity: Identity, offer: SessionDescription
    ) -> SessionDescription:
        """Answer a pre-join network-check offer; raises JoinRefused when busy or bad."""


@dataclass(frozen=True)
class SignalingBackend:
    admissions: Admissions
    panel: PanelService
    media: MediaService
    chat: ChatService
