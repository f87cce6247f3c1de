"""HTML pages: the join link (pre-join screen and call) and the static files."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from aiohttp import web
from sqlalchemy.exc import IntegrityError, OperationalError

from documents import content
from documents.text import LANGUAGES, STATUS, Language, long_date
from models import audience, consults, mutations, panel_store
from models.embed import ClinicEmbedSettings
from models.errors import Refused
from models.roles import Role
from models.tables import Consult
from server import assets, bundle, documents, embed, i18n, links
from server.api import base_url
from server.openapi import PREFIX as API_PREFIX
from server.security import Handler
from server.state import STATE, AppState
from server.tokens import TokenError

log = logging.getLogger(__name__)

# Where the call page's bundle (server/bundle.py) is, under /static/v/<version>/.
BUNDLE_PREFIX = "bundle/"

# A participant's link that cannot be used: (status, title's key, message's key) of the
# catalogue (web/static/messages), the page in its reader's language.
_LINK_PROBLEMS = {
    "invalid_token": (404, "link.invalid.title", "link.invalid.message"),
    "unknown_participant": (404, "link.invalid.title", "link.replaced.message"),
    "expired_token": (410, "link.expired.title", "link.expired.message"),
    "consult_ended": (410, "link.ended.title", "link.ended.message"),
}


@web.middleware
async def friendly_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages never show a stack trace: an unexpected failure is a plain 500 page."""
    if request.path.startswith(("/api/", "/socket.io/", "/static/")):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error rendering %s", request.match_info.route.name)
        return _render_error(request, 500, "error.internal.title", "error.internal.message")


CATALOGUE = web.AppKey("mtm_messages", i18n.Catalogue)


def add_routes(app: web.Application, web_dir: Path) -> None:
    app[CATALOGUE] = i18n.Catalogue.load(web_dir / "static" / "messages")
    call_bundle = bundle.build(web_dir)
    static_assets = assets.StaticAssets.scan(
        web_dir / "static",
        {BUNDLE_PREFIX + name: file for name, file in call_bundle.files.items()},
    )
    # Templates name scripts and stylesheets by their versioned addresses (server/assets.py).
    templates = app[STATE].templates
    templates.globals["static_url"] = static_assets.url
    templates.globals["module_preloads"] = static_assets.preloads
    templates.globals["call_entry"] = BUNDLE_PREFIX + call_bundle.entry
    assets.add_routes(app, static_assets)
    app.router.add_static("/static/", web_dir / "static", append_version=False)
    app.router.add_get("/c/{token}", join_page)
    app.router.add_get("/c/{token}/documents/{name}", document_page)
    app.router.add_get("/r/{token}", response_page)
    app.router.add_post("/r/{token}", response_answer)
    app.router.add_get("/embed/{token}", embed_page)
    embed.add_sdk_routes(app, web_dir / "static" / "sdk")


async def join_page(request: web.Request) -> web.Response:
    return await _call_page(request, request.match_info["token"])


async def embed_page(request: web.Request) -> web.Response:
    """The call for a clinic's portal (docs/embed.md): framed only by the clinic's allowed
    origins, themed by the address's parameters, driven by the host page through the SDK."""
    state = request.app[STATE]
    token = request.match_info["token"]
    async with state.sessions() as session:
        clinic = await links.clinic_of(session, state.signer(), token, now=state.clock())
        settings = (
            await embed.clinic_settings(session, state.config, clinic)
            if clinic is not None
            else ClinicEmbedSettings()
        )
    try:
        theme = embed.parse_theme(request.query.items())
    except embed.ThemeRefused as problem:
        # No theme, so no theme's language: the request's. The message names the parameter
        # for the portal's developer, in English.
        language = i18n.negotiate(request)
        title = request.app[CATALOGUE].translator(language)("error.embed_address.title")
        response = _render_embed_error(request, settings, 400, title, problem, lang=language)
    else:
        response = await _call_page(request, token, embedded=(settings, theme))
    response.headers.update(
        embed.embed_headers(state.config.server.public_url, settings.allowed_origins)
    )
    return response


