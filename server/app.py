"""The aiohttp application factory: wires config, database, signaling, API and pages."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import jinja2
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from media.probe import ProbeService
from models.database import make_engine, make_sessionmaker, sqlite_file
from models.migrations import upgrade_to_head
from models.panel_writer import PanelWriter
from server import api, fastjson, health, metrics, pages
from server.admissions import DatabaseAdmissions
from server.chat_service import DatabaseChat
from server.config import Config
from server.documents import PdfRenderer
from server.lifecycle import ConsultEnding
from server.media_service import ServerMedia
from server.metrics import METRICS, ErrorCounter, Metrics
from server.observed import CountedPresence, WriterMetrics, observed_backend
from server.panel_service import DatabasePanel
from server.security import Handler, plain_websockets, security_headers
from server.state import STATE, AppState
from server.tokens import LinkSigner, ResponseSigner
from server.webhooks import WebhookSender
from signaling.backend import SignalingBackend
from signaling.cluster import Cluster, ConsultEnded, LocalCluster, RedisCluster, RedisManager
from signaling.handlers import ConsultSignaling, SignalingLimits
from signaling.presence import InMemoryPresence, PresenceStore, RedisPresence
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
    signaling = config.signaling
    redis: Redis | None = None
    cluster: Cluster = LocalCluster()
    presence: PresenceStore = InMemoryPresence()
    client_manager = None
    if config.redis.url is not None:
        # Several instances (docs/deploy.md): presence, commands and Socket.IO messages
        # cross them through Redis. The config check guarantees a shared token secret.
        assert config.auth.token_secret is not None
        # A bounded pool that makes a burst of callers wait for a connection (the default
        # pool refuses them once it holds 100).
        redis = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                config.redis.url, max_connections=64, timeout=10
            )
        )
        cluster = RedisCluster(
            redis,
            ttl_seconds=signaling.presence_ttl_seconds,
            fingerprint=secret_fingerprint(config.auth.token_secret),
        )
        presence = RedisPresence(redis, cluster.instance)
        client_manager = RedisManager(config.redis.url, channel="mtm:socketio")
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
    webhooks = WebhookSender(config.webhooks, sessions, clock)
    panel_writer = PanelWriter(
        engine,
        sessions,
        clock,
        observer=WriterMetrics(app_metrics),
        max_entities=config.consult.max_panel_entries,
    )

    async def notify_ended(consult_id: str, reason: str) -> None:
        await cluster.publish(ConsultEnded(consult_id, reason))

    ending = ConsultEnding(sessions, clock, panel_writer, webhooks, notify_ended)
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
        webhooks=webhooks,
        probes=ProbeService(max_concurrent=config.probe.max_concurrent),
        panel_writer=panel_writer,
        ending=ending,
        redis=redis,
        pdf=PdfRenderer(config.documents.pdf_workers),
    )
    backend = SignalingBackend(
        admissions=DatabaseAdmissions(sessions, state.signer, config, clock, webhooks, ending),
        panel=DatabasePanel(sessions, panel_writer),
        media=ServerMedia(config, clock, state.probes),
        chat=DatabaseChat(sessions, clock),
    )
    state.signaling = ConsultSignaling(
        sio,
        observed_backend(backend, app_metrics),
        CountedPresence(presence, app_metrics),
        cluster,
        SignalingLimits(
            max_message_bytes=signaling.max_message_bytes,
            connections_per_token=signaling.connections_per_token,
            participants_per_consult=signaling.participants_per_consult,
            panel_sync_max_events=signaling.panel_sync_max_events,
            on_limit=app_metrics.rate_limit_hit,
        ),
        heartbeat_seconds=signaling.presence_ttl_seconds / 5,
        admitters=frozenset(config.consult.admit_roles),
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
    # Join the other instances first: one that cannot (another token secret) stops here,
    # before it touches the database.
    await state.signaling.start()
    state._response_signer = ResponseSigner(secret)
    if state.config.database.auto_migrate:
        database_file = sqlite_file(state.config.database.url)
        if database_file is not None:
            await asyncio.to_thread(database_file.parent.mkdir, parents=True, exist_ok=True)
        await upgrade_to_head(state.engine)
    await state.webhooks.start()
    state.panel_writer.start()
    yield
    await state.signaling.stop()
    await state.pdf.stop()
    await state.panel_writer.stop()
    await state.probes.close()
    await state.webhooks.stop()
    if state.redis is not None:
        await state.redis.aclose()
    await state.engine.dispose()


def secret_fingerprint(secret: str) -> str:
    """Equal for equal token secrets, and says nothing about the secret itself."""
    return hmac.new(secret.encode(), b"mtm-consult instance fingerprint", "sha256").hexdigest()[:16]


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
