"""FHIR R4 (R4B) for the medical home's record: a document Bundle out, a medication list in.

Export: a `document` Bundle of a Composition, the Patient, the pharmacist (Practitioner),
the MTM provider (Organization), a snapshot `List` of `MedicationStatement`s, a
`DetectedIssue` per drug therapy problem, one `CarePlan` (the Medication Action Plan and
the recommendations) and a `Provenance` per panel entity from the change log. Every id is
derived from the consult and the entity (uuid5), and every time from the log, so the same
seq gives the same Bundle. Fields FHIR has no element for travel in extensions under
`EXTENSION` (docs/documents.md lists each).

Import: the medications of a Bundle (in the order of its List, when it has one) or of a
List with contained MedicationStatements, as panel fields, with an error per entry that
cannot be read. The panel's own rules then check each entry (server/api.py).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from documents.content import ConsultFacts

EXTENSION = "urn:mtm-consult:fhir:"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
DTP_SYSTEM = "urn:mtm-consult:fhir:drug-therapy-problem"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
MAX_IMPORT = 100

_NAMESPACE = uuid.UUID("6f1c1f7e-9b7c-5a43-8f0e-6d1f2b9a4c10")

# Panel status -> MedicationStatement.status (the same words, all but one).
_STATUS_OUT = {
    "active": "active",
    "stopped": "stopped",
    "on-hold": "on-hold",
    "entered-in-error": "entered-in-error",
    "not-taken": "not-taken",
}
# MedicationStatement.status -> panel status, for import.
_STATUS_IN = {
    **{fhir: panel for panel, fhir in _STATUS_OUT.items()},
    "completed": "stopped",
    "intended": "active",
    "unknown": "active",
}
_DETAIL_STATUS = {
    "proposed": "not-started",
    "no-response": "on-hold",
    "accepted": "scheduled",
    "declined": "cancelled",
}


def _id(consult_id: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{consult_id}/{key}"))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": EXTENSION + name, **value}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


@dataclass
class _Refs:
    consult_id: str
    ids: dict[str, str] = field(default_factory=dict)

    def of(self, key: str) -> str:
        if key not in self.ids:
            self.ids[key] = _id(self.consult_id, key)
        return self.ids[key]

    def ref(self, key: str, display: str | None = None) -> dict[str, Any]:
        reference: dict[str, Any] = {"reference": _url(self.of(key))}
        if display:
            reference["display"] = display
        return reference


def export_bundle(
    facts: ConsultFacts, snapshot: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The consult's document Bundle at `facts.seq`; `events` are the log up to that seq."""
    refs = _Refs(facts.consult_id)
    entities = snapshot["entities"]
    medications = [e for e in entities if e["type"] == "medication"]
    problems = [e for e in entities if e["type"] == "problem"]
    recommendations = [e for e in entities if e["type"] == "recommendation"]
    plan_items = [e for e in entities if e["type"] == "plan_item"]
    names = {e["id"]: _title(e["data"]) for e in medications}
    patient = refs.ref("patient", facts.patient_name)
    prepared = _instant(facts.prepared_at)

    resources: list[dict[str, Any]] = []
    statements = [_statement(refs, patient, med, events) for med in medications]
    issues = [
        _issue(refs, patient, problem, recommendations, names, events) for problem in problems
    ]
    care_plan = _care_plan(refs, patient, facts, plan_items, recommendations, names, prepared)
    medication_list = {
        "resourceType": "List",
        "id": refs.of("medication-list"),
        "status": "current",
        "mode": "snapshot",
        "title": "Medication list",
        "code": {"coding": [{"system": LOINC, "code": "10160-0"}], "text": "Medication list"},
        "subject": patient,
        "date": prepared,
        "entry": [
            {"item": refs.ref(f"medication/{med['id']}", names[med["id"]])} for med in medications
        ],
    }
    if not medications:
        medication_list["emptyReason"] = {"text": "No medications were recorded."}
    composition = {
        "resourceType": "Composition",
        "id": refs.of("composition"),
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": _url(refs.of(f"composition/{facts.seq}")),
        },
        "status": "final" if facts.final else "preliminary",
        "type": {
            "coding": [
                {"system": LOINC, "code": "56445-0", "display": "Medication summary Document"}
            ],
            "text": "Comprehensive medication review",
        },
        "subject": patient,
        "date": prepared,
        "author": [refs.ref("pharmacist", facts.pharmacist_name)],
        "title": "Comprehensive medication review",
        "custodian": refs.ref("provider", facts.provider_name),
        "event": [{"period": {"start": facts.service_date.isoformat()}}],
        "section": [
            {
                "title": "Medications",
                "code": {"coding": [{"system": LOINC, "code": "10160-0"}]},
                "entry": [refs.ref("medication-list")],
            },
            {
                "title": "Drug therapy problems",
                "entry": [refs.ref(f"problem/{p['id']}") for p in problems],
                **({} if problems else {"emptyReason": {"text": "None recorded"}}),
            },
            {
                "title": "Medication Action Plan and recommendations",
                "code": {"coding": [{"system": LOINC, "code": "18776-5"}]},
                "entry": [refs.ref("care-plan")],
            },
        ],
    }
    participants = [
        {
            "resourceType": "Patient",
            "id": refs.of("patient"),
            "name": [{"text": facts.patient_name}],
        },
        {
            "resourceType": "Practitioner",
            "id": refs.of("pharmacist"),
            "name": [{"text": facts.pharmacist_name}],
        },
        {
            "resourceType": "Organization",
            "id": refs.of("provider"),
            "name": facts.provider_name,
            **(
                {"telecom": [{"system": "other", "value": facts.provider_contact}]}
                if facts.provider_contact
                else {}
            ),
        },
    ]
    resources = [composition, *participants, medication_list, *statements, *issues, care_plan]
    resources += _provenances(refs, events, entities)
    return {
        "resourceType": "Bundle",
        "id": refs.of(f"bundle/{facts.seq}"),
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": _url(refs.of(f"bundle-identifier/{facts.seq}")),
        },
        "type": "document",
        "timestamp": prepared,
        "entry": [
            {"fullUrl": _url(resource["id"]), "resource": resource} for resource in resources
        ],
    }