async def _call_page(
    request: web.Request,
    token: str,
    *,
    embedded: tuple[ClinicEmbedSettings, embed.EmbedTheme] | None = None,
) -> web.Response:
    state = request.app[STATE]
    try:
        async with state.sessions() as session:
            consult, participant = await links.resolve(
                session, state.signer(), token, now=state.clock()
            )
            given = await consults.has_consented(session, participant.id)
    except TokenError as problem:
        status, title_key, message_key = _LINK_PROBLEMS[problem.code]
        if embedded is not None:
            # A portal shows its own record of an ended consult; the embed just says so, in
            # the theme's language.
            theme_language = i18n.offered(embedded[1].language) or i18n.negotiate(request)
            t = request.app[CATALOGUE].translator(theme_language)
            return _render_embed_error(
                request,
                embedded[0],
                status,
                t(title_key),
                problem,
                t(message_key),
                lang=theme_language,
            )
        record = await _patient_record(request, token)
        if record is not None:
            return record
        return _render_error(request, status, title_key, message_key)
    role = Role(participant.role)
    boot: dict[str, object] = {
        "token": token,
        "participant": {
            "id": participant.id,
            "role": role.value,
            "display_name": participant.display_name,
        },
        "consult": {"id": consult.id, "status": consult.status},
        # In every offered language: the page shows the one it is in (an embed can switch).
        "consent": {
            "required": role.value in state.config.consent.required_roles,
            "given": given,
            "texts": state.config.consent.texts(),
        },
        # window.mtm / window.mtmPanel exist only when a test turns them on.
        "expose_test_hooks": state.config.testing.expose_hooks,
    }
    language = i18n.offered(embedded[1].language) if embedded is not None else None
    language = language or i18n.negotiate(request)
    boot["language"] = language
    theme = None
    if embedded is not None:
        settings, theme = embedded
        boot["embed"] = {
            "allowed_origins": settings.allowed_origins,
            "medication_names_in_events": settings.medication_names_in_events,
            "theme": theme.json(),
        }
    return _render(
        request,
        "call.html",
        status=200,
        boot=boot,
        participant=participant,
        # An embedded call never navigates away from the portal: no preview link there.
        preview_url=f"/c/{token}/documents/summary.html"
        if audience.sees_care_team(role.value) and embedded is None
        else None,
        theme=theme,
        lang=language,
    )


def _render_embed_error(
    request: web.Request,
    settings: ClinicEmbedSettings,
    status: int,
    title: str,
    problem: Refused,
    message: str | None = None,
    *,
    lang: Language,
) -> web.Response:
    """An error page inside the portal's frame, in `lang`, which also tells the host page
    (an `error` event with the problem's code) through web/static/embed-error.js."""
    text = message or problem.message
    boot = {
        "embed": {
            "allowed_origins": settings.allowed_origins,
            "error": {"code": problem.code, "message": text},
        }
    }
    return _render(
        request,
        "error.html",
        status=status,
        lang=lang,
        title=title,
        message=text,
        embed_boot=boot,
    )


def _render_error(
    request: web.Request, status: int, title_key: str, message_key: str
) -> web.Response:
    """error.html with the catalogue's title and message, in the request's language."""
    language = i18n.negotiate(request)
    t = request.app[CATALOGUE].translator(language)
    return _render(
        request,
        "error.html",
        status=status,
        lang=language,
        title=t(title_key),
        message=t(message_key),
    )


# The record page's words for a value (catalogue keys): how the patient confirmed a
# medication, and a recommendation's decision as the call's medication list told the patient
# (web/static/panel-rec-row.js). A medication's status reads as in the patient's summary
# (documents/text.py STATUS).
CONFIRMATION_WORDS = {
    confirmation: f"record.confirmation.{confirmation}"
    for confirmation in ("confirmed", "corrected", "needs-confirming")
}
DECISION_WORDS = {
    "proposed": "panel.rec.patient.proposed",
    "no-response": "panel.rec.patient.proposed",
    "accepted": "panel.rec.patient.accepted",
    "declined": "panel.rec.patient.declined",
}


