"""What signaling needs from the rest of the server, as a Protocol the server implements.

Signaling knows nothing about HTTP, tokens, the database or aiortc: the server package
supplies a `SignalingBackend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from models.errors import Refused


class JoinRefused(Refused):
    """A connection, join or lobby action is refused; `code` is from docs/protocol.md."""


@dataclass(frozen=True)
class Identity:
    consult_id: str
    participant_id: str
    role: str
    display_name: str


@dataclass(frozen=True)
class JoinDecision:
    consult: dict[str, Any]  # {id, status}
    admitted: bool  # False: the participant waits to be admitted


class SignalingBackend(Protocol):
    async def authenticate(self, token: str) -> Identity:
        """The identity behind a join token; raises JoinRefused."""

    async def record_join(
        self,
        identity: Identity,
        display_name: str | None,
        *,
        consent_accepted: bool,
        present_elsewhere: bool,
    ) -> JoinDecision:
        """Persist the arrival (name, consent, lifecycle) and decide call or waiting room.

        Raises JoinRefused (consult ended, consent required…)."""

    async def record_in_call(self, identity: Identity) -> dict[str, Any]:
        """The participant is now in the call (joined or admitted); the consult's `{id, status}`."""

    async def record_leave(self, identity: Identity, reason: str) -> None: ...

    async def admit(self, host: Identity, participant_id: str) -> None: ...

    async def deny(self, host: Identity, participant_id: str) -> None: ...

    async def remove(self, host: Identity, participant_id: str) -> None: ...

    async def end_consult(self, host: Identity, reason: str) -> None:
        """Mark the consult ended (the caller then tells everyone)."""

    def ice_configuration(self, participant_id: str) -> dict[str, Any]: ...

    def client_settings(self, role: str) -> dict[str, Any]:
        """Settings the client UI needs (what this role may do, probe thresholds)."""

    async def probe_answer(self, identity: Identity, offer: dict[str, Any]) -> dict[str, Any]:
        """Answer a pre-join network-check offer; raises JoinRefused when busy or bad."""

    async def panel_snapshot(self, consult_id: str) -> dict[str, Any]:
        """`{seq, entities}`: the consult's medication panel now."""

    async def apply_mutation(self, identity: Identity, mutation: Any) -> dict[str, Any]:
        """Apply and commit one panel mutation; the result as docs/protocol.md gives it."""

    async def panel_history(self, identity: Identity, entity_id: str) -> dict[str, Any]:
        """`{ok, events}` for one entity, or `{ok: false, error}` if the role may not read it."""

    async def panel_events_since(
        self, consult_id: str, since: int, *, limit: int
    ) -> list[dict[str, Any]]:
        """At most `limit` events after seq `since`, in seq order."""
