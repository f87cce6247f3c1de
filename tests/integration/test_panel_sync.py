"""The medication panel over Socket.IO: broadcast, permissions, conflicts, resync, and a
property test of convergence under random edits, disconnects and duplicate sends."""

import asyncio
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import audience, panel_store
from tests.conftest import RunningServer, token_of
from tests.support.cells import (
    CELL_PARAMS,
    SETUP_MEDICATION,
    SETUP_RECOMMENDATION,
    mutation_for,
)
from tests.support.js_panel_client import JsPanelClient
from tests.support.sockets import joined

INITIAL = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": "Lisinopril", "strength": "10 mg", "how_taken": "1 tablet in the morning"},
]


@pytest.fixture(params=[1, 2], ids=["one-instance", "two-instances"])
def instances(request: pytest.FixtureRequest) -> int:
    """Every test here runs against one instance, and against two sharing the database and
    Redis, with its clients spread over both (tests/conftest.py)."""
    return int(request.param)


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def database_view(server: RunningServer, consult_id: str) -> dict[str, Any]:
    async with server.state.sessions() as session:
        panel = await panel_store.snapshot(session, consult_id)
    return {"seq": panel["seq"], "entities": {e["id"]: e for e in panel["entities"]}}


def seen_by(role: str, view: dict[str, Any]) -> dict[str, Any]:
    snapshot = {"seq": view["seq"], "entities": list(view["entities"].values())}
    visible = audience.panel_for(role, snapshot)["entities"]
    return {"seq": view["seq"], "entities": {e["id"]: e for e in visible}}


async def all_events(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    async with server.state.sessions() as session:
        return await panel_store.events_since(session, consult_id, 0)


async def test_join_carries_the_panel_and_edits_reach_everyone(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"], "Ana P.") as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
        joined(server.base_url, t["patient"]) as (patient, pa_ack),
    ):
        assert pa_ack["panel"]["seq"] == 2
        med = pa_ack["panel"]["entities"][0]
        assert med["data"]["name"] == "Metformin"
        ack = await pharmacist.sio.call(
            "mutate",
            {
                "mutation_id": "ana-1",
                "op": "set",
                "entity": "medication",
                "entity_id": med["id"],
                "field": "strength",
                "value": "1000 mg",
                "base_version": med["versions"]["strength"],
            },
            timeout=5,
        )
        assert ack["ok"] and ack["seq"] == 3
        for client in (pharmacist, clinician, patient):
            got = await client.wait_for("panel-event")
            assert got["event"]["seq"] == 3
            assert got["event"]["actor"] == {
                "id": ph_ack["self"]["id"],
                "name": "Ana P.",
                "role": "pharmacist",
            }
            assert got["entity"]["data"]["strength"] == "1000 mg"


@pytest.mark.parametrize(("action", "role", "allowed"), CELL_PARAMS)
async def test_permission_cell_through_the_socket(
    server: RunningServer, action: str, role: str, allowed: bool
) -> None:
    consult = await server.create_consult()
    t = tokens(consult)
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        med = (
            await pharmacist.sio.call(
                "mutate",
                {"mutation_id": "s1", "op": "add", "entity": "medication",
                 "value": SETUP_MEDICATION},
                timeout=5,
            )
        )["entity"]  # fmt: skip
        rec = (
            await pharmacist.sio.call(
                "mutate",
                {"mutation_id": "s2", "op": "add", "entity": "recommendation",
                 "value": SETUP_RECOMMENDATION},
                timeout=5,
            )
        )["entity"]  # fmt: skip
        before = await database_view(server, consult["id"])
        async with joined(server.base_url, t[role]) as (actor, _):
            result = await actor.sio.call("mutate", mutation_for(action, med, rec), timeout=5)
            if allowed:
                assert result["ok"], result
                assert (await database_view(server, consult["id"]))["seq"] == before["seq"] + 1
            else:
                assert result["error"]["code"] == "forbidden"
                error = await actor.wait_for("error")
                assert error["event"] == "mutate" and error["code"] == "forbidden"
                assert await database_view(server, consult["id"]) == before


async def test_conflict_through_the_socket(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
    ):
        med = ack["panel"]["entities"][0]
        change = {
            "op": "set",
            "entity": "medication",
            "entity_id": med["id"],
            "field": "strength",
            "base_version": med["versions"]["strength"],
        }
        first, second = await asyncio.gather(
            pharmacist.sio.call("mutate", {**change, "mutation_id": "p", "value": "750 mg"}),
            clinician.sio.call("mutate", {**change, "mutation_id": "c", "value": "1000 mg"}),
        )
        results = sorted([first, second], key=lambda r: r["ok"])
        loser, winner = results
        assert winner["ok"] is True and loser["ok"] is False
        assert loser["error"]["code"] == "conflict"
        assert loser["current"]["value"] == winner["entity"]["data"]["strength"]
        view = await database_view(server, consult["id"])
        assert (
            view["entities"][med["id"]]["data"]["strength"] == winner["entity"]["data"]["strength"]
        )
        log = [(e["mutation_id"], e["outcome"]) for e in await all_events(server, consult["id"])]
        assert sorted(log[2:]) == sorted(
            [
                (winner["event"]["mutation_id"], "applied"),
                (loser["event"]["mutation_id"], "conflict"),
            ]
        )


async def test_patient_cannot_read_history_and_others_can(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["clinician"]) as (clinician, ack),
        joined(server.base_url, t["patient"]) as (patient, _),
    ):
        med_id = ack["panel"]["entities"][0]["id"]
        history = await clinician.sio.call("panel-history", {"entity_id": med_id}, timeout=5)
        assert history["ok"] and [e["op"] for e in history["events"]] == ["add"]
        refused = await patient.sio.call("panel-history", {"entity_id": med_id}, timeout=5)
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"


