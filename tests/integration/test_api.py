from typing import Any

import pytest

from tests.conftest import API_KEY, NORTH_DISPLAY_NAME, OTHER_API_KEY, RunningServer, token_of

CONSULT = {"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00-05:00"}


async def call(
    server: RunningServer,
    method: str,
    path: str,
    *,
    key: str | None = API_KEY,
    **kwargs: Any,
) -> tuple[int, Any]:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = key
    async with server.http.request(
        method, f"{server.base_url}/api/v1{path}", headers=headers, **kwargs
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_create_returns_one_link_per_role(server: RunningServer) -> None:
    status, body = await call(server, "POST", "/consults", json={**CONSULT, "notes": "Annual CMR"})
    assert status == 201
    assert body["id"].startswith("c_")
    assert body["status"] == "scheduled"
    assert body["patient_name"] == "Maria Lopez"
    assert body["scheduled_at"] == "2026-12-01T14:30:00+00:00"
    assert body["notes"] == "Annual CMR"
    assert set(body["links"]) == {"pharmacist", "clinician", "patient"}
    for participant in body["participants"]:
        assert participant["link"] == body["links"][participant["role"]]
        assert participant["link"].startswith(f"{server.base_url}/c/")
    assert len({token_of(link) for link in body["links"].values()}) == 3


async def test_link_role_is_the_participants_role(server: RunningServer) -> None:
    _, body = await call(server, "POST", "/consults", json=CONSULT)
    signer = server.state.signer()
    for role, link in body["links"].items():
        claims = signer.verify(token_of(link), now=server.clock())
        assert claims.role.value == role
        assert claims.consult_id == body["id"]


async def test_read_returns_what_was_created(server: RunningServer) -> None:
    _, created = await call(server, "POST", "/consults", json=CONSULT)
    status, read = await call(server, "GET", f"/consults/{created['id']}")
    assert status == 200
    assert read == created


async def test_end_marks_ended_and_links_stop_working(server: RunningServer) -> None:
    _, created = await call(server, "POST", "/consults", json=CONSULT)
    status, ended = await call(
        server, "POST", f"/consults/{created['id']}/end", json={"reason": "review complete"}
    )
    assert status == 200
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "review complete"
    assert ended["ended_at"] is not None
    async with server.http.get(created["links"]["pharmacist"]) as page:
        assert page.status == 410
        assert "This consult has ended" in await page.text()
    # The patient's link becomes their read-only record (tests/integration/test_panel_record).
    async with server.http.get(created["links"]["patient"]) as page:
        assert page.status == 200
        assert "Your medication list" in await page.text()
    status, again = await call(server, "POST", f"/consults/{created['id']}/end")
    assert status == 409
    assert again["error"]["code"] == "consult_ended"


@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789abcdef0123"])
async def test_bad_api_key_is_401(server: RunningServer, key: str | None) -> None:
    status, body = await call(server, "POST", "/consults", key=key, json=CONSULT)
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"
    assert "X-API-Key" in body["error"]["message"]


async def test_another_clinics_consult_is_404(server: RunningServer) -> None:
    _, created = await call(server, "POST", "/consults", json=CONSULT)
    status, body = await call(server, "GET", f"/consults/{created['id']}", key=OTHER_API_KEY)
    assert status == 404
    status, body = await call(server, "POST", f"/consults/{created['id']}/end", key=OTHER_API_KEY)
    assert status == 404
    _, still = await call(server, "GET", f"/consults/{created['id']}")
    assert still["status"] == "scheduled"


async def test_unknown_consult_is_404(server: RunningServer) -> None:
    status, body = await call(server, "GET", "/consults/c_nope")
    assert status == 404
    assert body == {
        "error": {
            "status": 404,
            "code": "consult_not_found",
            "message": "There is no consult with this id.",
        }
    }
    status, _ = await call(server, "POST", "/consults/c_nope/end")
    assert status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scheduled_at": "2026-12-01T09:30:00Z"}, "patient_name"),
        ({**CONSULT, "patient_name": "   "}, "patient_name"),
        ({**CONSULT, "patient_name": 42}, "patient_name"),
        ({**CONSULT, "scheduled_at": "tomorrow"}, "scheduled_at"),
        ({**CONSULT, "scheduled_at": "2026-12-01T09:30:00"}, "scheduled_at"),
        ({**CONSULT, "notes": "x" * 5001}, "notes"),
        ({**CONSULT, "colour": "blue"}, "colour"),
    ],
)
async def test_bad_body_is_422_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    status, error = await call(server, "POST", "/consults", json=body)
    assert status == 422
    assert error["error"]["code"] == "invalid_body"
    assert field in [item["field"] for item in error["error"]["fields"]]
    assert field in error["error"]["message"]
    assert server.created == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
async def test_malformed_json_is_400(server: RunningServer, raw: bytes) -> None:
    status, body = await call(
        server, "POST", "/consults", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_json"


async def test_oversized_body_is_413(server: RunningServer) -> None:
    status, body = await call(server, "POST", "/consults", json={**CONSULT, "notes": "x" * 200_000})
    assert status == 413
    assert body["error"]["code"] == "body_too_large"


async def test_unknown_endpoint_and_method_are_json(server: RunningServer) -> None:
    status, body = await call(server, "GET", "/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await call(server, "DELETE", "/consults")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_initial_medication_list_is_created_and_read_back(server: RunningServer) -> None:
    medications = [
        {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
        {
            "name": "Lisinopril",
            "strength": "10 mg",
            "kind": "prescription",
            "start_date": "2025-03-01",
        },
        {"name": "Fish oil", "kind": "otc"},
    ]
    status, body = await call(
        server, "POST", "/consults", json={**CONSULT, "medications": medications}
    )
    assert status == 201
    assert [m["data"]["name"] for m in body["medications"]] == [
        "Metformin",
        "Lisinopril",
        "Fish oil",
    ]
    assert body["medications"][1]["data"]["start_date"] == "2025-03-01"
    # The audit trail names the clinic by its key's display name, never the internal name.
    assert body["medications"][0]["updated_by"] == {"name": NORTH_DISPLAY_NAME, "role": "clinic"}
    _, read = await call(server, "GET", f"/consults/{body['id']}")
    assert read["medications"] == body["medications"]


@pytest.mark.parametrize(
    ("medication", "index_field"),
    [
        ({"strength": "5 mg"}, "medications.1.name"),
        ({"name": "X", "status": "finished"}, "medications.1.status"),
        ({"name": "X", "colour": "red"}, "medications.1.colour"),
    ],
)
async def test_bad_initial_medication_creates_nothing(
    server: RunningServer, medication: dict[str, Any], index_field: str
) -> None:
    status, body = await call(
        server,
        "POST",
        "/consults",
        json={**CONSULT, "medications": [{"name": "Fine"}, medication]},
    )
    assert status == 422
    assert body["error"]["fields"][0]["field"] == index_field
    async with server.state.sessions() as session:
        from sqlalchemy import func, select

        from models.tables import Consult, PanelEntity

        assert (await session.execute(select(func.count()).select_from(Consult))).scalar() == 0
        assert (await session.execute(select(func.count()).select_from(PanelEntity))).scalar() == 0
