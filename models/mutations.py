"""Every change to a consult's panel goes through `apply`: permission, validation,
compare-and-set, the audit event and the new state. Plain functions over an in-memory
`PanelState`; no I/O here (models/panel_store.py loads and persists the state).

A mutation is `{mutation_id, op, entity, entity_id?, field?, value?, base_version?, after?}`:

- `add`: create an entity; `value` maps fields to values; `after` places it (null: first;
  absent: last); `entity_id` may be proposed by the client (so it can edit the entity before
  the add is acknowledged) and must be unused.
- `set`: change one `field` of `entity_id` to `value`. Compare-and-set fields (strength, how
  taken, stop date, status, a recommendation's decision) need `base_version`: the version of
  that field the editor saw. A stale one is rejected with the current value, recorded in the
  log as a conflict, and nothing changes.
- `move`: reorder `entity_id` to follow `after` (null: first).

Results are plain dicts sent to clients as they are (docs/protocol.md, "Medication panel").
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models import positions
from models.errors import Refused
from models.panel import CREATE_ACTION, FIELDS, TRANSITIONS, EntityType, FieldSpec
from models.roles import Action, Role, is_allowed
from models.tables import ConsultStatus

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class MutationError(Refused):
    """The mutation is refused and nothing changed; `code` is from docs/protocol.md."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a participant, or a clinic through the REST API (no participant)."""

    participant_id: str | None
    name: str
    role: str  # a Role value, or "clinic"

    def may(self, action: Action) -> bool:
        if self.role == "clinic":
            return True
        return is_allowed(Role(self.role), action)


class Mutation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mutation_id: str = Field(pattern=ID_PATTERN)
    op: Literal["add", "set", "move"]
    entity: EntityType
    entity_id: str | None = Field(None, pattern=ID_PATTERN)
    field: str | None = Field(None, max_length=64)
    value: Any = None
    base_version: int | None = Field(None, ge=0)
    after: str | None = Field(None, pattern=ID_PATTERN)


def parse_mutation(raw: Any) -> Mutation:
    if not isinstance(raw, dict):
        raise MutationError("invalid_mutation", "A mutation must be a JSON object.")
    try:
        return Mutation.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "mutation"
        message = (
            "is not a known field"
            if error["type"] == "extra_forbidden"
            else error["msg"].removeprefix("Value error, ")
        )
        raise MutationError("invalid_mutation", f"{where}: {message}") from None


# -- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityRecord:
    """One medication, problem, recommendation or plan item as it is now."""

    type: str
    id: str
    position: str
    data: dict[str, Any]
    # Per field, the seq of the change that last set it (the version an editor saw).
    versions: dict[str, int]
    created_seq: int
    updated_seq: int
    updated_at: dt.datetime
    updated_by_name: str
    updated_by_role: str

    def json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "position": self.position,
            "data": dict(self.data),
            "versions": dict(self.versions),
            "created_seq": self.created_seq,
            "updated_seq": self.updated_seq,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": {"name": self.updated_by_name, "role": self.updated_by_role},
        }


@dataclass(frozen=True)
class EventRecord:
    """One row of the append-only audit log."""

    seq: int
    at: dt.datetime
    actor_id: str | None
    actor_name: str
    actor_role: str
    op: str
    entity_type: str
    entity_id: str
    field: str | None
    old: Any
    new: Any
    mutation_id: str | None
    outcome: str  # "applied" or "conflict"

    def json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": {"id": self.actor_id, "name": self.actor_name, "role": self.actor_role},
            "op": self.op,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "mutation_id": self.mutation_id,
            "outcome": self.outcome,
        }


@dataclass
class PanelState:
    """A consult's panel: what a mutation reads and changes."""

    consult_id: str
    status: str
    last_seq: int
    entities: dict[str, EntityRecord] = field(default_factory=dict)
    # (participant id, mutation id) -> the first result given for it.
    receipts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def ordered(self, entity_type: str, *, exclude: str | None = None) -> list[EntityRecord]:
        return sorted(
            (e for e in self.entities.values() if e.type == entity_type and e.id != exclude),
            key=lambda e: (e.position, e.id),
        )

    def snapshot(self) -> dict[str, Any]:
        rows = sorted(self.entities.values(), key=lambda e: (e.position, e.id))
        return {"seq": self.last_seq, "entities": [row.json() for row in rows]}


