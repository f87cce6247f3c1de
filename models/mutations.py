"""Every change to a consult's panel goes through `apply`: permission, validation,
compare-and-set, the audit event and the new state. Plain functions over an in-memory
`PanelState`; no I/O here (models/panel_store.py loads and persists the state).

A mutation is `{mutation_id, op, entity, entity_id?, field?, value?, base_version?, after?}`:

- `add`: create an entity; `value` maps fields to values; `after` places it (null: first;
  absent: last); `entity_id` may be proposed by the client (so it can edit the entity before
  the add is acknowledged) and must be unused.
- `set`: change one `field` of `entity_id` to `value`. Compare-and-set fields (strength, how
  taken, stop date, status, a recommendation's decision, the patient's confirmation) need
  `base_version`: the version of that field the editor saw. A stale one is rejected with the
  current value, recorded in the log as a conflict, and nothing changes. `override: true`
  says the author chose to replace a value they saw in a conflict ("use mine"): the event
  names whose value was replaced. `source` says where a reconciled fact comes from.
- `move`: reorder `entity_id` to follow `after` (null: first).

A mutation may cause derived changes, each its own audited event right after the mutation's
(op "derived", same mutation id): a change of a value the patient confirmed makes the
confirmation "needs-confirming"; accepting a recommendation applies its proposed values.

Results are plain dicts sent to clients as they are (docs/protocol.md, "Medication panel").
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from models import positions
from models.errors import Refused
from models.panel import (
    CONFIRMATION_BOUND,
    CREATE_ACTION,
    FIELDS,
    MEDICATION_FIELDS,
    MEDICATION_TRANSITIONS,
    SOURCES,
    TRANSITIONS,
    UNDECIDED,
    EntityType,
    FieldSpec,
    defaults,
)
from models.roles import Action, Role, is_allowed
from models.tables import ConsultStatus

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Seqs and versions are stored in 32-bit integer columns (change_event.seq, consult.last_seq).
MAX_SEQ = 2**31 - 1
# Entries one consult's panel may hold (medications, problems, recommendations, plan items
# together); a deployment sets its own with `consult.max_panel_entries`.
DEFAULT_MAX_ENTITIES = 300
# The actor role of a prescriber who answers a recommendation through the letter's link.
PRESCRIBER = "prescriber"
MAX_RESPONSE_NOTES = 2000


class MutationError(Refused):
    """The mutation is refused and nothing changed; `code` is from docs/protocol.md."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a participant, or a clinic through the REST API (no participant)."""

    participant_id: str | None
    name: str
    role: str  # a Role value, or "clinic"

    def who(self) -> dict[str, Any]:
        return {"id": self.participant_id, "name": self.name, "role": self.role}

    def may(self, action: Action) -> bool:
        if self.role == "clinic":
            return True
        if self.role == PRESCRIBER:
            # A prescriber answering the letter's signed link (no participant) decides
            # recommendations, nothing else.
            return action is Action.DECIDE_RECOMMENDATION
        return is_allowed(Role(self.role), action)


