"""REST API under /api/v1 (docs/api.md): create, read and end consults.

Every endpoint is an `Endpoint` in `ENDPOINTS` (server/openapi.py): registering it routes it,
puts it in the OpenAPI document, and wraps its handler with what every call goes through, in
this order: the API key (401), the key's rate limit (429), path parameters (404), the JSON
body validated by the endpoint's model (400, 413, 422). Handlers read the caller with
`api_client` and the validated body with `request_body`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from documents import fhir
from documents.text import LANGUAGES, Language
from models import audience, chat, consults, embed, mutations, panel_store
from models.tables import Consult, ConsultStatus
from server import documents, links, openapi
from server.api_keys import ApiClient, authenticate
from server.api_models import (
    ChatOut,
    ConsultCreate,
    ConsultEnd,
    ConsultOut,
    EmbedSettingsIn,
    EmbedSettingsOut,
    EventsOut,
    FhirResourceIn,
    ImportOut,
    JsonObject,
    PanelOut,
)
from server.chat_service import line
from server.embed import clinic_settings
from server.errors import ApiError
from server.lifecycle import ConsultNotFound
from server.metrics import METRICS
from server.openapi import ChoiceParameter, Endpoint, QueryParameter
from server.rate_limit import TokenBuckets
from server.security import Handler
from server.state import STATE, AppState

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

PREFIX = openapi.PREFIX

OPENAPI_DOCUMENT = web.AppKey("mtm_openapi_document", bytes)
RATE_LIMITS = web.AppKey("mtm_api_rate_limits", TokenBuckets)
# No valid body nests deeper than 4 levels (body, medications, a medication, a value).
MAX_JSON_DEPTH = 32
_CLIENT = web.RequestKey("mtm_api_client", ApiClient)
_BODY = web.RequestKey("mtm_api_body", BaseModel)


def add_routes(app: web.Application) -> None:
    """Route every endpoint of ENDPOINTS; needs `app[STATE]`."""
    config = app[STATE].config.api
    app[RATE_LIMITS] = TokenBuckets(
        per_minute=config.rate_limit_per_minute,
        burst=config.rate_limit_burst,
        clock=app[STATE].clock,
    )
    app[OPENAPI_DOCUMENT] = orjson.dumps(openapi.build_document(ENDPOINTS, prefix=PREFIX))
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, PREFIX + endpoint.path, _checked(endpoint))


def _checked(endpoint: Endpoint) -> Handler:
    """`endpoint.handler` behind the checks every call of it goes through."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if endpoint.authenticated:
            client = authenticate(
                _state(request).config.api.keys, request.headers.get("X-API-Key", "")
            )
            if client is None:
                raise ApiError(
                    401, "invalid_api_key", "Send a valid clinic API key in the X-API-Key header."
                )
            wait = request.app[RATE_LIMITS].take(client.key_id)
            if wait > 0:
                request.app[METRICS].rate_limit_hit("api_calls_per_key")
                seconds = max(1, math.ceil(wait))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many requests with this API key; retry in {seconds} s.",
                    headers={"Retry-After": str(seconds)},
                )
            request[_CLIENT] = client
        for name in endpoint.path_parameters:
            if not re.fullmatch(openapi.PATH_PARAMETERS[name]["pattern"], request.match_info[name]):
                raise ApiError(404, "consult_not_found", "There is no consult with this id.")
        if endpoint.query:
            known = {parameter.name for parameter in endpoint.query}
            unknown = sorted(set(request.query) - known)
            if unknown:
                allowed = ", ".join(sorted(known))
                raise ApiError(
                    400,
                    "invalid_query",
                    f"Unknown query parameter '{unknown[0][:40]}'; this endpoint takes {allowed}.",
                )
        if endpoint.body is not None:
            request[_BODY] = _validated(
                endpoint.body, await _json_body(request, optional=not endpoint.body_required)
            )
        return await endpoint.handler(request)

    handle.__name__ = endpoint.handler.__name__
    return handle


def api_client(request: web.Request) -> ApiClient:
    """The clinic an authenticated REST request comes from."""
    client = request.get(_CLIENT)
    if not isinstance(client, ApiClient):
        raise RuntimeError("api_client() is only for endpoints that need an API key")
    return client


def clinic_display_name(request: web.Request) -> str:
    """The name participants see for the clinic behind an authenticated REST request (the
    `display_name` of its API key entry), never the internal clinic name."""
    return api_client(request).display_name


def request_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The body validated by the endpoint's registered model, which must be `model`."""
    body = request.get(_BODY)
    if not isinstance(body, model):
        raise RuntimeError(f"the endpoint does not register {model.__name__} as its body")
    return body


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