def _title(data: dict[str, Any]) -> str:
    return " ".join(part for part in (data["name"], data.get("strength"), data.get("form")) if part)


def _entity_events(events: list[dict[str, Any]], entity_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["entity_id"] == entity_id and e["outcome"] == "applied"]


def _statement(
    refs: _Refs, patient: dict[str, Any], entity: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    data = entity["data"]
    concept: dict[str, Any] = {"text": data["name"]}
    if data.get("rxnorm_code"):
        concept["coding"] = [{"system": RXNORM, "code": data["rxnorm_code"]}]
    extensions = [_ext("medication-kind", valueCode=data.get("kind") or "prescription")]
    for name, key in (("strength", "medication-strength"), ("form", "medication-form")):
        if data.get(name):
            extensions.append(_ext(key, valueString=data[name]))
    if data.get("prescriber"):
        extensions.append(_ext("prescriber", valueString=data["prescriber"]))
    if data.get("source"):
        extensions.append(_ext("information-source", valueCode=data["source"]))
    extensions.append(_ext("notes-audience", valueCode=data.get("notes_audience") or "care-team"))
    for name, key in (
        ("adherence", "patient-adherence"),
        ("patient_confirmation", "patient-confirmation"),
    ):
        if data.get(name):
            extensions.append(_ext(key, valueCode=data[name]))
    if data.get("patient_how_taken"):
        extensions.append(_ext("patient-how-taken", valueString=data["patient_how_taken"]))
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": refs.of(f"medication/{entity['id']}"),
        "extension": extensions,
        "identifier": [{"system": EXTENSION + "panel-entity", "value": entity["id"]}],
        "status": _STATUS_OUT[data.get("status") or "active"],
        "medicationCodeableConcept": concept,
        "subject": patient,
    }
    if data.get("why_stopped"):
        statement["statusReason"] = [{"text": data["why_stopped"]}]
    period = {
        key: data[name]
        for key, name in (("start", "start_date"), ("end", "stop_date"))
        if data.get(name)
    }
    if period:
        statement["effectivePeriod"] = period
    changed = _entity_events(events, entity["id"])
    if changed:
        statement["dateAsserted"] = changed[-1]["at"]
    if data.get("source") == "patient":
        statement["informationSource"] = patient
    if data.get("why"):
        statement["reasonCode"] = [{"text": data["why"]}]
    notes = []
    if data.get("notes"):
        notes.append({"text": data["notes"]})
    if data.get("patient_note"):
        notes.append({"authorReference": patient, "text": data["patient_note"]})
    if notes:
        statement["note"] = notes
    if data.get("how_taken"):
        statement["dosage"] = [{"text": data["how_taken"]}]
    return statement


