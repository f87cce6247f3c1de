"""Redis restarted in the middle of a consult served by two instances (a private
redis-server of the test run, stopped with SIGKILL and started again empty)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.panel_store import events_since
from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.panel_client import PanelClient
from tests.support.redis_server import RedisServer
from tests.support.sockets import RecordingClient

OUTAGE_SECONDS = 4.0


@pytest.fixture
def instances() -> int:
    return 2


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"signaling": {"presence_ttl_seconds": 2}}


async def present(server: RunningServer, url: str, consult_id: str) -> list[tuple[str, str]]:
    async with server.http.get(
        f"{url}/api/v1/consults/{consult_id}", headers={"X-API-Key": API_KEY}
    ) as response:
        body: dict[str, Any] = await response.json()
    return sorted((member["role"], member["state"]) for member in body["present"])


async def until(check: Any, *, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_redis_restarted_mid_consult_loses_nothing_and_commands_resume(
    server: RunningServer, private_redis: RedisServer
) -> None:
    """Regression: with Redis stopped for 4 s, a patient admitted meanwhile never appeared
    in the other process's roster (publishing was fire-and-forget, presence never resynced)."""
    first, second = server.urls
    consult = await server.create_consult(
        admit_patient=False, medications=[{"name": "Metformin"}, {"name": "Lisinopril"}]
    )
    t = {role: token_of(link) for role, link in consult["links"].items()}
    medication_ids = [entity["id"] for entity in consult["medications"]]
    # As in the finding: the pharmacist on one instance, the clinician and patient on the other.
    pharmacist = RecordingClient()
    await pharmacist.connect(first, t["pharmacist"])
    assert (await pharmacist.join())["ok"]
    editor = PanelClient(first, t["pharmacist"])
    clinician = PanelClient(second, t["clinician"])
    await clinician.connect()
    patient = RecordingClient()
    await patient.connect(second, t["patient"])
    assert (await patient.join())["waiting"] is True
    waiting = (await pharmacist.wait_for("waiting-room"))["waiting"]
    await pharmacist.wait_for("participant-joined")  # the clinician
    # A second consult, whose only participant is held by the second instance.
    other = await server.create_consult()
    elsewhere = RecordingClient()
    await elsewhere.connect(second, token_of(other["links"]["clinician"]))
    assert (await elsewhere.join())["ok"]
    # What an instance knows of the others' participants is one heartbeat old at most.
    await asyncio.sleep(1.0)
    acknowledged: list[int] = []
    try:
        await asyncio.to_thread(private_redis.stop)
        # During the outage: the pharmacist admits the patient held by the other instance,
        # and the clinician goes on editing.
        assert await pharmacist.sio.call("admit", {"participant_id": waiting[0]["id"]}) == {
            "ok": True
        }
        for index in range(5):
            await clinician.mutate(
                {
                    "mutation_id": f"during-{index}",
                    "op": "set",
                    "entity": "medication",
                    "entity_id": medication_ids[index % 2],
                    "field": "notes",
                    "value": f"during the outage {index}",
                }
            )
            result = clinician.results[f"during-{index}"]
            assert result["ok"], result
            acknowledged.append(result["seq"])
        # Ended through the first instance while Redis is down.
        async with server.http.post(
            f"{first}/api/v1/consults/{other['id']}/end",
            json={"reason": "ended during the outage"},
            headers={"X-API-Key": API_KEY},
        ) as response:
            assert response.status == 200
        await asyncio.sleep(OUTAGE_SECONDS)
        # On the event loop's thread: a child dies with the thread that started it.
        private_redis.start()

        # The "end" crossed once Redis was back.
        ended = await elsewhere.wait_for("consult-ended", timeout=15)
        assert ended["reason"] == "ended during the outage"
        # So did the admission: the patient is in the call, and in the pharmacist's roster.
        admitted = await patient.wait_for("admitted", timeout=15)
        assert {p["role"] for p in admitted["roster"]} == {"pharmacist", "clinician"}
        patient_id = admitted["self"]["id"]

        async def pharmacist_sees_patient() -> bool:
            return any(
                data["participant"]["id"] == patient_id
                for name, data in pharmacist.events
                if name == "participant-joined"
            )

        await until(pharmacist_sees_patient, timeout=15, what="participant-joined (patient)")
        expected = [("clinician", "in-call"), ("patient", "in-call"), ("pharmacist", "in-call")]
        for url in server.urls:

            async def everyone_present(url: str = url) -> bool:
                return await present(server, url, consult["id"]) == expected

            await until(everyone_present, timeout=15, what=f"present via {url}")
        # The relay across instances works again by itself (a signal sent before the other
        # instance's Socket.IO listener has subscribed again is lost, as on any network;
        # WebRTC negotiation resends what it needs).
        pharmacist_id = next(p["id"] for p in admitted["roster"] if p["role"] == "pharmacist")

        async def relayed() -> bool:
            sent = await pharmacist.sio.call("signal", {"to": patient_id, "candidate": None})
            assert sent == {"ok": True}
            try:
                return bool((await patient.wait_for("signal", timeout=1))["from"] == pharmacist_id)
            except TimeoutError:
                return False

        await until(relayed, timeout=15, what="a signal relayed across instances")

        # Nothing acknowledged was lost: the log has every edit, and a client on the other
        # instance catches up with one sync.
        await editor.connect()
        assert editor.seq >= max(acknowledged)
        async with server.state.sessions() as session:
            events = await events_since(session, consult["id"], 0)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert {e["mutation_id"] for e in events} >= {f"during-{i}" for i in range(5)}

        # An "end" sent to one instance still reaches the participants of the other.
        async with server.http.post(
            f"{first}/api/v1/consults/{consult['id']}/end",
            json={"reason": "done"},
            headers={"X-API-Key": API_KEY},
        ) as response:
            assert response.status == 200
        assert (await patient.wait_for("consult-ended", timeout=10))["reason"] == "done"
    finally:
        if not private_redis.running:
            private_redis.start()
        for client in (pharmacist, patient, elsewhere):
            if client.sio.connected:
                await client.sio.disconnect()
        await clinician.disconnect()
        await editor.disconnect()
