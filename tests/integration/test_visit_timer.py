"""The visit's time (issue 12): when the patient first enters the call, kept in the consult
record, returned by the REST API and sent to the care team in the call."""

from typing import Any

from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


async def read(server: RunningServer, consult_id: str) -> dict[str, Any]:
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult_id}", headers={"X-API-Key": API_KEY}
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_the_visit_starts_when_the_patient_is_admitted(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = {role: token_of(link) for role, link in consult["links"].items()}
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ack):
        assert ack["consult"]["visit_started_at"] is None
        patient = RecordingClient()
        await patient.connect(server.base_url, t["patient"])
        try:
            waiting = await patient.join()
            assert waiting["waiting"] is True
            (knock,) = (await pharmacist.wait_for("waiting-room"))["waiting"]
            assert (await read(server, consult["id"]))["visit_started_at"] is None, (
                "waiting is not the visit"
            )
            await pharmacist.sio.call("admit", {"participant_id": knock["id"]})
            admitted = await patient.wait_for("admitted")
            started = admitted["consult"]["visit_started_at"]
            assert started is not None
            event = await pharmacist.wait_for("visit-started")
            assert event["visit_started_at"] == started
            assert event["server_time"] >= started
            assert admitted["server_time"] >= started
            assert (await read(server, consult["id"]))["visit_started_at"] == started
        finally:
            await patient.sio.disconnect()
        # The patient comes back: the visit's start stays where it was.
        async with joined(server.base_url, t["patient"]) as (_, again):
            assert again["consult"]["visit_started_at"] == started
        assert (await read(server, consult["id"]))["visit_started_at"] == started
