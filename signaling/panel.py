"""Medication-panel events: `mutate`, `panel-sync`, `panel-history` (docs/protocol.md)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from models import audience
from signaling.payloads import EventRefused, PanelHistoryPayload, PanelSyncPayload, parse

if TYPE_CHECKING:
    from signaling.handlers import ConsultSignaling, _Session


def panel_room(consult_id: str, role: str) -> str:
    """Panel events go to two rooms per consult: the care team's gets every event whole,
    the patients' gets each one as `models.audience` lets a patient see it."""
    return f"{consult_id}/panel/{'team' if audience.sees_care_team(role) else 'patient'}"


class PanelEvents:
    def __init__(self, core: ConsultSignaling) -> None:
        self.core = core
        # Mutations of one consult are applied and broadcast one at a time, so that
        # `panel-event`s leave this process in seq order.
        self._consult_locks: dict[str, asyncio.Lock] = {}
        core.on("mutate", self._on_mutate)
        core.on("panel-sync", self._on_panel_sync)
        core.on("panel-history", self._on_panel_history)

    async def _on_mutate(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        consult_id = session.identity.consult_id
        lock = self._consult_locks.setdefault(consult_id, asyncio.Lock())
        async with lock:
            result = await self.core.backend.apply_mutation(session.identity, data)
            if result.get("seq") is not None and not result.get("replayed"):
                await self._broadcast(consult_id, result)
        if not result["ok"] and result["error"]["code"] != "conflict":
            error = result["error"]
            await self.core.emit_error(sid, "mutate", error["code"], error["message"])
        return audience.result_for(session.identity.role, result)

    async def _broadcast(self, consult_id: str, result: dict[str, Any]) -> None:
        """The mutation's event, then each derived one, in seq order, to each audience."""
        payloads = [{"event": result["event"], "entity": result.get("entity")}]
        payloads += result.get("effects") or []
        for role in ("pharmacist", "patient"):
            room = panel_room(consult_id, role)
            for payload in payloads:
                await self.core.sio.emit(
                    "panel-event",
                    audience.event_for(role, payload["event"], payload["entity"]),
                    room=room,
                )

    async def _on_panel_sync(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = parse(PanelSyncPayload, {} if data is None else data)
        consult_id = session.identity.consult_id
        role = session.identity.role
        panel = await self.core.backend.panel_snapshot(consult_id)
        # Seqs have no gaps, so the gap is known before reading any event; events stop at
        # the snapshot's seq so that the two always agree.
        gap = 0 if payload.since is None else max(0, panel["seq"] - payload.since)
        snapshot_only = gap > self.core.limits.panel_sync_max_events
        events: list[dict[str, Any]] = []
        if gap and not snapshot_only:
            assert payload.since is not None
            found = await self.core.backend.panel_events_since(consult_id, payload.since, limit=gap)
            events = [event for event in found if event["seq"] <= panel["seq"]]
        entities = {entity["id"]: entity for entity in panel["entities"]}
        return {
            "ok": True,
            "panel": audience.panel_for(role, panel),
            "events": audience.events_for(role, events, entities),
            "snapshot_only": snapshot_only,
        }

    async def _on_panel_history(self, sid: str, session: _Session, data: Any) -> dict[str, Any]:
        payload = parse(PanelHistoryPayload, data)
        result = await self.core.backend.panel_history(session.identity, payload.entity_id)
        if not result["ok"]:
            raise EventRefused(result["error"]["code"], result["error"]["message"])
        return result
