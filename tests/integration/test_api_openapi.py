"""The OpenAPI document at /api/v1/openapi.json: served, generated from the models the
handlers validate with, and in step with the router (every /api/v1 route is in it, and
nothing else is)."""

from __future__ import annotations

from typing import Any

import schemathesis
from aiohttp import web

from server import api
from server.api_models import ConsultCreate, ConsultEnd
from server.openapi import build_document
from tests.conftest import RunningServer


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route under /api/v1 (aiohttp adds HEAD beside each GET)."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(api.PREFIX + "/")
        and route.method != "HEAD"
    }


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


async def served_document(server: RunningServer) -> dict[str, Any]:
    async with server.http.get(f"{server.base_url}/api/v1/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document: dict[str, Any] = await response.json()
    return document


async def test_document_is_served_without_a_key(server: RunningServer) -> None:
    document = await served_document(server)
    assert document["openapi"] == "3.1.0"
    assert document == build_document(api.ENDPOINTS, prefix=api.PREFIX)
    # schemathesis reads it (the fuzz test in test_api_fuzz.py sends what it generates).
    operations = schemathesis.openapi.from_dict(document).get_all_operations()
    labels = {result.ok().label for result in operations}
    assert labels == {f"{method} {path}" for method, path in documented(document)}


async def test_every_api_route_is_documented_and_nothing_else(server: RunningServer) -> None:
    document = await served_document(server)
    assert routed(server.app) == documented(document)


async def test_a_route_added_without_its_endpoint_entry_is_caught(server: RunningServer) -> None:
    """The check above is not vacuous: a route added beside the registry shows up."""

    async def undocumented(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    for endpoint in api.ENDPOINTS:
        app.router.add_route(endpoint.method, api.PREFIX + endpoint.path, endpoint.handler)
    app.router.add_get(api.PREFIX + "/consults/{consult_id}/undocumented", undocumented)
    document = build_document(api.ENDPOINTS, prefix=api.PREFIX)
    assert routed(app) - documented(document) == {
        ("GET", "/api/v1/consults/{consult_id}/undocumented")
    }


def test_bodies_are_described_by_the_models_the_handlers_validate_with() -> None:
    document = build_document(api.ENDPOINTS, prefix=api.PREFIX)
    schemas = document["components"]["schemas"]
    create = document["paths"]["/api/v1/consults"]["post"]
    end = document["paths"]["/api/v1/consults/{consult_id}/end"]["post"]
    assert create["requestBody"]["required"] is True
    assert end["requestBody"]["required"] is False
    for operation, model in [(create, ConsultCreate), (end, ConsultEnd)]:
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = reference.rsplit("/", 1)[1]
        assert name == model.__name__
        expected = model.model_json_schema(ref_template="#/components/schemas/{model}")
        expected.pop("$defs", None)
        assert schemas[name] == expected
    # Strict and closed: unknown fields are refused, and the document says so.
    assert schemas["ConsultCreate"]["additionalProperties"] is False
    assert schemas["MedicationIn"]["additionalProperties"] is False
    assert set(schemas["ConsultCreate"]["required"]) == {"patient_name", "scheduled_at"}


def test_every_operation_declares_its_errors_and_security() -> None:
    document = build_document(api.ENDPOINTS, prefix=api.PREFIX)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if path.endswith("openapi.json"):
                assert operation["security"] == []
                continue
            assert operation["security"] == [{"ApiKey": []}]
            assert {"401", "429"} <= statuses
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            if "{consult_id}" in path:
                assert "404" in statuses
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses
