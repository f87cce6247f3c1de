"""Waiting room, admission, removal, ending, rejoining within the grace period, consent."""

import asyncio
from typing import Any

import pytest

from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


@pytest.fixture(params=[1, 2], ids=["one-instance", "two-instances"])
def instances(request: pytest.FixtureRequest) -> int:
    """Every test here runs against one instance, and against two sharing the database and
    Redis, with its clients spread over both (tests/conftest.py)."""
    return int(request.param)


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def read(server: RunningServer, consult_id: str) -> dict[str, Any]:
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult_id}", headers={"X-API-Key": API_KEY}
    ) as response:
        body: dict[str, Any] = await response.json()
        return body


async def waiting_patient(server: RunningServer, token: str) -> RecordingClient:
    patient = RecordingClient()
    await patient.connect(server.base_url, token)
    ack = await patient.join()
    assert ack["ok"] and ack["waiting"] is True
    assert ack["message"] == "Your pharmacist will let you in shortly."
    assert "roster" not in ack and "ice" not in ack and "panel" not in ack
    return patient


async def test_patient_waits_until_admitted(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    patient = await waiting_patient(server, t["patient"])
    try:
        assert (await read(server, consult["id"]))["status"] == "open"
        async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ack):
            assert [p["role"] for p in ack["waiting_room"]] == ["patient"]
            assert ack["roster"] == []
            present = (await read(server, consult["id"]))["present"]
            assert {(p["role"], p["state"]) for p in present} == {
                ("pharmacist", "in-call"),
                ("patient", "waiting"),
            }
            # While waiting, the patient can signal no one.
            await patient.sio.emit("signal", {"to": ack["self"]["id"], "candidate": None})
            assert (await patient.wait_for("error"))["code"] == "not_joined"
            patient_id = ack["waiting_room"][0]["id"]
            # A clinician sees the waiting room too (consult.admit_roles, by default).
            async with joined(server.base_url, t["clinician"]) as (clinician, clin_ack):
                assert [w["id"] for w in clin_ack["waiting_room"]] == [patient_id]
                assert clin_ack["settings"]["may"]["admit"] is True
                assert (await pharmacist.wait_for("participant-joined"))["participant"][
                    "role"
                ] == "clinician"
            result = await pharmacist.sio.call("admit", {"participant_id": patient_id})
            assert result == {"ok": True}
            admitted = await patient.wait_for("admitted")
            assert admitted["ok"] and admitted["waiting"] is False
            assert [p["role"] for p in admitted["roster"]] == ["pharmacist"]
            assert admitted["ice"]["iceTransportPolicy"] == "all"
            assert admitted["panel"]["seq"] == 0
            joined_event = await pharmacist.wait_for("participant-joined")
            assert joined_event["participant"]["id"] == patient_id
            assert (await pharmacist.wait_for("waiting-room"))["waiting"] == []
            await patient.sio.emit("signal", {"to": ack["self"]["id"], "candidate": None})
            assert (await pharmacist.wait_for("signal"))["from"] == patient_id
        assert (await read(server, consult["id"]))["status"] == "live"
    finally:
        await patient.sio.disconnect()


async def test_denied_patient_gets_a_message_and_no_call(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    patient = await waiting_patient(server, t["patient"])
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ack):
        patient_id = ack["waiting_room"][0]["id"]
        assert (await pharmacist.sio.call("deny", {"participant_id": patient_id}))["ok"]
        denied = await patient.wait_for("denied")
        assert "could not let you into this consult" in denied["message"]
        await asyncio.wait_for(patient.disconnected.wait(), 5)
        assert "admitted" not in patient.names()
        assert "participant-joined" not in pharmacist.names()
        # Coming back puts them in the waiting room again, not in the call.
        again = await waiting_patient(server, t["patient"])
        await again.sio.disconnect()


@pytest.mark.parametrize("event", ["admit", "deny"])
async def test_admitting_someone_not_waiting_is_refused(server: RunningServer, event: str) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, _),
        joined(server.base_url, t["clinician"]) as (_, clinician_ack),
    ):
        for target in [clinician_ack["self"]["id"], "p_nobody"]:
            result = await pharmacist.sio.call(event, {"participant_id": target})
            assert result["error"]["code"] == "not_waiting"
        result = await pharmacist.sio.call(event, {"participant": "x"})
        assert result["error"]["code"] == "invalid_payload"
        assert "participant_id" in result["error"]["message"]


async def test_admit_all(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    patient = await waiting_patient(server, t["patient"])
    try:
        async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
            result = await pharmacist.sio.call("admit-all", {})
            assert result["ok"] and len(result["admitted"]) == 1
            await patient.wait_for("admitted")
    finally:
        await patient.sio.disconnect()


async def test_rejoin_within_grace_skips_the_waiting_room(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    patient = await waiting_patient(server, t["patient"])
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ack):
        await pharmacist.sio.call("admit", {"participant_id": ack["waiting_room"][0]["id"]})
        await patient.wait_for("admitted")
        await patient.sio.disconnect()  # a reload, or a lost connection
        assert (await pharmacist.wait_for("participant-left"))["reason"] == "disconnected"
        server.clock.advance(60)
        async with joined(server.base_url, t["patient"]) as (_, back):
            assert back["waiting"] is False
        await pharmacist.wait_for("participant-left")
        server.clock.advance(121)  # past the 120 s default grace
        late = await waiting_patient(server, t["patient"])
        await late.sio.disconnect()


async def test_pharmacist_removes_a_participant(server: RunningServer) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, _),
        joined(server.base_url, t["patient"]) as (patient, patient_ack),
    ):
        patient_id = patient_ack["self"]["id"]
        async with joined(server.base_url, t["clinician"]) as (clinician, _):
            refused = await clinician.sio.call("remove", {"participant_id": patient_id})
            assert refused["error"]["code"] == "forbidden"
        await pharmacist.wait_for("participant-left")
        assert (await pharmacist.sio.call("remove", {"participant_id": patient_id}))["ok"]
        assert "removed" in (await patient.wait_for("removed"))["message"]
        left = await pharmacist.wait_for("participant-left")
        assert left == {"participant_id": patient_id, "reason": "removed"}
    # Removed means re-admission is needed, even right away.
    again = await waiting_patient(server, t["patient"])
    await again.sio.disconnect()


async def test_pharmacist_ends_the_consult_for_everyone(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    waiting = await waiting_patient(server, t["patient"])
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, _),
        joined(server.base_url, t["clinician"]) as (clinician, _),
    ):
        refused = await clinician.sio.call("end-consult", {"reason": "nope"})
        assert refused["error"]["code"] == "forbidden"
        result = await pharmacist.sio.call("end-consult", {"reason": "Review complete"})
        assert result == {"ok": True}
        for client in (pharmacist, clinician, waiting):
            assert (await client.wait_for("consult-ended")) == {"reason": "Review complete"}
            await asyncio.wait_for(client.disconnected.wait(), 5)
    body = await read(server, consult["id"])
    assert body["status"] == "ended" and body["end_reason"] == "Review complete"
    assert body["present"] == []


async def test_consent_is_required_and_recorded(server: RunningServer) -> None:
    consult = await server.create_consult()
    patient = RecordingClient()
    await patient.connect(server.base_url, tokens(consult)["patient"])
    try:
        refused = await patient.join(consent=False)
        assert refused["ok"] is False and refused["error"]["code"] == "consent_required"
        bad = await patient.sio.call("join", {"consent": {"accepted": "yes please"}})
        assert bad["error"]["code"] == "invalid_payload"
        ack = await patient.join()
        assert ack["ok"]
    finally:
        await patient.sio.disconnect()
    from sqlalchemy import select

    from models.tables import ConsentRecord

    async with server.state.sessions() as session:
        records = list((await session.execute(select(ConsentRecord))).scalars())
    assert [r.participant_id for r in records] == [ack["self"]["id"]]
    assert records[0].text == server.state.config.consent.text
    assert records[0].language == "en"
    # Having consented once, a reconnect need not ask again.
    async with joined(server.base_url, tokens(consult)["patient"]) as (_, again):
        assert again["ok"]
    clinician = RecordingClient()
    await clinician.connect(server.base_url, tokens(consult)["clinician"])
    try:
        assert (await clinician.join(consent=False))["ok"]  # not required of clinicians
    finally:
        await clinician.sio.disconnect()


