import asyncio
from typing import Any

import pytest
import socketio

from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def refused_code(server: RunningServer, token: str | None) -> str:
    client = RecordingClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.base_url, token)
    # python-socketio hands over the whole error packet: {"message": code, "data": {...}}.
    packet = client.connect_error
    assert isinstance(packet, dict), packet
    data = packet["data"]
    assert data["message"]
    assert packet["message"] == data["code"]
    return str(data["code"])


async def test_roster_and_join_leave_events(server: RunningServer) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez")
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"], "Ana P.") as (pharmacist, ack):
        assert ack["self"]["role"] == "pharmacist"
        assert ack["self"]["display_name"] == "Ana P."
        assert ack["roster"] == []
        assert ack["consult"] == {"id": consult["id"], "status": "live", "visit_started_at": None}
        assert ack["ice"] == {"iceServers": [], "iceTransportPolicy": "all"}
        async with joined(server.base_url, t["patient"]) as (patient, patient_ack):
            assert patient_ack["roster"] == [ack["self"]]
            assert patient_ack["self"]["display_name"] == "Maria Lopez"
            arrived = await pharmacist.wait_for("participant-joined")
            assert arrived == {"participant": patient_ack["self"]}
            async with joined(server.base_url, t["clinician"]) as (clinician, clin_ack):
                assert {p["role"] for p in clin_ack["roster"]} == {"pharmacist", "patient"}
                await pharmacist.wait_for("participant-joined")
                await patient.wait_for("participant-joined")
                await clinician.sio.emit("leave", {})
                left = await pharmacist.wait_for("participant-left")
                assert left == {"participant_id": clin_ack["self"]["id"], "reason": "left"}
                await patient.wait_for("participant-left")
        left = await pharmacist.wait_for("participant-left")
        assert left == {"participant_id": patient_ack["self"]["id"], "reason": "disconnected"}
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult['id']}",
        headers={"X-API-Key": "north-clinic-key-0123456789abcdef"},
    ) as response:
        stored = await response.json()
    names = {p["role"]: p["display_name"] for p in stored["participants"]}
    assert names["pharmacist"] == "Ana P."


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda t: None, "missing_token"),
        (lambda t: "", "missing_token"),
        (lambda t: "not-a-token", "invalid_token"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "invalid_token"),
    ],
)
async def test_bad_token_is_refused(server: RunningServer, make_token: Any, code: str) -> None:
    consult = await server.create_consult()
    assert await refused_code(server, make_token(tokens(consult)["patient"])) == code


async def test_expired_token_is_refused(server: RunningServer) -> None:
    consult = await server.create_consult(scheduled_at="2026-01-01T00:00:00+00:00")
    server.clock.advance(24 * 3600 + 1)
    assert await refused_code(server, tokens(consult)["patient"]) == "expired_token"


async def test_ended_consult_disconnects_and_refuses(server: RunningServer) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        async with joined(server.base_url, t["patient"]) as (patient, _):
            await server.end_consult(consult["id"], reason="review complete")
            assert await patient.wait_for("consult-ended") == {"reason": "review complete"}
            assert await pharmacist.wait_for("consult-ended") == {"reason": "review complete"}
            await asyncio.wait_for(patient.disconnected.wait(), 5)
            await asyncio.wait_for(pharmacist.disconnected.wait(), 5)
    for token in t.values():
        assert await refused_code(server, token) == "consult_ended"


async def test_relay_reaches_only_the_addressee(server: RunningServer) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"]) as (clinician, cl_ack),
        joined(server.base_url, t["patient"]) as (patient, pa_ack),
    ):
        offer = {"type": "offer", "sdp": "v=0\r\n"}
        await pharmacist.sio.emit("signal", {"to": pa_ack["self"]["id"], "description": offer})
        got = await patient.wait_for("signal")
        assert got == {"from": ph_ack["self"]["id"], "description": offer}
        candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ relay", "sdpMid": "0"}
        await patient.sio.emit("signal", {"to": ph_ack["self"]["id"], "candidate": candidate})
        got = await pharmacist.wait_for("signal")
        assert got["from"] == pa_ack["self"]["id"]
        assert got["candidate"]["candidate"] == candidate["candidate"]
        await patient.sio.emit("signal", {"to": ph_ack["self"]["id"], "candidate": None})
        assert await pharmacist.wait_for("signal") == {
            "from": pa_ack["self"]["id"],
            "candidate": None,
        }
        await asyncio.sleep(0.2)
        assert "signal" not in clinician.names()
        assert cl_ack["self"]["id"] not in (ph_ack["self"]["id"], pa_ack["self"]["id"])


