"""What each person sees of a consult's panel, and what is still open.

Problems, recommendations, plan items and a medication's care-team notes carry an audience:
"care-team" (only the pharmacist and clinicians) or "patient" (shared with the patient).
The server passes everything it sends through these functions, so a patient connection
never receives care-team-only data: not in a snapshot, an event, a sync or an answer.
Works on the JSON shapes of `EntityRecord.json()` and `EventRecord.json()`.
"""

from __future__ import annotations

from typing import Any

from models.panel import CARE_TEAM, TO_CONFIRM_STATUSES, UNCONFIRMED, UNDECIDED, EntityType
from models.roles import Action, Role, is_allowed


def sees_care_team(role: str) -> bool:
    """A clinic (REST) and the care team see everything; a patient only what is shared."""
    return role == "clinic" or is_allowed(Role(role), Action.READ_CARE_TEAM)


def _notes_shared(data: dict[str, Any]) -> bool:
    return data.get("notes_audience") == "patient"


def _shared(entity: dict[str, Any]) -> bool:
    if entity["type"] == EntityType.MEDICATION.value:
        return True
    return bool(entity["data"].get("audience", CARE_TEAM) == "patient")


# A prescriber's notes on their answer to a recommendation are for the care team.
_TEAM_ONLY_KEYS = {EntityType.RECOMMENDATION.value: frozenset({"decision_notes"})}


def _patient_data(entity_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` as a patient may see it: the same object when nothing is kept from them (so a
    caller can tell that one payload serves everyone)."""
    hidden = set(_TEAM_ONLY_KEYS.get(entity_type, ()))
    # An empty note says nothing: kept, so that one payload still serves everyone.
    if entity_type == EntityType.MEDICATION.value and data.get("notes") is not None:
        if not _notes_shared(data):
            hidden.add("notes")
    if not hidden & data.keys():
        return data
    return {name: value for name, value in data.items() if name not in hidden}


def entity_for(role: str, entity: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entity as `role` may see it, or None when it is kept from them."""
    if entity is None or sees_care_team(role):
        return entity
    if not _shared(entity):
        return None
    data = _patient_data(entity["type"], entity["data"])
    if data is entity["data"]:
        return entity
    return {
        **entity,
        "data": data,
        "versions": {k: v for k, v in entity["versions"].items() if k in data},
        "authors": {k: v for k, v in entity.get("authors", {}).items() if k in data},
    }


def panel_for(role: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    """A `{seq, entities}` snapshot as `role` may see it (same seq)."""
    if sees_care_team(role):
        return snapshot
    entities = [entity_for(role, entity) for entity in snapshot["entities"]]
    return {**snapshot, "entities": [entity for entity in entities if entity is not None]}


def _stub(event: dict[str, Any], op: str) -> dict[str, Any]:
    """An event that keeps the seq moving and says nothing else."""
    removed = op == "remove"
    return {
        "seq": event["seq"],
        "at": event["at"],
        "actor": None,
        "op": op,
        "entity_type": event["entity_type"] if removed else None,
        "entity_id": event["entity_id"] if removed else None,
        "field": None,
        "old": None,
        "new": None,
        "mutation_id": None,
        "outcome": "applied" if removed else "hidden",
        "source": None,
        "detail": None,
    }


def event_for(role: str, event: dict[str, Any], entity: dict[str, Any] | None) -> dict[str, Any]:
    """A `panel-event` payload `{event, entity}` for `role`; `entity` is the entity after it.

    Kept from a patient: an event of a care-team-only entity becomes a "hidden" stub (only
    its seq), one that made an entity care-team-only a "remove" of it, and one of a
    medication's unshared notes a "hidden" stub with the medication as the patient sees it
    (so every copy of it agrees on `updated_seq`).
    """
    if sees_care_team(role):
        return {"event": event, "entity": entity}
    visible = entity_for(role, entity)
    if visible is None:
        was_shared = event.get("field") == "audience" and event.get("old") == "patient"
        return {"event": _stub(event, "remove" if was_shared else "hidden"), "entity": None}
    if event.get("field") == "notes" and not _notes_shared(visible["data"]):
        return {"event": _stub(event, "hidden"), "entity": visible}
    if event.get("field") is None and isinstance(event.get("new"), dict):
        new = _patient_data(visible["type"], event["new"])
        if new is not event["new"]:
            event = {**event, "new": new}
    return {"event": event, "entity": visible}


def events_for(
    role: str, events: list[dict[str, Any]], entities: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Logged events (a sync's catch-up) for `role`, judged by the entities as they are now."""
    if sees_care_team(role):
        return events
    return [event_for(role, event, entities.get(event["entity_id"]))["event"] for event in events]


def result_for(role: str, result: dict[str, Any]) -> dict[str, Any]:
    """A `mutate` acknowledgement for `role` (its entity and effects filtered)."""
    if sees_care_team(role) or "event" not in result:
        return result
    primary = event_for(role, result["event"], result.get("entity"))
    filtered = {**result, "event": primary["event"], "entity": primary["entity"]}
    if "effects" in result:
        filtered["effects"] = [
            event_for(role, effect["event"], effect["entity"]) for effect in result["effects"]
        ]
    if isinstance(result.get("current"), dict):
        current = result["current"]
        filtered["current"] = {**current, "entity": entity_for(role, current.get("entity"))}
    return filtered


def open_items(entities: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What is still waiting: recommendations for the clinician to decide, medications for the
    patient to confirm (active or on hold, never confirmed or changed since), in list order."""
    return {
        "to_decide": [
            e["id"]
            for e in entities
            if e["type"] == EntityType.RECOMMENDATION.value and e["data"]["status"] in UNDECIDED
        ],
        "to_confirm": [
            e["id"]
            for e in entities
            if e["type"] == EntityType.MEDICATION.value
            and e["data"]["status"] in TO_CONFIRM_STATUSES
            and e["data"].get("patient_confirmation") in UNCONFIRMED
        ],
    }


_GROUPS = {
    EntityType.MEDICATION.value: "medications",
    EntityType.PROBLEM.value: "problems",
    EntityType.RECOMMENDATION.value: "recommendations",
    EntityType.PLAN_ITEM.value: "plan_items",
}


def record_for(role: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The whole panel as `role` may see it, grouped by kind, with what is still open: the
    record a clinic reads after the call and the patient's read-only page shows."""
    visible = panel_for(role, snapshot)["entities"]
    record: dict[str, Any] = {"seq": snapshot["seq"]}
    for entity_type, group in _GROUPS.items():
        record[group] = [entity for entity in visible if entity["type"] == entity_type]
    record["open"] = open_items(visible)
    return record