async def test_bad_mutations_through_the_socket(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    async with joined(server.base_url, tokens(consult)["pharmacist"]) as (client, ack):
        before = await database_view(server, consult["id"])
        for payload, code in [
            ("not an object", "invalid_mutation"),
            ({"mutation_id": "x", "op": "set", "entity": "pill"}, "invalid_mutation"),
            ({"mutation_id": "y", "op": "set", "entity": "medication", "entity_id": "m_nope",
              "field": "notes", "value": "x"}, "unknown_entity"),
        ]:  # fmt: skip
            result = await client.sio.call("mutate", payload, timeout=5)
            assert result["error"]["code"] == code
        other = await server.create_consult(medications=INITIAL, patient_name="Someone Else")
        async with joined(server.base_url, tokens(other)["pharmacist"]) as (_, other_ack):
            foreign = other_ack["panel"]["entities"][0]
            result = await client.sio.call(
                "mutate",
                {"mutation_id": "z", "op": "set", "entity": "medication",
                 "entity_id": foreign["id"], "field": "notes", "value": "x"},
                timeout=5,
            )  # fmt: skip
            assert result["error"]["code"] == "unknown_entity"
        assert await database_view(server, consult["id"]) == before


# -- convergence under random edits, disconnects, reconnects and duplicate sends ------------

ROLES = ("pharmacist", "clinician", "patient")
FIELDS_BY_ROLE = {
    "pharmacist": ["strength", "how_taken", "notes", "why", "status", "notes_audience"],
    "clinician": ["strength", "how_taken", "notes", "prescriber"],
    "patient": ["patient_how_taken", "patient_note", "patient_confirmation"],
}
STEP = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["edit", "edit", "edit", "add", "duplicate", "disconnect", "reconnect"]),
    st.integers(0, 10_000),
)


async def random_edit(client: JsPanelClient, role: str, rng: random.Random, n: int) -> None:
    """One edit through the browser store's own calls (store.add / store.setField), which
    choose the mutation id and, for compare-and-set fields, the version the store shows."""
    medications = [e for e in client.entities.values() if e["type"] == "medication"]
    if not medications or (role != "patient" and rng.random() < 0.15):
        await client.add("medication", {"name": f"Med {n}"})
        return
    med = rng.choice(medications)
    recommendations = [e for e in client.entities.values() if e["type"] == "recommendation"]
    if role == "pharmacist" and rng.random() < 0.25:
        # A proposed dose change, shared with the patient or kept to the care team.
        recommendation = {
            "text": f"Change {n}",
            "medication_id": med["id"],
            "change": "dose-change",
            "proposed": {"strength": f"{n} mg"},
            "audience": rng.choice(["patient", "care-team"]),
        }
        await client.add("recommendation", recommendation)
        return
    if role == "pharmacist" and recommendations and rng.random() < 0.2:
        rec = rng.choice(recommendations)
        await client.set_field(
            "recommendation", rec["id"], "audience", rng.choice(["patient", "care-team"])
        )
        return
    if role == "clinician" and recommendations and rng.random() < 0.4:
        rec = rng.choice(recommendations)
        await client.set_field(
            "recommendation", rec["id"], "status", rng.choice(["accepted", "declined"])
        )
        return
    field = rng.choice(FIELDS_BY_ROLE[role])
    value: Any = f"{field} {n}"
    if field == "status":
        value = rng.choice(["active", "on-hold", "stopped"])
    if field == "notes_audience":
        value = rng.choice(["patient", "care-team"])
    if field == "patient_confirmation":
        value = rng.choice(["confirmed", "corrected"])
    await client.set_field("medication", med["id"], field, value)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=5, max_size=30))
async def test_clients_converge_on_the_database(
    server: RunningServer, steps: list[tuple[int, str, int]]
) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    # Each participant's panel is the browser's store module, run by Node.
    clients = [JsPanelClient(server.base_url, t[role]) for role in ROLES]
    try:
        for client in clients:
            await client.connect()
        for n, (index, action, seed) in enumerate(steps):
            client, role, rng = clients[index], ROLES[index], random.Random(seed)
            if action == "disconnect":
                await client.disconnect()
            elif action == "reconnect" and not client.connected:
                await client.connect()
            elif action == "duplicate" and client.sent:
                await client.resend(rng.choice(client.sent))
            elif action in ("edit", "add"):
                await random_edit(client, role, rng, n)
        for client in clients:
            if not client.connected:
                await client.connect()
        database = await database_view(server, consult["id"])
        for client, role in zip(clients, ROLES, strict=True):
            await client.wait_for_seq(database["seq"])
            # Each sees the panel as their role may: the patient nothing care-team-only.
            assert client.view() == seen_by(role, database)
        events = await all_events(server, consult["id"])
        assert [e["seq"] for e in events] == list(range(1, database["seq"] + 1))
        for client in clients:
            for mutation_id, result in client.results.items():
                logged = [
                    e
                    for e in events
                    if e["mutation_id"] == mutation_id and e["actor"]["id"] == client.self_id
                ]
                if "seq" in result:
                    derived = [effect["event"]["seq"] for effect in result.get("effects", [])]
                    assert [e["seq"] for e in logged] == [result["seq"], *derived]
                else:
                    assert logged == []
    finally:
        for client in clients:
            await client.close()
