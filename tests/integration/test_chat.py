"""The call's chat (issue 12): everyone in the call sees it, it is kept in the consult's
record (REST), and bad messages are refused with nothing kept or delivered."""

from typing import Any

import pytest

from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def record(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult_id}/chat", headers={"X-API-Key": API_KEY}
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        messages: list[dict[str, Any]] = body["messages"]
        return messages


async def test_a_message_reaches_everyone_and_the_record(server: RunningServer) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez")
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"], "Ana P.") as (pharmacist, ph_ack):
        async with joined(server.base_url, t["patient"]) as (patient, pa_ack):
            answer = await pharmacist.sio.call("chat", {"text": "  Metformin: M-E-T-F-O-R-M-I-N "})
            assert answer["ok"] is True
            message = answer["message"]
            assert message["text"] == "Metformin: M-E-T-F-O-R-M-I-N"
            assert message["author"] == {
                "id": ph_ack["self"]["id"],
                "role": "pharmacist",
                "display_name": "Ana P.",
            }
            assert await patient.wait_for("chat-message") == message
            assert "chat-message" not in pharmacist.names(), "the author has the ack"
            reply = await patient.sio.call("chat", {"text": "<b>thanks</b>\nsee you"})
            assert reply["message"]["id"] > message["id"]
            assert (await pharmacist.wait_for("chat-message"))["text"] == "<b>thanks</b>\nsee you"
            assert reply["message"]["author"]["id"] == pa_ack["self"]["id"]
        # A page that joins later reads the conversation.
        async with joined(server.base_url, t["clinician"]) as (clinician, _):
            history = await clinician.sio.call("chat-history", {})
            assert [m["id"] for m in history["messages"]] == [message["id"], reply["message"]["id"]]
    assert await record(server, consult["id"]) == [message, reply["message"]]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   "}, "empty"),
        ({"text": "x" * 1001}, "at most 1000"),
        ({"text": "beep\x07"}, "control"),
        ({"text": 42}, ""),
        ({}, ""),
        ({"text": "hi", "html": "<b>hi</b>"}, ""),
        ("hi", ""),
        (None, ""),
    ],
)
async def test_bad_messages_are_refused_and_kept_nowhere(
    server: RunningServer, payload: Any, problem: str
) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        async with joined(server.base_url, t["clinician"]) as (clinician, _):
            answer = await pharmacist.sio.call("chat", payload)
            assert answer["ok"] is False
            assert answer["error"]["code"] == "invalid_payload"
            assert problem in answer["error"]["message"]
            assert "chat-message" not in clinician.names()
    assert await record(server, consult["id"]) == []


async def test_no_chat_from_the_waiting_room(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        patient = RecordingClient()
        await patient.connect(server.base_url, t["patient"])
        try:
            assert (await patient.join())["waiting"] is True
            answer = await patient.sio.call("chat", {"text": "hello?"})
            assert answer["error"]["code"] == "not_joined"
            history = await patient.sio.call("chat-history", {})
            assert history["error"]["code"] == "not_joined"
        finally:
            await patient.sio.disconnect()
        assert await pharmacist.sio.call("end-consult", {}) == {"ok": True}
    assert await record(server, consult["id"]) == []
