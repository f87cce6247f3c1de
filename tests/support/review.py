"""A comprehensive medication review told through the real API and panel rules, for the
document tests: stopped, changed and new medications, problems of several categories,
decided and undecided recommendations, plan items, care-team-only notes and markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from models.mutations import Actor
from models.panel_store import apply_mutation
from tests.conftest import RunningServer

# Every care-team-only value carries this mark: none may reach the patient's copy.
TEAM_ONLY = "TEAMONLY"
# Markup typed into fields the patient sees: shown as text, never run or fetched.
MARKUP = '<b>Bold</b> & <script>alert("x")</script> <img src="http://127.0.0.1:9/pixel.png">'

INITIAL_MEDICATIONS: list[dict[str, Any]] = [
    {
        "name": "Metformin",
        "strength": "500 mg",
        "form": "tablet",
        "rxnorm_code": "861007",
        "how_taken": "1 tablet twice daily",
        "why": "Type 2 diabetes",
        "prescriber": "Dr. Rivera",
        "start_date": "2023-03-01",
        "source": "chart",
    },
    {
        "name": "Ibuprofen",
        "strength": "200 mg",
        "kind": "otc",
        "how_taken": "2 tablets when needed for knee pain",
        "why": "Knee pain",
        "start_date": "2025-06-10",
        "source": "patient",
    },
    {
        "name": "Lisinopril",
        "strength": "10 mg",
        "form": "tablet",
        "how_taken": "1 tablet every morning",
        "why": "High blood pressure",
        "prescriber": "Dr. Rivera",
        "start_date": "2021-09-15",
        "source": "fill-history",
        "notes": f"{TEAM_ONLY} check potassium before any change",
    },
    {
        "name": "Vitamin D3",
        "strength": "1000 IU",
        "form": "capsule",
        "kind": "vitamin",
        "how_taken": "1 capsule daily",
        "why": "Bone health",
        "source": "patient",
        "notes": "Take it with a meal",
        "notes_audience": "patient",
    },
]


@dataclass
class Review:
    consult: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    @property
    def consult_id(self) -> str:
        return str(self.consult["id"])


class _Teller:
    def __init__(self, server: RunningServer, review: Review) -> None:
        self.server = server
        self.review = review
        people = {p["role"]: p["id"] for p in review.consult["participants"]}
        self.pharmacist = Actor(people["pharmacist"], "Ana Pharmacist", "pharmacist")
        self.clinician = Actor(people["clinician"], "Dr. Rivera", "clinician")
        self.patient = Actor(people["patient"], "Maria Lopez", "patient")
        self.count = 0

    async def do(self, actor: Actor, **mutation: Any) -> dict[str, Any]:
        self.count += 1
        mutation.setdefault("mutation_id", f"story-{self.count}")
        now = dt.datetime.fromtimestamp(self.server.clock(), dt.UTC)
        async with self.server.state.sessions() as session, session.begin():
            result = await apply_mutation(session, self.review.consult_id, actor, mutation, now=now)
        assert result["ok"], result
        self.server.clock.advance(7)
        return result

    async def add(self, label: str, actor: Actor, entity: str, value: dict[str, Any]) -> None:
        result = await self.do(actor, op="add", entity=entity, value=value)
        self.review.ids[label] = result["entity"]["id"]

    async def set(self, actor: Actor, entity: str, label: str, name: str, value: Any) -> None:
        async with self.server.state.sessions() as session:
            from models.panel_store import snapshot

            current = next(
                e
                for e in (await snapshot(session, self.review.consult_id))["entities"]
                if e["id"] == self.review.ids[label]
            )
        await self.do(
            actor,
            op="set",
            entity=entity,
            entity_id=self.review.ids[label],
            field=name,
            value=value,
            base_version=current["versions"][name],
        )


async def tell_review(server: RunningServer, *, end: bool = True) -> Review:
    consult = await server.create_consult(
        patient_name="María López", medications=INITIAL_MEDICATIONS
    )
    review = Review(consult=consult)
    for entity, label in zip(
        consult["medications"], ["metformin", "ibuprofen", "lisinopril", "vitamin_d"], strict=True
    ):
        review.ids[label] = entity["id"]
    t = _Teller(server, review)
    ph, cl, pt = t.pharmacist, t.clinician, t.patient
    # Changed: how metformin is taken; stopped: ibuprofen, with why.
    await t.set(ph, "medication", "metformin", "how_taken", "1 tablet twice daily with meals")
    await t.set(ph, "medication", "ibuprofen", "status", "stopped")
    await t.set(ph, "medication", "ibuprofen", "stop_date", "2026-11-27")
    await t.do(
        ph,
        op="set",
        entity="medication",
        entity_id=review.ids["ibuprofen"],
        field="why_stopped",
        value="Stomach upset; risky with lisinopril",
    )
    # The patient confirms how they take vitamin D, in their words (with markup typed in).
    await t.set(pt, "medication", "vitamin_d", "patient_confirmation", "corrected")
    for name, value in [
        ("patient_how_taken", "One capsule with breakfast"),
        ("patient_note", f"I buy it at the store {MARKUP}"),
        ("adherence", "as-prescribed"),
    ]:
        await t.do(
            pt,
            op="set",
            entity="medication",
            entity_id=review.ids["vitamin_d"],
            field=name,
            value=value,
        )
    # Problems of several categories, shared and care-team only.
    await t.add(
        "adr",
        ph,
        "problem",
        {
            "category": "adverse-drug-reaction",
            "description": "Stomach upset after ibuprofen",
            "medication_ids": [review.ids["ibuprofen"]],
            "severity": "high",
            "audience": "patient",
        },
    )
    await t.add(
        "low_dose",
        ph,
        "problem",
        {
            "category": "dosage-too-low",
            "description": f"{TEAM_ONLY} A1c 8.4% on metformin 500 mg",
            "medication_ids": [review.ids["metformin"]],
        },
    )
    await t.add(
        "needs_statin",
        ph,
        "problem",
        {
            "category": "needs-additional-therapy",
            "description": f"{TEAM_ONLY} diabetes, age 58, no statin",
            "severity": "moderate",
        },
    )
    # Recommendations: decided in the call (one a dose change, one a new medication), and
    # undecided ones for the prescriber letter.
    await t.add(
        "increase_metformin",
        ph,
        "recommendation",
        {
            "text": "Increase metformin to 1000 mg twice daily",
            "medication_id": review.ids["metformin"],
            "problem_id": review.ids["low_dose"],
            "change": "dose-change",
            "proposed": {"strength": "1000 mg"},
            "audience": "patient",
        },
    )
    await t.add(
        "start_statin",
        ph,
        "recommendation",
        {
            "text": "Start atorvastatin 20 mg at bedtime",
            "problem_id": review.ids["needs_statin"],
            "change": "start",
            "proposed": {
                "name": "Atorvastatin",
                "strength": "20 mg",
                "how_taken": "1 tablet at bedtime",
                "why": "Lower cholesterol",
            },
            "audience": "patient",
        },
    )
    await t.add(
        "switch_lisinopril",
        ph,
        "recommendation",
        {
            "text": f"{TEAM_ONLY} Consider losartan if the cough continues",
            "medication_id": review.ids["lisinopril"],
            "change": "switch",
        },
    )
    await t.add(
        "check_labs",
        ph,
        "recommendation",
        {"text": "Check potassium and kidney function in 2 weeks", "audience": "patient"},
    )
    await t.add(
        "declined_aspirin",
        ph,
        "recommendation",
        {"text": "Start low-dose aspirin", "change": "other", "audience": "patient"},
    )
    await t.set(cl, "recommendation", "increase_metformin", "status", "accepted")
    await t.set(cl, "recommendation", "start_statin", "status", "accepted")
    await t.set(cl, "recommendation", "declined_aspirin", "status", "declined")
    # The Medication Action Plan: shared items, and one kept to the care team.
    await t.add(
        "plan_meals",
        ph,
        "plan_item",
        {
            "talked_about": "Taking metformin with meals",
            "to_do": "Take metformin with breakfast and with dinner",
        },
    )
    await t.add(
        "plan_pain",
        ph,
        "plan_item",
        {
            "talked_about": "Knee pain without ibuprofen",
            "to_do": "Use acetaminophen 500 mg, up to 3 times a day",
        },
    )
    await t.add(
        "plan_team",
        ph,
        "plan_item",
        {"talked_about": f"{TEAM_ONLY} screen for depression next visit", "audience": "care-team"},
    )
    async with server.state.sessions() as session:
        from models.panel_store import snapshot

        panel = await snapshot(session, review.consult_id)
    review.seqs["before_end"] = panel["seq"]
    review.ids["atorvastatin"] = next(
        e["id"] for e in panel["entities"] if e["data"].get("name") == "Atorvastatin"
    )
    if end:
        await server.end_consult(review.consult_id, reason="Review complete")
    return review