class Mutation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mutation_id: str = Field(pattern=ID_PATTERN)
    op: Literal["add", "set", "move"]
    entity: EntityType
    entity_id: str | None = Field(None, pattern=ID_PATTERN)
    field: str | None = Field(None, max_length=64)
    value: Any = None
    base_version: StrictInt | None = Field(None, ge=0, le=MAX_SEQ)
    after: str | None = Field(None, pattern=ID_PATTERN)
    source: Literal[SOURCES] | None = None  # type: ignore[valid-type]
    override: StrictBool = False


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
    # Per field, who set its current value: {"id", "name", "role"} (for accountable overrides).
    authors: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            # Shallow: an author entry is never changed in place (a change makes a new one),
            # and this copy is made for every entity of every joiner's snapshot.
            "authors": dict(self.authors),
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
    source: str | None = None  # where a reconciled fact comes from
    # Derived events: {"cause_seq", "reason", ...}; overrides: {"overrode": {...}}.
    detail: dict[str, Any] | None = None

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
            "source": self.source,
            "detail": self.detail,
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
    max_entities: int = DEFAULT_MAX_ENTITIES

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

    `{"ok": true, "seq", "event", "entity", "effects"}` when applied (`effects`: the derived
    events that followed it, each `{event, entity}`); `{"ok": false, "error", ...}` otherwise
    (a conflict also carries `seq`, `event` and `current`). Only an applied or conflicting
    mutation writes events; a refused one changes nothing but its receipt. A mutation id the
    participant used before returns the first result, with `"replayed": true`, and changes
    nothing. Raises MutationError only when `raw` is not a mutation at all.
    """
    mutation = parse_mutation(raw)
    changes = Changes()
    key = (actor.participant_id, mutation.mutation_id) if actor.participant_id else None
    if key is not None and key in state.receipts:
        return {**state.receipts[key], "replayed": True}, changes
    step = _Step(state, actor, mutation, now, changes)
    try:
        result = _apply(step)
    except MutationError as refused:
        result = refused.result()
    if key is not None:
        state.receipts[key] = result
        changes.receipts.append((key[0], key[1], result))
    return result, changes


@dataclass
class _Step:
    """One mutation being applied: everything it writes goes through here, in seq order."""

    state: PanelState
    actor: Actor
    mutation: Mutation
    now: dt.datetime
    changes: Changes
    events: list[EventRecord] = field(default_factory=list)
    # A prescriber's answer through the letter's link: their notes go with the decision.
    response: PrescriberResponse | None = None

    def store(self, record: EntityRecord, event: EventRecord) -> None:
        self.state.entities[record.id] = record
        if record.id in self.changes.created or event.op == "add" or _is_creation(event):
            self.changes.created[record.id] = record
        else:
            self.changes.updated[record.id] = record
        self.changes.events.append(event)
        self.events.append(event)

    def event(
        self,
        op: str,
        entity_type: str,
        entity_id: str,
        name: str | None,
        old: Any,
        new: Any,
        *,
        outcome: str = "applied",
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> EventRecord:
        return EventRecord(
            seq=_next_seq(self.state),
            at=self.now,
            actor_id=self.actor.participant_id,
            actor_name=self.actor.name,
            actor_role=self.actor.role,
            op=op,
            entity_type=entity_type,
            entity_id=entity_id,
            field=name,
            old=old,
            new=new,
            mutation_id=self.mutation.mutation_id,
            outcome=outcome,
            source=source,
            detail=detail,
        )

    def result(self) -> dict[str, Any]:
        first, *derived = self.events
        entities = self.state.entities
        return {
            "ok": True,
            "seq": first.seq,
            "event": first.json(),
            "entity": entities[first.entity_id].json(),
            "effects": [
                {"event": event.json(), "entity": entities[event.entity_id].json()}
                for event in derived
            ],
        }


def _is_creation(event: EventRecord) -> bool:
    return event.op == "derived" and event.field is None


def _apply(step: _Step) -> dict[str, Any]:
    state, mutation = step.state, step.mutation
    if state.status == ConsultStatus.ENDED.value:
        raise MutationError("consult_ended", "This consult has ended; the list is read-only.")
    if mutation.op == "add":
        return _add(step)
    if mutation.entity_id is None:
        raise MutationError("invalid_mutation", f"'{mutation.op}' needs entity_id.")
    record = state.entities.get(mutation.entity_id)
    if record is None or record.type != mutation.entity.value:
        raise MutationError(
            "unknown_entity", f"There is no {mutation.entity.value} with this id in this consult."
        )
    if mutation.op == "move":
        return _move(step, record)
    return _set(step, record)


NOUNS = {
    EntityType.MEDICATION: "a medication",
    EntityType.PROBLEM: "a drug therapy problem",
    EntityType.RECOMMENDATION: "a recommendation",
    EntityType.PLAN_ITEM: "an action plan item",
}


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
    if entity is EntityType.RECOMMENDATION and data.get("medication_id"):
        wanted.append((data["medication_id"], EntityType.MEDICATION))
    for entity_id, kind in wanted:
        record = state.entities.get(entity_id)
        if record is None or record.type != kind.value:
            raise MutationError("invalid_value", f"There is no {kind.value} '{entity_id}' here.")


def _check_dates(data: dict[str, Any]) -> None:
    start, stop = data.get("start_date"), data.get("stop_date")
    if start and stop and stop < start:
        raise MutationError("invalid_value", "Stop date cannot be before the start date.")


def _check_status_change(current: Any, wanted: Any, label: str = "Status") -> None:
    if wanted not in MEDICATION_TRANSITIONS.get(str(current), frozenset()):
        raise MutationError(
            "invalid_transition", f"{label} cannot change from '{current}' to '{wanted}'."
        )


def _check_proposal(state: PanelState, data: dict[str, Any]) -> None:
    """A recommendation's proposed therapy change must be one the list can take."""
    proposed: dict[str, Any] = data.get("proposed") or {}
    medication_id = data.get("medication_id")
    if data.get("change") == "start":
        if medication_id:
            raise MutationError(
                "invalid_value",
                "A proposal to start a medication cannot name an existing medication.",
            )
        if not proposed.get("name"):
            raise MutationError(
                "invalid_value", "A proposal to start a medication needs the proposed name."
            )
        _check_dates({**defaults(EntityType.MEDICATION), **proposed})
        return
    if proposed and not medication_id:
        raise MutationError(
            "invalid_value",
            "Proposed values need the medication they would change (medication_id).",
        )
    target = state.entities.get(medication_id) if medication_id else None
    if target is not None:
        if "status" in proposed and proposed["status"] != target.data.get("status"):
            _check_status_change(target.data.get("status"), proposed["status"], "Proposed status")
        _check_dates({**target.data, **proposed})


