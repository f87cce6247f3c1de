"""The medication panel's entities, their fields and the rules on each field.

Four kinds of entity live on a consult's panel: medications (FHIR MedicationStatement /
CMS Personal Medication List), drug therapy problems (Cipolle/Strand), recommendations and
Medication Action Plan items. Each field says who may change it (an `Action` of the
permission matrix), how its value is validated, and whether a change is compare-and-set on
the version the editor saw (clinically significant fields) or last-writer-wins.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from models.roles import Action


class EntityType(enum.StrEnum):
    MEDICATION = "medication"
    PROBLEM = "problem"
    RECOMMENDATION = "recommendation"
    PLAN_ITEM = "plan_item"


MEDICATION_STATUSES = ("active", "stopped", "on-hold", "entered-in-error", "not-taken")
MEDICATION_KINDS = ("prescription", "otc", "herbal", "vitamin", "mineral")
ADHERENCE = ("as-prescribed", "sometimes-missed", "often-missed", "not-taking", "unknown")
PROBLEM_CATEGORIES = (
    "unnecessary-therapy",
    "needs-additional-therapy",
    "ineffective-drug",
    "dosage-too-low",
    "adverse-drug-reaction",
    "dosage-too-high",
    "nonadherence",
)
RECOMMENDATION_STATUSES = ("proposed", "accepted", "declined", "no-response")
# Recommendations still waiting for the prescriber's (clinician's) decision.
UNDECIDED = frozenset({"proposed", "no-response"})
# Who may see a problem, recommendation, plan item or note.
AUDIENCES = ("care-team", "patient")
CARE_TEAM = "care-team"
# Where a reconciled fact about what the patient really takes comes from.
SOURCES = ("patient", "fill-history", "chart", "other")
CONFIRMATIONS = ("confirmed", "corrected", "needs-confirming")
# Medications the patient is asked to confirm: these statuses, and not confirmed (or changed
# since): `models.audience.open_items` and the clients' "waiting for you" read these.
TO_CONFIRM_STATUSES = frozenset({"active", "on-hold"})
UNCONFIRMED = frozenset({None, "needs-confirming"})
# A patient's confirmation is bound to the values they saw: a change of any of these
# makes it "needs-confirming" again.
CONFIRMATION_BOUND = ("strength", "form", "how_taken", "status")
# The kinds of therapy change a recommendation may propose, and the medication fields a
# proposal may set (applied only when the clinician accepts it).
CHANGE_KINDS = ("start", "stop", "dose-change", "frequency-change", "switch", "other")
PROPOSABLE = ("name", "strength", "form", "how_taken", "why", "status", "stop_date", "why_stopped")

# Which status may follow which; anything else "makes no sense" and is refused.
MEDICATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"stopped", "on-hold", "entered-in-error", "not-taken"}),
    "on-hold": frozenset({"active", "stopped", "entered-in-error"}),
    "stopped": frozenset({"active", "entered-in-error"}),
    "not-taken": frozenset({"active", "entered-in-error"}),
    "entered-in-error": frozenset(),
}
RECOMMENDATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"accepted", "declined", "no-response"}),
    "no-response": frozenset({"accepted", "declined"}),
    "accepted": frozenset(),
    "declined": frozenset(),
}


@dataclass(frozen=True)
class ValueKind:
    """A field's value type, both as a pydantic annotation and as a client can read it."""

    annotation: Any
    name: Literal["text", "choice", "date", "rxnorm", "ids", "id", "proposal"]
    max_length: int | None = None
    choices: tuple[str, ...] | None = None


def _text(max_length: int, *, required: bool = False) -> ValueKind:
    text = Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1 if required else 0, max_length=max_length
        ),
    ]
    return ValueKind(text if required else text | None, "text", max_length=max_length)


def _choice(values: tuple[str, ...], *, required: bool = False) -> ValueKind:
    literal = Literal[values]  # type: ignore[valid-type]
    return ValueKind(literal if required else literal | None, "choice", choices=values)


