"""The REST API's endpoints as data, and the OpenAPI 3.1 document built from them.

`server/api.py` registers each `Endpoint` with the router and serves this document at
`/api/v1/openapi.json`; both read the same list, and the request and answer schemas come
from the pydantic models the handlers validate with. A test compares the router with the
document, so an endpoint added without its entry here fails CI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server.api_models import CONSULT_ID_PATTERN, ErrorOut

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Path parameters every endpoint shares: their schema, and the answer when a value does not
# match it (such a value cannot name anything, so it is "not found").
# Where the REST API lives; every path below it.
PREFIX = "/api/v1"

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "consult_id": {"type": "string", "pattern": CONSULT_ID_PATTERN},
}

_PARAMETER = re.compile(r"\{([a-z_]+)\}")

# Why each error status can happen, for the document.
_ERROR_MEANINGS = {
    400: (
        "The body is not a JSON object (`invalid_json`), or a query parameter is unknown or "
        "out of range (`invalid_query`)."
    ),
    401: "`X-API-Key` is missing or not a configured key (`invalid_api_key`).",
    404: "No such consult for your clinic (`consult_not_found`).",
    409: (
        "The consult has already ended (`consult_ended`), or (import) has already started "
        "(`consult_started`)."
    ),
    413: "The body exceeds `server.max_body_bytes` (`body_too_large`).",
    422: (
        "A field is missing, of the wrong type, out of range or unknown (`invalid_body`), or "
        "(import) entries of the FHIR resource cannot be read or added (`invalid_fhir`)."
    ),
    429: "Too many calls with this API key (`rate_limited`); retry after `Retry-After` s.",
    500: "A server fault; nothing was changed (`internal_error`).",
}


@dataclass(frozen=True)
class QueryParameter:
    """An optional whole-number query parameter (400 `invalid_query` outside its range)."""

    name: str
    description: str
    minimum: int
    maximum: int

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class ChoiceParameter:
    """An optional query parameter taking one of a few words (400 `invalid_query` else)."""

    name: str
    description: str
    choices: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


# What a non-JSON answer is, for the document: media type -> schema.
DOCUMENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "text/html": {"type": "string"},
    "application/pdf": {"type": "string", "format": "binary"},
}


@dataclass(frozen=True)
class Endpoint:
    """One REST endpoint: how it is routed, what it accepts and what it answers."""

    method: Literal["GET", "POST", "PUT"]
    path: str  # below /api/v1, aiohttp style: /consults/{consult_id}
    handler: Handler
    summary: str
    answer: type[BaseModel] | None = None  # None only for a media type of DOCUMENT_SCHEMAS
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True  # False: an empty body means the model's defaults
    errors: tuple[int, ...] = ()  # statuses beyond those every endpoint of its kind has
    authenticated: bool = True
    answer_headers: tuple[str, ...] = ()
    query: tuple[QueryParameter | ChoiceParameter, ...] = ()
    # The answer's media type; JSON ones are described by `answer`, the others by
    # DOCUMENT_SCHEMAS (errors are JSON on every endpoint).
    media_type: str = "application/json"

    @property
    def path_parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors) | {500}
        if self.authenticated:
            statuses |= {401, 429}
        if self.path_parameters:
            statuses.add(404)
        if self.body is not None:
            statuses |= {400, 413, 422}
        return sorted(statuses)


def build_document(endpoints: Sequence[Endpoint], *, prefix: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorOut, "serialization")]
    for endpoint in endpoints:
        if endpoint.answer is not None:
            models.append((endpoint.answer, "serialization"))
        if endpoint.body is not None:
            models.append((endpoint.body, "validation"))
    refs, definitions = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, refs)
        paths.setdefault(prefix + endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MTM Consult REST API",
            "version": "1",
            "description": "Create, read and end consults; fetch their documents; a clinic's "
            "embedding settings (docs/api.md, docs/embed.md).",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _operation(endpoint: Endpoint, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    answer_headers = {
        name: {"schema": {"type": "string"}, "required": True} for name in endpoint.answer_headers
    }
    if endpoint.answer is None:
        answer_schema = DOCUMENT_SCHEMAS[endpoint.media_type]
    else:
        answer_schema = refs[(endpoint.answer, "serialization")]
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": endpoint.summary,
            "content": {endpoint.media_type: {"schema": answer_schema}},
            **({"headers": answer_headers} if answer_headers else {}),
        }
    }
    for status in endpoint.error_statuses():
        responses[str(status)] = {
            "description": _ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": refs[(ErrorOut, "serialization")]}},
        }
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {"schema": {"type": "string"}, "required": True}
            }
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__name__}",
        "summary": endpoint.summary,
        "security": [{"ApiKey": []}] if endpoint.authenticated else [],
        "responses": responses,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
        for name in endpoint.path_parameters
    ]
    parameters += [
        {
            "name": parameter.name,
            "in": "query",
            "required": False,
            "description": parameter.description,
            "schema": parameter.schema(),
        }
        for parameter in endpoint.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": endpoint.body_required,
            "content": {
                "application/json": {"schema": refs[(endpoint.body, "validation")]},
            },
        }
    return operation
