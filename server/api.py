"""REST API under /api/v1 (docs/api.md): create, read and end consults."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from typing import Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from models import audience, consults, mutations, panel_store
from models.tables import Consult
from server import links
from server.errors import ApiError
from server.security import Handler
from server.state import STATE, AppState

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

PREFIX = "/api/v1"


class ConsultCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_name: str = Field(min_length=1, max_length=200)
    scheduled_at: AwareDatetime
    notes: str | None = Field(None, max_length=5000)
    medications: list[dict[str, Any]] = Field(default_factory=list, max_length=100)

    @field_validator("patient_name")
    @classmethod
    def _name_has_text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value


class ConsultEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("ended by the clinic", min_length=1, max_length=500)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/consults", create_consult)
    app.router.add_get(f"{PREFIX}/consults/{{consult_id}}", read_consult)
    app.router.add_post(f"{PREFIX}/consults/{{consult_id}}/end", end_consult)
    app.router.add_get(f"{PREFIX}/consults/{{consult_id}}/panel", read_panel)
    app.router.add_get(f"{PREFIX}/consults/{{consult_id}}/events", read_events)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/ response, error or not, is JSON of the documented shape."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge:
        return ApiError(413, "body_too_large", "The request body is too large.").response()
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return ApiError(405, "method_not_allowed", f"Use one of: {allowed}.").response()
    except web.HTTPNotFound:
        return ApiError(404, "not_found", "There is no such endpoint.").response()
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.match_info.route.name)
        return ApiError(500, "internal_error", "The server failed; nothing was changed.").response()


def _state(request: web.Request) -> AppState:
    return request.app[STATE]


def _clinic(request: web.Request, state: AppState) -> str:
    """The clinic whose API key the request carries; 401 otherwise."""
    given = request.headers.get("X-API-Key", "")
    for clinic, key in state.config.api.keys.items():
        if given and hmac.compare_digest(given.encode(), key.encode()):
            return clinic
    raise ApiError(401, "invalid_api_key", "Send a valid clinic API key in the X-API-Key header.")


async def _json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def _validated(model: type[ModelT], body: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "body",
                "message": "is not a known field"
                if error["type"] == "extra_forbidden"
                else error["msg"].removeprefix("Value error, "),
            }
            for error in exc.errors()
        ]
        names = ", ".join(item["field"] for item in fields)
        raise ApiError(422, "invalid_body", f"Invalid field(s): {names}.", fields=fields) from None


async def _add_initial_medications(
    session: AsyncSession,
    consult_id: str,
    clinic: str,
    medications: list[dict[str, Any]],
    now: dt.datetime,
) -> None:
    try:
        await panel_store.add_initial_medications(session, consult_id, clinic, medications, now=now)
    except panel_store.InitialMedicationRefused as refused:
        raise ApiError(
            422,
            "invalid_body",
            f"Invalid field(s): medications.{refused.index}.",
            fields=[{"field": f"medications.{refused.index}", "message": refused.message}],
        ) from None


async def consult_json(
    session: AsyncSession, state: AppState, consult: Consult, base_url: str
) -> dict[str, Any]:
    ttl = state.config.auth.link_ttl_hours
    participants = []
    for participant in consult.participants:
        token = links.link_token(state.signer(), consult, participant, ttl)
        participants.append(
            {
                "id": participant.id,
                "role": participant.role,
                "display_name": participant.display_name,
                "link": links.join_url(base_url, token),
            }
        )
    return {
        "id": consult.id,
        "status": consult.status,
        "patient_name": consult.patient_name,
        "scheduled_at": consult.scheduled_at.isoformat(),
        "notes": consult.notes,
        "created_at": consult.created_at.isoformat(),
        "ended_at": consult.ended_at.isoformat() if consult.ended_at else None,
        "end_reason": consult.end_reason,
        "links_expire_at": dt.datetime.fromtimestamp(
            links.link_expiry(consult, ttl), dt.UTC
        ).isoformat(),
        "participants": participants,
        "links": {item["role"]: item["link"] for item in participants},
        "present": await state.signaling.present(consult.id),
        "opened_at": consult.opened_at.isoformat() if consult.opened_at else None,
        "live_at": consult.live_at.isoformat() if consult.live_at else None,
        "medications": [
            entity
            for entity in (await panel_store.snapshot(session, consult.id))["entities"]
            if entity["type"] == "medication"
        ],
    }


def base_url(request: web.Request, state: AppState) -> str:
    return state.config.server.public_url or f"{request.scheme}://{request.host}"


async def create_consult(request: web.Request) -> web.Response:
    state = _state(request)
    clinic = _clinic(request, state)
    data = _validated(ConsultCreate, await _json_body(request))
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    async with state.sessions() as session, session.begin():
        consult = await consults.create_consult(
            session,
            clinic=clinic,
            patient_name=data.patient_name,
            scheduled_at=data.scheduled_at,
            notes=data.notes,
            now=now,
        )
        await _add_initial_medications(session, consult.id, clinic, data.medications, now)
        body = await consult_json(session, state, consult, base_url(request, state))
    state.webhooks.emit("consult.created", consult.id)
    return web.json_response(
        body, status=201, headers={"Location": f"{PREFIX}/consults/{consult.id}"}
    )


async def read_consult(request: web.Request) -> web.Response:
    state = _state(request)
    clinic = _clinic(request, state)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request, clinic)
        body = await consult_json(session, state, consult, base_url(request, state))
    return web.json_response(body)


async def end_consult(request: web.Request) -> web.Response:
    state = _state(request)
    clinic = _clinic(request, state)
    data = _validated(ConsultEnd, await _json_body(request, optional=True))
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    async with state.sessions() as session, session.begin():
        consult = await _owned_consult(session, request, clinic)
        try:
            consults.end(consult, reason=data.reason, now=now)
        except consults.ConsultAlreadyEnded:
            raise ApiError(409, "consult_ended", "This consult has already ended.") from None
    async with state.sessions() as session:
        body = await consult_json(session, state, consult, base_url(request, state))
    state.panel_writer.forget(consult.id)
    await state.signaling.end_consult(consult.id, data.reason)
    state.webhooks.emit("consult.ended", consult.id, {"reason": data.reason, "ended_by": "clinic"})
    return web.json_response(body)


async def read_panel(request: web.Request) -> web.Response:
    """The whole panel (medications, problems, recommendations with their decisions, plan
    items) and what is still open; readable during and after the consult."""
    state = _state(request)
    clinic = _clinic(request, state)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request, clinic)
        snapshot = await panel_store.snapshot(session, consult.id)
    return web.json_response(audience.record_for("clinic", snapshot))


EVENTS_PAGE = 500


async def read_events(request: web.Request) -> web.Response:
    """The change log in seq order, a page at a time (`since`, `limit`)."""
    state = _state(request)
    clinic = _clinic(request, state)
    since = _query_int(request, "since", default=0, low=0, high=mutations.MAX_SEQ)
    limit = _query_int(request, "limit", default=EVENTS_PAGE, low=1, high=EVENTS_PAGE)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request, clinic)
        events = await panel_store.events_since(session, consult.id, since, limit=limit)
        last_seq = consult.last_seq
    last = events[-1]["seq"] if events else since
    return web.json_response(
        {"seq": last_seq, "events": events, "next_since": last if last < last_seq else None}
    )


def _query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


async def _owned_consult(session: AsyncSession, request: web.Request, clinic: str) -> Consult:
    consult = await consults.get_consult(session, request.match_info["consult_id"], clinic=clinic)
    if consult is None:
        raise ApiError(404, "consult_not_found", "There is no consult with this id.")
    return consult
