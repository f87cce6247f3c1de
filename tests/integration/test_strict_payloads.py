"""Every Socket.IO payload is validated strictly (docs/protocol.md): a value has exactly
the JSON type its field names, no coercion. A refused payload is answered `invalid_payload`
and changes nothing: not the database, not who is present, not what others receive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.db_dump import dump
from tests.support.raw_socket import RawSocket
from tests.support.sockets import RecordingClient, joined


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def present(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult_id}", headers={"X-API-Key": API_KEY}
    ) as response:
        body: dict[str, Any] = await response.json()
    return list(body["present"])


async def assert_refused(client: RecordingClient, event: str, payload: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await client.sio.call(event, payload, timeout=5)
    assert answer["ok"] is False, answer
    assert answer["error"]["code"] == "invalid_payload", answer
    error = await client.wait_for("error")
    assert error["event"] == event and error["code"] == "invalid_payload"
    return answer


@pytest.mark.parametrize(
    "consent",
    [
        {"accepted": 1},
        {"accepted": 1.0},
        {"accepted": "true"},
        {"accepted": "yes"},
        {"accepted": False},
        {"accepted": None},
        {"accepted": True, "when": "now"},
        True,
        "accepted",
    ],
)
async def test_consent_is_exactly_true(server: RunningServer, consent: Any) -> None:
    consult = await server.create_consult(admit_patient=False)
    patient = RecordingClient()
    await patient.connect(server.base_url, tokens(consult)["patient"])
    try:
        before = await dump(server.state.sessions)
        answer = await assert_refused(patient, "join", {"consent": consent})
        assert "consent" in answer["error"]["message"]
        assert await dump(server.state.sessions) == before
        assert await present(server, consult["id"]) == []
        # The real thing still works.
        assert (await patient.join())["waiting"] is True
    finally:
        await patient.sio.disconnect()


@pytest.mark.parametrize("display_name", [5, True, ["Ana"], {"name": "Ana"}])
async def test_display_name_is_a_string(server: RunningServer, display_name: Any) -> None:
    consult = await server.create_consult()
    client = RecordingClient()
    await client.connect(server.base_url, tokens(consult)["clinician"])
    try:
        before = await dump(server.state.sessions)
        await assert_refused(client, "join", {"display_name": display_name})
        assert await dump(server.state.sessions) == before
    finally:
        await client.sio.disconnect()


@pytest.mark.parametrize("payload", [{"everyone": True}, "all", [1], 1, True])
async def test_admit_all_takes_an_empty_object(server: RunningServer, payload: Any) -> None:
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    patient = RecordingClient()
    await patient.connect(server.base_url, t["patient"])
    try:
        assert (await patient.join())["waiting"] is True
        async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
            before = await dump(server.state.sessions)
            await assert_refused(pharmacist, "admit-all", payload)
            await asyncio.sleep(0.2)
            assert "admitted" not in patient.names()
            assert await dump(server.state.sessions) == before
            assert (await pharmacist.sio.call("admit-all", {}, timeout=5))["ok"]
            assert "roster" in await patient.wait_for("admitted")
    finally:
        await patient.sio.disconnect()


@pytest.mark.parametrize(
    "payload",
    [
        {"participant_id": 5},
        {"participant_id": True},
        {"participant_id": ["p_x"]},
        {"participant_id": "p_x", "extra": 1},
    ],
)
async def test_participant_ids_are_strings(server: RunningServer, payload: Any) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        for event in ("admit", "deny", "remove"):
            await assert_refused(pharmacist, event, payload)


@pytest.mark.parametrize(
    "description",
    [
        {"type": "offer"},
        {"type": "offer", "sdp": ""},
        {"type": "answer"},
        {"type": "pranswer", "sdp": ""},
        {"type": "offer", "sdp": 5},
        {"type": "offer", "sdp": None},
    ],
)
async def test_a_description_without_sdp_is_not_relayed(
    server: RunningServer, description: dict[str, Any]
) -> None:
    t = tokens(await server.create_consult())
    async with (
        joined(server.base_url, t["pharmacist"]) as (sender, _),
        joined(server.base_url, t["patient"]) as (receiver, receiver_ack),
    ):
        to = receiver_ack["self"]["id"]
        await assert_refused(sender, "signal", {"to": to, "description": description})
        await asyncio.sleep(0.2)
        assert "signal" not in receiver.names()
        # A rollback carries no SDP, and is relayed.
        rollback = await sender.sio.call(
            "signal", {"to": to, "description": {"type": "rollback"}}, timeout=5
        )
        assert rollback == {"ok": True}
        relayed = await receiver.wait_for("signal")
        assert relayed["description"] == {"type": "rollback", "sdp": ""}


@pytest.mark.parametrize(
    "since", [True, False, "1", 1.0, 1.5, -1, 2**31, 2**63, 2**64 - 1, [1], {"seq": 1}]
)
async def test_panel_sync_since_is_a_non_negative_64_bit_integer(
    server: RunningServer, since: Any
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["clinician"]) as (client, _):
        answer = await assert_refused(client, "panel-sync", {"since": since})
        assert answer["error"]["message"].startswith("since:")


@pytest.mark.parametrize("since", ["18446744073709551616", "1" + "0" * 30, "1e30", "-0.0"])
async def test_panel_sync_since_past_64_bits_is_invalid_not_an_internal_error(
    server: RunningServer, since: str
) -> None:
    # Written by hand: a JSON library refuses to send integers this large.
    t = tokens(await server.create_consult())
    raw = await RawSocket.open(server.http, server.base_url)
    try:
        assert "sid" in await raw.connect(t["clinician"])
        assert (await raw.call("join", {}, ack_id=1))["ok"]
        await raw.send('422["panel-sync",{"since":' + since + "}]")
        answer = await raw.ack(2)
        assert answer["error"]["code"] == "invalid_payload", answer
        assert answer["error"]["message"].startswith("since:")
    finally:
        await raw.close()


async def test_panel_sync_since_at_the_largest_seq_is_answered(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["clinician"]) as (client, ack):
        answer = await client.sio.call("panel-sync", {"since": 2**31 - 1}, timeout=5)
        assert answer == {
            "ok": True,
            "panel": ack["panel"],
            "events": [],
            "snapshot_only": False,
        }


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("panel-history", {"entity_id": 5}),
        ("panel-history", {"entity_id": None}),
        ("end-consult", {"reason": 5}),
        ("end-consult", {"reason": True}),
        ("leave", {"now": True}),
        ("leave", "bye"),
        ("probe", {"description": {"type": "offer"}}),
        ("probe", {"description": {"type": "offer", "sdp": 1}}),
    ],
)
async def test_other_payloads_are_strict(server: RunningServer, event: str, payload: Any) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"]) as (client, _):
        before = await dump(server.state.sessions)
        await assert_refused(client, event, payload)
        assert await dump(server.state.sessions) == before
        # Still connected, still in the call.
        assert client.sio.connected
        assert [p["state"] for p in await present(server, consult["id"])] == ["in-call"]
