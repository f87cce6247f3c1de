"""Many participants joining at once (a clinic's morning): their link checks, join records
and panel snapshots share statements and transactions (models/batching.py), and each still
gets exactly its own answer; a refused one changes nothing for the others."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.tables import ConsentRecord, Consult, Participant
from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient

CONSULTS = 8
CARE_TEAM = ("pharmacist", "clinician")
LINK_CHECK = "participant.token_id, consult.status FROM participant JOIN consult"


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(engine.sync_engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(engine.sync_engine, "commit", commit)


async def connect_and_join(server: RunningServer, token: str) -> tuple[RecordingClient, Any]:
    client = RecordingClient()
    await client.connect(server.base_url, token)
    return client, await client.join()


async def test_a_burst_of_joins_shares_statements_and_each_gets_its_own_call(
    server: RunningServer,
) -> None:
    consults = [
        await server.create_consult(
            patient_name=f"Burst Patient {n}",
            medications=[{"name": f"Medication {n}", "strength": "5 mg"}],
            admit_patient=False,
        )
        for n in range(CONSULTS)
    ]
    medication = {consult["id"]: f"Medication {n}" for n, consult in enumerate(consults)}
    wanted = [
        (consult, role, token_of(consult["links"][role]))
        for consult in consults
        for role in CARE_TEAM
    ]
    with statements(server.state.engine) as seen:
        joined = await asyncio.gather(*(connect_and_join(server, token) for _, _, token in wanted))
    try:
        for (consult, role, _), (_, ack) in zip(wanted, joined, strict=True):
            assert ack["ok"] and ack["waiting"] is False, ack
            assert ack["consult"]["id"] == consult["id"]
            assert ack["self"]["role"] == role
            names = [entity["data"]["name"] for entity in ack["panel"]["entities"]]
            assert names == [medication[consult["id"]]], (names, consult["id"])
        link_checks = [s for s in seen if LINK_CHECK in s]
        snapshots = [s for s in seen if s.startswith("SELECT consult.id AS of_consult")]
        # Each connection's link and each joiner's panel: fewer statements than joiners;
        # and their joins recorded in fewer transactions.
        assert 0 < len(link_checks) < len(wanted)
        assert 0 < len(snapshots) < len(wanted)
        assert 0 < seen.count("COMMIT") < len(wanted)
        # A batch reads its participants together, not one statement per join.
        one_by_one = [s for s in seen if "WHERE participant.id = " in s]
        assert len(one_by_one) < len(wanted) // 2, one_by_one
        # Every join was recorded, each for its own participant.
        for consult in consults:
            status, in_call = await recorded(server, consult["id"])
            assert status == "live" and in_call == set(CARE_TEAM)
    finally:
        for client, _ in joined:
            await client.sio.disconnect()


async def test_a_refused_join_in_a_burst_leaves_the_others_joined(
    server: RunningServer,
) -> None:
    """A patient who has not accepted the consent is refused among care teams joining at
    the same moment: only that one is refused, and no consent is recorded for it."""
    consults = [
        await server.create_consult(patient_name=f"Refusal {n}", admit_patient=False)
        for n in range(4)
    ]
    clients = []
    care = [token_of(c["links"][role]) for c in consults for role in CARE_TEAM]
    patient = RecordingClient()
    await patient.connect(server.base_url, token_of(consults[0]["links"]["patient"]))
    try:
        for token in care:
            client = RecordingClient()
            await client.connect(server.base_url, token)
            clients.append(client)
        acks = await asyncio.gather(
            patient.join(consent=False), *(client.join() for client in clients)
        )
        assert acks[0]["ok"] is False and acks[0]["error"]["code"] == "consent_required"
        assert all(ack["ok"] and ack["waiting"] is False for ack in acks[1:]), acks
        for consult in consults:
            assert await recorded(server, consult["id"]) == ("live", set(CARE_TEAM))
        async with server.state.sessions() as session:
            consents = await session.scalar(
                select(func.count())
                .select_from(ConsentRecord)
                .where(ConsentRecord.participant_id == patient_id(consults[0]))
            )
        assert consents == 0
    finally:
        for client in [patient, *clients]:
            if client.sio.connected:
                await client.sio.disconnect()


def patient_id(consult: dict[str, Any]) -> str:
    return next(p["id"] for p in consult["participants"] if p["role"] == "patient")


async def recorded(server: RunningServer, consult_id: str) -> tuple[str, set[str]]:
    """The consult's status, and the roles recorded in the call (last seen set)."""
    async with server.state.sessions() as session:
        consult = await session.get(Consult, consult_id)
        assert consult is not None
        rows = await session.execute(
            select(Participant.role).where(
                Participant.consult_id == consult_id, Participant.last_seen_at.is_not(None)
            )
        )
        return consult.status, {role for (role,) in rows}


async def test_a_joiner_after_an_edit_gets_the_edit_not_the_snapshot_read_before(
    server: RunningServer,
) -> None:
    """Snapshots are read in batches (server/panel_service.py): one read just before an
    edit is never given to the next joiner, who gets the new state."""
    consult = await server.create_consult(
        medications=[{"name": "Metformin", "strength": "500 mg"}], admit_patient=False
    )
    pharmacist, first = await connect_and_join(server, token_of(consult["links"]["pharmacist"]))
    clinician = None
    try:
        med = first["panel"]["entities"][0]
        ack = await pharmacist.sio.call(
            "mutate",
            {
                "mutation_id": "burst-edit-1",
                "op": "set",
                "entity": "medication",
                "entity_id": med["id"],
                "field": "strength",
                "value": "1000 mg",
                "base_version": med["versions"]["strength"],
            },
            timeout=5,
        )
        assert ack["ok"], ack
        clinician, second = await connect_and_join(server, token_of(consult["links"]["clinician"]))
        assert second["panel"]["seq"] == ack["seq"] == first["panel"]["seq"] + 1
        assert second["panel"]["entities"][0]["data"]["strength"] == "1000 mg"
    finally:
        for client in (pharmacist, clinician):
            if client is not None:
                await client.sio.disconnect()