RXNORM = ValueKind(
    Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")] | None, "rxnorm", max_length=12
)
DATE = ValueKind(str | None, "date")
_ID = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
IDS = ValueKind(Annotated[list[_ID], Field(max_length=40)], "ids")
ENTITY_ID = ValueKind(_ID | None, "id", max_length=64)
# Field name -> proposed value; each value is validated as that medication field.
PROPOSAL = ValueKind(dict[str, Any], "proposal", choices=PROPOSABLE)
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class FieldSpec:
    kind: ValueKind
    action: Action
    compare_and_set: bool = False
    required: bool = False
    default: Any = None
    # A label a person reads in errors and the history drawer.
    label: str = ""

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.kind.annotation)

    def validate(self, value: Any) -> Any:
        """The value in its stored (JSON) form; raises ValueError with a readable message.

        Strict: a JSON value of the wrong type is refused, never converted (no `true` for a
        number, no date-time where a date is asked).
        """
        if self.kind.name == "date":
            return _date(value)
        try:
            parsed = self.adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ValueError(message) from None
        if self.kind.name == "proposal":
            return _proposal(parsed)
        for text in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(text, str):
                check_storable(text)
        if isinstance(parsed, str) and parsed == "" and not self.required:
            return None
        return parsed

    def describe(self) -> dict[str, Any]:
        """What a client needs to offer exactly what the server accepts."""
        return {
            "label": self.label,
            "kind": self.kind.name,
            "choices": list(self.kind.choices) if self.kind.choices else None,
            "max_length": self.kind.max_length,
            "required": self.required,
            "default": self.default,
            "compare_and_set": self.compare_and_set,
            "action": self.action.value,
        }