async def test_relay_between_consults_is_refused(server: RunningServer) -> None:
    first = tokens(await server.create_consult(patient_name="First"))
    second = tokens(await server.create_consult(patient_name="Second"))
    async with (
        joined(server.base_url, first["pharmacist"]) as (intruder, _),
        joined(server.base_url, second["patient"]) as (victim, victim_ack),
        joined(server.base_url, second["pharmacist"]) as (_, __),
    ):
        offer = {"type": "offer", "sdp": "v=0\r\n"}
        await intruder.sio.emit("signal", {"to": victim_ack["self"]["id"], "description": offer})
        error = await intruder.wait_for("error")
        assert error["event"] == "signal"
        assert error["code"] == "unknown_recipient"
        await asyncio.sleep(0.2)
        assert "signal" not in victim.names()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("just a string", "invalid_payload"),
        ({"to": "p_x"}, "invalid_payload"),
        (
            {"to": "p_x", "description": {"type": "offer", "sdp": ""}, "candidate": None},
            "invalid_payload",
        ),
        ({"to": "p_x", "description": {"type": "bogus", "sdp": ""}}, "invalid_payload"),
        ({"to": 5, "candidate": None}, "invalid_payload"),
        ({"to": "p_x", "candidate": {"candidate": 3}}, "invalid_payload"),
        ({"to": "p_x", "description": {"type": "offer", "sdp": "x" * 70_000}}, "message_too_large"),
        ({"to": "p_unknown", "candidate": None}, "unknown_recipient"),
    ],
)
async def test_bad_signal_payloads_are_refused(
    server: RunningServer, payload: Any, code: str
) -> None:
    t = tokens(await server.create_consult())
    async with (
        joined(server.base_url, t["pharmacist"]) as (sender, _),
        joined(server.base_url, t["patient"]) as (receiver, __),
    ):
        await sender.sio.emit("signal", payload)
        error = await sender.wait_for("error")
        assert error["code"] == code, error
        assert error["event"] == "signal"
        await asyncio.sleep(0.1)
        assert "signal" not in receiver.names()
        # The server keeps serving: a good message still goes through.
        await sender.sio.emit("signal", {"to": __["self"]["id"], "candidate": None})
        assert (await receiver.wait_for("signal"))["candidate"] is None


async def test_signal_to_self_is_refused(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (client, ack):
        await client.sio.emit("signal", {"to": ack["self"]["id"], "candidate": None})
        assert (await client.wait_for("error"))["code"] == "unknown_recipient"


async def test_events_before_join_and_unknown_events(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    client = RecordingClient()
    await client.connect(server.base_url, t["clinician"])
    try:
        await client.sio.emit("signal", {"to": "p_x", "candidate": None})
        assert (await client.wait_for("error"))["code"] == "not_joined"
        await client.sio.emit("make-coffee", {"sugar": 2})
        error = await client.wait_for("error")
        assert error == {
            "event": "make-coffee",
            "code": "unknown_event",
            "message": "This server has no such event.",
        }
        bad = await client.sio.call("join", {"display_name": ""}, timeout=5)
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
        assert "display_name" in bad["error"]["message"]
        ack = await client.join("Dr Lee")
        assert ack["ok"] and ack["self"]["display_name"] == "Dr Lee"
        again = await client.join("Someone else")
        assert again["server_time"] >= ack["server_time"]
        assert {**again, "server_time": None} == {**ack, "server_time": None}
    finally:
        await client.sio.disconnect()


async def test_second_connection_replaces_the_first(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        async with joined(server.base_url, t["patient"]) as (first_tab, first_ack):
            await pharmacist.wait_for("participant-joined")
            async with joined(server.base_url, t["patient"]) as (second_tab, second_ack):
                assert "message" in await first_tab.wait_for("replaced")
                await asyncio.wait_for(first_tab.disconnected.wait(), 5)
                again = await pharmacist.wait_for("participant-joined")
                assert again["participant"]["id"] == first_ack["self"]["id"]
                await asyncio.sleep(0.2)
                assert "participant-left" not in pharmacist.names()
                await pharmacist.sio.emit(
                    "signal", {"to": second_ack["self"]["id"], "candidate": None}
                )
                assert (await second_tab.wait_for("signal"))["candidate"] is None


@pytest.fixture
def turn_config(config_overrides: dict[str, Any]) -> None:
    config_overrides["ice"] = {
        "turn_urls": ["turn:127.0.0.1:3478?transport=udp"],
        "turn_secret": "test-turn-secret",
        "transport_policy": "relay",
        "turn_ttl_seconds": 600,
    }


async def test_relay_policy_and_ephemeral_credentials(
    turn_config: None, server: RunningServer
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["patient"]) as (_, ack):
        ice = ack["ice"]
        assert ice["iceTransportPolicy"] == "relay"
        (turn,) = ice["iceServers"]
        expiry, participant = turn["username"].split(":")
        assert participant == ack["self"]["id"]
        assert int(expiry) == int(server.clock()) + 600
        assert turn["credential"]
