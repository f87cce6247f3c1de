"""HTML pages: the join link (pre-join screen and call) and the static files."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from aiohttp import web

from models import audience, consults, panel_store
from models.roles import Role
from server import links
from server.security import Handler
from server.state import STATE
from server.tokens import TokenError

log = logging.getLogger(__name__)

SOCKET_IO_CLIENT = Path("node_modules/socket.io-client/dist/socket.io.esm.min.js")

_LINK_PROBLEMS = {
    "invalid_token": (404, "This link is not valid", "Check that you opened the whole link."),
    "unknown_participant": (
        404,
        "This link is not valid",
        "It may have been replaced by a newer one. Ask your clinic for a new link.",
    ),
    "expired_token": (
        410,
        "This link has expired",
        "Ask your pharmacy or clinic to send you a new link.",
    ),
    "consult_ended": (
        410,
        "This consult has ended",
        "Thank you for joining. You can close this window.",
    ),
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
        return _render(
            request,
            "error.html",
            status=500,
            title="Something went wrong",
            message="Please try again in a moment. If it keeps happening, call your clinic.",
        )


def add_routes(app: web.Application, web_dir: Path) -> None:
    vendor_file = web_dir / SOCKET_IO_CLIENT

    async def socket_io_client(request: web.Request) -> web.StreamResponse:
        if not await asyncio.to_thread(vendor_file.is_file):
            raise web.HTTPServiceUnavailable(
                text="socket.io-client is not installed: run `npm ci` in web/ (./run.sh does it)."
            )
        return web.FileResponse(vendor_file, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/static/vendor/socket.io.esm.min.js", socket_io_client)
    app.router.add_static("/static/", web_dir / "static", append_version=False)
    app.router.add_get("/c/{token}", join_page)


async def join_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = request.match_info["token"]
    try:
        async with state.sessions() as session:
            consult, participant = await links.resolve(
                session, state.signer(), token, now=state.clock()
            )
            given = await consults.has_consented(session, participant.id)
    except TokenError as problem:
        record = await _patient_record(request, token)
        if record is not None:
            return record
        status, title, message = _LINK_PROBLEMS[problem.code]
        return _render(request, "error.html", status=status, title=title, message=message)
    role = Role(participant.role)
    boot = {
        "token": token,
        "participant": {
            "id": participant.id,
            "role": role.value,
            "display_name": participant.display_name,
        },
        "consult": {"id": consult.id, "status": consult.status},
        "consent": {
            "required": role.value in state.config.consent.required_roles,
            "given": given,
            "text": state.config.consent.text,
        },
        # window.mtm / window.mtmPanel exist only when a test turns them on.
        "expose_test_hooks": state.config.testing.expose_hooks,
    }
    return _render(
        request,
        "call.html",
        status=200,
        boot=boot,
        participant=participant,
        role_label=role.label,
    )


STATUS_WORDS = {
    "active": "Taking",
    "stopped": "Stopped",
    "on-hold": "On hold",
    "not-taken": "Not taking",
    "entered-in-error": "Listed by mistake",
}
CONFIRMATION_WORDS = {
    "confirmed": "Yes, this is how I take it",
    "corrected": "I corrected how I take it",
    "needs-confirming": "Changed after you confirmed it",
}
DECISION_WORDS = {
    "proposed": "Proposed — waiting for your doctor",
    "no-response": "Proposed — waiting for your doctor",
    "accepted": "Your doctor agreed",
    "declined": "Not changed",
}


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
    return _render(
        request,
        "record.html",
        status=200,
        record=audience.record_for("patient", snapshot),
        ended_on=consult.ended_at.strftime("%B %-d, %Y"),
        available_until=until.strftime("%B %-d, %Y"),
        status_words=STATUS_WORDS,
        confirmation_words=CONFIRMATION_WORDS,
        decision_words=DECISION_WORDS,
    )


def _render(request: web.Request, template: str, *, status: int, **context: object) -> web.Response:
    html = request.app[STATE].templates.get_template(template).render(status=status, **context)
    return web.Response(text=html, status=status, content_type="text/html")
