"""Who joins the call directly and who waits to be admitted (models/consults.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from models.consults import admit, mark_visit_started, may_skip_waiting, revoke_admission
from models.tables import Consult, Participant

NOW = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(seconds=30)


def person(role: str) -> Participant:
    return Participant(id="p", consult_id="c", role=role, display_name=role, token_id="t")


def skips(participant: Participant, *, later: float = 0, elsewhere: bool = False) -> bool:
    return may_skip_waiting(
        participant,
        now=NOW + dt.timedelta(seconds=later),
        grace=GRACE,
        present_elsewhere=elsewhere,
    )


@pytest.mark.parametrize("role", ["pharmacist", "clinician"])
def test_the_care_team_joins_directly(role: str) -> None:
    assert skips(person(role))


@pytest.mark.parametrize("role", ["clinician", "patient"])
def test_a_removed_participant_waits_to_be_admitted_again(role: str) -> None:
    participant = person(role)
    admit(participant, now=NOW)
    revoke_admission(participant, now=NOW)
    assert not skips(participant, later=1)
    assert not skips(participant, later=3600)
    admit(participant, now=NOW + dt.timedelta(seconds=5))
    assert skips(participant, later=6)


def test_a_patient_waits_until_admitted_and_returns_within_the_grace() -> None:
    patient = person("patient")
    assert not skips(patient)
    admit(patient, now=NOW)
    assert skips(patient)
    patient.last_left_at = NOW
    assert skips(patient, later=GRACE.total_seconds())
    assert not skips(patient, later=GRACE.total_seconds() + 1)


def test_an_admitted_patient_whose_departure_nobody_recorded_left_when_last_seen() -> None:
    """Regression: after a crash nobody records the departure, and a missing last_left_at
    meant "still connected": the patient skipped the waiting room forever (seen: 80 s after
    the crash with a 30 s grace, straight in)."""
    patient = person("patient")
    admit(patient, now=NOW)
    patient.last_seen_at = NOW + dt.timedelta(seconds=10)  # presence's last heartbeat
    assert patient.last_left_at is None
    assert skips(patient, later=10 + GRACE.total_seconds())
    assert not skips(patient, later=80)
    # Still connected through another instance (presence says so): straight in.
    assert skips(patient, later=80, elsewhere=True)


def test_a_departure_recorded_while_heartbeats_went_on_is_superseded_by_them() -> None:
    """An instance cut off from Redis is taken for dead and its participants' departures are
    recorded; its heartbeats to the database go on, and count."""
    patient = person("patient")
    admit(patient, now=NOW)
    patient.last_left_at = NOW + dt.timedelta(seconds=5)
    patient.last_seen_at = NOW + dt.timedelta(seconds=60)
    assert skips(patient, later=60 + GRACE.total_seconds())
    assert not skips(patient, later=61 + GRACE.total_seconds())


def test_the_visit_starts_when_the_patient_first_enters_the_call() -> None:
    consult = Consult(id="c")
    assert not mark_visit_started(consult, person("pharmacist"), now=NOW)
    assert not mark_visit_started(consult, person("clinician"), now=NOW)
    assert consult.visit_started_at is None, "the care team alone is no visit"
    assert mark_visit_started(consult, person("patient"), now=NOW)
    assert consult.visit_started_at == NOW
    # A rejoin (a reload, a dropped connection) does not move it.
    assert not mark_visit_started(consult, person("patient"), now=NOW + GRACE)
    assert consult.visit_started_at == NOW