def _acceptance(
    state: PanelState, data: dict[str, Any]
) -> tuple[EntityRecord | None, dict[str, Any]] | None:
    """What accepting a recommendation changes on the list, checked before anything is written.

    (None, data of a new medication) for a proposed start; (medication, its changed fields)
    for a change; None when the recommendation proposes no values.
    """
    proposed: dict[str, Any] = data.get("proposed") or {}
    if data.get("change") == "start":
        created = {**defaults(EntityType.MEDICATION), **proposed}
        _check_dates(created)
        if len(state.entities) >= state.max_entities:
            raise MutationError(
                "quota_exceeded",
                f"This consult's panel already holds {state.max_entities} entries, the most "
                "allowed; accepting would add one more. Nothing was changed.",
            )
        return None, created
    if not proposed:
        return None
    target = state.entities.get(data.get("medication_id") or "")
    if target is None or target.type != EntityType.MEDICATION.value:
        raise MutationError(
            "invalid_value", "The medication this recommendation would change is not on the list."
        )
    changed = {name: value for name, value in proposed.items() if target.data.get(name) != value}
    if "status" in changed:
        _check_status_change(target.data.get("status"), changed["status"], "Proposed status")
    _check_dates({**target.data, **changed})
    return target, changed


def _add(step: _Step) -> dict[str, Any]:
    state, actor, mutation = step.state, step.actor, step.mutation
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"add {NOUNS[entity]}")
    if mutation.field is not None or mutation.base_version is not None or mutation.override:
        raise MutationError("invalid_mutation", "'add' takes value (and after), not field.")
    if not isinstance(mutation.value, dict):
        raise MutationError("invalid_value", "'add' needs value: an object of fields.")
    unknown = set(mutation.value) - set(FIELDS[entity])
    if unknown:
        raise MutationError(
            "unknown_field", f"A {entity.value} has no field '{sorted(unknown)[0]}'."
        )
    data = defaults(entity)
    for name, spec in FIELDS[entity].items():
        if name in mutation.value:
            data[name] = _validated(name, spec, mutation.value[name])
        if data[name] is None and spec.required:
            raise MutationError("invalid_value", f"{spec.label or name} is required.")
    if entity is EntityType.RECOMMENDATION:
        if data["status"] != "proposed":
            raise MutationError("invalid_value", "A new recommendation starts as 'proposed'.")
        _check_proposal(state, data)
    if entity is EntityType.MEDICATION:
        _check_dates(data)
        data["confirmed_values"] = _confirmed_values(data)
    _check_references(state, entity, data)
    entity_id = mutation.entity_id or _new_entity_id(entity)
    if entity_id in state.entities:
        raise MutationError("duplicate_entity", "An entity with this id already exists.")
    _create(step, entity, entity_id, data, _position_after(state, entity, mutation, exclude=None))
    return step.result()