async def _json_body(request: web.Request, *, optional: bool = False) -> bytes:
    """The raw body once it is known to be one JSON object (RFC 8259: no NaN, no lone
    surrogate, nesting bounded), or b"{}" for an allowed empty body."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return b"{}"
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if _deeper_than(body, MAX_JSON_DEPTH):
        raise ApiError(400, "invalid_json", "The request body is nested too deeply.")
    return raw


def _deeper_than(value: object, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (the body itself is 1)."""
    level: list[object] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def _validated(model: type[ModelT], raw: bytes) -> ModelT:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            # pydantic's parser bounds nesting more tightly than orjson's.
            raise ApiError(400, "invalid_json", "The request body is nested too deeply.") from None
        fields = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "body",
                "message": "is not a known field"
                if error["type"] == "extra_forbidden"
                else error["msg"].removeprefix("Value error, "),
            }
            for error in errors
        ]
        names = ", ".join(item["field"] for item in fields)
        raise ApiError(422, "invalid_body", f"Invalid field(s): {names}.", fields=fields) from None


async def _add_initial_medications(
    session: AsyncSession,
    consult_id: str,
    clinic: ApiClient,
    medications: list[BaseModel],
    now: dt.datetime,
) -> None:
    fields = [medication.model_dump(mode="json", exclude_unset=True) for medication in medications]
    try:
        # The audit trail names the clinic as participants see it.
        await panel_store.add_initial_medications(
            session, consult_id, clinic.display_name, fields, now=now
        )
    except panel_store.InitialMedicationRefused as refused:
        raise ApiError(
            422,
            "invalid_body",
            f"Invalid field(s): medications.{refused.index}.",
            fields=[{"field": f"medications.{refused.index}", "message": refused.message}],
        ) from None


async def consult_answer(
    session: AsyncSession, state: AppState, consult: Consult, base_url: str
) -> ConsultOut:
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
    return ConsultOut.model_validate(
        {
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
            "visit_started_at": (
                consult.visit_started_at.isoformat() if consult.visit_started_at else None
            ),
            "medications": [
                entity
                for entity in (await panel_store.snapshot(session, consult.id))["entities"]
                if entity["type"] == "medication"
            ],
        }
    )


def _answer(
    body: BaseModel, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=body.model_dump_json(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def base_url(request: web.Request, state: AppState) -> str:
    return state.config.server.public_url or f"{request.scheme}://{request.host}"


async def create_consult(request: web.Request) -> web.Response:
    state = _state(request)
    clinic = api_client(request)
    data = request_body(request, ConsultCreate)
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    async with state.sessions() as session, session.begin():
        consult = await consults.create_consult(
            session,
            clinic=clinic.clinic,
            patient_name=data.patient_name,
            scheduled_at=data.scheduled_at,
            notes=data.notes,
            now=now,
        )
        await _add_initial_medications(session, consult.id, clinic, data.medications, now)
        await state.webhooks.emit(session, "consult.created", consult.id)
        body = await consult_answer(session, state, consult, base_url(request, state))
    return _answer(body, status=201, headers={"Location": f"{PREFIX}/consults/{consult.id}"})


async def read_consult(request: web.Request) -> web.Response:
    state = _state(request)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request)
        body = await consult_answer(session, state, consult, base_url(request, state))
    return _answer(body)


async def end_consult(request: web.Request) -> web.Response:
    """Ends the consult for everyone, wherever their connections are (any instance)."""
    state = _state(request)
    data = request_body(request, ConsultEnd)
    try:
        await state.ending.end(
            request.match_info["consult_id"],
            reason=data.reason,
            ended_by="clinic",
            clinic=api_client(request).clinic,
        )
    except ConsultNotFound:
        raise ApiError(404, "consult_not_found", "There is no consult with this id.") from None
    except consults.ConsultAlreadyEnded:
        raise ApiError(409, "consult_ended", "This consult has already ended.") from None
    async with state.sessions() as session:
        consult = await _owned_consult(session, request)
        body = await consult_answer(session, state, consult, base_url(request, state))
    return _answer(body)


async def read_panel(request: web.Request) -> web.Response:
    """The whole panel (medications, problems, recommendations with their decisions, plan
    items) and what is still open; readable during and after the consult."""
    state = _state(request)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request)
        snapshot = await panel_store.snapshot(session, consult.id)
    return _answer(PanelOut.model_validate(audience.record_for("clinic", snapshot)))


async def read_chat(request: web.Request) -> web.Response:
    """The call's text chat, every message in the order it was written."""
    state = _state(request)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request)
        lines = [line(message) for message in await chat.messages(session, consult.id)]
    return _answer(ChatOut.model_validate({"messages": [entry.wire() for entry in lines]}))