@dataclass
class Changes:
    """What one or more mutations changed, for the store to write."""

    events: list[EventRecord] = field(default_factory=list)
    created: dict[str, EntityRecord] = field(default_factory=dict)
    updated: dict[str, EntityRecord] = field(default_factory=dict)
    receipts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def extend(self, other: Changes) -> None:
        self.events += other.events
        for entity_id, record in other.created.items():
            self.created[entity_id] = record
        for entity_id, record in other.updated.items():
            if entity_id in self.created:
                self.created[entity_id] = record
            else:
                self.updated[entity_id] = record
        self.receipts += other.receipts


# -- applying -----------------------------------------------------------------------------


def apply(
    state: PanelState, actor: Actor, raw: Any, *, now: dt.datetime
) -> tuple[dict[str, Any], Changes]:
    """Apply one mutation to `state` (in place) and return its result and what changed.

    `{"ok": true, "seq", "event", "entity"}` when applied; `{"ok": false, "error", ...}`
    otherwise (a conflict also carries `seq`, `event` and `current`). Only an applied or
    conflicting mutation writes an event; a refused one changes nothing but its receipt.
    A mutation id the participant used before returns the first result, with
    `"replayed": true`, and changes nothing. Raises MutationError only when `raw` is not a
    mutation at all (no usable mutation id).
    """
    mutation = parse_mutation(raw)
    changes = Changes()
    key = (actor.participant_id, mutation.mutation_id) if actor.participant_id else None
    if key is not None and key in state.receipts:
        return {**state.receipts[key], "replayed": True}, changes
    try:
        result = _apply(state, actor, mutation, now, changes)
    except MutationError as refused:
        result = refused.result()
    if key is not None:
        state.receipts[key] = result
        changes.receipts.append((key[0], key[1], result))
    return result, changes


def _apply(
    state: PanelState, actor: Actor, mutation: Mutation, now: dt.datetime, changes: Changes
) -> dict[str, Any]:
    if state.status == ConsultStatus.ENDED.value:
        raise MutationError("consult_ended", "This consult has ended; the list is read-only.")
    if mutation.op == "add":
        return _add(state, actor, mutation, now, changes)
    if mutation.entity_id is None:
        raise MutationError("invalid_mutation", f"'{mutation.op}' needs entity_id.")
    record = state.entities.get(mutation.entity_id)
    if record is None or record.type != mutation.entity.value:
        raise MutationError(
            "unknown_entity", f"There is no {mutation.entity.value} with this id in this consult."
        )
    if mutation.op == "move":
        return _move(state, actor, mutation, record, now, changes)
    return _set(state, actor, mutation, record, now, changes)


def _field_spec(entity: EntityType, name: str | None) -> FieldSpec:
    if name is None:
        raise MutationError("invalid_mutation", "'set' needs a field.")
    spec = FIELDS[entity].get(name)
    if spec is None:
        known = ", ".join(FIELDS[entity])
        raise MutationError(
            "unknown_field", f"A {entity.value} has no field '{name}'. Known fields: {known}."
        )
    return spec


def _validated(name: str, spec: FieldSpec, value: Any) -> Any:
    try:
        clean = spec.validate(value)
    except ValueError as exc:
        raise MutationError("invalid_value", f"{spec.label or name}: {exc}") from None
    if clean is None and spec.required:
        raise MutationError("invalid_value", f"{spec.label or name} is required.")
    return clean


def _forbid_unless(actor: Actor, action: Action, what: str) -> None:
    if not actor.may(action):
        raise MutationError("forbidden", f"A {actor.role} may not {what}.")


