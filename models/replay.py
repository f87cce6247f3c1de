"""The panel as it was at any seq, rebuilt from the append-only change log.

Documents are generated from the log's state at a given seq, so the same request gives the
same document however the panel changed since (a prescriber's later answer, say). Folding
the events 1..seq applies each one exactly as `models/mutations.py` applied it, including
what a mutation changes beside its events (who decided a recommendation, the values a
patient confirmed, the confirmation's version following its bound values); a test replays
whole consults and compares the result with the stored panel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from models.mutations import (
    Actor,
    EntityRecord,
    PanelState,
    _confirmed_values,
    _decided,
)
from models.panel import CONFIRMATION_BOUND, FIELDS, EntityType


class ReplayError(Exception):
    """The log does not hold the events asked for (a gap, or a seq past its end)."""


def state_at(
    consult_id: str, status: str, events: Iterable[dict[str, Any]], seq: int
) -> PanelState:
    """The panel after the events up to and including `seq` (`EventRecord.json()` shapes, in
    seq order, starting at 1). `status` is the consult's status to report with it."""
    state = PanelState(consult_id=consult_id, status=status, last_seq=0)
    for event in events:
        if event["seq"] > seq:
            break
        if event["seq"] != state.last_seq + 1:
            raise ReplayError(f"the change log has no event {state.last_seq + 1}")
        state.last_seq = event["seq"]
        if event["outcome"] == "applied":
            _apply(state, event)
    if state.last_seq != seq:
        raise ReplayError(f"the change log ends at {state.last_seq}, before {seq}")
    return state


def _apply(state: PanelState, event: dict[str, Any]) -> None:
    actor = event["actor"]
    who = {"id": actor["id"], "name": actor["name"], "role": actor["role"]}
    at = dt.datetime.fromisoformat(event["at"])
    seq = event["seq"]
    name = event["field"]
    if name is None:  # an add, or a medication created by an accepted recommendation
        data = dict(event["new"])
        position = data.pop("position")
        fields = FIELDS[EntityType(event["entity_type"])]
        state.entities[event["entity_id"]] = EntityRecord(
            type=event["entity_type"],
            id=event["entity_id"],
            position=position,
            data=data,
            versions={field: seq for field in fields},
            created_seq=seq,
            updated_seq=seq,
            updated_at=at,
            updated_by_name=actor["name"],
            updated_by_role=actor["role"],
            authors={field: dict(who) for field in fields},
        )
        return
    record = state.entities[event["entity_id"]]
    touched = {
        "updated_seq": seq,
        "updated_at": at,
        "updated_by_name": actor["name"],
        "updated_by_role": actor["role"],
    }
    if event["op"] == "move":
        state.entities[record.id] = replace(record, position=event["new"], **touched)
        return
    value = event["new"]
    data = {**record.data, name: value}
    versions = {**record.versions, name: seq}
    if record.type == EntityType.RECOMMENDATION.value and name == "status":
        data.update(_decided(Actor(actor["id"], actor["name"], actor["role"]), at))
        response = (event.get("detail") or {}).get("response")
        if response is not None:
            data["decision_notes"] = response.get("notes")
    if record.type == EntityType.MEDICATION.value:
        if name == "patient_confirmation" and value != "needs-confirming":
            data["confirmed_values"] = _confirmed_values(data)
        if name in CONFIRMATION_BOUND and value != event["old"]:
            versions["patient_confirmation"] = seq
    state.entities[record.id] = replace(
        record,
        data=data,
        versions=versions,
        authors={**record.authors, name: who},
        **touched,
    )