# The documents a participant's link opens: /c/<token>/documents/<name>.
PAGE_DOCUMENTS: dict[str, tuple[documents.Kind, documents.Format]] = {
    "summary.html": ("summary", "html"),
    "summary.pdf": ("summary", "pdf"),
    "prescriber-letter.html": ("prescriber-letter", "html"),
    "prescriber-letter.pdf": ("prescriber-letter", "pdf"),
}


async def document_page(request: web.Request) -> web.Response:
    """A document through a participant's link: the pharmacist's and clinician's preview
    during the consult (any document, at its latest change), the patient's own summary
    after it ends (at the end, for as long as their read-only record lasts)."""
    state = request.app[STATE]
    token = request.match_info["token"]
    wanted = PAGE_DOCUMENTS.get(request.match_info["name"])
    if wanted is None:
        return _render_error(request, 404, "error.no_document.title", "link.invalid.message")
    kind, fmt = wanted
    lang = request.query.get("lang", "en")
    if lang not in LANGUAGES:
        return _render_error(
            request, 400, "error.unknown_language.title", "error.unknown_language.message"
        )
    async with state.sessions() as session:
        try:
            consult, participant = await links.resolve(
                session, state.signer(), token, now=state.clock()
            )
        except TokenError as problem:
            found = await links.resolve_record(
                session,
                state.signer(),
                token,
                now=state.clock(),
                access_days=state.config.consult.patient_access_days,
            )
            if found is None:
                status, title_key, message_key = _LINK_PROBLEMS[problem.code]
                return _render_error(request, status, title_key, message_key)
            consult, participant = found
        refusal = _document_refusal(Role(participant.role), kind, consult)
        if refusal is not None:
            return _render_error(request, 403, *refusal)
        inputs = await documents.load_inputs(session, state.config, consult, None)
    link = documents.response_link_maker(
        state.response_signer(), state.config.documents, consult, base_url(request, state)
    )
    page_lang: Language = "es" if lang == "es" else "en"
    rendered = await documents.render_document(state.pdf, kind, fmt, inputs, page_lang, link)
    return web.Response(
        body=rendered.body,
        content_type=rendered.media_type,
        charset="utf-8" if fmt == "html" else None,
        headers=documents.headers_for(rendered, download=Role(participant.role) is Role.PATIENT),
    )


def _document_refusal(role: Role, kind: documents.Kind, consult: Consult) -> tuple[str, str] | None:
    """Why `role` may not open `kind` now (the title's and message's catalogue keys), or None
    when they may."""
    if audience.sees_care_team(role.value):
        return None
    if kind != "summary":
        return ("error.care_team_only.title", "error.care_team_only.message")
    if consult.status != "ended":
        return ("error.not_ready.title", "error.not_ready.message")
    return None


async def _patient_record(request: web.Request, token: str) -> web.Response | None:
    """After the consult ends, the patient's link shows their list and plan, read-only."""
    state = request.app[STATE]
    access_days = state.config.consult.patient_access_days
    async with state.sessions() as session:
        found = await links.resolve_record(
            session, state.signer(), token, now=state.clock(), access_days=access_days
        )
        if found is None:
            return None
        consult, _ = found
        snapshot = await panel_store.snapshot(session, consult.id)
    assert consult.ended_at is not None
    until = consult.ended_at + dt.timedelta(days=access_days)
    language = i18n.negotiate(request)
    catalogue = request.app[CATALOGUE]
    return _render(
        request,
        "record.html",
        status=200,
        lang=language,
        token=token,
        record=audience.record_for("patient", snapshot),
        # Written as the summary document writes dates (documents/text.py).
        ended_on=long_date(consult.ended_at.date(), language),
        available_until=long_date(until.date(), language),
        # The summary in each other language, offered in that language's own words.
        other_downloads=[
            (other, catalogue.translator(other)("record.download_in_this_language"))
            for other in LANGUAGES
            if other != language
        ],
        status_words=STATUS[language],
        confirmation_words=CONFIRMATION_WORDS,
        decision_words=DECISION_WORDS,
    )


