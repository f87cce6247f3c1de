"""Postgres unreachable for ten seconds during a consult.

The server reaches Postgres through a loopback TCP proxy (tests/support/tcp_proxy.py) that
the test cuts (every connection reset, new ones refused) and restores; the shared Postgres
keeps running. Three participants keep editing through the outage. What must hold: each
edit made meanwhile is answered `database_unavailable` ("not saved yet") and stays queued,
nothing is acknowledged that was not committed, no client sees `internal_error`, the logs
carry no health information, and once the database is back every queued edit applies
exactly once and every client converges on the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.integration.test_panel_sync import all_events, database_view, seen_by, tokens
from tests.support.js_panel_client import JsPanelClient
from tests.support.tcp_proxy import TcpProxy, postgres_proxy, through

OUTAGE_SECONDS = 10
ROLES = ("pharmacist", "clinician", "patient")
PATIENT_NAME = "Wilhelmina Outagecase"


@pytest.fixture
async def proxy(database_url: tuple[str, str | None]) -> AsyncIterator[TcpProxy]:
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    async with postgres_proxy(url) as proxy:
        yield proxy


@pytest.fixture
def config_overrides(database_url: tuple[str, str | None], proxy: TcpProxy) -> dict[str, Any]:
    """The server's database URL goes through the proxy."""
    return {"database": {"url": through(proxy, database_url[0])}}


async def edit(client: JsPanelClient, role: str, medication_id: str, n: int) -> str:
    """One remark through the browser store (store.setField); returns its mutation_id."""
    field = "patient_note" if role == "patient" else "notes"
    return await client.set_field("medication", medication_id, field, f"Outage remark {role} {n}")


async def test_edits_during_a_database_outage_wait_queued_then_apply_exactly_once(
    server: RunningServer, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    consult = await server.create_consult(
        patient_name=PATIENT_NAME, medications=[{"name": "Metformin", "strength": "500 mg"}]
    )
    assert proxy.connections > 0  # the server's database path is the proxy
    t = tokens(consult)
    # Each participant's panel is the browser's store module, run by Node; it retries a
    # "not saved yet" mutation every 0.5 s.
    clients = {role: JsPanelClient(server.base_url, t[role], retry_seconds=0.5) for role in ROLES}
    # role → the mutation_id of each edit n, as the store named it.
    ids: dict[str, list[str]] = {role: [] for role in ROLES}
    try:
        for client in clients.values():
            await client.connect()
        medication = next(iter(clients["pharmacist"].entities))
        for role, client in clients.items():
            ids[role].append(await edit(client, role, medication, 0))
        assert all(client.results[ids[role][0]]["ok"] for role, client in clients.items())

        await proxy.cut()
        outage = asyncio.get_running_loop().time()
        sent_during_outage = 0
        for n in range(1, 4):
            for role, client in clients.items():
                ids[role].append(await edit(client, role, medication, n))
                sent_during_outage += 1
            await asyncio.sleep(OUTAGE_SECONDS / 4)
        await asyncio.sleep(max(0.0, outage + OUTAGE_SECONDS - asyncio.get_running_loop().time()))
        # Nothing of the outage was acknowledged: all still queued, each answered "not yet".
        for role, client in clients.items():
            await client.refresh()
            assert [m["mutation_id"] for m in client.queue] == ids[role][1:]
            assert not any(mutation_id in client.results for mutation_id in ids[role][1:])
            assert {code for _, code in client.not_saved} == {"database_unavailable"}
            # Sent again by the client on its own, not only when the test added a mutation.
            assert len(client.not_saved) > 3
        await proxy.restore()

        for client in clients.values():
            await client.wait_until_sent(timeout=30)
        database = await database_view(server, consult["id"])
        for role, client in clients.items():
            await client.wait_for_seq(database["seq"])
            assert client.view() == seen_by(role, database)
        events = await all_events(server, consult["id"])
        assert [e["seq"] for e in events] == list(range(1, database["seq"] + 1))
        for role, client in clients.items():
            for mutation_id in ids[role]:
                result = client.results[mutation_id]
                assert result["ok"], result
                logged = [
                    e["seq"]
                    for e in events
                    if e["mutation_id"] == mutation_id and e["actor"]["id"] == client.self_id
                ]
                assert logged == [result["seq"]]  # exactly once, and acknowledged as logged
        # Both editors' last remarks were queued together; the one applied last stands.
        notes = [e["new"] for e in events if e["field"] == "notes" and e["outcome"] == "applied"]
        assert database["entities"][medication]["data"]["notes"] == notes[-1]
        assert notes[-1] in {"Outage remark pharmacist 3", "Outage remark clinician 3"}
    finally:
        for client in clients.values():
            await client.close()

    logged = [logging.Formatter().format(record) for record in caplog.records]
    assert not [line for line in logged if "internal_error" in line or "Traceback" in line]
    for secret in ("Outage remark", "Wilhelmina", "Outagecase", "Metformin"):
        assert not [line for line in logged if secret in line]
    assert any("database unavailable" in line for line in logged)
