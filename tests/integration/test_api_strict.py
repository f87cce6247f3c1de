"""REST bodies are validated strictly: a JSON value of the wrong type is refused, never
coerced (issue 14: `true` or `"1"` for a number, a date-time for a date), and nothing is
created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import API_KEY, RunningServer
from tests.support.database import database_digest

CONSULT = {"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00-05:00"}


@pytest.fixture
async def unchanged(server: RunningServer) -> AsyncIterator[None]:
    before = await database_digest(server.state.sessions)
    yield
    assert await database_digest(server.state.sessions) == before


async def post(server: RunningServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with server.http.post(
        f"{server.base_url}/api/v1{path}", json=body, headers={"X-API-Key": API_KEY}
    ) as response:
        return response.status, await response.json()


def medication(**fields: Any) -> dict[str, Any]:
    return {**CONSULT, "medications": [{"name": "Metformin", **fields}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CONSULT, "patient_name": True}, "patient_name"),
        ({**CONSULT, "patient_name": ["Maria"]}, "patient_name"),
        ({**CONSULT, "notes": 5}, "notes"),
        ({**CONSULT, "notes": False}, "notes"),
        ({**CONSULT, "scheduled_at": 1796000000}, "scheduled_at"),
        ({**CONSULT, "scheduled_at": "1796000000"}, "scheduled_at"),
        ({**CONSULT, "scheduled_at": "2026-12-01"}, "scheduled_at"),
        ({**CONSULT, "medications": {"name": "Metformin"}}, "medications"),
        ({**CONSULT, "medications": ["Metformin"]}, "medications.0"),
        (medication(start_date="2024-01-01T00:00:00Z"), "medications.0.start_date"),
        (medication(start_date="2024-01-01T00:00:00"), "medications.0.start_date"),
        (medication(start_date=20240101), "medications.0.start_date"),
        (medication(start_date=1704067200), "medications.0.start_date"),
        (medication(start_date="1704067200"), "medications.0.start_date"),
        (medication(stop_date=True), "medications.0.stop_date"),
        (medication(name=42), "medications.0.name"),
        (medication(name=True), "medications.0.name"),
        (medication(rxnorm_code=860975), "medications.0.rxnorm_code"),
        (medication(status=1), "medications.0.status"),
        (medication(kind=["otc"]), "medications.0.kind"),
    ],
)
async def test_wrong_json_type_is_refused_not_coerced(
    server: RunningServer, unchanged: None, body: dict[str, Any], field: str
) -> None:
    status, answer = await post(server, "/consults", body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_body"
    assert field in [item["field"] for item in answer["error"]["fields"]]


@pytest.mark.parametrize(
    "body",
    [{"reason": 5}, {"reason": True}, {"reason": None}, {"reason": ""}, {"why": "done"}],
)
async def test_end_body_is_strict(server: RunningServer, body: dict[str, Any]) -> None:
    consult = await server.create_consult()
    before = await database_digest(server.state.sessions)
    status, answer = await post(server, f"/consults/{consult['id']}/end", body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_body"
    assert await database_digest(server.state.sessions) == before


async def test_strict_values_of_the_right_type_are_accepted(server: RunningServer) -> None:
    status, consult = await post(
        server,
        "/consults",
        medication(start_date="2024-01-01", rxnorm_code="860975", status="active", kind="otc"),
    )
    assert status == 201, consult
    assert consult["medications"][0]["data"]["start_date"] == "2024-01-01"
    assert consult["medications"][0]["data"]["rxnorm_code"] == "860975"
