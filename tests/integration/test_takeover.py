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
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from server.api_keys import hash_key
from tests.conftest import API_KEY, TOKEN_SECRET, flush_redis, token_of
from tests.support.nginx import Nginx
from tests.support.processes import ServerProcess, ThrowawayDatabase
from tests.support.reconnecting import ReconnectingEditor
from tests.support.redis_server import RedisServer
from tests.support.sockets import RecordingClient

ROLES = ("pharmacist", "clinician", "patient")
PRESENCE_TTL = 2.0
REJOIN_GRACE = 3.0


@dataclass
class Deployment:
    instances: list[ServerProcess]
    nginx: Nginx
    database: ThrowawayDatabase
    redis_url: str
    http: aiohttp.ClientSession

    async def rest(self, method: str, path: str, *, via: str | None = None, **body: Any) -> Any:
        async with self.http.request(
            method,
            f"{via or self.nginx.url}/api/v1{path}",
            json=body or None,
            headers={"X-API-Key": API_KEY},
            ssl=False,
        ) as response:
            answer = await response.json()
            assert response.status in (200, 201), answer
            return answer

    async def holder_of(self, consult_id: str) -> ServerProcess:
        """The instance holding the consult's connections (from presence in Redis)."""
        redis = Redis.from_url(self.redis_url)
        try:
            entries = await redis.hgetall(f"mtm:presence:{consult_id}")
        finally:
            await redis.aclose()
        holders = {orjson.loads(raw)["instance"] for raw in entries.values()}
        assert len(holders) == 1, holders
        (instance,) = holders
        return next(process for process in self.instances if process.instance() == instance)


@pytest.fixture
async def deployment(private_redis: RedisServer) -> AsyncIterator[Deployment]:
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs Postgres (MTM_TEST_DATABASE_URL)")
    database = ThrowawayDatabase(url)
    await database.create()
    await flush_redis(private_redis.url)
    nginx = Nginx([])
    settings: dict[str, dict[str, Any]] = {
        "database": {"url": database.url},
        "redis": {"url": private_redis.url},
        "auth": {"token_secret": TOKEN_SECRET},
        "api": {
            "keys": [{"clinic": "north", "display_name": "North", "hash": hash_key(API_KEY)}],
            "rate_limit_burst": 100_000,
        },
        "server": {"public_url": nginx.url, "trust_forwarded": True},
        "signaling": {"presence_ttl_seconds": PRESENCE_TTL, "events_per_second": 1000},
        "consult": {"rejoin_grace_seconds": REJOIN_GRACE},
        "logging": {"level": "INFO"},
    }
    instances = [ServerProcess(settings) for _ in range(2)]
    try:
        for process in instances:  # one after the other: the first one migrates
            # On the event loop's thread: a child dies with the thread that started it.
            process.start()
        nginx.instances = [process.address for process in instances]
        nginx.start()
        async with aiohttp.ClientSession() as http:
            yield Deployment(instances, nginx, database, private_redis.url, http)
    finally:
        nginx.close()
        for process in instances:
            await asyncio.to_thread(process.stop)
        await database.drop()


async def new_consult(deployment: Deployment) -> dict[str, Any]:
    consult: dict[str, Any] = await deployment.rest(
        "POST",
        "/consults",
        patient_name="Maria Lopez",
        scheduled_at="2026-11-27T10:00:00+00:00",
        medications=[{"name": "Metformin"}, {"name": "Lisinopril"}, {"name": "Atorvastatin"}],
    )
    # The pharmacist admitted the patient earlier.
    await deployment.database.fetch(
        "UPDATE participant SET admitted_at = now() WHERE consult_id = $1 AND role = 'patient'",
        consult["id"],
    )
    return consult


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