async def test_settings_tell_the_client_what_the_role_may_do(server: RunningServer) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (_, pharmacist),
        joined(server.base_url, t["patient"]) as (_, patient),
    ):
        assert pharmacist["settings"]["may"]["manage_participants"] is True
        assert pharmacist["settings"]["may"]["share_screen"] is True
        assert patient["settings"]["may"]["manage_participants"] is False
        assert patient["settings"]["may"]["share_screen"] is False
        assert patient["settings"]["probe"] == {
            "max_rtt_ms": 300.0,
            "max_loss_percent": 5.0,
            "min_kbps": 750.0,
        }


async def test_a_clinician_alone_hears_the_knock_admits_and_denies(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    async with joined(server.base_url, t["clinician"]) as (clinician, ack):
        assert ack["waiting_room"] == []
        patient = await waiting_patient(server, t["patient"])
        try:
            (knock,) = (await clinician.wait_for("waiting-room"))["waiting"]
            assert knock["role"] == "patient"
            denied = await clinician.sio.call("deny", {"participant_id": knock["id"]})
            assert denied == {"ok": True}
            assert "message" in await patient.wait_for("denied")
        finally:
            await patient.sio.disconnect()
        again = await waiting_patient(server, t["patient"])
        try:
            waiting: list[dict[str, Any]] = []
            while not waiting:  # the room emptied by the denial is announced first
                waiting = (await clinician.wait_for("waiting-room"))["waiting"]
            (knock,) = waiting
            assert await clinician.sio.call("admit", {"participant_id": knock["id"]}) == {
                "ok": True
            }
            assert (await again.wait_for("admitted"))["waiting"] is False
            # Removing and ending stay the pharmacist's.
            refused = await clinician.sio.call("remove", {"participant_id": knock["id"]})
            assert refused["error"]["code"] == "forbidden"
        finally:
            await again.sio.disconnect()


async def test_consent_is_recorded_in_the_language_it_was_read_in(server: RunningServer) -> None:
    """A patient who read the consent in Spanish accepted the Spanish text: that is the
    text (and hash) on record. A language the pages are not offered in is refused, and
    nothing is recorded."""
    import hashlib

    from sqlalchemy import select

    from models.tables import ConsentRecord

    consult = await server.create_consult()
    patient = RecordingClient()
    await patient.connect(server.base_url, tokens(consult)["patient"])
    try:
        for language in ("fr", "ES", "", 1, None):
            bad = await patient.sio.call(
                "join", {"consent": {"accepted": True, "language": language}}
            )
            assert bad["error"]["code"] == "invalid_payload", language
            assert "language" in bad["error"]["message"]
        async with server.state.sessions() as session:
            assert list((await session.execute(select(ConsentRecord))).scalars()) == []
        ack = await patient.sio.call("join", {"consent": {"accepted": True, "language": "es"}})
        assert ack["ok"], ack
    finally:
        await patient.sio.disconnect()
    async with server.state.sessions() as session:
        [record] = list((await session.execute(select(ConsentRecord))).scalars())
    spanish = server.state.config.consent.text_for("es")
    assert spanish != server.state.config.consent.text and "telesalud" in spanish
    assert (record.language, record.text) == ("es", spanish)
    assert record.text_sha256 == hashlib.sha256(spanish.encode()).hexdigest()
