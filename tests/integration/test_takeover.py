"""`kill -9` of a server instance: real processes behind nginx, a private Redis, Postgres.

The instance that serves a consult dies in the middle of a stream of edits; its clients
reconnect through nginx to the other instance, which takes the consult over from the
database. Nothing acknowledged is lost or applied twice, the log has no gap, every client
converges; and the crashed instance's participants leave the others' rosters and count as
gone since its last heartbeat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import token_of
from tests.support.deployment import Deployment, deployed
from tests.support.reconnecting import ReconnectingEditor
from tests.support.redis_server import RedisServer
from tests.support.sockets import RecordingClient

ROLES = ("pharmacist", "clinician", "patient")
PRESENCE_TTL = 2.0
REJOIN_GRACE = 3.0


@pytest.fixture
async def deployment(private_redis: RedisServer) -> AsyncIterator[Deployment]:
    settings: dict[str, dict[str, Any]] = {
        "signaling": {"presence_ttl_seconds": PRESENCE_TTL, "events_per_second": 1000},
        "consult": {"rejoin_grace_seconds": REJOIN_GRACE},
    }
    async with deployed(private_redis.url, settings) as deployment:
        yield deployment


async def new_consult(deployment: Deployment) -> dict[str, Any]:
    return await deployment.new_consult(
        [{"name": "Metformin"}, {"name": "Lisinopril"}, {"name": "Atorvastatin"}]
    )


def edit(role: str, index: int, medication_id: str) -> dict[str, Any]:
    field = "patient_note" if role == "patient" else "notes"
    return {
        "mutation_id": f"{role}-{index}",
        "op": "set",
        "entity": "medication",
        "entity_id": medication_id,
        "field": field,
        "value": f"{role} {index}",
    }


async def test_kill_9_of_the_owner_during_a_stream_of_edits_loses_nothing_acknowledged(
    deployment: Deployment,
) -> None:
    consult = await new_consult(deployment)
    medications = [entity["id"] for entity in consult["medications"]]
    editors = {
        role: ReconnectingEditor(
            deployment.nginx.url, token_of(consult["links"][role]), consult["id"]
        )
        for role in ROLES
    }
    for editor in editors.values():
        await editor.start()
    owner = await deployment.holder_of(consult["id"])
    per_client = 40

    async def stream(role: str, medication_id: str) -> None:
        for index in range(per_client):
            await editors[role].mutate(edit(role, index, medication_id))
            await asyncio.sleep(0.1)

    try:
        streams = [
            asyncio.create_task(stream(role, medication))
            for role, medication in zip(ROLES, medications, strict=True)
        ]
        await asyncio.sleep(1.5)
        acknowledged_before = sum(len(editor.acks) for editor in editors.values())
        await asyncio.to_thread(owner.kill)
        await asyncio.gather(*streams)
        for editor in editors.values():
            await editor.drained(timeout=60)
        survivor = next(process for process in deployment.instances if process is not owner)
        assert await deployment.holder_of(consult["id"]) is survivor
        assert acknowledged_before > 0  # the kill came in the middle of the stream

        rows = await deployment.database.fetch(
            "SELECT seq, mutation_id, actor_id FROM change_event WHERE consult_id = $1 "
            "ORDER BY seq",
            consult["id"],
        )
        seqs = [row["seq"] for row in rows]
        assert seqs == list(range(1, len(rows) + 1)), "the log has a gap"
        assert len(rows) == len(medications) + len(ROLES) * per_client
        logged = {(row["actor_id"], row["mutation_id"]): row["seq"] for row in rows}
        assert len(logged) == len(rows), "an edit was applied twice"
        for role, editor in editors.items():
            assert editor.joins >= 2, f"the {role} never reconnected"
            assert len(editor.acks) == per_client
            for mutation_id, ack in editor.acks.items():
                assert ack["ok"], ack
                # Acknowledged means in the log, once, at the seq the acknowledgement gave.
                assert logged[(editor.self_id, mutation_id)] == ack["seq"]
        # Every client's panel, built from the events it received, is the server's.
        last = seqs[-1]
        for editor in editors.values():
            await editor.wait_for_seq(last, timeout=15)
            fresh = await editor.client.call("panel-sync", {}, timeout=10)
            assert editor.view() == {
                "seq": fresh["panel"]["seq"],
                "entities": {
                    e["id"]: e for e in sorted(fresh["panel"]["entities"], key=lambda e: e["id"])
                },
            }
    finally:
        for editor in editors.values():
            await editor.close()


async def test_a_crashed_instances_participants_leave_and_wait_again_after_the_grace(
    deployment: Deployment,
) -> None:
    """Regression: nobody recorded a crashed process's departures, so its participants
    stayed in other rosters with no `participant-left`, and a missing last_left_at let an
    admitted patient skip the waiting room forever."""
    first, second = deployment.instances
    consult = await new_consult(deployment)
    tokens = {role: token_of(link) for role, link in consult["links"].items()}
    pharmacist = RecordingClient()
    await pharmacist.connect(first.url, tokens["pharmacist"])
    assert (await pharmacist.join())["ok"]
    patient = RecordingClient()
    await patient.connect(second.url, tokens["patient"])
    assert (await patient.join())["waiting"] is False
    patient_id = (await pharmacist.wait_for("participant-joined"))["participant"]["id"]
    try:
        await asyncio.to_thread(second.kill)
        killed_at = dt.datetime.now(dt.UTC)
        left = await pharmacist.wait_for("participant-left", timeout=PRESENCE_TTL * 4)
        assert left == {"participant_id": patient_id, "reason": "disconnected"}
        read = await deployment.rest("GET", f"/consults/{consult['id']}", via=first.url)
        assert [p["role"] for p in read["present"]] == ["pharmacist"]
        # Past the grace, counted from the crashed instance's last heartbeat: wait again.
        elapsed = (dt.datetime.now(dt.UTC) - killed_at).total_seconds()
        await asyncio.sleep(max(0.0, REJOIN_GRACE + 0.5 - elapsed))
        again = RecordingClient()
        await again.connect(first.url, tokens["patient"])
        try:
            assert (await again.join())["waiting"] is True
            assert [p["role"] for p in (await pharmacist.wait_for("waiting-room"))["waiting"]] == [
                "patient"
            ]
        finally:
            await again.sio.disconnect()
    finally:
        await pharmacist.sio.disconnect()


async def test_the_new_owner_rebuilds_the_waiting_room_and_consent_from_the_database(
    deployment: Deployment,
) -> None:
    consult = await deployment.rest(
        "POST", "/consults", patient_name="Maria Lopez", scheduled_at="2026-11-27T10:00:00+00:00"
    )
    tokens = {role: token_of(link) for role, link in consult["links"].items()}
    url = deployment.nginx.url

    async def through_nginx(role: str, *, consent: bool) -> tuple[RecordingClient, Any]:
        client = RecordingClient(ssl_verify=False)
        await client.connect(url, tokens[role], consult=consult["id"])
        return client, await client.join(consent=consent)

    pharmacist, _ = await through_nginx("pharmacist", consent=False)
    patient, waiting = await through_nginx("patient", consent=True)
    assert waiting["waiting"] is True
    owner = await deployment.holder_of(consult["id"])
    owner.kill()
    await asyncio.wait_for(pharmacist.disconnected.wait(), 10)
    await asyncio.wait_for(patient.disconnected.wait(), 10)
    # Both come back through nginx, to the other instance. The patient's consent and that
    # they were not admitted come from the database, not from the dead instance.
    pharmacist, _ = await through_nginx("pharmacist", consent=False)
    patient, again = await through_nginx("patient", consent=False)
    try:
        assert again["ok"] and again["waiting"] is True, again
        assert await deployment.holder_of(consult["id"]) is not owner
        waiting_room = (await pharmacist.wait_for("waiting-room"))["waiting"]
        assert [person["role"] for person in waiting_room] == ["patient"]
        assert await pharmacist.sio.call("admit", {"participant_id": waiting_room[0]["id"]}) == {
            "ok": True
        }
        assert (await patient.wait_for("admitted"))["ok"]
    finally:
        await pharmacist.sio.disconnect()
        await patient.sio.disconnect()
