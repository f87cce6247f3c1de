"""Medication-panel events: `mutate`, `panel-sync`, `panel-history` (docs/protocol.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from models import audience
from signaling.backend import MutationOutcome, PanelService
from signaling.payloads import PanelHistoryPayload, PanelSyncPayload, parse
from signaling.sessions import EventRouter, Session


def panel_room(consult_id: str, role: str) -> str:
    """Panel events go to two rooms per consult: the care team's gets every event whole,
    the patients' gets each one as `models.audience` lets a patient see it."""
    return f"{consult_id}/panel/{'team' if audience.sees_care_team(role) else 'patient'}"


class PanelEvents:
    def __init__(
        self,
        router: EventRouter,
        sio: socketio.AsyncServer,
        panel: PanelService,
        *,
        sync_max_events: int,
    ) -> None:
        self._router = router
        self._sio = sio
        self._panel = panel
        self._sync_max_events = sync_max_events
        # Mutations of one consult are applied and broadcast one at a time, so that
        # `panel-event`s leave this instance in seq order.
        self._consult_locks: dict[str, asyncio.Lock] = {}
        router.on("mutate", self._on_mutate)
        router.on("panel-sync", self._on_panel_sync)
        router.on("panel-history", self._on_panel_history)

    async def _on_mutate(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        consult_id = session.identity.consult_id
        lock = self._consult_locks.setdefault(consult_id, asyncio.Lock())
        async with lock:
            outcome = await self._panel.mutate(session.identity, data)
            await self._broadcast(consult_id, outcome)
        if outcome.refusal is not None and outcome.refusal.code != "conflict":
            refusal = outcome.refusal
            await self._router.emit_error(sid, "mutate", refusal.code, refusal.message)
        return audience.result_for(session.identity.role, outcome.ack)

    async def _broadcast(self, consult_id: str, outcome: MutationOutcome) -> None:
        """The mutation's event, then each derived one, in seq order, to each audience.

        An event a patient may see whole is one packet to both rooms (encoded once, as
        docs/protocol.md says); otherwise each room gets its own view."""
        team_room = panel_room(consult_id, "pharmacist")
        patient_room = panel_room(consult_id, "patient")
        for change in outcome.changes:
            team = audience.event_for("pharmacist", change.event, change.entity)
            patient = audience.event_for("patient", change.event, change.entity)
            if patient["event"] is team["event"] and patient["entity"] is team["entity"]:
                await self._sio.emit("panel-event", team, to=[team_room, patient_room])
                continue
            await self._sio.emit("panel-event", team, to=team_room)
            await self._sio.emit("panel-event", patient, to=patient_room)

    async def _on_panel_sync(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        payload = parse(PanelSyncPayload, {} if data is None else data)
        consult_id = session.identity.consult_id
        role = session.identity.role
        panel = await self._panel.snapshot(consult_id)
        # Seqs have no gaps, so the gap is known before reading any event; events stop at
        # the snapshot's seq so that the two always agree.
        gap = 0 if payload.since is None else max(0, panel.seq - payload.since)
        snapshot_only = gap > self._sync_max_events
        events: list[dict[str, Any]] = []
        if gap and not snapshot_only:
            assert payload.since is not None
            found = await self._panel.events_since(consult_id, payload.since, limit=gap)
            events = [event for event in found if event["seq"] <= panel.seq]
        entities = {entity["id"]: entity for entity in panel.entities}
        return {
            "ok": True,
            "panel": audience.panel_for(role, panel.wire()),
            "events": audience.events_for(role, events, entities),
            "snapshot_only": snapshot_only,
        }

    async def _on_panel_history(self, sid: str, session: Session, data: Any) -> dict[str, Any]:
        payload = parse(PanelHistoryPayload, data)
        history = await self._panel.history(session.identity, payload.entity_id)
        return history.wire()
