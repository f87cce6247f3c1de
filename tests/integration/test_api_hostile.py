"""Hostile input to the REST API: each answer is a documented 4xx and nothing changes.

Every case here answered 500 before (issue 14); on Postgres (CI) the NUL cases reach the
database driver unless refused first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import API_KEY, RunningServer
from tests.support.database import database_digest

CONSULT = {"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00-05:00"}


@pytest.fixture
async def unchanged(server: RunningServer) -> AsyncIterator[None]:
    """Fails the test if the database differs after it from before it."""
    before = await database_digest(server.state.sessions)
    yield
    assert await database_digest(server.state.sessions) == before


async def raw_call(
    server: RunningServer, method: str, path: str, data: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json", **headers}
    async with server.http.request(
        method, f"{server.base_url}{path}", data=data, headers=headers
    ) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(deep(5000), id="top-level-5000-deep"),
        pytest.param(b'{"notes": ' + deep(5000) + b"}", id="field-5000-deep"),
        pytest.param(b'{"notes": ' + deep(300) + b"}", id="field-300-deep"),
        pytest.param(b'{"patient_name": "\\ud800", "scheduled_at": "2026-12-01T09:30:00Z"}',
                     id="lone-surrogate"),
        pytest.param(b'{"patient_name": "M", "scheduled_at": "2026-12-01T09:30:00Z", '
                     b'"notes": NaN}', id="nan"),
        pytest.param(b'{"patient_name": "M", "scheduled_at": "2026-12-01T09:30:00Z", '
                     b'"notes": Infinity}', id="infinity"),
    ],
)  # fmt: skip
async def test_json_that_is_not_plain_json_is_400(
    server: RunningServer, unchanged: None, raw: bytes
) -> None:
    status, body = await raw_call(server, "POST", "/api/v1/consults", raw)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_json"


async def test_nesting_limit_is_32_levels_counting_the_body(server: RunningServer) -> None:
    def notes(levels: int) -> bytes:
        return b'{"notes": ' + deep(levels - 1) + b"}"

    status, body = await raw_call(server, "POST", "/api/v1/consults", notes(32))
    assert status == 422 and body["error"]["code"] == "invalid_body"  # parsed, then refused
    status, body = await raw_call(server, "POST", "/api/v1/consults", notes(33))
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert body["error"]["message"] == "The request body is nested too deeply."


@pytest.mark.parametrize(
    "scheduled_at",
    [
        "9999-12-31T23:59:59+00:00",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "1999-12-31T23:59:59+00:00",
        "2100-01-01T00:00:00+00:00",
    ],
)
async def test_schedule_far_from_now_is_422(
    server: RunningServer, unchanged: None, scheduled_at: str
) -> None:
    status, body = await raw_call(
        server,
        "POST",
        "/api/v1/consults",
        f'{{"patient_name": "Maria", "scheduled_at": "{scheduled_at}"}}'.encode(),
    )
    assert status == 422, body
    assert [item["field"] for item in body["error"]["fields"]] == ["scheduled_at"]
    assert "2000-01-01" in body["error"]["fields"][0]["message"]


async def test_schedule_at_the_edges_of_the_range_is_accepted(server: RunningServer) -> None:
    await server.create_consult(scheduled_at="2000-01-01T00:00:00+00:00")
    await server.create_consult(scheduled_at="2099-12-31T18:59:59-05:00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CONSULT, "patient_name": "Maria\u0000Lopez"}, "patient_name"),
        ({**CONSULT, "notes": "takes \u0000 daily"}, "notes"),
        ({**CONSULT, "medications": [{"name": "Metformin\u0000"}]}, "medications.0.name"),
        ({**CONSULT, "medications": [{"name": "M", "notes": "\u0000"}]}, "medications.0.notes"),
    ],
)
async def test_nul_character_is_422(
    server: RunningServer, unchanged: None, body: dict[str, Any], field: str
) -> None:
    async with server.http.post(
        f"{server.base_url}/api/v1/consults", json=body, headers={"X-API-Key": API_KEY}
    ) as response:
        status, answer = response.status, await response.json()
    assert status == 422, answer
    assert [item["field"] for item in answer["error"]["fields"]] == [field]
    assert "NUL" in answer["error"]["fields"][0]["message"]


async def test_nul_in_the_end_reason_is_422(server: RunningServer) -> None:
    consult = await server.create_consult()
    before = await database_digest(server.state.sessions)
    async with server.http.post(
        f"{server.base_url}/api/v1/consults/{consult['id']}/end",
        json={"reason": "done\u0000"},
        headers={"X-API-Key": API_KEY},
    ) as response:
        assert response.status == 422
        assert (await response.json())["error"]["fields"][0]["field"] == "reason"
    assert await database_digest(server.state.sessions) == before


@pytest.mark.parametrize(
    "consult_id",
    [
        "%00",
        "c_%00",
        "c_abc%00def",
        "x" * 5000,
        "c_" + "a" * 65,
        "c_%C3%A9",
        "c_a%0A",
        "%F0%9F%92%8A",
    ],
)
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/end")])
async def test_consult_id_that_cannot_exist_is_404(
    server: RunningServer, unchanged: None, consult_id: str, method: str, suffix: str
) -> None:
    status, body = await raw_call(server, method, f"/api/v1/consults/{consult_id}{suffix}")
    assert status == 404, body
    assert body["error"]["code"] == "consult_not_found"


@pytest.mark.parametrize("length", [256, 5000])
async def test_static_file_name_too_long_is_404(server: RunningServer, length: int) -> None:
    async with server.http.get(f"{server.base_url}/static/{'x' * length}") as response:
        assert response.status == 404


@pytest.mark.parametrize("key", ["clé-non-ascii-0123456789abcdef", "\u2028" * 30, "🔑" * 24])
async def test_api_key_outside_ascii_is_401(
    server: RunningServer, unchanged: None, key: str
) -> None:
    async with server.http.post(
        f"{server.base_url}/api/v1/consults",
        json=CONSULT,
        headers={"X-API-Key": key},
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_api_key"
