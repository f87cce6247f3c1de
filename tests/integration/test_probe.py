"""The pre-join network check's server side, driven by an aiortc peer standing in for a
browser, relay-only through a real coturn on 127.0.0.1."""

import asyncio
import json
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media.ice import rtc_configuration
from tests.conftest import RunningServer, relay_through, token_of
from tests.support.coturn import Coturn
from tests.support.sockets import RecordingClient


@pytest.fixture
def config_overrides(turn: Coturn) -> dict[str, dict[str, Any]]:
    return relay_through(turn)


@pytest.mark.parametrize(
    "description",
    [{"type": "offer", "sdp": ""}, {"type": "answer", "sdp": "v=0"}, {"type": "offer", "sdp": "x"}],
)
async def test_unusable_offers_are_refused(
    server: RunningServer, description: dict[str, str]
) -> None:
    consult = await server.create_consult()
    client = RecordingClient()
    await client.connect(server.base_url, token_of(consult["links"]["patient"]))
    try:
        result = await client.sio.call("probe", {"description": description})
        assert result["error"]["code"] == "invalid_payload"
        assert server.state.probes.active == 0
    finally:
        await client.sio.disconnect()


async def test_probe_echoes_pings_and_counts_upload(server: RunningServer) -> None:
    consult = await server.create_consult(admit_patient=False)
    client = RecordingClient()
    # The probe runs from the pre-join screen: connected, not joined, not admitted.
    await client.connect(server.base_url, token_of(consult["links"]["patient"]))
    settings = await client.sio.call("probe", {})
    assert settings["ok"] and "description" not in settings
    peer = RTCPeerConnection(rtc_configuration(settings["ice"]))
    try:
        ping = peer.createDataChannel("probe-ping", ordered=False, maxRetransmits=0)
        bulk = peer.createDataChannel("probe-bulk")
        echoes: list[str] = []
        summary: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        ping.on("message", echoes.append)
        bulk.on("message", lambda message: summary.set_result(json.loads(message)))
        await peer.setLocalDescription(await peer.createOffer())
        answer = await client.sio.call(
            "probe",
            {"description": {"type": "offer", "sdp": peer.localDescription.sdp}},
            timeout=20,
        )
        assert answer["ok"], answer
        assert answer["thresholds"] == {
            "max_rtt_ms": 300.0,
            "max_loss_percent": 5.0,
            "min_kbps": 750.0,
        }
        assert answer["ice"]["iceTransportPolicy"] == "relay"
        await peer.setRemoteDescription(RTCSessionDescription(**answer["description"]))
        async with asyncio.timeout(20):
            while ping.readyState != "open" or bulk.readyState != "open":
                await asyncio.sleep(0.05)
        for n in range(20):
            ping.send(json.dumps({"n": n}))
            await asyncio.sleep(0.01)
        for _ in range(20):
            bulk.send(b"\0" * 16_000)
        bulk.send("done")
        result = await asyncio.wait_for(summary, 20)
        assert result["bytes"] == 320_000 and result["seconds"] >= 0
        async with asyncio.timeout(5):
            while len(echoes) < 15:
                await asyncio.sleep(0.05)
        assert json.loads(echoes[0]) == {"n": 0}
        assert server.state.probes.active == 1
    finally:
        await peer.close()
        await client.sio.disconnect()