def _issue(
    refs: _Refs,
    patient: dict[str, Any],
    entity: dict[str, Any],
    recommendations: list[dict[str, Any]],
    names: dict[str, str],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    from documents.text import PROBLEM_CATEGORY

    data = entity["data"]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": refs.of(f"problem/{entity['id']}"),
        "extension": [_ext("audience", valueCode=data.get("audience") or "care-team")],
        "identifier": [{"system": EXTENSION + "panel-entity", "value": entity["id"]}],
        "status": "final" if data.get("status") == "resolved" else "preliminary",
        "code": {
            "coding": [
                {
                    "system": DTP_SYSTEM,
                    "code": data["category"],
                    "display": PROBLEM_CATEGORY[data["category"]],
                }
            ],
            "text": PROBLEM_CATEGORY[data["category"]],
        },
        "severity": data.get("severity") or "moderate",
        "patient": patient,
        "implicated": [
            refs.ref(f"medication/{mid}", names[mid])
            for mid in data.get("medication_ids") or []
            if mid in names
        ],
    }
    created = _entity_events(events, entity["id"])
    if created:
        issue["identifiedDateTime"] = created[0]["at"]
    if data.get("description"):
        issue["detail"] = data["description"]
    mitigations = []
    for rec in recommendations:
        rec_data = rec["data"]
        if rec_data.get("problem_id") != entity["id"]:
            continue
        mitigation: dict[str, Any] = {
            "action": {"text": f"{rec_data['text']} ({rec_data['status']})"},
        }
        if rec_data.get("decided_at") and rec_data["status"] in ("accepted", "declined"):
            mitigation["date"] = rec_data["decided_at"]
            mitigation["author"] = {
                "display": f"{rec_data['decided_by']} ({rec_data['decided_by_role']})"
            }
        mitigations.append(mitigation)
    if mitigations:
        issue["mitigation"] = mitigations
    if not issue["implicated"]:
        del issue["implicated"]
    return issue


def _care_plan(
    refs: _Refs,
    patient: dict[str, Any],
    facts: ConsultFacts,
    plan_items: list[dict[str, Any]],
    recommendations: list[dict[str, Any]],
    names: dict[str, str],
    prepared: str,
) -> dict[str, Any]:
    activities: list[dict[str, Any]] = []
    for item in plan_items:
        data = item["data"]
        detail: dict[str, Any] = {
            "extension": [
                _ext("panel-entity", valueString=item["id"]),
                _ext("audience", valueCode=data.get("audience") or "patient"),
            ],
            "code": {"text": data["talked_about"]},
            "status": "not-started",
        }
        if data.get("to_do"):
            detail["description"] = data["to_do"]
        activity: dict[str, Any] = {"detail": detail}
        if data.get("what_i_did"):
            activity["progress"] = [{"text": data["what_i_did"]}]
        activities.append(activity)
    for rec in recommendations:
        data = rec["data"]
        extensions = [
            _ext("panel-entity", valueString=rec["id"]),
            _ext("audience", valueCode=data.get("audience") or "care-team"),
            _ext("recommendation-to", valueCode=data.get("to") or "prescriber"),
            _ext("recommendation-status", valueCode=data["status"]),
        ]
        if data.get("change"):
            extensions.append(_ext("therapy-change", valueCode=data["change"]))
        for name, value in (data.get("proposed") or {}).items():
            extensions.append(_ext(f"proposed-{name.replace('_', '-')}", valueString=str(value)))
        detail = {
            "extension": extensions,
            "code": {"text": "Recommendation"},
            "status": _DETAIL_STATUS[data["status"]],
            "description": data["text"],
        }
        if data["status"] in ("accepted", "declined"):
            who = f"{data.get('decided_by')} ({data.get('decided_by_role')})"
            reason = f"{data['status'].title()} by {who}"
            if data.get("decision_notes"):
                reason += f": {data['decision_notes']}"
            detail["statusReason"] = {"text": reason}
        if data.get("medication_id") in names:
            detail["productReference"] = refs.ref(
                f"medication/{data['medication_id']}", names[data["medication_id"]]
            )
        activities.append({"detail": detail})
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": refs.of("care-plan"),
        "status": "active" if facts.final else "draft",
        "intent": "plan",
        "title": "Medication Action Plan",
        "subject": patient,
        "created": prepared,
        "author": refs.ref("pharmacist", facts.pharmacist_name),
    }
    if activities:
        plan["activity"] = activities
    return plan