def check_storable(text: str) -> None:
    """Text every database can store: no NUL character, no unpaired surrogate."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (an unpaired surrogate was sent)") from None


def _date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("is not a real calendar date (YYYY-MM-DD)") from None


def _proposal(value: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, proposed in value.items():
        if name not in PROPOSABLE:
            allowed = ", ".join(PROPOSABLE)
            raise ValueError(f"cannot propose '{name}'; a proposal may set: {allowed}")
        spec = MEDICATION_FIELDS[name]
        try:
            clean[name] = spec.validate(proposed)
        except ValueError as exc:
            raise ValueError(f"proposed {spec.label.lower()} {exc}") from None
        if clean[name] is None and spec.required:
            raise ValueError(f"proposed {spec.label.lower()} cannot be empty")
    return {name: clean[name] for name in PROPOSABLE if name in clean}


def _spec(
    kind: ValueKind,
    action: Action,
    label: str,
    *,
    cas: bool = False,
    required: bool = False,
    default: Any = None,
) -> FieldSpec:
    return FieldSpec(
        kind=kind,
        action=action,
        compare_and_set=cas,
        required=required,
        default=default,
        label=label,
    )


EDIT = Action.EDIT_MEDICATION
ANNOTATE = Action.ANNOTATE
CONFIRM = Action.CONFIRM_HOW_TAKEN
DECIDE = Action.DECIDE_RECOMMENDATION

MEDICATION_FIELDS: dict[str, FieldSpec] = {
    "name": _spec(_text(200, required=True), EDIT, "Name", required=True),
    "strength": _spec(_text(100), EDIT, "Strength", cas=True),
    "form": _spec(_text(100), EDIT, "Form"),
    "rxnorm_code": _spec(RXNORM, EDIT, "RxNorm code"),
    "how_taken": _spec(_text(500), EDIT, "How taken", cas=True),
    "why": _spec(_text(300), EDIT, "Why"),
    "prescriber": _spec(_text(200), EDIT, "Prescriber"),
    "start_date": _spec(DATE, EDIT, "Start date"),
    "stop_date": _spec(DATE, EDIT, "Stop date", cas=True),
    "why_stopped": _spec(_text(300), EDIT, "Why stopped"),
    "status": _spec(
        _choice(MEDICATION_STATUSES, required=True), EDIT, "Status", cas=True, default="active"
    ),
    "kind": _spec(_choice(MEDICATION_KINDS, required=True), EDIT, "Kind", default="prescription"),
    "source": _spec(_choice(SOURCES), EDIT, "Source"),
    "adherence": _spec(_choice(ADHERENCE), CONFIRM, "How often taken as directed"),
    "patient_confirmation": _spec(
        _choice(CONFIRMATIONS), CONFIRM, "Patient confirmation", cas=True
    ),
    "patient_how_taken": _spec(_text(500), CONFIRM, "How the patient says they take it"),
    "patient_note": _spec(_text(1000), CONFIRM, "Patient note"),
    "notes": _spec(_text(2000), ANNOTATE, "Care team notes"),
    "notes_audience": _spec(
        _choice(AUDIENCES, required=True), ANNOTATE, "Notes visible to", default=CARE_TEAM
    ),
}

PROBLEM_FIELDS: dict[str, FieldSpec] = {
    "category": _spec(
        _choice(PROBLEM_CATEGORIES, required=True), ANNOTATE, "Category", required=True
    ),
    "description": _spec(_text(2000), ANNOTATE, "Description"),
    "medication_ids": _spec(IDS, ANNOTATE, "Medications", default=[]),
    "severity": _spec(
        _choice(("low", "moderate", "high"), required=True),
        ANNOTATE,
        "Severity",
        default="moderate",
    ),
    "status": _spec(
        _choice(("open", "resolved"), required=True), ANNOTATE, "Status", default="open"
    ),
    "audience": _spec(_choice(AUDIENCES, required=True), ANNOTATE, "Visible to", default=CARE_TEAM),
}

RECOMMENDATION_FIELDS: dict[str, FieldSpec] = {
    "text": _spec(_text(2000, required=True), ANNOTATE, "Recommendation", required=True),
    "to": _spec(
        _choice(("prescriber", "patient"), required=True), ANNOTATE, "To", default="prescriber"
    ),
    "problem_id": _spec(ENTITY_ID, ANNOTATE, "Problem"),
    "medication_id": _spec(ENTITY_ID, ANNOTATE, "Medication"),
    "change": _spec(_choice(CHANGE_KINDS), ANNOTATE, "Therapy change"),
    "proposed": _spec(PROPOSAL, ANNOTATE, "Proposed values", default={}),
    "audience": _spec(_choice(AUDIENCES, required=True), ANNOTATE, "Visible to", default=CARE_TEAM),
    "status": _spec(
        _choice(RECOMMENDATION_STATUSES, required=True),
        DECIDE,
        "Decision",
        cas=True,
        default="proposed",
    ),
}

PLAN_ITEM_FIELDS: dict[str, FieldSpec] = {
    "talked_about": _spec(
        _text(1000, required=True), ANNOTATE, "What we talked about", required=True
    ),
    "to_do": _spec(_text(1000), ANNOTATE, "What I need to do"),
    "what_i_did": _spec(_text(1000), ANNOTATE, "What I did and when"),
    "audience": _spec(_choice(AUDIENCES, required=True), ANNOTATE, "Visible to", default="patient"),
}

FIELDS: dict[EntityType, dict[str, FieldSpec]] = {
    EntityType.MEDICATION: MEDICATION_FIELDS,
    EntityType.PROBLEM: PROBLEM_FIELDS,
    EntityType.RECOMMENDATION: RECOMMENDATION_FIELDS,
    EntityType.PLAN_ITEM: PLAN_ITEM_FIELDS,
}

# Who may create (and reorder) each kind of entity.
CREATE_ACTION: dict[EntityType, Action] = {
    EntityType.MEDICATION: EDIT,
    EntityType.PROBLEM: ANNOTATE,
    EntityType.RECOMMENDATION: ANNOTATE,
    EntityType.PLAN_ITEM: ANNOTATE,
}

TRANSITIONS: dict[tuple[EntityType, str], dict[str, frozenset[str]]] = {
    (EntityType.MEDICATION, "status"): MEDICATION_TRANSITIONS,
    (EntityType.RECOMMENDATION, "status"): RECOMMENDATION_TRANSITIONS,
}


def defaults(entity_type: EntityType) -> dict[str, Any]:
    return {name: _copy(spec.default) for name, spec in FIELDS[entity_type].items()}


def _copy(value: Any) -> Any:
    return (
        dict(value)
        if isinstance(value, dict)
        else list(value)
        if isinstance(value, list)
        else value
    )


@cache
def schema() -> dict[str, Any]:
    """Every entity's fields, who may change them, and the status transitions, as JSON.

    Clients build their forms from this, so they offer only what the server accepts.
    """
    open_rules: dict[EntityType, dict[str, Any]] = {
        EntityType.MEDICATION: {
            "to_confirm": {
                "statuses": sorted(TO_CONFIRM_STATUSES),
                "confirmations": sorted(UNCONFIRMED, key=lambda v: v or ""),
                "bound_to": list(CONFIRMATION_BOUND),
            }
        },
        EntityType.RECOMMENDATION: {"to_decide": {"statuses": sorted(UNDECIDED)}},
    }
    return {
        entity.value: {
            **open_rules.get(entity, {}),
            "create_action": CREATE_ACTION[entity].value,
            "fields": {name: spec.describe() for name, spec in FIELDS[entity].items()},
            "transitions": {
                field: {state: sorted(nexts) for state, nexts in table.items()}
                for (kind, field), table in TRANSITIONS.items()
                if kind is entity
            },
        }
        for entity in EntityType
    }