def _check_references(state: PanelState, entity: EntityType, data: dict[str, Any]) -> None:
    """Links between entities must point at entities of the right kind in this consult."""
    wanted: list[tuple[str, EntityType]] = []
    if entity is EntityType.PROBLEM:
        wanted += [(mid, EntityType.MEDICATION) for mid in data.get("medication_ids") or []]
    if entity is EntityType.RECOMMENDATION and data.get("problem_id"):
        wanted.append((data["problem_id"], EntityType.PROBLEM))
    for entity_id, kind in wanted:
        record = state.entities.get(entity_id)
        if record is None or record.type != kind.value:
            raise MutationError("invalid_value", f"There is no {kind.value} '{entity_id}' here.")


def _check_dates(data: dict[str, Any]) -> None:
    start, stop = data.get("start_date"), data.get("stop_date")
    if start and stop and stop < start:
        raise MutationError("invalid_value", "Stop date cannot be before the start date.")


def _add(
    state: PanelState, actor: Actor, mutation: Mutation, now: dt.datetime, changes: Changes
) -> dict[str, Any]:
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"add a {entity.value}")
    if mutation.field is not None or mutation.base_version is not None:
        raise MutationError("invalid_mutation", "'add' takes value (and after), not field.")
    if not isinstance(mutation.value, dict):
        raise MutationError("invalid_value", "'add' needs value: an object of fields.")
    unknown = set(mutation.value) - set(FIELDS[entity])
    if unknown:
        raise MutationError(
            "unknown_field", f"A {entity.value} has no field '{sorted(unknown)[0]}'."
        )
    data: dict[str, Any] = {}
    for name, spec in FIELDS[entity].items():
        data[name] = (
            _validated(name, spec, mutation.value[name]) if name in mutation.value else spec.default
        )
        if data[name] is None and spec.required:
            raise MutationError("invalid_value", f"{spec.label or name} is required.")
    if entity is EntityType.RECOMMENDATION and data["status"] != "proposed":
        raise MutationError("invalid_value", "A new recommendation starts as 'proposed'.")
    if entity is EntityType.MEDICATION:
        _check_dates(data)
    _check_references(state, entity, data)
    entity_id = mutation.entity_id or _new_entity_id(entity)
    if entity_id in state.entities:
        raise MutationError("duplicate_entity", "An entity with this id already exists.")
    position = _position_after(state, entity, mutation, exclude=None)
    seq = _next_seq(state)
    record = EntityRecord(
        type=entity.value,
        id=entity_id,
        position=position,
        data=data,
        versions={name: seq for name in data},
        created_seq=seq,
        updated_seq=seq,
        updated_at=now,
        updated_by_name=actor.name,
        updated_by_role=actor.role,
    )
    created = dict(data, position=position)
    event = _event(seq, actor, mutation, entity_id, None, None, created, "applied", now)
    state.entities[entity_id] = record
    changes.created[entity_id] = record
    changes.events.append(event)
    return {"ok": True, "seq": seq, "event": event.json(), "entity": record.json()}


def _set(
    state: PanelState,
    actor: Actor,
    mutation: Mutation,
    record: EntityRecord,
    now: dt.datetime,
    changes: Changes,
) -> dict[str, Any]:
    entity = mutation.entity
    name = mutation.field
    spec = _field_spec(entity, name)
    assert name is not None
    label = spec.label or name
    _forbid_unless(actor, spec.action, f"change {label} of a {entity.value}")
    value = _validated(name, spec, mutation.value)
    old = record.data.get(name)
    transitions = TRANSITIONS.get((entity, name))
    if transitions is not None:
        if value == old:
            raise MutationError("invalid_transition", f"{label} is already '{old}'.")
        if value not in transitions.get(str(old), frozenset()):
            raise MutationError(
                "invalid_transition", f"{label} cannot change from '{old}' to '{value}'."
            )
    new_data = {**record.data, name: value}
    if entity is EntityType.MEDICATION:
        _check_dates(new_data)
    _check_references(state, entity, new_data)
    current_version = record.versions.get(name, record.created_seq)
    if spec.compare_and_set:
        if mutation.base_version is None:
            raise MutationError(
                "base_version_required",
                f"{label} is compare-and-set: send the base_version you saw.",
            )
        if mutation.base_version != current_version:
            seq = _next_seq(state)
            event = _event(seq, actor, mutation, record.id, name, old, value, "conflict", now)
            changes.events.append(event)
            return {
                "ok": False,
                "seq": seq,
                "event": event.json(),
                "error": {
                    "code": "conflict",
                    "message": f"{label} was changed by {record.updated_by_name} "
                    "after you loaded it; nothing was changed.",
                },
                "current": {"value": old, "version": current_version, "entity": record.json()},
            }
    if entity is EntityType.RECOMMENDATION and name == "status":
        new_data.update(
            decided_by=actor.name, decided_by_role=actor.role, decided_at=now.isoformat()
        )
    seq = _next_seq(state)
    updated = _touched(
        replace(record, data=new_data, versions={**record.versions, name: seq}), seq, actor, now
    )
    event = _event(seq, actor, mutation, record.id, name, old, value, "applied", now)
    state.entities[record.id] = updated
    changes.updated[record.id] = updated
    changes.events.append(event)
    return {"ok": True, "seq": seq, "event": event.json(), "entity": updated.json()}


