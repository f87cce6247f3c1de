"""What a hostile client sends on the wire (docs/protocol.md, "Hostile input"): reserved
event names, packets that cannot be read, tokens that are not ASCII. Each is answered as
documented, and the server's log gets at most one line for it, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from signaling import wire
from tests.conftest import RunningServer, token_of
from tests.integration.test_signaling import refused_code
from tests.support.raw_socket import RawSocket
from tests.support.sockets import RecordingClient, joined


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


@pytest.fixture(autouse=True)
def fresh_log_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the whole budget of log lines a client may provoke."""
    monkeypatch.setattr(wire, "_limiter", wire.LogLimiter())


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog
    tracebacks = [r for r in caplog.records if r.exc_info or r.exc_text]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    assert "Traceback" not in caplog.text


@asynccontextmanager
async def raw_joined(server: RunningServer, token: str) -> AsyncIterator[RawSocket]:
    raw = await RawSocket.open(server.http, server.base_url)
    try:
        assert "sid" in await raw.connect(token)
        ack = await raw.call("join", {"consent": {"accepted": True}}, ack_id=900)
        assert ack["ok"], ack
        yield raw
    finally:
        await raw.close()


def closing_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "closed a connection" in r.getMessage()]


# -- reserved event names -------------------------------------------------------------------


async def test_a_disconnect_event_from_the_wire_announces_nothing(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack):
        async with raw_joined(server, t["patient"]) as patient:
            arrived = await pharmacist.wait_for("participant-joined")
            await patient.emit("disconnect")
            await patient.emit("disconnect", "client namespace disconnect", ack_id=7)
            assert await patient.ack(7) == {
                "ok": False,
                "error": {"code": "reserved_event", "message": wire.RESERVED_MESSAGE},
            }
            error = await patient.event("error")
            assert error["code"] == "reserved_event" and error["event"] == "disconnect"
            await asyncio.sleep(0.3)
            assert "participant-left" not in pharmacist.names()
            # Still connected and in the call: a signal goes through.
            await patient.emit("signal", {"to": ph_ack["self"]["id"], "candidate": None})
            relayed = await pharmacist.wait_for("signal")
            assert relayed == {"from": arrived["participant"]["id"], "candidate": None}


async def test_a_connect_event_with_another_token_takes_nothing_over(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    t = tokens(await server.create_consult(admit_patient=False))
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack):
        raw = await RawSocket.open(server.http, server.base_url)
        try:
            assert "sid" in await raw.connect(t["patient"])
            waiting = await raw.call("join", {"consent": {"accepted": True}}, ack_id=1)
            assert waiting["waiting"] is True
            await raw.emit("connect", {}, {"token": t["pharmacist"]}, ack_id=2)
            assert (await raw.ack(2))["error"]["code"] == "reserved_event"
            assert (await raw.event("error"))["event"] == "connect"
            # Still the waiting patient: cannot admit itself, cannot read the panel.
            again = await raw.call("join", {}, ack_id=3)
            assert again["waiting"] is True and again["self"]["role"] == "patient"
            admit_all = await raw.call("admit-all", {}, ack_id=4)
            assert admit_all["error"]["code"] == "not_joined"
            assert await pharmacist.wait_for("waiting-room")
            await asyncio.sleep(0.2)
            assert "participant-joined" not in pharmacist.names()
            assert ph_ack["self"]["role"] == "pharmacist"
        finally:
            await raw.close()


@pytest.mark.parametrize("name", sorted(wire.RESERVED_EVENTS))
async def test_every_reserved_name_is_refused(
    server: RunningServer, server_log: pytest.LogCaptureFixture, name: str
) -> None:
    t = tokens(await server.create_consult())
    async with raw_joined(server, t["clinician"]) as raw:
        answer = await raw.call(name, {}, ack_id=5)
        assert answer["error"]["code"] == "reserved_event"
        again = await raw.call("join", {}, ack_id=6)
        assert again["ok"] and again["self"]["role"] == "clinician"


# -- packets that cannot be read ------------------------------------------------------------

NESTED = "[" * 1100 + "]" * 1100

UNREADABLE = {
    "NaN": '42["join",NaN]',
    "Infinity": '421["join",{"display_name":Infinity}]',
    "-Infinity": '42["panel-sync",{"since":-Infinity}]',
    "lone surrogate": '42["join",{"display_name":"\\ud800"}]',
    "nesting past 1,000": '42["join",' + NESTED + "]",
    "truncated JSON": '42["join",{',
    "event without data": "42",
    "empty event list": "42[]",
    "event name not a string": "42[5,{}]",
    "event name an object": "42[{},{}]",
    "ack id too long": "42" + "1" * 120 + '["join"]',
    "too many attachments": '4512345678901-["join"]',
    "binary event": '451-["join",{"_placeholder":true,"num":0}]',
    "binary ack": "461-1[]",
    "connect_error from a client": '44{"message":"x"}',
    "unknown packet type": "49",
    "ack without a list": "431{}",
    "not a number at all": "4x",
    "base64 binary": "4bAAAA",
}