def _create(
    step: _Step,
    entity: EntityType,
    entity_id: str,
    data: dict[str, Any],
    position: str,
    *,
    detail: dict[str, Any] | None = None,
) -> EntityRecord:
    if len(step.state.entities) >= step.state.max_entities:
        raise MutationError(
            "quota_exceeded",
            f"This consult's panel already holds {step.state.max_entities} entries, the most "
            "allowed; nothing was added.",
        )
    op = "add" if detail is None else "derived"
    event = step.event(
        op,
        entity.value,
        entity_id,
        None,
        None,
        dict(data, position=position),
        detail=detail,
        source=step.mutation.source,
    )
    record = EntityRecord(
        type=entity.value,
        id=entity_id,
        position=position,
        data=data,
        versions={name: event.seq for name in FIELDS[entity]},
        created_seq=event.seq,
        updated_seq=event.seq,
        updated_at=step.now,
        updated_by_name=step.actor.name,
        updated_by_role=step.actor.role,
        authors={name: step.actor.who() for name in FIELDS[entity]},
    )
    step.store(record, event)
    return record


def _confirmed_values(data: dict[str, Any]) -> dict[str, Any] | None:
    """What the patient confirmed: the bound values, kept while the confirmation holds."""
    if data.get("patient_confirmation") in ("confirmed", "corrected"):
        return {name: data.get(name) for name in CONFIRMATION_BOUND}
    return None


def _write(
    step: _Step,
    record: EntityRecord,
    name: str,
    value: Any,
    *,
    op: str,
    detail: dict[str, Any] | None = None,
) -> EntityRecord:
    """Set one field, audited; a change of a value the patient confirmed resets it."""
    old = record.data.get(name)
    event = step.event(
        op, record.type, record.id, name, old, value, detail=detail, source=step.mutation.source
    )
    data = {**record.data, name: value}
    if record.type == EntityType.MEDICATION.value and name == "patient_confirmation":
        if value != "needs-confirming":
            data["confirmed_values"] = _confirmed_values(data)
    updated = _touched(
        replace(
            record,
            data=data,
            versions={**record.versions, name: event.seq},
            authors={**record.authors, name: step.actor.who()},
        ),
        event.seq,
        step.actor,
        step.now,
    )
    step.store(updated, event)
    if record.type == EntityType.MEDICATION.value and name in CONFIRMATION_BOUND and value != old:
        updated = _rebind_confirmation(step, updated, cause_seq=event.seq, changed=name)
    return updated


def _rebind_confirmation(
    step: _Step, record: EntityRecord, *, cause_seq: int, changed: str
) -> EntityRecord:
    """The confirmation's version follows the values it is bound to, so a patient who
    confirms what they loaded before a change gets a conflict; a held confirmation resets."""
    record = replace(record, versions={**record.versions, "patient_confirmation": cause_seq})
    step.state.entities[record.id] = record
    if record.id in step.changes.created:
        step.changes.created[record.id] = record
    else:
        step.changes.updated[record.id] = record
    if record.data.get("patient_confirmation") not in ("confirmed", "corrected"):
        return record
    detail = {"cause_seq": cause_seq, "reason": "confirmation-reset", "changed": changed}
    return _write(
        step, record, "patient_confirmation", "needs-confirming", op="derived", detail=detail
    )


