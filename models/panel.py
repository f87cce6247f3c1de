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
from dataclasses import dataclass
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


def _text(max_length: int, *, required: bool = False) -> Any:
    text = Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1 if required else 0, max_length=max_length
        ),
    ]
    return text if required else text | None


def _choice(values: tuple[str, ...], *, required: bool = False) -> Any:
    literal = Literal[values]  # type: ignore[valid-type]
    return literal if required else literal | None


RxNorm = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")] | None
OptionalDate = dt.date | None
EntityIds = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=40)]


@dataclass(frozen=True)
class FieldSpec:
    adapter: TypeAdapter[Any]
    action: Action
    compare_and_set: bool = False
    required: bool = False
    default: Any = None
    # A label a person reads in errors and the history drawer.
    label: str = ""
    is_date: bool = False

    def validate(self, value: Any) -> Any:
        """The value in its stored (JSON) form; raises ValueError with a readable message."""
        if self.is_date and value is not None and not isinstance(value, str):
            raise ValueError("must be a date written as YYYY-MM-DD")
        try:
            parsed = self.adapter.validate_python(value, strict=False)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ValueError(message) from None
        if isinstance(parsed, str) and parsed == "" and not self.required:
            return None
        if isinstance(parsed, dt.date):
            return parsed.isoformat()
        return parsed


def _spec(
    kind: Any,
    action: Action,
    label: str,
    *,
    cas: bool = False,
    required: bool = False,
    default: Any = None,
) -> FieldSpec:
    return FieldSpec(
        adapter=TypeAdapter(kind),
        action=action,
        compare_and_set=cas,
        required=required,
        default=default,
        label=label,
        is_date=kind is OptionalDate,
    )


EDIT = Action.EDIT_MEDICATION
ANNOTATE = Action.ANNOTATE
CONFIRM = Action.CONFIRM_HOW_TAKEN
DECIDE = Action.DECIDE_RECOMMENDATION

MEDICATION_FIELDS: dict[str, FieldSpec] = {
    "name": _spec(_text(200, required=True), EDIT, "Name", required=True),
    "strength": _spec(_text(100), EDIT, "Strength", cas=True),
    "form": _spec(_text(100), EDIT, "Form"),
    "rxnorm_code": _spec(RxNorm, EDIT, "RxNorm code"),
    "how_taken": _spec(_text(500), EDIT, "How taken", cas=True),
    "why": _spec(_text(300), EDIT, "Why"),
    "prescriber": _spec(_text(200), EDIT, "Prescriber"),
    "start_date": _spec(OptionalDate, EDIT, "Start date"),
    "stop_date": _spec(OptionalDate, EDIT, "Stop date", cas=True),
    "why_stopped": _spec(_text(300), EDIT, "Why stopped"),
    "status": _spec(
        _choice(MEDICATION_STATUSES, required=True), EDIT, "Status", cas=True, default="active"
    ),
    "kind": _spec(_choice(MEDICATION_KINDS, required=True), EDIT, "Kind", default="prescription"),
    "adherence": _spec(_choice(ADHERENCE), CONFIRM, "How often taken as directed"),
    "patient_confirmation": _spec(
        _choice(("confirmed", "corrected")), CONFIRM, "Patient confirmed how taken"
    ),
    "patient_how_taken": _spec(_text(500), CONFIRM, "How the patient says they take it"),
    "patient_note": _spec(_text(1000), CONFIRM, "Patient note"),
    "notes": _spec(_text(2000), ANNOTATE, "Notes"),
}

PROBLEM_FIELDS: dict[str, FieldSpec] = {
    "category": _spec(
        _choice(PROBLEM_CATEGORIES, required=True), ANNOTATE, "Category", required=True
    ),
    "description": _spec(_text(2000), ANNOTATE, "Description"),
    "medication_ids": _spec(EntityIds, ANNOTATE, "Medications", default=[]),
    "severity": _spec(
        _choice(("low", "moderate", "high"), required=True),
        ANNOTATE,
        "Severity",
        default="moderate",
    ),
    "status": _spec(
        _choice(("open", "resolved"), required=True), ANNOTATE, "Status", default="open"
    ),
}

RECOMMENDATION_FIELDS: dict[str, FieldSpec] = {
    "text": _spec(_text(2000, required=True), ANNOTATE, "Recommendation", required=True),
    "to": _spec(
        _choice(("patient", "prescriber"), required=True), ANNOTATE, "To", default="prescriber"
    ),
    "problem_id": _spec(_text(64), ANNOTATE, "Problem"),
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
    return {name: spec.default for name, spec in FIELDS[entity_type].items()}
