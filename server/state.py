"""What the running application holds, reachable from any request as `app[STATE]`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jinja2
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from media.probe import ProbeService
from models.panel_writer import PanelWriter
from server.config import Config
from server.documents import PdfRenderer
from server.lifecycle import ConsultEnding
from server.tokens import LinkSigner, ResponseSigner
from server.webhooks import WebhookSender
from signaling.handlers import ConsultSignaling


@dataclass
class AppState:
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    signaling: ConsultSignaling
    templates: jinja2.Environment
    clock: Callable[[], float]
    webhooks: WebhookSender
    probes: ProbeService
    panel_writer: PanelWriter
    ending: ConsultEnding
    redis: Redis | None  # set when several instances share Redis (redis.url)
    pdf: PdfRenderer
    _signer: LinkSigner | None = field(default=None, repr=False)
    _response_signer: ResponseSigner | None = field(default=None, repr=False)

    def signer(self) -> LinkSigner:
        if self._signer is None:
            raise RuntimeError("the application has not started yet")
        return self._signer

    def response_signer(self) -> ResponseSigner:
        """Signs the prescriber letter's response links (server/documents.py)."""
        if self._response_signer is None:
            raise RuntimeError("the application has not started yet")
        return self._response_signer


STATE = web.AppKey("mtm_state", AppState)