def _set(step: _Step, record: EntityRecord) -> dict[str, Any]:
    state, actor, mutation = step.state, step.actor, step.mutation
    entity = mutation.entity
    name = mutation.field
    spec = _field_spec(entity, name)
    assert name is not None
    label = spec.label or name
    _forbid_unless(actor, spec.action, f"change {label.lower()} of {NOUNS[entity]}")
    value = _validated(name, spec, mutation.value)
    old = record.data.get(name)
    current_version = record.versions.get(name, record.created_seq)
    if spec.compare_and_set:
        if mutation.base_version is None:
            raise MutationError(
                "base_version_required",
                f"{label} is compare-and-set: send the base_version you saw.",
            )
        # A stale base is answered first: the editor must see the current value before
        # anything else about their change (a transition that is no longer possible).
        if mutation.base_version != current_version:
            return _conflict(step, record, name, value, current_version, label)
    elif mutation.override:
        raise MutationError(
            "invalid_mutation", f"{label} is last-writer-wins; 'override' does not apply."
        )
    if (
        entity is EntityType.RECOMMENDATION
        and record.data.get("status") not in UNDECIDED
        and name != "audience"
    ):
        raise MutationError(
            "invalid_transition",
            f"This recommendation was {record.data.get('status')}; it can no longer be "
            "changed. Record a new recommendation instead.",
        )
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
    acceptance = None
    if entity is EntityType.RECOMMENDATION:
        _check_proposal(state, new_data)
        if name == "status" and value == "accepted":
            acceptance = _acceptance(state, new_data)
        if name == "status":
            record = replace(record, data={**record.data, **_decided(actor, step.now)})
    detail: dict[str, Any] | None = None
    if step.response is not None and name == "status":
        record = replace(record, data={**record.data, "decision_notes": step.response.notes})
        detail = {"response": {"notes": step.response.notes}}
    if mutation.override:
        author = record.authors.get(name) or {
            "id": None,
            "name": record.updated_by_name,
            "role": record.updated_by_role,
        }
        detail = {"overrode": {"actor": author, "value": old, "version": current_version}}
    _write(step, record, name, value, op="set", detail=detail)
    if acceptance is not None:
        _apply_acceptance(step, record.id, acceptance)
    return step.result()


def _decided(actor: Actor, now: dt.datetime) -> dict[str, Any]:
    """Who decided a recommendation, and when: kept beside its status (replay.py too)."""
    return {"decided_by": actor.name, "decided_by_role": actor.role, "decided_at": now.isoformat()}


@dataclass(frozen=True)
class PrescriberResponse:
    """A prescriber's answer to one recommendation, from the prescriber letter's signed
    link: the decision, their notes, and the status version the letter was made at."""

    recommendation_id: str
    decision: Literal["accepted", "declined"]
    notes: str | None
    base_version: int
    # Unique per link: the decision's events carry it as their mutation id.
    response_id: str


def respond(
    state: PanelState, actor: Actor, response: PrescriberResponse, *, now: dt.datetime
) -> tuple[dict[str, Any], Changes]:
    """Record a prescriber's answer, also after the consult has ended, as one audited change
    of the recommendation's status (with the notes in its event's `detail.response`), and
    what accepting it changes on the list (derived events, as in the call).

    Only once the consult has ended (during it, the clinician decides in the call). A link
    answers once: a recommendation already decided, or decided and changed since the
    letter was made (`base_version`), is refused with MutationError and nothing is written,
    not even a conflict event. Raises MutationError for every refusal.
    """
    if state.status != ConsultStatus.ENDED.value:
        # During the consult the clinician decides in the call, where everyone sees it.
        raise MutationError(
            "consult_not_ended",
            "This consult is still in progress; answers through the letter open when it ends.",
        )
    if response.decision not in ("accepted", "declined"):
        raise MutationError("invalid_value", "Choose accept or decline.")
    if response.notes is not None and (
        len(response.notes) > MAX_RESPONSE_NOTES or "\x00" in response.notes
    ):
        raise MutationError(
            "invalid_value", f"Notes must be text of at most {MAX_RESPONSE_NOTES} characters."
        )
    if not 1 <= len(actor.name.strip()) <= 200 or "\x00" in actor.name:
        raise MutationError("invalid_value", "Give your name (at most 200 characters).")
    record = state.entities.get(response.recommendation_id)
    if record is None or record.type != EntityType.RECOMMENDATION.value:
        raise MutationError("unknown_entity", "This recommendation is not in the consult.")
    status = record.data.get("status")
    if status not in UNDECIDED:
        by = record.data.get("decided_by")
        raise MutationError(
            "already_answered",
            f"This recommendation was already {status}" + (f" by {by}." if by else "."),
        )
    if record.versions.get("status", record.created_seq) != response.base_version:
        raise MutationError(
            "stale_link",
            "This recommendation changed after the letter was made; ask for a new one.",
        )
    mutation = Mutation(
        mutation_id=response.response_id,
        op="set",
        entity=EntityType.RECOMMENDATION,
        entity_id=record.id,
        field="status",
        value=response.decision,
        base_version=response.base_version,
    )
    changes = Changes()
    step = _Step(state, actor, mutation, now, changes, response=response)
    result = _set(step, record)
    if not result["ok"]:  # a conflict cannot happen (the version was checked above)
        raise MutationError("stale_link", "This recommendation changed; ask for a new letter.")
    return result, changes