EVENTS_PAGE = 500


async def read_events(request: web.Request) -> web.Response:
    """The change log in seq order, a page at a time (`since`, `limit`)."""
    state = _state(request)
    since = _query_int(request, "since", default=0, low=0, high=mutations.MAX_SEQ)
    limit = _query_int(request, "limit", default=EVENTS_PAGE, low=1, high=EVENTS_PAGE)
    async with state.sessions() as session:
        consult = await _owned_consult(session, request)
        last_seq = consult.last_seq
        # Nothing lies past the latest seq; the database is not asked (a `since` that large
        # may not even fit its seq column).
        events = (
            await panel_store.events_since(session, consult.id, since, limit=limit)
            if since < last_seq
            else []
        )
    last = events[-1]["seq"] if events else since
    return _answer(
        EventsOut.model_validate(
            {"seq": last_seq, "events": events, "next_since": last if last < last_seq else None}
        )
    )


def _query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def _query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = request.query.get(name, default)
    if raw not in choices:
        raise ApiError(400, "invalid_query", f"{name} must be one of: {', '.join(choices)}.")
    return raw


SEQ_QUERY = QueryParameter(
    "seq",
    "The panel's state to show: the change log up to this seq (default: the end of the "
    "consult, or its latest change while it runs).",
    0,
    mutations.MAX_SEQ,
)
LANG_QUERY = ChoiceParameter("lang", "The language of the patient's copy (default en).", LANGUAGES)


def _document_handler(kind: documents.Kind, fmt: documents.Format) -> openapi.Handler:
    """A handler answering one document of a consult, live or ended, at a seq."""

    async def handle(request: web.Request) -> web.Response:
        state = _state(request)
        seq = (
            _query_int(request, "seq", default=-1, low=0, high=mutations.MAX_SEQ)
            if "seq" in request.query
            else None
        )
        lang: Language = "en"
        if kind == "summary":
            lang = "es" if _query_choice(request, "lang", LANGUAGES, "en") == "es" else "en"
        async with state.sessions() as session:
            consult = await _owned_consult(session, request)
            try:
                inputs = await documents.load_inputs(session, state.config, consult, seq)
            except documents.DocumentRefused as refused:
                raise ApiError(refused.status, refused.code, refused.message) from None
        link = documents.response_link_maker(
            state.response_signer(), state.config.documents, consult, base_url(request, state)
        )
        rendered = await documents.render_document(state.pdf, kind, fmt, inputs, lang, link)
        return web.Response(
            body=rendered.body,
            content_type=rendered.media_type,
            charset="utf-8" if fmt != "pdf" else None,
            headers=documents.headers_for(rendered),
        )

    handle.__name__ = f"read_{kind.replace('-', '_')}_{fmt}"
    return handle


async def import_medications(request: web.Request) -> web.Response:
    """Add a starting medication list read from FHIR, all or nothing, before the call."""
    state = _state(request)
    clinic = api_client(request)
    resource = request_body(request, FhirResourceIn).model_dump(mode="json")
    try:
        found, unreadable = fhir.import_medications(resource)
    except fhir.NotFhir as problem:
        raise ApiError(422, "invalid_fhir", str(problem)) from None
    if unreadable:
        raise _fhir_refusal([(error.where, error.message) for error in unreadable])
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    actor = mutations.Actor(participant_id=None, name=clinic.display_name, role="clinic")
    async with state.sessions() as session, session.begin():
        consult = await _owned_consult(session, request, lock=True)
        if consult.status == ConsultStatus.ENDED.value:
            raise ApiError(409, "consult_ended", "This consult has already ended.")
        if consult.status == ConsultStatus.LIVE.value:
            raise ApiError(
                409,
                "consult_started",
                "The call has started: add medications in the call, not by import.",
            )
        try:
            added = await panel_store.add_medications(
                session,
                consult.id,
                actor,
                [medication.fields for medication in found],
                mutation_prefix="import-",
                now=now,
            )
        except panel_store.MedicationsRefused as refused:
            raise _fhir_refusal(
                [(found[index].where, message) for index, message in refused.errors]
            ) from None
        seq = added[-1]["updated_seq"]
    state.panel_writer.forget(consult.id)
    return _answer(ImportOut.model_validate({"seq": seq, "medications": added}))


def _fhir_refusal(errors: list[tuple[str, str]]) -> ApiError:
    count = len(errors)
    return ApiError(
        422,
        "invalid_fhir",
        f"{count} {'entry' if count == 1 else 'entries'} cannot be imported; nothing was added.",
        fields=[{"field": where, "message": message} for where, message in errors],
    )


