"""Signed lifecycle webhooks from the database outbox, delivered with retries to a receiver
on loopback: in order per consult with a gap-free sequence, once per event with two
instances, and after a crash of the server (SIGKILL) while the receiver was down."""

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, text

from models.consults import create_consult
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from models.tables import WebhookOutbox, WebhookState
from server.api_keys import hash_key
from server.config import WebhookSettings
from server.webhooks import WebhookSender, verify_signature
from tests.conftest import API_KEY, TOKEN_SECRET, RunningServer, token_of
from tests.support.database import private_postgres_database
from tests.support.review import tell_review
from tests.support.server_process import free_port, serving
from tests.support.sockets import joined

SECRET = "webhook-secret-0123456789"


class Receiver:
    """Fails the first `failures` attempts of every event, then accepts (after `delay`)."""

    def __init__(self, failures: int, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.attempts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = json.loads(body)
        self.attempts.append({"event": event, "headers": dict(request.headers), "body": body})
        self.changed.set()
        tries = sum(1 for a in self.attempts if a["event"]["id"] == event["id"])
        if tries <= self.failures:
            return web.Response(status=503)
        await asyncio.sleep(self.delay)
        self.accepted.append(event)
        self.changed.set()
        return web.Response(status=204)

    async def wait_for_count(self, count: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.accepted) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_for(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.accepted:
                    if event["type"] == event_type:
                        return event
                self.changed.clear()
                await self.changed.wait()


async def listen(hooks: Receiver, port: int = 0) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hooks", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver(failures=2)
    runner, url = await listen(hooks)
    yield hooks, url
    await runner.cleanup()


@pytest.fixture
def config_overrides(receiver: tuple[Receiver, str]) -> dict[str, dict[str, Any]]:
    return {
        "webhooks": {
            "url": receiver[1],
            "secret": SECRET,
            "initial_backoff_seconds": 0.05,
            "max_attempts": 4,
        }
    }


async def test_lifecycle_events_arrive_signed_after_retries(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    consult = await server.create_consult(patient_name="Maria Lopez")
    created = await hooks.wait_for("consult.created")
    assert created["consult_id"] == consult["id"]
    async with joined(server.base_url, token_of(consult["links"]["pharmacist"])):
        await hooks.wait_for("consult.opened")
        await hooks.wait_for("consult.live")
        joined_event = await hooks.wait_for("participant.joined")
        assert joined_event["data"]["role"] == "pharmacist"
    left = await hooks.wait_for("participant.left")
    assert left["data"]["reason"] == "disconnected"
    await server.end_consult(consult["id"], reason="Review complete")
    ended = await hooks.wait_for("consult.ended")
    assert ended["data"] == {"reason": "Review complete", "ended_by": "clinic"}

    for attempt in hooks.attempts:
        headers = attempt["headers"]
        assert headers["X-MTM-Event"] == attempt["event"]["type"]
        assert verify_signature(
            SECRET, headers["X-MTM-Signature"], attempt["body"], now=server.clock()
        )
        assert not verify_signature(
            "another-secret-0123456789",
            headers["X-MTM-Signature"],
            attempt["body"],
            now=server.clock(),
        )
        # No names (PHI) in webhooks.
        assert b"Maria" not in attempt["body"]
    created_attempts = [
        a["headers"]["X-MTM-Attempt"] for a in hooks.attempts if a["event"]["id"] == created["id"]
    ]
    assert created_attempts == ["1", "2", "3"]


async def test_delivery_gives_up_after_max_attempts(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    hooks.failures = 100
    await server.create_consult()
    async with asyncio.timeout(10):
        while len(hooks.attempts) < 4:
            hooks.changed.clear()
            await hooks.changed.wait()
    await asyncio.sleep(0.5)
    assert len(hooks.attempts) == 4 and hooks.accepted == []


def in_order_per_consult(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    sequences: dict[str, list[int]] = {}
    for event in events:
        sequences.setdefault(event["consult_id"], []).append(event["sequence"])
    return sequences


async def test_each_consult_numbers_its_events_and_they_arrive_in_that_order(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    hooks.failures = 1  # every event needs a retry: order must hold through them
    first = await server.create_consult()
    second = await server.create_consult()
    async with joined(server.base_url, token_of(first["links"]["pharmacist"])):
        await hooks.wait_for("participant.joined")
    await server.end_consult(first["id"])
    await hooks.wait_for("consult.documents_ready")
    # created, opened, live, joined, left, ended, documents_ready; the second's created.
    await hooks.wait_for_count(8)
    accepted = in_order_per_consult(hooks.accepted)
    assert accepted == {first["id"]: [1, 2, 3, 4, 5, 6, 7], second["id"]: [1]}
    # One at a time per consult: no attempt of an event before the previous one arrived.
    attempted = in_order_per_consult([attempt["event"] for attempt in hooks.attempts])
    assert attempted[first["id"]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]


async def test_an_event_exists_only_if_its_transaction_commits(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    hooks.failures = 0
    consult = await server.create_consult()
    with pytest.raises(RuntimeError):
        async with server.state.sessions() as session, session.begin():
            await server.state.webhooks.emit(session, "consult.live", consult["id"])
            raise RuntimeError("the change failed")
    await server.end_consult(consult["id"])
    await hooks.wait_for("consult.documents_ready")
    assert [(e["type"], e["sequence"]) for e in hooks.accepted] == [
        ("consult.created", 1),
        ("consult.ended", 2),  # no gap: the rolled-back event took no number
        ("consult.documents_ready", 3),
    ]


async def test_several_instances_deliver_each_event_exactly_once(
    database_url: tuple[str, str | None],
) -> None:
    """Three start at the same instant on an outbox full of due events: each claims with
    `FOR UPDATE SKIP LOCKED`, so no event is sent twice and each consult's stay in order."""
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    hooks = Receiver(failures=0, delay=0.02)
    runner, hook_url = await listen(hooks)
    settings = WebhookSettings(url=hook_url, secret=SECRET, initial_backoff_seconds=0.05)
    engines = [make_engine(url, schema=schema) for _ in range(3)]
    await upgrade_to_head(engines[0])
    instances = [WebhookSender(settings, make_sessionmaker(engine)) for engine in engines]
    try:
        now = dt.datetime.now(dt.UTC)
        async with make_sessionmaker(engines[0])() as session, session.begin():
            for n in range(8):
                consult = await create_consult(
                    session, clinic="north", patient_name=f"Patient {n}", scheduled_at=now,
                    notes=None, now=now,
                )  # fmt: skip
                for kind in ("consult.created", "consult.opened", "consult.live", "consult.ended"):
                    await instances[n % 3].emit(session, kind, consult.id)
        for engine in engines:  # a connection ready in each pool: the claims start together
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        await asyncio.gather(*(instance.start() for instance in instances))
        await hooks.wait_for_count(32)
        await asyncio.sleep(1.5)  # a second delivery would come within a poll or two
    finally:
        for instance in instances:
            await instance.stop()
        for engine in engines:
            await engine.dispose()
        await runner.cleanup()
    ids = [attempt["event"]["id"] for attempt in hooks.attempts]
    assert len(ids) == len(set(ids)) == 32
    assert all(
        sequence == [1, 2, 3, 4] for sequence in in_order_per_consult(hooks.accepted).values()
    )


async def test_a_pending_delivery_survives_a_crash_and_arrives_exactly_once(
    tmp_path: Path,
) -> None:
    """The receiver is down; the server retries, is killed with SIGKILL, and starts again
    (the receiver is back): the event arrives once, its attempts counted across the crash."""
    hooks = Receiver(failures=0)
    port = free_port()
    async with private_postgres_database("mtm_webhooks") as (url, _dsn):
        settings = {
            "MTM_DATABASE__URL": url,
            "MTM_PATHS__VAR_DIR": str(tmp_path / "var"),
            "MTM_AUTH__TOKEN_SECRET": TOKEN_SECRET,
            "MTM_API__KEYS": json.dumps(
                [{"clinic": "north", "display_name": "North", "hash": hash_key(API_KEY)}]
            ),
            "MTM_WEBHOOKS__URL": f"http://127.0.0.1:{port}/hooks",
            "MTM_WEBHOOKS__SECRET": SECRET,
            "MTM_WEBHOOKS__INITIAL_BACKOFF_SECONDS": "0.1",
            "MTM_WEBHOOKS__MAX_BACKOFF_SECONDS": "0.5",
            "MTM_WEBHOOKS__MAX_ATTEMPTS": "30",
        }
        output = tmp_path / "server.log"
        async with serving(settings, output) as first:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{first.base_url}/api/v1/consults",
                    json={"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00Z"},
                    headers={"X-API-Key": API_KEY},
                ) as answer,
            ):
                assert answer.status == 201, await answer.text()
                consult = await answer.json()
            engine = make_engine(url)
            sessions = make_sessionmaker(engine)
            try:
                async with asyncio.timeout(20):
                    while (attempts := await outbox_attempts(sessions)) < 3:
                        await asyncio.sleep(0.1)
                await first.kill()
                assert attempts >= 3
                runner, _ = await listen(hooks, port)
                try:
                    async with serving(settings, output):
                        created = await hooks.wait_for("consult.created")
                        await asyncio.sleep(2)  # time for a second delivery, which must not come
                    assert created["consult_id"] == consult["id"] and created["sequence"] == 1
                    assert len(hooks.attempts) == 1
                    assert int(hooks.attempts[0]["headers"]["X-MTM-Attempt"]) > attempts
                    async with sessions() as session:
                        states = (await session.execute(select(WebhookOutbox.state))).scalars()
                        assert list(states) == [WebhookState.DELIVERED.value]
                finally:
                    await runner.cleanup()
            finally:
                await engine.dispose()


async def outbox_attempts(sessions: Any) -> int:
    async with sessions() as session:
        return int(
            (await session.execute(select(WebhookOutbox.attempts))).scalar_one_or_none() or 0
        )


async def test_documents_ready_follows_the_end_with_where_to_fetch_each_document(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    hooks.failures = 0
    by_clinic = await server.create_consult(medications=[{"name": "Metformin"}])
    await server.end_consult(by_clinic["id"])
    in_call = await server.create_consult(medications=[{"name": "Aspirin"}, {"name": "Statin"}])
    async with joined(server.base_url, token_of(in_call["links"]["pharmacist"])) as (host, _):
        assert await host.sio.call("end-consult", {"reason": "Review complete"}) == {"ok": True}
    ready = {}
    async with asyncio.timeout(10):
        while len(ready) < 2:
            ready = {
                e["consult_id"]: e for e in hooks.accepted if e["type"] == "consult.documents_ready"
            }
            hooks.changed.clear()
            if len(ready) < 2:
                await hooks.changed.wait()
    for consult, seq in [(by_clinic, 1), (in_call, 2)]:
        data = ready[consult["id"]]["data"]
        assert data["seq"] == seq
        assert set(data["documents"]) == {
            "summary_html", "summary_pdf", "prescriber_letter_html", "prescriber_letter_pdf",
            "fhir_bundle",
        }  # fmt: skip
        # Each path is the REST API's, at the seq the consult ended at.
        async with server.http.get(
            server.base_url + data["documents"]["summary_html"], headers={"X-API-Key": API_KEY}
        ) as response:
            assert response.status == 200
            assert consult["medications"][0]["data"]["name"] in await response.text()
    ended = [e for e in hooks.accepted if e["type"] == "consult.ended"]
    order = [e["type"] for e in hooks.accepted if e["consult_id"] == by_clinic["id"]]
    assert order.index("consult.ended") < order.index("consult.documents_ready") and ended


async def test_a_prescribers_answer_is_announced(
    receiver: tuple[Receiver, str], server: RunningServer
) -> None:
    hooks, _ = receiver
    hooks.failures = 0
    review = await tell_review(server)
    url = f"{server.base_url}/api/v1/consults/{review.consult_id}/documents/prescriber-letter.html"
    async with server.http.get(url, headers={"X-API-Key": API_KEY}) as response:
        link = re.findall(r'href="(http://[^"]+/r/[^"]+)"', await response.text())[-1]
    async with server.http.post(link, data={"decision": "declined", "name": "Dr. Chen"}) as answer:
        assert answer.status == 200
    event = await hooks.wait_for("recommendation.answered")
    assert event["data"]["recommendation_id"] == review.ids["check_labs"]
    assert event["data"]["decision"] == "declined"
    assert event["data"]["documents"]["summary_pdf"].endswith(f"?seq={event['data']['seq']}")
    attempt = next(a for a in hooks.attempts if a["event"]["id"] == event["id"])
    assert b"Chen" not in attempt["body"]  # ids, never names
