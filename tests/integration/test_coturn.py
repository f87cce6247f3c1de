"""The loopback coturn that every media test relies on really relays, and really checks
credentials.

Two aiortc peers in one process, both with ``iceTransportPolicy=relay``: the only
candidates they have are allocations on our coturn, so anything that arrives went through it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamTrack

from tests.support.coturn import Coturn, turn_credentials

CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ (\w+) \d+ (\S+) (\d+) typ (\w+)", re.MULTILINE)


@pytest.fixture
async def turn() -> AsyncIterator[Coturn]:
    async with Coturn() as server:
        yield server


def relay_config(url: str, username: str, credential: str) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[RTCIceServer(urls=[url], username=username, credential=credential)],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def candidates(sdp: str) -> list[tuple[str, str, int, str]]:
    """(protocol, address, port, type) of every candidate line in an SDP."""
    return [(p, a, int(port), t) for p, a, port, t in CANDIDATE.findall(sdp)]


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """One offer/answer round; aiortc puts all gathered candidates in the SDP."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def count_frames(track: MediaStreamTrack, wanted: int, done: asyncio.Event) -> None:
    for _ in range(wanted):
        await track.recv()
    done.set()


async def test_relay_only_media_and_data_pass_through_coturn(turn: Coturn) -> None:
    user_a, pass_a = turn.credentials("p_a")
    user_b, pass_b = turn.credentials("p_b")
    pc_a = RTCPeerConnection(relay_config(turn.url, user_a, pass_a))
    pc_b = RTCPeerConnection(relay_config(turn.url, user_b, pass_b))
    ten_frames = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        channel = pc_a.createDataChannel("chat")
        pc_a.addTrack(VideoStreamTrack())
        message: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        @pc_b.on("datachannel")
        def on_datachannel(remote: RTCDataChannel) -> None:
            def on_message(data: str) -> None:
                if not message.done():
                    message.set_result(data)

            remote.on("message", on_message)

        @pc_b.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            tasks.append(asyncio.create_task(count_frames(track, 10, ten_frames)))

        channel.on("open", lambda: channel.send("hello through the relay"))
        await negotiate(pc_a, pc_b)

        # Every candidate on both sides is a relay allocation on our coturn, on loopback.
        for description in (pc_a.localDescription, pc_b.localDescription):
            found = candidates(description.sdp)
            assert found, description.sdp
            for protocol, address, port, kind in found:
                assert (protocol.lower(), address, kind) == ("udp", "127.0.0.1", "relay")
                assert turn.min_port <= port <= turn.max_port

        assert await asyncio.wait_for(message, 15) == "hello through the relay"
        await asyncio.wait_for(ten_frames.wait(), 15)
        assert pc_a.connectionState == pc_b.connectionState == "connected"
    finally:
        for task in tasks:
            task.cancel()
        await pc_a.close()
        await pc_b.close()

    # Closing refreshes the allocations to 0; coturn then logs what it relayed for each.
    async with asyncio.timeout(10):
        while True:
            usage = {
                user: int(received)
                for user, received in re.findall(
                    r"peer usage: realm=<[^>]*>, username=<([^>]*)>, rp=\d+, rb=(\d+)",
                    turn.log_text(),
                )
            }
            if user_a in usage and user_b in usage:
                break
            await asyncio.sleep(0.1)
    # Video went a -> b, so b's allocation received more than a handshake's worth from a.
    assert usage[user_b] > 1_000
    assert usage[user_a] > 0


@pytest.mark.parametrize("problem", ["wrong-secret", "expired"])
async def test_bad_credentials_get_no_relay_and_no_connection(turn: Coturn, problem: str) -> None:
    if problem == "wrong-secret":
        bad_user, bad_pass = turn_credentials("not-the-secret", "p_bad")
    else:
        bad_user, bad_pass = turn.credentials("p_bad", ttl_seconds=-60)
    good_user, good_pass = turn.credentials("p_good")
    pc_bad = RTCPeerConnection(relay_config(turn.url, bad_user, bad_pass))
    pc_good = RTCPeerConnection(relay_config(turn.url, good_user, good_pass))
    try:
        # The good peer offers: it gathers first, so its relay allocation is not affected by
        # the other side's failure (an aiortc answerer whose offer carries no candidate and
        # end-of-candidates gives up on ICE before gathering anything).
        channel = pc_good.createDataChannel("chat")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await negotiate(pc_good, pc_bad)

        assert candidates(pc_bad.localDescription.sdp) == []  # coturn refused the allocation
        assert [c[3] for c in candidates(pc_good.localDescription.sdp)] == ["relay"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(opened.wait(), 3)
        assert pc_bad.connectionState != "connected"
        assert pc_good.connectionState != "connected"
    finally:
        await pc_bad.close()
        await pc_good.close()
    assert "401" in turn.log_text() or "credentials" in turn.log_text()