def _embed_answer(settings: embed.ClinicEmbedSettings) -> EmbedSettingsOut:
    return EmbedSettingsOut(
        allowed_origins=settings.allowed_origins,
        medication_names_in_events=settings.medication_names_in_events,
        source=settings.source,
        updated_at=settings.updated_at.isoformat() if settings.updated_at else None,
    )


async def read_embed_settings(request: web.Request) -> web.Response:
    """The calling clinic's embedding settings in force (stored, configured or none)."""
    state = _state(request)
    async with state.sessions() as session:
        settings = await clinic_settings(session, state.config, api_client(request).clinic)
    return _answer(_embed_answer(settings))


async def replace_embed_settings(request: web.Request) -> web.Response:
    """Replace the calling clinic's embedding settings; embed pages loaded from now on use
    them (a page already open keeps the ones it loaded with)."""
    state = _state(request)
    data = request_body(request, EmbedSettingsIn)
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    async with state.sessions() as session:
        settings = await embed.store_settings(
            session,
            api_client(request).clinic,
            list(data.allowed_origins),
            medication_names_in_events=data.medication_names_in_events,
            now=now,
        )
    return _answer(_embed_answer(settings))


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_DOCUMENT], content_type="application/json")


async def _owned_consult(
    session: AsyncSession, request: web.Request, *, lock: bool = False
) -> Consult:
    consult = await consults.get_consult(
        session, request.match_info["consult_id"], clinic=api_client(request).clinic, lock=lock
    )
    if consult is None:
        raise ApiError(404, "consult_not_found", "There is no consult with this id.")
    return consult


DOCUMENTS: list[tuple[documents.Kind, documents.Format, str]] = [
    ("summary", "html", "The patient's summary (CMS Standardized Format), printable HTML"),
    ("summary", "pdf", "The patient's summary (CMS Standardized Format), PDF"),
    ("prescriber-letter", "html", "The prescriber letter, printable HTML"),
    ("prescriber-letter", "pdf", "The prescriber letter, PDF"),
    ("fhir-bundle", "json", "The consult as a FHIR R4 document Bundle"),
]

# Every REST endpoint. Adding one: its handler, its models in server/api_models.py, and an
# entry here (the OpenAPI sync test fails until the document and the router agree).
ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/consults",
        create_consult,
        "Create a consult",
        answer=ConsultOut,
        status=201,
        body=ConsultCreate,
        answer_headers=("Location",),
    ),
    Endpoint("GET", "/consults/{consult_id}", read_consult, "Read a consult", answer=ConsultOut),
    Endpoint(
        "POST",
        "/consults/{consult_id}/end",
        end_consult,
        "End a consult",
        answer=ConsultOut,
        body=ConsultEnd,
        body_required=False,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/consults/{consult_id}/panel",
        read_panel,
        "The whole panel, with decisions and what is still open",
        answer=PanelOut,
    ),
    Endpoint(
        "GET",
        "/consults/{consult_id}/events",
        read_events,
        "The change log, a page at a time",
        answer=EventsOut,
        errors=(400,),
        query=(
            QueryParameter("since", "Events after this seq (default 0).", 0, mutations.MAX_SEQ),
            QueryParameter("limit", "At most this many (default 500).", 1, EVENTS_PAGE),
        ),
    ),
    *(
        Endpoint(
            "GET",
            f"/consults/{{consult_id}}/documents/{kind}.{fmt}",
            _document_handler(kind, fmt),
            summary,
            answer=JsonObject if fmt == "json" else None,
            media_type=documents.MEDIA_TYPES[fmt],
            errors=(400,),
            query=(SEQ_QUERY, LANG_QUERY) if kind == "summary" else (SEQ_QUERY,),
        )
        for kind, fmt, summary in DOCUMENTS
    ),
    Endpoint(
        "GET",
        "/consults/{consult_id}/chat",
        read_chat,
        "The call's text chat, in the order it was written",
        answer=ChatOut,
    ),
    Endpoint(
        "POST",
        "/consults/{consult_id}/medications/import",
        import_medications,
        "Add a starting medication list from a FHIR Bundle or List",
        answer=ImportOut,
        body=FhirResourceIn,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/clinic/embed",
        read_embed_settings,
        "Your clinic's embedding settings (allowed origins, medication names in events)",
        answer=EmbedSettingsOut,
    ),
    Endpoint(
        "PUT",
        "/clinic/embed",
        replace_embed_settings,
        "Replace your clinic's embedding settings",
        answer=EmbedSettingsOut,
        body=EmbedSettingsIn,
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        openapi_document,
        "This API as an OpenAPI 3.1 document",
        answer=JsonObject,
        authenticated=False,
    ),
]