def _render(
    request: web.Request,
    template: str,
    *,
    status: int,
    lang: Language | None = None,
    **context: object,
) -> web.Response:
    """`lang`: the page's language when not the request's own (an embed's theme)."""
    language = lang or i18n.negotiate(request)
    html = (
        request.app[STATE]
        .templates.get_template(template)
        .render(
            status=status,
            lang=language,
            t=request.app[CATALOGUE].translator(language),
            languages=i18n.NAMES,
            **context,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html")


# -- the prescriber's answer to a recommendation -----------------------------------------

_RESPONSE_LINK_PROBLEMS = {
    "invalid_token": (404, "This link is not valid", "Check that you opened the whole link."),
    "expired_token": (
        410,
        "This link has expired",
        "Ask the pharmacist who sent the letter for a new one, or answer on paper.",
    ),
}
# MutationError codes of an answer -> HTTP status.
_ANSWER_STATUS = {
    "unknown_consult": 404,
    "unknown_entity": 404,
    "already_answered": 409,
    "stale_link": 409,
    "consult_not_ended": 409,
    "invalid_value": 422,
}


def _prescriber_error(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """The prescriber's pages are in English (respond.html): so are their error pages."""
    return _render(request, "error.html", status=status, lang="en", title=title, message=message)


def _response_error(request: web.Request, code: str) -> web.Response:
    status, title, message = _RESPONSE_LINK_PROBLEMS[code]
    return _prescriber_error(request, status, title, message)


async def _recommendation_row(
    state: AppState, request: web.Request, consult: Consult, recommendation_id: str
) -> content.RecommendationRow | None:
    async with state.sessions() as session:
        snapshot = await panel_store.snapshot(session, consult.id)
    facts = documents.consult_facts(state.config, consult, snapshot["seq"], [])
    link = documents.response_link_maker(
        state.response_signer(), state.config.documents, consult, base_url(request, state)
    )
    letter = content.prescriber_letter(facts, snapshot, link)
    return next((row for row in letter.recommendations if row.id == recommendation_id), None)


def _respond_page(
    request: web.Request,
    consult: Consult,
    row: content.RecommendationRow,
    *,
    status: int,
    heading: str,
    message: str | None,
    open_form: bool,
) -> web.Response:
    state = request.app[STATE]
    facts = documents.consult_facts(state.config, consult, consult.last_seq, [])
    return _render(
        request,
        "respond.html",
        status=status,
        lang="en",
        heading=heading,
        message=message,
        rec=row,
        open=open_form,
        patient_name=consult.patient_name,
        service_date=facts.service_date.strftime("%B %-d, %Y"),
        max_notes=mutations.MAX_RESPONSE_NOTES,
    )


async def _response_target(
    request: web.Request,
) -> tuple[Consult, str, int, str] | web.Response:
    """(consult, recommendation id, base version, token) of a genuine link, or the page
    that says why the link cannot be used."""
    state = request.app[STATE]
    token = request.match_info["token"]
    try:
        claims = state.response_signer().verify(token, now=state.clock())
    except TokenError as problem:
        return _response_error(request, problem.code)
    async with state.sessions() as session:
        consult = await consults.get_consult(session, claims.consult_id)
    if consult is None:
        return _response_error(request, "invalid_token")
    return consult, claims.recommendation_id, claims.base_version, token


async def response_page(request: web.Request) -> web.Response:
    """The recommendation and, while it waits for an answer, the accept/decline form."""
    state = request.app[STATE]
    target = await _response_target(request)
    if isinstance(target, web.Response):
        return target
    consult, recommendation_id, base_version, _ = target
    row = await _recommendation_row(state, request, consult, recommendation_id)
    if row is None:
        return _response_error(request, "invalid_token")
    if row.decided:
        return _respond_page(
            request,
            consult,
            row,
            status=409,
            heading="Already answered",
            message="This recommendation has been answered; nothing more is needed.",
            open_form=False,
        )
    if consult.status != "ended":
        return _respond_page(
            request,
            consult,
            row,
            status=409,
            heading="Not open yet",
            message="The consult is still in progress: this link opens when it ends.",
            open_form=False,
        )
    if row.response_link is None or not row.response_link.endswith(request.match_info["token"]):
        return _respond_page(
            request,
            consult,
            row,
            status=409,
            heading="This link is out of date",
            message="This recommendation changed after the letter was made; ask for a new one.",
            open_form=False,
        )
    return _respond_page(
        request,
        consult,
        row,
        status=200,
        heading="Please answer this recommendation",
        message=None,
        open_form=True,
    )


async def response_answer(request: web.Request) -> web.Response:
    """Record the prescriber's decision once, in the consult's change log."""
    state = request.app[STATE]
    target = await _response_target(request)
    if isinstance(target, web.Response):
        return target
    consult, recommendation_id, base_version, token = target
    form = await request.post()
    decision = form.get("decision")
    notes = form.get("notes")
    name = form.get("name")
    if not all(value is None or isinstance(value, str) for value in (decision, notes, name)):
        return _prescriber_error(request, 422, "Not recorded", _FORM_TEXT_ONLY)
    if decision not in ("accepted", "declined"):
        return _prescriber_error(request, 422, "Not recorded", _CHOOSE_DECISION)
    assert isinstance(decision, str)
    clean_notes = notes.strip() if isinstance(notes, str) and notes.strip() else None
    actor = mutations.Actor(
        participant_id=None,
        name=" ".join(name.split()) if isinstance(name, str) else "",
        role=mutations.PRESCRIBER,
    )
    response = mutations.PrescriberResponse(
        recommendation_id=recommendation_id,
        decision="accepted" if decision == "accepted" else "declined",
        notes=clean_notes,
        base_version=base_version,
        # One mutation id per link, so the log says which link answered.
        response_id="response-" + hashlib.sha256(token.encode()).hexdigest()[:40],
    )
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    try:
        async with state.sessions() as session, session.begin():
            result = await panel_store.record_response(
                session, consult.id, actor, response, now=now
            )
            if result.get("ok"):
                await state.webhooks.emit(
                    session,
                    "recommendation.answered",
                    consult.id,
                    {
                        "recommendation_id": recommendation_id,
                        "decision": response.decision,
                        "seq": result["seq"],
                        "documents": documents.documents_ready_data(
                            consult, API_PREFIX, seq=result["seq"]
                        )["documents"],
                    },
                )
    except mutations.MutationError as refused:
        status = _ANSWER_STATUS.get(refused.code, 409)
        return _prescriber_error(request, status, "Not recorded", refused.message)
    except (IntegrityError, OperationalError):
        # Another write to this consult won the race (the same link sent twice at once, on
        # a database without row locks): this one is rolled back whole.
        return _prescriber_error(request, 409, "Not recorded", _ANSWER_RACED)
    row = await _recommendation_row(state, request, consult, recommendation_id)
    assert row is not None
    return _respond_page(
        request,
        consult,
        row,
        status=200,
        heading="Thank you",
        message=f"Your answer is recorded: {row.decision.lower()}.",
        open_form=False,
    )


_ANSWER_RACED = "Another answer was being recorded at the same moment. Reload this page."
_FORM_TEXT_ONLY = "Send the form as it is shown: text fields only."
_CHOOSE_DECISION = "Choose accept or decline, then send your answer again."
