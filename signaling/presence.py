"""Who is in which consult (in the call, or in the waiting room), behind one small interface.

In-process for now; a Redis-backed store with the same interface lets many server
processes act as one. Nothing here lives in module globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

PresenceState = Literal["in-call", "waiting"]


@dataclass(frozen=True)
class PresentParticipant:
    participant_id: str
    role: str
    display_name: str
    sid: str
    state: PresenceState = "in-call"

    def public(self) -> dict[str, str]:
        """The roster entry other participants see (never the socket id)."""
        return {"id": self.participant_id, "role": self.role, "display_name": self.display_name}


class PresenceStore(Protocol):
    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        """Record `entry` (replacing the same participant's); returns the entry it replaced."""

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        """Forget the participant if `sid` is still its connection; True if removed."""

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None: ...

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        """Everyone present, in the call or waiting, in arrival order."""


class InMemoryPresence:
    """Presence for a single server process."""

    def __init__(self) -> None:
        self._consults: dict[str, dict[str, PresentParticipant]] = {}

    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        members = self._consults.setdefault(consult_id, {})
        previous = members.pop(entry.participant_id, None)
        members[entry.participant_id] = entry
        return previous

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        members = self._consults.get(consult_id)
        if not members or participant_id not in members:
            return False
        if members[participant_id].sid != sid:
            return False
        del members[participant_id]
        if not members:
            del self._consults[consult_id]
        return True

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None:
        return self._consults.get(consult_id, {}).get(participant_id)

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        return list(self._consults.get(consult_id, {}).values())
