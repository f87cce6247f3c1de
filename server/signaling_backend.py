"""The database-backed side of signaling: who a token is, and recording a join."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import consults, mutations
from models.roles import Action, Role, is_allowed
from models.tables import ConsultStatus
from server import links
from server.config import IceSettings
from server.ice import ice_configuration
from server.tokens import LinkSigner, TokenError
from signaling.handlers import Identity, JoinRefused


class DatabaseSignalingBackend:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signer: Callable[[], LinkSigner],
        ice: IceSettings,
        clock: Callable[[], float],
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._ice = ice
        self._clock = clock

    async def authenticate(self, token: str) -> Identity:
        async with self._sessions() as session:
            try:
                consult, participant = await links.resolve(
                    session, self._signer(), token, now=self._clock()
                )
            except TokenError as exc:
                raise JoinRefused(exc.code, exc.message) from None
        return Identity(
            consult_id=consult.id,
            participant_id=participant.id,
            role=participant.role,
            display_name=participant.display_name,
        )

    async def record_join(self, identity: Identity, display_name: str | None) -> dict[str, Any]:
        async with self._sessions() as session, session.begin():
            participant = await consults.get_participant(session, identity.participant_id)
            if participant is None:
                raise JoinRefused("unknown_participant", "This link is no longer valid.")
            consult = participant.consult
            if consult.status == ConsultStatus.ENDED.value:
                raise JoinRefused("consult_ended", "This consult has ended.")
            if display_name is not None:
                participant.display_name = display_name
            consults.mark_live(consult)
            return {"id": consult.id, "status": consult.status}

    def ice_configuration(self, participant_id: str) -> dict[str, Any]:
        return ice_configuration(self._ice, participant_id, now=self._clock())

    async def panel_snapshot(self, consult_id: str) -> dict[str, Any]:
        async with self._sessions() as session:
            return await mutations.snapshot(session, consult_id)

    async def panel_events_since(self, consult_id: str, since: int) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return await mutations.events_since(session, consult_id, since)

    async def apply_mutation(self, identity: Identity, mutation: Any) -> dict[str, Any]:
        actor = mutations.Actor(
            participant_id=identity.participant_id, name=identity.display_name, role=identity.role
        )
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        try:
            async with self._sessions() as session, session.begin():
                return await mutations.apply_mutation(
                    session, identity.consult_id, actor, mutation, now=now
                )
        except mutations.MutationError as refused:
            return refused.result()

    async def panel_history(self, identity: Identity, entity_id: str) -> dict[str, Any]:
        if not is_allowed(Role(identity.role), Action.READ_AUDIT):
            return {
                "ok": False,
                "error": {
                    "code": "forbidden",
                    "message": "A patient may not read the audit trail.",
                },
            }
        async with self._sessions() as session:
            events = await mutations.history(session, identity.consult_id, entity_id)
        return {"ok": True, "entity_id": entity_id, "events": events}
