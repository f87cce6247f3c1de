"""What the panel says is true (issue: confirmation bound to values, proposals versus
reconciled facts, audience, accountable overrides, open items). Pure domain: no database."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from models import audience
from models.mutations import Actor, MutationError, PanelState, apply
from models.panel import CONFIRMATION_BOUND

NOW = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
PHARMACIST = Actor("p1", "Ana Pharmacist", "pharmacist")
PHARMACIST_2 = Actor("p4", "Ben Pharmacist", "pharmacist")
CLINICIAN = Actor("c1", "Dr Lee", "clinician")
PATIENT = Actor("pt1", "Maria Lopez", "patient")
_ids = itertools.count(1)


def panel() -> PanelState:
    return PanelState(consult_id="c", status="live", last_seq=0)


def mutate(state: PanelState, actor: Actor, **mutation: Any) -> dict[str, Any]:
    mutation.setdefault("mutation_id", f"m{next(_ids)}")
    try:
        result, _ = apply(state, actor, mutation, now=NOW)
    except MutationError as refused:  # not a well-formed mutation at all
        return refused.result()
    return result


def add(state: PanelState, entity: str, value: dict[str, Any], actor: Actor = PHARMACIST) -> str:
    result = mutate(state, actor, op="add", entity=entity, value=value)
    assert result["ok"], result
    return str(result["entity"]["id"])


def set_field(
    state: PanelState, actor: Actor, entity_id: str, field: str, value: Any, **extra: Any
) -> dict[str, Any]:
    record = state.entities[entity_id]
    extra.setdefault("base_version", record.versions.get(field, record.created_seq))
    return mutate(
        state, actor, op="set", entity=record.type, entity_id=entity_id, field=field,
        value=value, **extra,
    )  # fmt: skip


def lisinopril(state: PanelState) -> str:
    return add(
        state,
        "medication",
        {"name": "Lisinopril", "strength": "10 mg", "form": "tablet",
         "how_taken": "1 tablet every morning"},
    )  # fmt: skip


# -- confirmation bound to the values confirmed ---------------------------------------------


@pytest.mark.parametrize("field", CONFIRMATION_BOUND)
def test_a_change_of_a_confirmed_value_asks_the_patient_again(field: str) -> None:
    state = panel()
    med = lisinopril(state)
    confirmed = set_field(state, PATIENT, med, "patient_confirmation", "confirmed")
    assert confirmed["ok"]
    assert confirmed["entity"]["data"]["confirmed_values"] == {
        "strength": "10 mg", "form": "tablet", "how_taken": "1 tablet every morning",
        "status": "active",
    }  # fmt: skip
    new_value = {"strength": "40 mg", "form": "capsule", "how_taken": "twice a day",
                 "status": "on-hold"}[field]  # fmt: skip
    changed = set_field(state, PHARMACIST, med, field, new_value)
    assert changed["ok"], changed
    # The reset is its own audited event, right after the change that caused it.
    [effect] = changed["effects"]
    reset = effect["event"]
    assert reset["seq"] == changed["seq"] + 1
    assert (reset["op"], reset["field"], reset["old"], reset["new"]) == (
        "derived", "patient_confirmation", "confirmed", "needs-confirming",
    )  # fmt: skip
    assert reset["detail"] == {
        "cause_seq": changed["seq"], "reason": "confirmation-reset", "changed": field,
    }  # fmt: skip
    assert reset["mutation_id"] == changed["event"]["mutation_id"]
    data = state.entities[med].data
    assert data["patient_confirmation"] == "needs-confirming"
    # What was confirmed stays readable: "you confirmed 10 mg".
    assert data["confirmed_values"]["strength"] == "10 mg"
    assert changed["entity"]["data"]["patient_confirmation"] == "needs-confirming"


def test_an_unbound_field_leaves_the_confirmation_alone() -> None:
    state = panel()
    med = lisinopril(state)
    set_field(state, PATIENT, med, "patient_confirmation", "confirmed")
    for field, value in (("why", "blood pressure"), ("notes", "check potassium")):
        result = set_field(state, PHARMACIST, med, field, value)
        assert result["ok"] and result["effects"] == []
    assert state.entities[med].data["patient_confirmation"] == "confirmed"


def test_the_same_value_again_is_no_change_to_confirm() -> None:
    state = panel()
    med = lisinopril(state)
    set_field(state, PATIENT, med, "patient_confirmation", "confirmed")
    result = set_field(state, PHARMACIST, med, "strength", "10 mg")
    assert result["ok"] and result["effects"] == []
    assert state.entities[med].data["patient_confirmation"] == "confirmed"


def test_confirming_what_changed_since_it_was_loaded_is_a_conflict() -> None:
    state = panel()
    med = lisinopril(state)
    seen = state.entities[med].versions["patient_confirmation"]
    set_field(state, PHARMACIST, med, "strength", "40 mg")  # nothing confirmed yet: no reset
    stale = set_field(state, PATIENT, med, "patient_confirmation", "confirmed", base_version=seen)
    assert stale["ok"] is False and stale["error"]["code"] == "conflict"
    assert stale["current"]["entity"]["data"]["strength"] == "40 mg"
    assert state.entities[med].data["patient_confirmation"] is None
    fresh = set_field(state, PATIENT, med, "patient_confirmation", "confirmed")
    assert fresh["ok"]
    assert fresh["entity"]["data"]["confirmed_values"]["strength"] == "40 mg"


def test_confirmation_needs_the_version_the_patient_saw() -> None:
    state = panel()
    med = lisinopril(state)
    result = mutate(
        state, PATIENT, op="set", entity="medication", entity_id=med,
        field="patient_confirmation", value="confirmed",
    )  # fmt: skip
    assert result["error"]["code"] == "base_version_required"


# -- reconciliation versus proposed changes ------------------------------------------------


def test_a_reconciled_fact_records_its_source() -> None:
    state = panel()
    med = lisinopril(state)
    result = set_field(state, PHARMACIST, med, "how_taken", "1 tablet at night", source="patient")
    assert result["ok"] and result["event"]["source"] == "patient"
    bad = set_field(state, PHARMACIST, med, "how_taken", "x", source="neighbour")
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_mutation"


def dose_change(state: PanelState, med: str, **extra: Any) -> str:
    return add(
        state,
        "recommendation",
        {"text": "Increase to 40 mg", "medication_id": med, "change": "dose-change",
         "proposed": {"strength": "40 mg"}, **extra},
    )  # fmt: skip


def test_a_proposal_leaves_the_list_until_the_clinician_accepts() -> None:
    state = panel()
    med = lisinopril(state)
    set_field(state, PATIENT, med, "patient_confirmation", "confirmed")
    rec = dose_change(state, med)
    assert state.entities[med].data["strength"] == "10 mg"
    assert state.entities[rec].data["proposed"] == {"strength": "40 mg"}
    accepted = set_field(state, CLINICIAN, rec, "status", "accepted")
    assert accepted["ok"], accepted
    effects = [effect["event"] for effect in accepted["effects"]]
    assert [(e["op"], e["entity_id"], e["field"], e["new"]) for e in effects] == [
        ("derived", med, "strength", "40 mg"),
        ("derived", med, "patient_confirmation", "needs-confirming"),
    ]
    assert effects[0]["detail"] == {
        "cause_seq": accepted["seq"], "reason": "recommendation-accepted",
        "recommendation_id": rec,
    }  # fmt: skip
    assert [e["seq"] for e in effects] == [accepted["seq"] + 1, accepted["seq"] + 2]
    assert state.entities[med].data["strength"] == "40 mg"
    assert state.entities[rec].data["decided_by"] == "Dr Lee"


@pytest.mark.parametrize("decision", ["declined", "no-response"])
def test_a_declined_or_unanswered_proposal_changes_nothing(decision: str) -> None:
    state = panel()
    med = lisinopril(state)
    rec = dose_change(state, med)
    before = state.entities[med]
    result = set_field(state, CLINICIAN, rec, "status", decision)
    assert result["ok"] and result["effects"] == []
    assert state.entities[med] == before


def test_accepting_a_start_adds_the_medication() -> None:
    state = panel()
    rec = add(
        state,
        "recommendation",
        {"text": "Start atorvastatin", "change": "start",
         "proposed": {"name": "Atorvastatin", "strength": "20 mg", "how_taken": "at night"}},
    )  # fmt: skip
    assert [r.type for r in state.entities.values()] == ["recommendation"]
    result = set_field(state, CLINICIAN, rec, "status", "accepted")
    [effect] = result["effects"]
    assert effect["event"]["op"] == "derived" and effect["event"]["field"] is None
    created = effect["entity"]
    assert created["type"] == "medication"
    assert (created["data"]["name"], created["data"]["strength"]) == ("Atorvastatin", "20 mg")
    assert created["data"]["patient_confirmation"] is None


def test_accepting_a_stop_that_is_no_longer_possible_changes_nothing() -> None:
    state = panel()
    med = lisinopril(state)
    rec = add(
        state,
        "recommendation",
        {"text": "Stop it", "medication_id": med, "change": "stop",
         "proposed": {"status": "stopped", "why_stopped": "cough"}},
    )  # fmt: skip
    set_field(state, PHARMACIST, med, "status", "entered-in-error")
    seq = state.last_seq
    refused = set_field(state, CLINICIAN, rec, "status", "accepted")
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_transition"
    assert state.last_seq == seq
    assert state.entities[rec].data["status"] == "proposed"


def test_a_decided_recommendation_cannot_be_rewritten() -> None:
    state = panel()
    med = lisinopril(state)
    rec = dose_change(state, med)
    set_field(state, CLINICIAN, rec, "status", "declined")
    result = set_field(state, PHARMACIST, rec, "proposed", {"strength": "80 mg"})
    assert result["error"]["code"] == "invalid_transition"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"text": "x", "medication_id": "m_missing", "proposed": {"strength": "1 mg"}},
         "invalid_value"),
        ({"text": "x", "proposed": {"strength": "1 mg"}}, "invalid_value"),
        ({"text": "x", "medication_id": "MED", "proposed": {"colour": "red"}}, "invalid_value"),
        ({"text": "x", "medication_id": "MED", "proposed": {"start_date": "2024-13-01"}},
         "invalid_value"),
        ({"text": "x", "change": "start", "proposed": {"strength": "1 mg"}}, "invalid_value"),
        ({"text": "x", "change": "start", "medication_id": "MED",
          "proposed": {"name": "A"}}, "invalid_value"),
        ({"text": "x", "audience": "everyone"}, "invalid_value"),
        ({"text": "x", "medication_id": "MED", "change": "stop",
          "proposed": {"status": "bogus"}}, "invalid_value"),
    ],
)  # fmt: skip
def test_bad_proposals_are_refused_and_change_nothing(value: dict[str, Any], code: str) -> None:
    state = panel()
    med = lisinopril(state)
    value = {k: (med if v == "MED" else v) for k, v in value.items()}
    before = (state.last_seq, dict(state.entities))
    result = mutate(state, PHARMACIST, op="add", entity="recommendation", value=value)
    assert result["ok"] is False and result["error"]["code"] == code, result
    assert (state.last_seq, state.entities) == before


def test_only_the_clinician_decides() -> None:
    state = panel()
    med = lisinopril(state)
    rec = dose_change(state, med)
    for actor in (PHARMACIST, PATIENT):
        result = set_field(state, actor, rec, "status", "accepted")
        assert result["error"]["code"] == "forbidden"
    assert state.entities[med].data["strength"] == "10 mg"


# -- quota -----------------------------------------------------------------------------------


def test_a_full_panel_refuses_more_entries_and_changes_nothing() -> None:
    state = PanelState(consult_id="c", status="live", last_seq=0, max_entities=2)
    med = lisinopril(state)
    add(state, "plan_item", {"talked_about": "x"})
    before = (state.last_seq, dict(state.entities))
    result = mutate(state, PHARMACIST, op="add", entity="problem",
                    value={"category": "nonadherence"})  # fmt: skip
    assert result["error"]["code"] == "quota_exceeded"
    assert (state.last_seq, state.entities) == before
    # Editing what is there still works.
    assert set_field(state, PHARMACIST, med, "why", "blood pressure")["ok"]


def test_accepting_a_start_on_a_full_panel_is_refused_whole() -> None:
    state = PanelState(consult_id="c", status="live", last_seq=0, max_entities=1)
    rec = add(state, "recommendation", {"text": "Start A", "change": "start",
                                        "proposed": {"name": "A"}})  # fmt: skip
    seq = state.last_seq
    result = set_field(state, CLINICIAN, rec, "status", "accepted")
    assert result["error"]["code"] == "quota_exceeded"
    assert state.last_seq == seq and state.entities[rec].data["status"] == "proposed"


# -- strict values ----------------------------------------------------------------------------


@pytest.mark.parametrize("base_version", [True, "1", 1.0, 2**63])
def test_base_version_must_be_an_integer(base_version: Any) -> None:
    state = panel()
    med = lisinopril(state)
    result = set_field(state, PHARMACIST, med, "strength", "5 mg", base_version=base_version)
    assert result["error"]["code"] == "invalid_mutation"
    assert state.entities[med].data["strength"] == "10 mg"


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00Z", "2024-1-1", 20240101, True])
def test_a_date_is_a_date(value: Any) -> None:
    state = panel()
    med = lisinopril(state)
    result = set_field(state, PHARMACIST, med, "start_date", value)
    assert result["error"]["code"] == "invalid_value"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "ok \udfff"])
@pytest.mark.parametrize("field", ["name", "notes", "how_taken"])
def test_text_that_a_database_cannot_store_is_refused(field: str, text: str) -> None:
    state = panel()
    med = lisinopril(state)
    before = state.entities[med]
    result = set_field(state, PHARMACIST, med, field, text)
    assert result["error"]["code"] == "invalid_value", result
    assert state.entities[med] == before
    value = {"text": "x", "medication_id": med, "proposed": {"how_taken": text}}
    proposal = mutate(state, PHARMACIST, op="add", entity="recommendation", value=value)
    assert proposal["error"]["code"] == "invalid_value"


def test_a_stale_status_edit_is_a_conflict_not_a_transition_error() -> None:
    state = panel()
    med = lisinopril(state)
    seen = state.entities[med].versions["status"]
    set_field(state, PHARMACIST, med, "status", "stopped")
    stale = set_field(state, CLINICIAN, med, "status", "on-hold", base_version=seen)
    assert stale["error"]["code"] == "conflict"
    assert stale["current"]["value"] == "stopped"


# -- accountable overrides -------------------------------------------------------------------


def test_use_mine_names_whose_value_it_replaced() -> None:
    state = panel()
    med = lisinopril(state)
    seen = state.entities[med].versions["strength"]
    set_field(state, PHARMACIST_2, med, "strength", "20 mg")
    conflict = set_field(state, PHARMACIST, med, "strength", "30 mg", base_version=seen)
    assert conflict["error"]["code"] == "conflict"
    mine = set_field(
        state, PHARMACIST, med, "strength", "30 mg",
        base_version=conflict["current"]["version"], override=True,
    )  # fmt: skip
    assert mine["ok"]
    assert mine["event"]["detail"] == {
        "overrode": {
            "actor": {"id": "p4", "name": "Ben Pharmacist", "role": "pharmacist"},
            "value": "20 mg",
            "version": conflict["current"]["version"],
        }
    }
    # Both values stay in the log: the conflict recorded mine, this one records theirs.
    assert (mine["event"]["old"], mine["event"]["new"]) == ("20 mg", "30 mg")


def test_override_only_for_compare_and_set_fields() -> None:
    state = panel()
    med = lisinopril(state)
    result = set_field(state, PHARMACIST, med, "notes", "x", override=True)
    assert result["error"]["code"] == "invalid_mutation"


# -- audience ---------------------------------------------------------------------------------


def full_panel() -> PanelState:
    state = panel()
    med = lisinopril(state)
    set_field(state, PHARMACIST, med, "notes", "SECRET-NOTE kidney")
    problem = add(
        state, "problem",
        {"category": "adverse-drug-reaction", "description": "SECRET-PROBLEM", "severity": "high"},
    )  # fmt: skip
    add(state, "problem", {"category": "nonadherence", "description": "shared problem",
                           "audience": "patient"})  # fmt: skip
    add(state, "recommendation", {"text": "SECRET-REC", "problem_id": problem})
    dose_change(state, med, audience="patient")
    add(state, "plan_item", {"talked_about": "SECRET-PLAN", "audience": "care-team"})
    add(state, "plan_item", {"talked_about": "Take it in the morning"})
    return state


def test_audience_defaults() -> None:
    state = full_panel()
    kinds = {(r.type, r.data.get("audience")) for r in state.entities.values()}
    assert ("problem", "care-team") in kinds and ("plan_item", "patient") in kinds
    [med] = [r for r in state.entities.values() if r.type == "medication"]
    assert med.data["notes_audience"] == "care-team"


def test_the_patient_view_holds_nothing_kept_to_the_care_team() -> None:
    state = full_panel()
    patient = audience.panel_for("patient", state.snapshot())
    text = repr(patient)
    assert "SECRET" not in text
    kinds = sorted(e["type"] for e in patient["entities"])
    assert kinds == ["medication", "plan_item", "problem", "recommendation"]
    assert patient["seq"] == state.last_seq
    team = audience.panel_for("clinician", state.snapshot())
    assert team == state.snapshot()


def test_shared_notes_reach_the_patient() -> None:
    state = full_panel()
    [med] = [r.id for r in state.entities.values() if r.type == "medication"]
    set_field(state, PHARMACIST, med, "notes_audience", "patient")
    patient = audience.panel_for("patient", state.snapshot())
    assert "SECRET-NOTE" in repr(patient)


def test_events_for_the_patient_carry_nothing_kept_to_the_care_team() -> None:
    state = panel()
    results = []
    med = lisinopril(state)
    results.append(set_field(state, PHARMACIST, med, "notes", "SECRET-NOTE"))
    results.append(
        mutate(state, PHARMACIST, op="add", entity="problem",
               value={"category": "nonadherence", "description": "shared later"})
    )  # fmt: skip
    problem = results[-1]["entity"]["id"]
    results.append(set_field(state, PHARMACIST, problem, "audience", "patient"))
    results.append(set_field(state, PHARMACIST, problem, "description", "now shared"))
    results.append(set_field(state, PHARMACIST, problem, "audience", "care-team"))
    results.append(set_field(state, PHARMACIST, problem, "description", "SECRET-AGAIN"))
    seen = []
    for result in results:
        event = audience.event_for("patient", result["event"], result["entity"])
        seen.append((event["event"]["op"], event["event"]["seq"], event["entity"]))
        assert event["event"]["seq"] == result["seq"]
        assert "SECRET" not in repr(event)
    ops = [op for op, _, _ in seen]
    assert ops == ["hidden", "hidden", "set", "set", "remove", "hidden"]
    assert seen[4][2] is None and seen[0][2] is not None and "notes" not in seen[0][2]["data"]


# -- what is still open -------------------------------------------------------------------------


def test_open_items_per_role() -> None:
    state = full_panel()
    meds = [r.id for r in state.entities.values() if r.type == "medication"]
    recs = [r.id for r in state.entities.values() if r.type == "recommendation"]
    items = audience.open_items(state.snapshot()["entities"])
    assert items == {"to_decide": recs, "to_confirm": meds}
    set_field(state, PATIENT, meds[0], "patient_confirmation", "confirmed")
    set_field(state, CLINICIAN, recs[0], "status", "declined")
    items = audience.open_items(state.snapshot()["entities"])
    assert items == {"to_decide": recs[1:], "to_confirm": []}
    # A patient counts only what they can see.
    patient_items = audience.open_items(audience.panel_for("patient", state.snapshot())["entities"])
    assert patient_items["to_decide"] == recs[1:]
