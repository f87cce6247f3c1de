"""Every change to a consult's panel goes through `apply_mutation`: permission, validation,
compare-and-set, the audit event and the new state, in the caller's transaction.

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
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import positions
from models.errors import Refused
from models.panel import CREATE_ACTION, FIELDS, TRANSITIONS, EntityType, FieldSpec
from models.roles import Action, Role, is_allowed
from models.tables import ChangeEvent, Consult, ConsultStatus, MutationReceipt, PanelEntity

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# Fields only the server writes (when a recommendation is decided).
SERVER_FIELDS = ("decided_by", "decided_by_role", "decided_at")


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

    def public(self) -> dict[str, Any]:
        return {"id": self.participant_id, "name": self.name, "role": self.role}


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


# -- reading --------------------------------------------------------------------------------


def entity_json(row: PanelEntity) -> dict[str, Any]:
    return {
        "type": row.entity_type,
        "id": row.id,
        "position": row.position,
        "data": dict(row.data),
        "versions": dict(row.versions),
        "created_seq": row.created_seq,
        "updated_seq": row.updated_seq,
        "updated_at": row.updated_at.isoformat(),
        "updated_by": {"name": row.updated_by_name, "role": row.updated_by_role},
    }


def event_json(row: ChangeEvent) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.isoformat(),
        "actor": {"id": row.actor_id, "name": row.actor_name, "role": row.actor_role},
        "op": row.op,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "field": row.field,
        "old": row.old,
        "new": row.new,
        "mutation_id": row.mutation_id,
        "outcome": row.outcome,
    }


async def _entities(session: AsyncSession, consult_id: str) -> list[PanelEntity]:
    query = (
        select(PanelEntity)
        .where(PanelEntity.consult_id == consult_id)
        .order_by(PanelEntity.position, PanelEntity.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def _last_seq(session: AsyncSession, consult_id: str) -> int:
    query = select(Consult.last_seq).where(Consult.id == consult_id)
    seq = (await session.execute(query)).scalar_one_or_none()
    if seq is None:
        raise MutationError("unknown_consult", "There is no such consult.")
    return seq


async def snapshot(session: AsyncSession, consult_id: str) -> dict[str, Any]:
    """The whole panel at one seq: `{seq, entities}`, each kind in list order.

    Reads without locking: every commit that changes entities also moves `last_seq`, so
    entities read between two equal readings of `last_seq` are exactly the state at that
    seq. A client that got entities newer than their seq would apply those changes twice;
    one that got a seq newer than its entities would miss them for good.
    """
    for _ in range(20):
        before = await _last_seq(session, consult_id)
        entities = await _entities(session, consult_id)
        if await _last_seq(session, consult_id) == before:
            return {"seq": before, "entities": [entity_json(row) for row in entities]}
    # Under a steady stream of edits: take the consult's lock for one consistent read.
    async with session.begin_nested() if session.in_transaction() else session.begin():
        await _locked_consult(session, consult_id)
        before = await _last_seq(session, consult_id)
        entities = await _entities(session, consult_id)
        return {"seq": before, "entities": [entity_json(row) for row in entities]}


async def events_since(
    session: AsyncSession, consult_id: str, since: int, *, limit: int = 10_000
) -> list[dict[str, Any]]:
    query = (
        select(ChangeEvent)
        .where(ChangeEvent.consult_id == consult_id, ChangeEvent.seq > since)
        .order_by(ChangeEvent.seq)
        .limit(limit)
    )
    return [event_json(row) for row in (await session.execute(query)).scalars()]


async def history(session: AsyncSession, consult_id: str, entity_id: str) -> list[dict[str, Any]]:
    """Every event of one entity, oldest first (the audit trail a history drawer shows)."""
    query = (
        select(ChangeEvent)
        .where(ChangeEvent.consult_id == consult_id, ChangeEvent.entity_id == entity_id)
        .order_by(ChangeEvent.seq)
    )
    return [event_json(row) for row in (await session.execute(query)).scalars()]


# -- writing --------------------------------------------------------------------------------


class InitialMedicationRefused(MutationError):
    """One entry of a consult's initial medication list is refused; `index` says which."""

    def __init__(self, index: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.index = index


async def add_initial_medications(
    session: AsyncSession,
    consult_id: str,
    clinic: str,
    medications: list[dict[str, Any]],
    *,
    now: dt.datetime,
) -> None:
    """The list a clinic gives at creation: audited adds by the clinic, all or nothing.

    Raises InitialMedicationRefused for the first bad entry; the caller rolls back.
    """
    actor = Actor(participant_id=None, name=clinic, role="clinic")
    for index, fields in enumerate(medications):
        mutation = {
            "mutation_id": f"initial-{index}",
            "op": "add",
            "entity": "medication",
            "value": fields,
        }
        result = await apply_mutation(session, consult_id, actor, mutation, now=now)
        if not result["ok"]:
            error = result["error"]
            raise InitialMedicationRefused(index, error["code"], error["message"])


async def apply_mutation(
    session: AsyncSession,
    consult_id: str,
    actor: Actor,
    raw: Any,
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """Apply one mutation inside the caller's transaction and return its result.

    `{"ok": true, "seq", "event", "entity"}` when applied; `{"ok": false, "error", ...}`
    otherwise (a conflict also carries `seq`, `event` and `current`). Only an applied or
    conflicting mutation writes an event; a refused one changes nothing but its receipt.
    """
    mutation = parse_mutation(raw)
    consult = await _locked_consult(session, consult_id)
    first_seq = consult.last_seq
    if actor.participant_id is not None:
        receipt = await session.get(
            MutationReceipt, (consult_id, actor.participant_id, mutation.mutation_id)
        )
        if receipt is not None:
            return {**receipt.result, "replayed": True}
    try:
        result = await _apply(session, consult, actor, mutation, now)
    except MutationError as refused:
        result = refused.result()
    if actor.participant_id is not None:
        session.add(
            MutationReceipt(
                consult_id=consult_id,
                participant_id=actor.participant_id,
                mutation_id=mutation.mutation_id,
                result=result,
                created_at=now,
            )
        )
    if consult.last_seq != first_seq:
        await session.execute(
            update(Consult).where(Consult.id == consult_id).values(last_seq=consult.last_seq)
        )
    await session.flush()
    return result


@dataclass
class _ConsultState:
    """The consult's row as a mutation needs it: read under lock, `last_seq` counted here."""

    id: str
    status: str
    last_seq: int


async def _locked_consult(session: AsyncSession, consult_id: str) -> _ConsultState:
    # FOR UPDATE serialises mutations of one consult across processes (a no-op on SQLite,
    # whose writers are serialised by the database lock). Columns, not the ORM object: the
    # edit path is hot, and the consult's relationships are not needed here.
    query = (
        select(Consult.status, Consult.last_seq).where(Consult.id == consult_id).with_for_update()
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise MutationError("unknown_consult", "There is no such consult.")
    return _ConsultState(id=consult_id, status=row.status, last_seq=row.last_seq)


async def _apply(
    session: AsyncSession,
    consult: _ConsultState,
    actor: Actor,
    mutation: Mutation,
    now: dt.datetime,
) -> dict[str, Any]:
    if consult.status == ConsultStatus.ENDED.value:
        raise MutationError("consult_ended", "This consult has ended; the list is read-only.")
    if mutation.op == "add":
        return await _add(session, consult, actor, mutation, now)
    if mutation.entity_id is None:
        raise MutationError("invalid_mutation", f"'{mutation.op}' needs entity_id.")
    row = await session.get(PanelEntity, (consult.id, mutation.entity_id))
    if row is None or row.entity_type != mutation.entity.value:
        raise MutationError(
            "unknown_entity", f"There is no {mutation.entity.value} with this id in this consult."
        )
    if mutation.op == "move":
        return await _move(session, consult, actor, mutation, row, now)
    return await _set(session, consult, actor, mutation, row, now)


def _field_spec(entity: EntityType, field: str | None) -> FieldSpec:
    if field is None:
        raise MutationError("invalid_mutation", "'set' needs a field.")
    spec = FIELDS[entity].get(field)
    if spec is None:
        known = ", ".join(FIELDS[entity])
        raise MutationError(
            "unknown_field", f"A {entity.value} has no field '{field}'. Known fields: {known}."
        )
    return spec


def _validated(entity: EntityType, field: str, spec: FieldSpec, value: Any) -> Any:
    try:
        clean = spec.validate(value)
    except ValueError as exc:
        raise MutationError("invalid_value", f"{spec.label or field}: {exc}") from None
    if clean is None and spec.required:
        raise MutationError("invalid_value", f"{spec.label or field} is required.")
    return clean


def _forbid_unless(actor: Actor, action: Action, what: str) -> None:
    if not actor.may(action):
        raise MutationError("forbidden", f"A {actor.role} may not {what}.")


async def _check_references(
    session: AsyncSession, consult_id: str, entity: EntityType, data: dict[str, Any]
) -> None:
    """Links between entities must point at entities of the right kind in this consult."""
    wanted: list[tuple[str, EntityType]] = []
    if entity is EntityType.PROBLEM:
        wanted += [(mid, EntityType.MEDICATION) for mid in data.get("medication_ids") or []]
    if entity is EntityType.RECOMMENDATION and data.get("problem_id"):
        wanted.append((data["problem_id"], EntityType.PROBLEM))
    for entity_id, kind in wanted:
        row = await session.get(PanelEntity, (consult_id, entity_id))
        if row is None or row.entity_type != kind.value:
            raise MutationError("invalid_value", f"There is no {kind.value} '{entity_id}' here.")


def _check_dates(data: dict[str, Any]) -> None:
    start, stop = data.get("start_date"), data.get("stop_date")
    if start and stop and stop < start:
        raise MutationError("invalid_value", "Stop date cannot be before the start date.")


async def _add(
    session: AsyncSession,
    consult: _ConsultState,
    actor: Actor,
    mutation: Mutation,
    now: dt.datetime,
) -> dict[str, Any]:
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"add a {entity.value}")
    if mutation.field is not None or mutation.base_version is not None:
        raise MutationError("invalid_mutation", "'add' takes value (and after), not field.")
    if not isinstance(mutation.value, dict):
        raise MutationError("invalid_value", "'add' needs value: an object of fields.")
    data: dict[str, Any] = {}
    for name, spec in FIELDS[entity].items():
        data[name] = (
            _validated(entity, name, spec, mutation.value[name])
            if name in mutation.value
            else spec.default
        )
        if data[name] is None and spec.required:
            raise MutationError("invalid_value", f"{spec.label or name} is required.")
    unknown = set(mutation.value) - set(FIELDS[entity])
    if unknown:
        raise MutationError(
            "unknown_field", f"A {entity.value} has no field '{sorted(unknown)[0]}'."
        )
    if entity is EntityType.RECOMMENDATION and data["status"] != "proposed":
        raise MutationError("invalid_value", "A new recommendation starts as 'proposed'.")
    if entity is EntityType.MEDICATION:
        _check_dates(data)
    await _check_references(session, consult.id, entity, data)
    entity_id = mutation.entity_id or _new_entity_id(entity)
    if await session.get(PanelEntity, (consult.id, entity_id)) is not None:
        raise MutationError("duplicate_entity", "An entity with this id already exists.")
    position = await _position_after(session, consult.id, entity, mutation, exclude=None)
    seq = _next_seq(consult)
    row = PanelEntity(
        consult_id=consult.id,
        id=entity_id,
        entity_type=entity.value,
        position=position,
        data=data,
        versions={name: seq for name in data},
        created_seq=seq,
        updated_seq=seq,
        updated_at=now,
        updated_by_name=actor.name,
        updated_by_role=actor.role,
    )
    session.add(row)
    event = _event(
        consult,
        seq,
        actor,
        mutation,
        entity_id,
        None,
        None,
        dict(data, position=position),
        "applied",
        now,
    )
    session.add(event)
    return {"ok": True, "seq": seq, "event": event_json(event), "entity": entity_json(row)}


async def _set(
    session: AsyncSession,
    consult: _ConsultState,
    actor: Actor,
    mutation: Mutation,
    row: PanelEntity,
    now: dt.datetime,
) -> dict[str, Any]:
    entity = mutation.entity
    field = mutation.field
    spec = _field_spec(entity, field)
    assert field is not None
    _forbid_unless(actor, spec.action, f"change {spec.label or field} of a {entity.value}")
    value = _validated(entity, field, spec, mutation.value)
    old = row.data.get(field)
    transitions = TRANSITIONS.get((entity, field))
    allowed_next = transitions.get(str(old), frozenset()) if transitions is not None else None
    if allowed_next is not None and value != old and value not in allowed_next:
        raise MutationError(
            "invalid_transition",
            f"{spec.label or field} cannot change from '{old}' to '{value}'.",
        )
    if transitions is not None and value == old:
        raise MutationError("invalid_transition", f"{spec.label or field} is already '{old}'.")
    new_data = dict(row.data)
    new_data[field] = value
    if entity is EntityType.MEDICATION:
        _check_dates(new_data)
    await _check_references(session, consult.id, entity, new_data)
    current_version = row.versions.get(field, row.created_seq)
    if spec.compare_and_set:
        if mutation.base_version is None:
            raise MutationError(
                "base_version_required",
                f"{spec.label or field} is compare-and-set: send the base_version you saw.",
            )
        if mutation.base_version != current_version:
            seq = _next_seq(consult)
            event = _event(
                consult, seq, actor, mutation, row.id, field, old, value, "conflict", now
            )
            session.add(event)
            return {
                "ok": False,
                "seq": seq,
                "event": event_json(event),
                "error": {
                    "code": "conflict",
                    "message": f"{spec.label or field} was changed by {row.updated_by_name} "
                    "after you loaded it; nothing was changed.",
                },
                "current": {
                    "value": old,
                    "version": current_version,
                    "entity": entity_json(row),
                },
            }
    if entity is EntityType.RECOMMENDATION and field == "status":
        new_data.update(
            decided_by=actor.name, decided_by_role=actor.role, decided_at=now.isoformat()
        )
    seq = _next_seq(consult)
    row.data = new_data
    row.versions = {**row.versions, field: seq}
    _touch(row, seq, actor, now)
    event = _event(consult, seq, actor, mutation, row.id, field, old, value, "applied", now)
    session.add(event)
    return {"ok": True, "seq": seq, "event": event_json(event), "entity": entity_json(row)}


async def _move(
    session: AsyncSession,
    consult: _ConsultState,
    actor: Actor,
    mutation: Mutation,
    row: PanelEntity,
    now: dt.datetime,
) -> dict[str, Any]:
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"reorder {entity.value}s")
    if "after" not in mutation.model_fields_set:
        raise MutationError("invalid_mutation", "'move' needs after: an entity id, or null.")
    if mutation.after == row.id:
        raise MutationError("invalid_mutation", "An entity cannot follow itself.")
    position = await _position_after(session, consult.id, entity, mutation, exclude=row.id)
    old = row.position
    seq = _next_seq(consult)
    row.position = position
    _touch(row, seq, actor, now)
    event = _event(consult, seq, actor, mutation, row.id, "position", old, position, "applied", now)
    session.add(event)
    return {"ok": True, "seq": seq, "event": event_json(event), "entity": entity_json(row)}


async def _position_after(
    session: AsyncSession,
    consult_id: str,
    entity: EntityType,
    mutation: Mutation,
    *,
    exclude: str | None,
) -> str:
    siblings = [
        row
        for row in await _entities(session, consult_id)
        if row.entity_type == entity.value and row.id != exclude
    ]
    keys = [row.position for row in siblings]
    if "after" not in mutation.model_fields_set:
        return positions.key_between(keys[-1] if keys else None, None)
    if mutation.after is None:
        return positions.key_between(None, keys[0] if keys else None)
    index = next((i for i, row in enumerate(siblings) if row.id == mutation.after), None)
    if index is None:
        raise MutationError("unknown_entity", f"'after' names no {entity.value} in this consult.")
    following = keys[index + 1] if index + 1 < len(keys) else None
    if following == keys[index]:
        following = None  # equal keys (concurrent inserts): go after both
    return positions.key_between(keys[index], following)


def _next_seq(consult: _ConsultState) -> int:
    consult.last_seq += 1
    return consult.last_seq


def _touch(row: PanelEntity, seq: int, actor: Actor, now: dt.datetime) -> None:
    row.updated_seq = seq
    row.updated_at = now
    row.updated_by_name = actor.name
    row.updated_by_role = actor.role


def _event(
    consult: _ConsultState,
    seq: int,
    actor: Actor,
    mutation: Mutation,
    entity_id: str,
    field: str | None,
    old: Any,
    new: Any,
    outcome: str,
    now: dt.datetime,
) -> ChangeEvent:
    return ChangeEvent(
        consult_id=consult.id,
        seq=seq,
        at=now,
        actor_id=actor.participant_id,
        actor_name=actor.name,
        actor_role=actor.role,
        op=mutation.op,
        entity_type=mutation.entity.value,
        entity_id=entity_id,
        field=field,
        old=old,
        new=new,
        mutation_id=mutation.mutation_id,
        outcome=outcome,
    )


def _new_entity_id(entity: EntityType) -> str:
    prefix = {"medication": "m", "problem": "dtp", "recommendation": "r", "plan_item": "a"}
    return f"{prefix[entity.value]}_{secrets.token_urlsafe(9)}"
