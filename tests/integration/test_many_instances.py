"""Two instances behind nginx (deploy/nginx.conf, TLS): one consult, one instance; and what
must cross instances does (presence, the waiting room, admission, the relay, `end`, the REST
API's `present`)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import Config
from server.state import STATE
from signaling.cluster import ClusterRefused
from tests.conftest import API_KEY, FakeClock, RunningServer, start_instance, token_of
from tests.support.nginx import Nginx
from tests.support.sockets import RecordingClient, joined

ROLES = ("pharmacist", "clinician", "patient")


@pytest.fixture
def instances() -> int:
    return 2


@pytest.fixture
def site() -> Iterator[Nginx]:
    """nginx with its ports chosen; started by `proxy` once the instances listen."""
    nginx = Nginx([])
    yield nginx
    nginx.close()


@pytest.fixture
def config_overrides(site: Nginx) -> dict[str, dict[str, Any]]:
    # As docs/deploy.md sets them behind the proxy.
    return {"server": {"public_url": site.url, "trust_forwarded": True}}


@pytest.fixture
async def proxy(server: RunningServer, site: Nginx) -> AsyncIterator[Nginx]:
    site.instances = [url.removeprefix("http://") for url in server.urls]
    # On the event loop's thread, never a worker's: a child dies with the thread that started it.
    site.start()
    yield site


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


def holder(server: RunningServer, client: RecordingClient) -> int:
    """Which instance holds this client's connection."""
    sid = client.sio.get_sid()
    found = [
        index
        for index, app in enumerate(server.apps)
        if sid in app[STATE].signaling.router.sessions
    ]
    assert len(found) == 1, found
    return found[0]


async def rest(
    server: RunningServer, url: str, method: str, path: str, **body: Any
) -> dict[str, Any]:
    async with server.http.request(
        method, f"{url}/api/v1{path}", json=body or None, headers={"X-API-Key": API_KEY}
    ) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 200, answer
        return answer


async def through_proxy(proxy: Nginx, consult: dict[str, Any], role: str) -> RecordingClient:
    client = RecordingClient(ssl_verify=False)
    await client.connect(proxy.url, tokens(consult)[role], consult=consult["id"])
    ack = await client.join()
    assert ack["ok"] and not ack["waiting"], ack
    return client


async def test_every_participant_of_a_consult_reaches_the_same_instance(
    server: RunningServer, proxy: Nginx
) -> None:
    owners = []
    for _ in range(12):
        consult = await server.create_consult()
        clients = [await through_proxy(proxy, consult, role) for role in ROLES]
        try:
            where = {holder(server, client) for client in clients}
            assert len(where) == 1, f"consult {consult['id']} is served by {where}"
            owners.append(where.pop())
        finally:
            for client in clients:
                await client.sio.disconnect()
    # The consistent hash spreads consults over both instances (2 ** -11 to fail by chance).
    assert set(owners) == {0, 1}


async def test_a_rest_end_sent_to_the_other_instance_ends_the_consult_for_everyone(
    server: RunningServer, proxy: Nginx
) -> None:
    consult = await server.create_consult()
    clients = [await through_proxy(proxy, consult, role) for role in ROLES]
    owner = holder(server, clients[0])
    other = server.urls[1 - owner]
    try:
        # The other instance holds no connection of this consult, yet knows who is there.
        read = await rest(server, other, "GET", f"/consults/{consult['id']}")
        assert sorted(p["role"] for p in read["present"]) == sorted(ROLES)
        ended = await rest(
            server, other, "POST", f"/consults/{consult['id']}/end", reason="review complete"
        )
        assert ended["status"] == "ended"
        for client in clients:
            assert (await client.wait_for("consult-ended"))["reason"] == "review complete"
            await asyncio.wait_for(client.disconnected.wait(), 5)
        read = await rest(server, server.urls[owner], "GET", f"/consults/{consult['id']}")
        assert read["present"] == []
    finally:
        for client in clients:
            if client.sio.connected:
                await client.sio.disconnect()


