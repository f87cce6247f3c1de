"""The server's side of the medication panel (signaling's `PanelService`): mutations through
the group-commit writer, reads straight from the database (a joiner's snapshot through a
`ReadBatch`, which reads the panels of many joining at once in one statement)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import mutations, panel_store
from models.batching import ReadBatch
from models.errors import Refused
from models.panel_writer import PanelWriter
from models.roles import Action, Role, is_allowed
from signaling.backend import Identity, JsonObject, MutationOutcome, PanelHistory, PanelSnapshot


class DatabasePanel:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], panel_writer: PanelWriter
    ) -> None:
        self._sessions = sessions
        self._panel_writer = panel_writer
        self._snapshots: ReadBatch[str, dict[str, Any]] = ReadBatch(self._read_snapshots)

    async def snapshot(self, consult_id: str) -> PanelSnapshot:
        found = await self._snapshots.get(consult_id)
        if found is None:
            raise panel_store.unknown_consult()
        return PanelSnapshot(seq=found["seq"], entities=found["entities"])

    async def _read_snapshots(self, consult_ids: Collection[str]) -> dict[str, Any]:
        async with self._sessions() as session:
            return await panel_store.snapshots(session, consult_ids)

    async def mutate(self, identity: Identity, mutation: object) -> MutationOutcome:
        actor = mutations.Actor(
            participant_id=identity.participant_id, name=identity.display_name, role=identity.role
        )
        result = await self._panel_writer.submit(identity.consult_id, actor, mutation)
        return MutationOutcome.from_result(result)

    async def history(self, identity: Identity, entity_id: str) -> PanelHistory:
        if not is_allowed(Role(identity.role), Action.READ_AUDIT):
            raise Refused("forbidden", "A patient may not read the audit trail.")
        async with self._sessions() as session:
            events = await panel_store.history(session, identity.consult_id, entity_id)
        return PanelHistory(entity_id=entity_id, events=events)

    async def events_since(self, consult_id: str, since: int, *, limit: int) -> list[JsonObject]:
        async with self._sessions() as session:
            return await panel_store.events_since(session, consult_id, since, limit=limit)
