"""Prometheus metrics at /metrics: off by default, behind a bearer token, and they move."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import METRICS
from tests.conftest import API_KEY, RunningServer, token_of
from tests.integration.test_signaling import refused_code
from tests.support.sockets import RecordingClient, joined

METRICS_TOKEN = "metrics-token-0123456789abcdef"
MEDICATIONS = [{"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"}]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"metrics": {"enabled": True, "token": METRICS_TOKEN}}


async def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    async with server.http.get(
        f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as answer:
        assert answer.status == 200
        assert answer.content_type == "text/plain"
        text = await answer.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_joins_edits_refusals_and_reconnects(
    server: RunningServer,
) -> None:
    consult = await server.create_consult(medications=MEDICATIONS)
    tokens = {role: token_of(link) for role, link in consult["links"].items()}
    before = await scrape(server)
    assert value(before, "mtm_consults_live") == 0
    async with (
        joined(server.base_url, tokens["pharmacist"]) as (pharmacist, ack),
        joined(server.base_url, tokens["patient"]) as (patient, _),
    ):
        medication = ack["panel"]["entities"][0]
        for n in range(3):
            result = await pharmacist.sio.call(
                "mutate",
                {
                    "mutation_id": f"edit-{n}",
                    "op": "set",
                    "entity": "medication",
                    "entity_id": medication["id"],
                    "field": "notes",
                    "value": f"note {n}",
                },
                timeout=5,
            )
            assert result["ok"], result
        refused = await patient.sio.call(
            "mutate",
            {
                "mutation_id": "patient-1",
                "op": "set",
                "entity": "medication",
                "entity_id": medication["id"],
                "field": "notes",
                "value": "mine",
            },
            timeout=5,
        )
        assert refused["error"]["code"] == "forbidden"
        during = await scrape(server)
        assert value(during, "mtm_consults_live") == 1
        assert value(during, "mtm_participants_connected", state="in-call") == 2
        assert value(during, "mtm_edits_applied_total") == 3
        assert value(during, "mtm_mutations_refused_total", code="forbidden") == 1
        assert value(during, "mtm_mutation_ack_seconds_count") == 4
        assert value(during, "mtm_panel_writer_batch_size_count") >= 1
        assert value(during, "mtm_panel_writer_batch_size_sum") >= 3
        assert value(during, "mtm_panel_writer_commit_seconds_count") >= 1
        assert value(during, "mtm_reconnects_total") == 0

    # The patient's connection drops, and they come back: a reconnect.
    client = RecordingClient()
    await client.connect(server.base_url, tokens["patient"])
    try:
        assert (await client.join())["ok"]
        back = await scrape(server)
        assert value(back, "mtm_reconnects_total") == 1
        assert value(back, "mtm_participants_connected", state="in-call") == 1
    finally:
        await client.sio.disconnect()

    # Others count through the application's Metrics; every logged error counts by kind.
    server.app[METRICS].rate_limit_hit("events_per_connection")
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logging.getLogger("tests.metrics").exception("a failure")
    after = await scrape(server)
    assert value(after, "mtm_rate_limited_total", limit="events_per_connection") == 1
    assert value(after, "mtm_errors_total", kind="ConnectionResetError") == 1
    assert value(after, "mtm_consults_live") == 0
    # No series names a consult or a participant.
    assert not any(consult["id"] in str(labels) for _, labels in after)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789abcdef", METRICS_TOKEN, f"Basic {METRICS_TOKEN}"],
)
async def test_metrics_are_refused_without_the_token(
    server: RunningServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with server.http.get(f"{server.base_url}/metrics", headers=headers) as answer:
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        body = await answer.json()
    assert body["error"]["code"] == "unauthorized"
    assert "mtm_" not in str(body)


@pytest.mark.parametrize("config_overrides", [{}])
async def test_metrics_are_off_by_default(server: RunningServer) -> None:
    async with server.http.get(
        f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as answer:
        assert answer.status == 404
        assert "mtm_" not in await answer.text()


@pytest.fixture
def tight_limits(config_overrides: dict[str, dict[str, Any]]) -> None:
    config_overrides["signaling"] = {"event_burst": 3, "events_per_second": 0.5,
                                     "connections_per_token": 1}  # fmt: skip
    config_overrides["api"] = {"rate_limit_burst": 2, "rate_limit_per_minute": 1}


async def test_every_limit_that_refuses_counts(tight_limits: None, server: RunningServer) -> None:
    consult = await server.create_consult()
    token = token_of(consult["links"]["clinician"])
    async with joined(server.base_url, token) as (client, _):
        answers = [await client.sio.call("panel-sync", {}, timeout=5) for _ in range(6)]
        assert any(a.get("error", {}).get("code") == "rate_limited" for a in answers)
        assert await refused_code(server, token) == "too_many_connections"
    path = f"{server.base_url}/api/v1/consults/{consult['id']}"
    statuses = []
    for _ in range(4):
        async with server.http.get(path, headers={"X-API-Key": API_KEY}) as answer:
            statuses.append(answer.status)
    assert 429 in statuses
    samples = await scrape(server)
    total = "mtm_rate_limited_total"
    assert value(samples, total, limit="events_per_connection") >= 1
    assert value(samples, total, limit="connections_per_token") == 1
    assert value(samples, total, limit="api_calls_per_key") >= 1