async def test_participants_spread_over_two_instances_share_one_consult(
    server: RunningServer,
) -> None:
    """Regression: with the pharmacist on one process and the others on another, presence,
    the waiting room, admission, the relay (`unknown_recipient`), `end` and the REST API's
    `present` each lived in one process's memory."""
    first, second = server.urls
    consult = await server.create_consult(admit_patient=False)
    t = tokens(consult)
    async with joined(first, t["pharmacist"]) as (pharmacist, _):
        patient = RecordingClient()
        await patient.connect(second, t["patient"])
        assert (await patient.join())["waiting"] is True
        waiting = await pharmacist.wait_for("waiting-room")
        assert [p["role"] for p in waiting["waiting"]] == ["patient"]
        assert await pharmacist.sio.call(
            "admit", {"participant_id": waiting["waiting"][0]["id"]}
        ) == {"ok": True}
        admitted = await patient.wait_for("admitted")
        assert [p["role"] for p in admitted["roster"]] == ["pharmacist"]
        assert (await pharmacist.wait_for("participant-joined"))["participant"]["role"] == (
            "patient"
        )
        assert holder(server, pharmacist) == 0 and holder(server, patient) == 1
        async with joined(second, t["clinician"]) as (clinician, clinician_ack):
            assert {p["role"] for p in clinician_ack["roster"]} == {"pharmacist", "patient"}
            await pharmacist.wait_for("participant-joined")
            # The relay crosses instances both ways.
            clinician_id = clinician_ack["self"]["id"]
            pharmacist_id = admitted["roster"][0]["id"]
            assert await pharmacist.sio.call("signal", {"to": clinician_id, "candidate": None}) == {
                "ok": True
            }
            assert (await clinician.wait_for("signal"))["from"] == pharmacist_id
            await clinician.sio.call("signal", {"to": pharmacist_id, "candidate": None})
            assert (await pharmacist.wait_for("signal"))["from"] == clinician_id
            read = await rest(server, first, "GET", f"/consults/{consult['id']}")
            assert sorted((p["role"], p["state"]) for p in read["present"]) == [
                ("clinician", "in-call"),
                ("patient", "in-call"),
                ("pharmacist", "in-call"),
            ]
            # Removing someone held by the other instance.
            assert await pharmacist.sio.call("remove", {"participant_id": clinician_id}) == {
                "ok": True
            }
            assert "message" in await clinician.wait_for("removed")
            left = await pharmacist.wait_for("participant-left")
            assert left == {"participant_id": clinician_id, "reason": "removed"}
        # The pharmacist ends the consult: the patient, on the other instance, is told.
        assert await pharmacist.sio.call("end-consult", {"reason": "done"}) == {"ok": True}
        assert (await patient.wait_for("consult-ended"))["reason"] == "done"
        await asyncio.wait_for(patient.disconnected.wait(), 5)


async def test_an_instance_with_another_token_secret_refuses_to_start(
    server: RunningServer, config: Config, database_url: tuple[str, str | None], clock: FakeClock
) -> None:
    other = config.model_copy(
        update={"auth": config.auth.model_copy(update={"token_secret": "another-" + "y" * 32})}
    )
    with pytest.raises(ClusterRefused, match=r"^auth\.token_secret: differs from the secret"):
        await start_instance(other, database_url, clock)
    # The command line says so, naming the setting, and stops with status 2.
    settings = {
        # The test database without this test's schema: it must not be touched at all.
        "database": {"url": config.database.url, "auto_migrate": False},
        "redis": {"url": config.redis.url},
        "auth": {"token_secret": "another-" + "y" * 32},
        "server": {"uvloop": False},
    }
    path = Path(tempfile.mkdtemp()) / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "--config", str(path), "serve",
        "--host", "127.0.0.1", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "mtm-consult: auth.token_secret: differs from the secret" in stderr.decode()
