"""`consult.admit_roles`: a consult whose clinicians may not admit gives them no waiting
room, and refuses their admit, admit-all and deny."""

from typing import Any

import pytest

from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"consult": {"admit_roles": ["pharmacist"]}}


async def test_only_the_configured_roles_may_admit(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = {role: token_of(link) for role, link in consult["links"].items()}
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        async with joined(server.base_url, t["clinician"]) as (clinician, clin_ack):
            assert "waiting_room" not in clin_ack
            assert clin_ack["settings"]["may"]["admit"] is False
            patient = RecordingClient()
            await patient.connect(server.base_url, t["patient"])
            try:
                assert (await patient.join())["waiting"] is True
                (knock,) = (await pharmacist.wait_for("waiting-room"))["waiting"]
                for event, payload in [
                    ("admit", {"participant_id": knock["id"]}),
                    ("deny", {"participant_id": knock["id"]}),
                    ("admit-all", {}),
                ]:
                    refused = await clinician.sio.call(event, payload)
                    assert refused["error"]["code"] == "forbidden", event
                    assert "may not admit" in refused["error"]["message"]
                assert "waiting-room" not in clinician.names()
                assert "admitted" not in patient.names()
            finally:
                await patient.sio.disconnect()


def test_a_patient_can_never_be_configured_to_admit() -> None:
    from server.config import load_config

    with pytest.raises(Exception, match="admit_roles"):
        load_config(None, environ={}, overrides={"consult": {"admit_roles": ["patient"]}})
