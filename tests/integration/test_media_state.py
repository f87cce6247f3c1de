"""`media` (docs/protocol.md, "Microphone and camera"): what each page says of its microphone
and camera reaches everyone else, in the roster and as `participant-media`; bad values are
refused and change nothing."""

from typing import Any

import pytest

from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient, joined

MUTED = {"microphone": "off", "camera": "on"}


@pytest.fixture(params=[1, 2], ids=["one-instance", "two-instances"])
def instances(request: pytest.FixtureRequest) -> int:
    """One instance, and two sharing the database and Redis with the clients spread over
    both (tests/conftest.py): presence in memory, and presence in Redis."""
    return int(request.param)


ON = {"microphone": "on", "camera": "on"}


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def test_join_media_reaches_the_others_and_the_roster(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"], "Ana P.") as (pharmacist, ack):
        assert ack["self"]["media"] == ON, "left out: on and on"
        clinician = RecordingClient()
        await clinician.connect(server.base_url, t["clinician"])
        try:
            clin_ack = await clinician.join("Dr Lee", media=MUTED)
            assert clin_ack["ok"], clin_ack
            assert clin_ack["self"]["media"] == MUTED
            assert clin_ack["roster"][0]["media"] == ON
            arrived = await pharmacist.wait_for("participant-joined")
            assert arrived["participant"]["media"] == MUTED
        finally:
            await clinician.sio.disconnect()


async def test_a_change_reaches_everyone_else_and_later_arrivals(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack):
        async with joined(server.base_url, t["clinician"]) as (clinician, _):
            await pharmacist.wait_for("participant-joined")
            audio_only = {"microphone": "on", "camera": "audio-only"}
            assert await pharmacist.sio.call("media", audio_only, timeout=5) == {"ok": True}
            changed = await clinician.wait_for("participant-media")
            assert changed == {"participant_id": ph_ack["self"]["id"], "media": audio_only}
            assert "participant-media" not in pharmacist.names(), "not echoed to the sender"
            # Someone arriving after the change sees it in their roster.
            await clinician.sio.disconnect()
            async with joined(server.base_url, t["clinician"]) as (_, again):
                (entry,) = again["roster"]
                assert entry["media"] == audio_only


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"microphone": "off"},
        {"microphone": "muted", "camera": "on"},
        {"microphone": "off", "camera": "video"},
        {"microphone": False, "camera": "on"},
        {"microphone": "off", "camera": "on", "speaking": True},
        "<b>off</b>",
    ],
)
async def test_bad_media_is_refused_and_delivers_nothing(
    server: RunningServer, payload: Any
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        async with joined(server.base_url, t["clinician"]) as (clinician, _):
            await pharmacist.wait_for("participant-joined")
            answer = await pharmacist.sio.call("media", payload, timeout=5)
            assert answer["ok"] is False
            assert answer["error"]["code"] == "invalid_payload"
            assert answer["error"]["message"]
            # The next good change is the first the clinician hears of.
            await pharmacist.sio.call("media", MUTED, timeout=5)
            assert (await clinician.wait_for("participant-media"))["media"] == MUTED
            assert "participant-media" not in clinician.names()
        async with joined(server.base_url, t["clinician"]) as (_, again):
            assert again["roster"][0]["media"] == MUTED


async def test_a_join_with_bad_media_is_refused(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    client = RecordingClient()
    await client.connect(server.base_url, t["pharmacist"])
    try:
        ack = await client.join(media={"microphone": "off", "camera": "<script>"})
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
    finally:
        await client.sio.disconnect()


async def test_a_replaced_connection_cannot_bring_its_entry_back(server: RunningServer) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        old = RecordingClient()
        await old.connect(server.base_url, t["clinician"])
        assert (await old.join())["ok"]
        await pharmacist.wait_for("participant-joined")
        async with joined(server.base_url, t["clinician"]) as (new, _):
            await old.wait_for("replaced")
            # The old page's late change must not overwrite the new page's entry.
            if old.sio.connected:
                await old.sio.emit("media", MUTED)
            await new.sio.call("media", {"microphone": "on", "camera": "off"}, timeout=5)
            async with joined(server.base_url, t["patient"]) as (_, patient_ack):
                (clinician,) = [p for p in patient_ack["roster"] if p["role"] == "clinician"]
                assert clinician["media"] == {"microphone": "on", "camera": "off"}
                assert clinician["session"] == (await new.sio.call("join", {}))["self"]["session"]


async def test_waiting_patient_may_not_send_media(server: RunningServer) -> None:
    t = tokens(await server.create_consult(admit_patient=False))
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        patient = RecordingClient()
        await patient.connect(server.base_url, t["patient"])
        try:
            assert (await patient.join())["waiting"] is True
            answer = await patient.sio.call("media", MUTED, timeout=5)
            assert answer["ok"] is False and answer["error"]["code"] == "not_joined"
            assert "participant-media" not in pharmacist.names()
        finally:
            await patient.sio.disconnect()
