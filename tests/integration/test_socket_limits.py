"""Limits of docs/protocol.md ("Limits"): events per connection, connections per token,
participants per consult, and a bounded `panel-sync`. Each refusal has its code and
changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from models import panel_store
from models.tables import ChangeEvent, Consult, PanelEntity
from tests.conftest import RunningServer, token_of
from tests.integration.test_signaling import refused_code
from tests.support.db_dump import dump
from tests.support.panel_client import PanelClient
from tests.support.raw_socket import RawSocket
from tests.support.sockets import RecordingClient, joined

MEDICATIONS = [{"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"}]


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def all_events(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    async with server.state.sessions() as session:
        return await panel_store.events_since(session, consult_id, 0)


# -- events per connection ------------------------------------------------------------------


@pytest.fixture
def slow_events(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"events_per_second": 1, "event_burst": 5}


async def test_events_beyond_the_bucket_are_refused_with_retry_after(
    slow_events: None, server: RunningServer
) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
    ):
        medication = ack["panel"]["entities"][0]

        def note(index: int) -> dict[str, Any]:
            return {
                "mutation_id": f"flood-{index}",
                "op": "set",
                "entity": "medication",
                "entity_id": medication["id"],
                "field": "notes",
                "value": f"note {index}",
            }

        # Connecting and joining took two of the five tokens: the bucket runs dry soon.
        applied = 0
        while (answer := await pharmacist.sio.call("mutate", note(applied), timeout=5))["ok"]:
            applied += 1
            assert applied <= 4
        assert answer["error"]["code"] == "rate_limited"
        assert 0 < answer["error"]["retry_after"] <= 1
        error = await pharmacist.wait_for("error")
        assert error["code"] == "rate_limited" and error["event"] == "mutate"
        assert error["retry_after"] == answer["error"]["retry_after"]
        # The refused edit left no trace: no event, no receipt, nothing broadcast.
        events = await all_events(server, consult["id"])
        assert [e["mutation_id"] for e in events[-applied:]] == [
            f"flood-{i}" for i in range(applied)
        ]
        for _ in range(applied):
            assert (await clinician.wait_for("panel-event"))["event"]["mutation_id"] != (
                f"flood-{applied}"
            )
        # The next event waits for a token instead of being refused: the same edit, sent
        # again at once, is applied (not a replay of a refusal) about retry_after later.
        started = time.monotonic()
        again = await pharmacist.sio.call("mutate", note(applied), timeout=5)
        assert again["ok"] and not again.get("replayed"), again
        assert time.monotonic() - started >= answer["error"]["retry_after"] * 0.5
        assert (await clinician.wait_for("panel-event"))["event"]["mutation_id"] == (
            f"flood-{applied}"
        )


@pytest.fixture
def quick_events(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"events_per_second": 20, "event_burst": 5}


async def test_a_flood_is_slowed_to_the_limit_and_answered_sparingly(
    quick_events: None, server: RunningServer
) -> None:
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["clinician"]) as (client, _):
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.sio.call("panel-sync", {}, timeout=10) for _ in range(60))
        )
        elapsed = time.monotonic() - started
        handled = sum(1 for a in answers if a["ok"])
        refused = [a["error"] for a in answers if not a["ok"]]
        assert {e["code"] for e in refused} == {"rate_limited"}
        # Every event was answered, and no faster than the bucket allows.
        assert handled + len(refused) == 60
        assert handled <= 5 + 20 * elapsed + 1
        assert len(refused) >= 1
        # One `error` event a second at most, however many were refused.
        await asyncio.sleep(0.1)
        errors = [data for name, data in client.events if name == "error"]
        assert 1 <= len(errors) <= elapsed + 1


async def test_unknown_and_reserved_events_spend_tokens_too(
    slow_events: None, server: RunningServer
) -> None:
    t = tokens(await server.create_consult())
    raw = await RawSocket.open(server.http, server.base_url)
    try:
        assert "sid" in await raw.connect(t["clinician"])
        codes = []
        for index in range(5):
            name = "disconnect" if index % 2 else "make-coffee"
            codes.append((await raw.call(name, {}, ack_id=index))["error"]["code"])
        # Connecting took one of the five tokens.
        assert codes == ["unknown_event", "reserved_event"] * 2 + ["rate_limited"]
    finally:
        await raw.close()


async def test_connect_packets_spend_tokens_too(slow_events: None, server: RunningServer) -> None:
    raw = await RawSocket.open(server.http, server.base_url)
    try:
        answers = [await raw.connect("not-a-token") for _ in range(6)]
        codes = [answer["error"]["data"]["code"] for answer in answers]
        assert codes == ["invalid_token"] * 5 + ["rate_limited"]
        assert 0 < answers[-1]["error"]["data"]["retry_after"] <= 1
    finally:
        await raw.close()


# -- connections per token ------------------------------------------------------------------


@pytest.fixture
def two_connections(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"connections_per_token": 2}


async def test_connections_per_token_are_limited(
    two_connections: None, server: RunningServer
) -> None:
    t = tokens(await server.create_consult())
    first, second = RecordingClient(), RecordingClient()
    await first.connect(server.base_url, t["patient"])
    await second.connect(server.base_url, t["patient"])
    try:
        assert await refused_code(server, t["patient"]) == "too_many_connections"
        # Other links are not affected.
        other = RecordingClient()
        await other.connect(server.base_url, t["clinician"])
        await other.sio.disconnect()
        await first.sio.disconnect()
        await asyncio.sleep(0.1)
        third = RecordingClient()
        await third.connect(server.base_url, t["patient"])
        await third.sio.disconnect()
    finally:
        for client in (first, second):
            if client.sio.connected:
                await client.sio.disconnect()


# -- participants per consult ---------------------------------------------------------------


@pytest.fixture
def two_participants(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"participants_per_consult": 2}


async def test_participants_per_consult_are_limited(
    two_participants: None, server: RunningServer
) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, _),
        joined(server.base_url, t["clinician"]),
    ):
        await pharmacist.wait_for("participant-joined")
        patient = RecordingClient()
        await patient.connect(server.base_url, t["patient"])
        try:
            before = await dump(server.state.sessions)
            answer = await patient.join()
            assert answer["ok"] is False and answer["error"]["code"] == "consult_full"
            assert (await patient.wait_for("error"))["code"] == "consult_full"
            assert await dump(server.state.sessions) == before
            await asyncio.sleep(0.2)
            assert "participant-joined" not in pharmacist.names()
        finally:
            await patient.sio.disconnect()
        # Someone already present opening a second tab is not one more participant.
        async with joined(server.base_url, t["clinician"]) as (_, again):
            assert again["ok"]


# -- panel-sync -----------------------------------------------------------------------------


async def add_events(server: RunningServer, consult_id: str, count: int, *, last_seq: bool) -> int:
    """`count` notes edits of the consult's first medication written straight to the
    database (as committed edits would be); moves the consult's seq unless told not to
    (an edit committed between the two reads of a `panel-sync`). Returns the last seq."""
    now = dt.datetime.now(dt.UTC)
    async with server.state.engine.begin() as connection:
        first = (
            await connection.execute(select(Consult.last_seq).where(Consult.id == consult_id))
        ).scalar_one()
        entity = (
            await connection.execute(
                select(PanelEntity.id, PanelEntity.data, PanelEntity.versions).where(
                    PanelEntity.consult_id == consult_id
                )
            )
        ).first()
        assert entity is not None
        rows = [
            {
                "consult_id": consult_id,
                "seq": first + index,
                "at": now,
                "actor_id": None,
                "actor_name": "Ana P.",
                "actor_role": "pharmacist",
                "op": "set",
                "entity_type": "medication",
                "entity_id": entity.id,
                "field": "notes",
                "old": None,
                "new": f"note {first + index}",
                "mutation_id": None,
                "outcome": "applied",
            }
            for index in range(1, count + 1)
        ]
        await connection.execute(insert(ChangeEvent.__table__), rows)  # type: ignore[arg-type]
        last = first + count
        if last_seq:
            await connection.execute(
                update(PanelEntity)
                .where(PanelEntity.consult_id == consult_id, PanelEntity.id == entity.id)
                .values(
                    data={**entity.data, "notes": f"note {last}"},
                    versions={**entity.versions, "notes": last},
                    updated_seq=last,
                    updated_at=now,
                )
            )
            await connection.execute(
                update(Consult).where(Consult.id == consult_id).values(last_seq=last)
            )
    return last


async def test_a_large_gap_is_answered_with_the_snapshot_only(server: RunningServer) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    last = await add_events(server, consult["id"], 12_000, last_seq=True)
    limit = server.state.config.signaling.panel_sync_max_events
    async with joined(server.base_url, tokens(consult)["clinician"]) as (client, ack):
        assert ack["panel"]["seq"] == last
        started = time.monotonic()
        answer = await client.sio.call("panel-sync", {"since": 0}, timeout=5)
        assert time.monotonic() - started < 2
        assert answer["snapshot_only"] is True and answer["events"] == []
        assert answer["panel"] == ack["panel"]
        # Right at the limit, every event; one past it, the snapshot only.
        at_limit = await client.sio.call("panel-sync", {"since": last - limit}, timeout=5)
        assert at_limit["snapshot_only"] is False
        assert [e["seq"] for e in at_limit["events"]] == list(range(last - limit + 1, last + 1))
        past = await client.sio.call("panel-sync", {"since": last - limit - 1}, timeout=5)
        assert past["snapshot_only"] is True and past["events"] == []


@pytest.fixture
def small_sync(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"panel_sync_max_events": 10}


async def test_a_client_that_missed_more_than_the_limit_converges(
    small_sync: None, server: RunningServer
) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    t = tokens(consult)
    follower = PanelClient(server.base_url, t["clinician"])
    await follower.connect()
    try:
        stale = follower.view()
        last = await add_events(server, consult["id"], 50, last_seq=True)
        await follower.resync()  # as on a gap: replaces its panel from the snapshot
        assert follower.seq == last
        assert follower.view() != stale
        async with joined(server.base_url, t["pharmacist"]) as (_, ack):
            fresh = {e["id"]: e for e in ack["panel"]["entities"]}
            assert follower.view() == {"seq": last, "entities": dict(sorted(fresh.items()))}
    finally:
        await follower.disconnect()


async def test_events_stop_at_the_snapshot_seq(server: RunningServer) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    async with joined(server.base_url, tokens(consult)["clinician"]) as (client, ack):
        seq = ack["panel"]["seq"]
        # Edits committed after the snapshot was read, before the events were: the answer
        # must not carry them (a client keeps panel.seq, and would skip them otherwise).
        await add_events(server, consult["id"], 3, last_seq=False)
        answer = await client.sio.call("panel-sync", {"since": 0}, timeout=5)
        assert answer["panel"]["seq"] == seq
        assert [e["seq"] for e in answer["events"]] == list(range(1, seq + 1))


async def test_a_since_ahead_of_the_consult_gets_no_events(server: RunningServer) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    async with joined(server.base_url, tokens(consult)["clinician"]) as (client, ack):
        answer = await client.sio.call("panel-sync", {"since": 10**9}, timeout=5)
        assert answer == {
            "ok": True,
            "panel": ack["panel"],
            "events": [],
            "snapshot_only": False,
        }