@pytest.mark.parametrize("frame", UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_an_unreadable_packet_is_answered_and_closes_the_connection(
    server: RunningServer, server_log: pytest.LogCaptureFixture, frame: str
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        raw = await RawSocket.open(server.http, server.base_url)
        assert "sid" in await raw.connect(t["clinician"])
        assert (await raw.call("join", {}, ack_id=1))["ok"]
        await pharmacist.wait_for("participant-joined")
        await raw.send(frame)
        error = await raw.event("error")
        assert error == {
            "event": None,
            "code": "malformed_packet",
            "message": wire.MALFORMED_MESSAGE,
        }
        await raw.wait_closed()
        # An ordinary departure for the others.
        left = await pharmacist.wait_for("participant-left")
        assert left["reason"] == "disconnected"
    assert len(closing_lines(server_log)) == 1


@pytest.mark.parametrize(
    "frame",
    ["x", "", "9", "\u0663", b"\x00\x01"],
    ids=["letter", "empty", "9", "arabic 3", "binary"],
)
async def test_a_frame_that_is_not_engine_io_closes_the_connection(
    server: RunningServer, server_log: pytest.LogCaptureFixture, frame: str | bytes
) -> None:
    t = tokens(await server.create_consult())
    raw = await RawSocket.open(server.http, server.base_url)
    assert "sid" in await raw.connect(t["clinician"])
    await raw.send(frame)
    await raw.wait_closed()
    assert len(closing_lines(server_log)) == 1


async def test_an_unreadable_packet_before_connecting_closes_quietly(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    raw = await RawSocket.open(server.http, server.base_url)
    await raw.send('42["join",{}]')
    await raw.wait_closed()
    assert len(closing_lines(server_log)) == 1


async def test_unreadable_long_polling_bodies_leave_no_traceback(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    url = f"{server.base_url}/socket.io/?EIO=4&transport=polling"
    async with server.http.get(url) as response:
        opening = await response.text()
    sid = opening[opening.index('"sid":"') + 7 :].split('"', 1)[0]
    for body in ["x", "4" + "[" * 2000, "b!!!", "42[NaN]"]:
        async with server.http.post(f"{url}&sid={sid}", data=body.encode()) as response:
            assert response.status < 500


async def test_log_lines_a_client_can_provoke_are_rate_limited(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    t = tokens(await server.create_consult())
    for _ in range(30):
        raw = await RawSocket.open(server.http, server.base_url)
        assert "sid" in await raw.connect(t["clinician"])
        await raw.send('42["join",NaN]')
        await raw.wait_closed()
    lines = closing_lines(server_log)
    assert len(lines) == 20  # the process-wide budget: 20 lines a minute


def test_the_log_budget_refills_and_counts_what_it_dropped() -> None:
    now = [0.0]
    limiter = wire.LogLimiter(lines=2, period=10, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(4)] == [(True, 0), (True, 0), (False, 0), (False, 0)]
    now[0] = 5.0  # one line's worth
    assert limiter.allow() == (True, 2)
    assert limiter.allow() == (False, 0)


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_token",
    [
        lambda t: "é",
        lambda t: t[:5] + "é" + t[6:],
        lambda t: t + "\u2028",
        lambda t: "\U0001f600." + t.split(".")[1],
    ],
    ids=["only non-ascii", "one letter replaced", "line separator", "emoji payload"],
)
async def test_a_token_with_a_non_ascii_character_is_refused_at_once(
    server: RunningServer, server_log: pytest.LogCaptureFixture, make_token: Any
) -> None:
    t = tokens(await server.create_consult())
    started = time.monotonic()
    assert await refused_code(server, make_token(t["patient"])) == "invalid_token"
    assert time.monotonic() - started < 2


async def test_a_refused_connect_leaves_the_namespace_unconnected(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    raw = await RawSocket.open(server.http, server.base_url)
    answer = await raw.connect("ünïcode.tökën")
    assert answer["error"]["data"]["code"] == "invalid_token"
    # An event now is a protocol error: the connection closes.
    await raw.send('42["join",{}]')
    await raw.wait_closed()
    client = RecordingClient()
    await client.connect(server.base_url, tokens(await server.create_consult())["patient"])
    await client.sio.disconnect()


async def test_an_event_with_several_arguments_is_invalid(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    t = tokens(await server.create_consult())
    async with raw_joined(server, t["clinician"]) as raw:
        answer = await raw.call("panel-sync", {}, {"since": 0}, ack_id=3)
        assert answer["error"] == {
            "code": "invalid_payload",
            "message": wire.EXTRA_ARGUMENTS_MESSAGE,
        }
        assert (await raw.event("error"))["event"] == "panel-sync"
        assert (await raw.call("panel-sync", {}, ack_id=4))["ok"]


async def test_a_failing_token_check_answers_internal_error_at_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tokens(await server.create_consult())

    async def broken(token: str) -> None:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(server.state.signaling.backend.admissions, "authenticate", broken)
    started = time.monotonic()
    assert await refused_code(server, t["patient"]) == "internal_error"
    assert time.monotonic() - started < 2


async def test_a_namespace_disconnect_before_connecting_is_ignored(
    server: RunningServer, server_log: pytest.LogCaptureFixture
) -> None:
    t = tokens(await server.create_consult())
    raw = await RawSocket.open(server.http, server.base_url)
    try:
        await raw.send("41")
        assert "sid" in await raw.connect(t["clinician"])
        assert (await raw.call("join", {}, ack_id=1))["ok"]
        assert closing_lines(server_log) == []
    finally:
        await raw.close()