def _provenances(
    refs: _Refs, events: list[dict[str, Any]], entities: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One Provenance per panel entity: who changed it (each person once, in order of their
    first change), when it was created and last changed, from the change log."""

    def target_key(entity: dict[str, Any]) -> str:
        if entity["type"] in ("medication", "problem"):
            return f"{entity['type']}/{entity['id']}"
        return "care-plan"  # plan items and recommendations are activities of the CarePlan

    provenances = []
    for entity in entities:
        changed = _entity_events(events, entity["id"])
        if not changed:
            continue
        agents: OrderedDict[tuple[str, str], None] = OrderedDict()
        for event in changed:
            agents[(event["actor"]["name"], event["actor"]["role"])] = None
        provenances.append(
            {
                "resourceType": "Provenance",
                "id": refs.of(f"provenance/{entity['id']}"),
                "target": [refs.ref(target_key(entity))],
                "occurredPeriod": {"start": changed[0]["at"], "end": changed[-1]["at"]},
                "recorded": changed[-1]["at"],
                "activity": {
                    "coding": [
                        {
                            "system": DATA_OPERATION,
                            "code": "UPDATE" if len(changed) > 1 else "CREATE",
                        }
                    ]
                },
                "agent": [
                    {
                        "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
                        "role": [{"text": role}],
                        "who": {"display": name},
                    }
                    for name, role in agents
                ],
                "entity": [
                    {
                        "role": "source",
                        "what": {
                            "identifier": {
                                "system": EXTENSION + "change-log",
                                "value": f"{entity['id']}@"
                                + ",".join(str(e["seq"]) for e in changed),
                            }
                        },
                    }
                ],
            }
        )
    return provenances


# -- import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryError:
    where: str  # e.g. "entry.3.resource" or "contained.1"
    message: str


@dataclass(frozen=True)
class ImportedMedication:
    where: str
    fields: dict[str, Any]


class NotFhir(Exception):
    """The body is not a FHIR Bundle or List this server can read."""


_FHIR_DATE = re.compile(r"^([0-9]{4})(-[0-9]{2}(-[0-9]{2})?)?$")
_FHIR_DATETIME = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def import_medications(
    resource: dict[str, Any],
) -> tuple[list[ImportedMedication], list[EntryError]]:
    """The medications of a Bundle or List, as panel fields, and an error per entry that
    cannot be read. Raises NotFhir when the resource itself is neither."""
    kind = resource.get("resourceType")
    if kind == "Bundle":
        found = _bundle_statements(resource)
    elif kind == "List":
        found = _list_statements(resource)
    else:
        raise NotFhir("Send a FHIR Bundle or List of MedicationStatements.")
    if isinstance(found, EntryError):
        return [], [found]
    if not found:
        return [], [EntryError(kind.lower(), "holds no MedicationStatement.")]
    if len(found) > MAX_IMPORT:
        return [], [EntryError(kind.lower(), f"holds more than {MAX_IMPORT} medications.")]
    medications: list[ImportedMedication] = []
    errors: list[EntryError] = []
    for where, statement, contained in found:
        try:
            medications.append(ImportedMedication(where, _read_statement(statement, contained)))
        except _Unreadable as problem:
            errors.append(EntryError(where, str(problem)))
    return medications, errors


class _Unreadable(Exception):
    pass


_Found = list[tuple[str, Any, dict[str, Any]]]


def _bundle_statements(bundle: dict[str, Any]) -> _Found | EntryError:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        return EntryError("entry", "must be a list of entries.")
    by_url: dict[str, tuple[str, Any]] = {}
    statements: _Found = []
    lists: list[tuple[str, dict[str, Any]]] = []
    for index, entry in enumerate(entries):
        where = f"entry.{index}.resource"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            return EntryError(f"entry.{index}", "is not a Bundle entry with a resource.")
        resource = entry["resource"]
        if isinstance(entry.get("fullUrl"), str):
            by_url[entry["fullUrl"]] = (where, resource)
        if resource.get("resourceType") == "MedicationStatement":
            statements.append((where, resource, _contained(resource)))
        elif resource.get("resourceType") == "List":
            lists.append((where, resource))
    medication_lists = [
        (where, found) for where, found in lists if _list_of_statements(found, by_url)
    ]
    if len(medication_lists) != 1:
        return statements  # no list (or several): every MedicationStatement, in entry order
    where, chosen = medication_lists[0]
    ordered: _Found = []
    for index, item in enumerate(chosen.get("entry") or []):
        reference = item.get("item", {}).get("reference") if isinstance(item, dict) else None
        target = by_url.get(reference) if isinstance(reference, str) else None
        if target is None or not isinstance(target[1], dict):
            return EntryError(f"{where}.entry.{index}", "refers to no resource of this Bundle.")
        ordered.append((target[0], target[1], _contained(target[1])))
    return ordered


def _list_of_statements(found: dict[str, Any], by_url: dict[str, tuple[str, Any]]) -> bool:
    entries = found.get("entry")
    if not isinstance(entries, list) or not entries:
        return False
    for item in entries:
        reference = item.get("item", {}).get("reference") if isinstance(item, dict) else None
        target = by_url.get(reference) if isinstance(reference, str) else None
        if target is not None and target[1].get("resourceType") == "MedicationStatement":
            return True
    return False


def _list_statements(found: dict[str, Any]) -> _Found | EntryError:
    contained = _contained(found)
    entries = found.get("entry", [])
    if not isinstance(entries, list):
        return EntryError("entry", "must be a list of entries.")
    statements: _Found = []
    for index, item in enumerate(entries):
        reference = item.get("item", {}).get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str) or not reference.startswith("#"):
            return EntryError(
                f"entry.{index}.item",
                "must refer to a MedicationStatement contained in the List (#id).",
            )
        target = contained.get(reference[1:])
        if target is None or target.get("resourceType") != "MedicationStatement":
            return EntryError(f"entry.{index}.item", "refers to no contained MedicationStatement.")
        statements.append((f"entry.{index}", target, contained))
    return statements


def _contained(resource: dict[str, Any]) -> dict[str, Any]:
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return {}
    return {
        item["id"]: item
        for item in contained
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    }


def _text_of(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unreadable(f"{where} must be text.")
    return value


def _concept_text(concept: Any, where: str) -> str | None:
    if concept is None:
        return None
    if not isinstance(concept, dict):
        raise _Unreadable(f"{where} must be a CodeableConcept.")
    text = _text_of(concept.get("text"), f"{where}.text")
    if text:
        return text
    codings = concept.get("coding") or []
    if not isinstance(codings, list):
        raise _Unreadable(f"{where}.coding must be a list.")
    for coding in codings:
        if (
            isinstance(coding, dict)
            and isinstance(coding.get("display"), str)
            and coding["display"]
        ):
            return str(coding["display"])
    return None


def _first(value: Any, where: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Unreadable(f"{where} must be a list.")
    return value[0] if value else None


def _extensions(statement: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    extensions = statement.get("extension") or []
    if not isinstance(extensions, list):
        raise _Unreadable("extension must be a list.")
    for extension in extensions:
        if not isinstance(extension, dict) or not isinstance(extension.get("url"), str):
            continue
        if not extension["url"].startswith(EXTENSION):
            continue  # someone else's extension: not ours to read
        name = extension["url"].removeprefix(EXTENSION)
        value = extension.get("valueString", extension.get("valueCode"))
        if not isinstance(value, str):
            raise _Unreadable(f"extension {name} must have a valueString or valueCode.")
        found[name] = value
    return found


def _date(value: Any, what: str) -> str | None:
    """A FHIR date or dateTime as the panel's YYYY-MM-DD."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unreadable(f"{what} must be a FHIR date (YYYY-MM-DD).")
    full = _FHIR_DATETIME.match(value)
    day = full.group(1) if full else value
    match = _FHIR_DATE.match(day)
    if match is None:
        raise _Unreadable(f"{what} is not a FHIR date or dateTime (YYYY-MM-DD).")
    if match.group(3) is None:
        raise _Unreadable(f"{what} must be a full date (YYYY-MM-DD), not only a year or month.")
    try:
        return dt.date.fromisoformat(day).isoformat()
    except ValueError:
        raise _Unreadable(f"{what} is not a real calendar date.") from None


def _read_statement(statement: Any, contained: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(statement, dict):
        raise _Unreadable("must be a MedicationStatement.")
    ours = _extensions(statement)
    concept = statement.get("medicationCodeableConcept")
    name = _concept_text(concept, "medicationCodeableConcept")
    form = ours.get("medication-form")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    reference = statement.get("medicationReference")
    if name is None and isinstance(reference, dict):
        target = reference.get("reference")
        medication = (
            contained.get(target[1:])
            if isinstance(target, str) and target.startswith("#")
            else None
        )
        if isinstance(medication, dict):
            name = _concept_text(medication.get("code"), "Medication.code")
            codings = (medication.get("code") or {}).get("coding")
            form = form or _concept_text(medication.get("form"), "Medication.form")
        if name is None:
            name = _text_of(reference.get("display"), "medicationReference.display")
    if not name:
        raise _Unreadable(
            "has no medication: give medicationCodeableConcept with a text or display."
        )
    rxnorm = None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and coding.get("system") == RXNORM:
            rxnorm = _text_of(coding.get("code"), "RxNorm code")
            break
    status = statement.get("status")
    if status not in _STATUS_IN:
        raise _Unreadable(f"status must be one of: {', '.join(_STATUS_IN)}.")
    period = statement.get("effectivePeriod")
    if period is not None and not isinstance(period, dict):
        raise _Unreadable("effectivePeriod must be a Period.")
    start = _date((period or {}).get("start"), "effectivePeriod.start")
    if start is None and "effectiveDateTime" in statement:
        start = _date(statement.get("effectiveDateTime"), "effectiveDateTime")
    stop = _date((period or {}).get("end"), "effectivePeriod.end")
    dosage = _first(statement.get("dosage"), "dosage")
    notes = statement.get("note") or []
    if not isinstance(notes, list):
        raise _Unreadable("note must be a list.")
    care_team_notes = [
        _text_of(note.get("text"), "note.text")
        for note in notes
        if isinstance(note, dict) and "authorReference" not in note
    ]
    source = ours.get("information-source")
    if source is None and isinstance(statement.get("informationSource"), dict):
        informant = statement["informationSource"].get("reference")
        if isinstance(informant, str) and "Patient" in informant:
            source = "patient"
    fields: dict[str, Any] = {
        "name": name,
        "strength": ours.get("medication-strength"),
        "form": form,
        "rxnorm_code": rxnorm,
        "how_taken": _text_of(dosage.get("text"), "dosage.text")
        if isinstance(dosage, dict)
        else None,
        "why": _concept_text(_first(statement.get("reasonCode"), "reasonCode"), "reasonCode"),
        "prescriber": ours.get("prescriber"),
        "start_date": start,
        "stop_date": stop,
        "why_stopped": _concept_text(
            _first(statement.get("statusReason"), "statusReason"), "statusReason"
        ),
        "status": _STATUS_IN[status],
        "kind": ours.get("medication-kind", "prescription"),
        "source": source,
        "notes": "\n".join(note for note in care_team_notes if note) or None,
        "notes_audience": ours.get("notes-audience", "care-team"),
    }
    return {name: value for name, value in fields.items() if value is not None}
