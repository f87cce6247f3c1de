"""The aiohttp application factory: wires config, database, signaling, API and pages."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import jinja2
import socketio
from aiohttp import web
from sqlalchemy.engine import make_url

from media.probe import ProbeService
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from server import api, fastjson, health, metrics, pages
from server.config import Config
from server.documents import PdfRenderer
from server.metrics import METRICS, ErrorCounter, Metrics
from server.observed import CountedPresence, ObservedBackend
from server.panel_writer import PanelWriter
from server.security import Handler, plain_websockets, security_headers
from server.signaling_backend import DatabaseSignalingBackend
from server.state import STATE, AppState
from server.tokens import LinkSigner, ResponseSigner
from server.webhooks import WebhookSender
from signaling.handlers import ConsultSignaling, SignalingLimits
from signaling.presence import InMemoryPresence
from signaling.wire import GuardedServer, WireLimits

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    database_schema: str | None = None,
) -> web.Application:
    """The application for `config`. `database_schema` isolates a test run on Postgres."""
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[
            plain_websockets,
            security_headers(config.server),
            api.error_middleware,
            pages.friendly_errors,
            static_file_names,
        ],
    )
    app_metrics = Metrics()
    engine = make_engine(config.database.url, schema=database_schema)
    sessions = make_sessionmaker(engine)
    client_manager = (
        socketio.AsyncRedisManager(config.redis.url) if config.redis.url is not None else None
    )
    signaling = config.signaling
    sio = GuardedServer(
        limits=WireLimits(
            events_per_second=signaling.events_per_second,
            event_burst=signaling.event_burst,
            on_limit=app_metrics.rate_limit_hit,
        ),
        async_mode="aiohttp",
        client_manager=client_manager,
        ping_interval=signaling.ping_interval,
        ping_timeout=signaling.ping_timeout,
        max_http_buffer_size=4 * signaling.max_message_bytes,
        json=fastjson,
    )
    sio.attach(app)
    state = AppState(
        config=config,
        engine=engine,
        sessions=sessions,
        signaling=None,  # type: ignore[arg-type]  # set just below; it needs state.signer
        templates=jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        ),
        clock=clock,
        webhooks=WebhookSender(config.webhooks, sessions, clock),
        probes=ProbeService(max_concurrent=config.probe.max_concurrent),
        panel_writer=PanelWriter(
            engine,
            sessions,
            clock,
            metrics=app_metrics,
            max_entities=config.consult.max_panel_entries,
        ),
        pdf=PdfRenderer(config.documents.pdf_workers),
    )
    backend = DatabaseSignalingBackend(
        sessions, state.signer, config, clock, state.webhooks, state.probes, state.panel_writer
    )
    state.signaling = ConsultSignaling(
        sio,
        ObservedBackend(backend, app_metrics),
        CountedPresence(InMemoryPresence(), app_metrics),
        SignalingLimits(
            max_message_bytes=signaling.max_message_bytes,
            connections_per_token=signaling.connections_per_token,
            participants_per_consult=signaling.participants_per_consult,
            panel_sync_max_events=signaling.panel_sync_max_events,
            on_limit=app_metrics.rate_limit_hit,
        ),
    )
    app[STATE] = state
    app[METRICS] = app_metrics
    app.cleanup_ctx.append(_lifespan)
    app.cleanup_ctx.append(_count_errors)
    api.add_routes(app)
    health.add_routes(app)
    pages.add_routes(app, WEB_DIR)
    metrics.add_routes(app, config.metrics)
    return app


@web.middleware
async def static_file_names(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A static file name the file system refuses (too long, say) is a missing file, 404."""
    if not request.path.startswith("/static/"):
        return await handler(request)
    try:
        return await handler(request)
    except OSError:
        raise web.HTTPNotFound() from None


async def _count_errors(app: web.Application) -> AsyncIterator[None]:
    """While the app runs, every error logged in the process counts in `mtm_errors`."""
    counter = ErrorCounter(app[METRICS])
    logging.getLogger().addHandler(counter)
    yield
    logging.getLogger().removeHandler(counter)


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    secret = state.config.auth.token_secret
    if secret is None:
        secret = await asyncio.to_thread(
            _stored_secret, state.config.paths.var_dir / "token_secret"
        )
    state._signer = LinkSigner(secret)
    state._response_signer = ResponseSigner(secret)
    if state.config.database.auto_migrate:
        database_file = _sqlite_file(state.config.database.url)
        if database_file is not None:
            await asyncio.to_thread(database_file.parent.mkdir, parents=True, exist_ok=True)
        await upgrade_to_head(state.engine)
    await state.webhooks.start()
    state.panel_writer.start()
    yield
    await state.pdf.stop()
    await state.panel_writer.stop()
    await state.probes.close()
    await state.webhooks.stop()
    await state.engine.dispose()


def _stored_secret(path: Path) -> str:
    """The token secret kept in `path`, created on first use (readable by the owner only)."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(secret, encoding="ascii")
        log.info("generated a new token secret in %s", path)
        return secret


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
