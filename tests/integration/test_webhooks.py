"""Signed lifecycle webhooks, delivered with retries to a receiver on loopback."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from server.webhooks import verify_signature
from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.review import tell_review
from tests.support.sockets import joined

SECRET = "webhook-secret-0123456789"


class Receiver:
    """Fails the first `failures` attempts of every event, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
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
        self.accepted.append(event)
        return web.Response(status=204)

    async def wait_for(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.accepted:
                    if event["type"] == event_type:
                        return event
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hooks", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield hooks, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
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
