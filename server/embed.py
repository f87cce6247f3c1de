"""The embeddable call (docs/embed.md): its theme parameters, the headers that let a clinic's
portal frame it, the clinic's settings as configured or stored, and the SDK's files.

The embed page itself is rendered by server/pages.py (the call page with an `embed` part).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import embed
from models.errors import Refused
from server.config import Config
from server.security import Handler, content_security_policy

# Languages the embed's labels come in (web/static/embed-bridge.js has the words).
LANGUAGES = ("en", "es")
THEME_PARAMETERS = ("accent", "logo", "panel", "lang")
# WCAG 2 AA for normal text: the accent is the background of white button labels.
MIN_CONTRAST_WITH_WHITE = 4.5
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_SWITCHES = {"1": True, "0": False}

SDK_FILES = {
    "mtm-consult.js": "text/javascript",
    "mtm-consult.d.ts": "text/plain",
}


class ThemeRefused(Refused):
    """A theme parameter of the embed address is unknown or has a value not allowed."""


@dataclass(frozen=True)
class EmbedTheme:
    accent: str | None = None  # "#rrggbb", lower case; None: the app's own colour
    logo: bool = True
    panel: bool = True
    language: str = "en"

    def json(self) -> dict[str, Any]:
        return {
            "accent": self.accent,
            "logo": self.logo,
            "panel": self.panel,
            "language": self.language,
        }


def parse_theme(parameters: Iterable[tuple[str, str]]) -> EmbedTheme:
    """The theme the embed address's query parameters ask for; ThemeRefused naming the
    parameter otherwise."""
    pairs = list(parameters)
    names = [name for name, _ in pairs]
    query = dict(pairs)
    for name in names:
        if name not in THEME_PARAMETERS:
            raise ThemeRefused(
                "invalid_theme",
                f"Unknown embed parameter '{name[:40]}'; allowed: {', '.join(THEME_PARAMETERS)}.",
            )
        if names.count(name) > 1:
            raise ThemeRefused("invalid_theme", f"The embed parameter '{name}' is given twice.")
    accent = query.get("accent")
    if accent is not None:
        accent = _accent(accent)
    switches = {}
    for name in ("logo", "panel"):
        raw = query.get(name, "1")
        if raw not in _SWITCHES:
            raise ThemeRefused("invalid_theme", f"{name} must be 1 (show) or 0 (hide).")
        switches[name] = _SWITCHES[raw]
    language = query.get("lang", "en")
    if language not in LANGUAGES:
        raise ThemeRefused("invalid_theme", f"lang must be one of: {', '.join(LANGUAGES)}.")
    return EmbedTheme(
        accent=accent, logo=switches["logo"], panel=switches["panel"], language=language
    )


def _accent(raw: str) -> str:
    if not _HEX_COLOUR.fullmatch(raw):
        raise ThemeRefused(
            "invalid_theme", "accent must be a colour written #rrggbb or #rgb, e.g. #0b5cad."
        )
    digits = raw[1:].lower()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    colour = "#" + digits
    contrast = contrast_with_white(colour)
    if contrast < MIN_CONTRAST_WITH_WHITE:
        raise ThemeRefused(
            "invalid_theme",
            f"accent {colour} is too light: white text on it has a contrast of "
            f"{contrast:.1f}:1, and buttons need at least {MIN_CONTRAST_WITH_WHITE}:1 "
            "(WCAG AA). Choose a darker colour.",
        )
    return colour


def contrast_with_white(colour: str) -> float:
    """WCAG 2 contrast ratio of white on `colour` ("#rrggbb")."""
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


async def clinic_settings(
    session: AsyncSession, config: Config, clinic: str
) -> embed.ClinicEmbedSettings:
    """What the clinic's embeds may do: as stored through the REST API if it ever set them,
    else as configured (`embed.clinics`), else nothing (no origin may embed)."""
    stored = await embed.stored_settings(session, clinic)
    if stored is not None:
        return stored
    configured = config.embed.clinics.get(clinic)
    if configured is None:
        return embed.ClinicEmbedSettings()
    return embed.ClinicEmbedSettings(
        allowed_origins=list(configured.allowed_origins),
        medication_names_in_events=configured.medication_names_in_events,
        source="config",
    )


def embed_headers(public_url: str | None, allowed_origins: list[str]) -> dict[str, str]:
    """An embed page's CSP: framed by the clinic's allowed origins only ('none' if it has
    none). Its Permissions-Policy stays the pages' own (camera and microphone for this
    origin): a framed page may use them when its own policy allows its origin and the host
    page delegates them with the iframe's `allow` attribute, which the SDK sets."""
    return {
        "Content-Security-Policy": content_security_policy(
            public_url, frame_ancestors=allowed_origins
        ),
    }


def add_sdk_routes(app: web.Application, sdk_dir: Path) -> None:
    """The SDK at /sdk/: an ES module any portal may import (CORS), and its declarations."""

    def serve(name: str, content_type: str) -> Handler:
        path = sdk_dir / name

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(
                path,
                headers={
                    "Content-Type": f"{content_type}; charset=utf-8",
                    "Access-Control-Allow-Origin": "*",
                    "Cross-Origin-Resource-Policy": "cross-origin",
                    "Cache-Control": "no-cache",
                },
            )

        return handler

    for name, content_type in SDK_FILES.items():
        app.router.add_get(f"/sdk/{name}", serve(name, content_type))
