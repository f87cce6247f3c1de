"""No protected health information and no secret in any log line of the server process.

`mtm-consult serve` runs as a subprocess on a Postgres database of its own, logging at DEBUG.
A whole consult goes through it with distinctive names, drugs and notes: REST create with
initial medications, Socket.IO join and waiting room, edits by the pharmacist, the clinician
and the patient, a refused edit, the audit trail, the end. Real database faults are provoked
on the way: a unique violation on the change log (another writer took the next seq), and
every connection of the server killed by Postgres while a new patient's INSERT waits on a
lock. Then every line the process wrote is
searched for each distinctive string, each join token and each key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy.exc import IntegrityError

from models.consults import create_consult as create_consult_row
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from models.tables import Consult
from server.api_keys import hash_key
from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient

API_KEY = "privacy-clinic-key-" + secrets.token_hex(16)
TOKEN_SECRET = "privacy-token-secret-" + secrets.token_hex(24)
METRICS_TOKEN = "privacy-metrics-token-" + secrets.token_hex(16)

# Strings that stand for health information: none may appear in any log line.
PATIENT = "Zebulon Quillfeather"
OTHER_PATIENT = "Philomena Grubbington"
NOTES = "Lives with daughter Ottoline Vandersnoot; prefers mornings"
PHARMACIST = "Ignatius Bellweather"
CLINICIAN = "Henrietta Fizzlewick"
INITIAL_MEDICATION = {
    "name": "Quixafloxin",
    "strength": "37 mg",
    "how_taken": "one capsule at moonrise",
    "why": "Frobnitz syndrome",
    "prescriber": "Dr. Wolfram Sprocketeer",
}
NEW_DRUG = "Zorbaxatrine"
RECOMMENDATION = "Switch Zorbaxatrine to Plimsolmab"
PATIENT_NOTE = "I crush the Quixafloxin into applesauce"
CLINICAL_NOTE = "Ask about Ovaltinequeue interactions"
FAULT_NOTE = "Poisonberry Wobblethwaite note"
DISTINCTIVE = [
    "Zebulon",
    "Quillfeather",
    "Philomena",
    "Grubbington",
    "Ottoline",
    "Vandersnoot",
    "Bellweather",
    "Fizzlewick",
    "Quixafloxin",
    "moonrise",
    "Frobnitz",
    "Sprocketeer",
    "Zorbaxatrine",
    "Plimsolmab",
    "applesauce",
    "Ovaltinequeue",
    "Poisonberry",
    "Wobblethwaite",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base_url: str
    database: str  # the Postgres database the server uses
    admin_dsn: str  # the same database, for the test's own connection
    output: Path
    process: asyncio.subprocess.Process

    def lines(self) -> list[str]:
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql+asyncpg://"):
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    # A database of its own: the server's connections can then be killed without touching
    # anybody else's.
    database = f"mtm_privacy_{secrets.token_hex(4)}"
    server_dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    maintenance = server_dsn.rsplit("/", 1)[0] + "/postgres"
    connection = await asyncpg.connect(maintenance)
    await connection.execute(f'CREATE DATABASE "{database}"')
    await connection.close()
    port = free_port()
    output = tmp_path / "server-output.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MTM_")}
    env.update(
        MTM_DATABASE__URL=url.rsplit("/", 1)[0] + f"/{database}",
        MTM_PATHS__VAR_DIR=str(tmp_path / "var"),
        MTM_SERVER__PORT=str(port),
        MTM_AUTH__TOKEN_SECRET=TOKEN_SECRET,
        MTM_API__KEYS=json.dumps(
            [{"clinic": "north", "display_name": "North Clinic", "hash": hash_key(API_KEY)}]
        ),
        MTM_LOGGING__LEVEL="DEBUG",
        MTM_METRICS__ENABLED="true",
        MTM_METRICS__TOKEN=METRICS_TOKEN,
        PYTHONUNBUFFERED="1",
    )
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    served = Served(
        base_url=f"http://127.0.0.1:{port}",
        database=database,
        admin_dsn=server_dsn.rsplit("/", 1)[0] + f"/{database}",
        output=output,
        process=process,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert process.returncode is None, "\n".join(served.lines()[-30:])
                try:
                    async with http.get(f"{served.base_url}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # a clean stop: its shutdown logs count too
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        connection = await asyncpg.connect(maintenance)
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.close()


async def create_consult(
    http: aiohttp.ClientSession, served: Served, **body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{served.base_url}/api/v1/consults", json=body, headers={"X-API-Key": API_KEY}
    ) as answer:
        text = await answer.text()
        for word in DISTINCTIVE:
            assert word not in text or answer.status == 201, (word, text)
        return answer.status, json.loads(text)


async def connected(served: Served, token: str) -> RecordingClient:
    client = RecordingClient()
    await client.connect(served.base_url, token)
    return client


async def mutate(client: RecordingClient, **mutation: Any) -> dict[str, Any]:
    mutation.setdefault("mutation_id", secrets.token_hex(6))
    result: dict[str, Any] = await client.sio.call("mutate", mutation, timeout=10)
    return result


async def test_a_whole_consult_with_database_faults_logs_no_health_data_and_no_secret(
    served: Served,
) -> None:
    async with aiohttp.ClientSession() as http:
        status, consult = await create_consult(
            http,
            served,
            patient_name=PATIENT,
            scheduled_at="2026-11-27T10:00:00+00:00",
            notes=NOTES,
            medications=[INITIAL_MEDICATION],
        )
        assert status == 201, consult
        tokens = {role: token_of(link) for role, link in consult["links"].items()}
        async with http.get(consult["links"]["patient"]) as page:
            assert page.status == 200

        pharmacist = await connected(served, tokens["pharmacist"])
        clinician = await connected(served, tokens["clinician"])
        patient = await connected(served, tokens["patient"])
        try:
            assert (await pharmacist.join(PHARMACIST))["ok"]
            assert (await clinician.join(CLINICIAN))["ok"]
            waiting = await patient.join(PATIENT)
            assert waiting["ok"] and waiting["waiting"] is True
            patient_id = waiting["self"]["id"]
            assert (await pharmacist.sio.call("admit", {"participant_id": patient_id}))["ok"]
            admitted = await patient.wait_for("admitted", timeout=10)
            medication = admitted["panel"]["entities"][0]
            assert medication["data"]["name"] == INITIAL_MEDICATION["name"]

            added = await mutate(
                pharmacist,
                op="add",
                entity="medication",
                value={"name": NEW_DRUG, "strength": "12.5 mg", "notes": CLINICAL_NOTE},
            )
            assert added["ok"], added
            drug = added["entity"]
            assert (
                await mutate(
                    clinician,
                    op="set",
                    entity="medication",
                    entity_id=drug["id"],
                    field="notes",
                    value=f"{CLINICAL_NOTE} (seen)",
                )
            )["ok"]
            recommendation = await mutate(
                pharmacist,
                op="add",
                entity="recommendation",
                value={"text": RECOMMENDATION, "to": "prescriber"},
            )
            assert recommendation["ok"], recommendation
            decided = await mutate(
                clinician,
                op="set",
                entity="recommendation",
                entity_id=recommendation["entity"]["id"],
                field="status",
                value="accepted",
                base_version=recommendation["entity"]["versions"]["status"],
            )
            assert decided["ok"], decided
            assert (
                await mutate(
                    patient,
                    op="set",
                    entity="medication",
                    entity_id=medication["id"],
                    field="patient_note",
                    value=PATIENT_NOTE,
                )
            )["ok"]
            refused = await mutate(
                patient,
                op="set",
                entity="medication",
                entity_id=drug["id"],
                field="notes",
                value=f"{PATIENT_NOTE} again",
            )
            assert refused["error"]["code"] == "forbidden"
            history = await clinician.sio.call("panel-history", {"entity_id": drug["id"]})
            assert history["ok"]

            # Fault 1, a unique violation: another writer took the next seq of the change log
            # (as a second server process would). The edit fails with the row it tried to
            # insert, which holds the note and the actor's name.
            admin = await asyncpg.connect(served.admin_dsn)
            try:
                next_seq = 1 + await admin.fetchval(
                    "SELECT last_seq FROM consult WHERE id = $1", consult["id"]
                )
                await admin.execute(
                    "INSERT INTO change_event (consult_id, seq, at, actor_id, actor_name,"
                    " actor_role, op, entity_type, entity_id, outcome)"
                    " VALUES ($1, $2, now(), NULL, 'other writer', 'pharmacist', 'set',"
                    " 'medication', $3, 'applied')",
                    consult["id"],
                    next_seq,
                    drug["id"],
                )
                failed = await mutate(
                    pharmacist,
                    op="set",
                    entity="medication",
                    entity_id=drug["id"],
                    field="notes",
                    value=FAULT_NOTE,
                )
                assert failed["ok"] is False, failed
                assert FAULT_NOTE not in json.dumps(failed)
                # The other writer finishes its commit (the change log is append-only).
                await admin.execute(
                    "UPDATE consult SET last_seq = $2 WHERE id = $1", consult["id"], next_seq
                )

                # Fault 2, a connection broken mid-statement: a REST create waits on a lock
                # the test holds on the consult table, then Postgres kills every connection
                # of the server (only this test's database has them), the waiting INSERT
                # with the new patient's name and notes included.
                holder = await asyncpg.connect(served.admin_dsn)
                try:
                    holding = holder.transaction()
                    await holding.start()
                    await holder.execute("LOCK TABLE consult IN ACCESS EXCLUSIVE MODE")
                    creating = asyncio.create_task(
                        create_consult(
                            http,
                            served,
                            patient_name=OTHER_PATIENT,
                            scheduled_at="2026-11-28T10:00:00+00:00",
                            notes=NOTES,
                            medications=[INITIAL_MEDICATION],
                        )
                    )
                    async with asyncio.timeout(10):
                        while not await admin.fetchval(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = $1 AND wait_event_type = 'Lock'",
                            served.database,
                        ):
                            await asyncio.sleep(0.02)
                    killed = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = $1 AND pid <> ALL($2::int[])",
                        served.database,
                        [admin.get_server_pid(), holder.get_server_pid()],
                    )
                    assert killed >= 1
                    await holding.rollback()
                finally:
                    await holder.close()
                status, _ = await creating
                assert status == 500, status
            finally:
                await admin.close()
            # The server recovers: edits and consults work again.
            after = await mutate(
                pharmacist,
                op="set",
                entity="medication",
                entity_id=drug["id"],
                field="notes",
                value=f"{FAULT_NOTE} retried",
            )
            assert after["ok"], after
            status, _ = await create_consult(
                http, served, patient_name=OTHER_PATIENT, scheduled_at="2026-11-28T11:00:00+00:00"
            )
            assert status == 201

            async with http.get(
                f"{served.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            ) as scraped:
                assert scraped.status == 200
            async with http.post(
                f"{served.base_url}/api/v1/consults/{consult['id']}/end",
                json={"reason": "review complete"},
                headers={"X-API-Key": API_KEY},
            ) as ended:
                assert ended.status == 200
            await patient.wait_for("consult-ended", timeout=10)
        finally:
            for client in (pharmacist, clinician, patient):
                if client.sio.connected:
                    await client.sio.disconnect()

    served.process.send_signal(signal.SIGINT)
    await asyncio.wait_for(served.process.wait(), 30)
    lines = served.lines()

    # Secrets: every join token, the API key, the token secret, the metrics token.
    secrets_seen = [*tokens.values(), API_KEY, TOKEN_SECRET, METRICS_TOKEN]
    leaks = [
        (word, line)
        for line in lines
        for word in [*DISTINCTIVE, *secrets_seen]
        if word.lower() in line.lower()
    ]
    assert leaks == [], "\n".join(f"{word!r} in {line}" for word, line in leaks[:10])

    # The log is there and says what happened, in JSON: so the search above searched it.
    records = [json.loads(line) for line in lines if line.startswith("{")]
    printed = [line for line in lines if not line.startswith("{")]
    assert printed == [f"MTM Consult listening on {served.base_url}"], printed
    events = {(r.get("event"), r.get("outcome")) for r in records}
    assert {("join", "admitted"), ("join", "waiting"), ("admit", "ok")} <= events, events
    assert ("mutate", "applied") in events and ("mutate", "refused") in events, events
    mutations = [r for r in records if r.get("event") == "mutate"]
    assert all(r["consult_id"] == consult["id"] and "duration_ms" in r for r in mutations)
    errors = [r for r in records if r["level"] == "ERROR" and "exception" in r]
    raised = json.dumps([r["exception"] for r in errors])
    assert "IntegrityError" in raised, errors
    assert "AdminShutdownError" in raised or "ConnectionDoesNotExistError" in raised, errors


async def test_a_failed_statement_never_carries_its_values(
    database_url: tuple[str, str | None],
) -> None:
    """The engine's own safeguard, apart from the log format: the text of a database error
    (which any code may log or print) says the parameters are hidden."""
    engine = make_engine(database_url[0], schema=database_url[1])
    try:
        await upgrade_to_head(engine)
        sessions = make_sessionmaker(engine)
        now = dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
        async with sessions() as session, session.begin():
            consult = await create_consult_row(
                session,
                clinic="north",
                patient_name=PATIENT,
                scheduled_at=now,
                notes=NOTES,
                now=now,
            )
        with pytest.raises(IntegrityError) as failure:
            async with sessions() as session, session.begin():
                session.add(
                    Consult(
                        id=consult.id,
                        clinic="north",
                        patient_name=OTHER_PATIENT,
                        scheduled_at=now,
                        notes=NOTES,
                        created_at=now,
                    )
                )
        text = str(failure.value)
        assert "parameters hidden" in text, text
        assert OTHER_PATIENT not in text and "Ottoline" not in text, text
    finally:
        await engine.dispose()


async def test_the_access_log_cuts_long_paths(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with server.http.get(f"{server.base_url}/nowhere/{'a' * 5000}") as answer:
            assert answer.status == 404
    [record] = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(record.__dict__["path"]) == 200
    assert len(record.getMessage()) < 250