def _move(
    state: PanelState,
    actor: Actor,
    mutation: Mutation,
    record: EntityRecord,
    now: dt.datetime,
    changes: Changes,
) -> dict[str, Any]:
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"reorder {entity.value}s")
    if "after" not in mutation.model_fields_set:
        raise MutationError("invalid_mutation", "'move' needs after: an entity id, or null.")
    if mutation.after == record.id:
        raise MutationError("invalid_mutation", "An entity cannot follow itself.")
    position = _position_after(state, entity, mutation, exclude=record.id)
    seq = _next_seq(state)
    updated = _touched(replace(record, position=position), seq, actor, now)
    event = _event(
        seq, actor, mutation, record.id, "position", record.position, position, "applied", now
    )
    state.entities[record.id] = updated
    changes.updated[record.id] = updated
    changes.events.append(event)
    return {"ok": True, "seq": seq, "event": event.json(), "entity": updated.json()}


def _position_after(
    state: PanelState, entity: EntityType, mutation: Mutation, *, exclude: str | None
) -> str:
    siblings = state.ordered(entity.value, exclude=exclude)
    keys = [record.position for record in siblings]
    if "after" not in mutation.model_fields_set:
        return positions.key_between(keys[-1] if keys else None, None)
    if mutation.after is None:
        return positions.key_between(None, keys[0] if keys else None)
    index = next((i for i, record in enumerate(siblings) if record.id == mutation.after), None)
    if index is None:
        raise MutationError("unknown_entity", f"'after' names no {entity.value} in this consult.")
    following = keys[index + 1] if index + 1 < len(keys) else None
    if following == keys[index]:
        following = None  # equal keys (concurrent inserts): go after both
    return positions.key_between(keys[index], following)


def _next_seq(state: PanelState) -> int:
    state.last_seq += 1
    return state.last_seq


def _touched(record: EntityRecord, seq: int, actor: Actor, now: dt.datetime) -> EntityRecord:
    return replace(
        record,
        updated_seq=seq,
        updated_at=now,
        updated_by_name=actor.name,
        updated_by_role=actor.role,
    )


def _event(
    seq: int,
    actor: Actor,
    mutation: Mutation,
    entity_id: str,
    name: str | None,
    old: Any,
    new: Any,
    outcome: str,
    now: dt.datetime,
) -> EventRecord:
    return EventRecord(
        seq=seq,
        at=now,
        actor_id=actor.participant_id,
        actor_name=actor.name,
        actor_role=actor.role,
        op=mutation.op,
        entity_type=mutation.entity.value,
        entity_id=entity_id,
        field=name,
        old=old,
        new=new,
        mutation_id=mutation.mutation_id,
        outcome=outcome,
    )


def _new_entity_id(entity: EntityType) -> str:
    prefix = {"medication": "m", "problem": "dtp", "recommendation": "r", "plan_item": "a"}
    return f"{prefix[entity.value]}_{secrets.token_urlsafe(9)}"
