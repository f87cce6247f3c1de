"""What each document says, as typed values: which panel field fills which line.

Pure functions of the consult's facts and the panel at one seq (`{seq, entities}`, from
models/replay.py). The patient's summary is built from what the patient may see
(`models.audience.record_for("patient", ...)`), so a care-team-only problem,
recommendation, plan item or note cannot reach it; the prescriber letter is for the care
team and sees everything. docs/documents.md maps every field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from documents import text
from documents.text import Language
from models import audience
from models.panel import UNDECIDED


@dataclass(frozen=True)
class ConsultFacts:
    """What a document says about the consult beside its panel."""

    consult_id: str
    patient_name: str
    # The day of the review: when the call went live, else when it was scheduled.
    service_date: dt.date
    status: str  # the consult's status now ("ended": the documents are final)
    seq: int  # the panel's state the documents show
    # When the panel reached `seq` (the time of that change; the consult's creation for 0).
    prepared_at: dt.datetime
    provider_name: str  # the MTM provider (per deployment or per clinic; else the clinic)
    provider_contact: str | None
    plan_name: str | None
    pharmacist_name: str

    @property
    def final(self) -> bool:
        return self.status == "ended"


# -- the patient's summary (CMS Standardized Format) -------------------------------------


@dataclass(frozen=True)
class PlanRow:
    talked_about: str
    to_do: str | None
    what_i_did: str | None


@dataclass(frozen=True)
class ChangeRow:
    """A recommendation shared with the patient, and what came of it."""

    text: str
    medication: str | None
    outcome: str


@dataclass(frozen=True)
class MedicationRow:
    id: str
    name: str  # name, strength and form, as the CMS list's "Medication"
    how_i_use: str | None
    why_i_use: str | None
    prescriber: str | None
    date_started: str | None
    date_stopped: str | None
    why_stopped: str | None
    stopped: bool
    status: str
    kind: str
    source: str | None
    how_i_take_it: str | None  # the patient's own words
    how_often: str | None
    my_note: str | None
    confirmed: str | None
    team_note: str | None  # only when the care team shared it


@dataclass(frozen=True)
class SideEffectRow:
    medicines: str
    what_happened: str | None


@dataclass(frozen=True)
class PatientSummary:
    lang: Language
    words: dict[str, str]
    facts: ConsultFacts
    service_date: str
    date_prepared: str
    cover_call: str  # "call <provider> at <contact>"
    map_call: str
    plan_items: list[PlanRow]
    changes: list[ChangeRow]
    medications: list[MedicationRow]
    side_effects: list[SideEffectRow]
    sources: str | None  # "what you told us and your pharmacy fill records"


def _medication_title(data: dict[str, Any]) -> str:
    parts = [data["name"], data.get("strength"), data.get("form")]
    return " ".join(part for part in parts if part)


def _call_line(facts: ConsultFacts, lang: Language, key: str) -> str:
    words = text.WORDS[lang]
    contact = (
        words["call_us_contact"].format(contact=facts.provider_contact)
        if facts.provider_contact
        else ""
    )
    return words[key].format(provider=facts.provider_name, contact=contact)


def patient_summary(
    facts: ConsultFacts, snapshot: dict[str, Any], lang: Language
) -> PatientSummary:
    """The CMS cover letter, Medication Action Plan and Personal Medication List."""
    record = audience.record_for("patient", snapshot)
    medications = {entity["id"]: entity["data"] for entity in record["medications"]}
    rows = [
        _medication_row(entity["id"], entity["data"], lang)
        for entity in record["medications"]
        # A medication "listed by mistake" is not on the patient's list.
        if entity["data"].get("status") != "entered-in-error"
    ]
    sources = sorted(
        {data["source"] for data in medications.values() if data.get("source")},
        key=list(text.SOURCE[lang]).index,
    )
    side_effects = [
        SideEffectRow(
            medicines=", ".join(
                _medication_title(medications[mid])
                for mid in problem["data"].get("medication_ids") or []
                if mid in medications
            ),
            what_happened=problem["data"].get("description"),
        )
        for problem in record["problems"]
        if problem["data"]["category"] == "adverse-drug-reaction"
    ]
    changes = [
        ChangeRow(
            text=rec["data"]["text"],
            medication=_medication_title(medications[rec["data"]["medication_id"]])
            if rec["data"].get("medication_id") in medications
            else None,
            outcome=text.OUTCOME[lang][rec["data"]["status"]],
        )
        for rec in record["recommendations"]
    ]
    return PatientSummary(
        lang=lang,
        words=text.WORDS[lang],
        facts=facts,
        service_date=text.long_date(facts.service_date, lang),
        date_prepared=text.long_date(facts.prepared_at.date(), lang),
        cover_call=_call_line(facts, lang, "call_us"),
        map_call=_call_line(facts, lang, "map_call"),
        plan_items=[
            PlanRow(
                talked_about=item["data"]["talked_about"],
                to_do=item["data"].get("to_do"),
                what_i_did=item["data"].get("what_i_did"),
            )
            for item in record["plan_items"]
        ],
        changes=changes,
        medications=rows,
        side_effects=side_effects,
        sources=text.join_words([text.SOURCE[lang][s] for s in sources], lang) or None,
    )


def _medication_row(entity_id: str, data: dict[str, Any], lang: Language) -> MedicationRow:
    status = data.get("status") or "active"
    words = text
    return MedicationRow(
        id=entity_id,
        name=_medication_title(data),
        how_i_use=data.get("how_taken"),
        why_i_use=data.get("why"),
        prescriber=data.get("prescriber"),
        date_started=words.iso_date(data.get("start_date"), lang),
        date_stopped=words.iso_date(data.get("stop_date"), lang),
        why_stopped=data.get("why_stopped"),
        stopped=status == "stopped",
        status=words.STATUS[lang][status],
        kind=words.KIND[lang][data.get("kind") or "prescription"],
        source=words.SOURCE[lang][data["source"]] if data.get("source") else None,
        how_i_take_it=data.get("patient_how_taken"),
        how_often=words.ADHERENCE[lang][data["adherence"]] if data.get("adherence") else None,
        my_note=data.get("patient_note"),
        confirmed=words.CONFIRMATION[lang][data["patient_confirmation"]]
        if data.get("patient_confirmation")
        else None,
        # `record_for("patient")` has already removed notes that are not shared.
        team_note=data.get("notes"),
    )


# -- the prescriber letter ---------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRow:
    id: str
    category: str
    severity: str
    status: str
    description: str | None
    medicines: str


@dataclass(frozen=True)
class RecommendationRow:
    id: str
    number: int
    text: str
    to: str
    problem: str | None
    medication: str | None
    change: str | None
    proposed: list[tuple[str, str]]
    decision: str
    decided: bool
    decided_by: str | None
    decided_by_role: str | None
    decided_on: str | None
    decision_notes: str | None
    # The signed link that records the prescriber's answer (undecided ones to the prescriber).
    response_link: str | None


@dataclass(frozen=True)
class LetterMedicationRow:
    name: str
    how_taken: str | None
    why: str | None
    prescriber: str | None
    status: str
    start_date: str | None
    stop_date: str | None
    why_stopped: str | None
    notes: str | None


@dataclass(frozen=True)
class PrescriberLetter:
    facts: ConsultFacts
    service_date: str
    date_prepared: str
    prescribers: list[str]
    problems: list[ProblemRow]
    recommendations: list[RecommendationRow]
    to_answer: int  # how many wait for the prescriber's answer
    medications: list[LetterMedicationRow]


# (recommendation id, the version of its status the letter shows) -> the answer link
ResponseLink = Callable[[str, int], str]


def prescriber_letter(
    facts: ConsultFacts, snapshot: dict[str, Any], response_link: ResponseLink
) -> PrescriberLetter:
    """Problems found, recommendations with their outcome, and for each undecided one to
    the prescriber a response block and its signed link."""
    record = audience.record_for("clinic", snapshot)
    medications = {entity["id"]: entity["data"] for entity in record["medications"]}
    problems = {entity["id"]: entity["data"] for entity in record["problems"]}

    def names(ids: list[str]) -> str:
        return ", ".join(_medication_title(medications[mid]) for mid in ids if mid in medications)

    recommendations = []
    for number, entity in enumerate(record["recommendations"], start=1):
        data = entity["data"]
        status = data["status"]
        undecided = status in UNDECIDED
        problem = problems.get(data.get("problem_id") or "")
        decided_at = data.get("decided_at") if not undecided else None
        recommendations.append(
            RecommendationRow(
                id=entity["id"],
                number=number,
                text=data["text"],
                to=data.get("to") or "prescriber",
                problem=text.PROBLEM_CATEGORY[problem["category"]] if problem else None,
                medication=names([data["medication_id"]]) if data.get("medication_id") else None,
                change=text.CHANGE_KIND[data["change"]] if data.get("change") else None,
                proposed=[
                    (text.PROPOSED_LABEL[name], _proposed_value(name, value))
                    for name, value in (data.get("proposed") or {}).items()
                ],
                decision=text.DECISION[status],
                decided=not undecided,
                decided_by=data.get("decided_by") if not undecided else None,
                decided_by_role=data.get("decided_by_role") if not undecided else None,
                decided_on=text.long_date(dt.datetime.fromisoformat(decided_at).date(), "en")
                if decided_at
                else None,
                decision_notes=data.get("decision_notes"),
                response_link=response_link(entity["id"], entity["versions"]["status"])
                if undecided and data.get("to", "prescriber") == "prescriber"
                else None,
            )
        )
    prescribers = sorted(
        {
            medications[rec["data"]["medication_id"]]["prescriber"]
            for rec in record["recommendations"]
            if rec["data"].get("medication_id") in medications
            and medications[rec["data"]["medication_id"]].get("prescriber")
        }
    )
    return PrescriberLetter(
        facts=facts,
        service_date=text.long_date(facts.service_date, "en"),
        date_prepared=text.long_date(facts.prepared_at.date(), "en"),
        prescribers=prescribers,
        problems=[
            ProblemRow(
                id=entity["id"],
                category=text.PROBLEM_CATEGORY[entity["data"]["category"]],
                severity=entity["data"].get("severity") or "moderate",
                status=entity["data"].get("status") or "open",
                description=entity["data"].get("description"),
                medicines=names(entity["data"].get("medication_ids") or []),
            )
            for entity in record["problems"]
        ],
        recommendations=recommendations,
        to_answer=sum(1 for rec in recommendations if rec.response_link),
        medications=[
            LetterMedicationRow(
                name=_medication_title(data),
                how_taken=data.get("how_taken"),
                why=data.get("why"),
                prescriber=data.get("prescriber"),
                status=text.STATUS["en"][data.get("status") or "active"],
                start_date=text.iso_date(data.get("start_date"), "en"),
                stop_date=text.iso_date(data.get("stop_date"), "en"),
                why_stopped=data.get("why_stopped"),
                notes=data.get("notes"),
            )
            for data in medications.values()
        ],
    )


def _proposed_value(name: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if name == "status":
        return text.STATUS["en"].get(str(value), str(value))
    if name == "stop_date":
        return text.iso_date(str(value), "en") or ""
    return str(value)