def _apply_acceptance(
    step: _Step,
    recommendation_id: str,
    acceptance: tuple[EntityRecord | None, dict[str, Any]],
) -> None:
    target, values = acceptance
    detail = {
        "cause_seq": step.events[0].seq,
        "reason": "recommendation-accepted",
        "recommendation_id": recommendation_id,
    }
    if target is None:
        values["confirmed_values"] = None
        entity = EntityType.MEDICATION
        position = _position_after(step.state, entity, step.mutation, exclude=None, last=True)
        _create(step, entity, _new_entity_id(entity), values, position, detail=detail)
        return
    for name in MEDICATION_FIELDS:
        if name in values:
            target = _write(step, target, name, values[name], op="derived", detail=detail)


def _conflict(
    step: _Step, record: EntityRecord, name: str, value: Any, current_version: int, label: str
) -> dict[str, Any]:
    old = record.data.get(name)
    event = step.event(
        "set",
        record.type,
        record.id,
        name,
        old,
        value,
        outcome="conflict",
        source=step.mutation.source,
    )
    step.changes.events.append(event)
    author = record.authors.get(name, {}).get("name") or record.updated_by_name
    return {
        "ok": False,
        "seq": event.seq,
        "event": event.json(),
        "effects": [],
        "error": {
            "code": "conflict",
            "message": f"{label} was changed by {author} after you loaded it; nothing was changed.",
        },
        "current": {"value": old, "version": current_version, "entity": record.json()},
    }


def _move(step: _Step, record: EntityRecord) -> dict[str, Any]:
    state, actor, mutation = step.state, step.actor, step.mutation
    entity = mutation.entity
    _forbid_unless(actor, CREATE_ACTION[entity], f"reorder the list of {entity.value}s")
    if "after" not in mutation.model_fields_set:
        raise MutationError("invalid_mutation", "'move' needs after: an entity id, or null.")
    if mutation.after == record.id:
        raise MutationError("invalid_mutation", "An entity cannot follow itself.")
    position = _position_after(state, entity, mutation, exclude=record.id)
    event = step.event("move", record.type, record.id, "position", record.position, position)
    step.store(_touched(replace(record, position=position), event.seq, actor, step.now), event)
    return step.result()


def _position_after(
    state: PanelState,
    entity: EntityType,
    mutation: Mutation,
    *,
    exclude: str | None,
    last: bool = False,
) -> str:
    siblings = state.ordered(entity.value, exclude=exclude)
    keys = [record.position for record in siblings]
    if last or "after" not in mutation.model_fields_set:
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


def _new_entity_id(entity: EntityType) -> str:
    prefix = {"medication": "m", "problem": "dtp", "recommendation": "r", "plan_item": "a"}
    return f"{prefix[entity.value]}_{secrets.token_urlsafe(9)}"
